package lifecycle

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func delegated(ns ...string) *DNSEvidence {
	return &DNSEvidence{Delegated: true, Rcode: "NOERROR", Nameservers: ns, MXKnown: true, MX: []string{"mx.example.net"}}
}

func nxdomain() *DNSEvidence { return &DNSEvidence{Rcode: "NXDOMAIN"} }

func dnsObs(phase Phase, d *DNSEvidence, observed time.Time) *Observation {
	return &Observation{Domain: "example.eu", Phase: phase,
		Evidence: Evidence{Provider: ProviderDNS, DNS: d, ObservedAt: observed}}
}

func TestClassifyDNS(t *testing.T) {
	since := now.Add(-30 * time.Hour)
	recent := now.Add(-2 * time.Hour)
	pending := func(at time.Time) *DNSEvidence {
		d := nxdomain()
		d.UndelegatedSince = &at
		d.BaselineNameservers = []string{"ns1.old.example"}
		return d
	}
	tests := []struct {
		name      string
		dns       *DNSEvidence
		prev      *Observation
		confirm   time.Duration
		want      Phase
		wantSince *time.Time // UndelegatedSince of the kept evidence
		wantBase  []string
	}{
		{name: "no dns evidence", dns: nil, want: PhaseUnknown},
		{name: "delegated, first sight", dns: delegated("ns1.example.net"), want: PhaseActive},
		{name: "delegated after pending confirmation clears it", dns: delegated("ns1.old.example"),
			prev: dnsObs(PhaseActive, pending(recent), recent), want: PhaseActive},
		{name: "nxdomain never seen delegated", dns: nxdomain(), want: PhaseUnknown},
		{name: "nxdomain after delegated starts the confirmation", dns: nxdomain(),
			prev: dnsObs(PhaseActive, delegated("ns1.old.example"), now.Add(-day)),
			want: PhaseActive, wantSince: &now, wantBase: []string{"ns1.old.example"}},
		{name: "nxdomain seen again before the confirm time", dns: nxdomain(),
			prev: dnsObs(PhaseActive, pending(recent), recent),
			want: PhaseActive, wantSince: &recent, wantBase: []string{"ns1.old.example"}},
		{name: "nxdomain confirmed after the confirm time", dns: nxdomain(),
			prev: dnsObs(PhaseActive, pending(since), since),
			want: PhaseExpired, wantSince: &since, wantBase: []string{"ns1.old.example"}},
		{name: "exactly the confirm time apart counts", dns: nxdomain(), confirm: 2 * time.Hour,
			prev: dnsObs(PhaseActive, pending(recent), recent),
			want: PhaseExpired, wantSince: &recent, wantBase: []string{"ns1.old.example"}},
		{name: "shorter confirm setting", dns: nxdomain(), confirm: time.Hour,
			prev: dnsObs(PhaseActive, pending(recent), recent), want: PhaseExpired, wantSince: &recent,
			wantBase: []string{"ns1.old.example"}},
		{name: "lapse is kept", dns: nxdomain(),
			prev: dnsObs(PhaseExpired, pending(since), since), want: PhaseExpired, wantSince: &since,
			wantBase: []string{"ns1.old.example"}},
		{name: "previous phase kept while pending", dns: nxdomain(),
			prev: dnsObs(PhaseGrace, delegated("ns1.old.example"), recent), want: PhaseGrace, wantSince: &now},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := Evidence{Provider: ProviderDNS, DNS: tt.dns, ObservedAt: now}
			got, why, kept := ClassifyDNS(ev, tt.prev, now, tt.confirm)
			if got != tt.want {
				t.Fatalf("phase = %s (%s), want %s", got, why, tt.want)
			}
			if why == "" {
				t.Fatal("no reason given")
			}
			if kept.DNS == nil {
				if tt.dns != nil {
					t.Fatal("DNS evidence dropped")
				}
				return
			}
			if !sameTime(kept.DNS.UndelegatedSince, tt.wantSince) {
				t.Fatalf("undelegated_since = %v, want %v", kept.DNS.UndelegatedSince, tt.wantSince)
			}
			if !slices.Equal(kept.DNS.BaselineNameservers, tt.wantBase) {
				t.Fatalf("baseline = %v, want %v", kept.DNS.BaselineNameservers, tt.wantBase)
			}
		})
	}
}

func TestDNSLapseReasonAndReregistration(t *testing.T) {
	lapse := nxdomain()
	lapse.UndelegatedSince = at(-2 * day)
	lapse.BaselineNameservers = []string{"ns1.old.example", "ns2.old.example"}
	state := DomainState{Phase: PhaseActive, Evidence: &Evidence{Provider: ProviderDNS, DNS: delegated("ns1.old.example")}, ObservedAt: now.Add(-3 * day)}
	addr := []Address{{UserID: "u1", Email: "a@example.eu", VerifiedAt: now.Add(-100 * day)}}

	d := Decide(state, Observation{Domain: "example.eu", Phase: PhaseExpired,
		Evidence: Evidence{Provider: ProviderDNS, DNS: lapse, ObservedAt: now}}, addr, Policy{})
	if d.Reason != ReasonUndelegated || len(d.Unverify) != 1 {
		t.Fatalf("DNS lapse: reason %q, unverify %d; want domain_undelegated, 1", d.Reason, len(d.Unverify))
	}
	// An RDAP lapse keeps its own reason even with DNS evidence attached.
	d = Decide(state, Observation{Domain: "example.com", Phase: PhaseExpired,
		Evidence: Evidence{Provider: "rdap", DNS: lapse, ObservedAt: now}}, addr, Policy{})
	if d.Reason != ReasonExpired {
		t.Fatalf("RDAP lapse: reason %q, want domain_expired", d.Reason)
	}

	lapsed := DomainState{Phase: PhaseExpired, Evidence: &Evidence{Provider: ProviderDNS, DNS: lapse}, ObservedAt: now.Add(-day)}
	for _, tt := range []struct {
		name      string
		ns        []string
		wantRereg bool
	}{
		{"same NS: restored", []string{"ns2.old.example"}, false},
		{"disjoint NS: re-registered", []string{"ns1.parking.example"}, true},
	} {
		obs := Observation{Domain: "example.eu", Phase: PhaseActive,
			Evidence: Evidence{Provider: ProviderDNS, DNS: delegated(tt.ns...), ObservedAt: now}}
		if got := Reregistered(lapsed.Evidence, obs.Evidence); got != tt.wantRereg {
			t.Errorf("%s: Reregistered = %v", tt.name, got)
		}
		d := Decide(lapsed, obs, addr, Policy{})
		if d.Has(EventDomainReregistered) != tt.wantRereg {
			t.Errorf("%s: events %v", tt.name, d.Events)
		}
	}
}

func TestCombineRDAPAndDNS(t *testing.T) {
	expiry := now.Add(-5 * day)
	baseline := &Observation{Domain: "example.com", Phase: PhaseActive, Evidence: Evidence{Provider: "rdap",
		DNS: delegated("ns1.owner.example"), ObservedAt: now.Add(-10 * day)}}
	rdapObs := func(p Phase, notFound bool, exp *time.Time) Observation {
		return Observation{Domain: "example.com", Phase: p,
			Evidence: Evidence{Provider: "rdap", NotFound: notFound, ExpiresAt: exp, ObservedAt: now}}
	}
	parked := delegated("ns1.parking.example")
	noMX := delegated("ns1.owner.example")
	noMX.MX = nil
	otherMX := delegated("ns1.owner.example")
	otherMX.MX = []string{"mx.parking.example"}
	unknownMX := delegated("ns1.owner.example")
	unknownMX.MXKnown, unknownMX.MX = false, nil
	tests := []struct {
		name             string
		rdap             Observation
		dns              *DNSEvidence
		prev             *Observation
		want             Phase
		wantContradicted bool
	}{
		{"404 and NXDOMAIN: released", rdapObs(PhaseReleased, true, nil), nxdomain(), baseline, PhaseReleased, false},
		{"404 while delegated: unknown", rdapObs(PhaseReleased, true, nil), delegated("ns1.owner.example"), baseline, PhaseUnknown, true},
		{"404 without DNS: unknown", rdapObs(PhaseReleased, true, nil), nil, baseline, PhaseUnknown, false},
		{"active, DNS down: active", rdapObs(PhaseActive, false, &expiry), nil, baseline, PhaseActive, false},
		{"grace with parked NS in window: expired", rdapObs(PhaseGrace, false, &expiry), parked, baseline, PhaseExpired, false},
		{"grace with MX removed: expired", rdapObs(PhaseGrace, false, &expiry), noMX, baseline, PhaseExpired, false},
		{"grace with MX moved: expired", rdapObs(PhaseGrace, false, &expiry), otherMX, baseline, PhaseExpired, false},
		{"grace with MX unknown: grace", rdapObs(PhaseGrace, false, &expiry), unknownMX, baseline, PhaseGrace, false},
		{"grace, undelegated: expired", rdapObs(PhaseGrace, false, &expiry), nxdomain(), baseline, PhaseExpired, false},
		{"grace unchanged: grace", rdapObs(PhaseGrace, false, &expiry), delegated("ns1.owner.example"), baseline, PhaseGrace, false},
		{"active outside window, NS moved: active", rdapObs(PhaseActive, false, at(200*day)), parked, baseline, PhaseActive, false},
		{"after the window: no sign", rdapObs(PhaseGrace, false, at(-61*day)), parked, baseline, PhaseGrace, false},
		{"no baseline: no sign", rdapObs(PhaseGrace, false, &expiry), parked, nil, PhaseGrace, false},
		{"redemption unchanged", rdapObs(PhaseRedemption, false, &expiry), parked, baseline, PhaseRedemption, false},
		// Auto-renew grace: the registry already shows next year's date; the
		// baseline's date (the one before expiry) keeps the window open.
		{"renewed date shown, baseline in window, NS parked: expired", withBaseline(rdapObs(PhaseGrace, false, at(360*day)), expiry), parked, baseline, PhaseExpired, false},
		{"renewed date shown, prev's baseline in window, MX moved: expired", rdapObs(PhaseGrace, false, at(360*day)), otherMX, withBaselineObs(baseline, expiry), PhaseExpired, false},
		{"renewed date shown, no baseline: no sign", rdapObs(PhaseGrace, false, at(360*day)), parked, baseline, PhaseGrace, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, contradicted := CombineRDAPAndDNS(tt.rdap, tt.dns, tt.prev, now)
			if got.Phase != tt.want || contradicted != tt.wantContradicted {
				t.Fatalf("phase %s contradicted %v (%s), want %s %v", got.Phase, contradicted, got.Evidence.Detail, tt.want, tt.wantContradicted)
			}
			if tt.dns != nil && got.Evidence.DNS == nil {
				t.Fatal("DNS evidence not attached")
			}
			if got.Phase == PhaseExpired && !strings.Contains(got.Evidence.Detail, "DNS") {
				t.Fatalf("lapse detail %q does not name DNS", got.Evidence.Detail)
			}
		})
	}
	// The baseline survives a grace observation: the next lookup still
	// compares with the last active NS.
	grace, _ := CombineRDAPAndDNS(rdapObs(PhaseGrace, false, &expiry), delegated("ns1.owner.example"), baseline, now)
	if ns, _ := DNSBaseline(&grace); !slices.Equal(ns, []string{"ns1.owner.example"}) {
		t.Fatalf("baseline after grace = %v", ns)
	}
	next, _ := CombineRDAPAndDNS(rdapObs(PhaseGrace, false, &expiry), parked, &grace, now.Add(day))
	if next.Phase != PhaseExpired {
		t.Fatalf("NS move after a grace observation: %s", next.Phase)
	}
}

func TestChangedSeesDNS(t *testing.T) {
	prev := dnsObs(PhaseActive, delegated("ns1.example.net"), now.Add(-day))
	same := *dnsObs(PhaseActive, delegated("NS1.example.net."), now)
	if Changed(prev, same) {
		t.Fatal("same NS in another spelling counted as a change")
	}
	soa := *dnsObs(PhaseActive, delegated("ns1.example.net"), now)
	soa.Evidence.DNS.SOASerial = 42
	if Changed(prev, soa) {
		t.Fatal("a new SOA serial counted as a change")
	}
	pend := nxdomain()
	pend.UndelegatedSince = &now
	if !Changed(prev, *dnsObs(PhaseActive, pend, now)) {
		t.Fatal("a pending undelegation must be published (it is kept for the confirmation)")
	}
	if !Changed(prev, *dnsObs(PhaseActive, delegated("ns2.example.net"), now)) {
		t.Fatal("an NS change must be published")
	}
}

func TestInDNSLapseWindow(t *testing.T) {
	for _, tt := range []struct {
		expires *time.Time
		want    bool
	}{
		{nil, false}, {at(2 * day), false}, {at(day), true}, {at(-60 * day), true}, {at(-60*day - time.Second), false},
	} {
		if got := InDNSLapseWindow(tt.expires, now); got != tt.want {
			t.Errorf("InDNSLapseWindow(%v) = %v, want %v", tt.expires, got, tt.want)
		}
	}
}

func TestPendingUndelegationIsCheckedDaily(t *testing.T) {
	pend := nxdomain()
	pend.UndelegatedSince = &now
	ev := &Evidence{Provider: ProviderDNS, DNS: pend, ObservedAt: now}
	for _, r := range []float64{0, 0.5, 0.999} {
		next := NextCheck("example.eu", PhaseActive, ev, nil, now, ScheduleConfig{}, func() float64 { return r })
		if next.Before(now.Add(DailyCheckEvery)) || next.After(now.Add(DailyCheckEvery+DailyJitter)) {
			t.Fatalf("pending undelegation next check %s after now", next.Sub(now))
		}
	}
	// Delegated again (or no DNS evidence): the recheck interval.
	if next := NextCheck("example.eu", PhaseActive, &Evidence{Provider: ProviderDNS, DNS: delegated("ns1.x"), ObservedAt: now}, nil, now, ScheduleConfig{}, nil); next.Sub(now) < 7*day {
		t.Fatalf("delegated DNS-only domain next check %s", next.Sub(now))
	}
}

// withBaseline returns o carrying a grace-sale baseline recorded before
// expires.
func withBaseline(o Observation, expires time.Time) Observation {
	o.Evidence.Baseline = &Baseline{ExpiresAt: expires, ObservedAt: expires.Add(-10 * day)}
	return o
}

// withBaselineObs returns a copy of prev carrying a grace-sale baseline.
func withBaselineObs(prev *Observation, expires time.Time) *Observation {
	c := withBaseline(*prev, expires)
	return &c
}

// A name under a private suffix (foo.github.io) may exist in its parent
// zone without a zone cut: it is present, and its disappearance is
// confirmed like a delegated name's.
func TestClassifyDNSHostedName(t *testing.T) {
	hosted := func() *DNSEvidence { return &DNSEvidence{Hosted: true, Rcode: "NOERROR"} }
	classify := func(d *DNSEvidence, prev *Observation, at time.Time) *Observation {
		ev := Evidence{Provider: ProviderDNS, DNS: d, ObservedAt: at}
		phase, why, kept := ClassifyDNS(ev, prev, at, 0)
		if why == "" {
			t.Fatal("no reason given")
		}
		return &Observation{Domain: "foo.github.io", Phase: phase, Evidence: kept}
	}
	t0 := now.Add(-48 * time.Hour)
	first := classify(hosted(), nil, t0)
	if first.Phase != PhaseActive {
		t.Fatalf("hosted name: phase %s, want active", first.Phase)
	}
	if still := classify(hosted(), first, t0.Add(24*time.Hour)); still.Phase != PhaseActive || PendingUndelegation(still.Phase, &still.Evidence) {
		t.Fatalf("hosted name seen again: phase %s, pending %v", still.Phase, PendingUndelegation(still.Phase, &still.Evidence))
	}
	gone := classify(nxdomain(), first, t0.Add(time.Hour))
	if gone.Phase != PhaseActive || !PendingUndelegation(gone.Phase, &gone.Evidence) {
		t.Fatalf("first NXDOMAIN after hosted: phase %s, pending %v; want active awaiting confirmation", gone.Phase, PendingUndelegation(gone.Phase, &gone.Evidence))
	}
	confirmed := classify(nxdomain(), gone, t0.Add(time.Hour+DefaultUndelegatedConfirm))
	if confirmed.Phase != PhaseExpired || !DNSUndelegatedLapse(*confirmed) || ReasonOf(*confirmed) != ReasonUndelegated {
		t.Fatalf("confirmed NXDOMAIN: phase %s, reason %s; want expired, domain_undelegated", confirmed.Phase, ReasonOf(*confirmed))
	}
	if back := classify(hosted(), confirmed, now); back.Phase != PhaseActive {
		t.Fatalf("hosted again: phase %s", back.Phase)
	}
	if never := classify(nxdomain(), nil, now); never.Phase != PhaseUnknown {
		t.Fatalf("NXDOMAIN, never present: phase %s, want unknown", never.Phase)
	}
	if Changed(first, Observation{Phase: PhaseActive, Evidence: Evidence{Provider: ProviderDNS, DNS: delegated("ns1.x.example")}}) == false {
		t.Error("hosted → delegated is not a change")
	}
}

func TestHostedCounts(t *testing.T) {
	for name, want := range map[string]bool{
		"foo.github.io": true, "acme.us.com": true, "acme.eu.org": true, "foo.pp.ua": true,
		"github.io": false, "us.com": false, "example.com": false, "www.foo.github.io": false, "ox.ac.uk": false,
	} {
		if got := HostedCounts(name); got != want {
			t.Errorf("HostedCounts(%q) = %v, want %v", name, got, want)
		}
	}
}
