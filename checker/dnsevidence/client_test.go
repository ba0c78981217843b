package dnsevidence

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/domainguard/domainguard/checker"
	"github.com/domainguard/domainguard/internal/clock"
	"github.com/domainguard/domainguard/internal/fakedns"
	"github.com/domainguard/domainguard/lifecycle"
)

var testNow = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

func newClient(t *testing.T, parent, resolver string) (*Client, *prometheus.Registry, *clock.Stub) {
	t.Helper()
	reg := prometheus.NewRegistry()
	clk := clock.NewStub(testNow)
	c, err := New(Config{Resolver: resolver, TLDServers: map[string][]string{"*": {parent}},
		Timeout: 150 * time.Millisecond, Attempts: 2, RetryInitial: 10 * time.Millisecond,
		QueriesPerSecond: 1000, Clock: clk, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	return c, reg, clk
}

func TestEvidence(t *testing.T) {
	fake := fakedns.Start(t)
	fake.Delegate("example.eu", "NS1.Host.example.", "ns2.host.example")
	fake.SetMX("example.eu", "mx2.mail.example", "mx1.mail.example")
	fake.Undelegate("gone.eu")
	c, _, _ := newClient(t, fake.Addr(), fake.Addr())

	d, err := c.Evidence(context.Background(), "Example.EU.")
	if err != nil {
		t.Fatal(err)
	}
	if !d.Delegated || d.Rcode != "NOERROR" || !slices.Equal(d.Nameservers, []string{"ns1.host.example", "ns2.host.example"}) {
		t.Fatalf("delegation: %+v", d)
	}
	if !d.MXKnown || !slices.Equal(d.MX, []string{"mx1.mail.example", "mx2.mail.example"}) || d.SOASerial == 0 || d.SOAMname != "ns1.host.example" {
		t.Fatalf("resolver part: %+v", d)
	}
	if d.ParentServer != fake.Addr() {
		t.Fatalf("parent server %q", d.ParentServer)
	}

	d, err = c.Evidence(context.Background(), "gone.eu")
	if err != nil {
		t.Fatal(err)
	}
	if d.Delegated || d.Rcode != "NXDOMAIN" || d.MXKnown {
		t.Fatalf("not delegated: %+v", d)
	}
}

func TestFaultsAreErrorsNeverEvidence(t *testing.T) {
	for _, f := range []fakedns.Fault{fakedns.FaultServfail, fakedns.FaultRefused, fakedns.FaultTimeout, fakedns.FaultMalformed,
		fakedns.FaultMismatchedID, fakedns.FaultOversized, fakedns.FaultLame, fakedns.FaultTruncatedTCP} {
		t.Run(string(f), func(t *testing.T) {
			fake := fakedns.Start(t)
			fake.Undelegate("gone.eu")
			fake.SetParentFault("*", f)
			c, reg, _ := newClient(t, fake.Addr(), fake.Addr())
			_, err := c.Evidence(context.Background(), "gone.eu")
			var le *checker.LookupError
			if !errors.As(err, &le) || !le.Temporary {
				t.Fatalf("err = %v, want a temporary lookup error", err)
			}
			obs, err := c.Lookup(context.Background(), "gone.eu", nil)
			if err == nil || obs.Phase.Known() {
				t.Fatalf("Lookup gave %s, %v", obs.Phase, err)
			}
			wantMetric := map[fakedns.Fault]string{fakedns.FaultMalformed: BadMalformed, fakedns.FaultMismatchedID: BadMismatchedID,
				fakedns.FaultOversized: BadOversized, fakedns.FaultTruncatedTCP: BadTruncated}[f]
			if wantMetric != "" {
				if n := testutil.ToFloat64(c.metrics.bad.WithLabelValues(wantMetric)); n == 0 {
					t.Fatalf("domainguard_dns_bad_answers_total{reason=%q} not counted", wantMetric)
				}
			}
			if n, _ := testutil.GatherAndCount(reg, "domainguard_dns_queries_total"); n == 0 {
				t.Fatal("no query outcomes counted")
			}
		})
	}
}

func TestTruncatedFallsBackToTCP(t *testing.T) {
	fake := fakedns.Start(t)
	fake.Delegate("example.eu", "ns1.host.example")
	fake.SetParentFault("*", fakedns.FaultTruncated)
	c, _, _ := newClient(t, fake.Addr(), fake.Addr())
	d, err := c.Evidence(context.Background(), "example.eu")
	if err != nil || !d.Delegated || !slices.Equal(d.Nameservers, []string{"ns1.host.example"}) {
		t.Fatalf("after TCP fallback: %+v, %v", d, err)
	}
}

func TestResolverDownKeepsDelegation(t *testing.T) {
	fake := fakedns.Start(t)
	fake.Delegate("example.eu", "ns1.host.example")
	c, _, _ := newClient(t, fake.Addr(), "127.0.0.1:1")
	d, err := c.Evidence(context.Background(), "example.eu")
	if err != nil || !d.Delegated || d.MXKnown || d.MX != nil {
		t.Fatalf("resolver down: %+v, %v", d, err)
	}
	fake.SetResolverFault("*", fakedns.FaultServfail)
	c2, _, _ := newClient(t, fake.Addr(), fake.Addr())
	if d, err := c2.Evidence(context.Background(), "example.eu"); err != nil || d.MXKnown {
		t.Fatalf("resolver SERVFAIL: %+v, %v", d, err)
	}
}

func TestLookupConfirmsUndelegation(t *testing.T) {
	fake := fakedns.Start(t)
	c, _, clk := newClient(t, fake.Addr(), fake.Addr())
	ctx := context.Background()
	first, err := c.Lookup(ctx, "example.eu", nil)
	if err != nil || first.Phase != lifecycle.PhaseActive || first.Evidence.Provider != ProviderName {
		t.Fatalf("delegated: %+v, %v", first, err)
	}
	fake.Undelegate("example.eu")
	clk.Set(testNow.Add(time.Hour))
	pending, err := c.Lookup(ctx, "example.eu", &first)
	if err != nil || pending.Phase != lifecycle.PhaseActive || pending.Evidence.DNS.UndelegatedSince == nil {
		t.Fatalf("first NXDOMAIN: %+v, %v", pending, err)
	}
	clk.Set(testNow.Add(time.Hour + lifecycle.DefaultUndelegatedConfirm))
	lapsed, err := c.Lookup(ctx, "example.eu", &pending)
	if err != nil || lapsed.Phase != lifecycle.PhaseExpired || lifecycle.ReasonOf(lapsed) != lifecycle.ReasonUndelegated {
		t.Fatalf("confirmed: %+v, %v", lapsed, err)
	}
}

func TestNameBelowASecondLevelSuffix(t *testing.T) {
	// uni.ac.uk is asked of the servers configured for uk.
	fake := fakedns.Start(t)
	c, _, _ := newClient(t, fake.Addr(), fake.Addr())
	c.cfg.TLDServers = map[string][]string{"uk": {fake.Addr()}}
	d, err := c.Evidence(context.Background(), "uni.ac.uk")
	if err != nil || !d.Delegated {
		t.Fatalf("%+v, %v", d, err)
	}
}

func TestParentServersFoundThroughTheResolver(t *testing.T) {
	fake := fakedns.Start(t)
	reg := prometheus.NewRegistry()
	// The fake resolver gives 127.0.0.1 for every nameserver: a learned
	// address, followed only with private lookups allowed
	// (TestLearnedNonPublicServersAreNotQueried).
	c, err := New(Config{Resolver: fake.Addr(), Timeout: 150 * time.Millisecond, Attempts: 1, Registerer: reg, AllowPrivateLookups: true})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.parentServers(context.Background(), "eu")
	if err != nil || len(got) != 2 || !strings.HasSuffix(got[0], ":53") {
		t.Fatalf("servers of .eu: %v, %v", got, err)
	}
	if !c.HasServers("eu") {
		t.Fatal("HasServers false with a resolver")
	}
}

func TestConfigValidate(t *testing.T) {
	for _, bad := range []Config{
		{Resolver: "nohostport"},
		{Resolver: "127.0.0.1:53", TLDServers: map[string][]string{"eu": {"x"}}},
		{Resolver: "127.0.0.1:53", QueriesPerSecond: -1},
	} {
		if _, err := New(bad); err == nil {
			t.Errorf("New(%+v) accepted", bad)
		}
	}
	r, err := ResolverFromFile("testdata/resolv.conf")
	if err != nil || r != "192.0.2.53:53" {
		t.Fatalf("ResolverFromFile = %q, %v", r, err)
	}
}

// An authoritative "exists, no delegation" answer is evidence that a name
// under a private suffix exists (foo.github.io has no zone cut), and a lame
// answer for a registrable domain (a registry zone holds delegations).
func TestEvidenceHostedName(t *testing.T) {
	fake := fakedns.Start(t)
	fake.Host("foo.github.io")
	fake.Host("example.com")
	c, _, _ := newClient(t, fake.Addr(), fake.Addr())
	d, err := c.Evidence(context.Background(), "foo.github.io")
	if err != nil {
		t.Fatal(err)
	}
	if !d.Hosted || d.Delegated || !d.Present() || d.Rcode != "NOERROR" || !d.MXKnown {
		t.Fatalf("hosted private name: %+v", d)
	}
	if _, err := c.Evidence(context.Background(), "example.com"); err == nil {
		t.Fatal("a registrable domain without a delegation counted as present")
	}
}
