package broker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/domainguard/domainguard/internal/redact"
	"github.com/domainguard/domainguard/schemas"
)

// DeadLetter publishes msg, which came from the (unprefixed) stream through
// consumer, to dlq.<stream> as a schemas.DeadLetter (plain JSON, no
// envelope) and then acknowledges the original, which removes it from a
// work-queue stream (so a dead-lettered check no longer blocks later checks
// of its domain). The dead letter's Nats-Msg-Id is "<stream>-<sequence>", so
// dead-lettering the same message twice stores it once. If the publish
// fails, the original is not acknowledged and the error is returned: the
// message is redelivered rather than lost.
func (t Topology) DeadLetter(ctx context.Context, js jetstream.Publisher, msg jetstream.Msg, stream, consumer string, cause error) error {
	t = t.WithDefaults()
	errText := "dead-lettered without a cause"
	if cause != nil && cause.Error() != "" {
		errText = redact.Text(cause.Error())
	}
	dl := schemas.DeadLetter{
		Stream:   stream,
		Consumer: consumer,
		Subject:  t.Namespace.Strip(msg.Subject()),
		Payload:  msg.Data(),
		Error:    errText,
		At:       t.Clock.Now().UTC(),
	}
	if h := msg.Headers(); len(h) > 0 {
		dl.Headers = map[string][]string(h)
	}
	if len(dl.Payload) > schemas.MaxDeadLetterPayload {
		// The letter must fit a NATS message, or the message could never
		// be dead-lettered (and would be retried, then dropped).
		sum := sha256.Sum256(dl.Payload)
		dl.PayloadBytes, dl.PayloadSHA256 = len(dl.Payload), hex.EncodeToString(sum[:])
		dl.Payload = dl.Payload[:schemas.MaxDeadLetterPayload]
	}
	if len(dl.Error) > 4096 {
		dl.Error = dl.Error[:4096]
	}
	meta, err := msg.Metadata()
	if err != nil {
		return fmt.Errorf("dead-letter message on %s: metadata: %w", msg.Subject(), err)
	}
	dl.Sequence = meta.Sequence.Stream
	dl.Deliveries = meta.NumDelivered
	body, err := json.Marshal(dl)
	if err != nil {
		return fmt.Errorf("dead-letter %s seq %d: encode: %w", stream, dl.Sequence, err)
	}
	out := Message{Subject: t.Namespace.DeadLetterSubject(stream), Data: body,
		ID: stream + "-" + strconv.FormatUint(dl.Sequence, 10), ContentType: schemas.ContentTypeJSON}
	if _, err := js.PublishMsg(ctx, out.Msg()); err != nil {
		return fmt.Errorf("dead-letter %s seq %d: publish to %s: %w", stream, dl.Sequence, out.Subject, err)
	}
	// A confirmed ack: when it returns, a work-queue stream has removed the
	// message.
	if err := msg.DoubleAck(ctx); err != nil {
		return fmt.Errorf("dead-letter %s seq %d: ack original: %w", stream, dl.Sequence, err)
	}
	t.Logger.Warn("message dead-lettered", "stream", stream, "consumer", consumer, "subject", dl.Subject,
		"sequence", dl.Sequence, "deliveries", dl.Deliveries, "error", errText)
	return nil
}

// IsLastDelivery reports whether msg is on its last delivery: its handler
// should dead-letter it instead of failing once more, since the server will
// not deliver it again. maxDeliver is the consumer's MaxDeliver; 0 or less
// means the topology's setting for the message's consumer (CheckMaxDeliver
// for the checker, EventMaxDeliver otherwise).
func (t Topology) IsLastDelivery(msg jetstream.Msg, maxDeliver int) bool {
	meta, err := msg.Metadata()
	if err != nil {
		return false
	}
	if maxDeliver <= 0 {
		t = t.WithDefaults()
		maxDeliver = t.EventMaxDeliver
		if meta.Consumer == ConsumerChecker {
			maxDeliver = t.CheckMaxDeliver
		}
	}
	return meta.NumDelivered >= uint64(maxDeliver)
}
