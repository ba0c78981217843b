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
