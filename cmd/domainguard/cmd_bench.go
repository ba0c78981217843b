package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/domainguard/domainguard/bench"
)

func init() {
	register("bench", command{
		usage: "measure the pipeline against bare NATS and PostgreSQL baselines (table, --json); see docs/benchmarks.md",
		run:   runBench,
	})
}

func runBench(ctx context.Context, inv invocation) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	def := bench.Options{}.WithDefaults()
	var o bench.Options
	fs.IntVar(&o.Domains, "domains", def.Domains, "due domains the sweep enqueues")
	fs.IntVar(&o.Emails, "emails", 0, "verified addresses the enforcer phase unverifies (default 10 per domain, at most 200000; with --scale 10 per domain)")
	fs.IntVar(&o.EmailsPerDomain, "emails-per-domain", def.EmailsPerDomain, "addresses per lapsed domain")
	fs.IntVar(&o.EnforcerRounds, "enforcer-rounds", def.EnforcerRounds, "rounds of the enforcer phase's three arms (bare UPDATE, floor, enforcer), interleaved")
	fs.Float64Var(&o.CheckRate, "check-rate", def.CheckRate, "checker rate limit in the checker phase (lookups/s)")
	fs.DurationVar(&o.CheckDuration, "check-duration", def.CheckDuration, "checker phase length at the rate limit")
	fs.DurationVar(&o.ProviderLatency, "provider-latency", def.ProviderLatency, "fake provider answer time")
	fs.Float64Var(&o.E2ERate, "e2e-rate", def.E2ERate, "end-to-end feed (domains/s)")
	fs.DurationVar(&o.E2EDuration, "e2e-duration", def.E2EDuration, "end-to-end feed length")
	fs.IntVar(&o.E2EChangeEvery, "e2e-change-every", def.E2EChangeEvery, "every n-th end-to-end domain lapses")
	only := fs.String("only", "", "comma-separated phases to run: "+strings.Join(bench.Phases, ","))
	jsonFile := fs.String("json", "", "also write the report(s) as JSON to this file")
	scale := fs.String("scale", "", "comma-separated domain counts (e.g. 100000,1000000): run the sweep and enforcer phases at each size (10 emails per domain unless --emails) to show how time and memory grow")
	plotDir := fs.String("plot-dir", "", "with --scale: write "+bench.PlotScaleTime+" and "+bench.PlotScaleMemory+" into this directory (a build with -tags plot only)")
	cfg, rest, log, err := loadConfig(inv, fs)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageErr("bench takes no arguments")
	}
	o.NATSURL = cfg.NATSURL
	o.DatabaseURL = cfg.DatabaseURL
	o.Logger = log
	if *only != "" {
		o.Only = strings.Split(*only, ",")
	}
	if err := o.WithDefaults().Validate(); err != nil {
		return usageErr("%v", err)
	}

	var sizes []int
	if *scale != "" {
		for _, s := range strings.Split(*scale, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || n < 1 {
				return usageErr("--scale: %q is not a domain count", s)
			}
			sizes = append(sizes, n)
		}
		if *only == "" {
			o.Only = []string{bench.PhaseSweep, bench.PhaseEnforcer}
		}
	} else if *plotDir != "" {
		return usageErr("--plot-dir needs --scale")
	}
	if *plotDir != "" && !bench.PlotsBuiltIn {
		return usageErr("--plot-dir: %v", bench.ErrPlotsNotBuilt)
	}

	var reps []bench.Report
	if len(sizes) == 0 {
		rep, err := bench.Run(ctx, o)
		if err != nil {
			return err
		}
		reps = append(reps, rep)
	}
	for _, n := range sizes {
		so := o
		so.Domains = n
		if so.Emails == 0 {
			so.Emails = n * so.EmailsPerDomain
		}
		fmt.Fprintf(inv.stdout, "== %d domains, %d emails\n", so.Domains, so.Emails)
		rep, err := bench.Run(ctx, so)
		if err != nil {
			return err
		}
		if err := rep.Table(inv.stdout); err != nil {
			return err
		}
		reps = append(reps, rep)
	}
	if len(sizes) == 0 {
		if err := reps[0].Table(inv.stdout); err != nil {
			return err
		}
	}
	if *jsonFile != "" {
		var body []byte
		if len(sizes) == 0 {
			body, err = reps[0].JSON()
		} else {
			body, err = json.MarshalIndent(reps, "", "  ")
			body = append(body, '\n')
		}
		if err != nil {
			return err
		}
		if err := os.WriteFile(*jsonFile, body, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", *jsonFile, err)
		}
	}
	if *plotDir != "" {
		if err := bench.WriteScalePlots(*plotDir, reps); err != nil {
			return err
		}
	}
	return nil
}
