package postgres

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// migrationLockKey is the pg_advisory_lock key that serialises Migrate runs
// across processes sharing a database ("dgmigrat" in ASCII).
const migrationLockKey int64 = 0x64676d6967726174

// migrationsDir is where the migration files live inside the fs.FS given to
// Migrate (schemas.Migrations embeds migrations/*.sql).
const migrationsDir = "migrations"

var migrationName = regexp.MustCompile(`^[0-9]{4}_[a-z0-9_]+\.sql$`)

// Migration is one SQL file, applied whole in its own transaction.
type Migration struct {
	Version string // file name without ".sql", e.g. "0001_init"
	SQL     string
}

// LoadMigrations reads the NNNN_name.sql files from the "migrations"
// directory of fsys (or from its root when it has no such directory), in
// version order. Any other .sql name is an error, so a misnamed file is not
// silently skipped.
func LoadMigrations(fsys fs.FS) ([]Migration, error) {
	dir := migrationsDir
	entries, err := fs.ReadDir(fsys, dir)
	if errors.Is(err, fs.ErrNotExist) {
		dir = "."
		entries, err = fs.ReadDir(fsys, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: read migrations: %w", err)
	}
	var out []Migration
	seen := map[string]string{}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		if !migrationName.MatchString(e.Name()) {
			return nil, fmt.Errorf("postgres: migration file %q: name must be NNNN_name.sql (lower case)", e.Name())
		}
		number := e.Name()[:4]
		if other, dup := seen[number]; dup {
			return nil, fmt.Errorf("postgres: migrations %q and %q share number %s", other, e.Name(), number)
		}
		seen[number] = e.Name()
		body, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("postgres: read migration %s: %w", e.Name(), err)
		}
		out = append(out, Migration{Version: strings.TrimSuffix(e.Name(), ".sql"), SQL: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// Migrate applies the migrations in fsys (see LoadMigrations) that the
// database has not seen yet, recording each in schema_migrations, and
// returns the versions it applied (none when the schema is current).
//
// A session-level advisory lock, held on one dedicated connection for the
// whole run, makes concurrent Migrate calls from several processes wait for
// each other, so each file is applied exactly once. Each file runs in its
// own transaction together with its schema_migrations row, so a failing
// file leaves no trace and is retried on the next run. Versions in the
// database that fsys does not know (a newer binary ran) are left alone.
func Migrate(ctx context.Context, pool *pgxpool.Pool, migrations fs.FS) (applied []string, err error) {
	files, err := LoadMigrations(migrations)
	if err != nil {
		return nil, err
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres: migrate: acquire connection: %w", err)
	}
	defer conn.Release()

	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrationLockKey); err != nil {
		return nil, fmt.Errorf("postgres: migrate: take advisory lock: %w", err)
	}
	defer func() {
		unlockCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, uerr := conn.Exec(unlockCtx, `SELECT pg_advisory_unlock($1)`, migrationLockKey); uerr != nil {
			// Closing the session releases the lock; the pool then
			// discards the closed connection.
			_ = conn.Conn().Close(unlockCtx)
		}
	}()

	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    text        PRIMARY KEY,
		applied_at timestamptz NOT NULL DEFAULT now()
	)`); err != nil {
		return nil, fmt.Errorf("postgres: migrate: create schema_migrations: %w", err)
	}

	done := map[string]bool{}
	rows, err := conn.Query(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return nil, fmt.Errorf("postgres: migrate: read schema_migrations: %w", err)
	}
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return nil, fmt.Errorf("postgres: migrate: read schema_migrations: %w", err)
		}
		done[v] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: migrate: read schema_migrations: %w", err)
	}

	for _, m := range files {
		if done[m.Version] {
			continue
		}
		tx, err := conn.Begin(ctx)
		if err != nil {
			return applied, fmt.Errorf("postgres: migrate %s: begin: %w", m.Version, err)
		}
		// Exec without arguments uses the simple protocol, so a file may
		// hold many statements.
		if _, err := tx.Exec(ctx, m.SQL); err != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx))
			return applied, fmt.Errorf("postgres: migrate %s: %w", m.Version, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, m.Version); err != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx))
			return applied, fmt.Errorf("postgres: migrate %s: record version: %w", m.Version, err)
		}
		if err := tx.Commit(ctx); err != nil {
			return applied, fmt.Errorf("postgres: migrate %s: commit: %w", m.Version, err)
		}
		applied = append(applied, m.Version)
	}
	return applied, nil
}
