package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/domainguard/domainguard/internal/coverage"
)

func init() {
	register("coverage", command{
		usage: "[--json]: per TLD, the watched domains and addresses and which evidence covers them (rdap, commercial, dns, none), with totals",
		run:   runCoverage,
	})
}

func runCoverage(ctx context.Context, inv invocation) error {
	fs := flag.NewFlagSet("coverage", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON")
	cfg, rest, log, err := loadConfig(inv, fs)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return usageErr("coverage [--json]")
	}
	sources, err := coverageSources(cfg, log)
	if err != nil {
		return err
	}
	a, err := openApp(ctx, cfg, log, needs{db: true})
	if err != nil {
		return err
	}
	defer a.close()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	rep, err := coverage.Query(ctx, a.pool, sources)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(inv.stdout, rep)
	}
	return writeCoverage(inv.stdout, rep)
}

// writeCoverage prints the report as a table with totals.
func writeCoverage(w io.Writer, rep coverage.Report) error {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "TLD\tdomains\taddresses\tsource\t")
	for _, t := range rep.TLDs {
		label := "." + t.TLD
		if t.PrivateSuffix {
			label += " (private suffixes: own names)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t\n", label, coverage.Thousands(t.Domains), coverage.Thousands(t.Addresses), t.Source)
	}
	fmt.Fprintf(tw, "total\t%s\t%s\t\t\n", coverage.Thousands(rep.Domains), coverage.Thousands(rep.Addresses))
	for _, s := range coverage.AllSources {
		fmt.Fprintf(tw, "%s\t\t%s\t%.1f %%\t\n", s, coverage.Thousands(rep.BySource[s]), rep.Share(s))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if _, err := fmt.Fprintln(w, rep.Summary()); err != nil {
		return err
	}
	if _, none := rep.PrivateSuffix(); none > 0 {
		_, err := fmt.Fprintf(w, "%s addresses NOT COVERED: %s\n", coverage.Thousands(none), coverage.NotCoveredPrivate)
		return err
	}
	return nil
}
