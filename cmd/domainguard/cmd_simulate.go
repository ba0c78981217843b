package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/domainguard/domainguard/internal/config"
	"github.com/domainguard/domainguard/simulate"
)

func init() {
	register("simulate", command{
		usage: "run the seeded lifecycle simulation (policies pypi, domainguard, none); see docs/simulation.md",
		run:   runSimulate,
	})
}

func runSimulate(ctx context.Context, inv invocation) error {
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	fs.SetOutput(inv.stderr)
	var c simulate.Config
	def := simulate.Config{}.WithDefaults()
	fs.Uint64Var(&c.Seed, "seed", def.Seed, "random seed: the same seed gives the same result")
	fs.IntVar(&c.Addresses, "addresses", def.Addresses, "verified email addresses")
	fs.IntVar(&c.Days, "days", def.Days, "simulated period in which expirations fall (days)")
	fs.IntVar(&c.TailDays, "tail-days", def.TailDays, "extra days so that every lapse of the period ends")
	fs.IntVar(&c.ProviderDomains, "provider-domains", def.ProviderDomains, "large mailbox providers (never lapse, protected)")
	fs.Float64Var(&c.ProviderShare, "provider-share", def.ProviderShare, "share of addresses at large mailbox providers")
	fs.Float64Var(&c.OrgShare, "org-share", def.OrgShare, "share of addresses on organisation domains (4..20,000 addresses); the rest are custom domains with 1-3")
	lapse := fs.Float64("lapse-rate", def.LapseRate, "yearly lapse probability of a custom domain (0: none lapse)")
	fs.Float64Var(&c.OrgLapseFactor, "org-lapse-factor", def.OrgLapseFactor, "organisation domains lapse at lapse-rate times this")
	fs.Float64Var(&c.GraceRenewRate, "grace-renew-rate", def.GraceRenewRate, "share of healthy renewals made during the auto-renew period")
	fs.IntVar(&c.GraceRenewMaxDays, "grace-renew-max-days", def.GraceRenewMaxDays, "grace renewals end 1..N days after expiry")
	fs.IntVar(&c.EarlyRenewMaxDays, "early-renew-max-days", def.EarlyRenewMaxDays, "other renewals happen 1..N days before expiry")
	fs.IntVar(&c.LapseSignMaxDays, "lapse-sign-max-days", def.LapseSignMaxDays, "hold/parking appears 0..N days after expiry")
	fs.Float64Var(&c.HoldShare, "hold-share", def.HoldShare, "probability that a lapse puts client hold")
	fs.Float64Var(&c.ParkShare, "park-share", def.ParkShare, "probability that a lapse moves nameservers to parking")
	fs.Float64Var(&c.AuctionRate, "auction-rate", def.AuctionRate, "share of lapses sold at an expiry auction during grace")
	fs.Float64Var(&c.GraceSaleRate, "grace-sale-rate", def.GraceSaleRate, "share of lapses sold by the registrar in the auto-renew grace before any lapse sign (negative: none)")
	fs.IntVar(&c.AuctionMinDay, "auction-min-day", def.AuctionMinDay, "earliest auction day after expiry")
	fs.IntVar(&c.AuctionMaxDay, "auction-max-day", def.AuctionMaxDay, "latest auction day after expiry")
	fs.IntVar(&c.DeleteMinDay, "delete-min-day", def.DeleteMinDay, "earliest deletion day after expiry")
	fs.IntVar(&c.DeleteMaxDay, "delete-max-day", def.DeleteMaxDay, "latest deletion day after expiry")
	fs.IntVar(&c.RedemptionDays, "redemption-days", def.RedemptionDays, "length of the redemption period")
	fs.IntVar(&c.PendingDeleteDays, "pending-delete-days", def.PendingDeleteDays, "length of pending delete; the attacker registers the name on the next day")
	failure := fs.Float64("failure-rate", def.FailureRate, "probability that a lookup fails (0: none)")
	fs.DurationVar(&c.HoldApproval, "hold-approval", def.HoldApproval, "time an operator takes to approve a held decision")
	policies := fs.String("policies", "pypi,domainguard@1000,domainguard",
		"comma-separated policies: pypi[@BUDGET], domainguard[@BUDGET], none; plain domainguard uses the default daily budget "+strconv.Itoa(config.DefaultDailyLookupBudget))
	sweep := fs.String("budget-sweep", "", "comma-separated daily budgets to run domainguard at (e.g. 250,500,1000,2000)")
	recheck := fs.Duration("recheck-interval", config.DefaultRecheckInterval, "domainguard recheck interval of active domains")
	strict := fs.Bool("strict", false, "domainguard strict mode (grace unverifies)")
	maxUnverify := fs.Int("max-unverify-per-domain", config.DefaultMaxUnverifyPerDomain, "domainguard hold cap")
	noRDAP := fs.Float64("no-rdap-share", 0, "also run the DNS-evidence rules on this share of organisation and custom domains put on ccTLDs without RDAP (e.g. 0.15; 0: skip)")
	jsonFile := fs.String("json", "", "write the report as JSON to this file")
	plotDir := fs.String("plot-dir", "", "write "+simulate.PlotDelay+", "+simulate.PlotLookups+" and "+simulate.PlotBudget+" into this directory (a build with -tags plot only)")
	if err := fs.Parse(inv.args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErr("simulate takes no arguments, got %q", fs.Args())
	}
	if *plotDir != "" && !simulate.PlotsBuiltIn {
		// Before the run, not after minutes of it.
		return usageErr("--plot-dir: %v", simulate.ErrPlotsNotBuilt)
	}
	c.LapseRate = zeroMeansNone(*lapse, simulate.NoLapses)
	c.FailureRate = zeroMeansNone(*failure, simulate.NoFailures)
	base := simulate.PolicyConfig{RecheckInterval: *recheck, Strict: *strict, MaxUnverifyPerDomain: *maxUnverify}
	var pols []simulate.PolicyConfig
	for _, spec := range splitList(*policies) {
		p, err := parsePolicy(spec, base)
		if err != nil {
			return err
		}
		pols = append(pols, p)
	}
	var budgets []int
	for _, s := range splitList(*sweep) {
		b, err := strconv.Atoi(s)
		if err != nil || b <= 0 {
			return usageErr("--budget-sweep: %q is not a positive number", s)
		}
		budgets = append(budgets, b)
	}

	w, err := simulate.NewWorld(c)
	if err != nil {
		return usageErr("%v", err)
	}
	rep := simulate.Report{Config: w.Config(), Domains: w.Domains(), Addresses: w.Addresses()}
	run := func(p simulate.PolicyConfig) (simulate.Result, error) {
		started := time.Now()
		r, err := w.Run(ctx, p)
		if err != nil {
			return r, err
		}
		fmt.Fprintf(inv.stderr, "simulate: %s done in %s (%.2f%% prevented)\n", p.Name(), time.Since(started).Round(time.Millisecond), r.PreventedPct)
		return r, nil
	}
	for _, p := range pols {
		r, err := run(p)
		if err != nil {
			return err
		}
		rep.Results = append(rep.Results, r)
	}
	for _, b := range budgets {
		p := base
		p.Kind, p.Budget = simulate.PolicyDomainguard, b
		r, err := run(p)
		if err != nil {
			return err
		}
		rep.Sweep = append(rep.Sweep, r)
	}
	rep.SmallestBudget99 = simulate.SmallestBudgetFor(rep.Sweep, 99)
	if err := rep.WriteText(inv.stdout); err != nil {
		return err
	}
	if *noRDAP > 0 {
		d, err := w.DNSOnly(ctx, *noRDAP, 0)
		if err != nil {
			return err
		}
		rep.DNSOnly = &d
		fmt.Fprintf(inv.stdout, "\nccTLDs without RDAP (%.0f %% of organisation and custom domains): %d domains, %d addresses, %d lapses (%d drops, %d auctions, %d grace sales)\n",
			100*d.Share, d.Domains, d.Addresses, d.Lapses, d.Drops, d.Auctions, d.GraceSales)
		fmt.Fprintf(inv.stdout, "  prevented with DNS evidence: %d (%.1f %%; drops %d of %d), without: %.1f %%; %d DNS lookups, %d false unverifications\n",
			d.Prevented, d.PreventedPct, d.PreventedDrops, d.Drops, d.PreventedPctNoDNS, d.DNSLookups, d.FalseUnverified)
	}
	if *jsonFile != "" {
		f, err := os.Create(*jsonFile)
		if err != nil {
			return fmt.Errorf("create %s: %w", *jsonFile, err)
		}
		if err := rep.WriteJSON(f); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("close %s: %w", *jsonFile, err)
		}
	}
	if *plotDir != "" {
		if err := os.MkdirAll(*plotDir, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", *plotDir, err)
		}
		if err := rep.WritePlots(*plotDir); err != nil {
			return err
		}
	}
	return nil
}

// zeroMeansNone maps a flag value of 0 to the Config's "none" sentinel
// (a zero Config field means its default).
func zeroMeansNone(v, none float64) float64 {
	if v == 0 {
		return none
	}
	return v
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// parsePolicy parses "kind[@budget]".
func parsePolicy(spec string, base simulate.PolicyConfig) (simulate.PolicyConfig, error) {
	p := base
	kind, budget, hasBudget := strings.Cut(spec, "@")
	p.Kind = simulate.PolicyKind(kind)
	switch p.Kind {
	case simulate.PolicyDomainguard:
		p.Budget = config.DefaultDailyLookupBudget
	case simulate.PolicyPyPI:
		p.Budget = simulate.PyPIBudget
		p.RecheckInterval = simulate.PyPIInterval
	case simulate.PolicyNone:
	default:
		return p, usageErr("--policies: unknown policy %q (pypi, domainguard, none)", kind)
	}
	if hasBudget {
		b, err := strconv.Atoi(budget)
		if err != nil || b < 0 {
			return p, usageErr("--policies: bad budget in %q", spec)
		}
		p.Budget = b
	}
	return p, nil
}
