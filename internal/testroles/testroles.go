// Package testroles runs tests under the shipped least-privilege
// configuration: the PostgreSQL roles of deploy/sql/roles.sql (applied to a
// test database with per-test role names, with a login user in each) and
// the NATS users of deploy/nats/auth.conf (a nats-server configuration
// that includes it, with known passwords). End-to-end tests start the
// domainguard binary with the environment RoleEnv returns, so each process
// holds exactly the rights a production deployment gives its role.
package testroles

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/domainguard/domainguard/internal/postgres"
)

// NATSUsers maps each user of deploy/nats/auth.conf to the variable its
// password is read from.
var NATSUsers = map[string]string{
	"producer": "NATS_PRODUCER_PASSWORD",
	"checker":  "NATS_CHECKER_PASSWORD",
	"enforcer": "NATS_ENFORCER_PASSWORD",
	"host-app": "NATS_HOST_APP_PASSWORD",
	"notifier": "NATS_NOTIFIER_PASSWORD",
	"operator": "NATS_OPERATOR_PASSWORD",
}

// NATSPassword is the password tests give user.
func NATSPassword(user string) string { return "pw-" + user }

// NATSServerEnv is the environment a nats-server process needs to read
// auth.conf: every user's password variable.
func NATSServerEnv() []string {
	var env []string
	for user, v := range NATSUsers {
		env = append(env, v+"="+NATSPassword(user))
	}
	return env
}

// RepoPath returns the absolute path of a file of this repository.
func RepoPath(rel string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", filepath.FromSlash(rel))
}

// WriteNATSConfig writes a nats-server configuration into dir that listens
// on 127.0.0.1:port, stores JetStream data under dir and includes a copy of
// deploy/nats/auth.conf. It returns the file's path; run the server with
// NATSServerEnv in its environment.
func WriteNATSConfig(t testing.TB, dir string, port int) string {
	t.Helper()
	auth, err := os.ReadFile(RepoPath("deploy/nats/auth.conf"))
	if err != nil {
		t.Fatalf("testroles: read auth.conf: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "auth.conf"), auth, 0o600); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf("listen: 127.0.0.1:%d\nmax_payload: 1MB\njetstream {\n  store_dir: %q\n}\ninclude ./auth.conf\n",
		port, filepath.Join(dir, "jetstream"))
	path := filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// sqlRoleName matches the role names roles.sql creates.
var sqlRoleName = regexp.MustCompile(`\bdomainguard_(producer|enforcer|operator)\b`)

// SQLRoles are the shipped PostgreSQL roles applied to one test database.
type SQLRoles struct {
	// Groups maps producer, enforcer and operator to the (suffixed) NOLOGIN
	// role names roles.sql created.
	Groups map[string]string
	// Script is roles.sql with the suffixed names, to re-apply it.
	Script string
	pool   *pgxpool.Pool
	dbURL  string
	suffix string
}

// ApplySQLRoles applies deploy/sql/roles.sql to the database of pool
// (twice: it must be idempotent) with the role names suffixed, since roles
// are cluster-wide and tests run in parallel. Roles and login users are
// dropped when the test ends (before testdb drops the database).
func ApplySQLRoles(t testing.TB, pool *pgxpool.Pool, dbURL string) *SQLRoles {
	t.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	r := &SQLRoles{Groups: map[string]string{}, pool: pool, dbURL: dbURL, suffix: "_t" + hex.EncodeToString(b)}
	raw, err := os.ReadFile(RepoPath("deploy/sql/roles.sql"))
	if err != nil {
		t.Fatalf("testroles: read roles.sql: %v", err)
	}
	r.Script = sqlRoleName.ReplaceAllStringFunc(string(raw), func(m string) string {
		role := sqlRoleName.FindStringSubmatch(m)[1]
		r.Groups[role] = m + r.suffix
		return m + r.suffix
	})
	if len(r.Groups) != 3 {
		t.Fatalf("testroles: roles.sql names roles %v, want producer, enforcer and operator", r.Groups)
	}
	t.Cleanup(func() { r.drop(t) })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 2 {
		if _, err := pool.Exec(ctx, r.Script); err != nil {
			t.Fatalf("testroles: apply roles.sql (run %d): %v", i+1, err)
		}
	}
	return r
}

// loginName is the login user of role's group.
func (r *SQLRoles) loginName(role string) string { return "dgt_" + role + r.suffix }

// LoginURL creates (once) a login user in role's group and returns the
// test database's URL connecting as that user (the test server trusts
// loopback connections, so no password is involved).
func (r *SQLRoles) LoginURL(t testing.TB, role string) string {
	t.Helper()
	group, ok := r.Groups[role]
	if !ok {
		t.Fatalf("testroles: no SQL role %q", role)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	login := r.loginName(role)
	if _, err := r.pool.Exec(ctx, fmt.Sprintf(`DO $$ BEGIN
		IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = %s) THEN
			CREATE ROLE %s LOGIN IN ROLE %s;
		END IF; END $$`, quoteLiteral(login), pgx.Identifier{login}.Sanitize(), pgx.Identifier{group}.Sanitize())); err != nil {
		t.Fatalf("testroles: create login %s: %v", login, err)
	}
	u, err := url.Parse(r.dbURL)
	if err != nil {
		t.Fatalf("testroles: parse %s: %v", r.dbURL, err)
	}
	u.User = url.User(login)
	return u.String()
}

// Login opens a pool on the test database as role's login user, the way
// the role's process connects (postgres.Open: search_path domainguard),
// closed when the test ends.
func (r *SQLRoles) Login(t testing.TB, role string) *pgxpool.Pool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := postgres.Open(ctx, r.LoginURL(t, role))
	if err != nil {
		t.Fatalf("testroles: log in as %s: %v", role, err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func (r *SQLRoles) drop(t testing.TB) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var names []string
	for role, g := range r.Groups {
		names = append(names, r.loginName(role), g)
	}
	// Sessions of login users (processes a test killed) would block DROP ROLE.
	_, _ = r.pool.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = ANY($1)`, names)
	for _, n := range names {
		var exists bool
		if err := r.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)`, n).Scan(&exists); err != nil {
			t.Errorf("testroles: look up role %s: %v", n, err)
			continue
		}
		if !exists {
			continue
		}
		id := pgx.Identifier{n}.Sanitize()
		if _, err := r.pool.Exec(ctx, `DROP OWNED BY `+id); err != nil {
			t.Errorf("testroles: drop owned by %s: %v", n, err)
		}
		if _, err := r.pool.Exec(ctx, `DROP ROLE `+id); err != nil {
			t.Errorf("testroles: drop role %s: %v", n, err)
		}
	}
}
