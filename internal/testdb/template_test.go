package testdb

import (
	"context"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5"

	"github.com/domainguard/domainguard/internal/postgres"
	"github.com/domainguard/domainguard/schemas"
)

func TestTemplateNameFollowsTheMigrations(t *testing.T) {
	one := fstest.MapFS{"0001_a.sql": {Data: []byte("CREATE TABLE a (x int);")}}
	same := fstest.MapFS{"0001_a.sql": {Data: []byte("CREATE TABLE a (x int);")}}
	edited := fstest.MapFS{"0001_a.sql": {Data: []byte("CREATE TABLE a (x bigint);")}}
	added := fstest.MapFS{"0001_a.sql": one["0001_a.sql"], "0002_b.sql": {Data: []byte("SELECT 1;")}}
	names := map[string]string{}
	for label, fsys := range map[string]fstest.MapFS{"one": one, "same": same, "edited": edited, "added": added} {
		n, err := templateName(fsys)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(n, "dg_tmpl_") || len(n) > 63 {
			t.Errorf("%s: name %q", label, n)
		}
		names[label] = n
	}
	if names["one"] != names["same"] {
		t.Errorf("the same migrations hash to %q and %q", names["one"], names["same"])
	}
	if names["one"] == names["edited"] || names["one"] == names["added"] || names["edited"] == names["added"] {
		t.Errorf("changed migrations share a template: %v", names)
	}
}

// Test processes running at once build a missing template once between
// them, and a template whose builder died is rebuilt, not copied.
func TestEnsureTemplateConcurrentAndUnfinished(t *testing.T) {
	ctx := context.Background()
	server := ServerURL()
	name := strings.Replace(databaseName(t.Name()), "dg_test_", "dg_tmpl_test_", 1)
	dropAtEnd(t, name)

	// An unfinished build: the database exists, still open, nothing migrated.
	if err := admin(ctx, server, func(conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			errs[i] = admin(ctx, server, func(conn *pgx.Conn) error {
				return ensureTemplate(ctx, conn, server, name, schemas.Migrations)
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("ensureTemplate #%d: %v", i, err)
		}
	}
	conn, err := pgx.Connect(ctx, server)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var allowConn bool
	if err := conn.QueryRow(ctx, `SELECT datallowconn FROM pg_database WHERE datname = $1`, name).Scan(&allowConn); err != nil {
		t.Fatal(err)
	}
	if allowConn {
		t.Fatalf("template %s still accepts connections", name)
	}

	// A copy holds the whole schema.
	copyURL := create(t, name)
	copyConn, err := pgx.Connect(ctx, copyURL)
	if err != nil {
		t.Fatal(err)
	}
	defer copyConn.Close(ctx)
	var applied int
	if err := copyConn.QueryRow(ctx, `SELECT count(*) FROM domainguard.schema_migrations`).Scan(&applied); err != nil {
		t.Fatalf("copy of %s: %v", name, err)
	}
	if want := countMigrations(t); applied != want {
		t.Errorf("copy of %s has %d migrations applied, want %d", name, applied, want)
	}
}

func countMigrations(t *testing.T) int {
	t.Helper()
	files, err := postgres.LoadMigrations(schemas.Migrations)
	if err != nil {
		t.Fatal(err)
	}
	return len(files)
}

func dropAtEnd(t *testing.T, name string) {
	t.Cleanup(func() {
		ctx := context.Background()
		if err := admin(ctx, ServerURL(), func(conn *pgx.Conn) error {
			_, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
			return err
		}); err != nil {
			t.Errorf("drop %s: %v", name, err)
		}
	})
}
