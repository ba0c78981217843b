package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/domainguard/domainguard/enforcer"
	"github.com/domainguard/domainguard/internal/testbin"
	"github.com/domainguard/domainguard/internal/testdb"
	"github.com/domainguard/domainguard/lifecycle"
	"github.com/domainguard/domainguard/schemas"
)

// The operator commands against a real database: a change held by the
// per-domain cap is listed by `holds list`, applied by `holds approve`
// (through the enforcer's transactional path), and shown by `status`;
// `breaker status` reports a closed breaker.
func TestOperatorCommands(t *testing.T) {
	pool, dbURL := testdb.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	now := time.Now().UTC().Add(-time.Hour)
	for i := range 3 {
		if _, err := pool.Exec(ctx, `INSERT INTO emails (user_id, email, domain, verified, verified_at) VALUES ($1, $2, 'team.example', true, $3)`,
			fmt.Sprintf("u%d", i), fmt.Sprintf("u%d@team.example", i), now.Add(-24*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	st, err := enforcer.NewStore(enforcer.Config{Pool: pool, MaxUnverifyPerDomain: 2})
	if err != nil {
		t.Fatal(err)
	}
	outs, errs := st.EnforceChangedGroup(ctx, []enforcer.ChangeItem{{MsgID: "msg-1", Change: schemas.DomainChanged{Domain: "team.example", PreviousPhase: lifecycle.PhaseActive,
		Phase: lifecycle.PhaseRedemption, Evidence: lifecycle.Evidence{Provider: "rdap", Statuses: []string{"redemption period"}, ObservedAt: now}}}})
	out, err := outs[0], errs[0]
	if err != nil || out.HoldID == "" {
		t.Fatalf("enforce: %+v, %v", out, err)
	}
	env := []string{"DATABASE_URL=" + dbURL, "DOMAINGUARD_METRICS_ADDR=off"}

	got, err := testbin.Run(ctx, t, env, "holds", "list", "--json")
	if err != nil {
		t.Fatalf("holds list: %v\n%s", err, got)
	}
	var holds []enforcer.Hold
	if err := json.Unmarshal([]byte(stdoutJSON(got)), &holds); err != nil || len(holds) != 1 || holds[0].ID != out.HoldID || len(holds[0].Addresses) != 3 {
		t.Fatalf("holds list: %v %+v\n%s", err, holds, got)
	}
	got, err = testbin.Run(ctx, t, env, "holds", "approve", out.HoldID, "--by", "ops-test")
	if err != nil || !strings.Contains(got, "3 addresses on team.example unverified") {
		t.Fatalf("holds approve: %v\n%s", err, got)
	}
	var unverified, outbox int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM emails WHERE domain = 'team.example' AND NOT verified AND unverify_reason = 'domain_redemption'`).Scan(&unverified); err != nil || unverified != 3 {
		t.Fatalf("after approve: %d unverified (%v), want 3", unverified, err)
	}
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE subject = $1`, schemas.SubjectEmailUnverified).Scan(&outbox); err != nil || outbox != 3 {
		t.Fatalf("after approve: %d audit.email.unverified outbox rows (%v), want 3", outbox, err)
	}
	if got, err = testbin.Run(ctx, t, env, "holds", "approve", out.HoldID); err == nil {
		t.Fatalf("approving twice succeeded:\n%s", got)
	}
	got, err = testbin.Run(ctx, t, env, "status", "u1@team.example")
	if err != nil || !strings.Contains(got, "domain_redemption") {
		t.Fatalf("status: %v\n%s", err, got)
	}
	got, err = testbin.Run(ctx, t, env, "breaker", "status")
	if err != nil || !strings.Contains(got, "closed") {
		t.Fatalf("breaker status: %v\n%s", err, got)
	}
}

// `status EMAIL` finds an address however its domain part is typed (the
// shape docs/INTEGRATION.md uses), and says "not found" with exit status 1
// for an address it does not know, even when it knows the domain.
func TestStatusEmailNormalised(t *testing.T) {
	testbin.Path(t) // build before the timeouts below start
	pool, dbURL := testdb.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Stored as intake stores Alice@Lapsed-Shop.ORG.
	if _, err := pool.Exec(ctx, `INSERT INTO emails (user_id, email, domain, verified, verified_at)
		VALUES ('u1', 'Alice@lapsed-shop.org', 'lapsed-shop.org', true, now());
		INSERT INTO domains (name, next_check_at) VALUES ('lapsed-shop.org', now())`); err != nil {
		t.Fatal(err)
	}
	env := []string{"DATABASE_URL=" + dbURL, "DOMAINGUARD_METRICS_ADDR=off"}
	for _, q := range []string{"Alice@Lapsed-Shop.ORG", "alice@lapsed-shop.org", " Alice@lapsed-shop.org "} {
		out, err := testbin.Run(ctx, t, env, "status", "--json", q)
		if err != nil {
			t.Errorf("status %q: %v\n%s", q, err, out)
			continue
		}
		if !strings.Contains(out, `"email": "Alice@lapsed-shop.org"`) {
			t.Errorf("status %q does not show the address:\n%s", q, out)
		}
	}
	out, err := testbin.Run(ctx, t, env, "status", "bob@lapsed-shop.org")
	if err == nil || !strings.Contains(out, "not found") {
		t.Errorf("status of an unknown address on a known domain: %v\n%s", err, out)
	}
}
