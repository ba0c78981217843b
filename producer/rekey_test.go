package producer

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/domainguard/domainguard/internal/postgres"
	"github.com/domainguard/domainguard/internal/testroles"
	"github.com/domainguard/domainguard/internal/testwait"
	"github.com/domainguard/domainguard/schemas"
)

// One mailbox in the forms a host may send it (U-label, A-label in upper
// case, trailing dot) is one address: a re-verification in another form
// updates it, a removal in another form deletes it, and the removal's
// tombstone guards the one key against an older verification in yet
// another form.
func TestIntakeKeysEveryFormOfAnAddressAlike(t *testing.T) {
	e := newEnv(t, nil)
	send := e.sender(t)
	v1 := t0.Add(-2 * time.Hour)
	send(schemas.SubjectEmailVerified, "v1", v1, verified("u1", "Alice@bücher.de", v1))
	send(schemas.SubjectEmailVerified, "v2", v1.Add(time.Minute), verified("u1", "Alice@XN--BCHER-KVA.DE.", v1.Add(time.Minute)))
	if n := countRows(t, e.pool, `SELECT count(*) FROM emails WHERE user_id = 'u1'`); n != 1 {
		t.Errorf("%d rows for one address verified in two forms, want 1", n)
	}
	if r, ok := readEmail(t, e.pool, "u1", "Alice@xn--bcher-kva.de"); !ok || !r.verifiedAt.Equal(v1.Add(time.Minute)) {
		t.Errorf("address under the normalised key: %+v, %v; want verified at %s", r, ok, v1.Add(time.Minute))
	}
	removedAt := v1.Add(time.Hour)
	send(schemas.SubjectEmailRemoved, "r1", removedAt, schemas.EmailRemoved{UserID: "u1", Email: "Alice@BÜCHER.de."})
	if n := countRows(t, e.pool, `SELECT count(*) FROM emails WHERE user_id = 'u1'`); n != 0 {
		t.Errorf("a removal in another form left %d rows of the address", n)
	}
	send(schemas.SubjectEmailVerified, "v-stale", removedAt.Add(-time.Second), verified("u1", "Alice@bücher.de.", removedAt.Add(-time.Second)))
	if n := countRows(t, e.pool, `SELECT count(*) FROM emails WHERE user_id = 'u1'`); n != 0 {
		t.Errorf("%d rows of the address after its removal and an older verification in a third form, want 0", n)
	}
}

// Rows stored under the key of before (domain part only lower-cased) are
// rekeyed by the producer's SQL role: moved, merged with a row under the
// current key (an unverification survives the merge), removed where a
// removal in another form was newer; tombstones are merged too. A second
// pass finds nothing, through the partial indexes.
func TestRekeyAddresses(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	e1, e2 := t0.Add(-48*time.Hour), t0.Add(-24*time.Hour)
	// Seeded as the owner, the way the old code stored them.
	for _, seed := range []struct {
		sql  string
		args []any
	}{
		{`
INSERT INTO emails (user_id, email, domain, verified, verified_at, event_at, email_as_sent) VALUES
  ('u1', 'a@bücher.de', 'xn--bcher-kva.de', true, $1, $1, 'a@BÜCHER.de'),
  -- u2: the old row is older and unverified by domainguard, the current one verified again after that.
  ('u2', 'b@example.com.', 'example.com', false, $1, $1, 'b@Example.com.'),
  ('u2', 'b@example.com', 'example.com', true, $2, $2, 'b@example.com'),
  -- u3: the old row is newer and verified, the current one unverified after that verification.
  ('u3', 'c@bücher.de', 'xn--bcher-kva.de', true, $2, $2, 'c@Bücher.de'),
  ('u3', 'c@xn--bcher-kva.de', 'xn--bcher-kva.de', false, $1, $1, 'c@xn--bcher-kva.de'),
  -- u4: verified in one form, removed later in another (the removal missed it).
  ('u4', 'd@xn--bcher-kva.de', 'xn--bcher-kva.de', true, $1, $1, 'd@xn--bcher-kva.de'),
  -- u6: a domain that does not normalise, u7: a non-ASCII local part only.
  ('u6', 'f@ü', 'ü', true, $1, $1, NULL),
  ('u7', 'ü@example.com', 'example.com', true, $1, $1, NULL),
  -- u8: under a private suffix, stored before watch_name was kept.
  ('u8', 'g@bücher.us.com', 'us.com', true, $1, $1, NULL),
  -- u9: verified after a removal sent in another form: the removal is older.
  ('u9', 'h@xn--bcher-kva.de', 'xn--bcher-kva.de', true, $2, $2, NULL)`, []any{e1, e2}},
		{`
UPDATE emails SET unverified_at = $1::timestamptz + interval '1 hour', unverify_reason = 'domain_released', unverify_phase = 'released'
 WHERE user_id = 'u2' AND email = 'b@example.com.'`, []any{e1}},
		{`
UPDATE emails SET unverified_at = $1::timestamptz + interval '2 hours', unverify_reason = 'domain_expired', unverify_phase = 'expired'
 WHERE user_id = 'u3' AND email = 'c@xn--bcher-kva.de'`, []any{e2}},
		{`
INSERT INTO domains (name, next_check_at) VALUES ('xn--bcher-kva.de', $1), ('example.com', $1)`, []any{e1}},
		{`
INSERT INTO email_removals (user_id, email, removed_at) VALUES
  ('u4', 'd@bücher.de.', $2),
  ('u5', 'e@example.com.', $2),
  ('u5', 'e@example.com', $1),
  ('u9', 'h@bücher.de', $1)`, []any{e1, e2}},
	} {
		if _, err := e.pool.Exec(ctx, seed.sql, seed.args...); err != nil {
			t.Fatalf("seed: %v", err)
		}
	}

	roles := testroles.ApplySQLRoles(t, e.pool, e.pool.Config().ConnString())
	rolePool, err := postgres.Open(ctx, roles.LoginURL(t, "producer"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rolePool.Close)
	cfg := e.cfg
	cfg.Pool = rolePool
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.RekeyAddresses(ctx)
	if err != nil {
		t.Fatalf("RekeyAddresses as the producer role: %v", err)
	}
	if want := (RekeyResult{Tombstones: 3, Addresses: 4, Merged: 2, Removed: 1, Kept: 1}); res != want {
		t.Errorf("result %+v, want %+v", res, want)
	}

	type row struct {
		Email, AsSent, Reason string
		Verified              bool
		EventAt               time.Time
	}
	rows := map[string]row{}
	r, err := e.pool.Query(ctx, `SELECT user_id, email, COALESCE(email_as_sent, ''), COALESCE(unverify_reason, ''), verified, event_at FROM emails`)
	if err != nil {
		t.Fatal(err)
	}
	for r.Next() {
		var user string
		var x row
		if err := r.Scan(&user, &x.Email, &x.AsSent, &x.Reason, &x.Verified, &x.EventAt); err != nil {
			t.Fatal(err)
		}
		if _, dup := rows[user]; dup {
			t.Errorf("user %s has two rows after rekeying", user)
		}
		rows[user] = x
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	want := map[string]row{
		"u1": {Email: "a@xn--bcher-kva.de", AsSent: "a@BÜCHER.de", Verified: true, EventAt: e1},
		// The newer row stays; an unverification stays unless a later
		// verification (u2's) re-verified the address, as at intake.
		"u2": {Email: "b@example.com", AsSent: "b@example.com", Verified: true, EventAt: e2},
		"u3": {Email: "c@xn--bcher-kva.de", AsSent: "c@Bücher.de", Reason: "domain_expired", EventAt: e2},
		"u6": {Email: "f@ü", Verified: true, EventAt: e1},
		"u7": {Email: "ü@example.com", Verified: true, EventAt: e1},
		"u8": {Email: "g@xn--bcher-kva.us.com", Verified: true, EventAt: e1},
		"u9": {Email: "h@xn--bcher-kva.de", Verified: true, EventAt: e2},
	}
	for user, w := range want {
		got, ok := rows[user]
		got.EventAt = got.EventAt.UTC()
		if !ok || got.Email != w.Email || got.AsSent != w.AsSent || got.Reason != w.Reason || got.Verified != w.Verified || !got.EventAt.Equal(w.EventAt) {
			t.Errorf("%s: %+v (present %v), want %+v", user, got, ok, w)
		}
	}
	if n := countRows(t, e.pool, `SELECT count(*) FROM emails WHERE user_id = 'u8' AND watch_name = 'xn--bcher-kva.us.com'`); n != 1 {
		t.Error("u8: the rekeyed address under a private suffix has no watch name")
	}
	if _, ok := rows["u4"]; ok {
		t.Error("u4: the address removed (in another form) after its last verification is still there")
	}
	var tombs []string
	tr, err := e.pool.Query(ctx, `SELECT user_id || ' ' || email || ' ' || to_char(removed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24') FROM email_removals ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	for tr.Next() {
		var s string
		if err := tr.Scan(&s); err != nil {
			t.Fatal(err)
		}
		tombs = append(tombs, s)
	}
	e2s := e2.UTC().Format("2006-01-02 15")
	e1s := e1.UTC().Format("2006-01-02 15")
	if got, want := strings.Join(tombs, "; "), "u4 d@xn--bcher-kva.de "+e2s+"; u5 e@example.com "+e2s+"; u9 h@xn--bcher-kva.de "+e1s; got != want {
		t.Errorf("tombstones %q, want %q", got, want)
	}

	// Nothing left to do, and the candidates come from the partial indexes.
	if res, err := p.RekeyAddresses(ctx); err != nil || res != (RekeyResult{Kept: 1}) {
		t.Errorf("second pass: %+v, %v; want only the row that does not normalise", res, err)
	}
	// The pass's predicate is the partial indexes' (else the planner
	// cannot use them): PostgreSQL prints both the same.
	for _, table := range []string{"emails", "email_removals"} {
		var indexPred, plan string
		if err := e.pool.QueryRow(ctx, `SELECT pg_get_expr(indpred, indrelid) FROM pg_index WHERE indexrelid = $1::regclass`,
			table+"_rekey_idx").Scan(&indexPred); err != nil {
			t.Fatalf("%s_rekey_idx: %v", table, err)
		}
		if err := e.pool.QueryRow(ctx, `EXPLAIN (FORMAT JSON) SELECT 1 FROM `+table+` WHERE `+rekeyPredicate).Scan(&plan); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(plan, `"Filter": "`+strings.ReplaceAll(indexPred, `\`, `\\`)+`"`) &&
			!strings.Contains(plan, `"Index Cond"`) && !strings.Contains(plan, table+"_rekey_idx") {
			t.Errorf("rekeyPredicate is not the predicate of %s_rekey_idx (migration 0018):\nindex: %s\nplan: %s", table, indexPred, plan)
		}
	}
}

// The sweeper rekeys at its start.
func TestSweeperStartRekeys(t *testing.T) {
	e := newEnv(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	if _, err := e.pool.Exec(ctx, `INSERT INTO emails (user_id, email, domain, verified_at) VALUES ('u1', 'a@example.com.', 'example.com', $1)`, t0); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- e.p.RunSweeper(ctx) }()
	testwait.For(t, 15*time.Second, "the address rekeyed", func() bool {
		return countRows(t, e.pool, `SELECT count(*) FROM emails WHERE email = 'a@example.com'`) == 1
	})
	cancel()
	if err := <-done; err != nil {
		t.Errorf("RunSweeper: %v", err)
	}
}

func TestMergeAddresses(t *testing.T) {
	at := func(h int) *time.Time { x := t0.Add(time.Duration(h) * time.Hour); return &x }
	reason := func(s string) *string { return &s }
	ok := storedAddress{Verified: true, EventAt: at(2)}
	for _, tt := range []struct {
		name           string
		current, old   storedAddress
		verified       bool
		reason         string
		eventAtFromOld bool
	}{
		{"both verified: the newer event", ok, storedAddress{Verified: true, EventAt: at(3)}, true, "", true},
		{"no event times: current", storedAddress{Verified: true}, storedAddress{Verified: true}, true, "", false},
		{"older unverified one stays unverified", ok, storedAddress{EventAt: at(1), UnverifiedAt: at(1), UnverifyReason: reason("domain_released")}, false, "domain_released", false},
		{"verified again after the unverification", storedAddress{Verified: true, VerifiedAt: *at(2), EventAt: at(2)},
			storedAddress{EventAt: at(0), UnverifiedAt: at(1), UnverifyReason: reason("domain_released")}, true, "", false},
		{"verified before the unverification", storedAddress{Verified: true, VerifiedAt: *at(0), EventAt: at(2)},
			storedAddress{EventAt: at(0), UnverifiedAt: at(1), UnverifyReason: reason("domain_released")}, false, "domain_released", false},
		{"the later verification counts, not the newer event", // the host's event times out of step with verified_at
			storedAddress{EventAt: at(5), UnverifiedAt: at(2), UnverifyReason: reason("domain_expired")},
			storedAddress{Verified: true, VerifiedAt: *at(3), EventAt: at(4)}, true, "", false},
		{"newer unverified one", ok, storedAddress{EventAt: at(3), UnverifiedAt: at(3), UnverifyReason: reason("domain_expired")}, false, "domain_expired", true},
		{"both unverified: the later unverification",
			storedAddress{EventAt: at(3), UnverifiedAt: at(1), UnverifyReason: reason("a")},
			storedAddress{EventAt: at(1), UnverifiedAt: at(2), UnverifyReason: reason("b")}, false, "b", false},
	} {
		got := mergeAddresses(tt.current, tt.old)
		gotReason := ""
		if got.UnverifyReason != nil {
			gotReason = *got.UnverifyReason
		}
		wantEvent := tt.current.EventAt
		if tt.eventAtFromOld {
			wantEvent = tt.old.EventAt
		}
		if got.Verified != tt.verified || gotReason != tt.reason || got.EventAt != wantEvent {
			t.Errorf("%s: verified %v reason %q event %v; want %v %q %v", tt.name, got.Verified, gotReason, got.EventAt, tt.verified, tt.reason, wantEvent)
		}
		// The later verification of the two counts (intake's order).
		if want := tt.current.VerifiedAt; tt.old.VerifiedAt.After(want) && !got.VerifiedAt.Equal(tt.old.VerifiedAt) ||
			!tt.old.VerifiedAt.After(want) && !got.VerifiedAt.Equal(want) {
			t.Errorf("%s: verified_at %v, want the later of %v and %v", tt.name, got.VerifiedAt, tt.current.VerifiedAt, tt.old.VerifiedAt)
		}
	}
}

// The enforcer unverifies a lapsed domain's addresses by key while it holds
// the domain's row: the rekeying waits for it, so the unverification lands
// (on the old key) and moves with the address, never misses it.
func TestRekeyWaitsForTheEnforcersDomainLock(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	if _, err := e.pool.Exec(ctx, `INSERT INTO domains (name, next_check_at) VALUES ('example.com', $1)`, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := e.pool.Exec(ctx, `INSERT INTO emails (user_id, email, domain, verified_at, event_at) VALUES ('u1', 'a@example.com.', 'example.com', $1, $1)`, t0.Add(-48*time.Hour)); err != nil {
		t.Fatal(err)
	}
	// The enforcer's transaction: the domain locked, its addresses read.
	enf, err := e.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = enf.Rollback(ctx) }()
	if _, err := enf.Exec(ctx, `SELECT 1 FROM domains WHERE name = 'example.com' FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := e.p.RekeyAddresses(ctx)
		done <- err
	}()
	testwait.For(t, 15*time.Second, "the rekeying waiting on the domain's row (or done)", func() bool {
		return len(done) > 0 || countRows(t, e.pool, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
			AND wait_event_type = 'Lock' AND query LIKE '%FOR SHARE OF d%'`) == 1
	})
	tag, err := enf.Exec(ctx, `UPDATE emails SET verified = false, unverified_at = $1, unverify_reason = 'domain_released', unverify_phase = 'released'
		WHERE user_id = 'u1' AND email = 'a@example.com.' AND verified`, t0)
	if err != nil || tag.RowsAffected() != 1 {
		t.Fatalf("the enforcer's unverification by the key it read: %v, %d rows; want 1 (the key was renamed under it)", err, tag.RowsAffected())
	}
	if err := enf.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("RekeyAddresses: %v", err)
	}
	var verified bool
	var reason string
	if err := e.pool.QueryRow(ctx, `SELECT verified, COALESCE(unverify_reason, '') FROM emails WHERE user_id = 'u1' AND email = 'a@example.com'`).
		Scan(&verified, &reason); err != nil || verified || reason != "domain_released" {
		t.Errorf("rekeyed address: verified %v reason %q, %v; want unverified, domain_released", verified, reason, err)
	}
}

// A row that fails is tried once more at once (a concurrent import's
// insert, a deadlock: the second try finds what changed); one that fails
// again is counted and the pass goes on to the rows after it.
func TestRekeyPassRetriesAndGoesOn(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	if _, err := e.pool.Exec(ctx, `INSERT INTO emails (user_id, email, domain, verified_at, event_at) VALUES
		('u1', 'a@example.com.', 'example.com', $1, $1),
		('u2', 'b@example.com.', 'example.com', $1, $1),
		('u3', 'c@example.com.', 'example.com', $1, $1)`, t0.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	calls := map[string]int{}
	flaky := func(ctx context.Context, userID, old, key string, res *RekeyResult) error {
		calls[userID]++
		switch {
		case userID == "u1" && calls[userID] == 1:
			res.Addresses++ // counted by a transaction that then failed
			return errors.New("deadlock detected")
		case userID == "u2":
			return errors.New("still failing")
		}
		return e.p.rekeyAddress(ctx, userID, old, key, res)
	}
	var res RekeyResult
	err := e.p.rekeyTable(ctx, "emails", &res, flaky)
	if err == nil || !strings.Contains(err.Error(), "user u2") {
		t.Errorf("pass error %v; want the failure of u2", err)
	}
	if res.Failed != 1 || res.Addresses != 2 || calls["u1"] != 2 || calls["u2"] != 2 || calls["u3"] != 1 {
		t.Errorf("result %+v, calls %v; want u1 retried and rekeyed, u2 tried twice and counted, u3 rekeyed", res, calls)
	}
	for user, key := range map[string]string{"u1": "a@example.com", "u2": "b@example.com.", "u3": "c@example.com"} {
		if n := countRows(t, e.pool, `SELECT count(*) FROM emails WHERE user_id = $1 AND email = $2`, user, key); n != 1 {
			t.Errorf("%s: no row under %q", user, key)
		}
	}
}
