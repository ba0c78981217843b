package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/domainguard/domainguard/internal/fakedns"
	"github.com/domainguard/domainguard/lifecycle"
)

// TestPrivateSuffixName runs issue #13 item 10 through the real roles (with
// the shipped SQL roles): alice@mail.acme.us.com's own name acme.us.com
// disappears from its parent zone while us.com stays registered and active
// in RDAP. The address is unverified (domain_undelegated) only after the
// confirmation time; addresses whose private-suffix names stay (one
// delegated, one held in the parent zone without a cut, as GitHub Pages
// names are) stay verified, and RDAP is never asked about any of those
// names.
func TestPrivateSuffixName(t *testing.T) {
	t.Parallel()
	dns := fakedns.Start(t)
	const confirm = 6 * time.Second
	c := newCluster(t, clusterOptions{secure: true, tlds: []string{"com", "net", "io", "test", "example"},
		extraEnv: dnsEvidenceEnv(dns, confirm)})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	const (
		lapsing = "acme.us.com"   // leaves the us.com zone
		steady  = "steady.us.com" // stays delegated
		hosted  = "pages.github.io"
	)
	emails := map[string]string{
		lapsing: "alice@mail.acme.us.com",
		steady:  "bob@steady.us.com",
		hosted:  "carol@pages.github.io",
	}
	dns.Host(hosted)
	verifiedAt := time.Now().Add(-30 * 24 * time.Hour).UTC().Truncate(time.Second)
	var evs []verified
	for name, e := range emails {
		evs = append(evs, verified{UserID: "u-" + name, Email: e, VerifiedAt: verifiedAt})
	}
	c.startAll()
	c.publishVerified(ctx, evs)

	phaseOf := func(domain string) string {
		ds, err := c.domains(ctx)
		if err != nil {
			return "error: " + err.Error()
		}
		return ds[domain].Phase
	}
	emailOf := func(name string) emailRow {
		es, err := c.emails(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return es[emails[name]]
	}
	watched := []string{"us.com", "github.io", lapsing, steady, hosted}
	waitFor(t, time.Minute, "every name watched and active", func() (bool, string) {
		for _, d := range watched {
			if p := phaseOf(d); p != string(lifecycle.PhaseActive) {
				return false, fmt.Sprintf("%s is %q", d, p)
			}
		}
		return true, ""
	})
	for _, name := range []string{lapsing, steady, hosted} {
		var provider string
		var private bool
		if err := c.pool.QueryRow(ctx, `SELECT evidence->>'provider', private_suffix FROM domains WHERE name = $1`, name).Scan(&provider, &private); err != nil ||
			provider != lifecycle.ProviderDNS || !private {
			t.Fatalf("%s: provider %q, private_suffix %v (%v); want dns, true", name, provider, private, err)
		}
		if n := c.rdap.Lookups(name); n != 0 {
			t.Fatalf("RDAP asked %d times about %s", n, name)
		}
	}
	if e := emailOf(lapsing); e.Domain != "us.com" {
		t.Fatalf("address %+v: its registrable domain must stay us.com", e)
	}

	// acme.us.com leaves the zone; us.com stays registered and active.
	dns.Undelegate(lapsing)
	firstNX := c.forceRecheck(ctx, watched)
	firstNXLocal := time.Now()
	var since *time.Time
	waitFor(t, 30*time.Second, "the undelegation of "+lapsing+" recorded", func() (bool, string) {
		err := c.pool.QueryRow(ctx, `SELECT (evidence->'dns'->>'undelegated_since')::timestamptz FROM domains WHERE name = $1`, lapsing).Scan(&since)
		return err == nil && since != nil, fmt.Sprint(err)
	})
	if since.Before(firstNX.Add(-time.Second)) {
		t.Fatalf("undelegated since %s, before the recheck at %s", since, firstNX)
	}
	if time.Since(firstNXLocal) < confirm {
		if e := emailOf(lapsing); !e.Verified {
			t.Fatalf("unverified before the confirmation: %+v, phase %s", e, phaseOf(lapsing))
		}
	}

	time.Sleep(time.Until(firstNXLocal.Add(confirm + time.Second)))
	c.forceRecheck(ctx, watched)
	waitFor(t, time.Minute, "the lapse of "+lapsing+" confirmed", func() (bool, string) {
		e := emailOf(lapsing)
		return !e.Verified, fmt.Sprintf("%+v, phase %s", e, phaseOf(lapsing))
	})
	if e := emailOf(lapsing); e.Reason != string(lifecycle.ReasonUndelegated) || phaseOf(lapsing) != string(lifecycle.PhaseExpired) {
		t.Fatalf("%s lapse: %+v, phase %s; want domain_undelegated, expired", lapsing, e, phaseOf(lapsing))
	}

	c.quiet(ctx, 90*time.Second)
	for _, name := range []string{steady, hosted} {
		if e := emailOf(name); !e.Verified {
			t.Errorf("%s unverified: %+v", name, e)
		}
	}
	for _, d := range []string{"us.com", "github.io", steady, hosted} {
		if p := phaseOf(d); p != string(lifecycle.PhaseActive) {
			t.Errorf("%s phase %s, want active", d, p)
		}
	}
	for _, name := range []string{lapsing, steady, hosted} {
		if n := c.rdap.Lookups(name); n != 0 {
			t.Errorf("RDAP asked %d times about %s", n, name)
		}
	}
}
