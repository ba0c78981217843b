package lifecycle

import (
	"slices"
	"strconv"
	"strings"
	"time"
)

// Profile is what domainguard knows about one registry's lifecycle and RDAP
// service (DESIGN.md §2, "Registry profiles"). Profiles decide how a past
// expiration date is read, how long a silently auto-renewed name is watched
// daily, which public suffixes under a TLD are in the registry's database
// (an RDAP 404 for a name under any other suffix says nothing), and which
// known-registered names confirm that a 404 from the registry's server
// means "not registered".
type Profile struct {
	// Registry names the operator ("default" for registries not in the
	// table).
	Registry string
	// TLDs are the top-level domains the row describes (lower case, no dot).
	TLDs []string
	// AutoRenews: the registry renews a name at its expiration date (the
	// date moves on a year) and the registrar may still delete it during
	// Grace. A past expiration date alone is then no sign of lapse.
	AutoRenews bool
	// ShowsAutoRenewStatus: during that grace RDAP shows "auto renew
	// period". A registry that auto-renews silently (new expiry, no
	// status) is watched daily until Grace after the anniversary has ended.
	ShowsAutoRenewStatus bool
	// ShowsExpiry: RDAP answers carry an expiration date.
	ShowsExpiry bool
	// Grace is how long after the expiration date the holder may still
	// renew before the registry deletes, suspends or holds the name.
	Grace time.Duration
	// LapsesAfterGrace: at expiration + Grace the registry takes the name
	// out of the DNS without a status RDAP shows, so a past expiration date
	// beyond Grace is itself the lapse sign (.uk suspension, .au expiry).
	LapsesAfterGrace bool
	// Redemption is how long a deleted (or suspended) name stays
	// restorable by its last holder; PendingDelete how long it then waits
	// before anyone may register it. Zero: the registry publishes none.
	Redemption, PendingDelete time.Duration
	// Suffixes are public suffixes below the TLDs whose names are in this
	// registry's database (co.uk). AllSuffixes says every public suffix
	// under the TLDs is, except NotHeld.
	Suffixes    []string
	AllSuffixes bool
	// NotHeld are public suffixes under the TLDs delegated outside the
	// registry database (ac.uk, gov.uk): an RDAP 404 for a name under one
	// of them is unknown unless a canary under the same suffix answers.
	NotHeld []string
	// Canaries map a public suffix to a name known to be registered under
	// it on the registry's RDAP server. Suffixes without one that the
	// registry holds use the TLD's canary; a TLD without one uses
	// "nic.<tld>" (ICANN requires gTLD registries to keep it registered).
	Canaries map[string]string
	// Source is the public document the row's facts come from.
	Source string
}

const day = 24 * time.Hour

// GraceSaleWindow is how long after the expiration date a name may be
// sold by its registrar without deletion (ICANN ERRP: auto-renew grace up
// to 45 days, auctions closing by day 42–45; rounded up): a move away from
// the last active observation before expiry inside this window is a lapse
// sign (DESIGN.md §2).
const GraceSaleWindow = 60 * day

// MaxRecheckInterval is the longest DOMAINGUARD_RECHECK_INTERVAL that still
// sees every lapse before the name is released: the shortest time from
// deletion to release among the profiles (DENIC's 30-day RGP; gTLDs 35
// days). A domain checked less often can be deleted and released between
// two checks while its last observation still says active.
const MaxRecheckInterval = 30 * day

// DefaultProfile is used for registries not in the table: a past expiration
// date without a lapse sign is grace (checked daily, warned, never
// unverified outside strict mode), the gTLD timeline of ICANN's ERRP is
// assumed, and only the TLD itself is taken to be held by the registry.
var DefaultProfile = Profile{
	Registry:             "default",
	AutoRenews:           true,
	ShowsAutoRenewStatus: true,
	ShowsExpiry:          true,
	Grace:                45 * day,
	Redemption:           30 * day,
	PendingDelete:        5 * day,
	Source:               "https://www.icann.org/resources/pages/gtld-lifecycle-2012-02-25-en (gTLD life cycle; ERRP)",
}

// Profiles is the registry table. Each row names its public source; where a
// fact is not published the row takes the conservative reading (no lapse
// from a date alone, daily checks, suffixes not held).
var Profiles = []Profile{{
	Registry: "Verisign", TLDs: []string{"com", "net", "tv", "cc"},
	AutoRenews: true, ShowsAutoRenewStatus: true, ShowsExpiry: true,
	Grace: 45 * day, Redemption: 30 * day, PendingDelete: 5 * day,
	// .tv and .cc run on Verisign's shared registry platform like .com.
	Canaries: map[string]string{"com": "verisign.com", "net": "verisign.net", "tv": "twitch.tv", "cc": "nic.cc"},
	Source:   "https://www.icann.org/resources/pages/gtld-lifecycle-2012-02-25-en; RFC 3915; ../shared/research/registry-landscape.md (.tv/.cc)",
}, {
	Registry: "Public Interest Registry", TLDs: []string{"org"},
	AutoRenews: true, ShowsAutoRenewStatus: true, ShowsExpiry: true,
	Grace: 45 * day, Redemption: 30 * day, PendingDelete: 5 * day,
	Canaries: map[string]string{"org": "pir.org"},
	Source:   "https://www.icann.org/resources/pages/gtld-lifecycle-2012-02-25-en",
}, {
	// ccTLDs on the Identity Digital platform (RDAP at
	// rdap.identitydigital.services, not in IANA's bootstrap). Whether
	// RDAP shows the auto-renew status is not published: watched as
	// silent.
	Registry: "Identity Digital", TLDs: []string{"io", "ac", "sh", "me", "ag", "bz", "lc", "mn", "sc", "vc"},
	AutoRenews: true, ShowsExpiry: true,
	Grace: 45 * day, Redemption: 30 * day, PendingDelete: 5 * day,
	Source: "https://github.com/case/iana-data data/manual/supplemental-cctld-rdap.json; ../shared/research/registry-landscape.md",
}, {
	Registry: "Nominet", TLDs: []string{"uk"},
	// Renewable for 90 days; suspended (out of the DNS, mail stops) 30
	// days after expiry, cancelled about day 90–92.
	ShowsExpiry: true, Grace: 30 * day, LapsesAfterGrace: true,
	Redemption: 60 * day, PendingDelete: 5 * day,
	Suffixes: []string{"co.uk", "org.uk", "me.uk", "net.uk", "ltd.uk", "plc.uk"},
	NotHeld:  []string{"ac.uk", "gov.uk", "nhs.uk", "police.uk", "mod.uk", "sch.uk"},
	Canaries: map[string]string{"uk": "nic.uk"},
	Source:   "https://www.nominet.uk/ (renewal process: suspension at day 30, cancellation after a further 60 days); https://expiry.org.uk/current-process/",
}, {
	// No expiration date: a name is renewed yearly until cancelled; a
	// deleted name spends 30 days in the Redemption Grace Period.
	Registry: "DENIC", TLDs: []string{"de"},
	AutoRenews: true, Redemption: 30 * day,
	Canaries: map[string]string{"de": "denic.de"},
	Source:   "https://denic.de/en/domains/de-domains/domain-deletion/redemption-grace-period",
}, {
	// No expiration date; a cancelled name is in quarantine for 40 days.
	Registry: "SIDN", TLDs: []string{"nl"},
	AutoRenews: true, Redemption: 40 * day,
	Canaries: map[string]string{"nl": "sidn.nl"},
	Source:   "https://www.sidn.nl/en/about-nl/updating-your-registration/redeeming-a-quarantined-domain-name/",
}, {
	// A .fr name not renewed is deleted into a 30-day redemption period
	// (status shown); no auto-renew status.
	Registry: "AFNIC", TLDs: []string{"fr", "re", "pm", "tf", "wf", "yt"},
	ShowsExpiry: true, Redemption: 30 * day, PendingDelete: 5 * day,
	Canaries: map[string]string{"fr": "afnic.fr"},
	Source:   "https://www.afnic.fr/en/domain-names-and-support/everything-there-is-to-know-about-domain-names/the-essentials-for-managing-your-domain-name/ (naming charter art. 132: 30-day redemption)",
}, {
	// CIRA renews at expiry; the registrar may delete within up to 45
	// days; 30-day redemption, then "to be released".
	Registry: "CIRA", TLDs: []string{"ca"},
	AutoRenews: true, ShowsExpiry: true,
	Grace: 45 * day, Redemption: 30 * day, PendingDelete: 7 * day,
	Canaries: map[string]string{"ca": "cira.ca"},
	Source:   "https://cira.ca/domain-name-life-cycle",
}, {
	// auDA: a name not renewed stops working at expiry (Expired Hold,
	// serverHold) for 30 days, then pending purge for a day. RDAP redacts
	// the expiration date.
	Registry: "auDA", TLDs: []string{"au"},
	LapsesAfterGrace: true, Redemption: 30 * day, PendingDelete: day,
	Suffixes: []string{"com.au", "net.au", "org.au", "asn.au", "id.au"},
	Canaries: map[string]string{"au": "auda.org.au", "com.au": "auda.com.au"},
	Source:   "https://www.auda.org.au/au-domain-names/domain-name-help/what-happens-when-domain-name-expires",
}, {
	// registro.br holds every second-level suffix; during its "release
	// process" the RDAP server still answers 200.
	Registry: "Registro.br", TLDs: []string{"br"},
	ShowsExpiry: true, AllSuffixes: true,
	Canaries: map[string]string{"br": "registro.br"},
	Source:   "https://github.com/jas-/rdapper/issues/20 (release process answers 200); ../shared/research/registry-landscape.md",
}, {
	// Norid publishes neither status nor expiration date.
	Registry: "Norid", TLDs: []string{"no"},
	AutoRenews: true,
	Canaries:   map[string]string{"no": "norid.no"},
	Source:     "../shared/research/registry-landscape.md (.no: no expiration event)",
}, {
	// Traficom publishes no expiration event for .fi.
	Registry: "Traficom", TLDs: []string{"fi"},
	AutoRenews: true,
	Canaries:   map[string]string{"fi": "traficom.fi"},
	Source:     "../shared/research/registry-landscape.md (.fi: no expiration event)",
}}

// profileByTLD indexes Profiles.
var profileByTLD = func() map[string]*Profile {
	m := make(map[string]*Profile)
	for i := range Profiles {
		for _, tld := range Profiles[i].TLDs {
			m[tld] = &Profiles[i]
		}
	}
	return m
}()

// ProfileFor returns the profile of the registry of name (a TLD, public
// suffix or domain: its last label decides), DefaultProfile when the table
// has no row for it.
func ProfileFor(name string) Profile {
	if p, ok := profileByTLD[lastLabel(name)]; ok {
		return *p
	}
	return DefaultProfile
}

func lastLabel(name string) string {
	name = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(name), "."))
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		return name[i+1:]
	}
	return name
}

// Holds reports whether names under the public suffix are in this
// registry's database: the suffix is one of its TLDs or Suffixes, or
// AllSuffixes is set and the suffix is under one of its TLDs and not in
// NotHeld. The default profile holds only a bare TLD.
func (p Profile) Holds(suffix string) bool {
	suffix = strings.ToLower(strings.Trim(strings.TrimSpace(suffix), "."))
	if !strings.Contains(suffix, ".") {
		return p.Registry == DefaultProfile.Registry || slices.Contains(p.TLDs, suffix)
	}
	if slices.Contains(p.NotHeld, suffix) {
		return false
	}
	if slices.Contains(p.Suffixes, suffix) {
		return true
	}
	return p.AllSuffixes && slices.Contains(p.TLDs, lastLabel(suffix))
}

// CanaryFor returns the known-registered name that must answer on the
// registry's RDAP server before a 404 for a name under the public suffix
// may mean "released": the canary named for the suffix, else (when the
// registry holds the suffix) the TLD's canary or "nic.<tld>". ok is false
// when no canary can vouch for the suffix (a 404 is then unknown).
func (p Profile) CanaryFor(suffix string) (name string, ok bool) {
	suffix = strings.ToLower(strings.Trim(strings.TrimSpace(suffix), "."))
	if c, ok := p.Canaries[suffix]; ok {
		return c, true
	}
	if !p.Holds(suffix) {
		return "", false
	}
	tld := lastLabel(suffix)
	if c, ok := p.Canaries[tld]; ok {
		return c, true
	}
	return "nic." + tld, true
}

// pastExpiry classifies an expiration date at or before now with no other
// lapse sign: grace, or expired where the registry takes the name out of
// the DNS once Grace has passed.
func (p Profile) pastExpiry(expires, now time.Time) (Phase, string) {
	if p.LapsesAfterGrace && !now.Before(expires.Add(p.Grace)) {
		return PhaseExpired, "expiration date passed and " + p.Registry + " takes names out of the DNS " + graceText(p.Grace) + " after it"
	}
	return PhaseGrace, "expiration date passed (" + p.Registry + " registry: renewable for " + graceText(p.Grace) + " without a visible lapse)"
}

func graceText(d time.Duration) string {
	if d <= 0 {
		return "0 days"
	}
	n := int(d / day)
	if n == 1 {
		return "1 day"
	}
	return strconv.Itoa(n) + " days"
}

// SilentRenewalWindow reports whether an active domain on this registry
// should still be checked daily at now because its registry auto-renews
// without showing it: the anniversary one year before the (new)
// expiration date has passed less than Grace ago, so the registrar may
// still delete or sell the name without any status saying so.
func (p Profile) SilentRenewalWindow(expires, now time.Time) bool {
	if !p.AutoRenews || p.ShowsAutoRenewStatus || p.Grace <= 0 {
		return false
	}
	anniversary := expires.AddDate(-1, 0, 0)
	return !now.Before(anniversary) && now.Before(anniversary.Add(p.Grace))
}
