package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/domainguard/domainguard/internal/broker"
	"github.com/domainguard/domainguard/internal/termtext"
	"github.com/domainguard/domainguard/schemas"
)

func init() {
	register("dlq", command{
		usage: "list | replay SEQ... | replay --all: inspect dead-lettered messages and replay them after fixing their cause",
		run:   runDLQ,
	})
}

// deadLetterEntry is one message of the DLQ stream. A message that is not
// a dead letter (anything may have been published on dlq.>) is listed with
// Unreadable set and never replayed.
type deadLetterEntry struct {
	Seq        uint64             `json:"dlq_sequence"`
	DLQSubject string             `json:"dlq_subject"`
	Letter     schemas.DeadLetter `json:"letter"`
	Unreadable string             `json:"unreadable,omitempty"`
}

// dlqConnectTimeout bounds connecting to NATS: an operator command fails
// instead of waiting forever for an unreachable server.
const dlqConnectTimeout = 15 * time.Second

func runDLQ(ctx context.Context, inv invocation) error {
	fs := flag.NewFlagSet("dlq", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON")
	all := fs.Bool("all", false, "replay every dead letter")
	limit := fs.Int("limit", 1000, "list at most this many")
	cfg, rest, log, err := loadConfig(inv, fs)
	if err != nil {
		return err
	}
	// Usage errors are found before connecting, so they read the same on
	// every machine and never wait for a broker.
	seqs, err := checkDLQArgs(rest, *all)
	if err != nil {
		return err
	}
	octx, ocancel := context.WithTimeout(ctx, dlqConnectTimeout)
	a, err := openApp(octx, cfg, log, needs{nats: true})
	if err == nil {
		_, err = a.js.AccountInfo(octx)
		if err != nil {
			a.close()
			err = fmt.Errorf("nats at %s: %w", cfg.NATSURL, err)
		}
	}
	ocancel()
	if err != nil {
		if octx.Err() != nil {
			return fmt.Errorf("dlq: no NATS server answered within %s: %w", dlqConnectTimeout, err)
		}
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
			if e.Unreadable != "" {
				fmt.Fprintf(tw, "%d\t-\t-\t%s\t-\t%s\n", e.Seq, termtext.Escape(e.DLQSubject), termtext.Escape(e.Unreadable))
				continue
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\n", e.Seq, e.Letter.At.Format(time.RFC3339), termtext.Escape(e.Letter.Stream),
				termtext.Escape(e.Letter.Subject), e.Letter.Deliveries, termtext.Escape(e.Letter.Error))
		}
		return tw.Flush()
	case "replay":
		if *all {
			entries, err := readDeadLetters(ctx, stream, 1<<30)
			if err != nil {
				return err
			}
			for _, e := range entries {
				if e.Unreadable != "" {
					fmt.Fprintf(inv.stdout, "skipped DLQ message %d: %s\n", e.Seq, termtext.Escape(e.Unreadable))
					continue
				}
				seqs = append(seqs, e.Seq)
			}
		}
		r := replayer{js: a.js, stream: stream, topo: a.topo, by: replayedBy(cfg.NATSUser), now: time.Now}
		var refused int
		for _, seq := range seqs {
			if err := r.replay(ctx, seq); err != nil {
				if !errors.Is(err, schemas.ErrInvalid) {
					return err
				}
				refused++
				fmt.Fprintf(inv.stdout, "refused dead letter %d: %s\n", seq, termtext.Escape(err.Error()))
				continue
			}
			fmt.Fprintf(inv.stdout, "replayed dead letter %d\n", seq)
		}
		if refused > 0 {
			return fmt.Errorf("dlq replay: %d of %d dead letters refused (they stay in the DLQ)", refused, len(seqs))
		}
		return nil
	default:
		return usageErr("dlq: unknown subcommand %q", rest[0])
	}
}

// checkDLQArgs validates the subcommand and returns the sequence numbers a
// replay names.
func checkDLQArgs(rest []string, all bool) ([]uint64, error) {
	if len(rest) == 0 {
		return nil, usageErr("dlq list | dlq replay SEQ... | dlq replay --all")
	}
	switch rest[0] {
	case "list":
		if len(rest) != 1 {
			return nil, usageErr("dlq list takes no arguments")
		}
		return nil, nil
	case "replay":
		var seqs []uint64
		for _, s := range rest[1:] {
			n, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				return nil, usageErr("dlq replay: %q is not a DLQ sequence number", s)
			}
			seqs = append(seqs, n)
		}
		if len(seqs) == 0 && !all {
			return nil, usageErr("dlq replay needs sequence numbers or --all")
		}
		return seqs, nil
	}
	return nil, usageErr("dlq: unknown subcommand %q", rest[0])
}

func readDeadLetters(ctx context.Context, stream jetstream.Stream, limit int) ([]deadLetterEntry, error) {
	info, err := stream.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("dlq stream info: %w", err)
	}
	var out []deadLetterEntry
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
		e := deadLetterEntry{Seq: seq, DLQSubject: raw.Subject}
		if err := json.Unmarshal(raw.Data, &e.Letter); err != nil {
			e.Letter = schemas.DeadLetter{}
			e.Unreadable = fmt.Sprintf("not a dead letter (%d bytes): %v", len(raw.Data), err)
		}
		out = append(out, e)
	}
	return out, nil
}

// replayer republishes dead letters (see replay).
type replayer struct {
	js     jetstream.JetStream
	stream jetstream.Stream
	topo   broker.Topology
	by     string
	now    func() time.Time
}

// replay republishes one dead letter's original message to its original
// subject, records an audit.dlq.replayed event naming who replayed it, and
// deletes the dead letter. Only what broker.Topology.ReplayTarget allows is
// replayed: a letter that arrived on its own stream's DLQ subject, back to a
// subject of that stream, with a payload valid for it (refusals wrap
// schemas.ErrInvalid and leave the letter in place). The replay's
// Nats-Msg-Id is derived from the dead letter, so replaying twice (a crash
// between publish and delete) publishes once within the duplicate window.
func (r replayer) replay(ctx context.Context, seq uint64) error {
	raw, err := r.stream.GetMsg(ctx, seq)
	if err != nil {
		return fmt.Errorf("dlq replay %d: %w", seq, err)
	}
	var dl schemas.DeadLetter
	if err := json.Unmarshal(raw.Data, &dl); err != nil {
		return fmt.Errorf("%w: dlq replay %d: not a dead letter: %v", schemas.ErrInvalid, seq, err)
	}
	subject, err := r.topo.ReplayTarget(raw.Subject, dl)
	if err != nil {
		return fmt.Errorf("dlq replay %d: %w", seq, err)
	}
	msg := &nats.Msg{Subject: subject, Data: dl.Payload, Header: nats.Header{}}
	for k, vs := range dl.Headers {
		if strings.HasPrefix(k, "Nats-") && k != schemas.HeaderMsgID {
			continue // server directives (expected stream, rollup, ...) are not replayed
		}
		for _, v := range vs {
			msg.Header.Add(k, v)
		}
	}
	msgID := "replay-" + dl.Stream + "-" + strconv.FormatUint(dl.Sequence, 10) + "-" + strconv.FormatUint(seq, 10)
	msg.Header.Set(schemas.HeaderMsgID, msgID)
	sum := sha256.Sum256(dl.Payload)
	record := schemas.DeadLetterReplayed{DLQSequence: seq, Stream: dl.Stream, Sequence: dl.Sequence, Subject: dl.Subject,
		PayloadSHA256: hex.EncodeToString(sum[:]), MessageID: msgID, By: r.by, At: r.now().UTC()}
	ev, err := schemas.NewEventWithID(schemas.DerivedID(raw.Time, "dlq-replayed", msgID), "domainguard/dlq", schemas.SubjectDeadLetterReplayed,
		dl.Subject, record.At, record)
	if err != nil {
		return fmt.Errorf("dlq replay %d: audit event: %w", seq, err)
	}
	// The record first: a replay nobody can attribute never happens.
	if _, err := broker.PublishEvent(ctx, r.js, r.topo.Namespace.Subject(schemas.SubjectDeadLetterReplayed), ev); err != nil {
		return fmt.Errorf("dlq replay %d: record the replay on %s: %w", seq, schemas.SubjectDeadLetterReplayed, err)
	}
	if _, err := r.js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("dlq replay %d to %s: %w", seq, msg.Subject, err)
	}
	if err := r.stream.DeleteMsg(ctx, seq); err != nil {
		return fmt.Errorf("dlq replay %d: published, but deleting the dead letter failed: %w", seq, err)
	}
	return nil
}

// replayedBy names who replays: the NATS user, and the OS user and host.
func replayedBy(natsUser string) string {
	if natsUser == "" {
		natsUser = "(none)"
	}
	osUser := os.Getenv("USER")
	if u, err := user.Current(); err == nil {
		osUser = u.Username
	}
	host, _ := os.Hostname()
	return fmt.Sprintf("nats:%s os:%s@%s", natsUser, osUser, host)
}
