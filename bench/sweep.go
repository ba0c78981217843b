package bench

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/domainguard/domainguard/producer"
	"github.com/domainguard/domainguard/schemas"
)

// sweepTarget is the goal: the sweep enqueues at least half the
// bare publish rate.
const sweepTarget = 0.5

// baselineWindows are the in-flight limits the bare publish loop tries;
// the faster one is the baseline. 256 is the producer's default
// MaxInFlight, 2000 half the client's async limit.
var baselineWindows = []int{256, 2000}

// sweep seeds Domains never-checked due domains and compares
// producer.Sweep with a bare async publish loop of the same messages.
func (e *env) sweep(ctx context.Context) ([]Row, error) {
	n := e.o.Domains
	if _, err := e.pool.Exec(ctx, `
INSERT INTO domains (name, next_check_at)
SELECT 'sweep' || i || '.com', now() - interval '1 hour' FROM generate_series(1, $1) i`, n); err != nil {
		return nil, fmt.Errorf("seed %d domains: %w", n, err)
	}
	if _, err := e.pool.Exec(ctx, `VACUUM ANALYZE domains`); err != nil {
		return nil, fmt.Errorf("analyze domains: %w", err)
	}

	var best time.Duration
	var bestWindow int
	for _, window := range baselineWindows {
		topo, err := e.topology(ctx)
		if err != nil {
			return nil, err
		}
		now := time.Now().UTC()
		took, err := publishAll(ctx, e.js, n, window, func(i int) (*nats.Msg, error) {
			return checkMsg(topo.Namespace, "sweep"+strconv.Itoa(i+1)+".com", nil, now)
		})
		if err != nil {
			return nil, fmt.Errorf("bare publish (window %d): %w", window, err)
		}
		if got, err := e.streamCount(ctx, topo, schemas.StreamDomainChecks); err != nil || got != uint64(n) {
			return nil, fmt.Errorf("bare publish stored %d of %d messages (%v)", got, n, err)
		}
		if err := deleteStreams(ctx, e.js, topo); err != nil {
			return nil, err
		}
		if best == 0 || took < best {
			best, bestWindow = took, window
		}
	}
	baseline := float64(n) / best.Seconds()

	topo, err := e.topology(ctx)
	if err != nil {
		return nil, err
	}
	p, err := producer.New(producer.Config{Pool: e.pool, JS: e.js, Topology: topo, Logger: e.log,
		Registerer: prometheus.NewRegistry()})
	if err != nil {
		return nil, err
	}
	heap := watchHeap()
	res, err := p.Sweep(ctx, nil)
	peak := heap.stopMB()
	if err != nil {
		return nil, err
	}
	if res.Enqueued != int64(n) {
		return nil, fmt.Errorf("sweep enqueued %d of %d domains (%d already pending, %d failed)", res.Enqueued, n, res.AlreadyPending, res.Failed)
	}
	rate := float64(res.Enqueued) / res.Duration.Seconds()
	ratio := rate / baseline
	return []Row{{
		Name: PhaseSweep, Figure: rate, Unit: "domains/s", Baseline: baseline, BaselineUnit: "msgs/s",
		BaselineWhat: fmt.Sprintf("bare JetStream async publish, window %d", bestWindow),
		Ratio:        ratio, Target: fmt.Sprintf("ratio >= %.2f", sweepTarget), Met: ratio >= sweepTarget,
		PeakHeapMB: peak, Count: n, Seconds: res.Duration.Seconds(),
		Detail: fmt.Sprintf("producer.Sweep (pages of 1000, 256 in flight, lease UPDATE per page); bare loop %.2f s", best.Seconds()),
	}}, nil
}
