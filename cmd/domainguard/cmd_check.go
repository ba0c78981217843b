package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/domainguard/domainguard/checker"
	"github.com/domainguard/domainguard/lifecycle"
)

func init() {
	register("check", command{
		usage: "DOMAIN [--json]: one lookup through the configured provider; prints phase and evidence, changes nothing",
		run:   runCheck,
	})
}

func runCheck(ctx context.Context, inv invocation) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print the observation as JSON")
	cfg, rest, log, err := loadConfig(inv, fs)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return usageErr("check DOMAIN [--json]")
	}
	p, err := newProvider(cfg, log)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	obs, err := checker.CheckOnce(ctx, p, rest[0], time.Now().UTC())
	if err != nil {
		return withOfflineHint(err)
	}
	if *asJSON {
		enc := json.NewEncoder(inv.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(obs)
	}
	printObservation(inv, obs)
	return nil
}

func printObservation(inv invocation, obs lifecycle.Observation) {
	ev := obs.Evidence
	tw := tabwriter.NewWriter(inv.stdout, 2, 4, 2, ' ', 0)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s\t%s\n", k, v)
		}
	}
	date := func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	}
	row("domain", obs.Domain)
	row("phase", string(obs.Phase))
	row("provider", ev.Provider)
	row("server", ev.Server)
	row("statuses", strings.Join(ev.Statuses, ", "))
	row("registered", date(ev.RegisteredAt))
	row("expires", date(ev.ExpiresAt))
	row("last changed", date(ev.LastChangedAt))
	row("handle", ev.Handle)
	row("registrar", ev.RegistrarIANAID)
	row("nameservers", strings.Join(ev.Nameservers, ", "))
	if ev.NotFound {
		row("not found", "yes (confirmed by canary)")
	}
	row("detail", ev.Detail)
	row("observed", ev.ObservedAt.UTC().Format(time.RFC3339))
	tw.Flush()
}

// offlineHint is added to lookup errors that show no network path to the
// provider (no DNS, connection refused, no route).
const offlineHint = "no network path to the lookup provider. Without internet access, seed the RDAP bootstrap " +
	"(RDAP_BOOTSTRAP_URL=file:///path/dns.json, a copy of https://data.iana.org/rdap/dns.json) and point " +
	"DOMAINGUARD_RDAP_OVERRIDES at RDAP servers you can reach (docs/OPERATING.md, \"Air-gapped installations\")"

// withOfflineHint explains a network error; other errors pass unchanged.
func withOfflineHint(err error) error {
	var dnsErr *net.DNSError
	var opErr *net.OpError
	if errors.As(err, &dnsErr) || errors.As(err, &opErr) {
		return fmt.Errorf("%w\n%s", err, offlineHint)
	}
	return err
}
