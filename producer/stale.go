package producer

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"
)

// staleCheckAge is the age after which a delivered pending check is stale:
// it outlived every delivery the checker's consumer allows. (The producer
// publishes a check only for a domain that is new or whose lease ran out.)
func (p *Producer) staleCheckAge() time.Duration {
	t := p.cfg.Topology.WithDefaults()
	return t.CheckAckWait * time.Duration(t.CheckMaxDeliver)
}

// replaceIfStale handles a check publish refused as already pending: it
// replaces the pending check when that one is stale (broker.Topology.
// ReplaceStaleCheck) and reports whether check is now enqueued. Errors are
// logged: the pending check stays, and the next sweep looks again.
func (p *Producer) replaceIfStale(check *nats.Msg) bool {
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.PublishTimeout)
	defer cancel()
	replaced, err := p.cfg.Topology.ReplaceStaleCheck(ctx, p.cfg.JS, check, p.staleCheckAge(), p.cfg.Clock.Now())
	if err != nil {
		p.log.Warn("inspecting an already pending check failed; it stays", "subject", check.Subject, "error", err)
		return false
	}
	if replaced {
		p.m.staleReplaced.Inc()
	}
	return replaced
}

// countStranded updates the stranded-checks gauge (see
// broker.Topology.StrandedChecks).
func (p *Producer) countStranded(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.PublishTimeout)
	defer cancel()
	n, err := p.cfg.Topology.StrandedChecks(ctx, p.cfg.JS)
	if err != nil {
		p.log.Debug("count stranded checks", "error", err)
		return
	}
	p.m.strandedChecks.Set(float64(n))
}
