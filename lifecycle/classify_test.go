package lifecycle

import (
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func at(d time.Duration) *time.Time { t := now.Add(d); return &t }

func TestNormalizeRDAPStatus(t *testing.T) {
	tests := map[string]string{
		"pending delete":             "pending delete",
		"pendingDelete":              "pending delete",
		"pending_delete":             "pending delete",
		"PENDING DELETE":             "pending delete",
		"PENDING_DELETE":             "pending delete",
		"  Pending   Delete  ":       "pending delete",
		"pending-delete":             "pending delete",
		"PendingDelete":              "pending delete",
		"redemptionPeriod":           "redemption period",
		"clientHold":                 "client hold",
		"client hold":                "client hold",
		"CLIENT_HOLD":                "client hold",
		"serverHold":                 "server hold",
		"autoRenewPeriod":            "auto renew period",
		"auto renew period":          "auto renew period",
		"AUTO RENEW PERIOD":          "auto renew period",
		"pendingRestore":             "pending restore",
		"clientDeleteProhibited":     "client delete prohibited",
		"server transfer prohibited": "server transfer prohibited",
		"inactive":                   "inactive",
		"Active":                     "active",
		"ok":                         "active",
		"OK":                         "active",
		"":                           "",
		"   ":                        "",
		"add period":                 "add period",
		"addPeriod":                  "add period",
		"pending\tdelete\n":          "pending delete",
		"status2Go":                  "status2 go",
	}
	for in, want := range tests {
		if got := NormalizeRDAPStatus(in); got != want {
			t.Errorf("NormalizeRDAPStatus(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNormalizeRDAPStatusFastPathDoesNotAllocate(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() {
		_ = NormalizeRDAPStatus("client delete prohibited")
		_ = NormalizeRDAPStatus("auto renew period")
	})
	if allocs != 0 {
		t.Fatalf("canonical statuses allocate %v times", allocs)
	}
}

func FuzzNormalizeRDAPStatus(f *testing.F) {
	for _, s := range []string{"pendingDelete", "PENDING_DELETE", "client hold", "ok", " a  b ", "\xff", "ÄÖ camelCase"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := NormalizeRDAPStatus(s)
		if again := NormalizeRDAPStatus(got); again != got {
			t.Fatalf("not idempotent: %q -> %q -> %q", s, got, again)
		}
		if strings.HasPrefix(got, " ") || strings.HasSuffix(got, " ") || strings.Contains(got, "  ") {
			t.Fatalf("%q -> %q has stray spaces", s, got)
		}
		for i := 0; i < len(got); i++ {
			if c := got[i]; c >= 'A' && c <= 'Z' || c == '_' || c == '-' {
				t.Fatalf("%q -> %q keeps %q", s, got, c)
			}
		}
	})
}

func TestClassifyRDAP(t *testing.T) {
	ns := []string{"ns1.example.net", "ns2.example.net"}
	parking := []string{"ns1.parking.example", "ns2.parking.example"}
	tests := []struct {
		name   string
		domain string // "" = example.com
		ev     Evidence
		prev   *Evidence
		want   Phase
		reason string // substring
	}{
		{name: "404 confirmed", domain: "example.com", ev: Evidence{NotFound: true}, want: PhaseReleased, reason: "not found"},
		{name: "404 wins over stale statuses", ev: Evidence{NotFound: true, Statuses: []string{"active"}}, want: PhaseReleased},
		{name: "com active with prohibitions", domain: "example.com",
			ev:   Evidence{Statuses: []string{"client delete prohibited", "client transfer prohibited", "active"}, ExpiresAt: at(200 * day), RegisteredAt: at(-2000 * day)},
			want: PhaseActive, reason: "active"},
		{name: "prohibitions only", domain: "example.com",
			ev:   Evidence{Statuses: []string{"client transfer prohibited"}, ExpiresAt: at(200 * day)},
			want: PhaseActive},
		{name: "EPP spelling ok", ev: Evidence{Statuses: []string{"ok"}}, want: PhaseActive, reason: "active"},
		{name: "com auto renew period healthy", domain: "example.com",
			ev:   Evidence{Statuses: []string{"auto renew period", "client transfer prohibited"}, ExpiresAt: at(360 * day), Nameservers: ns},
			prev: &Evidence{Statuses: []string{"active"}, ExpiresAt: at(-5 * day), Nameservers: ns},
			want: PhaseGrace, reason: "auto renew"},
		{name: "auto renew camelCase", ev: Evidence{Statuses: []string{"autoRenewPeriod"}}, want: PhaseGrace},
		{name: "auto renew no prev", ev: Evidence{Statuses: []string{"auto renew period"}, Nameservers: parking}, want: PhaseGrace},
		{name: "auto renew + client hold", domain: "example.com",
			ev: Evidence{Statuses: []string{"auto renew period", "client hold"}, ExpiresAt: at(360 * day)}, want: PhaseExpired, reason: "hold"},
		{name: "auto renew + server hold (EPP)", ev: Evidence{Statuses: []string{"autoRenewPeriod", "serverHold"}}, want: PhaseExpired},
		{name: "hold after expiration", domain: "example.de", ev: Evidence{Statuses: []string{"client hold"}, ExpiresAt: at(-day)}, want: PhaseExpired, reason: "hold"},
		{name: "hold with expiration exactly now", domain: "example.com", ev: Evidence{Statuses: []string{"server hold"}, ExpiresAt: at(0)}, want: PhaseExpired},
		{name: "hold alone, expiry in the future", domain: "example.com",
			ev: Evidence{Statuses: []string{"client hold"}, ExpiresAt: at(100 * day)}, want: PhaseActive},
		{name: "expiry auction: auto renew + nameservers moved", domain: "example.com",
			ev:   Evidence{Statuses: []string{"auto renew period"}, Nameservers: parking},
			prev: &Evidence{Statuses: []string{"active"}, Nameservers: ns},
			want: PhaseExpired, reason: "nameservers moved"},
		{name: "auto renew + nameserver case/dot differences are not a move",
			ev:   Evidence{Statuses: []string{"auto renew period"}, Nameservers: []string{"NS1.example.net."}},
			prev: &Evidence{Nameservers: ns},
			want: PhaseGrace},
		{name: "auto renew + partial nameserver change", ev: Evidence{Statuses: []string{"auto renew period"}, Nameservers: []string{"ns1.example.net", "ns9.other.example"}},
			prev: &Evidence{Nameservers: ns}, want: PhaseGrace},
		{name: "auto renew + nameservers removed (empty now)", ev: Evidence{Statuses: []string{"auto renew period"}},
			prev: &Evidence{Nameservers: ns}, want: PhaseGrace},
		{name: "auto renew + prev without nameservers", ev: Evidence{Statuses: []string{"auto renew period"}, Nameservers: parking},
			prev: &Evidence{}, want: PhaseGrace},
		{name: "nameservers moved without auto renew is no lapse", domain: "example.com",
			ev: Evidence{Statuses: []string{"active"}, Nameservers: parking, ExpiresAt: at(100 * day)}, prev: &Evidence{Nameservers: ns}, want: PhaseActive},
		{name: "redemption", ev: Evidence{Statuses: []string{"pending delete", "redemption period"}}, want: PhaseRedemption, reason: "redemption"},
		{name: "redemption EPP", ev: Evidence{Statuses: []string{"pendingDelete", "redemptionPeriod"}}, want: PhaseRedemption},
		{name: "redemption alone", ev: Evidence{Statuses: []string{"redemption period"}}, want: PhaseRedemption},
		{name: "pending restore", ev: Evidence{Statuses: []string{"pending delete", "pending restore"}}, want: PhaseRedemption, reason: "pending restore"},
		{name: "pending delete alone", ev: Evidence{Statuses: []string{"pending delete"}}, want: PhasePendingDelete},
		{name: "PENDING_DELETE + inactive", ev: Evidence{Statuses: []string{"PENDING_DELETE", "inactive"}}, want: PhasePendingDelete},
		{name: "contradiction: active + pending delete → later stage", ev: Evidence{Statuses: []string{"active", "pending delete"}}, want: PhasePendingDelete},
		{name: "contradiction: redemption + auto renew + hold → redemption", ev: Evidence{Statuses: []string{"auto renew period", "client hold", "redemption period"}}, want: PhaseRedemption},
		{name: "contradiction: active + inactive → active", ev: Evidence{Statuses: []string{"active", "inactive"}, ExpiresAt: at(10 * day)}, want: PhaseActive},
		{name: "inactive (no delegation) is registered", ev: Evidence{Statuses: []string{"inactive"}}, want: PhaseActive},
		{name: "com expired date without auto renew → grace", domain: "example.com",
			ev: Evidence{Statuses: []string{"active"}, ExpiresAt: at(-2 * day)}, want: PhaseGrace, reason: "Verisign"},
		// Two-letter TLDs follow their registry's profile, not their length.
		{name: "tv (Verisign) expired date → grace", domain: "example.tv",
			ev: Evidence{Statuses: []string{"active"}, ExpiresAt: at(-2 * day)}, want: PhaseGrace, reason: "Verisign"},
		{name: "cc (Verisign) expired date → grace", domain: "example.cc",
			ev: Evidence{Statuses: []string{"active"}, ExpiresAt: at(-20 * day)}, want: PhaseGrace},
		{name: "de expired date → grace (DENIC renews until cancelled)", domain: "example.de",
			ev: Evidence{Statuses: []string{"active"}, ExpiresAt: at(-2 * day)}, want: PhaseGrace, reason: "DENIC"},
		{name: "uk expired a minute ago → grace (renewable, resolving for 30 days)", domain: "example.co.uk",
			ev: Evidence{ExpiresAt: at(-time.Minute)}, want: PhaseGrace, reason: "Nominet"},
		{name: "uk expired 29 days ago → grace", domain: "example.co.uk",
			ev: Evidence{Statuses: []string{"active"}, ExpiresAt: at(-29 * day)}, want: PhaseGrace},
		{name: "uk expired 30 days ago → expired (suspended)", domain: "example.co.uk",
			ev: Evidence{Statuses: []string{"active"}, ExpiresAt: at(-30 * day)}, want: PhaseExpired, reason: "out of the DNS"},
		{name: "au expired → expired (stops at expiry)", domain: "example.com.au",
			ev: Evidence{Statuses: []string{"active"}, ExpiresAt: at(-time.Hour)}, want: PhaseExpired, reason: "auDA"},
		{name: "ca expired date → grace", domain: "example.ca",
			ev: Evidence{Statuses: []string{"active"}, ExpiresAt: at(-10 * day)}, want: PhaseGrace, reason: "CIRA"},
		{name: "expired date, registry not in the table → grace", domain: "example.ai",
			ev: Evidence{ExpiresAt: at(-day)}, want: PhaseGrace, reason: "default"},
		{name: "expired date long ago, registry not in the table → still grace", domain: "example.xyz",
			ev: Evidence{ExpiresAt: at(-400 * day)}, want: PhaseGrace},
		{name: ".no without status or expiry, with registration data", domain: "example.no",
			ev: Evidence{RegisteredAt: at(-900 * day), Handle: "EXA1234D-NORID", Nameservers: ns}, want: PhaseActive},
		{name: ".no with handle only", domain: "example.no", ev: Evidence{Handle: "EXA1234D-NORID"}, want: PhaseActive},
		{name: "no status but future expiry", domain: "example.no", ev: Evidence{ExpiresAt: at(30 * day)}, want: PhaseActive, reason: "future"},
		{name: "empty evidence", ev: Evidence{}, want: PhaseUnknown},
		{name: "nameservers only", ev: Evidence{Nameservers: ns}, want: PhaseUnknown},
		{name: "detail without data", ev: Evidence{Detail: "404 not confirmed by canary"}, want: PhaseUnknown, reason: "404 not confirmed by canary"},
		{name: "detail without data but handle", ev: Evidence{Detail: "expiration 9999 ignored", Handle: "H1"}, want: PhaseUnknown, reason: "9999"},
		{name: "detail with statuses is classified", ev: Evidence{Detail: "odd date ignored", Statuses: []string{"active"}}, want: PhaseActive},
		{name: "unrecognised statuses only", ev: Evidence{Statuses: []string{"associated"}}, want: PhaseActive},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got Phase
			var reason string
			domain := tt.domain
			if domain == "" {
				domain = "example.com"
			}
			got, reason = ClassifyRDAPFor(domain, tt.ev, tt.prev, now)
			if got != tt.want {
				t.Fatalf("phase = %s (%s), want %s", got, reason, tt.want)
			}
			if reason == "" || !strings.Contains(reason, tt.reason) {
				t.Fatalf("reason %q does not contain %q", reason, tt.reason)
			}
		})
	}
}

func TestClassifyTokens(t *testing.T) {
	tests := []struct {
		tokens []string
		want   Phase
	}{
		// Every token alone.
		{[]string{"unknown"}, PhaseUnknown},
		{[]string{"undelegated"}, PhaseUnknown},
		{[]string{"inactive"}, PhaseUnknown},
		{[]string{"pending"}, PhaseUnknown},
		{[]string{"disallowed"}, PhaseUnknown},
		{[]string{"claimed"}, PhaseUnknown},
		{[]string{"reserved"}, PhaseUnknown},
		{[]string{"dpml"}, PhaseUnknown},
		{[]string{"invalid"}, PhaseUnknown},
		{[]string{"active"}, PhaseActive},
		{[]string{"parked"}, PhaseActive},
		{[]string{"marketed"}, PhaseActive},
		{[]string{"parked marketed"}, PhaseActive},
		{[]string{"expiring"}, PhaseRedemption},
		{[]string{"deleting"}, PhasePendingDelete},
		{[]string{"priced"}, PhaseUnknown},
		{[]string{"transferable"}, PhaseUnknown},
		{[]string{"premium"}, PhaseUnknown},
		{[]string{"suffix"}, PhaseUnknown},
		{[]string{"zone"}, PhaseUnknown},
		{[]string{"tld"}, PhaseUnknown},
		{nil, PhaseUnknown},
		{[]string{""}, PhaseUnknown},
		{[]string{"something new"}, PhaseUnknown},
		// active with companions.
		{[]string{"undelegated", "active"}, PhaseActive},
		{[]string{"undelegated active"}, PhaseActive},
		{[]string{"active parked"}, PhaseActive},
		{[]string{"marketed active"}, PhaseActive},
		{[]string{"active priced"}, PhaseActive},
		{[]string{"active transferable"}, PhaseActive},
		{[]string{"active marketed priced transferable"}, PhaseActive},
		{[]string{"active", "premium"}, PhaseActive},
		{[]string{"ACTIVE"}, PhaseActive},
		// inactive without active.
		{[]string{"undelegated inactive"}, PhaseUnknown},
		{[]string{"inactive", "undelegated"}, PhaseUnknown},
		{[]string{"inactive premium"}, PhaseUnknown},
		{[]string{"inactive marketed"}, PhaseUnknown},
		{[]string{"inactive reserved"}, PhaseUnknown},
		{[]string{"inactive claimed"}, PhaseUnknown},
		{[]string{"inactive priced"}, PhaseUnknown},
		{[]string{"inactive", "active"}, PhaseActive},
		// inactive on a name that cannot be registered.
		{[]string{"inactive invalid"}, PhaseUnknown},
		{[]string{"inactive dpml"}, PhaseUnknown},
		{[]string{"inactive", "reserved"}, PhaseUnknown},
		{[]string{"inactive disallowed"}, PhaseUnknown},
		{[]string{"undelegated inactive suffix"}, PhaseUnknown},
		{[]string{"zone inactive"}, PhaseUnknown},
		{[]string{"tld inactive"}, PhaseUnknown},
		// Lapse tokens win over active.
		{[]string{"active expiring"}, PhaseRedemption},
		{[]string{"undelegated active expiring"}, PhaseRedemption},
		{[]string{"active deleting"}, PhasePendingDelete},
		{[]string{"undelegated inactive deleting"}, PhasePendingDelete},
		{[]string{"expiring deleting"}, PhasePendingDelete},
		{[]string{"unknown", "active"}, PhaseActive},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.tokens, "+"), func(t *testing.T) {
			got, reason := ClassifyTokens(tt.tokens)
			if got != tt.want {
				t.Fatalf("ClassifyTokens(%q) = %s (%s), want %s", tt.tokens, got, reason, tt.want)
			}
			if reason == "" {
				t.Fatal("empty reason")
			}
		})
	}
}

// With the parent zone agreeing (DNS evidence), a bare inactive releases;
// a name nobody can register stays unknown whatever the zone says.
func TestClassifyTokensWithParent(t *testing.T) {
	for _, tt := range []struct {
		tokens []string
		parent bool
		want   Phase
	}{
		{[]string{"inactive"}, true, PhaseReleased},
		{[]string{"undelegated inactive"}, true, PhaseReleased},
		{[]string{"inactive"}, false, PhaseUnknown},
		{[]string{"inactive reserved"}, true, PhaseUnknown},
		{[]string{"inactive dpml"}, true, PhaseUnknown},
		{[]string{"claimed"}, true, PhaseUnknown},
		{[]string{"inactive", "active"}, true, PhaseActive},
	} {
		if got, why := ClassifyTokensWithParent(tt.tokens, tt.parent); got != tt.want {
			t.Errorf("ClassifyTokensWithParent(%q, %v) = %s (%s), want %s", tt.tokens, tt.parent, got, why, tt.want)
		}
	}
}

func TestChanged(t *testing.T) {
	base := Observation{Domain: "example.com", Phase: PhaseActive, Evidence: Evidence{
		Provider: "rdap", Server: "https://rdap.example/", Statuses: []string{"active", "client transfer prohibited"},
		RegisteredAt: at(-1000 * day), ExpiresAt: at(100 * day), Handle: "H1", RegistrarIANAID: "292",
		Nameservers: []string{"ns1.example.net", "ns2.example.net"}, ObservedAt: now,
	}}
	mod := func(f func(o *Observation)) Observation {
		o := base
		o.Evidence.Statuses = append([]string(nil), base.Evidence.Statuses...)
		o.Evidence.Nameservers = append([]string(nil), base.Evidence.Nameservers...)
		f(&o)
		return o
	}
	tests := []struct {
		name string
		prev *Observation
		next Observation
		want bool
	}{
		{"identical", &base, base, false},
		{"no prev", nil, base, true},
		{"no prev, unknown next", nil, mod(func(o *Observation) { o.Phase = PhaseUnknown }), false},
		{"unknown next never changes", &base, mod(func(o *Observation) { o.Phase = PhaseUnknown; o.Evidence = Evidence{} }), false},
		{"phase", &base, mod(func(o *Observation) { o.Phase = PhaseGrace }), true},
		{"observed_at, server, provider, detail ignored", &base, mod(func(o *Observation) {
			o.Evidence.ObservedAt = now.Add(day)
			o.Evidence.Server = "https://other/"
			o.Evidence.Provider = "domainr"
			o.Evidence.Detail = "x"
			o.Evidence.LastChangedAt = at(-day)
		}), false},
		{"same instant in another zone", &base, mod(func(o *Observation) {
			t := o.Evidence.ExpiresAt.In(time.FixedZone("x", 3600))
			o.Evidence.ExpiresAt = &t
		}), false},
		{"statuses reordered and respelled", &base, mod(func(o *Observation) { o.Evidence.Statuses = []string{"clientTransferProhibited", "active", "active"} }), false},
		{"nameservers reordered", &base, mod(func(o *Observation) { o.Evidence.Nameservers = []string{"NS2.example.net.", "ns1.example.net"} }), false},
		{"registration date", &base, mod(func(o *Observation) { o.Evidence.RegisteredAt = at(-day) }), true},
		{"registration date removed", &base, mod(func(o *Observation) { o.Evidence.RegisteredAt = nil }), true},
		{"expiration date", &base, mod(func(o *Observation) { o.Evidence.ExpiresAt = at(465 * day) }), true},
		{"handle", &base, mod(func(o *Observation) { o.Evidence.Handle = "H2" }), true},
		{"registrar", &base, mod(func(o *Observation) { o.Evidence.RegistrarIANAID = "1" }), true},
		{"status added", &base, mod(func(o *Observation) { o.Evidence.Statuses = append(o.Evidence.Statuses, "client hold") }), true},
		{"nameservers", &base, mod(func(o *Observation) { o.Evidence.Nameservers = []string{"ns1.parking.example"} }), true},
		{"not found", &base, mod(func(o *Observation) { o.Evidence.NotFound = true }), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Changed(tt.prev, tt.next); got != tt.want {
				t.Fatalf("Changed = %v, want %v", got, tt.want)
			}
		})
	}
}

func BenchmarkClassifyRDAP(b *testing.B) {
	prev := &Evidence{Nameservers: []string{"ns1.example.net", "ns2.example.net"}}
	cases := []Evidence{
		{Statuses: []string{"client delete prohibited", "client transfer prohibited", "client update prohibited", "active"}, ExpiresAt: at(200 * day), Nameservers: prev.Nameservers},
		{Statuses: []string{"autoRenewPeriod", "clientTransferProhibited"}, ExpiresAt: at(360 * day), Nameservers: []string{"ns1.parking.example"}},
		{Statuses: []string{"pending delete", "redemption period"}},
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		ClassifyRDAPFor("example.com", cases[i%len(cases)], prev, now)
	}
}

func TestClassifyRDAPAfterKeepsALapse(t *testing.T) {
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	reg := now.AddDate(-3, 0, 0)
	exp := now.AddDate(0, 0, -10)
	parkedNS := []string{"ns1.parking.example", "ns2.parking.example"}
	autoRenew := func(ns []string, handle string, regAt time.Time) Evidence {
		return Evidence{Provider: "rdap", Statuses: []string{"auto renew period"}, RegisteredAt: &regAt,
			ExpiresAt: &exp, Handle: handle, Nameservers: ns, ObservedAt: now}
	}
	expiredPrev := &Observation{Domain: "lapsed.com", Phase: PhaseExpired, Evidence: autoRenew(parkedNS, "H1", reg)}
	tests := []struct {
		name string
		ev   Evidence
		prev *Observation
		want Phase
	}{
		{"parked again after expired stays expired", autoRenew(parkedNS, "H1", reg), expiredPrev, PhaseExpired},
		{"healthy auto-renew without a lapse seen is grace", autoRenew(parkedNS, "H1", reg),
			&Observation{Phase: PhaseGrace, Evidence: autoRenew(parkedNS, "H1", reg)}, PhaseGrace},
		{"no previous observation is grace", autoRenew(parkedNS, "H1", reg), nil, PhaseGrace},
		{"new handle is not the same registration", autoRenew(parkedNS, "H2", reg), expiredPrev, PhaseGrace},
		{"renewed (active) leaves expired", Evidence{Provider: "rdap", Statuses: []string{"active"}, RegisteredAt: &reg,
			ExpiresAt: ptrTime(now.AddDate(1, 0, 0)), Handle: "H1", ObservedAt: now}, expiredPrev, PhaseActive},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, why := ClassifyRDAPAfter("lapsed.com", tt.ev, tt.prev, now)
			if got != tt.want {
				t.Errorf("ClassifyRDAPAfter = %s (%s), want %s", got, why, tt.want)
			}
		})
	}
}

func ptrTime(t time.Time) *time.Time { return &t }

func TestEvidenceCleanDropsControlCharacters(t *testing.T) {
	ev := Evidence{Provider: "rdap", Handle: "H\x00-1", Detail: "line\nbreak", Statuses: []string{"active", "client\x00hold"},
		Nameservers: []string{"ns1.example.com"}}
	got := ev.Clean()
	if got.Handle != "H-1" || got.Detail != "linebreak" || got.Statuses[1] != "clienthold" || got.Nameservers[0] != "ns1.example.com" {
		t.Fatalf("Clean = %+v", got)
	}
	if ev.Statuses[1] != "client\x00hold" {
		t.Fatal("Clean changed its input's slice")
	}
}
