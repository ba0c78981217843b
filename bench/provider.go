package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/domainguard/domainguard/lifecycle"
)

// providerName is the evidence provider of every bench answer.
const providerName = "bench"

// fakeProvider answers every lookup after latency: released (404) for the
// domains in lapsed, otherwise the same active evidence the bench seeded
// (so lifecycle.Changed is false and the checker sends a heartbeat). It
// records when it answered each lapsed domain.
type fakeProvider struct {
	latency time.Duration
	active  lifecycle.Evidence
	lapsed  map[string]bool // read-only once the worker runs

	mu       sync.Mutex
	answered map[string]time.Time
}

func newFakeProvider(latency time.Duration, active lifecycle.Evidence, lapsed map[string]bool) *fakeProvider {
	return &fakeProvider{latency: latency, active: active, lapsed: lapsed, answered: map[string]time.Time{}}
}

func (p *fakeProvider) Name() string { return providerName }

func (p *fakeProvider) Lookup(ctx context.Context, domain string, _ *lifecycle.Observation) (lifecycle.Observation, error) {
	t := time.NewTimer(p.latency)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return lifecycle.Observation{}, fmt.Errorf("bench lookup %s: %w", domain, ctx.Err())
	case <-t.C:
	}
	now := time.Now().UTC()
	if p.lapsed[domain] {
		p.mu.Lock()
		p.answered[domain] = now
		p.mu.Unlock()
		return lifecycle.Observation{Domain: domain, Phase: lifecycle.PhaseReleased,
			Evidence: lifecycle.Evidence{Provider: providerName, NotFound: true, ObservedAt: now}}, nil
	}
	ev := p.active
	ev.ObservedAt = now
	return lifecycle.Observation{Domain: domain, Phase: lifecycle.PhaseActive, Evidence: ev}, nil
}

// answeredAt returns when the provider answered domain as lapsed.
func (p *fakeProvider) answeredAt(domain string) (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t, ok := p.answered[domain]
	return t, ok
}

// activeEvidence is the evidence of a healthy registered domain, expiring
// well beyond the expiry-warning window.
func activeEvidence(now time.Time) lifecycle.Evidence {
	reg := time.Date(2015, 3, 1, 0, 0, 0, 0, time.UTC)
	exp := now.UTC().Truncate(24*time.Hour).AddDate(0, 6, 0)
	return lifecycle.Evidence{Provider: providerName, Statuses: []string{"active", "client transfer prohibited"},
		RegisteredAt: &reg, ExpiresAt: &exp, Handle: "BENCH-1", RegistrarIANAID: "9999",
		Nameservers: []string{"ns1.bench.test", "ns2.bench.test"}, ObservedAt: now.UTC().Add(-24 * time.Hour)}
}
