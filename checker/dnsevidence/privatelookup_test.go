package dnsevidence

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/domainguard/domainguard/checker"
	"github.com/domainguard/domainguard/internal/clock"
	"github.com/domainguard/domainguard/internal/fakedns"
	"github.com/domainguard/domainguard/internal/testbin"
	"github.com/domainguard/domainguard/lifecycle"
)

// cutSetup is a TLD server (operator-named, for every TLD, also the
// resolver) that refers every name under evil.test to the servers of the
// zone evil.test, whose glue says what the test asks; a fake stands at
// each glue address. The client dials the fakes in place of the addresses
// (glue can only name port 53) and records what it dialed.
type cutSetup struct {
	tld     *fakedns.Server
	behind  map[string]*fakedns.Server // glue address:53 → the fake there
	c       *Client
	logs    *testbin.OutputBuffer
	mu      sync.Mutex
	dialled []string
}

func newCutSetup(t *testing.T, allowPrivate bool, glue map[string][]string, extra map[string][]string) *cutSetup {
	t.Helper()
	s := &cutSetup{tld: fakedns.Start(t), behind: make(map[string]*fakedns.Server), logs: &testbin.OutputBuffer{}}
	s.tld.Cut("evil.test", glue)
	for _, addrs := range glue {
		for _, a := range addrs {
			s.behind[net.JoinHostPort(a, "53")] = fakedns.Start(t)
		}
	}
	servers := map[string][]string{"*": {s.tld.Addr()}}
	for tld, ss := range extra {
		servers[tld] = ss
	}
	c, err := New(Config{Resolver: s.tld.Addr(), TLDServers: servers, AllowPrivateLookups: allowPrivate,
		Timeout: 150 * time.Millisecond, Attempts: 1, QueriesPerSecond: 1000, Clock: clock.NewStub(testNow),
		Registerer: prometheus.NewRegistry(), Logger: slog.New(slog.NewTextHandler(s.logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	c.dialContext = func(ctx context.Context, network, address string) (net.Conn, error) {
		s.mu.Lock()
		s.dialled = append(s.dialled, address)
		s.mu.Unlock()
		f, ok := s.behind[address]
		switch {
		case ok:
			address = f.Addr()
		case !strings.HasPrefix(address, "127.0.0.1:") || strings.HasSuffix(address, ":53"):
			return nil, errors.New("test dialer: no fake at " + address) // never the network
		}
		var d net.Dialer
		return d.DialContext(ctx, network, address)
	}
	s.c = c
	return s
}

func (s *cutSetup) dialledAny(address string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Contains(s.dialled, address)
}

func (s *cutSetup) refusals() float64 {
	return testutil.ToFloat64(s.c.metrics.queries.WithLabelValues(targetParent, OutcomeAddressRefused))
}

// pendingLapse is a previous observation of name: delegated once, then
// not delegated since two confirmation periods ago. One more NXDOMAIN
// from the parent zone confirms the lapse (expired, domain_undelegated).
func pendingLapse(name string) *lifecycle.Observation {
	since := testNow.Add(-2 * lifecycle.DefaultUndelegatedConfirm)
	return &lifecycle.Observation{Domain: name, Phase: lifecycle.PhaseActive, Evidence: lifecycle.Evidence{
		Provider: ProviderName, ObservedAt: testNow.Add(-time.Hour),
		DNS: &lifecycle.DNSEvidence{Rcode: "NXDOMAIN", UndelegatedSince: &since}}}
}

// TestLearnedNonPublicServersAreNotQueried: glue naming a loopback,
// private, link-local or ULA address is chosen by whoever holds the zone;
// the client never queries it unless private lookups are allowed, and a
// zone left without servers is a refused lookup, never "not delegated".
// The server at the glue address would answer NXDOMAIN, confirming the
// pending lapse: followed (switch on) the name is expired.
func TestLearnedNonPublicServersAreNotQueried(t *testing.T) {
	const name = "alice.evil.test"
	for _, addr := range []string{"127.0.0.1", "10.0.0.1", "169.254.169.254", "fd00::1"} {
		t.Run(addr, func(t *testing.T) {
			s := newCutSetup(t, false, map[string][]string{"ns1.evil.test": {addr}}, nil)
			behind := s.behind[net.JoinHostPort(addr, "53")]
			behind.Undelegate(name)

			obs, err := s.c.Lookup(context.Background(), name, pendingLapse(name))
			if obs.Phase.Known() || obs.Evidence.DNS != nil {
				t.Fatalf("guard on: phase %s (%s) from %s, want no decision", obs.Phase, obs.Evidence.Detail, obs.Evidence.Server)
			}
			if n := behind.Queries(name); n != 0 || s.dialledAny(net.JoinHostPort(addr, "53")) {
				t.Fatalf("the server at %s got %d queries (dialled %v)", addr, n, s.dialled)
			}
			var le *checker.LookupError
			if !errors.Is(err, checker.ErrLookupRefused) || !errors.As(err, &le) || !le.Temporary {
				t.Fatalf("err = %v, want a temporary lookup error wrapping checker.ErrLookupRefused", err)
			}
			if n := s.refusals(); n != 1 {
				t.Fatalf(`domainguard_dns_queries_total{outcome="address_refused"} = %v, want 1`, n)
			}
			if logs := s.logs.String(); !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, "zone=evil.test.") ||
				!strings.Contains(logs, "DOMAINGUARD_ALLOW_PRIVATE_LOOKUPS") {
				t.Fatalf("no warning naming the zone and the switch:\n%s", logs)
			}

			on := newCutSetup(t, true, map[string][]string{"ns1.evil.test": {addr}}, nil)
			behind = on.behind[net.JoinHostPort(addr, "53")]
			behind.Undelegate(name)
			obs, err = on.c.Lookup(context.Background(), name, pendingLapse(name))
			if err != nil || behind.Queries(name) == 0 || obs.Phase != lifecycle.PhaseExpired {
				t.Fatalf("private lookups allowed: %s after %d queries, %v", obs.Phase, behind.Queries(name), err)
			}
		})
	}
}

// TestResolvedNonPublicServersAreNotQueried: a referral without glue is
// followed through the resolver's address for the nameserver; that
// address (127.0.0.1 from the fake resolver) is learned too.
func TestResolvedNonPublicServersAreNotQueried(t *testing.T) {
	s := newCutSetup(t, false, map[string][]string{"ns1.evil.test": nil}, nil)
	_, err := s.c.Evidence(context.Background(), "alice.evil.test")
	if !errors.Is(err, checker.ErrLookupRefused) || s.dialledAny("127.0.0.1:53") || s.refusals() != 1 {
		t.Fatalf("err = %v, dialled %v, refusals %v", err, s.dialled, s.refusals())
	}
}

// TestPublicAndNamedServersAreQueried: glue at a public address, or at an
// address the operator named in DOMAINGUARD_DNS_TLD_SERVERS, is followed
// with the guard on; a private server beside a public one is skipped and
// the public one answers.
func TestPublicAndNamedServersAreQueried(t *testing.T) {
	const name = "alice.evil.test"
	s := newCutSetup(t, false, map[string][]string{
		"ns1.evil.test": {"10.0.0.1"}, "ns2.evil.test": {"192.0.2.53"}, "ns3.evil.test": {"10.9.9.9"},
	}, map[string][]string{"internal": {"10.9.9.9:53"}})
	for _, a := range []string{"192.0.2.53:53", "10.9.9.9:53"} {
		s.behind[a].Delegate(name, "ns.alice.example")
	}
	d, err := s.c.Evidence(context.Background(), name)
	if err != nil || !d.Delegated || !slices.Equal(d.Nameservers, []string{"ns.alice.example"}) {
		t.Fatalf("%+v, %v", d, err)
	}
	if s.behind["10.0.0.1:53"].Queries(name) != 0 || s.dialledAny("10.0.0.1:53") {
		t.Fatalf("the private server was queried (dialled %v)", s.dialled)
	}
	if s.refusals() != 1 {
		t.Fatalf("refusals %v, want 1", s.refusals())
	}
	if got, err := s.c.addresses(context.Background(), "evil.test.", []string{"ns2.evil.test", "ns3.evil.test"},
		map[string][]string{"ns2.evil.test": {"192.0.2.53"}, "ns3.evil.test": {"10.9.9.9"}}); err != nil ||
		!slices.Equal(got, []string{"192.0.2.53:53", "10.9.9.9:53"}) {
		t.Fatalf("public and named servers: %v, %v", got, err)
	}
}
