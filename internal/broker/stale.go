package broker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/domainguard/domainguard/schemas"
)

// ReplaceStaleCheck is called when the publish of check (a message on
// domains.check.<domain>) was refused as already pending (IsAlreadyPending).
// It inspects the pending message of that subject and, when it is stale,
// deletes it and publishes check in its place. A pending check is stale
// when the checker's consumer will never deliver it (its stream sequence
// is at or below the consumer's ack floor: left behind by a server crash)
// or when it was delivered and is older than staleAfter (it outlived every
// delivery the consumer allows; the caller only publishes for a domain
// whose lease ran out, so a replaced check was not wanted any more). Without this, a stranded check
// refuses every later check of its domain for good (one message per
// subject, discard new). It reports whether check was published.
func (t Topology) ReplaceStaleCheck(ctx context.Context, js jetstream.JetStream, check *nats.Msg, staleAfter time.Duration, now time.Time) (bool, error) {
	t = t.WithDefaults()
	stream, err := js.Stream(ctx, t.Namespace.Stream(schemas.StreamDomainChecks))
	if err != nil {
		return false, fmt.Errorf("inspect pending check on %s: %w", check.Subject, err)
	}
	pending, err := stream.GetLastMsgForSubject(ctx, check.Subject)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		// Taken meanwhile: publish again below.
	case err != nil:
		return false, fmt.Errorf("inspect pending check on %s: %w", check.Subject, err)
	default:
		cons, err := js.Consumer(ctx, stream.CachedInfo().Config.Name, ConsumerChecker)
		if err != nil {
			return false, fmt.Errorf("inspect pending check on %s: consumer: %w", check.Subject, err)
		}
		info, err := cons.Info(ctx)
		if err != nil {
			return false, fmt.Errorf("inspect pending check on %s: consumer info: %w", check.Subject, err)
		}
		belowFloor := pending.Sequence <= info.AckFloor.Stream
		// Delivered before and older than all its deliveries could take:
		// the consumer gave up on it (out of deliveries). A check not yet
		// delivered (a backlog) is never stale: it will be.
		age := now.Sub(pending.Time)
		outlived := pending.Sequence <= info.Delivered.Stream && age > staleAfter
		if !belowFloor && !outlived {
			return false, nil
		}
		t.Logger.Warn("replacing a stale pending check", "subject", check.Subject, "sequence", pending.Sequence,
			"age", age.Round(time.Second), "below_ack_floor", belowFloor, "ack_floor", info.AckFloor.Stream)
		if err := stream.DeleteMsg(ctx, pending.Sequence); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return false, fmt.Errorf("delete stale check %d on %s: %w", pending.Sequence, check.Subject, err)
		}
	}
	if _, err := js.PublishMsg(ctx, check); err != nil {
		if IsAlreadyPending(err) {
			return false, nil // a fresh check got there first
		}
		return false, fmt.Errorf("publish check on %s in place of a stale one: %w", check.Subject, err)
	}
	return true, nil
}

// StrandedChecks counts the messages of DOMAIN_CHECKS that the checker's
// consumer neither will deliver nor has delivered unacknowledged: stream
// messages minus the consumer's pending and ack-pending counts. Above zero
// for long, checks are stranded (below the ack floor after a crash, or out
// of deliveries) and refuse later checks of their domains until
// ReplaceStaleCheck or the stream's MaxAge removes them.
func (t Topology) StrandedChecks(ctx context.Context, js jetstream.JetStream) (int64, error) {
	t = t.WithDefaults()
	name := t.Namespace.Stream(schemas.StreamDomainChecks)
	stream, err := js.Stream(ctx, name)
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", name, err)
	}
	cons, err := js.Consumer(ctx, name, ConsumerChecker)
	if err != nil {
		return 0, fmt.Errorf("consumer %s on %s: %w", ConsumerChecker, name, err)
	}
	// Consumer first: a message published in between then counts as in
	// the stream but not yet pending, once, rather than the other way.
	ci, err := cons.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("consumer %s info: %w", ConsumerChecker, err)
	}
	si, err := stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("stream %s info: %w", name, err)
	}
	return int64(si.State.Msgs) - int64(ci.NumPending) - int64(ci.NumAckPending), nil
}
