package checker

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/domainguard/domainguard/internal/testwait"
	"github.com/domainguard/domainguard/lifecycle"
	"github.com/domainguard/domainguard/schemas"
)

// flakyJS fails the first publishes of changed events, as a stream does
// while it elects a new leader.
type flakyJS struct {
	jetstream.JetStream
	fails atomic.Int32
}

func (f *flakyJS) PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	if strings.Contains(msg.Subject, "domains.changed.") && f.fails.Add(-1) >= 0 {
		return nil, errors.New("nats: no response from stream")
	}
	return f.JetStream.PublishMsg(ctx, msg, opts...)
}

// A failed publish is retried with the same event, without a second
// provider lookup.
func TestPublishRetriedWithoutSecondLookup(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 0)
	p := &fakeProvider{answer: func(_ context.Context, domain string, n int) (lifecycle.Observation, error) {
		return observation(domain, lifecycle.PhaseRedemption), nil
	}}
	js := &flakyJS{JetStream: e.js}
	js.fails.Store(3)
	cfg := e.baseConfig(t, p)
	cfg.JS = js
	startWorker(t, cfg)
	prev := observation("election.com", lifecycle.PhaseActive)
	e.publishCheck(t, "election.com", &prev)

	msgs := e.waitEvents(t, 1, 500*time.Millisecond)
	if msgs[0].Subject != e.topo.Namespace.ChangedSubject("election.com") {
		t.Errorf("event on %s, want changed", msgs[0].Subject)
	}
	if n := len(p.callTimes("election.com")); n != 1 {
		t.Errorf("%d lookups, want 1 (the publish is retried, not the lookup)", n)
	}
	testwait.For(t, 10*time.Second, "check acknowledged", func() bool { return e.pendingChecks(t) == 0 })
}

// A previous observation that carries a phase but no evidence yields a
// valid changed event without previous_evidence (not an empty one, which
// the schema refuses).
func TestChangeAfterPhaseWithoutEvidence(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 0)
	p := &fakeProvider{answer: func(_ context.Context, domain string, n int) (lifecycle.Observation, error) {
		return observation(domain, lifecycle.PhaseExpired), nil
	}}
	startWorker(t, e.baseConfig(t, p))
	e.publishCheck(t, "bare.com", &lifecycle.Observation{Domain: "bare.com", Phase: lifecycle.PhaseActive})
	msgs := e.waitEvents(t, 1, 300*time.Millisecond)
	_, ch, err := schemas.Decode[schemas.DomainChanged](msgs[0].Data)
	if err != nil {
		t.Fatalf("changed event invalid: %v", err)
	}
	if ch.PreviousPhase != lifecycle.PhaseActive || ch.PreviousEvidence != nil || ch.Phase != lifecycle.PhaseExpired {
		t.Fatalf("changed event %+v", ch)
	}
}
