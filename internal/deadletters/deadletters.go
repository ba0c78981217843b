// Package deadletters reads the DLQ stream and replays dead letters to the
// subject they came from. The `domainguard dlq` command and the operator
// console both use it, so a replay is the same operation from either.
package deadletters

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/domainguard/domainguard/internal/broker"
	"github.com/domainguard/domainguard/schemas"
)

// Entry is one message of the DLQ stream. A message that is not a dead
// letter (anything may be published on dlq.>) has Unreadable set and is
// never replayed.
type Entry struct {
	Seq        uint64             `json:"dlq_sequence"`
	DLQSubject string             `json:"dlq_subject"`
	Letter     schemas.DeadLetter `json:"letter"`
	Unreadable string             `json:"unreadable,omitempty"`
	// PayloadJSON is letter.payload (base64 in JSON) decoded, when it is
	// JSON; PayloadText when it is other UTF-8 text. For reading only:
	// Replay sends letter.payload.
	PayloadJSON json.RawMessage `json:"payload_json,omitempty"`
	PayloadText string          `json:"payload_text,omitempty"`
}

// Stream opens the namespace's DLQ stream.
func Stream(ctx context.Context, js jetstream.JetStream, ns schemas.Namespace) (jetstream.Stream, error) {
	s, err := js.Stream(ctx, ns.Stream(schemas.StreamDLQ))
	if err != nil {
		return nil, fmt.Errorf("dlq stream: %w", err)
	}
	return s, nil
}

// Depth is the number of dead letters waiting in the stream.
func Depth(ctx context.Context, stream jetstream.Stream) (uint64, error) {
	info, err := stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("dlq stream info: %w", err)
	}
	return info.State.Msgs, nil
}

// List returns up to limit DLQ messages, oldest first; ones that are not
// dead letters are listed with Unreadable set.
func List(ctx context.Context, stream jetstream.Stream, limit int) ([]Entry, error) {
	info, err := stream.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("dlq stream info: %w", err)
	}
	out := []Entry{}
	if info.State.Msgs == 0 {
		return out, nil
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && len(out) < limit; seq++ {
		e, err := Get(ctx, stream, seq)
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
			continue // replayed (deleted) or aged out
		case errors.Is(err, errNotADeadLetter):
			e.Unreadable = err.Error()
		case err != nil:
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// errNotADeadLetter marks a DLQ message that does not decode as one.
var errNotADeadLetter = errors.New("not a dead letter")

// Get reads one dead letter by its DLQ sequence number. A missing one
// wraps jetstream.ErrMsgNotFound; one that is not a dead letter returns
// the Entry (Seq, DLQSubject) with an error wrapping schemas.ErrInvalid.
func Get(ctx context.Context, stream jetstream.Stream, seq uint64) (Entry, error) {
	raw, err := stream.GetMsg(ctx, seq)
	if err != nil {
		return Entry{}, fmt.Errorf("dlq read %d: %w", seq, err)
	}
	e := Entry{Seq: seq, DLQSubject: raw.Subject}
	if err := json.Unmarshal(raw.Data, &e.Letter); err != nil {
		e.Letter = schemas.DeadLetter{}
		return e, fmt.Errorf("%w: dlq message %d (%d bytes) is %w: %v", schemas.ErrInvalid, seq, len(raw.Data), errNotADeadLetter, err)
	}
	e.Letter.At = e.Letter.At.UTC()
	switch {
	case json.Valid(e.Letter.Payload):
		e.PayloadJSON = e.Letter.Payload
	case utf8.Valid(e.Letter.Payload):
		e.PayloadText = string(e.Letter.Payload)
	}
	return e, nil
}

// Replay republishes the original message of dead letter seq to its
// original subject, after recording who replays it, and then deletes the
// dead letter, returning what it replayed. It runs with the caller's
// (operator's) rights, so it trusts nothing in the letter: only what
// broker.Topology.ReplayTarget allows is replayed (a letter that arrived on
// its own stream's DLQ subject, back to a concrete subject of that stream,
// with a payload valid for it); a refusal wraps schemas.ErrInvalid and
// leaves the letter in place. Before publishing, an audit.dlq.replayed
// event naming by (who replays: NATS user, OS user and host, or a console
// user) is published to AUDIT. Server directives among the letter's
// headers (Nats-… other than Nats-Msg-Id) are dropped. The replay's
// Nats-Msg-Id is derived from the dead letter, so replaying twice (a crash
// between publish and delete) publishes once within the duplicate window.
func Replay(ctx context.Context, js jetstream.Publisher, stream jetstream.Stream, topo broker.Topology, seq uint64, by string, now time.Time) (Entry, error) {
	e, err := Get(ctx, stream, seq)
	if err != nil {
		return Entry{}, fmt.Errorf("dlq replay: %w", err)
	}
	dl := e.Letter
	subject, err := topo.ReplayTarget(e.DLQSubject, dl)
	if err != nil {
		return Entry{}, fmt.Errorf("dlq replay %d: %w", seq, err)
	}
	msgID := "replay-" + dl.Stream + "-" + strconv.FormatUint(dl.Sequence, 10) + "-" + strconv.FormatUint(seq, 10)
	msg := broker.Message{Subject: subject, Data: dl.Payload, ID: msgID, Header: nats.Header{}}
	for k, vs := range dl.Headers {
		if strings.HasPrefix(k, "Nats-") && k != schemas.HeaderMsgID {
			continue
		}
		msg.Header[k] = append(msg.Header[k], vs...)
	}
	sum := sha256.Sum256(dl.Payload)
	record := schemas.DeadLetterReplayed{DLQSequence: seq, Stream: dl.Stream, Sequence: dl.Sequence, Subject: dl.Subject,
		PayloadSHA256: hex.EncodeToString(sum[:]), MessageID: msgID, By: by, At: now.UTC()}
	ev, err := schemas.NewEventWithID(schemas.DerivedID(now, "dlq-replayed", msgID), "domainguard/dlq", schemas.SubjectDeadLetterReplayed,
		dl.Subject, record.At, record)
	if err != nil {
		return Entry{}, fmt.Errorf("dlq replay %d: audit event: %w", seq, err)
	}
	// The record first: a replay nobody can attribute never happens.
	if _, err := broker.PublishEvent(ctx, js, topo.Namespace.Subject(schemas.SubjectDeadLetterReplayed), ev); err != nil {
		return Entry{}, fmt.Errorf("dlq replay %d: record the replay on %s: %w", seq, schemas.SubjectDeadLetterReplayed, err)
	}
	if _, err := js.PublishMsg(ctx, msg.Msg()); err != nil {
		return Entry{}, fmt.Errorf("dlq replay %d to %s: %w", seq, msg.Subject, err)
	}
	if err := stream.DeleteMsg(ctx, seq); err != nil {
		return Entry{}, fmt.Errorf("dlq replay %d: published, but deleting the dead letter failed: %w", seq, err)
	}
	return e, nil
}
