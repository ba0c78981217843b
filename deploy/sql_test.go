package deploy_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"regexp"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/domainguard/domainguard/internal/testdb"
	"github.com/domainguard/domainguard/internal/testroles"
)

// sqlRoleName matches the role names roles.sql creates.
var sqlRoleName = regexp.MustCompile(`\bdomainguard_(producer|enforcer|operator)\b`)

// applyRoles applies deploy/sql/roles.sql to the database of pool with the
// role names suffixed (roles are cluster-wide: parallel or repeated runs
// must not share them) and drops the roles when the test ends. It returns
// the suffixed names by role.
func applyRoles(t *testing.T, pool *pgxpool.Pool) map[string]string {
	t.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	suffix := "_t" + hex.EncodeToString(b)
	names := map[string]string{}
	script := sqlRoleName.ReplaceAllStringFunc(string(readRepoFile(t, "deploy/sql/roles.sql")), func(m string) string {
		role := sqlRoleName.FindStringSubmatch(m)[1]
		names[role] = m + suffix
		return m + suffix
	})
	if len(names) != 3 {
		t.Fatalf("roles.sql names roles %v, want producer, enforcer and operator", names)
	}
	// Registered before the roles exist, so a failure half-way still drops
	// whatever was created. It runs before testdb drops the database (and
	// closes the pool): DROP OWNED revokes the roles' privileges in this
	// database, including CONNECT/TEMPORARY on it, so DROP ROLE succeeds.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, r := range names {
			var exists bool
			if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)`, r).Scan(&exists); err != nil {
				t.Errorf("look up role %s: %v", r, err)
				continue
			}
			if !exists {
				continue
			}
			id := pgx.Identifier{r}.Sanitize()
			if _, err := pool.Exec(ctx, `DROP OWNED BY `+id); err != nil {
				t.Errorf("drop owned by %s: %v", r, err)
			}
			if _, err := pool.Exec(ctx, `DROP ROLE `+id); err != nil {
				t.Errorf("drop role %s: %v", r, err)
			}
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Twice: the script must be idempotent (operators re-run it after
	// every migration).
	for i := range 2 {
		if _, err := pool.Exec(ctx, script); err != nil {
			t.Fatalf("apply roles.sql (run %d): %v", i+1, err)
		}
	}
	return names
}

// asRole runs stmt inside a transaction as role (SET LOCAL ROLE, so no
// login, password or pg_hba entry is involved) and rolls back.
func asRole(ctx context.Context, pool *pgxpool.Pool, role, stmt string) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SET LOCAL ROLE `+pgx.Identifier{role}.Sanitize()); err != nil {
		return err
	}
	_, err = tx.Exec(ctx, stmt)
	return err
}

func isDenied(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "42501" // insufficient_privilege
}

// TestSQLRoles applies deploy/sql/roles.sql to a fresh migrated database
// and runs each role's statements (the shapes the role packages use) as
// that role: what it needs succeeds, everything else is refused with
// insufficient_privilege.
func TestSQLRoles(t *testing.T) {
	pool, _ := testdb.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	roles := applyRoles(t, pool)

	// Rows for the statements to touch, inserted as the owner.
	if _, err := pool.Exec(ctx, `
INSERT INTO emails (user_id, email, domain, verified_at) VALUES ('u1', 'a@example.com', 'example.com', now() - interval '1 day');
INSERT INTO domains (name, next_check_at) VALUES ('example.com', now() - interval '1 hour');
INSERT INTO holds (id, domain, cause, reason, phase, observation, addresses)
  VALUES ('0190a7d5-0000-7000-8000-000000000001', 'example.com', 'cap', 'domain_released', 'released', '{}', '[]');
INSERT INTO outbox (id, subject, payload) VALUES ('0190a7d5-0000-7000-8000-000000000002', 'audit.domain.changed', '\x7b7d');
INSERT INTO audit_log (id, type, domain, data) VALUES ('0190a7d5-0000-7000-8000-000000000003', 'audit.domain.changed', 'example.com', '{}');
INSERT INTO lookup_budget (hour, count) VALUES (date_trunc('hour', now()), 1);`); err != nil {
		t.Fatalf("seed: %v", err)
	}

	type stmt struct{ name, sql string }
	allowed := map[string][]stmt{
		"producer": {
			{"mark processed", `INSERT INTO processed_messages (consumer, message_id) VALUES ('producer-intake', 'm1') ON CONFLICT DO NOTHING`},
			{"upsert verified address", `
INSERT INTO emails AS e (user_id, email, domain, verified, verified_at)
VALUES ('u1', 'a@example.com', 'example.com', true, now())
ON CONFLICT (user_id, email) DO UPDATE
   SET domain = excluded.domain, verified = true, verified_at = excluded.verified_at,
       unverified_at = NULL, unverify_reason = NULL, unverify_phase = NULL, updated_at = now()
 WHERE excluded.verified_at > e.verified_at
   AND (e.unverified_at IS NULL OR excluded.verified_at > e.unverified_at)`},
			{"insert new domain", `INSERT INTO domains (name, next_check_at) VALUES ('new.example', now()) ON CONFLICT (name) DO NOTHING`},
			{"upsert address under a private suffix", `
INSERT INTO emails AS e (user_id, email, domain, verified, verified_at, event_at, watch_name)
VALUES ('u3', 'c@acme.us.com', 'us.com', true, now(), now(), 'acme.us.com')
ON CONFLICT (user_id, email) DO UPDATE SET watch_name = excluded.watch_name`},
			{"insert private-suffix name", `INSERT INTO domains (name, next_check_at, private_suffix) VALUES ('acme.us.com', now(), true) ON CONFLICT (name) DO NOTHING`},
			{"fill watch names", `UPDATE emails SET watch_name = 'acme.us.com' WHERE watch_name IS NULL AND email = 'c@acme.us.com'`},
			{"lock backfill marker", `SELECT revision FROM backfills WHERE name = 'watch_name' FOR UPDATE`},
			{"record backfill", `UPDATE backfills SET revision = 'psl r1', completed_at = now() WHERE name = 'watch_name'`},
			{"delete removed address", `DELETE FROM emails WHERE user_id = 'u1' AND email = 'a@example.com'`},
			{"read due domains", `SELECT name, phase, evidence, next_check_at FROM domains WHERE next_check_at <= now() ORDER BY next_check_at, name`},
			{"lease and count budget", `
WITH leased AS (
	UPDATE domains d SET next_check_at = now() + interval '6 hours', last_enqueued_at = now()
	 WHERE d.name = 'example.com' AND d.next_check_at <= now() RETURNING 1)
INSERT INTO lookup_budget (hour, count) SELECT date_trunc('hour', now()), (SELECT count(*) FROM leased)
ON CONFLICT (hour) DO UPDATE SET count = lookup_budget.count + excluded.count`},
			{"prune budget", `DELETE FROM lookup_budget WHERE hour < now() - interval '7 days'`},
			{"lock an address's domains to rekey it", `SELECT 1 FROM domains d WHERE d.name IN ('example.com') ORDER BY d.name FOR SHARE OF d`},
			{"rekey address", `UPDATE emails SET email = 'a@example.com', updated_at = now() WHERE user_id = 'u1' AND email = 'a@example.com.'`},
			{"rekey tombstone", `
WITH old AS (DELETE FROM email_removals WHERE user_id = 'u1' AND email = 'a@example.com.' RETURNING removed_at, recorded_at)
INSERT INTO email_removals AS r (user_id, email, removed_at, recorded_at) SELECT 'u1', 'a@example.com', removed_at, recorded_at FROM old
ON CONFLICT (user_id, email) DO UPDATE SET removed_at = greatest(r.removed_at, excluded.removed_at), recorded_at = greatest(r.recorded_at, excluded.recorded_at)`},
			{"import temp table", `CREATE TEMP TABLE import_rows (user_id text, email text, domain text, verified_at timestamptz) ON COMMIT DELETE ROWS`},
			{"sweep lock", `SELECT pg_try_advisory_lock(42)`},
		},
		"enforcer": {
			{"read verified addresses", `SELECT user_id, email, verified, verified_at FROM emails WHERE domain = 'example.com' AND verified`},
			{"read addresses of a watch name", `SELECT watch_name, user_id, email, verified, verified_at FROM emails WHERE watch_name = ANY('{acme.us.com}') AND verified`},
			{"unverify", `UPDATE emails SET verified = false, unverified_at = now(), unverify_reason = 'domain_released', unverify_phase = 'released', updated_at = now() WHERE user_id = 'u1' AND email = 'a@example.com'`},
			{"add domain", `INSERT INTO domains (name, next_check_at) VALUES ('new.example', now()) ON CONFLICT (name) DO NOTHING`},
			{"lock domain", `SELECT phase, evidence, observed_at FROM domains WHERE name = 'example.com' FOR UPDATE`},
			{"update domain state", `UPDATE domains SET phase = 'released', evidence = '{}', observed_at = now(), last_checked_at = now(), next_check_at = now() + interval '1 day', check_failures = 0 WHERE name = 'example.com'`},
			{"record observation", `INSERT INTO domain_observations (domain, phase, evidence, observed_at, applied, previous_phase, turned_lapsed) VALUES ('example.com', 'released', '{}', now(), true, 'active', true)`},
			{"audit", `INSERT INTO audit_log (id, type, domain, data) VALUES ('0190a7d5-0000-7000-8000-0000000000a1', 'audit.email.unverified', 'example.com', '{}') ON CONFLICT (id) DO NOTHING`},
			{"outbox insert", `INSERT INTO outbox (id, subject, payload) VALUES ('0190a7d5-0000-7000-8000-0000000000a2', 'audit.email.unverified', '\x7b7d')`},
			{"outbox relay", `UPDATE outbox SET sent_at = now() WHERE id = '0190a7d5-0000-7000-8000-000000000002' AND sent_at IS NULL`},
			{"outbox lag", `SELECT COALESCE((SELECT extract(epoch FROM now() - min(created_at)) FROM outbox WHERE sent_at IS NULL), 0)`},
			{"processed", `INSERT INTO processed_messages (consumer, message_id) VALUES ('enforcer', 'm1')`},
			{"hold", `INSERT INTO holds (id, domain, cause, reason, phase, observation, addresses) VALUES ('0190a7d5-0000-7000-8000-0000000000a3', 'example.com', 'cap', 'domain_released', 'released', '{}', '[]')`},
			{"approve hold", `UPDATE holds SET status = 'approved', decided_at = now(), decided_by = 'ops' WHERE id = '0190a7d5-0000-7000-8000-000000000001'`},
			{"lock hold", `SELECT id FROM holds WHERE id = '0190a7d5-0000-7000-8000-000000000001' FOR UPDATE`},
			{"open breaker", `UPDATE breaker SET open = true, opened_at = now(), reason = 'test' WHERE id = 1`},
			{"resume breaker", `UPDATE breaker SET open = false, resumed_at = now(), resumed_by = 'ops' WHERE id = 1`},
			{"outbox notify", `SELECT pg_notify('domainguard_outbox', '')`},
		},
		"operator": {
			{"emails", `SELECT count(*) FROM emails`},
			{"domains", `SELECT count(*) FROM domains`},
			{"observations", `SELECT count(*) FROM domain_observations`},
			{"audit log", `SELECT count(*) FROM audit_log`},
			{"outbox", `SELECT count(*) FROM outbox`},
			{"processed", `SELECT count(*) FROM processed_messages`},
			{"holds", `SELECT count(*) FROM holds`},
			{"breaker", `SELECT count(*) FROM breaker`},
			{"budget", `SELECT count(*) FROM lookup_budget`},
			{"backfills", `SELECT count(*) FROM backfills`},
		},
	}
	denied := map[string][]stmt{
		"producer": {
			{"set phase", `UPDATE domains SET phase = 'released' WHERE name = 'example.com'`},
			{"set evidence", `UPDATE domains SET evidence = '{}' WHERE name = 'example.com'`},
			{"unmark private-suffix name", `UPDATE domains SET private_suffix = false WHERE name = 'example.com'`},
			{"delete domain", `DELETE FROM domains WHERE name = 'example.com'`},
			{"read audit", `SELECT count(*) FROM audit_log`},
			{"write audit", `INSERT INTO audit_log (id, type, data) VALUES ('0190a7d5-0000-7000-8000-0000000000b1', 'audit.email.unverified', '{}')`},
			{"write outbox", `INSERT INTO outbox (id, subject, payload) VALUES ('0190a7d5-0000-7000-8000-0000000000b2', 'audit.email.unverified', '\x7b7d')`},
			{"approve hold", `UPDATE holds SET status = 'approved' WHERE id = '0190a7d5-0000-7000-8000-000000000001'`},
			{"resume breaker", `UPDATE breaker SET open = false WHERE id = 1`},
			{"fake observation", `INSERT INTO domain_observations (domain, phase, evidence, observed_at, applied) VALUES ('example.com', 'active', '{}', now(), true)`},
			{"rewrite created_at", `UPDATE emails SET created_at = now()`},
			{"truncate emails", `TRUNCATE emails`},
			{"add backfill marker", `INSERT INTO backfills (name, revision) VALUES ('other', 'x')`},
			{"forget backfill marker", `DELETE FROM backfills`},
			{"rename backfill marker", `UPDATE backfills SET name = 'other'`},
		},
		"enforcer": {
			{"create address", `INSERT INTO emails (user_id, email, domain, verified_at) VALUES ('u2', 'b@example.com', 'example.com', now())`},
			{"delete address", `DELETE FROM emails WHERE user_id = 'u1'`},
			{"re-date verification", `UPDATE emails SET verified_at = now() WHERE user_id = 'u1'`},
			{"move watch name", `UPDATE emails SET watch_name = 'other.us.com' WHERE user_id = 'u1'`},
			{"re-verify", `UPDATE emails SET verified = false WHERE user_id = 'u1'; UPDATE emails SET verified = true WHERE user_id = 'u1'`},
			{"change address", `UPDATE emails SET email = 'x@evil.example' WHERE user_id = 'u1'`},
			{"delete domain", `DELETE FROM domains WHERE name = 'example.com'`},
			{"rewrite audit", `UPDATE audit_log SET data = '{}'`},
			{"delete audit", `DELETE FROM audit_log`},
			{"rewrite outbox payload", `UPDATE outbox SET payload = '\x00'`},
			{"delete outbox", `DELETE FROM outbox`},
			{"rewrite hold", `UPDATE holds SET addresses = '[]'`},
			{"delete hold", `DELETE FROM holds`},
			{"forget processed", `DELETE FROM processed_messages`},
			{"budget", `SELECT count(*) FROM lookup_budget`},
			{"truncate observations", `TRUNCATE domain_observations`},
		},
		"operator": {
			{"unverify", `UPDATE emails SET verified = false`},
			{"add hold", `INSERT INTO holds (id, domain, cause, reason, phase, observation, addresses) VALUES ('0190a7d5-0000-7000-8000-0000000000c1', 'x', 'cap', 'r', 'released', '{}', '[]')`},
			{"approve hold", `UPDATE holds SET status = 'approved'`},
			{"resume breaker", `UPDATE breaker SET open = false`},
			{"delete domain", `DELETE FROM domains`},
			{"truncate audit", `TRUNCATE audit_log`},
			{"lock domain", `SELECT name FROM domains FOR UPDATE`},
		},
	}
	for role, stmts := range allowed {
		for _, s := range stmts {
			if err := asRole(ctx, pool, roles[role], s.sql); err != nil {
				t.Errorf("%s may %s: %v", role, s.name, err)
			}
		}
	}
	for role, stmts := range denied {
		for _, s := range stmts {
			if err := asRole(ctx, pool, roles[role], s.sql); !isDenied(err) {
				t.Errorf("%s must not %s: got %v, want insufficient_privilege", role, s.name, err)
			}
		}
	}

	// Every table of the schema is readable by the operator and reachable
	// by at least one role: a table a migration adds must be listed in
	// roles.sql (the operator's grant covers tables existing when it ran).
	rows, err := pool.Query(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = 'domainguard'`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	for _, table := range tables {
		var ok bool
		if err := pool.QueryRow(ctx, `SELECT has_table_privilege($1, $2, 'SELECT')`, roles["operator"], "domainguard."+table).Scan(&ok); err != nil {
			t.Fatal(err)
		}
		if !ok {
			t.Errorf("operator cannot read table %s", table)
		}
	}
	if len(tables) < 5 {
		t.Errorf("schema domainguard holds %d tables, want every table there", len(tables))
	}
	var public int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = 'public'`).Scan(&public); err != nil || public != 0 {
		t.Errorf("schema public holds %d tables (err %v), want none: domainguard keeps to its own schema", public, err)
	}
}

// TestPruningUnderTheShippedRoles (#14 item 9) logs in as users of the
// shipped producer and enforcer roles and prunes what the roles' code
// prunes (enforcer.Relay.Prune, the producer's sweeper): old sent outbox
// rows, old processed-message ids of both consumers and old removal
// tombstones go; unsent outbox rows and recent ids stay; a plain DELETE is
// still refused.
func TestPruningUnderTheShippedRoles(t *testing.T) {
	pool, dbURL := testdb.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	roles := testroles.ApplySQLRoles(t, pool, dbURL)
	producer, enforcer := roles.Login(t, "producer"), roles.Login(t, "enforcer")
	if _, err := pool.Exec(ctx, `
INSERT INTO outbox (id, subject, payload, created_at, sent_at) SELECT gen_random_uuid(), 'audit.domain.changed', '\x7b7d',
  now() - interval '30 days', now() - interval '10 days' FROM generate_series(1, 100);
INSERT INTO outbox (id, subject, payload, created_at) VALUES (gen_random_uuid(), 'audit.email.unverified', '\x7b7d', now() - interval '30 days');
INSERT INTO processed_messages (consumer, message_id, processed_at)
  SELECT c, c || g, now() - interval '40 days' FROM generate_series(1, 100) g, unnest(ARRAY['enforcer', 'producer-intake']) c;
INSERT INTO processed_messages (consumer, message_id) VALUES ('enforcer', 'recent'), ('producer-intake', 'recent');
INSERT INTO email_removals (user_id, email, removed_at, recorded_at)
  SELECT 'u' || g, 'a@example.com', now() - interval '100 days', now() - interval '100 days' FROM generate_series(1, 50) g;`); err != nil {
		t.Fatalf("seed: %v", err)
	}
	for _, tc := range []struct {
		pool *pgxpool.Pool
		sql  string
		args []any
	}{
		{enforcer, `SELECT prune_outbox($1::interval)`, []any{7 * 24 * time.Hour}},
		{enforcer, `SELECT prune_processed_messages($1, $2)`, []any{"enforcer", time.Now().Add(-30 * 24 * time.Hour)}},
		{producer, `SELECT prune_processed_messages($1, $2)`, []any{"producer-intake", time.Now().Add(-30 * 24 * time.Hour)}},
		{producer, `SELECT prune_email_removals($1)`, []any{time.Now().Add(-90 * 24 * time.Hour)}},
	} {
		if _, err := tc.pool.Exec(ctx, tc.sql, tc.args...); err != nil {
			t.Fatalf("%s: %v", tc.sql, err)
		}
	}
	count := func(q string) int {
		var n int
		if err := pool.QueryRow(ctx, q).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(`SELECT count(*) FROM outbox`); n != 1 {
		t.Errorf("outbox holds %d rows after pruning, want the 1 unsent one", n)
	}
	if n := count(`SELECT count(*) FROM processed_messages`); n != 2 {
		t.Errorf("processed_messages holds %d rows after pruning, want the 2 recent ones", n)
	}
	if n := count(`SELECT count(*) FROM email_removals`); n != 0 {
		t.Errorf("email_removals holds %d rows after pruning, want 0", n)
	}
	// The functions never delete unsent or recent rows, whatever retention
	// a caller passes, and the roles still cannot delete directly.
	if _, err := enforcer.Exec(ctx, `SELECT prune_outbox('0 seconds'::interval)`); err != nil {
		t.Fatal(err)
	}
	if _, err := enforcer.Exec(ctx, `SELECT prune_processed_messages('enforcer', now() + interval '1 day')`); err != nil {
		t.Fatal(err)
	}
	if n := count(`SELECT count(*) FROM outbox`) + count(`SELECT count(*) FROM processed_messages`); n != 3 {
		t.Errorf("%d rows left after pruning with zero retention, want 3 (unsent and recent rows stay)", n)
	}
	for _, q := range []string{`DELETE FROM outbox`, `DELETE FROM processed_messages`} {
		if _, err := enforcer.Exec(ctx, q); !isDenied(err) {
			t.Errorf("enforcer %s: %v, want insufficient_privilege", q, err)
		}
	}
	if _, err := producer.Exec(ctx, `SELECT prune_outbox('1 day'::interval)`); !isDenied(err) {
		t.Errorf("producer prunes the outbox: %v, want insufficient_privilege", err)
	}
}
