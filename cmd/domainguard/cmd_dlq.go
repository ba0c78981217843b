package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/domainguard/domainguard/internal/deadletters"
	"github.com/domainguard/domainguard/internal/redact"
	"github.com/domainguard/domainguard/internal/termtext"
	"github.com/domainguard/domainguard/schemas"
)

func init() {
	register("dlq", command{
		usage: "list | replay SEQ... | replay --all: inspect dead-lettered messages and replay them after fixing their cause",
		run:   runDLQ,
	})
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
	// Usage errors are found before connecting, so they read the same on
	// every machine and never wait for a broker.
	seqs, err := checkDLQArgs(rest, *all)
	if err != nil {
		return err
	}
	// An unreachable server fails the command instead of waiting forever.
	octx, ocancel := context.WithTimeout(ctx, dlqConnectTimeout)
	a, err := openApp(octx, cfg, log, needs{nats: true})
	if err == nil {
		if _, err = a.js.AccountInfo(octx); err != nil {
			a.close()
			err = fmt.Errorf("nats at %s: %w", redact.List(cfg.NATSURL), err)
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
	stream, err := deadletters.Stream(ctx, a.js, a.topo.Namespace)
	if err != nil {
		return err
	}
	switch rest[0] {
	case "list":
		entries, err := deadletters.List(ctx, stream, *limit)
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
			entries, err := deadletters.List(ctx, stream, 1<<30)
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
		by := replayedBy(cfg.NATSUser)
		var refused int
		for _, seq := range seqs {
			if _, err := deadletters.Replay(ctx, a.js, stream, a.topo, seq, by, time.Now()); err != nil {
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

// dlqConnectTimeout bounds connecting to NATS.
const dlqConnectTimeout = 15 * time.Second

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
