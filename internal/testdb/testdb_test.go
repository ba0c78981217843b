package testdb

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestNewMigratesAndDrops(t *testing.T) {
	ctx := context.Background()
	var name string
	t.Run("inner", func(t *testing.T) {
		pool, dbURL := New(t)
		if err := pool.QueryRow(ctx, `SELECT current_database()`).Scan(&name); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(name, "dg_test_") || !strings.Contains(dbURL, name) {
			t.Fatalf("database %q, url %q", name, dbURL)
		}
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM emails`).Scan(&n); err != nil {
			t.Fatalf("emails table missing after migrate: %v", err)
		}
	})
	conn, err := pgx.Connect(ctx, ServerURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Fatalf("database %s still exists after the test ended", name)
	}
}

func TestNewEmptyIsUnmigrated(t *testing.T) {
	ctx := context.Background()
	dbURL := NewEmpty(t)
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	// Left open on purpose: the cleanup drop must force it closed.
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = 'public'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("fresh database has %d tables", n)
	}
}

func TestDatabaseName(t *testing.T) {
	for _, tc := range []string{"TestX", "TestVeryLong/sub test with spaces and ÜNICODE and more and more and more"} {
		got := databaseName(tc)
		if len(got) > 63 || !strings.HasPrefix(got, "dg_test_") {
			t.Errorf("databaseName(%q) = %q", tc, got)
		}
		for _, r := range got {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
				t.Errorf("databaseName(%q) = %q has %q", tc, got, r)
			}
		}
	}
	if a, b := databaseName("TestX"), databaseName("TestX"); a == b {
		t.Errorf("two names for the same test are equal: %q", a)
	}
}
