package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/domainguard/domainguard/internal/fakedns"
	"github.com/domainguard/domainguard/internal/fakerdap"
	"github.com/domainguard/domainguard/lifecycle"
)

// TestDNSEvidence runs the auto provider with DNS evidence against the
// fake DNS (parent zone of every TLD and resolver) and the fake RDAP
// server, which serves .com but not .eu:
//   - a .eu name deleted (only the DNS sees it) is unverified after the
//     confirmation time and not before (reason domain_undelegated);
//   - a .com name whose RDAP 404s while the parent still delegates it stays
//     verified;
//   - a .com name deleted (RDAP 404 + NXDOMAIN) is released;
//   - DNS timeouts and SERVFAIL change nothing.
func TestDNSEvidence(t *testing.T) {
	t.Parallel()
	dns := fakedns.Start(t)
	const confirm = 6 * time.Second
	c := newCluster(t, clusterOptions{extraEnv: dnsEvidenceEnv(dns, confirm)})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	names := map[string]string{
		"deleted": "dns-deleted.eu", // only the DNS sees its deletion
		"contra":  "dns-contra.com", // RDAP 404, parent still delegates
		"gone":    "dns-gone.com",   // RDAP 404 and NXDOMAIN
		"flaky":   "dns-flaky.com",  // DNS SERVFAIL, RDAP active
		"silent":  "dns-silent.eu",  // DNS timeouts, DNS-only TLD
		"steady":  "dns-steady.eu",  // delegated throughout
	}
	verifiedAt := time.Now().Add(-30 * 24 * time.Hour).UTC().Truncate(time.Second)
	var evs []verified
	var all []string
	for key, d := range names {
		evs = append(evs, verified{UserID: "u-" + key, Email: "user@" + d, VerifiedAt: verifiedAt})
		all = append(all, d)
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
	emailOf := func(domain string) emailRow {
		es, err := c.emails(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return es["user@"+domain]
	}
	waitFor(t, time.Minute, "every domain active", func() (bool, string) {
		for _, d := range all {
			if p := phaseOf(d); p != string(lifecycle.PhaseActive) {
				return false, fmt.Sprintf("%s is %q", d, p)
			}
		}
		return true, ""
	})
	var ev string
	if err := c.pool.QueryRow(ctx, `SELECT evidence->>'provider' FROM domains WHERE name = $1`, names["steady"]).Scan(&ev); err != nil || ev != lifecycle.ProviderDNS {
		t.Fatalf(".eu evidence provider %q (%v), want dns", ev, err)
	}

	// The changes.
	dns.Undelegate(names["deleted"])
	c.rdap.Set(names["contra"], fakerdap.Answer{Phase: lifecycle.PhaseReleased})
	c.rdap.Set(names["gone"], fakerdap.Answer{Phase: lifecycle.PhaseReleased})
	dns.Undelegate(names["gone"])
	dns.SetParentFault(names["flaky"], fakedns.FaultServfail)
	dns.SetResolverFault(names["flaky"], fakedns.FaultServfail)
	dns.SetParentFault(names["silent"], fakedns.FaultTimeout)
	firstNX := time.Now()
	c.forceRecheck(ctx, all)

	waitFor(t, time.Minute, "the .com deletion released", func() (bool, string) {
		p := phaseOf(names["gone"])
		return p == string(lifecycle.PhaseReleased), "phase " + p
	})
	if e := emailOf(names["gone"]); e.Verified || e.Reason != string(lifecycle.ReasonReleased) {
		t.Fatalf("released .com: %+v", e)
	}
	// The .eu deletion is seen once: not yet a lapse.
	var since *time.Time
	waitFor(t, 30*time.Second, "the .eu undelegation recorded", func() (bool, string) {
		err := c.pool.QueryRow(ctx, `SELECT (evidence->'dns'->>'undelegated_since')::timestamptz FROM domains WHERE name = $1`, names["deleted"]).Scan(&since)
		return err == nil && since != nil, fmt.Sprint(err)
	})
	if time.Since(firstNX) < confirm {
		if e := emailOf(names["deleted"]); !e.Verified || phaseOf(names["deleted"]) != string(lifecycle.PhaseActive) {
			t.Fatalf("unverified before the confirmation: %+v, phase %s", e, phaseOf(names["deleted"]))
		}
	}

	// After the confirmation time, the second NXDOMAIN is a lapse.
	time.Sleep(time.Until(firstNX.Add(confirm + time.Second)))
	c.forceRecheck(ctx, all)
	waitFor(t, time.Minute, "the .eu deletion confirmed", func() (bool, string) {
		e := emailOf(names["deleted"])
		return !e.Verified, fmt.Sprintf("%+v, phase %s", e, phaseOf(names["deleted"]))
	})
	if e := emailOf(names["deleted"]); e.Reason != string(lifecycle.ReasonUndelegated) || phaseOf(names["deleted"]) != string(lifecycle.PhaseExpired) {
		t.Fatalf(".eu lapse: %+v, phase %s", e, phaseOf(names["deleted"]))
	}

	// Let the other checks of the second round finish, then: nothing else
	// changed.
	c.quiet(ctx, 90*time.Second)
	for _, key := range []string{"contra", "flaky", "silent", "steady"} {
		d := names[key]
		if e := emailOf(d); !e.Verified {
			t.Errorf("%s (%s) unverified: %+v", key, d, e)
		}
		if p := phaseOf(d); p != string(lifecycle.PhaseActive) {
			t.Errorf("%s (%s) phase %s, want active", key, d, p)
		}
	}
	if hb, ok := c.lastHeartbeat(ctx, names["contra"]); !ok || !hb.Failed {
		t.Errorf("contradicted 404: last heartbeat %+v (found %v), want a failed (unknown) one", hb, ok)
	}
}

// dnsEvidenceEnv configures the auto provider with DNS evidence asking dns
// (parent zone of every TLD and resolver), confirming undelegations after
// confirm, with the breaker out of the way.
func dnsEvidenceEnv(dns *fakedns.Server, confirm time.Duration) []string {
	return []string{
		"DOMAINGUARD_PROVIDER=auto",
		"DOMAINGUARD_DNS_EVIDENCE=true",
		"DOMAINGUARD_DNS_RESOLVER=" + dns.Addr(),
		"DOMAINGUARD_DNS_TLD_SERVERS=*=" + dns.Addr(),
		"DOMAINGUARD_UNDELEGATED_CONFIRM=" + confirm.String(),
		"DOMAINGUARD_BREAKER_PCT=100",
	}
}
