package auto

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/domainguard/domainguard/checker"
	"github.com/domainguard/domainguard/checker/dnsevidence"
	"github.com/domainguard/domainguard/checker/rdap"
	"github.com/domainguard/domainguard/internal/clock"
	"github.com/domainguard/domainguard/internal/fakedns"
	"github.com/domainguard/domainguard/internal/fakerdap"
	"github.com/domainguard/domainguard/lifecycle"
)

type dnsFixture struct {
	rdap *fakerdap.Server
	dns  *fakedns.Server
	p    *Provider
	reg  *prometheus.Registry
}

// newDNSFixture: fakerdap serves com (and the other fakerdap TLDs); eu has
// no RDAP; the fake DNS is the parent zone of every TLD and, unless
// resolverDown, the resolver.
func newDNSFixture(t *testing.T, resolverDown bool) *dnsFixture {
	t.Helper()
	fr := fakerdap.New(t)
	fd := fakedns.Start(t)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	clk := clock.NewStub(time.Now().UTC())
	rc, err := rdap.New(rdap.Config{BootstrapURL: fr.BootstrapURL(), HTTPClient: fr.Client(), Clock: clk, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	resolver := fd.Addr()
	if resolverDown {
		resolver = "127.0.0.1:1"
	}
	reg := prometheus.NewRegistry()
	dc, err := dnsevidence.New(dnsevidence.Config{Resolver: resolver, TLDServers: map[string][]string{"*": {fd.Addr()}},
		Timeout: 100 * time.Millisecond, Attempts: 2, RetryInitial: 5 * time.Millisecond, QueriesPerSecond: 1000,
		Clock: clk, Logger: quiet, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(rc, nil).WithClock(clk).WithDNS(dc, quiet, reg)
	if err != nil {
		t.Fatal(err)
	}
	return &dnsFixture{rdap: fr, dns: fd, p: p, reg: reg}
}

func TestAutoWithDNS(t *testing.T) {
	ctx := context.Background()
	t.Run("TLD without RDAP: DNS decides", func(t *testing.T) {
		f := newDNSFixture(t, false)
		obs, err := f.p.Lookup(ctx, "example.eu", nil)
		if err != nil || obs.Phase != lifecycle.PhaseActive || obs.Evidence.Provider != lifecycle.ProviderDNS || obs.Evidence.DNS == nil {
			t.Fatalf("%+v, %v", obs, err)
		}
		if !f.p.RateExempt("example.eu") || f.p.RateExempt("example.com") {
			t.Fatal("only DNS-only lookups are exempt from the registry rate limit")
		}
	})
	t.Run("RDAP active carries DNS evidence", func(t *testing.T) {
		f := newDNSFixture(t, false)
		obs, err := f.p.Lookup(ctx, "example.com", nil)
		if err != nil || obs.Phase != lifecycle.PhaseActive || obs.Evidence.Provider != "rdap" || obs.Evidence.DNS == nil || !obs.Evidence.DNS.MXKnown {
			t.Fatalf("%+v, %v", obs, err)
		}
	})
	t.Run("RDAP 404 while delegated: unknown, counted", func(t *testing.T) {
		f := newDNSFixture(t, false)
		f.rdap.Set("gone.com", fakerdap.Answer{Phase: lifecycle.PhaseReleased})
		obs, err := f.p.Lookup(ctx, "gone.com", nil)
		if err != nil || obs.Phase != lifecycle.PhaseUnknown {
			t.Fatalf("%+v, %v", obs, err)
		}
		if n := testutil.ToFloat64(f.p.contradicted); n != 1 {
			t.Fatalf("contradicted = %v", n)
		}
	})
	t.Run("RDAP 404 and NXDOMAIN: released", func(t *testing.T) {
		f := newDNSFixture(t, false)
		f.rdap.Set("gone.com", fakerdap.Answer{Phase: lifecycle.PhaseReleased})
		f.dns.Undelegate("gone.com")
		obs, err := f.p.Lookup(ctx, "gone.com", nil)
		if err != nil || obs.Phase != lifecycle.PhaseReleased || obs.Evidence.DNS == nil || obs.Evidence.DNS.Delegated {
			t.Fatalf("%+v, %v", obs, err)
		}
	})
	for _, fault := range []fakedns.Fault{fakedns.FaultTimeout, fakedns.FaultServfail} {
		t.Run("DNS "+string(fault)+": RDAP unchanged, DNS-only TLD fails", func(t *testing.T) {
			f := newDNSFixture(t, false)
			f.dns.SetParentFault("*", fault)
			f.dns.SetResolverFault("*", fault)
			obs, err := f.p.Lookup(ctx, "example.com", nil)
			if err != nil || obs.Phase != lifecycle.PhaseActive || obs.Evidence.DNS != nil {
				t.Fatalf("rdap TLD: %+v, %v", obs, err)
			}
			obs, err = f.p.Lookup(ctx, "example.eu", nil)
			var le *checker.LookupError
			if !errors.As(err, &le) || !le.Temporary || obs.Phase.Known() {
				t.Fatalf("dns TLD: %+v, %v", obs, err)
			}
		})
	}
	t.Run("commercial inactive: released only when the parent zone agrees", func(t *testing.T) {
		f := newDNSFixture(t, false)
		f.p.rdap, f.p.fallback = nil, inactiveProvider{}
		f.dns.Undelegate("gone.eu")
		obs, err := f.p.Lookup(ctx, "gone.eu", nil)
		if err != nil || obs.Phase != lifecycle.PhaseReleased || obs.Evidence.DNS == nil {
			t.Fatalf("not delegated: %+v, %v", obs, err)
		}
		obs, err = f.p.Lookup(ctx, "still.eu", nil)
		if err != nil || obs.Phase != lifecycle.PhaseUnknown {
			t.Fatalf("delegated: %+v, %v", obs, err)
		}
	})
	t.Run("resolver down: RDAP path unchanged", func(t *testing.T) {
		f := newDNSFixture(t, true)
		obs, err := f.p.Lookup(ctx, "example.com", nil)
		if err != nil || obs.Phase != lifecycle.PhaseActive {
			t.Fatalf("%+v, %v", obs, err)
		}
	})
}

// inactiveProvider is a commercial provider that says "inactive" alone.
type inactiveProvider struct{}

func (inactiveProvider) Name() string { return "domainr" }

func (inactiveProvider) Lookup(_ context.Context, domain string, _ *lifecycle.Observation) (lifecycle.Observation, error) {
	phase, why := lifecycle.ClassifyTokens([]string{"inactive"})
	return lifecycle.Observation{Domain: domain, Phase: phase, Evidence: lifecycle.Evidence{Provider: "domainr",
		Statuses: []string{"inactive"}, Detail: why, ObservedAt: time.Now().UTC()}}, nil
}

// A name under a private suffix is checked through the DNS alone, as
// itself: RDAP is never asked (no registry holds it; com's registry would
// answer 404), and its disappearance from the parent zone is a lapse only
// after confirmation. Without DNS evidence it is unmonitored.
func TestAutoPrivateSuffixName(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		hosted bool // present without a zone cut (GitHub Pages style)
	}{{"acme.us.com", false}, {"acme.eu.org", false}, {"foo.github.io", true}} {
		t.Run(tc.name, func(t *testing.T) {
			f := newDNSFixture(t, false)
			f.rdap.Set(tc.name, fakerdap.Answer{NotFound: true})
			if tc.hosted {
				f.dns.Host(tc.name)
			}
			obs, err := f.p.Lookup(ctx, tc.name, nil)
			if err != nil || obs.Phase != lifecycle.PhaseActive || obs.Evidence.Provider != lifecycle.ProviderDNS || obs.Domain != tc.name {
				t.Fatalf("present: %+v, %v", obs, err)
			}
			if obs.Evidence.DNS.Hosted != tc.hosted || !obs.Evidence.DNS.Present() {
				t.Fatalf("present: DNS evidence %+v", obs.Evidence.DNS)
			}
			if !f.p.RateExempt(tc.name) {
				t.Error("a DNS-only check of a private-suffix name waits on the registry rate limit")
			}
			f.dns.Undelegate(tc.name)
			pending, err := f.p.Lookup(ctx, tc.name, &obs)
			if err != nil || pending.Phase != lifecycle.PhaseActive || !lifecycle.PendingUndelegation(pending.Phase, &pending.Evidence) {
				t.Fatalf("first NXDOMAIN: %+v, %v; want active awaiting confirmation", pending, err)
			}
			later := pending
			later.Evidence.ObservedAt = pending.Evidence.ObservedAt.Add(-lifecycle.DefaultUndelegatedConfirm)
			since := later.Evidence.ObservedAt
			later.Evidence.DNS.UndelegatedSince = &since
			lapsed, err := f.p.Lookup(ctx, tc.name, &later)
			if err != nil || lapsed.Phase != lifecycle.PhaseExpired || lifecycle.ReasonOf(lapsed) != lifecycle.ReasonUndelegated {
				t.Fatalf("confirmed NXDOMAIN: %+v, %v; want expired, domain_undelegated", lapsed, err)
			}
			if n := f.rdap.Lookups(tc.name); n != 0 {
				t.Fatalf("RDAP asked %d times about %s", n, tc.name)
			}
		})
	}
	t.Run("DNS evidence off: unmonitored, RDAP not asked", func(t *testing.T) {
		fr := fakerdap.New(t)
		quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
		rc, err := rdap.New(rdap.Config{BootstrapURL: fr.BootstrapURL(), HTTPClient: fr.Client(), Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		p := New(rc, nil)
		_, err = p.Lookup(ctx, "acme.us.com", nil)
		if !errors.Is(err, checker.ErrNoSource) || fr.TotalLookups() != 0 {
			t.Fatalf("err %v, RDAP lookups %d; want ErrNoSource and none", err, fr.TotalLookups())
		}
		if p.RateExempt("acme.us.com") {
			t.Error("exempt without DNS evidence")
		}
	})
}
