package enforcer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/domainguard/domainguard/internal/broker"
	"github.com/domainguard/domainguard/lifecycle"
	"github.com/domainguard/domainguard/schemas"
)

// Enforcer consumes DOMAIN_EVENTS (changes and heartbeats) and runs the
// outbox relay. Its embedded Store offers the operator API.
type Enforcer struct {
	*Store
	relay *Relay
}

// New checks cfg (Pool and JS are required) and returns an Enforcer.
func New(cfg Config) (*Enforcer, error) {
	cfg, m, err := cfg.prepare("enforcer", true)
	if err != nil {
		return nil, err
	}
	return &Enforcer{Store: newStore(cfg, m), relay: newRelay(cfg, m)}, nil
}

// Run consumes domains.changed.> and domains.checked.> from the enforcer's
// durable consumer and relays the outbox until ctx ends; then it finishes
// the batch in flight and returns nil.
func (e *Enforcer) Run(ctx context.Context) error {
	// Only check: whoever may manage the topology (the command, with
	// DOMAINGUARD_MANAGE_TOPOLOGY, or the operator) created it; the
	// enforcer's NATS user may not create or update streams.
	if err := e.cfg.Topology.Verify(ctx, e.cfg.JS); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("enforcer: verify topology: %w", err)
	}
	if e.cfg.DryRun {
		e.cfg.Logger.Warn("dry run: decisions are recorded as would-be audit rows; no email is changed and nothing is published")
	}
	// The relay stops with the consumer, even if the consumer gives up early.
	relayCtx, stopRelay := context.WithCancel(ctx)
	defer stopRelay()
	var wg sync.WaitGroup
	var relayErr error
	wg.Add(2)
	go func() {
		defer wg.Done()
		relayErr = e.relay.Run(relayCtx)
	}()
	// Enforcing transactions hand their audit events to the direct
	// publisher, which publishes them straight after the commit; the relay
	// picks up whatever it could not (see outboxBatch).
	direct := newDirectPublisher(e.cfg.Workers)
	go func() {
		defer wg.Done()
		e.relay.runDirect(relayCtx, direct)
	}()
	e.direct.Store(direct)
	err := e.cfg.Topology.RunBatch(ctx, e.cfg.JS, broker.ConsumeOptions{
		Stream:  schemas.StreamDomainEvents,
		Durable: broker.ConsumerEnforcer,
		Batch:   e.cfg.Batch,
		Workers: 1,
		MaxWait: 2 * time.Second,
		Logger:  e.cfg.Logger,
	}, e.HandleBatch)
	e.direct.Store(nil)
	stopRelay()
	wg.Wait()
	return errors.Join(err, relayErr)
}

type changedMsg struct {
	msg    jetstream.Msg
	id     string
	change schemas.DomainChanged
}

// HandleBatch handles one fetched batch of DOMAIN_EVENTS messages and
// settles each as soon as it is handled (broker.BatchHandler): heartbeats
// are applied together in one transaction; changed events in groups of
// whole domains, one transaction each (EnforceChangedGroup), in order per
// domain, groups in parallel (Workers). Bad
// input is Permanent (dead-lettered), other failures Retry (the broker's
// policy). It returns nil.
func (e *Enforcer) HandleBatch(ctx context.Context, msgs []jetstream.Msg, settle func(jetstream.Msg, broker.Outcome)) error {
	ns := e.cfg.Topology.Namespace
	var (
		hbs    []schemas.DomainChecked
		hbMsgs []jetstream.Msg
		byDom  = map[string][]changedMsg{}
		order  []string
	)
	for _, msg := range msgs {
		subject := ns.Strip(msg.Subject())
		switch {
		case strings.HasPrefix(subject, schemas.SubjectChangedPrefix):
			ev, ch, err := schemas.Decode[schemas.DomainChanged](msg.Data())
			if err == nil && ch.Domain != strings.TrimPrefix(subject, schemas.SubjectChangedPrefix) {
				err = fmt.Errorf("%w: payload domain %q does not match subject %s", schemas.ErrInvalid, ch.Domain, subject)
			}
			if err == nil {
				err = e.checkObservedAt(ch.Evidence.ObservedAt)
			}
			if err != nil {
				e.metrics.events.WithLabelValues(ResultInvalid).Inc()
				settle(msg, broker.Permanent(err))
				continue
			}
			id := ev.ID
			if id == "" { // bare JSON: the stream sequence is stable across redelivery
				id = messageSeqID(msg)
			}
			if _, ok := byDom[ch.Domain]; !ok {
				order = append(order, ch.Domain)
			}
			byDom[ch.Domain] = append(byDom[ch.Domain], changedMsg{msg: msg, id: id, change: ch})
		case strings.HasPrefix(subject, schemas.SubjectCheckedPrefix):
			_, hb, err := schemas.Decode[schemas.DomainChecked](msg.Data())
			if err == nil && hb.Domain != strings.TrimPrefix(subject, schemas.SubjectCheckedPrefix) {
				err = fmt.Errorf("%w: payload domain %q does not match subject %s", schemas.ErrInvalid, hb.Domain, subject)
			}
			if err == nil {
				err = e.checkObservedAt(hb.ObservedAt)
			}
			if err != nil {
				e.metrics.heartbeats.WithLabelValues("invalid").Inc()
				settle(msg, broker.Permanent(err))
				continue
			}
			hbs = append(hbs, hb)
			hbMsgs = append(hbMsgs, msg)
		default:
			settle(msg, broker.Permanent(fmt.Errorf("%w: unexpected subject %s", schemas.ErrInvalid, subject)))
		}
	}

	if len(hbs) > 0 {
		_, err := e.ApplyHeartbeats(ctx, hbs)
		for _, m := range hbMsgs {
			settle(m, e.outcome(err))
		}
	}

	// Changed events go in groups of whole domains, each group one
	// transaction (see EnforceChangedGroup), groups in parallel. Domains are
	// sorted so that concurrent transactions (workers, replicas) lock
	// domain rows in the same order and cannot deadlock each other.
	slices.Sort(order)
	var groups [][]changedMsg
	var cur []changedMsg
	for _, dom := range order {
		if len(cur) > 0 && len(cur)+len(byDom[dom]) > e.cfg.Group {
			groups = append(groups, cur)
			cur = nil
		}
		cur = append(cur, byDom[dom]...)
	}
	if len(cur) > 0 {
		groups = append(groups, cur)
	}
	work := make(chan []changedMsg)
	var wg sync.WaitGroup
	for range min(e.cfg.Workers, len(groups)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for g := range work {
				items := make([]ChangeItem, len(g))
				for i, c := range g {
					items[i] = ChangeItem{MsgID: c.id, Change: c.change}
				}
				_, errs := e.EnforceChangedGroup(ctx, items)
				for i, c := range g {
					settle(c.msg, e.outcome(errs[i]))
				}
			}
		}()
	}
	for _, g := range groups {
		work <- g
	}
	close(work)
	wg.Wait()
	return nil
}

func messageSeqID(msg jetstream.Msg) string {
	if meta, err := msg.Metadata(); err == nil {
		return fmt.Sprintf("%s/%d", meta.Stream, meta.Sequence.Stream)
	}
	return msg.Subject()
}

// outcome is the outcome of enforcing one message (broker.OutcomeOf),
// counting bad input.
func (e *Enforcer) outcome(err error) broker.Outcome {
	o := broker.OutcomeOf(err)
	if o.IsPermanent() {
		e.metrics.events.WithLabelValues(ResultInvalid).Inc()
	}
	return o
}

// checkObservedAt records the clock skew of an observation and refuses
// (as invalid input, so it is dead-lettered with the reason) one dated more
// than lifecycle.MaxClockSkew in the future.
func (e *Enforcer) checkObservedAt(observedAt time.Time) error {
	now := e.cfg.Clock.Now()
	e.metrics.clockSkew.Set(observedAt.Sub(now).Seconds())
	if err := lifecycle.CheckObservedAt(observedAt, now); err != nil {
		return fmt.Errorf("%w: %w", schemas.ErrInvalid, err)
	}
	return nil
}
