package enforcer

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/domainguard/domainguard/internal/broker"
	"github.com/domainguard/domainguard/internal/clock"
	"github.com/domainguard/domainguard/lifecycle"
	"github.com/domainguard/domainguard/schemas"
)

// BenchmarkEnforce measures the whole path: changed events published to
// DOMAIN_EVENTS, enforced in PostgreSQL, relayed to AUDIT. It reports
// unverified emails/s and the p50/p99 latency from a changed event's
// publish to the arrival of each of its audit.email.unverified events.
// 1,000 affected emails always; 100,000 with DOMAINGUARD_BENCH_LARGE=1.
func BenchmarkEnforce(b *testing.B) {
	sizes := []int{1000}
	if os.Getenv("DOMAINGUARD_BENCH_LARGE") == "1" {
		sizes = append(sizes, 100000)
	}
	for _, emails := range sizes {
		b.Run(fmt.Sprintf("emails=%d", emails), func(b *testing.B) { benchEnforce(b, emails, 10) })
	}
}

func benchEnforce(b *testing.B, emails, perDomain int) {
	f := newFixture(b, nil)
	js, nc, topo := sharedNATS(b)
	e, err := New(Config{Pool: f.pool, JS: js, Topology: topo, Clock: clock.System{}, Logger: quietLogger(b),
		MaxUnverifyPerDomain: -1, BreakerPct: 100, Batch: 100, Workers: 4, RelayInterval: 100 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()

	var (
		mu       sync.Mutex
		sentAt   = map[string]time.Time{}
		lat      []time.Duration
		arrivals = make(chan struct{}, 1)
		lastSeen time.Time
	)
	sub, err := nc.Subscribe(topo.Namespace.Subject(schemas.SubjectEmailUnverified), func(m *nats.Msg) {
		now := time.Now()
		_, ev, _ := schemas.Decode[schemas.EmailUnverified](m.Data) // an invalid event has no domain
		mu.Lock()
		if t, ok := sentAt[ev.Domain]; ok {
			lat = append(lat, now.Sub(t))
			lastSeen = now
		}
		mu.Unlock()
		select {
		case arrivals <- struct{}{}:
		default:
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Unsubscribe() //nolint:errcheck

	domains := emails / perDomain
	var total time.Duration
	for iter := 0; iter < b.N; iter++ {
		b.StopTimer()
		prefix := fmt.Sprintf("i%d-", iter)
		verifiedAt := time.Now().UTC().Add(-48 * time.Hour)
		f.exec(`
INSERT INTO emails (user_id, email, domain, verified, verified_at)
SELECT 'user-' || $1 || i || '-' || j, 'u' || j || '@' || $1 || 'bench' || i || '.com', $1 || 'bench' || i || '.com', true, $2
FROM generate_series(1, $3) i, generate_series(1, $4) j`, prefix, verifiedAt, domains, perDomain)
		mu.Lock()
		lat = lat[:0]
		mu.Unlock()
		b.StartTimer()
		start := time.Now()
		for i := 1; i <= domains; i++ {
			d := fmt.Sprintf("%sbench%d.com", prefix, i)
			now := time.Now().UTC()
			ch := schemas.DomainChanged{Domain: d, PreviousPhase: lifecycle.PhaseActive, Phase: lifecycle.PhaseReleased,
				Evidence: lifecycle.Evidence{Provider: "rdap", NotFound: true, ObservedAt: now}}
			ev, err := schemas.NewEvent("bench/checker", "domains.changed", d, now, ch)
			if err != nil {
				b.Fatal(err)
			}
			mu.Lock()
			sentAt[d] = time.Now()
			mu.Unlock()
			if _, err := broker.PublishEvent(ctx, js, topo.Namespace.ChangedSubject(d), ev); err != nil {
				b.Fatal(err)
			}
		}
		deadline := time.Now().Add(10 * time.Minute)
		for {
			mu.Lock()
			n := len(lat)
			mu.Unlock()
			if n >= emails {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("only %d of %d audit events arrived", n, emails)
			}
			select {
			case <-arrivals:
			case <-time.After(time.Second):
			}
		}
		mu.Lock()
		total += lastSeen.Sub(start)
		mu.Unlock()
	}
	b.StopTimer()
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(lat)
	b.ReportMetric(float64(emails*b.N)/total.Seconds(), "emails/s")
	b.ReportMetric(float64(lat[len(lat)/2].Milliseconds()), "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Milliseconds()), "p99-ms")
}

// BenchmarkEnforceChangedGroup measures the store's transaction for a
// group of changed events (no NATS), as the enforcer runs it: groups of
// the default Group size, each domain with 10 verified addresses turning
// released.
func BenchmarkEnforceChangedGroup(b *testing.B) {
	f := newFixture(b, func(c *Config) { c.Clock = clock.System{}; c.BreakerPct = 100 })
	group := f.store.cfg.Group
	verifiedAt := time.Now().UTC().Add(-48 * time.Hour)
	f.exec(`
INSERT INTO emails (user_id, email, domain, verified, verified_at)
SELECT 'user-' || i || '-' || j, 'u' || j || '@bench' || i || '.com', 'bench' || i || '.com', true, $1
FROM generate_series(1, $2) i, generate_series(1, 10) j`, verifiedAt, b.N*group)
	f.exec(`VACUUM ANALYZE emails`)
	b.ResetTimer()
	for i := range b.N {
		items := make([]ChangeItem, group)
		for j := range items {
			d := fmt.Sprintf("bench%d.com", i*group+j+1)
			items[j] = ChangeItem{MsgID: d, Change: schemas.DomainChanged{Domain: d, PreviousPhase: lifecycle.PhaseActive, Phase: lifecycle.PhaseReleased,
				Evidence: lifecycle.Evidence{Provider: "rdap", NotFound: true, ObservedAt: time.Now().UTC()}}}
		}
		outs, errs := f.store.EnforceChangedGroup(f.ctx, items)
		for j := range items {
			if errs[j] != nil || outs[j].Unverified != 10 {
				b.Fatalf("%+v %v", outs[j], errs[j])
			}
		}
	}
	b.ReportMetric(float64(10*group*b.N)/b.Elapsed().Seconds(), "emails/s")
}
