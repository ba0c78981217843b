package enforcer

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/domainguard/domainguard/internal/clock"
	"github.com/domainguard/domainguard/internal/testdb"
	"github.com/domainguard/domainguard/internal/testnats"
	"github.com/domainguard/domainguard/lifecycle"
	"github.com/domainguard/domainguard/schemas"
)

// t0 is the start of test time.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type fixture struct {
	t     testing.TB
	ctx   context.Context
	pool  *pgxpool.Pool
	dbURL string
	clock *clock.Stub
	store *Store
	seq   atomic.Int64
}

func newFixture(t testing.TB, adjust func(*Config)) *fixture {
	t.Helper()
	pool, dbURL := testdb.New(t)
	clk := clock.NewStub(t0)
	cfg := Config{Pool: pool, Clock: clk, Logger: quietLogger(t)}
	if adjust != nil {
		adjust(&cfg)
	}
	st, err := NewStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, ctx: context.Background(), pool: pool, dbURL: dbURL, clock: clk, store: st}
}

func quietLogger(t testing.TB) *slog.Logger { return testnats.Logger(t) }

func (f *fixture) exec(sql string, args ...any) {
	f.t.Helper()
	if _, err := f.pool.Exec(f.ctx, sql, args...); err != nil {
		f.t.Fatalf("%s: %v", sql, err)
	}
}

func (f *fixture) count(sql string, args ...any) int {
	f.t.Helper()
	var n int
	if err := f.pool.QueryRow(f.ctx, sql, args...).Scan(&n); err != nil {
		f.t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// addEmails inserts n verified addresses u<i>@domain verified at verifiedAt.
func (f *fixture) addEmails(domain string, n int, verifiedAt time.Time) []string {
	f.t.Helper()
	var out []string
	for i := range n {
		e := fmt.Sprintf("u%d@%s", i, domain)
		f.exec(`INSERT INTO emails (user_id, email, domain, verified, verified_at) VALUES ($1, $2, $3, true, $4)`,
			fmt.Sprintf("user-%d", i), e, domain, verifiedAt)
		out = append(out, e)
	}
	return out
}

// reverify simulates the host re-verifying an address (the producer's
// intake does this in production).
func (f *fixture) reverify(email string, at time.Time) {
	f.exec(`UPDATE emails SET verified = true, verified_at = $2, unverified_at = NULL, unverify_reason = NULL, unverify_phase = NULL WHERE email = $1`, email, at)
}

type emailState struct {
	verified bool
	reason   string
}

func (f *fixture) email(email string) emailState {
	f.t.Helper()
	var s emailState
	var reason *string
	if err := f.pool.QueryRow(f.ctx, `SELECT verified, unverify_reason FROM emails WHERE email = $1`, email).Scan(&s.verified, &reason); err != nil {
		f.t.Fatalf("email %s: %v", email, err)
	}
	if reason != nil {
		s.reason = *reason
	}
	return s
}

// auditTypes lists the audit_log types of domain (including per-email rows),
// oldest first.
func (f *fixture) auditTypes(domain string) []string {
	f.t.Helper()
	rows, err := f.pool.Query(f.ctx, `SELECT type FROM audit_log WHERE domain = $1 ORDER BY created_at, type, id`, domain)
	if err != nil {
		f.t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			f.t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

func (f *fixture) countType(domain, typ string) int {
	return f.count(`SELECT count(*) FROM audit_log WHERE domain = $1 AND type = $2`, domain, typ)
}

func (f *fixture) outboxCount() int { return f.count(`SELECT count(*) FROM outbox`) }

// evidence returns RDAP-like evidence observed at `at`.
func evidence(at time.Time, registered time.Time, handle string, expires *time.Time) lifecycle.Evidence {
	r := registered
	return lifecycle.Evidence{Provider: "rdap", RegisteredAt: &r, Handle: handle, ExpiresAt: expires, ObservedAt: at}
}

func ptr[T any](v T) *T { return &v }

// observe enforces a change of domain to phase with ev under a fresh
// message id, failing the test on error.
func (f *fixture) observe(domain string, prev, phase lifecycle.Phase, ev lifecycle.Evidence) Outcome {
	f.t.Helper()
	id := fmt.Sprintf("msg-%d", f.seq.Add(1))
	out, err := f.enforce(id, schemas.DomainChanged{Domain: domain, PreviousPhase: prev, Phase: phase, Evidence: ev})
	if err != nil {
		f.t.Fatalf("enforce %s -> %s: %v", domain, phase, err)
	}
	return out
}

// enforce applies one changed event through EnforceChangedGroup, the path
// the enforcer runs.
func (f *fixture) enforce(id string, ch schemas.DomainChanged) (Outcome, error) {
	outs, errs := f.store.EnforceChangedGroup(f.ctx, []ChangeItem{{MsgID: id, Change: ch}})
	return outs[0], errs[0]
}

var reg = t0.AddDate(-5, 0, 0) // registration date of the test domains

// activate makes domain known as active (observed at `at`).
func (f *fixture) activate(domain string, at time.Time) {
	f.t.Helper()
	out := f.observe(domain, lifecycle.PhaseUnknown, lifecycle.PhaseActive, evidence(at, reg, "H-"+domain, ptr(at.AddDate(1, 0, 0))))
	if out.Result != ResultApplied {
		f.t.Fatalf("activate %s: %+v", domain, out)
	}
}
