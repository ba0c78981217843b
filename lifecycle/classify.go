package lifecycle

import (
	"slices"
	"strings"
	"time"
)

// Canonical RDAP status values (RFC 8056 / RFC 9083 §10.2.2) that the
// classifier looks at. NormalizeRDAPStatus maps EPP spellings onto these.
const (
	StatusActive           = "active"
	StatusInactive         = "inactive"
	StatusAutoRenewPeriod  = "auto renew period"
	StatusRedemptionPeriod = "redemption period"
	StatusPendingRestore   = "pending restore"
	StatusPendingDelete    = "pending delete"
	StatusClientHold       = "client hold"
	StatusServerHold       = "server hold"
)

// NormalizeRDAPStatus returns the canonical RFC 8056 form of an RDAP or EPP
// status value: lower case, words separated by single spaces, camelCase,
// underscores and hyphens split into words ("pendingDelete",
// "pending_delete" and "PENDING DELETE" all become "pending delete"). The EPP
// status "ok" becomes "active", as RFC 8056 maps it. Values that are already
// canonical are returned without allocating.
func NormalizeRDAPStatus(s string) string {
	if isCanonicalStatus(s) {
		if s == "ok" {
			return StatusActive
		}
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 4)
	space := false     // a word break is pending
	prevLower := false // the previous input byte was a lower-case letter or digit
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '_' || c == '-' || c == '\t' || c == '\n' || c == '\r':
			space = true
			prevLower = false
			continue
		case c >= 'A' && c <= 'Z':
			if prevLower {
				space = true
			}
			c += 'a' - 'A'
			prevLower = false
		default:
			prevLower = c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteByte(c)
	}
	out := b.String()
	if out == "ok" {
		return StatusActive
	}
	return out
}

// isCanonicalStatus reports whether s is lower-case ASCII words separated by
// single spaces.
func isCanonicalStatus(s string) bool {
	if s == "" || s[0] == ' ' || s[len(s)-1] == ' ' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == ' ':
			if s[i-1] == ' ' {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// statusFlags are the status values the RDAP rules look at.
type statusFlags uint16

const (
	flagActive statusFlags = 1 << iota
	flagInactive
	flagAutoRenew
	flagRedemption
	flagPendingRestore
	flagPendingDelete
	flagHold
)

func rdapStatusFlags(statuses []string) statusFlags {
	var f statusFlags
	for _, s := range statuses {
		switch NormalizeRDAPStatus(s) {
		case StatusActive:
			f |= flagActive
		case StatusInactive:
			f |= flagInactive
		case StatusAutoRenewPeriod:
			f |= flagAutoRenew
		case StatusRedemptionPeriod:
			f |= flagRedemption
		case StatusPendingRestore:
			f |= flagPendingRestore
		case StatusPendingDelete:
			f |= flagPendingDelete
		case StatusClientHold, StatusServerHold:
			f |= flagHold
		}
	}
	return f
}

// ClassifyRDAPFor turns the evidence of an RDAP lookup of domain into a
// phase and a short human reason (DESIGN.md §2). prev is the evidence of
// the previous observation of the same domain (nil if none), of unknown
// phase; callers that know the previous phase use ClassifyRDAPAfter. The
// registry's Profile (ProfileFor(domain)) decides how a past expiration
// date is read.
//
// The rules, first match wins (so contradictory answers resolve towards the
// later lifecycle stage, except where noted):
//  1. NotFound (404 confirmed by a canary) → released.
//  2. "redemption period" or "pending restore" → redemption.
//  3. "pending delete" → pending_delete.
//  4. "client hold"/"server hold" with "auto renew period" or a past
//     expiration date → expired.
//  5. Inside the grace-sale window of a Baseline (GraceBaseline): a lapse
//     sign against it — nameservers moved away from the baseline set,
//     nameservers removed (none listed, or status "inactive"), or another
//     registrar → expired, whatever the statuses say.
//  6. "auto renew period" with nameservers moved (previous and current sets
//     both non-empty and disjoint) → expired (expiry auction / parking).
//  7. "auto renew period" → grace.
//  8. Expiration date at or before now → grace, or expired where the
//     profile says the registry takes names out of the DNS once its grace
//     has passed (LapsesAfterGrace) and it has.
//  9. No statuses and no dates: Detail set → unknown with Detail;
//     registration data (handle or registrar) → active; else unknown.
//  10. Anything else (statuses such as "active", "inactive", prohibitions or
//     a hold alone; or only dates, the latest expiration in the future) →
//     active. "inactive" (no delegation) together with "active" is active.
func ClassifyRDAPFor(domain string, ev Evidence, prev *Evidence, now time.Time) (Phase, string) {
	var p *Observation
	if prev != nil {
		p = &Observation{Domain: domain, Phase: PhaseUnknown, Evidence: *prev}
	}
	return classifyRDAP(ProfileFor(domain), ev, p, now)
}

// Baseline is what a domain looked like at its last active observation
// before its expiration date. It travels with the evidence of the
// observations inside the grace-sale window (GraceSaleWindow after that
// expiration date) so that a registrar's sale of the name during the
// auto-renew grace — same handle, same registration date — is seen as the
// move away from it that it is.
type Baseline struct {
	// Nameservers and RegistrarIANAID are those of the active observation.
	Nameservers     []string `json:"nameservers,omitempty"`
	RegistrarIANAID string   `json:"registrar_iana_id,omitempty"`
	// ExpiresAt is the expiration date that active observation showed (the
	// window opens there); ObservedAt is when it was made.
	ExpiresAt  time.Time `json:"expires_at"`
	ObservedAt time.Time `json:"observed_at"`
}

// inGraceSaleWindow reports whether now lies in the lapse window of the
// expiration date (InDNSLapseWindow: one window for the DNS and the RDAP
// baselines).
func inGraceSaleWindow(expires, now time.Time) bool {
	return InDNSLapseWindow(&expires, now)
}

// GraceBaseline returns the baseline an observation ev at now is compared
// with, nil outside any grace-sale window: the baseline prev's evidence
// carries while its window lasts, else prev itself when it is an active
// observation made before its expiration date and that date has passed.
// prev must come from the same provider as ev (nil: none). Callers that
// store evidence keep the result in ev.Baseline so later observations of
// the window compare with the same baseline.
func GraceBaseline(ev Evidence, prev *Observation, now time.Time) *Baseline {
	if prev == nil || prev.Evidence.Provider != ev.Provider {
		return nil
	}
	pe := &prev.Evidence
	if b := pe.Baseline; b != nil {
		if !inGraceSaleWindow(b.ExpiresAt, now) {
			return nil
		}
		c := *b
		c.Nameservers = slices.Clone(b.Nameservers)
		return &c
	}
	if prev.Phase != PhaseActive || pe.ExpiresAt == nil || !pe.ObservedAt.Before(*pe.ExpiresAt) ||
		!inGraceSaleWindow(*pe.ExpiresAt, now) {
		return nil
	}
	return &Baseline{Nameservers: slices.Clone(pe.Nameservers), RegistrarIANAID: pe.RegistrarIANAID,
		ExpiresAt: *pe.ExpiresAt, ObservedAt: pe.ObservedAt}
}

// lapseSign returns why ev, inside b's window, shows the name leaving its
// holder ("" if it does not).
func lapseSign(b *Baseline, ev *Evidence, f statusFlags) string {
	if a, n := strings.TrimSpace(b.RegistrarIANAID), strings.TrimSpace(ev.RegistrarIANAID); a != "" && n != "" && !strings.EqualFold(a, n) {
		return "registrar changed after the expiration date (grace-sale window)"
	}
	if len(b.Nameservers) == 0 {
		return ""
	}
	switch {
	case len(ev.Nameservers) == 0 || f&flagInactive != 0 && f&flagActive == 0:
		return "nameservers removed after the expiration date (grace-sale window)"
	case nameserversMoved(&Evidence{Nameservers: b.Nameservers}, ev):
		return "nameservers moved away from the last active set after the expiration date (grace-sale window)"
	}
	return ""
}

func classifyRDAP(p Profile, ev Evidence, prev *Observation, now time.Time) (Phase, string) {
	if ev.NotFound {
		return PhaseReleased, "not found at the authoritative RDAP server (canary confirmed)"
	}
	f := rdapStatusFlags(ev.Statuses)
	expired := ev.ExpiresAt != nil && !ev.ExpiresAt.After(now)
	switch {
	case f&flagRedemption != 0:
		return PhaseRedemption, "status redemption period"
	case f&flagPendingRestore != 0:
		return PhaseRedemption, "status pending restore"
	case f&flagPendingDelete != 0:
		return PhasePendingDelete, "status pending delete without redemption period"
	case f&flagHold != 0 && f&flagAutoRenew != 0:
		return PhaseExpired, "on hold during the auto renew period"
	case f&flagHold != 0 && expired:
		return PhaseExpired, "on hold after the expiration date"
	}
	if b := GraceBaseline(ev, prev, now); b != nil {
		if why := lapseSign(b, &ev, f); why != "" {
			return PhaseExpired, why
		}
	}
	var prevEv *Evidence
	if prev != nil {
		prevEv = &prev.Evidence
	}
	switch {
	case f&flagAutoRenew != 0 && nameserversMoved(prevEv, &ev):
		return PhaseExpired, "nameservers moved during the auto renew period"
	case f&flagAutoRenew != 0:
		return PhaseGrace, "status auto renew period"
	case expired:
		return p.pastExpiry(*ev.ExpiresAt, now)
	}
	if len(ev.Statuses) == 0 && ev.ExpiresAt == nil && ev.RegisteredAt == nil {
		switch {
		case ev.Detail != "":
			return PhaseUnknown, ev.Detail
		case ev.Handle != "" || ev.RegistrarIANAID != "":
			return PhaseActive, "registered (registry object without status or dates)"
		default:
			return PhaseUnknown, "no status, dates or registration data in the answer"
		}
	}
	switch {
	case f&flagActive != 0:
		return PhaseActive, "status active"
	case len(ev.Statuses) > 0:
		return PhaseActive, "registered (status " + strings.Join(ev.Statuses, ", ") + ")"
	case ev.ExpiresAt != nil:
		return PhaseActive, "expiration date in the future"
	default:
		return PhaseActive, "registered (registration date without status)"
	}
}

// nameserversMoved reports whether both evidences list nameservers and the
// sets share none.
func nameserversMoved(prev, next *Evidence) bool {
	if prev == nil || len(prev.Nameservers) == 0 || len(next.Nameservers) == 0 {
		return false
	}
	for _, a := range prev.Nameservers {
		for _, b := range next.Nameservers {
			if sameHost(a, b) {
				return false
			}
		}
	}
	return true
}

func sameHost(a, b string) bool {
	return strings.EqualFold(strings.TrimSuffix(a, "."), strings.TrimSuffix(b, "."))
}

// ClassifyRDAPAfter is ClassifyRDAPFor given the domain's previous
// observation (nil: none), the form the checker and the simulator use. It
// adds what the previous phase tells: the grace-sale baseline
// (GraceBaseline) and one rule: a lapse once seen is kept. A domain
// classified expired because its nameservers moved to parking stays parked
// on the next lookup, so comparing with that lookup's evidence finds no
// move and would say grace; while the registry still shows the same
// registration in its auto-renew period, the domain stays expired. prev is
// compared only when it came from the same provider as ev.
func ClassifyRDAPAfter(domain string, ev Evidence, prev *Observation, now time.Time) (Phase, string) {
	same, prevEv := prev, (*Evidence)(nil)
	if prev != nil && prev.Evidence.Provider == ev.Provider {
		prevEv = &prev.Evidence
	} else {
		same = nil
	}
	phase, why := classifyRDAP(ProfileFor(domain), ev, same, now)
	if phase == PhaseGrace && prev != nil && prev.Phase == PhaseExpired && !Reregistered(prevEv, ev) {
		return PhaseExpired, "auto-renew period continues after the lapse was seen"
	}
	return phase, why
}

// ClassifyTokens maps Domainr / Fastly Domain Research status tokens
// (https://domainr.com/docs/api/v2/status) to a phase (DESIGN.md §2) when
// no parent-zone evidence is at hand: ClassifyTokensWithParent(tokens,
// false).
func ClassifyTokens(tokens []string) (Phase, string) {
	return ClassifyTokensWithParent(tokens, false)
}

// ClassifyTokensWithParent maps status tokens to a phase. Tokens may be
// given one per element or space-separated; case is ignored.
// parentNotDelegated says the parent zone (DNS evidence) agrees the name is
// not delegated; it is the hook through which DNS evidence lets a bare
// "inactive" release a name.
//
// First match wins: "deleting" → pending_delete; "expiring" → redemption;
// "active" (with undelegated, parked, marketed, priced, transferable, ...)
// → active; "inactive" on a name nobody can register ("invalid",
// "disallowed", "suffix", "zone", "tld", and the commercial "reserved",
// "dpml", "claimed") → unknown; "inactive" otherwise → released only when
// the parent zone agrees, else unknown (a provider's "inactive" alone
// never unverifies); everything else ("undelegated" alone, "unknown", no
// tokens) → unknown.
func ClassifyTokensWithParent(tokens []string, parentNotDelegated bool) (Phase, string) {
	var deleting, expiring, active, inactive, parked bool
	notRegistrable := ""
	for _, t := range tokens {
		for tok := range strings.FieldsSeq(t) {
			switch strings.ToLower(tok) {
			case "deleting":
				deleting = true
			case "expiring":
				expiring = true
			case "active":
				active = true
			case "parked", "marketed":
				// DESIGN §2 counts these as active; with inactive (listed
				// for sale but not in the zone) inactive decides below.
				parked = true
			case "inactive":
				inactive = true
			case "invalid", "disallowed", "suffix", "zone", "tld", "reserved", "dpml", "claimed":
				if notRegistrable == "" {
					notRegistrable = strings.ToLower(tok)
				}
			}
		}
	}
	switch {
	case deleting:
		return PhasePendingDelete, "status token deleting"
	case expiring:
		return PhaseRedemption, "status token expiring"
	case active:
		return PhaseActive, "status token active"
	case parked && !inactive:
		return PhaseActive, "status token parked or marketed"
	case inactive && notRegistrable != "":
		return PhaseUnknown, "inactive but not a registrable name (" + notRegistrable + ")"
	case inactive && parentNotDelegated:
		return PhaseReleased, "status token inactive without active, and the parent zone agrees"
	case inactive:
		return PhaseUnknown, "status token inactive without active: not released until the parent zone agrees (no DNS evidence)"
	case notRegistrable != "":
		return PhaseUnknown, "not a registrable name (" + notRegistrable + ")"
	}
	if len(tokens) == 0 {
		return PhaseUnknown, "no status tokens"
	}
	return PhaseUnknown, "no decision from status tokens " + strings.Join(tokens, " ")
}

// Changed reports whether next is worth publishing as a change against prev:
// the phase differs, or evidence that matters differs (registration and
// expiration dates, handle, registrar, the status set, the nameserver set,
// NotFound, the DNS evidence's delegation, NS and MX sets). ObservedAt, Server, Provider, Detail and the other dates do not
// count. An unknown next never is a change; a known next after no prev is.
func Changed(prev *Observation, next Observation) bool {
	if !next.Phase.Known() {
		return false
	}
	if prev == nil || prev.Phase != next.Phase {
		return true
	}
	a, b := &prev.Evidence, &next.Evidence
	return !sameTime(a.RegisteredAt, b.RegisteredAt) ||
		!sameTime(a.ExpiresAt, b.ExpiresAt) ||
		a.Handle != b.Handle ||
		a.RegistrarIANAID != b.RegistrarIANAID ||
		a.NotFound != b.NotFound ||
		!sameSet(a.Statuses, b.Statuses, NormalizeRDAPStatus) ||
		!sameSet(a.Nameservers, b.Nameservers, normalizeHost) ||
		dnsChanged(a.DNS, b.DNS)
}

// dnsChanged reports whether DNS evidence that matters differs: present or
// not, delegated or not, when it was first seen not delegated, the NS set,
// and the MX set where known. SOA serials and servers do not count.
func dnsChanged(a, b *DNSEvidence) bool {
	if a == nil || b == nil {
		return (a == nil) != (b == nil)
	}
	return a.Delegated != b.Delegated || a.Hosted != b.Hosted ||
		!sameTime(a.UndelegatedSince, b.UndelegatedSince) ||
		!sameSet(a.Nameservers, b.Nameservers, normalizeHost) ||
		a.MXKnown != b.MXKnown ||
		!sameSet(a.MX, b.MX, normalizeHost)
}

func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.Equal(*b)
}

func normalizeHost(s string) string {
	return strings.ToLower(strings.TrimSuffix(strings.TrimSpace(s), "."))
}

// sameSet compares two lists as sets after normalising each element.
func sameSet(a, b []string, norm func(string) string) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	na := make([]string, len(a))
	for i, s := range a {
		na[i] = norm(s)
	}
	nb := make([]string, len(b))
	for i, s := range b {
		nb[i] = norm(s)
	}
	slices.Sort(na)
	slices.Sort(nb)
	return slices.Equal(slices.Compact(na), slices.Compact(nb))
}

// ReleasedWithoutLapse reports whether next jumps to released straight from
// an active previous observation, with no lapse phase seen in between. Real
// lapses pass through grace, redemption or pending delete over weeks of
// daily checks; a jump is what a registry node answering 404 by mistake
// looks like, so the checker counts it in its own metric.
func ReleasedWithoutLapse(prev *Observation, next Phase) bool {
	return next == PhaseReleased && prev != nil && prev.Phase == PhaseActive
}
