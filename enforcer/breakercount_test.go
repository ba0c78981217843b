package enforcer

import (
	"testing"
	"time"

	"github.com/domainguard/domainguard/lifecycle"
)

// A small site looks at fewer domains an hour than
// DOMAINGUARD_BREAKER_MIN_DOMAINS: the breaker then counts over the last
// BreakerMinDomains domains looked at, so it can still trip.
func TestBreakerCountsTheLastMinDomainsOnASmallSite(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.BreakerPct = 5; c.BreakerMinDomains = 20 })
	// 30 domains, two looked at per hour over the last 15 hours.
	for i := range 30 {
		d := "small" + itoa(i) + ".com"
		f.activate(d, t0.Add(-time.Duration(i)*30*time.Minute))
		f.addEmails(d, 1, t0.Add(-72*time.Hour))
	}
	lapse := func(i int) Outcome {
		d := "small" + itoa(i) + ".com"
		return f.observe(d, lifecycle.PhaseActive, lifecycle.PhaseExpired, evidence(t0, reg, "H-"+d, nil))
	}
	if out := lapse(20); out.Unverified != 1 || out.Paused {
		t.Fatalf("first lapse: %+v, want applied (1 of the last 20 looked at is 5 %%, not more)", out)
	}
	out := lapse(21)
	if !out.Paused || out.HoldCause != string(lifecycle.HoldBreaker) || out.Unverified != 0 {
		t.Fatalf("second lapse: %+v, want the breaker to trip (2 of the last 20 looked at)", out)
	}
	st, err := f.store.BreakerStatus(f.ctx)
	if err != nil || !st.Open || st.Observed < 20 || st.NonActive != 2 || !st.Since.Before(t0.Add(-time.Hour)) {
		t.Fatalf("status %+v %v, want open, counted over the last 20 domains (more than an hour)", st, err)
	}
}
