package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/domainguard/domainguard/checker"
	"github.com/domainguard/domainguard/enforcer"
	"github.com/domainguard/domainguard/internal/config"
	"github.com/domainguard/domainguard/internal/domainname"
	"github.com/domainguard/domainguard/lifecycle"
)

func init() {
	register("check", command{
		usage: "DOMAIN [--json]: one lookup through the configured provider, against the stored previous observation when the database is reachable; prints phase and evidence, changes nothing",
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
	p, err := newProvider(cfg, log, nil)
	if err != nil {
		return err
	}
	name, err := domainname.CheckName(rest[0]) // the pipeline's name: registrable, or own name under a private suffix
	if err != nil {
		return fmt.Errorf("check %q: %w", rest[0], err)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	prev, note := storedPrevious(ctx, cfg, log, name)
	obs, err := checker.CheckOnce(ctx, p, name, prev, time.Now().UTC())
	if err != nil {
		return withOfflineHint(err)
	}
	if *asJSON {
		log.Info("check: previous observation", "previous", note)
		enc := json.NewEncoder(inv.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(obs)
	}
	printObservation(inv, obs, note)
	return nil
}

// storedPrevious reads the domain's last applied observation from the
// database, so `check` classifies against it as the pipeline does (a
// grace-sale move or a kept lapse needs it). note says where the previous
// observation came from, or why there is none.
func storedPrevious(ctx context.Context, cfg config.Config, log *slog.Logger, domain string) (*lifecycle.Observation, string) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	a, err := openApp(ctx, cfg, log, needs{db: true})
	if err != nil {
		return nil, fmt.Sprintf("no database reachable (%v): classified without the previous observation, the pipeline may decide otherwise", err)
	}
	defer a.close()
	st, err := enforcer.NewStore(a.enforcerConfig())
	if err != nil {
		return nil, fmt.Sprintf("database not usable (%v): classified without the previous observation", err)
	}
	rep, err := st.Status(ctx, domain)
	switch {
	case errors.Is(err, enforcer.ErrNotFound), err == nil && (rep.Domain == nil || !rep.Domain.Known || !rep.Domain.Phase.Known()):
		return nil, "no previous observation of " + domain + " in the database"
	case err != nil:
		return nil, fmt.Sprintf("database read failed (%v): classified without the previous observation", err)
	}
	prev := &lifecycle.Observation{Domain: domain, Phase: rep.Domain.Phase}
	if rep.Domain.Evidence != nil {
		prev.Evidence = *rep.Domain.Evidence
	}
	return prev, fmt.Sprintf("classified against the stored previous observation (%s, observed %s) from the database",
		prev.Phase, prev.Evidence.ObservedAt.UTC().Format(time.RFC3339))
}

func printObservation(inv invocation, obs lifecycle.Observation, previous string) {
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
	if ev.DNS != nil {
		row("dns", enforcer.DNSLine(ev.DNS))
	}
	row("detail", ev.Detail)
	row("observed", ev.ObservedAt.UTC().Format(time.RFC3339))
	row("previous", previous)
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
	if errors.Is(err, checker.ErrLookupRefused) {
		return err // not offline: the guard refused the server's address, and says so
	}
	if errors.As(err, &dnsErr) || errors.As(err, &opErr) {
		return fmt.Errorf("%w\n%s", err, offlineHint)
	}
	return err
}
