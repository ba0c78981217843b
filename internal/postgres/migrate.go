package postgres

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
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
// database has not seen yet, in the schema Schema (created if missing),
// recording each in Schema.schema_migrations, and returns the versions it
// applied (none when the schema is current). An installation from before
// the schema (its tables in public) is moved into it first (adoptPublic).
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

	// Everything lives in Schema; the files name tables without it.
	if _, err := conn.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+Schema+`; SET search_path TO `+Schema); err != nil {
		return nil, fmt.Errorf("postgres: migrate: create schema %s: %w", Schema, err)
	}
	if err := adoptPublic(ctx, conn.Conn(), files); err != nil {
		return nil, err
	}
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

// createdTable finds the tables a migration file creates.
var createdTable = regexp.MustCompile(`(?i)\bCREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?([a-z_][a-z0-9_]*)\b`)

// adoptPublic moves an installation from before Schema existed into it:
// when public.schema_migrations exists and Schema.schema_migrations does
// not, every table the recorded migrations created (found in their CREATE
// TABLE statements), and schema_migrations itself, move from public to
// Schema with ALTER TABLE ... SET SCHEMA, which takes their indexes,
// constraints and owned sequences along and keeps every row. One
// transaction: all or nothing. Tables of the host's in public that no
// applied migration created are left alone.
func adoptPublic(ctx context.Context, conn *pgx.Conn, files []Migration) error {
	var legacy bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass('public.schema_migrations') IS NOT NULL
		AND to_regclass($1) IS NULL`, Schema+".schema_migrations").Scan(&legacy); err != nil {
		return fmt.Errorf("postgres: migrate: look for a legacy installation: %w", err)
	}
	if !legacy {
		return nil
	}
	applied := map[string]bool{}
	rows, err := conn.Query(ctx, `SELECT version FROM public.schema_migrations`)
	if err != nil {
		return fmt.Errorf("postgres: migrate: read public.schema_migrations: %w", err)
	}
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return fmt.Errorf("postgres: migrate: read public.schema_migrations: %w", err)
		}
		applied[v] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("postgres: migrate: read public.schema_migrations: %w", err)
	}
	tables := []string{"schema_migrations"}
	for _, m := range files {
		if !applied[m.Version] {
			continue
		}
		for _, match := range createdTable.FindAllStringSubmatch(m.SQL, -1) {
			if name := strings.ToLower(match[1]); !slices.Contains(tables, name) {
				tables = append(tables, name)
			}
		}
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("postgres: migrate: move into schema %s: %w", Schema, err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	for _, name := range tables {
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, "public."+name).Scan(&exists); err != nil {
			return fmt.Errorf("postgres: migrate: look up public.%s: %w", name, err)
		}
		if !exists {
			continue
		}
		if _, err := tx.Exec(ctx, `ALTER TABLE public.`+pgx.Identifier{name}.Sanitize()+` SET SCHEMA `+Schema); err != nil {
			return fmt.Errorf("postgres: migrate: move public.%s into schema %s: %w", name, Schema, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: migrate: move into schema %s: commit: %w", Schema, err)
	}
	return nil
}
