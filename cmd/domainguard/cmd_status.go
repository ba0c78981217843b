package main

import (
	"context"
	"flag"
	"fmt"
	"text/tabwriter"
	"time"
)

func init() {
	register("status", command{
		usage: "EMAIL|DOMAIN [--json]: current state, evidence and audit history",
		run:   runStatus,
	})
}

func runStatus(ctx context.Context, inv invocation) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON")
	a, st, rest, err := openStore(ctx, inv, fs)
	if err != nil {
		return err
	}
	defer a.close()
	if len(rest) != 1 {
		return usageErr("status EMAIL|DOMAIN [--json]")
	}
	rep, err := st.Status(ctx, rest[0])
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(inv.stdout, rep)
	}
	w := tabwriter.NewWriter(inv.stdout, 2, 4, 2, ' ', 0)
	ts := func(t *time.Time) string {
		if t == nil {
			return "-"
		}
		return t.UTC().Format(time.RFC3339)
	}
	if d := rep.Domain; d != nil {
		fmt.Fprintf(w, "domain\t%s\n", d.Name)
		if !d.Known {
			fmt.Fprintf(w, "known\tno (no address on this domain has been seen)\n")
		} else {
			fmt.Fprintf(w, "phase\t%s (since %s)\n", d.Phase, ts(d.PhaseSince))
			fmt.Fprintf(w, "last checked\t%s\nnext check\t%s\ncheck failures\t%d\n", ts(d.LastCheckedAt), ts(d.NextCheckAt), d.CheckFailures)
			fmt.Fprintf(w, "addresses\t%d verified, %d unverified\n", d.VerifiedCount, d.UnverifiedCount)
			if d.Protected {
				fmt.Fprintf(w, "protected\tyes (changes are held for an operator)\n")
			}
			if ev := d.Evidence; ev != nil {
				fmt.Fprintf(w, "evidence\t%s %v expires %s handle %q\n", ev.Provider, ev.Statuses, ts(ev.ExpiresAt), ev.Handle)
			}
		}
	}
	if len(rep.Emails) > 0 {
		fmt.Fprintln(w, "\nUSER\tEMAIL\tVERIFIED\tVERIFIED AT\tUNVERIFIED AT\tREASON")
		for _, e := range rep.Emails {
			fmt.Fprintf(w, "%s\t%s\t%v\t%s\t%s\t%s\n", e.UserID, e.Email, e.Verified, e.VerifiedAt.UTC().Format(time.RFC3339), ts(e.UnverifiedAt), e.UnverifyReason)
		}
	}
	if len(rep.Holds) > 0 {
		fmt.Fprintln(w, "\nHOLD\tSTATUS\tCAUSE\tREASON\tADDRESSES\tCREATED")
		for _, h := range rep.Holds {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%s\n", h.ID, h.Status, h.Cause, h.Reason, len(h.Addresses), h.CreatedAt.UTC().Format(time.RFC3339))
		}
	}
	if len(rep.Audit) > 0 {
		fmt.Fprintln(w, "\nAUDIT TIME\tTYPE\tEMAIL\tDRY RUN")
		for _, r := range rep.Audit {
			fmt.Fprintf(w, "%s\t%s\t%s\t%v\n", r.CreatedAt.UTC().Format(time.RFC3339), r.Type, r.Email, r.DryRun)
		}
	}
	return w.Flush()
}
