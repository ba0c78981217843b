// Package deadletters reads the DLQ stream and replays dead letters to the
// subject they came from. The `domainguard dlq` command and the operator
// console both use it, so a replay is the same operation from either.
package deadletters

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/domainguard/domainguard/schemas"
)

// Entry is one message of the DLQ stream.
type Entry struct {
	Seq    uint64             `json:"dlq_sequence"`
	Letter schemas.DeadLetter `json:"letter"`
	// PayloadJSON is letter.payload (base64 in JSON) decoded, when it is
	// JSON; PayloadText when it is other UTF-8 text. For reading only:
	// Replay sends letter.payload.
	PayloadJSON json.RawMessage `json:"payload_json,omitempty"`
	PayloadText string          `json:"payload_text,omitempty"`
}

func newEntry(seq uint64, dl schemas.DeadLetter) Entry {
	e := Entry{Seq: seq, Letter: dl}
	switch {
	case json.Valid(dl.Payload):
		e.PayloadJSON = dl.Payload
	case utf8.Valid(dl.Payload):
		e.PayloadText = string(dl.Payload)
	}
	return e
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

// List returns up to limit dead letters, oldest first.
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
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // replayed (deleted) or aged out
		}
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// Get reads one dead letter by its DLQ sequence number. A missing one
// wraps jetstream.ErrMsgNotFound.
func Get(ctx context.Context, stream jetstream.Stream, seq uint64) (Entry, error) {
	raw, err := stream.GetMsg(ctx, seq)
	if err != nil {
		return Entry{}, fmt.Errorf("dlq read %d: %w", seq, err)
	}
	var dl schemas.DeadLetter
	if err := json.Unmarshal(raw.Data, &dl); err != nil {
		return Entry{}, fmt.Errorf("dlq message %d is not a dead letter: %w", seq, err)
	}
	return newEntry(seq, dl), nil
}

// Replay republishes the original message of dead letter seq to its
// original subject and then deletes the dead letter, returning what it
// replayed. The replay's Nats-Msg-Id is derived from the dead letter, so
// replaying twice (a crash between publish and delete) publishes once
// within the duplicate window.
func Replay(ctx context.Context, js jetstream.JetStream, stream jetstream.Stream, ns schemas.Namespace, seq uint64) (Entry, error) {
	e, err := Get(ctx, stream, seq)
	if err != nil {
		return Entry{}, fmt.Errorf("dlq replay: %w", err)
	}
	dl := e.Letter
	msg := &nats.Msg{Subject: ns.Subject(dl.Subject), Data: dl.Payload, Header: nats.Header{}}
	for k, vs := range dl.Headers {
		for _, v := range vs {
			msg.Header.Add(k, v)
		}
	}
	msg.Header.Set(schemas.HeaderMsgID, "replay-"+dl.Stream+"-"+strconv.FormatUint(dl.Sequence, 10)+"-"+strconv.FormatUint(seq, 10))
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		return Entry{}, fmt.Errorf("dlq replay %d to %s: %w", seq, msg.Subject, err)
	}
	if err := stream.DeleteMsg(ctx, seq); err != nil {
		return Entry{}, fmt.Errorf("dlq replay %d: published, but deleting the dead letter failed: %w", seq, err)
	}
	return e, nil
}
