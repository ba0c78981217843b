package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/domainguard/domainguard/schemas"
)

func init() {
	register("dlq", command{
		usage: "list | replay SEQ... | replay --all: inspect dead-lettered messages and replay them after fixing their cause",
		run:   runDLQ,
	})
}

// deadLetterEntry is one message of the DLQ stream.
type deadLetterEntry struct {
	Seq    uint64             `json:"dlq_sequence"`
	Letter schemas.DeadLetter `json:"letter"`
	// PayloadJSON is letter.payload (base64) decoded, when it is JSON;
	// PayloadText when it is other UTF-8 text.
	PayloadJSON json.RawMessage `json:"payload_json,omitempty"`
	PayloadText string          `json:"payload_text,omitempty"`
}

func newDeadLetterEntry(seq uint64, dl schemas.DeadLetter) deadLetterEntry {
	e := deadLetterEntry{Seq: seq, Letter: dl}
	switch {
	case json.Valid(dl.Payload):
		e.PayloadJSON = dl.Payload
	case utf8.Valid(dl.Payload):
		e.PayloadText = string(dl.Payload)
	}
	return e
}

func runDLQ(ctx context.Context, inv invocation) error {
	fs := flag.NewFlagSet("dlq", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON")
	all := fs.Bool("all", false, "replay every dead letter")
	limit := fs.Int("limit", 1000, "list at most this many")
	cfg, rest, log, err := loadConfig(inv, fs)
	if err != nil {
		return err
	}
	if len(rest) == 0 {
		return usageErr("dlq list | dlq replay SEQ... | dlq replay --all")
	}
	a, err := openApp(ctx, cfg, log, needs{nats: true})
	if err != nil {
		return err
	}
	defer a.close()
	stream, err := a.js.Stream(ctx, a.topo.Namespace.Stream(schemas.StreamDLQ))
	if err != nil {
		return fmt.Errorf("dlq stream: %w", err)
	}
	switch rest[0] {
	case "list":
		entries, err := readDeadLetters(ctx, stream, *limit)
		if err != nil {
			return err
		}
		if *asJSON {
			enc := json.NewEncoder(inv.stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(entries)
		}
		tw := tabwriter.NewWriter(inv.stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SEQ\tAT\tSTREAM\tSUBJECT\tDELIVERIES\tERROR")
		for _, e := range entries {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\n", e.Seq, e.Letter.At.Format(time.RFC3339), e.Letter.Stream,
				e.Letter.Subject, e.Letter.Deliveries, e.Letter.Error)
		}
		return tw.Flush()
	case "replay":
		var seqs []uint64
		if *all {
			entries, err := readDeadLetters(ctx, stream, 1<<30)
			if err != nil {
				return err
			}
			for _, e := range entries {
				seqs = append(seqs, e.Seq)
			}
		}
		for _, s := range rest[1:] {
			n, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				return usageErr("dlq replay: %q is not a DLQ sequence number", s)
			}
			seqs = append(seqs, n)
		}
		if len(seqs) == 0 {
			return usageErr("dlq replay needs sequence numbers or --all")
		}
		for _, seq := range seqs {
			if err := replayDeadLetter(ctx, a.js, stream, a.topo.Namespace, seq); err != nil {
				return err
			}
			fmt.Fprintf(inv.stdout, "replayed dead letter %d\n", seq)
		}
		return nil
	default:
		return usageErr("dlq: unknown subcommand %q", rest[0])
	}
}

func readDeadLetters(ctx context.Context, stream jetstream.Stream, limit int) ([]deadLetterEntry, error) {
	info, err := stream.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("dlq stream info: %w", err)
	}
	out := []deadLetterEntry{} // [] for none, never null
	if info.State.Msgs == 0 {
		return out, nil
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && len(out) < limit; seq++ {
		raw, err := stream.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // replayed (deleted) or aged out
		}
		if err != nil {
			return nil, fmt.Errorf("dlq read %d: %w", seq, err)
		}
		var dl schemas.DeadLetter
		if err := json.Unmarshal(raw.Data, &dl); err != nil {
			return nil, fmt.Errorf("dlq message %d is not a dead letter: %w", seq, err)
		}
		out = append(out, newDeadLetterEntry(seq, dl))
	}
	return out, nil
}

// replayDeadLetter republishes the original message to its original subject
// and then deletes the dead letter. The replay's Nats-Msg-Id is derived from
// the dead letter, so replaying twice (a crash between publish and delete)
// publishes once within the duplicate window.
func replayDeadLetter(ctx context.Context, js jetstream.JetStream, stream jetstream.Stream, ns schemas.Namespace, seq uint64) error {
	raw, err := stream.GetMsg(ctx, seq)
	if err != nil {
		return fmt.Errorf("dlq replay %d: %w", seq, err)
	}
	var dl schemas.DeadLetter
	if err := json.Unmarshal(raw.Data, &dl); err != nil {
		return fmt.Errorf("dlq replay %d: not a dead letter: %w", seq, err)
	}
	msg := &nats.Msg{Subject: ns.Subject(dl.Subject), Data: dl.Payload, Header: nats.Header{}}
	for k, vs := range dl.Headers {
		for _, v := range vs {
			msg.Header.Add(k, v)
		}
	}
	msg.Header.Set(schemas.HeaderMsgID, "replay-"+dl.Stream+"-"+strconv.FormatUint(dl.Sequence, 10)+"-"+strconv.FormatUint(seq, 10))
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("dlq replay %d to %s: %w", seq, msg.Subject, err)
	}
	if err := stream.DeleteMsg(ctx, seq); err != nil {
		return fmt.Errorf("dlq replay %d: published, but deleting the dead letter failed: %w", seq, err)
	}
	return nil
}
