package postgres_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/domainguard/domainguard/internal/postgres"
	"github.com/domainguard/domainguard/internal/testdb"
	"github.com/domainguard/domainguard/schemas"
)

func tablesIn(t *testing.T, conn interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, schema string) []string {
	t.Helper()
	rows, err := conn.Query(context.Background(), `SELECT tablename FROM pg_tables WHERE schemaname = $1 ORDER BY 1`, schema)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// A host database that already has its own emails and domains tables in
// public: domainguard migrates into its own schema, next to them, and
// never touches them.
func TestMigrateKeepsToItsSchema(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dbURL := testdb.NewEmpty(t)
	host, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close(context.Background())
	if _, err := host.Exec(ctx, `CREATE TABLE public.emails (id int PRIMARY KEY, addr text);
		CREATE TABLE public.domains (host_col text); INSERT INTO public.emails VALUES (1, 'host@example.com')`); err != nil {
		t.Fatal(err)
	}
	pool, err := postgres.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	applied, err := postgres.Migrate(ctx, pool, schemas.Migrations)
	if err != nil {
		t.Fatalf("migrate next to the host's tables: %v", err)
	}
	if len(applied) == 0 {
		t.Fatal("nothing applied")
	}
	dg := tablesIn(t, pool, postgres.Schema)
	for _, want := range []string{"schema_migrations", "emails", "domains", "holds", "outbox"} {
		if !slices.Contains(dg, want) {
			t.Errorf("schema %s lacks %s: %v", postgres.Schema, want, dg)
		}
	}
	if got := tablesIn(t, host, "public"); !slices.Equal(got, []string{"domains", "emails"}) {
		t.Errorf("public holds %v, want only the host's domains and emails", got)
	}
	var addr string
	if err := host.QueryRow(ctx, `SELECT addr FROM public.emails WHERE id = 1`).Scan(&addr); err != nil || addr != "host@example.com" {
		t.Errorf("host's row: %q, %v", addr, err)
	}
	// The pool's queries name tables without the schema.
	if _, err := pool.Exec(ctx, `INSERT INTO emails (user_id, email, domain, verified_at) VALUES ('u1', 'a@example.com', 'example.com', now())`); err != nil {
		t.Errorf("unqualified insert through the pool: %v", err)
	}
}

// An installation from before the schema, with its tables and the
// migrations table in public, is moved into the schema with its rows, and
// no migration runs twice.
func TestMigrateMovesLegacyInstallation(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dbURL := testdb.NewEmpty(t)
	files, err := postgres.LoadMigrations(schemas.Migrations)
	if err != nil {
		t.Fatal(err)
	}
	// What the old Migrate did: everything in public.
	legacy, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer legacy.Close(context.Background())
	if _, err := legacy.Exec(ctx, `CREATE TABLE schema_migrations (version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		t.Fatal(err)
	}
	for _, m := range files {
		if _, err := legacy.Exec(ctx, m.SQL); err != nil {
			t.Fatalf("legacy apply %s: %v", m.Version, err)
		}
		if _, err := legacy.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, m.Version); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := legacy.Exec(ctx, `INSERT INTO emails (user_id, email, domain, verified_at) VALUES ('u1', 'old@example.com', 'example.com', now());
		CREATE TABLE public.host_table (x int)`); err != nil {
		t.Fatal(err)
	}

	pool, err := postgres.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	applied, err := postgres.Migrate(ctx, pool, schemas.Migrations)
	if err != nil {
		t.Fatalf("migrate the legacy installation: %v", err)
	}
	if len(applied) != 0 {
		t.Errorf("applied %v again", applied)
	}
	if got := tablesIn(t, pool, "public"); !slices.Equal(got, []string{"host_table"}) {
		t.Errorf("public holds %v after the move, want only the host's table", got)
	}
	var email string
	if err := pool.QueryRow(ctx, `SELECT email FROM emails`).Scan(&email); err != nil || email != "old@example.com" {
		t.Errorf("moved row: %q, %v", email, err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM `+postgres.Schema+`.schema_migrations`).Scan(&n); err != nil || n != len(files) {
		t.Errorf("%s.schema_migrations has %d rows (%v), want %d", postgres.Schema, n, err, len(files))
	}
	// Sequences moved with their tables: inserts still number rows.
	if _, err := pool.Exec(ctx, `INSERT INTO domain_observations (domain, phase, observed_at, evidence, applied) VALUES ('example.com', 'active', now(), '{}', true)`); err != nil {
		t.Errorf("insert after the move: %v", err)
	}
	// Idempotent.
	if applied, err := postgres.Migrate(ctx, pool, schemas.Migrations); err != nil || len(applied) != 0 {
		t.Errorf("second migrate: %v, %v", applied, err)
	}
}
