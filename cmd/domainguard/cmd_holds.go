package main

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/domainguard/domainguard/enforcer"
)

func init() {
	register("holds", command{
		usage: "list [--status pending|approved|rejected|all] | approve ID | reject ID [--by NAME] [--note TEXT]: changes held by the per-domain cap or a protected domain",
		run:   runHolds,
	})
}

func runHolds(ctx context.Context, inv invocation) error {
	fs := flag.NewFlagSet("holds", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON")
	status := fs.String("status", "pending", "list holds in this status (pending, approved, rejected, all)")
	decision := decisionFlags(fs, "decision")
	a, st, rest, err := openStore(ctx, inv, fs, func(rest []string) error {
		if err := checkHoldsArgs(rest); err != nil {
			return err
		}
		if rest[0] == "list" && !slices.Contains([]string{"pending", "approved", "rejected", "all"}, *status) {
			return usageErr("holds list --status %q: want pending, approved, rejected or all", *status)
		}
		return nil
	})
	if err != nil {
		return err
	}
	defer a.close()
	switch rest[0] {
	case "list":
		s := *status
		if s == "all" {
			s = ""
		}
		holds, err := st.ListHolds(ctx, s)
		if err != nil {
			return err
		}
		if *asJSON {
			if holds == nil {
				holds = []enforcer.Hold{} // [] for none, never null
			}
			return writeJSON(inv.stdout, holds)
		}
		w := tabwriter.NewWriter(inv.stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(w, "ID\tDOMAIN\tSTATUS\tCAUSE\tREASON\tPHASE\tADDRESSES\tCREATED")
		for _, h := range holds {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", h.ID, h.Domain, h.Status, h.Cause, h.Reason, h.Phase, len(h.Addresses), h.CreatedAt.UTC().Format(time.RFC3339))
		}
		return w.Flush()
	case "approve":
		res, err := st.Approve(ctx, rest[1], decision())
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(inv.stdout, res)
		}
		fmt.Fprintf(inv.stdout, "hold %s approved: %d addresses on %s unverified (%s)\n", res.Hold.ID, res.Unverified, res.Hold.Domain, res.Hold.Reason)
		return nil
	case "reject":
		h, err := st.Reject(ctx, rest[1], decision())
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(inv.stdout, h)
		}
		fmt.Fprintf(inv.stdout, "hold %s rejected: nothing changed on %s\n", h.ID, h.Domain)
		return nil
	}
	return usageErr("holds: unknown subcommand %q", rest[0])
}

// checkHoldsArgs finds usage errors before the database is opened.
func checkHoldsArgs(rest []string) error {
	if len(rest) == 0 {
		return usageErr("holds list | holds approve ID | holds reject ID")
	}
	switch rest[0] {
	case "list":
		if len(rest) != 1 {
			return usageErr("holds list takes no arguments")
		}
	case "approve", "reject":
		if len(rest) != 2 {
			return usageErr("holds %s ID", rest[0])
		}
	default:
		return usageErr("holds: unknown subcommand %q", rest[0])
	}
	return nil
}
