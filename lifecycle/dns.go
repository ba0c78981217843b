package lifecycle

import (
	"slices"
	"strings"
	"time"

	"github.com/domainguard/domainguard/internal/domainname"
)

// DNS evidence rules (DESIGN.md §2 "DNS evidence").
const (
	// ProviderDNS is Evidence.Provider of an observation decided by DNS
	// alone (a TLD without RDAP and without a commercial provider).
	ProviderDNS = "dns"
	// DefaultUndelegatedConfirm is DOMAINGUARD_UNDELEGATED_CONFIRM's
	// default: how long a name that was delegated must stay not delegated,
	// seen on two lookups at least this far apart, before DNS alone counts
	// it as a lapse.
	DefaultUndelegatedConfirm = 24 * time.Hour
	// DNSLapseWindowBefore and DNSLapseWindowAfter bound the window around
	// the expiration date E in which moves away from the last active
	// observation are lapse signs: [E − 1 day, E + 60 days]. The same
	// window serves the RDAP grace-sale baseline (GraceBaseline).
	DNSLapseWindowBefore = 24 * time.Hour
	DNSLapseWindowAfter  = GraceSaleWindow
)

// DNSEvidence is what the DNS said about a registrable domain: the parent
// zone's delegation, asked of its authoritative servers directly, and the
// domain's MX and SOA, asked of the recursive resolver.
type DNSEvidence struct {
	// Delegated: the parent zone refers the name to nameservers. False
	// means the parent zone answered NXDOMAIN; any other answer is no
	// evidence at all (the lookup failed).
	Delegated bool `json:"delegated"`
	// Hosted: the parent zone answered with authority that the name exists
	// in the zone itself, without a zone cut of its own (NOERROR with its
	// records or none of the asked type): how foo.github.io exists under
	// github.io. Only recorded for names held under a private suffix
	// (HostedCounts); it counts as present like a delegation (Present).
	Hosted bool `json:"hosted,omitempty"`
	// Rcode is the parent zone's response code ("NOERROR", "NXDOMAIN").
	Rcode string `json:"rcode"`
	// ParentServer is the host:port of the parent zone server that answered.
	ParentServer string `json:"parent_server,omitempty"`
	// Nameservers is the delegation's NS set: lower-case host names
	// without the trailing dot, sorted.
	Nameservers []string `json:"nameservers,omitempty"`
	// MXKnown: the resolver answered the MX question, so an empty MX means
	// the domain has none (not that nobody was asked).
	MXKnown bool `json:"mx_known,omitempty"`
	// MX are the mail exchanger host names, lower case, sorted.
	MX []string `json:"mx,omitempty"`
	// SOASerial and SOAMname come from the domain's SOA (resolver).
	SOASerial uint32 `json:"soa_serial,omitempty"`
	SOAMname  string `json:"soa_mname,omitempty"`
	// UndelegatedSince is when a name that had been delegated was first
	// seen not delegated (in the current run of such lookups).
	UndelegatedSince *time.Time `json:"undelegated_since,omitempty"`
	// BaselineNameservers and BaselineMX are the NS and MX of the last
	// active, delegated observation before this one; kept on observations
	// that are not themselves that baseline (grace, a lapse, a pending
	// confirmation), so later lookups can still compare with it.
	BaselineNameservers []string `json:"baseline_nameservers,omitempty"`
	BaselineMX          []string `json:"baseline_mx,omitempty"`
}

// Present reports whether the parent zone shows the name: delegated, or
// hosted in the zone itself (Hosted). Not present means NXDOMAIN.
func (d *DNSEvidence) Present() bool { return d != nil && (d.Delegated || d.Hosted) }

// HostedCounts reports whether an authoritative answer that name exists in
// its parent zone without a zone cut (DNSEvidence.Hosted) is evidence that
// the name exists: for a name held under a private PSL suffix
// (domainname.IsWatchName: foo.github.io, acme.us.com), whose operator may
// serve it from its own zone. For a registrable domain it is not: a
// registry's zone holds delegations, so such an answer is a lame server.
func HostedCounts(name string) bool { return domainname.IsWatchName(name) }

// clean returns d with control characters removed from its text.
func (d *DNSEvidence) clean() *DNSEvidence {
	if d == nil {
		return nil
	}
	c := *d
	c.Rcode = cleanText(c.Rcode)
	c.ParentServer = cleanText(c.ParentServer)
	c.SOAMname = cleanText(c.SOAMname)
	c.Nameservers = cleanAll(c.Nameservers)
	c.MX = cleanAll(c.MX)
	c.BaselineNameservers = cleanAll(c.BaselineNameservers)
	c.BaselineMX = cleanAll(c.BaselineMX)
	return &c
}

// DNSBaseline returns the NS and MX to compare a new lookup with: those of
// prev when prev is an active observation of a delegated name, else the
// baseline prev carried; nil when there is none.
func DNSBaseline(prev *Observation) (ns, mx []string) {
	if prev == nil || prev.Evidence.DNS == nil {
		return nil, nil
	}
	d := prev.Evidence.DNS
	if prev.Phase == PhaseActive && d.Delegated && d.UndelegatedSince == nil {
		return d.Nameservers, d.MX
	}
	return d.BaselineNameservers, d.BaselineMX
}

// WithDNSBaseline returns the DNS evidence d with the baseline carried
// from prev (DNSBaseline) when phase is not active or d is not itself a
// delegation; an active delegated observation is its own baseline.
func WithDNSBaseline(d *DNSEvidence, phase Phase, prev *Observation) *DNSEvidence {
	if d == nil {
		return nil
	}
	c := *d
	c.BaselineNameservers, c.BaselineMX = nil, nil
	if phase == PhaseActive && c.Delegated && c.UndelegatedSince == nil {
		return &c
	}
	c.BaselineNameservers, c.BaselineMX = DNSBaseline(prev)
	return &c
}

// undelegatedSince returns when prev first saw the name not delegated, nil
// when prev saw it delegated (or had no DNS evidence).
func undelegatedSince(prev *Observation) *time.Time {
	if prev == nil || prev.Evidence.DNS == nil || prev.Evidence.DNS.Present() {
		return nil
	}
	return prev.Evidence.DNS.UndelegatedSince
}

// wasDelegated reports whether prev shows (or carries a baseline of) a
// delegated name.
func wasDelegated(prev *Observation) bool {
	if prev == nil || prev.Evidence.DNS == nil {
		return false
	}
	ns, _ := DNSBaseline(prev)
	return prev.Evidence.DNS.Present() || len(ns) > 0 || prev.Evidence.DNS.UndelegatedSince != nil
}

// ClassifyDNS decides the phase of a domain whose only evidence is the DNS
// (provider "dns": its TLD has no RDAP service and no commercial provider
// covers it). It returns the phase, a reason, and the evidence to keep
// (with UndelegatedSince and the baseline filled in). confirm is
// DOMAINGUARD_UNDELEGATED_CONFIRM (DefaultUndelegatedConfirm when ≤ 0).
//
// Rules, first match wins:
//  1. No DNS evidence → unknown.
//  2. Present (delegated, or hosted for a name under a private suffix:
//     DNSEvidence.Present) → active; the NS and MX become the baseline. (A
//     return with an NS set disjoint from the baseline is a
//     re-registration: see Reregistered.)
//  3. Not present (NXDOMAIN at the parent) and never seen present →
//     unknown: there is nothing to confirm the lapse against.
//  4. Not delegated, previously a DNS lapse (undelegated and lapsed) →
//     expired, kept.
//  5. Not delegated, first seen not delegated at since (now, or prev's
//     UndelegatedSince): when now − since ≥ confirm → expired (a lapse,
//     reason domain_undelegated); before that the previous phase is kept
//     (active when none is known) with UndelegatedSince set, awaiting
//     confirmation.
func ClassifyDNS(ev Evidence, prev *Observation, now time.Time, confirm time.Duration) (Phase, string, Evidence) {
	if confirm <= 0 {
		confirm = DefaultUndelegatedConfirm
	}
	d := ev.DNS
	if d == nil {
		return PhaseUnknown, "no DNS evidence", ev
	}
	if d.Present() {
		c := *d
		c.UndelegatedSince = nil
		ev.DNS = WithDNSBaseline(&c, PhaseActive, prev)
		if !d.Delegated {
			return PhaseActive, "held in the parent zone (no zone cut of its own)", ev
		}
		return PhaseActive, "delegated by the parent zone", ev
	}
	if !wasDelegated(prev) {
		ev.DNS = WithDNSBaseline(d, PhaseUnknown, prev)
		return PhaseUnknown, "not delegated by the parent zone and never seen delegated: no lapse to confirm", ev
	}
	c := *d
	since := undelegatedSince(prev)
	if since == nil {
		t := now
		since = &t
	}
	c.UndelegatedSince = since
	if prev.Phase == PhaseExpired && !prev.Evidence.DNS.Present() {
		ev.DNS = WithDNSBaseline(&c, PhaseExpired, prev)
		return PhaseExpired, "still not delegated by the parent zone", ev
	}
	if now.Sub(*since) >= confirm {
		ev.DNS = WithDNSBaseline(&c, PhaseExpired, prev)
		return PhaseExpired, "not delegated by the parent zone since " + since.UTC().Format(time.RFC3339) + " (confirmed)", ev
	}
	phase := PhaseActive
	if prev.Phase.Known() {
		phase = prev.Phase
	}
	ev.DNS = WithDNSBaseline(&c, PhaseUnknown, prev) // carries the baseline while pending
	return phase, "not delegated by the parent zone since " + since.UTC().Format(time.RFC3339) + "; awaiting confirmation", ev
}

// DNSUndelegatedLapse reports whether obs is a lapse decided by the DNS
// alone: a lapsed phase whose DNS evidence shows the parent zone no longer
// delegates the name. Its addresses are unverified with reason
// domain_undelegated.
func DNSUndelegatedLapse(obs Observation) bool {
	return obs.Phase.Lapsed() && obs.Evidence.Provider == ProviderDNS &&
		obs.Evidence.DNS != nil && !obs.Evidence.DNS.Present()
}

// ReasonOf is the unverification reason of an observation's phase:
// domain_undelegated for a DNS-only lapse (DNSUndelegatedLapse), else
// ReasonFor(phase).
func ReasonOf(obs Observation) Reason {
	if DNSUndelegatedLapse(obs) {
		return ReasonUndelegated
	}
	return ReasonFor(obs.Phase)
}

// dnsReregistered reports whether next shows a name that came back
// delegated after a DNS lapse with an NS set disjoint from the baseline:
// someone else registered it.
func dnsReregistered(prev *Evidence, next *Evidence) bool {
	if prev == nil || prev.DNS == nil || next.DNS == nil || prev.DNS.Delegated || !next.DNS.Delegated {
		return false
	}
	return disjointHosts(prev.DNS.BaselineNameservers, next.DNS.Nameservers)
}

// disjointHosts reports whether both host lists are non-empty and share
// no host.
func disjointHosts(a, b []string) bool {
	if len(a) == 0 || len(b) == 0 {
		return false
	}
	for _, x := range a {
		if slices.ContainsFunc(b, func(y string) bool { return sameHost(x, y) }) {
			return false
		}
	}
	return true
}

// InDNSLapseWindow reports whether now lies in [E − 1 day, E + 60 days] of
// the expiration date expires: the window in which NS and MX moves away
// from the baseline are lapse signs.
func InDNSLapseWindow(expires *time.Time, now time.Time) bool {
	if expires == nil {
		return false
	}
	return !now.Before(expires.Add(-DNSLapseWindowBefore)) && !now.After(expires.Add(DNSLapseWindowAfter))
}

// DNSLapseSign returns a non-empty description when the DNS evidence d
// moved away from the baseline (ns, mx of the last active observation): the
// name is no longer delegated, its NS set is disjoint from the baseline's,
// or its MX were removed or replaced by a disjoint set (known MX only).
// An empty baseline compares with nothing.
func DNSLapseSign(d *DNSEvidence, ns, mx []string) string {
	if d == nil {
		return ""
	}
	switch {
	case len(ns) > 0 && !d.Delegated:
		return "DNS: no longer delegated by the parent zone"
	case disjointHosts(ns, d.Nameservers):
		return "DNS: nameservers moved away from the last active set (" + strings.Join(d.Nameservers, ", ") + ")"
	case len(mx) > 0 && d.MXKnown && d.Delegated && len(d.MX) == 0:
		return "DNS: mail exchangers removed"
	case d.MXKnown && disjointHosts(mx, d.MX):
		return "DNS: mail exchangers moved away from the last active set (" + strings.Join(d.MX, ", ") + ")"
	}
	return ""
}

// CombineRDAPAndDNS applies the DNS rules to an RDAP observation of domain
// (DESIGN.md §2): rdapObs is the RDAP provider's classified observation, d
// the DNS evidence of the same moment (nil: the DNS could not be asked),
// prev the previous observation. It returns the observation to publish and
// whether the RDAP answer was a 404 that the parent zone contradicted.
//
//   - The DNS evidence is attached (with the baseline carried from prev).
//   - released (a canary-confirmed 404) stands only when the parent zone
//     does not delegate the name: while it still delegates, or when the DNS
//     could not be asked, the observation is unknown.
//   - active or grace between expiry − 1 day and expiry + 60 days, with the
//     DNS moved away from the baseline of the last active observation
//     (DNSLapseSign) → expired.
//   - Everything else is the RDAP phase unchanged; DNS errors never become
//     phases.
func CombineRDAPAndDNS(rdapObs Observation, d *DNSEvidence, prev *Observation, now time.Time) (obs Observation, contradicted bool) {
	obs = rdapObs
	if obs.Phase == PhaseReleased {
		switch {
		case d == nil:
			obs.Phase = PhaseUnknown
			obs.Evidence.Detail = "RDAP 404 not corroborated: the parent zone could not be asked"
			return obs, false
		case d.Delegated:
			obs.Evidence.DNS = WithDNSBaseline(d, PhaseUnknown, prev)
			obs.Phase = PhaseUnknown
			obs.Evidence.Detail = "RDAP 404 while the parent zone still delegates the name (" + strings.Join(d.Nameservers, ", ") + "): not released"
			return obs, true
		}
	}
	if d == nil {
		return obs, false
	}
	ns, mx := DNSBaseline(prev)
	if (obs.Phase == PhaseActive || obs.Phase == PhaseGrace) && inLapseWindow(&obs.Evidence, prev, now) {
		if sign := DNSLapseSign(d, ns, mx); sign != "" {
			obs.Phase = PhaseExpired
			obs.Evidence.Detail = joinReason(obs.Evidence.Detail, sign+" near the expiration date")
		}
	}
	obs.Evidence.DNS = WithDNSBaseline(d, obs.Phase, prev)
	return obs, false
}

// inLapseWindow reports whether now lies in the lapse window of the
// expiration date that matters: the one ev shows, or the one its grace-sale
// baseline (or prev's) recorded before expiry. During an auto-renew grace a
// registry such as Verisign already shows next year's date, so the shown
// date alone would close the window exactly when sales happen.
func inLapseWindow(ev *Evidence, prev *Observation, now time.Time) bool {
	if InDNSLapseWindow(ev.ExpiresAt, now) {
		return true
	}
	if b := ev.Baseline; b != nil && InDNSLapseWindow(&b.ExpiresAt, now) {
		return true
	}
	if prev != nil {
		if b := prev.Evidence.Baseline; b != nil && InDNSLapseWindow(&b.ExpiresAt, now) {
			return true
		}
	}
	return false
}

func joinReason(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// PendingUndelegation reports whether ev shows a name that was delegated
// and is now not, awaiting confirmation (DESIGN.md §2): the phase is not a
// lapse yet and UndelegatedSince is set. Such a domain is checked daily,
// so the confirming lookup comes DOMAINGUARD_UNDELEGATED_CONFIRM later
// rather than a recheck interval later.
func PendingUndelegation(phase Phase, ev *Evidence) bool {
	return ev != nil && ev.DNS != nil && !ev.DNS.Present() && ev.DNS.UndelegatedSince != nil && !phase.Lapsed()
}
