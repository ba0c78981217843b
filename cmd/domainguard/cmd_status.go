package main

import (
	"context"
	"flag"
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
	a, st, rest, err := openStore(ctx, inv, fs, func(rest []string) error {
		if len(rest) != 1 {
			return usageErr("status EMAIL|DOMAIN [--json]")
		}
		return nil
	})
	if err != nil {
		return err
	}
	defer a.close()
	rep, err := st.Status(ctx, rest[0])
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(inv.stdout, rep)
	}
	return rep.WriteText(inv.stdout)
}
