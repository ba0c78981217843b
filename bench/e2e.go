package bench

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/domainguard/domainguard/checker"
	"github.com/domainguard/domainguard/enforcer"
	"github.com/domainguard/domainguard/lifecycle"
	"github.com/domainguard/domainguard/schemas"
)

// e2eBudget is the goal for the p99 latency.
const e2eBudget = time.Second

// endToEnd runs a checker worker and an enforcer together, feeds check
// requests at E2ERate for E2EDuration (every E2EChangeEvery-th domain
// lapses, the others answer unchanged), and measures, for every
// audit.email.unverified event, the time from the fake provider's answer
// to the event's arrival on an AUDIT subscriber.
func (e *env) endToEnd(ctx context.Context) ([]Row, error) {
	const prefix = "e2e"
	total := max(1, int(e.o.E2ERate*e.o.E2EDuration.Seconds()))
	per := e.o.EmailsPerDomain
	seedAt := time.Now()
	active, err := e.seed(ctx, prefix, total, per, seedAt)
	if err != nil {
		return nil, err
	}
	lapsed := map[string]bool{}
	for i := e.o.E2EChangeEvery; i <= total; i += e.o.E2EChangeEvery {
		lapsed[prefix+strconv.Itoa(i)+".com"] = true
	}
	want := len(lapsed) * per
	e.log.Info("bench e2e: seeded", "domains", total, "lapsing", len(lapsed), "took", time.Since(seedAt))

	topo, err := e.topology(ctx)
	if err != nil {
		return nil, err
	}
	provider := newFakeProvider(e.o.ProviderLatency, active, lapsed)

	var (
		mu      sync.Mutex
		lat     []time.Duration
		unknown int
	)
	sub, err := subscribeAudit(e.nc, topo.Namespace.Subject(schemas.SubjectEmailUnverified), func(m *nats.Msg) {
		at := time.Now()
		_, ev, _ := schemas.Decode[schemas.EmailUnverified](m.Data) // an invalid event has no domain
		answered, ok := provider.answeredAt(ev.Domain)
		mu.Lock()
		defer mu.Unlock()
		if !ok {
			unknown++
			return
		}
		lat = append(lat, at.Sub(answered))
	})
	if err != nil {
		return nil, err
	}
	defer sub.Unsubscribe() //nolint:errcheck // the connection closes at the end of Run

	// The checker is not the subject here: a rate limit well above the
	// feed and enough concurrency for the provider's latency.
	concurrency := max(16, int(math.Ceil(e.o.E2ERate*e.o.ProviderLatency.Seconds()*3)))
	w, err := checker.NewWorker(checker.Config{JS: e.js, Topology: topo, Provider: provider,
		LookupsPerSecond: e.o.E2ERate * 10, Burst: max(1, int(e.o.E2ERate)), Concurrency: concurrency,
		FetchWait: 500 * time.Millisecond, Logger: e.log, Registerer: prometheus.NewRegistry()})
	if err != nil {
		return nil, err
	}
	en, err := enforcer.New(enforcer.Config{Pool: e.pool, JS: e.js, Topology: topo, Logger: e.log,
		Registerer: prometheus.NewRegistry(), BreakerPct: 100})
	if err != nil {
		return nil, err
	}
	heap := watchHeap()
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, run := range []func(context.Context) error{w.Run, en.Run} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = run(runCtx)
		}()
	}
	stopRoles := func() error {
		stop()
		wg.Wait()
		return fmt.Errorf("roles: %v %v", errs[0], errs[1])
	}

	prev := lifecycle.Observation{Phase: lifecycle.PhaseActive, Evidence: active}
	feedStart := time.Now()
	fed, err := e.feed(ctx, topo.Namespace, total, func(i int) (*nats.Msg, error) {
		d := prefix + strconv.Itoa(i+1) + ".com"
		p := prev
		p.Domain = d
		return checkMsg(topo.Namespace, d, &p, time.Now().UTC())
	})
	feedTook := time.Since(feedStart)
	if err != nil {
		_ = stopRoles()
		heap.stopMB()
		return nil, fmt.Errorf("feed checks: %w", err)
	}
	backlog, _ := e.streamCount(ctx, topo, schemas.StreamDomainChecks)
	waitErr := waitFor(ctx, 20*time.Millisecond, 30*time.Second, func() (int64, bool, error) {
		mu.Lock()
		defer mu.Unlock()
		return int64(len(lat)), len(lat) >= want, nil
	})
	drained := time.Since(feedStart)
	if rerr := stopRoles(); errs[0] != nil || errs[1] != nil {
		heap.stopMB()
		return nil, rerr
	}
	peak := heap.stopMB()
	mu.Lock()
	defer mu.Unlock()
	if waitErr != nil {
		return nil, fmt.Errorf("%d of %d audit.email.unverified arrived: %w", len(lat), want, waitErr)
	}
	if unknown > 0 {
		return nil, fmt.Errorf("%d audit.email.unverified events for domains the provider never answered as lapsed", unknown)
	}
	slices.Sort(lat)
	p50 := lat[len(lat)/2]
	p99 := lat[min(len(lat)-1, len(lat)*99/100)]
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	budget := ms(e2eBudget)
	detail := fmt.Sprintf("fed %d checks at %.0f/s (target %.0f/s) over %.1f s, %d lapsing domains x %d addresses; %d checks still queued when the feed ended; last audit event %.1f s after the feed started; max %.0f ms",
		fed, float64(fed)/feedTook.Seconds(), e.o.E2ERate, feedTook.Seconds(), len(lapsed), per, backlog, drained.Seconds(), ms(lat[len(lat)-1]))
	return []Row{
		{Name: "e2e-p50", Figure: ms(p50), Unit: "ms", Baseline: budget, BaselineUnit: "ms", BaselineWhat: "latency budget",
			Ratio: ms(p50) / budget, Target: "-", Met: true, PeakHeapMB: peak, Count: len(lat), Seconds: drained.Seconds()},
		{Name: "e2e-p99", Figure: ms(p99), Unit: "ms", Baseline: budget, BaselineUnit: "ms", BaselineWhat: "latency budget",
			Ratio: ms(p99) / budget, Target: fmt.Sprintf("< %.0f ms", budget), Met: p99 < e2eBudget, PeakHeapMB: peak,
			Count: len(lat), Seconds: drained.Seconds(), Detail: detail},
	}, nil
}

// feed publishes n messages at E2ERate, paced against the wall clock (a
// late tick catches up), and waits for every ack.
func (e *env) feed(ctx context.Context, _ schemas.Namespace, n int, build func(i int) (*nats.Msg, error)) (int, error) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	var acks []jetstream.PubAckFuture
	sent := 0
	for sent < n {
		select {
		case <-ctx.Done():
			return sent, ctx.Err()
		case <-tick.C:
		}
		due := min(n, int(e.o.E2ERate*time.Since(start).Seconds()))
		for ; sent < due; sent++ {
			msg, err := build(sent)
			if err != nil {
				return sent, err
			}
			f, err := e.js.PublishMsgAsync(msg)
			if err != nil {
				return sent, fmt.Errorf("publish %s: %w", msg.Subject, err)
			}
			acks = append(acks, f)
		}
	}
	for _, f := range acks {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return sent, fmt.Errorf("publish %s: %w", f.Msg().Subject, err)
		case <-time.After(30 * time.Second):
			return sent, fmt.Errorf("publish %s: no ack within 30s", f.Msg().Subject)
		}
	}
	return sent, nil
}
