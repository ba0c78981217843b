package bench

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/domainguard/domainguard/checker"
	"github.com/domainguard/domainguard/schemas"
)

// checkerTarget is the goal: the checker sustains at least 95% of
// its configured rate limit.
const checkerTarget = 0.95

// check runs one checker.Worker with LookupsPerSecond = CheckRate (burst
// 1, one rate key) on CheckRate × CheckDuration queued checks against the
// fake provider, from Run until the last event is stored on DOMAIN_EVENTS.
func (e *env) check(ctx context.Context) ([]Row, error) {
	n := max(1, int(e.o.CheckRate*e.o.CheckDuration.Seconds()))
	topo, err := e.topology(ctx)
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	if _, err := publishAll(ctx, e.js, n, 1000, func(i int) (*nats.Msg, error) {
		return checkMsg(topo.Namespace, "chk"+strconv.Itoa(i+1)+".com", nil, now)
	}); err != nil {
		return nil, fmt.Errorf("queue checks: %w", err)
	}
	provider := newFakeProvider(e.o.ProviderLatency, activeEvidence(now), nil)
	// Enough concurrency that latency never limits: four times what the
	// rate needs at the provider's latency.
	concurrency := max(8, int(math.Ceil(e.o.CheckRate*e.o.ProviderLatency.Seconds()*4)))
	w, err := checker.NewWorker(checker.Config{JS: e.js, Topology: topo, Provider: provider,
		LookupsPerSecond: e.o.CheckRate, Burst: 1, Concurrency: concurrency, FetchWait: 500 * time.Millisecond,
		Logger: e.log, Registerer: prometheus.NewRegistry()})
	if err != nil {
		return nil, err
	}
	heap := watchHeap()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- w.Run(runCtx) }()
	var stored uint64
	waitErr := waitFor(ctx, 10*time.Millisecond, 30*time.Second, func() (int64, bool, error) {
		got, err := e.streamCount(ctx, topo, schemas.StreamDomainEvents)
		stored = got
		return int64(got), got >= uint64(n), err
	})
	took := time.Since(start)
	stop()
	runErr := <-done
	peak := heap.stopMB()
	if waitErr != nil {
		return nil, fmt.Errorf("%d of %d checks done: %w", stored, n, waitErr)
	}
	if runErr != nil {
		return nil, runErr
	}
	rate := float64(n) / took.Seconds()
	ratio := rate / e.o.CheckRate
	return []Row{{
		Name: PhaseChecker, Figure: rate, Unit: "checks/s", Baseline: e.o.CheckRate, BaselineUnit: "lookups/s",
		BaselineWhat: "configured rate limit", Ratio: ratio, Target: fmt.Sprintf("ratio >= %.2f", checkerTarget),
		Met: ratio >= checkerTarget, PeakHeapMB: peak, Count: n, Seconds: took.Seconds(),
		Detail: fmt.Sprintf("fake provider answering in %s, burst 1, concurrency %d; from Run to the last event stored",
			e.o.ProviderLatency, concurrency),
	}}, nil
}
