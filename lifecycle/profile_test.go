package lifecycle

import (
	"strings"
	"testing"
	"time"
)

func TestProfileFor(t *testing.T) {
	for name, want := range map[string]string{
		"com": "Verisign", "example.tv": "Verisign", "x.cc": "Verisign", "NET.": "Verisign",
		"co.uk": "Nominet", "cs.ox.ac.uk": "Nominet", "org": "Public Interest Registry",
		"de": "DENIC", "ca": "CIRA", "com.au": "auDA", "io": "Identity Digital",
		"xyz": "default", "ai": "default", "": "default",
	} {
		if got := ProfileFor(name).Registry; got != want {
			t.Errorf("ProfileFor(%q) = %s, want %s", name, got, want)
		}
	}
}

func TestProfilesAreSourcedAndConsistent(t *testing.T) {
	seen := map[string]string{}
	for _, p := range append(Profiles, DefaultProfile) {
		if !strings.Contains(p.Source, "http") && !strings.Contains(p.Source, "research") {
			t.Errorf("%s: no public source (%q)", p.Registry, p.Source)
		}
		for _, tld := range p.TLDs {
			if other, dup := seen[tld]; dup {
				t.Errorf(".%s in %s and %s", tld, other, p.Registry)
			}
			seen[tld] = p.Registry
		}
		for _, s := range p.NotHeld {
			if p.Holds(s) {
				t.Errorf("%s holds %s, which it lists as not held", p.Registry, s)
			}
		}
		// The recheck limit must see every lapse: no registry releases a
		// deleted name sooner than MaxRecheckInterval (0: not published).
		if r := p.Redemption + p.PendingDelete; r > 0 && r < MaxRecheckInterval {
			t.Errorf("%s releases %s after deletion, less than MaxRecheckInterval %s", p.Registry, r, MaxRecheckInterval)
		}
	}
}

func TestCanaryFor(t *testing.T) {
	tests := []struct {
		suffix string
		want   string // "" = no canary can vouch
	}{
		{"com", "verisign.com"},
		{"net", "verisign.net"},
		{"org", "pir.org"},
		{"tv", "twitch.tv"},
		{"uk", "nic.uk"},
		{"co.uk", "nic.uk"},  // Nominet holds co.uk: the TLD canary vouches
		{"org.uk", "nic.uk"}, // likewise
		{"ac.uk", ""},        // Jisc's zone, not Nominet's database
		{"gov.uk", ""},
		{"nhs.uk", ""},
		{"ca", "cira.ca"},
		{"gc.ca", ""}, // delegated outside CIRA's database
		{"on.ca", ""}, // not known to be held: conservative
		{"com.au", "auda.com.au"},
		{"gov.au", ""},
		{"com.br", "registro.br"}, // registro.br holds every suffix
		{"xyz", "nic.xyz"},        // default: ICANN's nic.<tld>
		{"com.xx", ""},            // default: a second-level suffix is not known to be held
	}
	for _, tt := range tests {
		got, ok := ProfileFor(tt.suffix).CanaryFor(tt.suffix)
		if ok != (tt.want != "") || got != tt.want {
			t.Errorf("CanaryFor(%q) = %q, %v; want %q", tt.suffix, got, ok, tt.want)
		}
	}
}

func TestClassifyRDAPAfterGraceSale(t *testing.T) {
	ns := []string{"ns1.owner.example", "ns2.owner.example"}
	parking := []string{"ns1.parking.example", "ns2.parking.example"}
	expiry := now.Add(-10 * day)
	// The last active observation before expiry.
	lastActive := &Observation{Domain: "example.com", Phase: PhaseActive, Evidence: Evidence{
		Provider: "rdap", Statuses: []string{"active"}, ExpiresAt: &expiry, Nameservers: ns,
		RegistrarIANAID: "146", ObservedAt: expiry.Add(-day)}}
	baseline := &Baseline{Nameservers: ns, RegistrarIANAID: "146", ExpiresAt: expiry, ObservedAt: expiry.Add(-day)}
	renewed := now.Add(355 * day)
	tests := []struct {
		name   string
		domain string
		ev     Evidence
		prev   *Observation
		want   Phase
		reason string
	}{
		{name: "past expiry, parking nameservers, no ARP status yet",
			ev:   Evidence{Statuses: []string{"active"}, ExpiresAt: &expiry, Nameservers: parking, RegistrarIANAID: "146"},
			prev: lastActive, want: PhaseExpired, reason: "moved away"},
		{name: "ARP, nameservers removed",
			ev:   Evidence{Statuses: []string{"auto renew period"}, ExpiresAt: &renewed, RegistrarIANAID: "146"},
			prev: lastActive, want: PhaseExpired, reason: "removed"},
		{name: "ARP, status inactive (no delegation)",
			ev:   Evidence{Statuses: []string{"auto renew period", "inactive"}, ExpiresAt: &renewed, Nameservers: ns, RegistrarIANAID: "146"},
			prev: lastActive, want: PhaseExpired, reason: "removed"},
		{name: "sold in grace: new registrar, same handle and date, active again",
			ev:   Evidence{Statuses: []string{"active"}, ExpiresAt: &renewed, Nameservers: ns, RegistrarIANAID: "1068"},
			prev: lastActive, want: PhaseExpired, reason: "registrar changed"},
		{name: "move first seen on the second grace lookup (baseline carried)",
			ev: Evidence{Statuses: []string{"auto renew period"}, ExpiresAt: &renewed, Nameservers: parking, RegistrarIANAID: "146"},
			prev: &Observation{Phase: PhaseGrace, Evidence: Evidence{Provider: "rdap", Statuses: []string{"auto renew period"},
				ExpiresAt: &renewed, Nameservers: parking, RegistrarIANAID: "146", Baseline: baseline, ObservedAt: now.Add(-day)}},
			want: PhaseExpired, reason: "moved away"},
		{name: "healthy ARP, same nameservers and registrar",
			ev:   Evidence{Statuses: []string{"auto renew period"}, ExpiresAt: &renewed, Nameservers: ns, RegistrarIANAID: "146"},
			prev: lastActive, want: PhaseGrace},
		{name: "renewed in the window, nothing moved",
			ev:   Evidence{Statuses: []string{"active"}, ExpiresAt: &renewed, Nameservers: ns, RegistrarIANAID: "146"},
			prev: lastActive, want: PhaseActive},
		{name: "one nameserver kept is no move",
			ev:   Evidence{Statuses: []string{"active"}, ExpiresAt: &renewed, Nameservers: []string{"ns1.owner.example", "ns9.other.example"}, RegistrarIANAID: "146"},
			prev: lastActive, want: PhaseActive},
		{name: "outside the window the move is the owner's",
			ev: Evidence{Statuses: []string{"active"}, ExpiresAt: &renewed, Nameservers: parking, RegistrarIANAID: "146"},
			prev: &Observation{Phase: PhaseActive, Evidence: Evidence{Provider: "rdap", Statuses: []string{"active"},
				ExpiresAt: at(-61 * day), Nameservers: ns, RegistrarIANAID: "146", ObservedAt: now.Add(-62 * day)}},
			want: PhaseActive},
		{name: "carried baseline expires with its window",
			ev: Evidence{Statuses: []string{"active"}, ExpiresAt: &renewed, Nameservers: parking, RegistrarIANAID: "146"},
			prev: &Observation{Phase: PhaseActive, Evidence: Evidence{Provider: "rdap", ExpiresAt: &renewed, Nameservers: ns,
				Baseline: &Baseline{Nameservers: ns, ExpiresAt: now.Add(-61 * day)}}},
			want: PhaseActive},
		{name: "before expiry a move is the owner's",
			ev: Evidence{Statuses: []string{"active"}, ExpiresAt: at(20 * day), Nameservers: parking, RegistrarIANAID: "1068"},
			prev: &Observation{Phase: PhaseActive, Evidence: Evidence{Provider: "rdap", Statuses: []string{"active"},
				ExpiresAt: at(20 * day), Nameservers: ns, RegistrarIANAID: "146", ObservedAt: now.Add(-day)}},
			want: PhaseActive},
		{name: "previous observation from another provider gives no baseline",
			ev: Evidence{Statuses: []string{"active"}, ExpiresAt: &renewed, Nameservers: parking, RegistrarIANAID: "1068"},
			prev: &Observation{Phase: PhaseActive, Evidence: Evidence{Provider: "domainr", ExpiresAt: &expiry,
				Nameservers: ns, RegistrarIANAID: "146", ObservedAt: expiry.Add(-day)}},
			want: PhaseActive},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			domain := tt.domain
			if domain == "" {
				domain = "example.com"
			}
			ev := tt.ev
			ev.Provider, ev.ObservedAt = "rdap", now
			got, reason := ClassifyRDAPAfter(domain, ev, tt.prev, now)
			if got != tt.want || !strings.Contains(reason, tt.reason) {
				t.Fatalf("phase = %s (%s), want %s (%q)", got, reason, tt.want, tt.reason)
			}
		})
	}
}

func TestGraceBaselineCarried(t *testing.T) {
	expiry := now.Add(-2 * day)
	prev := &Observation{Phase: PhaseActive, Evidence: Evidence{Provider: "rdap", ExpiresAt: &expiry,
		Nameservers: []string{"ns1.a.example"}, RegistrarIANAID: "146", ObservedAt: expiry.Add(-time.Hour)}}
	b := GraceBaseline(Evidence{Provider: "rdap"}, prev, now)
	if b == nil || !b.ExpiresAt.Equal(expiry) || b.RegistrarIANAID != "146" || len(b.Nameservers) != 1 {
		t.Fatalf("baseline = %+v", b)
	}
	// Carried by the next observation, it is the one compared with later.
	next := &Observation{Phase: PhaseGrace, Evidence: Evidence{Provider: "rdap", Baseline: b}}
	if b2 := GraceBaseline(Evidence{Provider: "rdap"}, next, now.Add(30*day)); b2 == nil || !b2.ExpiresAt.Equal(expiry) {
		t.Fatalf("carried baseline = %+v", b2)
	}
	if b3 := GraceBaseline(Evidence{Provider: "rdap"}, next, expiry.Add(GraceSaleWindow+time.Second)); b3 != nil {
		t.Fatalf("baseline after the window = %+v", b3)
	}
}

func TestSilentRenewalWindow(t *testing.T) {
	newExpiry := now.Add(360 * day) // renewed 5 days ago, silently
	if !ProfileFor("ca").SilentRenewalWindow(newExpiry, now) {
		t.Error(".ca (no auto-renew status shown) should be watched daily after a silent renewal")
	}
	if ProfileFor("com").SilentRenewalWindow(newExpiry, now) {
		t.Error(".com shows its auto-renew status: no silent window")
	}
	if ProfileFor("ca").SilentRenewalWindow(newExpiry, now.Add(50*day)) {
		t.Error("the window ends when the grace would have")
	}
	if ProfileFor("ca").SilentRenewalWindow(now.Add(200*day), now) {
		t.Error("an expiry far ahead is no renewal that just happened")
	}
}
