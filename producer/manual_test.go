package producer

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/domainguard/domainguard/lifecycle"
	"github.com/domainguard/domainguard/schemas"
)

func TestEnqueueManual(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	exp := t0.Add(400 * 24 * time.Hour)
	ev := lifecycle.Evidence{Provider: "rdap", Statuses: []string{"active"}, ExpiresAt: &exp, Handle: "H-1", ObservedAt: t0.Add(-time.Hour)}
	later := t0.Add(30 * 24 * time.Hour)
	if _, err := e.pool.Exec(ctx, `INSERT INTO domains (name, phase, evidence, last_checked_at, next_check_at)
		VALUES ('manual.example', 'active', $1, $2, $3)`, ev, ev.ObservedAt, later); err != nil {
		t.Fatal(err)
	}
	pending, err := e.p.EnqueueManual(ctx, "manual.example")
	if err != nil || pending {
		t.Fatalf("EnqueueManual = %v, %v", pending, err)
	}
	_, req := e.pendingCheck(t, "manual.example")
	if req.Reason != schemas.CheckManual || req.Previous == nil || req.Previous.Phase != lifecycle.PhaseActive || req.Previous.Evidence.Handle != "H-1" {
		t.Errorf("manual check = %+v", req)
	}
	// A second one while the first waits: already pending, one message.
	if pending, err := e.p.EnqueueManual(ctx, "manual.example"); err != nil || !pending {
		t.Errorf("second EnqueueManual = %v, %v; want already pending", pending, err)
	}
	if n := e.pendingChecks(t)["manual.example"]; n != 1 {
		t.Errorf("pending checks = %d, want 1", n)
	}
	// The schedule of a domain not yet due is left alone.
	if d, _ := readDomain(t, e.pool, "manual.example"); !d.nextCheckAt.Equal(later) {
		t.Errorf("next check %v, want %v unchanged", d.nextCheckAt, later)
	}
	if _, err := e.p.EnqueueManual(ctx, "nobody.example"); !errors.Is(err, ErrUnknownDomain) {
		t.Errorf("unknown domain: %v, want ErrUnknownDomain", err)
	}
}

// TestEnqueueManualBudget: check now counts against the daily lookup budget
// exactly when a sweep's check of the same domain would (freeCheckSQL).
func TestEnqueueManualBudget(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	rdapEv := lifecycle.Evidence{Provider: "rdap", Statuses: []string{"active"}, ObservedAt: t0.Add(-time.Hour)}
	dnsEv := lifecycle.Evidence{Provider: "dns", ObservedAt: t0.Add(-time.Hour)}
	for _, tc := range []struct {
		name  string
		setup string
		args  []any
		paid  int
	}{
		{"paid.example", `INSERT INTO domains (name, phase, evidence, next_check_at) VALUES ($1, 'active', $2, $3)`,
			[]any{rdapEv, t0}, 1},
		{"dnsonly.example", `INSERT INTO domains (name, phase, evidence, next_check_at) VALUES ($1, 'active', $2, $3)`,
			[]any{dnsEv, t0}, 0},
		{"acme.us.com", `INSERT INTO domains (name, next_check_at, private_suffix) VALUES ($1, $2, true)`,
			[]any{t0}, 0},
		{"nowhere.example", `INSERT INTO domains (name, next_check_at, unmonitored_since) VALUES ($1, $2, $2)`,
			[]any{t0}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := e.pool.Exec(ctx, `DELETE FROM lookup_budget`); err != nil {
				t.Fatal(err)
			}
			if _, err := e.pool.Exec(ctx, tc.setup, append([]any{tc.name}, tc.args...)...); err != nil {
				t.Fatal(err)
			}
			if pending, err := e.p.EnqueueManual(ctx, tc.name); err != nil || pending {
				t.Fatalf("EnqueueManual = %v, %v", pending, err)
			}
			if n := countRows(t, e.pool, `SELECT COALESCE(sum(count), 0)::int FROM lookup_budget`); n != tc.paid {
				t.Errorf("lookups counted = %d, want %d", n, tc.paid)
			}
		})
	}
}
