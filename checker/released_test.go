package checker

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/domainguard/domainguard/lifecycle"
	"github.com/domainguard/domainguard/schemas"
)

// releasedJumps reads the worker's released-without-lapse counter,
// failing unless the registry exports it under its documented name.
func releasedJumps(t *testing.T, w *Worker) float64 {
	t.Helper()
	g := w.cfg.Registerer.(prometheus.Gatherer)
	if n, err := testutil.GatherAndCount(g, "domainguard_checker_released_without_lapse_total"); err != nil || n != 1 {
		t.Fatalf("domainguard_checker_released_without_lapse_total exported as %d series (%v), want 1", n, err)
	}
	return testutil.ToFloat64(w.metrics.releasedJumps)
}

// TestReleasedWithoutLapseCounted: a released answer after a lapse phase
// (or with nothing or nothing decided before it) leaves the counter alone;
// one straight after active moves it by exactly one.
func TestReleasedWithoutLapseCounted(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 0)
	p := &fakeProvider{answer: func(_ context.Context, domain string, _ int) (lifecycle.Observation, error) {
		return lifecycle.Observation{Domain: domain, Phase: lifecycle.PhaseReleased, Evidence: lifecycle.Evidence{
			Provider: "fake", NotFound: true, ObservedAt: time.Now().UTC()}}, nil
	}}
	w := startWorker(t, e.baseConfig(t, p))
	if got := releasedJumps(t, w); got != 0 {
		t.Fatalf("counter starts at %g", got)
	}

	prev := func(d string, phase lifecycle.Phase) *lifecycle.Observation {
		o := observation(d, phase)
		return &o
	}
	// After a lapse phase, or without an active observation before it.
	notCounted := []struct {
		domain string
		prev   *lifecycle.Observation
	}{
		{"grace.com", prev("grace.com", lifecycle.PhaseGrace)},
		{"expired.com", prev("expired.com", lifecycle.PhaseExpired)},
		{"redemption.com", prev("redemption.com", lifecycle.PhaseRedemption)},
		{"pendingdelete.com", prev("pendingdelete.com", lifecycle.PhasePendingDelete)},
		{"unknown.com", prev("unknown.com", lifecycle.PhaseUnknown)},
		{"first.com", nil},
	}
	for _, tc := range notCounted {
		e.publishCheck(t, tc.domain, tc.prev)
	}
	msgs := e.waitEvents(t, len(notCounted), 300*time.Millisecond)
	for _, m := range msgs {
		_, ch, err := schemas.Decode[schemas.DomainChanged](m.Data)
		if err != nil || ch.Phase != lifecycle.PhaseReleased {
			t.Fatalf("event on %s: %+v, %v; want a change to released", m.Subject, ch, err)
		}
	}
	if got := releasedJumps(t, w); got != 0 {
		t.Errorf("released after a lapse phase or no active observation: counter = %g, want 0", got)
	}

	e.publishCheck(t, "jumped.com", prev("jumped.com", lifecycle.PhaseActive))
	e.waitEvents(t, len(notCounted)+1, 300*time.Millisecond)
	if got := releasedJumps(t, w); got != 1 {
		t.Errorf("released straight after active: counter = %g, want 1", got)
	}
}
