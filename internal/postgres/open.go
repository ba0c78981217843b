package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/domainguard/domainguard/internal/redact"
)

// Schema is the PostgreSQL schema that holds every domainguard table,
// the migrations table included, so that domainguard can share a database
// with a host application whose own tables (emails, domains, ...) live in
// public. Open sets it as the search_path of every connection, so queries
// name tables without it.
const Schema = "domainguard"

// Defaults used by Open and EnsureDatabase unless an Option changes them.
const (
	// DefaultMaxConns is the pool size.
	DefaultMaxConns = 10
	// DefaultMaxWait is how long Open keeps retrying a server that does not
	// answer yet (starting up, not listening, in recovery).
	DefaultMaxWait = 30 * time.Second
	// DefaultConnectTimeout bounds one connection attempt when the URL sets
	// no connect_timeout.
	DefaultConnectTimeout = 5 * time.Second
)

type options struct {
	maxConns int32
	maxWait  time.Duration
}

// Option changes how Open (and EnsureDatabase) connect.
type Option func(*options)

// WithMaxConns sets the pool size (default DefaultMaxConns). Values < 1 are
// ignored.
func WithMaxConns(n int) Option {
	return func(o *options) {
		if n >= 1 {
			o.maxConns = int32(n)
		}
	}
}

// WithMaxWait sets how long to keep retrying an unreachable server (default
// DefaultMaxWait). Zero means one attempt only.
func WithMaxWait(d time.Duration) Option {
	return func(o *options) {
		if d >= 0 {
			o.maxWait = d
		}
	}
}

func buildOptions(opts []Option) options {
	o := options{maxConns: DefaultMaxConns, maxWait: DefaultMaxWait}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// Open returns a connection pool for url, with search_path set to Schema on
// every connection, and pings the server, retrying with
// exponential backoff for up to the max wait (DefaultMaxWait) so that a role
// started together with its database survives the database's start-up.
// Authentication failures and a missing database fail at once.
//
// The URL is a libpq-style URL or keyword/value string. Without an sslmode
// pgx uses "prefer": TLS when the server offers it, plain otherwise.
func Open(ctx context.Context, url string, opts ...Option) (*pgxpool.Pool, error) {
	o := buildOptions(opts)
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse database url %s: %w", redact.ConnString(url), err)
	}
	cfg.MaxConns = o.maxConns
	cfg.MinConns = 0
	cfg.MaxConnLifetime = time.Hour
	cfg.MaxConnLifetimeJitter = 5 * time.Minute
	cfg.MaxConnIdleTime = 10 * time.Minute
	cfg.HealthCheckPeriod = time.Minute
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = DefaultConnectTimeout
	}
	// Only domainguard's schema: a table of the host's in public must never
	// be read or written by mistake. (Temporary tables and pg_catalog are
	// always searched.)
	cfg.ConnConfig.RuntimeParams["search_path"] = Schema
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: new pool for %s: %w", redact.ConnString(url), err)
	}
	if err := retryConnect(ctx, o.maxWait, pool.Ping); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: connect to %s: %w", redact.ConnString(url), err)
	}
	return pool, nil
}

// retryConnect calls try until it succeeds, fails permanently, ctx ends or
// maxWait has passed.
func retryConnect(ctx context.Context, maxWait time.Duration, try func(context.Context) error) error {
	if maxWait == 0 {
		return try(ctx)
	}
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 100 * time.Millisecond
	b.MaxInterval = 2 * time.Second
	b.MaxElapsedTime = maxWait
	var last error
	op := func() error {
		err := try(ctx)
		if err == nil {
			return nil
		}
		last = err
		if ctx.Err() != nil || isPermanent(err) {
			return backoff.Permanent(err)
		}
		return err
	}
	err := backoff.Retry(op, backoff.WithContext(b, ctx))
	if err != nil && last != nil && !errors.Is(err, last) {
		// Context ended while waiting: report the last server error too.
		return fmt.Errorf("%w (last error: %v)", err, last)
	}
	return err
}

// isPermanent reports errors that retrying cannot fix: bad credentials,
// a missing database or role, a malformed configuration.
func isPermanent(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "28"): // invalid authorization
			return true
		case pgErr.Code == "3D000": // invalid_catalog_name: database does not exist
			return true
		}
	}
	return false
}

// EnsureDatabase creates the database named in url when it does not exist,
// connecting to the same server's "postgres" database (or "template1" when
// that one is missing) as the same user. It reports whether it created the
// database; a concurrent creation by another process is not an error.
// Connection attempts are retried like Open's.
func EnsureDatabase(ctx context.Context, url string, opts ...Option) (created bool, err error) {
	o := buildOptions(opts)
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return false, fmt.Errorf("postgres: parse database url %s: %w", redact.ConnString(url), err)
	}
	name := cfg.Database
	if name == "" {
		return false, fmt.Errorf("postgres: database url %s names no database", redact.ConnString(url))
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	conn, err := connectMaintenance(ctx, cfg, o.maxWait)
	if err != nil {
		return false, fmt.Errorf("postgres: ensure database %q: %w", name, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))

	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return false, fmt.Errorf("postgres: ensure database %q: look up: %w", name, err)
	}
	if exists {
		return false, nil
	}
	if err := CreateDatabase(ctx, conn, name); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) {
			switch pgErr.Code {
			case "42P04": // duplicate_database: another process won the race
				return false, nil
			case "23505": // unique_violation on pg_database: a concurrent CREATE DATABASE won
				if pgErr.ConstraintName == "pg_database_datname_index" {
					return false, nil
				}
			case "42501": // insufficient_privilege
				return false, fmt.Errorf("postgres: create database %q: role %q may not create databases; create it yourself or grant CREATEDB: %w", name, cfg.User, err)
			}
		}
		return false, fmt.Errorf("postgres: create database %q: %w", name, err)
	}
	return true, nil
}

// CreateDatabase runs CREATE DATABASE name on conn. It retries "source
// database template1 is being accessed by other users" (55006), which
// concurrent CREATE DATABASE statements provoke (test packages, benchmarks
// and several processes starting at once).
func CreateDatabase(ctx context.Context, conn *pgx.Conn, name string) error {
	return CreateDatabaseFrom(ctx, conn, name, "")
}

// CreateDatabaseFrom runs CREATE DATABASE name TEMPLATE template on conn
// (template1 when template is empty), with CreateDatabase's retry: a
// template with a session still on it refuses to be copied (55006).
func CreateDatabaseFrom(ctx context.Context, conn *pgx.Conn, name, template string) error {
	stmt := "CREATE DATABASE " + pgx.Identifier{name}.Sanitize()
	if template != "" {
		stmt += " TEMPLATE " + pgx.Identifier{template}.Sanitize()
	}
	var err error
	for attempt := range 20 {
		_, err = conn.Exec(ctx, stmt)
		var pgErr *pgconn.PgError
		if err == nil || !errors.As(err, &pgErr) || pgErr.Code != "55006" {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(50*(attempt+1)) * time.Millisecond):
		}
	}
	return err
}

// connectMaintenance connects to the "postgres" database of the server cfg
// points at, or to "template1" when "postgres" does not exist.
func connectMaintenance(ctx context.Context, cfg *pgx.ConnConfig, maxWait time.Duration) (*pgx.Conn, error) {
	var conn *pgx.Conn
	var lastErr error
	for _, db := range []string{"postgres", "template1"} {
		c := cfg.Copy()
		c.Database = db
		err := retryConnect(ctx, maxWait, func(ctx context.Context) error {
			var err error
			conn, err = pgx.ConnectConfig(ctx, c)
			return err
		})
		if err == nil {
			return conn, nil
		}
		lastErr = err
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "3D000" {
			break
		}
	}
	return nil, lastErr
}
