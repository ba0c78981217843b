package testdb

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/domainguard/domainguard/internal/postgres"
	"github.com/domainguard/domainguard/schemas"
)

// templateLockKey serialises template builds across test processes on one
// server ("dgtmpl" in ASCII); the migrations' own lock is per database.
const templateLockKey int64 = 0x6467746d706c

// templateFormat is part of the template's hash: bump it when what a
// template holds changes without a migration changing (postgres.Migrate).
const templateFormat = "1"

var (
	templateMu    sync.Mutex
	templateBuilt = map[string]string{} // server URL → template name
)

// migratedTemplate returns the name of the template database holding
// schemas.Migrations on server, building it first if no process has.
func migratedTemplate(ctx context.Context, server string) (string, error) {
	templateMu.Lock()
	defer templateMu.Unlock()
	if name, ok := templateBuilt[server]; ok {
		return name, nil
	}
	name, err := templateName(schemas.Migrations)
	if err != nil {
		return "", err
	}
	if err := admin(ctx, server, func(conn *pgx.Conn) error { return ensureTemplate(ctx, conn, server, name, schemas.Migrations) }); err != nil {
		return "", err
	}
	templateBuilt[server] = name
	return name, nil
}

// templateName is dg_tmpl_ and 16 hex digits of the SHA-256 of the
// migrations (names and contents, in order), the schema and templateFormat.
func templateName(migrations fs.FS) (string, error) {
	files, err := postgres.LoadMigrations(migrations)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00", templateFormat, postgres.Schema)
	for _, m := range files {
		fmt.Fprintf(h, "%s\x00%d\x00%s", m.Version, len(m.SQL), m.SQL)
	}
	return "dg_tmpl_" + hex.EncodeToString(h.Sum(nil))[:16], nil
}

// ensureTemplate builds the template name holding migrations unless a
// complete one exists. A template is complete once it refuses connections,
// the last step of a build; an incomplete one (its builder died) is dropped
// and rebuilt.
func ensureTemplate(ctx context.Context, conn *pgx.Conn, server, name string, migrations fs.FS) error {
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, templateLockKey); err != nil {
		return fmt.Errorf("take template lock: %w", err)
	}
	// Closing conn (admin does) releases the lock too; this is the early path.
	defer func() {
		_, _ = conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, templateLockKey)
	}()
	var allowConn *bool
	err := conn.QueryRow(ctx, `SELECT datallowconn FROM pg_database WHERE datname = $1`, name).Scan(&allowConn)
	switch {
	case err == nil && allowConn != nil && !*allowConn:
		return nil
	case err == nil:
		if _, err := conn.Exec(ctx, "DROP DATABASE "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("drop unfinished template %s: %w", name, err)
		}
	case !errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("look up template %s: %w", name, err)
	}
	if err := postgres.CreateDatabase(ctx, conn, name); err != nil {
		return fmt.Errorf("create template %s: %w", name, err)
	}
	dbURL, err := withDatabase(server, name)
	if err != nil {
		return err
	}
	pool, err := postgres.Open(ctx, dbURL, postgres.WithMaxWait(5*time.Second))
	if err != nil {
		return fmt.Errorf("open template %s: %w", name, err)
	}
	_, err = postgres.Migrate(ctx, pool, migrations)
	pool.Close()
	if err != nil {
		return fmt.Errorf("migrate template %s: %w", name, err)
	}
	if _, err := conn.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{name}.Sanitize()+" WITH ALLOW_CONNECTIONS false"); err != nil {
		return fmt.Errorf("seal template %s: %w", name, err)
	}
	return nil
}
