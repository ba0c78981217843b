package producer

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/domainguard/domainguard/internal/broker"
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

// pruneIntake deletes intake's processed-message ids older than
// broker.DefaultProcessedRetention (no redelivery outlives its id) and
// removal tombstones older than 90 days, through the prune functions the
// shipped SQL role may execute (it may not delete from those tables).
func (p *Producer) pruneIntake(ctx context.Context) error {
	now := p.cfg.Clock.Now()
	if _, err := p.cfg.Pool.Exec(ctx, `SELECT prune_processed_messages($1, $2)`, broker.ConsumerIntake, now.Add(-broker.DefaultProcessedRetention)); err != nil {
		return fmt.Errorf("prune intake processed messages: %w", err)
	}
	if _, err := p.cfg.Pool.Exec(ctx, `SELECT prune_email_removals($1)`, now.Add(-90*24*time.Hour)); err != nil {
		return fmt.Errorf("prune removal tombstones: %w", err)
	}
	return nil
}
