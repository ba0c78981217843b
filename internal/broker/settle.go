package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/domainguard/domainguard/schemas"
)

// Outcome is how a handler finished with one message. Handlers never
// acknowledge messages themselves: they return an Outcome and the consumer
// loop settles the message by the one policy every role shares
// (Topology.Settle), the way a message router with a poison queue does.
type Outcome struct {
	action action
	delay  time.Duration // retry: redeliver after this (0: the growing delay)
	err    error
}

type action int

const (
	actionDone action = iota
	actionRetry
	actionPermanent
	actionRelease
)

// Done: the message is handled; it is acknowledged.
func Done() Outcome { return Outcome{action: actionDone} }

// Retry: a transient failure. The message is redelivered after a delay
// that grows with every delivery (ConsumeOptions.NakDelay doubled per
// delivery, up to 1 minute), and dead-lettered on its last delivery
// instead of failing once more.
func Retry(err error) Outcome { return Outcome{action: actionRetry, err: err} }

// RetryAfter is Retry with a delay the handler knows (a server's
// Retry-After, a paused provider): the message is redelivered after d (the
// growing delay when d <= 0), and dead-lettered on its last delivery.
func RetryAfter(d time.Duration, err error) Outcome {
	return Outcome{action: actionRetry, delay: max(d, 0), err: err}
}

// Permanent: the message can never be handled (bad input); it is
// dead-lettered with err as the reason at once.
func Permanent(err error) Outcome { return Outcome{action: actionPermanent, err: err} }

// Release: the message was not handled (shutdown began); it goes back to
// the queue at once, for another worker, without counting as a failure.
func Release(err error) Outcome { return Outcome{action: actionRelease, err: err} }

// OutcomeOf is the outcome of a handler's error: Done for nil, Permanent
// for errors wrapping schemas.ErrInvalid, Retry for the rest.
func OutcomeOf(err error) Outcome {
	switch {
	case err == nil:
		return Done()
	case errors.Is(err, schemas.ErrInvalid):
		return Permanent(err)
	}
	return Retry(err)
}

// Err is the failure the outcome carries (nil for Done).
func (o Outcome) Err() error { return o.err }

// IsPermanent reports whether the outcome dead-letters at once.
func (o Outcome) IsPermanent() bool { return o.action == actionPermanent }

// Settlement is what Topology.Settle did with a message.
type Settlement int

// The settlements.
const (
	// Acked: the message is acknowledged (when the ack itself fails, the
	// server redelivers it after its ack wait, and idempotent handling
	// makes that a duplicate).
	Acked Settlement = iota
	// Redelivering: the message was handed back (Nak), now or after a
	// delay.
	Redelivering
	// DeadLettered: the message went to dlq.<stream> and is acknowledged.
	DeadLettered
	// Unsettled: dead-lettering failed; the message was handed back with
	// the growing delay, to be dead-lettered on a later delivery.
	Unsettled
)

func (s Settlement) String() string {
	switch s {
	case Acked:
		return "acked"
	case Redelivering:
		return "redelivering"
	case DeadLettered:
		return "dead-lettered"
	case Unsettled:
		return "unsettled"
	}
	return fmt.Sprintf("settlement(%d)", int(s))
}

// maxNakDelay caps the growing redelivery delay.
const maxNakDelay = time.Minute

// settleTimeout bounds settling one message (an ack, or a dead letter's
// publish and ack), which still happens after shutdown began.
const settleTimeout = 20 * time.Second

// Settle settles msg, from o.Stream through o.Durable (options as for Run),
// by the outcome of its handling: Done acks it (DoubleAck with
// o.ConfirmAck); Retry and RetryAfter nak it with a delay, or dead-letter
// it on its last delivery; Permanent dead-letters it; Release naks it for
// immediate redelivery. A dead letter that cannot be published is nak'd
// with the growing delay. It reports what it did, also to o.OnSettled.
// Run and RunBatch settle every message this way; tests may call it to
// settle a message they handled directly.
func (t Topology) Settle(ctx context.Context, js jetstream.Publisher, o ConsumeOptions, msg jetstream.Msg, out Outcome) Settlement {
	o = o.withDefaults()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	s := t.settle(ctx, js, o, msg, out)
	if o.OnSettled != nil {
		o.OnSettled(msg, s, out)
	}
	return s
}

func (t Topology) settle(ctx context.Context, js jetstream.Publisher, o ConsumeOptions, msg jetstream.Msg, out Outcome) Settlement {
	log := o.Logger.With("subject", msg.Subject())
	switch out.action {
	case actionDone:
		var err error
		if o.ConfirmAck {
			err = msg.DoubleAck(ctx)
		} else {
			err = msg.Ack()
		}
		if err != nil && !errors.Is(err, jetstream.ErrMsgAlreadyAckd) {
			log.Warn("ack failed; the redelivery will be handled as a duplicate", "error", err)
		}
		return Acked
	case actionRelease:
		log.Info("message returned to the queue", "error", out.err)
		nak(log, msg, 0)
		return Redelivering
	case actionRetry:
		if t.IsLastDelivery(msg, o.MaxDeliver) {
			log.Error("giving up on the message after its last delivery", "error", out.err)
			return t.deadLetter(ctx, js, o, log, msg, out.err)
		}
		delay := out.delay
		if delay == 0 {
			delay = nakDelay(o.NakDelay, msg)
		}
		log.Warn("handling failed; the message will be redelivered", "error", out.err, "redeliver_in", delay)
		nak(log, msg, delay)
		return Redelivering
	default:
		return t.deadLetter(ctx, js, o, log, msg, out.err)
	}
}

func (t Topology) deadLetter(ctx context.Context, js jetstream.Publisher, o ConsumeOptions, log *slog.Logger, msg jetstream.Msg, cause error) Settlement {
	if err := t.DeadLetter(ctx, js, msg, o.Stream, o.Durable, cause); err != nil {
		delay := nakDelay(o.NakDelay, msg)
		log.Error("dead-letter failed; the message will be redelivered", "error", err, "redeliver_in", delay)
		nak(log, msg, delay)
		return Unsettled
	}
	return DeadLettered
}

// nakDelay is the growing redelivery delay: first doubled with every
// delivery after the first, up to maxNakDelay.
func nakDelay(first time.Duration, msg jetstream.Msg) time.Duration {
	d := first
	meta, err := msg.Metadata()
	if err != nil {
		return d
	}
	for i := uint64(1); i < meta.NumDelivered && d < maxNakDelay; i++ {
		d *= 2
	}
	return min(d, maxNakDelay)
}

// nak hands msg back for redelivery after delay (at once when 0).
func nak(log *slog.Logger, msg jetstream.Msg, delay time.Duration) {
	var err error
	if delay > 0 {
		err = msg.NakWithDelay(delay)
	} else {
		err = msg.Nak()
	}
	if err != nil && !errors.Is(err, jetstream.ErrMsgAlreadyAckd) {
		log.Warn("nak failed; the message is redelivered after its ack wait", "error", err)
	}
}
