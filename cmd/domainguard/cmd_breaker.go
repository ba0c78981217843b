package main

import (
	"context"
	"flag"
	"fmt"
	"time"
)

func init() {
	register("breaker", command{
		usage: "status | resume [--by NAME] [--note TEXT]: the global breaker that pauses enforcement when too many domains turn non-active",
		run:   runBreaker,
	})
}

func runBreaker(ctx context.Context, inv invocation) error {
	fs := flag.NewFlagSet("breaker", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON")
	decision := decisionFlags(fs, "resume")
	a, st, rest, err := openStore(ctx, inv, fs, func(rest []string) error {
		if len(rest) != 1 || (rest[0] != "status" && rest[0] != "resume") {
			return usageErr("breaker status | breaker resume")
		}
		return nil
	})
	if err != nil {
		return err
	}
	defer a.close()
	switch rest[0] {
	case "status":
		s, err := st.BreakerStatus(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(inv.stdout, s)
		}
		state := "closed (enforcing)"
		if s.Open {
			state = fmt.Sprintf("OPEN since %s: %s", s.OpenedAt.UTC().Format(time.RFC3339), s.Reason)
		}
		fmt.Fprintf(inv.stdout, "breaker: %s\nlast %s: %d domains observed, %d turned non-active (%.1f%%; trips above %.1f%% with at least %d)\npending holds: %d\n",
			state, time.Since(s.Since).Round(time.Minute), s.Observed, s.NonActive, s.Percent, s.ThresholdPct, s.MinDomains, s.PendingHolds)
		return nil
	case "resume":
		res, err := st.Resume(ctx, decision())
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(inv.stdout, res)
		}
		n := 0
		for _, h := range res.Applied {
			n += h.Unverified
		}
		state := "breaker resumed"
		if !res.WasOpen {
			// A resume interrupted earlier left paused changes behind.
			state = "breaker was not open"
		}
		fmt.Fprintf(inv.stdout, "%s: %d paused changes applied, %d addresses unverified\n", state, len(res.Applied), n)
		return nil
	}
	return usageErr("breaker: unknown subcommand %q", rest[0])
}
