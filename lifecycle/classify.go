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

// IsAutoRenewTLD reports whether the registry of tld auto-renews names at
// their expiration date, so that a past expiration date alone is no sign of
// lapse (gTLD practice: the registrar has the auto-renew grace period to
// delete the name). Generic TLDs (three or more letters, including IDN
// "xn--" TLDs) are treated as auto-renewing; two-letter country-code TLDs as
// not.
func IsAutoRenewTLD(tld string) bool {
	tld = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(tld)), ".")
	return len(tld) >= 3
}

// ClassifyRDAP turns the evidence of an RDAP lookup into a phase and a short
// human reason (DESIGN.md §2). prev is the evidence of the previous
// observation of the same domain (nil if none); it is used to see
// nameservers moved away during the auto-renew period.
//
// ClassifyRDAP does not know the domain, so the rule for an expiration date
// in the past without "auto renew period" cannot tell a gTLD from a ccTLD;
// it then answers grace (checked daily, warned, unverified only in strict
// mode). Callers that know the domain should use ClassifyRDAPFor.
func ClassifyRDAP(ev Evidence, prev *Evidence, now time.Time) (Phase, string) {
	return classifyRDAP("", ev, prev, now)
}

// ClassifyRDAPFor is ClassifyRDAP for a known domain: a past expiration date
// without "auto renew period" is grace on an auto-renewing TLD
// (IsAutoRenewTLD) and expired elsewhere.
//
// The rules, first match wins (so contradictory answers resolve towards the
// later lifecycle stage, except where noted):
//  1. NotFound (404 confirmed by a canary) → released.
//  2. "redemption period" or "pending restore" → redemption.
//  3. "pending delete" → pending_delete.
//  4. "client hold"/"server hold" with "auto renew period" or a past
//     expiration date → expired.
//  5. "auto renew period" with nameservers moved (previous and current sets
//     both non-empty and disjoint) → expired (expiry auction / parking).
//  6. "auto renew period" → grace.
//  7. Expiration date at or before now → grace on auto-renewing TLDs,
//     expired elsewhere.
//  8. No statuses and no dates: Detail set → unknown with Detail;
//     registration data (handle or registrar) → active; else unknown.
//  9. Anything else (statuses such as "active", "inactive", prohibitions or
//     a hold alone; or only dates, the latest expiration in the future) →
//     active. "inactive" (no delegation) together with "active" is active.
func ClassifyRDAPFor(domain string, ev Evidence, prev *Evidence, now time.Time) (Phase, string) {
	return classifyRDAP(tldOf(domain), ev, prev, now)
}

func tldOf(domain string) string {
	domain = strings.TrimSuffix(domain, ".")
	if i := strings.LastIndexByte(domain, '.'); i >= 0 {
		return domain[i+1:]
	}
	return domain
}

func classifyRDAP(tld string, ev Evidence, prev *Evidence, now time.Time) (Phase, string) {
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
	case f&flagAutoRenew != 0 && nameserversMoved(prev, &ev):
		return PhaseExpired, "nameservers moved during the auto renew period"
	case f&flagAutoRenew != 0:
		return PhaseGrace, "status auto renew period"
	case expired:
		switch {
		case tld == "":
			return PhaseGrace, "expiration date passed (TLD not known; assuming auto-renew)"
		case IsAutoRenewTLD(tld):
			return PhaseGrace, "expiration date passed on an auto-renewing registry"
		default:
			return PhaseExpired, "expiration date passed on a registry that does not auto-renew"
		}
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
// observation (nil: none). It adds one rule: a lapse once seen is kept. A
// domain classified expired because its nameservers moved to parking stays
// parked on the next lookup, so comparing with that lookup's evidence finds
// no move and would say grace; while the registry still shows the same
// registration in its auto-renew period, the domain stays expired. prev's
// evidence is compared only when it came from the same provider as ev.
func ClassifyRDAPAfter(domain string, ev Evidence, prev *Observation, now time.Time) (Phase, string) {
	var prevEv *Evidence
	if prev != nil && prev.Evidence.Provider == ev.Provider {
		prevEv = &prev.Evidence
	}
	phase, why := ClassifyRDAPFor(domain, ev, prevEv, now)
	if phase == PhaseGrace && prev != nil && prev.Phase == PhaseExpired && !Reregistered(prevEv, ev) {
		return PhaseExpired, "auto-renew period continues after the lapse was seen"
	}
	return phase, why
}

// ClassifyTokens maps Domainr / Fastly Domain Research status tokens
// (https://domainr.com/docs/api/v2/status) to a phase (DESIGN.md §2). Tokens
// may be given one per element or space-separated; case is ignored.
//
// First match wins: "deleting" → pending_delete; "expiring" → redemption;
// "active" (with undelegated, parked, marketed, priced, transferable, ...)
// → active; "inactive" → released, unless the name is not registrable at all
// ("invalid", "disallowed", "suffix", "zone", "tld" → unknown); everything
// else ("undelegated" alone, "unknown", no tokens) → unknown.
func ClassifyTokens(tokens []string) (Phase, string) {
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
			case "invalid", "disallowed", "suffix", "zone", "tld":
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
	case inactive:
		return PhaseReleased, "status token inactive without active"
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
	return a.Delegated != b.Delegated ||
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
