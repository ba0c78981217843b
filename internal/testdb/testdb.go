// Package testdb gives tests a fresh PostgreSQL database of their own on the
// test server (127.0.0.1:5432 by default, or the server in
// DOMAINGUARD_TEST_DATABASE_URL), migrated with the embedded schema and
// dropped when the test ends. It fails the test, never skips it, when the
// server is unreachable.
//
// Migrated databases are copies of a template database, dg_tmpl_<hash of the
// migrations>, which the first test of any process builds once (under an
// advisory lock, so parallel test processes build it once between them) and
// nobody connects to afterwards: PostgreSQL refuses to copy a database that
// has a session on it. A changed migration hashes to a new template; old
// dg_tmpl_* databases are left behind and may be dropped while no test runs.
package testdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/domainguard/domainguard/internal/postgres"
	"github.com/domainguard/domainguard/internal/redact"
)

// EnvServerURL names the variable that overrides the test server URL.
const EnvServerURL = "DOMAINGUARD_TEST_DATABASE_URL"

// DefaultServerURL is the maintenance database of the local test server.
const DefaultServerURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// ServerURL returns the URL of the server's maintenance database that tests
// create their databases from.
func ServerURL() string {
	if u := strings.TrimSpace(os.Getenv(EnvServerURL)); u != "" {
		return u
	}
	return DefaultServerURL
}

// New creates a fresh database named dg_test_<test>_<random>, applies
// schemas.Migrations to it and returns a pool on it and its URL. The pool is
// closed and the database dropped (WITH (FORCE)) when the test ends.
func New(t testing.TB) (*pgxpool.Pool, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tmpl, err := migratedTemplate(ctx, ServerURL())
	if err != nil {
		t.Fatalf("testdb: template database on %s: %v (is PostgreSQL running? set %s to point elsewhere)",
			redact.ConnString(ServerURL()), err, EnvServerURL)
	}
	dbURL := create(t, tmpl)
	pool, err := postgres.Open(ctx, dbURL, postgres.WithMaxWait(5*time.Second))
	if err != nil {
		t.Fatalf("testdb: open %s: %v", redact.ConnString(dbURL), err)
	}
	// Registered after create's drop, so it runs before it.
	t.Cleanup(pool.Close)
	return pool, dbURL
}

// NewEmpty creates a fresh, unmigrated database and returns its URL. It is
// dropped (WITH (FORCE), so open connections do not block it) when the test
// ends.
func NewEmpty(t testing.TB) string {
	t.Helper()
	return create(t, "")
}

// create makes a database copied from template (template1 when empty),
// dropped when the test ends, and returns its URL.
func create(t testing.TB, template string) string {
	t.Helper()
	server := ServerURL()
	name := databaseName(t.Name())
	dbURL, err := withDatabase(server, name)
	if err != nil {
		t.Fatalf("testdb: %s=%s: %v", EnvServerURL, redact.ConnString(server), err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := admin(ctx, server, func(conn *pgx.Conn) error {
		return postgres.CreateDatabaseFrom(ctx, conn, name, template)
	}); err != nil {
		t.Fatalf("testdb: create database %s on %s: %v (is PostgreSQL running? set %s to point elsewhere)",
			name, redact.ConnString(server), err, EnvServerURL)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := admin(ctx, server, func(conn *pgx.Conn) error {
			_, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
			return err
		})
		if err != nil {
			t.Errorf("testdb: drop database %s: %v", name, err)
		}
	})
	return dbURL
}

func admin(ctx context.Context, server string, do func(*pgx.Conn) error) error {
	cfg, err := pgx.ParseConfig(server)
	if err != nil {
		return fmt.Errorf("parse server url: %w", err)
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 5 * time.Second
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return do(conn)
}

// databaseName is dg_test_<sanitised test name, at most 30 chars>_<8 hex>,
// within PostgreSQL's 63-byte identifier limit.
func databaseName(testName string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(testName) {
		if b.Len() >= 30 {
			break
		}
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	return "dg_test_" + strings.Trim(b.String(), "_") + "_" + hex.EncodeToString(rnd[:])
}

// withDatabase returns server with its database replaced by name. It accepts
// URLs only (postgres:// or postgresql://).
func withDatabase(server, name string) (string, error) {
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", fmt.Errorf("want a postgres:// URL")
	}
	u.Path = "/" + name
	u.RawPath = ""
	return u.String(), nil
}
