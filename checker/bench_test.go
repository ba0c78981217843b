package checker

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/domainguard/domainguard/internal/testnats"
	"github.com/domainguard/domainguard/schemas"
)

// hostedProvider spreads domains over hosts ("h0".."h<n-1>") for rate
// limiting, like RDAP servers per registry.
type hostedProvider struct {
	*fakeProvider
	hosts int
}

func (h *hostedProvider) RateKey(domain string) string {
	i, _ := strconv.Atoi(domain[1 : len(domain)-len(".com")])
	return "h" + strconv.Itoa(i%h.hosts)
}

// BenchmarkWorker50ms measures one worker process against a provider with
// 50 ms latency: checks/s end to end (check message to acknowledged event),
// and the highest number of lookups any host saw in a 1 s window, which must
// not exceed the token bucket's allowance (rate×1s + burst).
func BenchmarkWorker50ms(b *testing.B) {
	for _, bc := range []struct {
		name        string
		hosts       int
		perSecond   float64
		burst       int
		concurrency int
	}{
		{"rate-bound/10-hosts-at-20ps", 10, 20, 1, 16},
		{"latency-bound/1-host-at-1000ps", 1, 1000, 10, 8},
	} {
		b.Run(bc.name, func(b *testing.B) {
			js, _, topo := testnats.Shared(b)
			e := env{js: js, topo: topo.WithDefaults()}
			p := &hostedProvider{fakeProvider: &fakeProvider{delay: 50 * time.Millisecond}, hosts: bc.hosts}
			b.StopTimer()
			for i := range b.N {
				e.publishCheck(b, "d"+strconv.Itoa(i)+".com", nil)
			}
			w, err := NewWorker(Config{JS: js, Topology: e.topo, Provider: p,
				LookupsPerSecond: bc.perSecond, Burst: bc.burst, Concurrency: bc.concurrency,
				FetchWait: 300 * time.Millisecond, Logger: testnats.Logger(b)})
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			start := time.Now()
			b.StartTimer()
			go func() { done <- w.Run(ctx) }()
			for e.streamCount(b, schemas.StreamDomainEvents) < uint64(b.N) {
				time.Sleep(5 * time.Millisecond)
			}
			elapsed := time.Since(start)
			b.StopTimer()
			cancel()
			if err := <-done; err != nil {
				b.Fatal(err)
			}

			perHost := map[string][]time.Time{}
			for d := range p.allCalls() {
				key := p.RateKey(d)
				perHost[key] = append(perHost[key], p.callTimes(d)...)
			}
			maxInWindow := 0
			for _, times := range perHost {
				slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
				lo := 0
				for hi := range times {
					for times[hi].Sub(times[lo]) >= time.Second {
						lo++
					}
					maxInWindow = max(maxInWindow, hi-lo+1)
				}
			}
			allowed := int(bc.perSecond) + bc.burst
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "checks/s")
			b.ReportMetric(float64(maxInWindow), "max-lookups/host/s")
			b.ReportMetric(float64(allowed), "allowed/host/s")
			b.ReportMetric(0, "ns/op")
			if maxInWindow > allowed {
				b.Errorf("a host saw %d lookups within 1s; the limit allows %d", maxInWindow, allowed)
			}
		})
	}
}
