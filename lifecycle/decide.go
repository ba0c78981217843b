package lifecycle

import (
	"errors"
	"slices"
	"strings"
	"time"
)

// Defaults of Policy.
const (
	DefaultMaxUnverifyPerDomain = 50
	DefaultExpiryWarning        = 30 * 24 * time.Hour
	// RegistrationDateTolerance absorbs differences in how providers print
	// the same registration date (date only vs timestamp, time zones); a
	// real re-registration moves the date by far more.
	RegistrationDateTolerance = 24 * time.Hour
)

// DomainState is what the enforcer knows about a domain before applying an
// observation.
type DomainState struct {
	// Phase is the last applied phase ("" or unknown: never known).
	Phase Phase
	// Evidence is the last applied evidence (nil: never observed).
	Evidence *Evidence
	// ObservedAt is the observed_at of the last applied observation (zero: none).
	ObservedAt time.Time
	// WarnedExpiry is the expiry date of the last audit.domain.expiring sent.
	WarnedExpiry *time.Time
	// Unverified lists the addresses domainguard unverified on this domain,
	// for the restored event.
	Unverified []Address
}

// Address is one verified (or formerly verified) email address on a domain.
type Address struct {
	UserID string
	Email  string
	// EmailAsSent is the address as the host sent it (Email is the
	// normalised key); "" when not recorded. Decide ignores it: it is
	// carried to the audit events.
	EmailAsSent string
	VerifiedAt  time.Time
}

// Policy holds the enforcement settings that Decide needs. The zero value
// is the default policy.
type Policy struct {
	// Strict makes grace unverify too (DOMAINGUARD_STRICT).
	Strict bool
	// MaxUnverifyPerDomain holds a decision that would unverify more
	// addresses than this (DOMAINGUARD_MAX_UNVERIFY_PER_DOMAIN). Default 50
	// when 0; negative: no cap (the simulator's DNS-only model and the
	// benchmarks; the binary's configuration refuses it).
	MaxUnverifyPerDomain int
	// Protected holds every unverification on this domain (it is on the
	// protected list).
	Protected bool
	// ExpiryWarning is how long before the expiration date an active domain
	// emits audit.domain.expiring. Default 30 days when 0.
	ExpiryWarning time.Duration
}

// WithDefaults returns p with zero fields set to their defaults.
func (p Policy) WithDefaults() Policy {
	if p.MaxUnverifyPerDomain == 0 {
		p.MaxUnverifyPerDomain = DefaultMaxUnverifyPerDomain
	}
	if p.ExpiryWarning == 0 {
		p.ExpiryWarning = DefaultExpiryWarning
	}
	return p
}

// Unverifying reports whether addresses on a domain in phase ph are
// unverified under p: lapsed phases always, grace in strict mode. It is the
// one statement of "which phase unverifies" (DESIGN.md §3).
func (p Policy) Unverifying(ph Phase) bool {
	return ph.Lapsed() || (p.Strict && ph == PhaseGrace)
}

// Validate checks a policy after WithDefaults.
func (p Policy) Validate() error {
	if p.ExpiryWarning < 0 {
		return errors.New("lifecycle policy: expiry warning must not be negative")
	}
	return nil
}

// HoldCause says why a decision is held for an operator.
type HoldCause string

// The hold causes (the holds table's cause column and the cause of
// audit.enforcement.held).
const (
	// HoldCap: more addresses than MaxUnverifyPerDomain.
	HoldCap HoldCause = "cap"
	// HoldProtected: the domain is on the protected list.
	HoldProtected HoldCause = "protected"
	// HoldHandleChanged: the registry handle changed while the
	// registration date did not move and no lapse or 404 came before — the
	// shape of a registry backend migration, not of a new registration.
	HoldHandleChanged HoldCause = "handle_changed"
	// HoldBreaker: the breaker was open; applied when an operator resumes
	// (Decision.HeldByBreaker). No audit.enforcement.held: the
	// audit.enforcement.paused event covers every such hold.
	HoldBreaker HoldCause = "breaker"
)

// HoldCauses lists every hold cause.
var HoldCauses = []HoldCause{HoldCap, HoldProtected, HoldHandleChanged, HoldBreaker}

// Valid reports whether c is one of the defined hold causes.
func (c HoldCause) Valid() bool { return slices.Contains(HoldCauses, c) }

// EventKind is the type of an audit event.
type EventKind string

// The audit events. EventEmailUnverified is emitted by the caller, one per
// Decision.Unverify entry; it never appears in Decision.Events.
const (
	EventDomainChanged      EventKind = "audit.domain.changed"
	EventDomainExpiring     EventKind = "audit.domain.expiring"
	EventDomainRestored     EventKind = "audit.domain.restored"
	EventDomainReregistered EventKind = "audit.domain.reregistered"
	EventEmailUnverified    EventKind = "audit.email.unverified"
	EventEnforcementHeld    EventKind = "audit.enforcement.held"
	EventEnforcementPaused  EventKind = "audit.enforcement.paused"
	EventEnforcementResumed EventKind = "audit.enforcement.resumed"
)

// Decision is what the enforcer does with one observation.
type Decision struct {
	// Stale: the observation is older than the last applied one; record it
	// only. Every other field is then empty.
	Stale bool
	// Apply: update the domain row with this observation.
	Apply bool
	// Reason is the unverification reason; "" when nobody is unverified.
	Reason Reason
	// Unverify lists the verified addresses to unverify (verified at or
	// before the observation). When Hold is set they are to be stored in the
	// hold instead.
	Unverify []Address
	// Skipped lists addresses the rules would unverify but that were
	// verified after the observation (stale for them).
	Skipped []Address
	// Hold, when set, means: do not unverify now, hold for approval.
	Hold HoldCause
	// BreakerCounts: the decision unverifies — the domain enters an
	// unverifying phase, or addresses are to be unverified (or held) for
	// any reason, re-registration included. Every such decision counts
	// toward the breaker.
	BreakerCounts bool
	// Events are the audit events to emit, in order.
	Events []EventKind
	// ExpiryToWarn is the expiry date of the audit.domain.expiring event
	// in Events (to store as WarnedExpiry).
	ExpiryToWarn *time.Time
}

// Has reports whether d emits an event of kind k.
func (d Decision) Has(k EventKind) bool {
	for _, e := range d.Events {
		if e == k {
			return true
		}
	}
	return false
}

// HeldByBreaker returns d held because the breaker is open: a decision that
// would unverify addresses and is not already held gets Hold =
// HoldBreaker; anything else is returned unchanged. Its events stay as
// they are (the breaker's audit.enforcement.paused covers the hold).
func (d Decision) HeldByBreaker() Decision {
	if len(d.Unverify) > 0 && d.Hold == "" {
		d.Hold = HoldBreaker
	}
	return d
}

// RegisteredAfter reports whether a registration date lies after an
// address's verification, at the precision the host gave: a verified_at
// that is a date (midnight UTC to the nanosecond, as a date-only CSV value
// or host event is stored) covers its whole day, so a name registered
// later that same day does not count as registered after verification.
func RegisteredAfter(registered, verifiedAt time.Time) bool {
	if DateOnly(verifiedAt) {
		return !registered.Before(verifiedAt.Add(24 * time.Hour))
	}
	return registered.After(verifiedAt)
}

// DateOnly reports whether t carries only a date: midnight UTC exactly.
func DateOnly(t time.Time) bool {
	t = t.UTC()
	return t.Hour() == 0 && t.Minute() == 0 && t.Second() == 0 && t.Nanosecond() == 0
}

// Reregistered reports whether next shows a new registration compared with
// prev: the registration date moved (by more than
// RegistrationDateTolerance) or the registry handle changed, each compared
// only when known on both sides; or, after a lapse the DNS saw (prev not
// delegated), the name is delegated again to an NS set disjoint from the
// baseline of its last active observation.
func Reregistered(prev *Evidence, next Evidence) bool {
	if prev == nil {
		return false
	}
	return registrationMoved(prev, &next) || handleChanged(prev, &next) || dnsReregistered(prev, &next)
}

func registrationMoved(prev, next *Evidence) bool {
	if prev.RegisteredAt == nil || next.RegisteredAt == nil {
		return false
	}
	d := next.RegisteredAt.Sub(*prev.RegisteredAt)
	return d > RegistrationDateTolerance || d < -RegistrationDateTolerance
}

func handleChanged(prev, next *Evidence) bool {
	a, b := strings.TrimSpace(prev.Handle), strings.TrimSpace(next.Handle)
	return a != "" && b != "" && !strings.EqualFold(a, b)
}

// Decide applies the enforcement rules of DESIGN.md §3 to one observation of
// a domain, given what is known about the domain and the addresses on it
// that are currently verified. It is pure: the caller performs the updates
// and emits the events.
//
//   - An unknown observation changes nothing (zero Decision).
//   - An observation older than the last applied one is Stale.
//   - Otherwise it is applied. An address is unverified when the domain was
//     re-registered (Reregistered against the last evidence, or registered
//     again after released: every address verified before the new
//     registration date, or all of them when that date is not known or did
//     not move), when the registration date is later than the
//     address's verification, when the phase is lapsed, or in grace in
//     strict mode. Addresses verified after the observation are Skipped.
//     Reason is domain_reregistered if any address is unverified for a
//     re-registration, else the phase's reason.
//   - More than MaxUnverifyPerDomain addresses, or a protected domain, puts
//     the decision on Hold (Unverify stays filled for the hold).
//   - Events, in order: audit.domain.changed (phase changed from a known
//     phase, first sighting of a non-active phase, or re-registration);
//     audit.domain.restored (back to active from a lapsed phase, or from
//     grace in strict mode, with the same registration, when addresses had
//     been unverified) or audit.domain.reregistered (any re-registration);
//     audit.domain.expiring (once per expiry date: grace in non-strict
//     mode, or active within ExpiryWarning of the expiration date);
//     audit.enforcement.held.
//
// Nothing is ever re-verified.
func Decide(state DomainState, obs Observation, verified []Address, p Policy) Decision {
	p = p.WithDefaults()
	if !obs.Phase.Known() {
		return Decision{}
	}
	ev := &obs.Evidence
	if !state.ObservedAt.IsZero() && ev.ObservedAt.Before(state.ObservedAt) {
		return Decision{Stale: true}
	}
	d := Decision{Apply: true}
	// A name that was released and is registered again is a new
	// registration even though the 404 evidence had nothing to compare.
	fromReleased := state.Phase == PhaseReleased && obs.Phase != PhaseReleased
	rereg := fromReleased || Reregistered(state.Evidence, *ev)
	// A new handle alone — registration date unmoved (or unknown), nothing
	// lapsed or released before — is what a registry backend migration
	// looks like: held for an operator rather than applied.
	handleOnly := rereg && !fromReleased && !state.Phase.Lapsed() &&
		!registrationMoved(state.Evidence, ev) && handleChanged(state.Evidence, ev)
	// Without a new registration date to compare verified_at with, every
	// address is affected.
	reregAll := rereg && !(ev.RegisteredAt != nil && (fromReleased || registrationMoved(state.Evidence, ev)))

	// Who is affected, and why.
	reregCaused := false
	for _, a := range verified {
		var cause Reason
		switch {
		case reregAll:
			cause = ReasonReregistered
		case ev.RegisteredAt != nil && RegisteredAfter(*ev.RegisteredAt, a.VerifiedAt):
			cause = ReasonReregistered
		case p.Unverifying(obs.Phase):
			cause = ReasonOf(obs)
		default:
			continue
		}
		if a.VerifiedAt.After(ev.ObservedAt) {
			d.Skipped = append(d.Skipped, a)
			continue
		}
		d.Unverify = append(d.Unverify, a)
		if cause == ReasonReregistered {
			reregCaused = true
		}
	}
	if len(d.Unverify) > 0 {
		d.Reason = ReasonOf(obs)
		if reregCaused {
			d.Reason = ReasonReregistered
		}
	}

	// Events.
	prevKnown := state.Phase.Known()
	if (prevKnown && state.Phase != obs.Phase) || (!prevKnown && obs.Phase != PhaseActive) || rereg {
		d.Events = append(d.Events, EventDomainChanged)
	}
	prevUnverifying := p.Unverifying(state.Phase)
	if obs.Phase == PhaseActive && !rereg && prevUnverifying && len(state.Unverified) > 0 {
		d.Events = append(d.Events, EventDomainRestored)
	}
	if rereg {
		d.Events = append(d.Events, EventDomainReregistered)
	}
	if expiry := expiryToWarn(state, obs, p); expiry != nil {
		d.Events = append(d.Events, EventDomainExpiring)
		d.ExpiryToWarn = expiry
	}
	if len(d.Unverify) > 0 {
		switch {
		case p.Protected:
			d.Hold = HoldProtected
		case handleOnly && reregCaused && !p.Unverifying(obs.Phase):
			d.Hold = HoldHandleChanged
		case p.MaxUnverifyPerDomain >= 0 && len(d.Unverify) > p.MaxUnverifyPerDomain:
			d.Hold = HoldCap
		}
		if d.Hold != "" {
			d.Events = append(d.Events, EventEnforcementHeld)
		}
	}
	d.BreakerCounts = len(d.Unverify) > 0 || (p.Unverifying(obs.Phase) && !prevUnverifying)
	return d
}

// expiryToWarn returns the expiry date to warn about, or nil when no
// audit.domain.expiring is due (already sent for that date, or not
// expiring).
func expiryToWarn(state DomainState, obs Observation, p Policy) *time.Time {
	ev := &obs.Evidence
	var expiry *time.Time
	switch {
	case obs.Phase == PhaseGrace && !p.Strict:
		switch {
		case ev.ExpiresAt != nil:
			expiry = ev.ExpiresAt
		case state.Phase == PhaseGrace && state.WarnedExpiry != nil:
			// Still in the same grace period without a date: warned already.
			return nil
		default:
			t := ev.ObservedAt
			expiry = &t
		}
	case obs.Phase == PhaseActive && ev.ExpiresAt != nil && ev.ExpiresAt.Sub(ev.ObservedAt) <= p.ExpiryWarning:
		expiry = ev.ExpiresAt
	default:
		return nil
	}
	if state.WarnedExpiry != nil && state.WarnedExpiry.Equal(*expiry) {
		return nil
	}
	t := *expiry
	return &t
}
