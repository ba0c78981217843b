package lifecycle

import (
	"slices"
	"testing"
	"time"
)

func addr(id string, verifiedAgo time.Duration) Address {
	return Address{UserID: id, Email: id + "@example.com", VerifiedAt: now.Add(-verifiedAgo)}
}

func emails(as []Address) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.UserID)
	}
	return out
}

func TestReregistered(t *testing.T) {
	reg := at(-1000 * day)
	tests := []struct {
		name string
		prev *Evidence
		next Evidence
		want bool
	}{
		{"no prev", nil, Evidence{RegisteredAt: reg, Handle: "H1"}, false},
		{"same", &Evidence{RegisteredAt: reg, Handle: "H1"}, Evidence{RegisteredAt: reg, Handle: "H1"}, false},
		{"new registration date", &Evidence{RegisteredAt: reg, Handle: "H1"}, Evidence{RegisteredAt: at(-day), Handle: "H1"}, true},
		{"new handle", &Evidence{RegisteredAt: reg, Handle: "H1"}, Evidence{RegisteredAt: reg, Handle: "H2"}, true},
		{"handle case differs only", &Evidence{Handle: "abc-VRSN"}, Evidence{Handle: "ABC-vrsn"}, false},
		{"date only vs timestamp on the same day", &Evidence{RegisteredAt: reg}, Evidence{RegisteredAt: at(-1000*day + 13*time.Hour)}, false},
		{"date unknown before", &Evidence{Handle: "H1"}, Evidence{RegisteredAt: reg, Handle: "H1"}, false},
		{"date unknown now", &Evidence{RegisteredAt: reg}, Evidence{}, false},
		{"handle unknown before", &Evidence{}, Evidence{Handle: "H2"}, false},
		{"handle unknown now (404)", &Evidence{Handle: "H1", RegisteredAt: reg}, Evidence{NotFound: true}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Reregistered(tt.prev, tt.next); got != tt.want {
				t.Fatalf("Reregistered = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDecide(t *testing.T) {
	oldReg := at(-3000 * day)
	activeEv := Evidence{Statuses: []string{"active"}, RegisteredAt: oldReg, ExpiresAt: at(200 * day), Handle: "H1", ObservedAt: now.Add(-30 * day)}
	activeState := DomainState{Phase: PhaseActive, Evidence: &activeEv, ObservedAt: activeEv.ObservedAt}
	obs := func(p Phase, f func(e *Evidence)) Observation {
		e := Evidence{Statuses: []string{"x"}, RegisteredAt: oldReg, ExpiresAt: at(200 * day), Handle: "H1", ObservedAt: now}
		if f != nil {
			f(&e)
		}
		return Observation{Domain: "example.com", Phase: p, Evidence: e}
	}
	alice, bob := addr("alice", 400*day), addr("bob", 10*day)
	late := Address{UserID: "late", Email: "late@example.com", VerifiedAt: now.Add(time.Hour)} // verified after the observation
	many := func(n int) []Address {
		var out []Address
		for i := range n {
			out = append(out, addr(string(rune('a'+i%26))+string(rune('a'+i/26)), 100*day))
		}
		return out
	}
	warned := func(t time.Time) *time.Time { return &t }

	tests := []struct {
		name     string
		state    DomainState
		obs      Observation
		verified []Address
		policy   Policy
		want     Decision
	}{
		{name: "unknown changes nothing", state: activeState, obs: obs(PhaseUnknown, nil), verified: []Address{alice},
			want: Decision{}},
		{name: "unknown on a lapsed domain changes nothing", state: DomainState{Phase: PhaseExpired}, obs: obs(PhaseUnknown, nil), verified: []Address{alice},
			want: Decision{}},
		{name: "stale observation", state: DomainState{Phase: PhaseActive, ObservedAt: now.Add(time.Hour)}, obs: obs(PhaseReleased, nil), verified: []Address{alice},
			want: Decision{Stale: true}},
		{name: "same instant is not stale", state: DomainState{Phase: PhaseActive, ObservedAt: now}, obs: obs(PhaseActive, nil),
			want: Decision{Apply: true}},
		{name: "first observation, active: nothing to audit", state: DomainState{}, obs: obs(PhaseActive, nil), verified: []Address{alice, bob},
			want: Decision{Apply: true}},
		{name: "first observation, released", state: DomainState{}, obs: obs(PhaseReleased, func(e *Evidence) { *e = Evidence{NotFound: true, ObservedAt: now} }), verified: []Address{alice},
			want: Decision{Apply: true, Reason: ReasonReleased, Unverify: []Address{alice}, Events: []EventKind{EventDomainChanged}}},
		{name: "active stays active", state: activeState, obs: obs(PhaseActive, nil), verified: []Address{alice, bob},
			want: Decision{Apply: true}},
		{name: "expired", state: activeState, obs: obs(PhaseExpired, nil), verified: []Address{alice, bob},
			want: Decision{Apply: true, Reason: ReasonExpired, Unverify: []Address{alice, bob}, Events: []EventKind{EventDomainChanged}}},
		{name: "redemption", state: activeState, obs: obs(PhaseRedemption, nil), verified: []Address{alice},
			want: Decision{Apply: true, Reason: ReasonRedemption, Unverify: []Address{alice}, Events: []EventKind{EventDomainChanged}}},
		{name: "pending delete", state: activeState, obs: obs(PhasePendingDelete, nil), verified: []Address{alice},
			want: Decision{Apply: true, Reason: ReasonPendingDelete, Unverify: []Address{alice}, Events: []EventKind{EventDomainChanged}}},
		{name: "released", state: DomainState{Phase: PhasePendingDelete, ObservedAt: now.Add(-day)}, obs: obs(PhaseReleased, func(e *Evidence) { *e = Evidence{NotFound: true, ObservedAt: now} }), verified: []Address{alice},
			want: Decision{Apply: true, Reason: ReasonReleased, Unverify: []Address{alice}, Events: []EventKind{EventDomainChanged}}},
		{name: "still expired: addresses verified since are unverified again, no change event", state: DomainState{Phase: PhaseExpired, ObservedAt: now.Add(-day)},
			obs: obs(PhaseExpired, nil), verified: []Address{bob},
			want: Decision{Apply: true, Reason: ReasonExpired, Unverify: []Address{bob}}},
		{name: "per-address stale guard: verified after the observation", state: activeState, obs: obs(PhaseExpired, nil), verified: []Address{alice, late},
			want: Decision{Apply: true, Reason: ReasonExpired, Unverify: []Address{alice}, Skipped: []Address{late}, Events: []EventKind{EventDomainChanged}}},
		{name: "verified exactly at observed_at is unverified", state: activeState, obs: obs(PhaseExpired, nil), verified: []Address{{UserID: "eq", VerifiedAt: now}},
			want: Decision{Apply: true, Reason: ReasonExpired, Unverify: []Address{{UserID: "eq", VerifiedAt: now}}, Events: []EventKind{EventDomainChanged}}},
		{name: "only skipped: no reason", state: activeState, obs: obs(PhaseExpired, nil), verified: []Address{late},
			want: Decision{Apply: true, Skipped: []Address{late}, Events: []EventKind{EventDomainChanged}}},
		{name: "grace non-strict warns once", state: activeState, obs: obs(PhaseGrace, func(e *Evidence) { e.ExpiresAt = at(360 * day) }), verified: []Address{alice},
			want: Decision{Apply: true, Events: []EventKind{EventDomainChanged, EventDomainExpiring}, ExpiryToWarn: at(360 * day)}},
		{name: "grace non-strict already warned for that date", state: DomainState{Phase: PhaseGrace, ObservedAt: now.Add(-day), WarnedExpiry: at(360 * day)},
			obs: obs(PhaseGrace, func(e *Evidence) { e.ExpiresAt = at(360 * day) }), verified: []Address{alice},
			want: Decision{Apply: true}},
		{name: "grace without expiry date warns with observation time", state: activeState, obs: obs(PhaseGrace, func(e *Evidence) { e.ExpiresAt = nil }), verified: []Address{alice},
			want: Decision{Apply: true, Events: []EventKind{EventDomainChanged, EventDomainExpiring}, ExpiryToWarn: warned(now)}},
		{name: "grace without expiry date, already warned in this grace", state: DomainState{Phase: PhaseGrace, ObservedAt: now.Add(-day), WarnedExpiry: at(-day)},
			obs: obs(PhaseGrace, func(e *Evidence) { e.ExpiresAt = nil }), verified: []Address{alice},
			want: Decision{Apply: true}},
		{name: "grace strict unverifies, no warning", state: activeState, obs: obs(PhaseGrace, nil), verified: []Address{alice, bob}, policy: Policy{Strict: true},
			want: Decision{Apply: true, Reason: ReasonGrace, Unverify: []Address{alice, bob}, Events: []EventKind{EventDomainChanged}}},
		{name: "active expiring within 30 days warns", state: activeState, obs: obs(PhaseActive, func(e *Evidence) { e.ExpiresAt = at(20 * day) }),
			want: Decision{Apply: true, Events: []EventKind{EventDomainExpiring}, ExpiryToWarn: at(20 * day)}},
		{name: "active expiring exactly at the warning horizon warns", state: activeState, obs: obs(PhaseActive, func(e *Evidence) { e.ExpiresAt = at(30 * day) }),
			want: Decision{Apply: true, Events: []EventKind{EventDomainExpiring}, ExpiryToWarn: at(30 * day)}},
		{name: "active expiring, already warned for that date", state: DomainState{Phase: PhaseActive, ObservedAt: now.Add(-day), WarnedExpiry: at(20 * day)},
			obs:  obs(PhaseActive, func(e *Evidence) { e.ExpiresAt = at(20 * day) }),
			want: Decision{Apply: true}},
		{name: "active renewed to a new date within the window warns again", state: DomainState{Phase: PhaseActive, ObservedAt: now.Add(-day), WarnedExpiry: at(-300 * day)},
			obs:  obs(PhaseActive, func(e *Evidence) { e.ExpiresAt = at(20 * day) }),
			want: Decision{Apply: true, Events: []EventKind{EventDomainExpiring}, ExpiryToWarn: at(20 * day)}},
		{name: "active 31 days out: no warning", state: activeState, obs: obs(PhaseActive, func(e *Evidence) { e.ExpiresAt = at(31 * day) }),
			want: Decision{Apply: true}},
		{name: "custom warning window", state: activeState, obs: obs(PhaseActive, func(e *Evidence) { e.ExpiresAt = at(50 * day) }), policy: Policy{ExpiryWarning: 60 * day},
			want: Decision{Apply: true, Events: []EventKind{EventDomainExpiring}, ExpiryToWarn: at(50 * day)}},
		{name: "reregistered by date while active", state: activeState,
			obs:      obs(PhaseActive, func(e *Evidence) { e.RegisteredAt = at(-5 * day); e.Handle = "H2" }),
			verified: []Address{alice, bob, addr("newowner", 2*day)},
			want: Decision{Apply: true, Reason: ReasonReregistered, Unverify: []Address{alice, bob},
				Events: []EventKind{EventDomainChanged, EventDomainReregistered}}},
		// A new handle with the registration date unmoved and no lapse
		// before: a registry migration's shape, held for an operator.
		{name: "handle only, date unmoved: held", state: activeState,
			obs:      obs(PhaseActive, func(e *Evidence) { e.Handle = "H2" }),
			verified: []Address{alice, bob, late},
			want: Decision{Apply: true, Reason: ReasonReregistered, Unverify: []Address{alice, bob}, Skipped: []Address{late}, Hold: HoldHandleChanged,
				Events: []EventKind{EventDomainChanged, EventDomainReregistered, EventEnforcementHeld}}},
		{name: "handle only, registration date unknown: held", state: DomainState{Phase: PhaseActive, Evidence: &Evidence{Handle: "H1", ObservedAt: now.Add(-day)}, ObservedAt: now.Add(-day)},
			obs:      obs(PhaseActive, func(e *Evidence) { e.Handle = "H2"; e.RegisteredAt = nil }),
			verified: []Address{alice},
			want: Decision{Apply: true, Reason: ReasonReregistered, Unverify: []Address{alice}, Hold: HoldHandleChanged,
				Events: []EventKind{EventDomainChanged, EventDomainReregistered, EventEnforcementHeld}}},
		{name: "handle and registration date moved: applied", state: activeState,
			obs:      obs(PhaseActive, func(e *Evidence) { e.Handle = "H2"; e.RegisteredAt = at(-2 * day) }),
			verified: []Address{alice},
			want:     Decision{Apply: true, Reason: ReasonReregistered, Unverify: []Address{alice}, Events: []EventKind{EventDomainChanged, EventDomainReregistered}}},
		{name: "reregistered after release", state: DomainState{Phase: PhaseReleased, Evidence: &Evidence{NotFound: true}, ObservedAt: now.Add(-day), Unverified: []Address{alice}},
			obs:      obs(PhaseActive, func(e *Evidence) { e.RegisteredAt = at(-2 * day); e.Handle = "H9" }),
			verified: []Address{bob, addr("newowner", day)},
			want:     Decision{Apply: true, Reason: ReasonReregistered, Unverify: []Address{bob}, Events: []EventKind{EventDomainChanged, EventDomainReregistered}}},
		{name: "reregistered after release, registration date unknown (.no-like)", state: DomainState{Phase: PhaseReleased, Evidence: &Evidence{NotFound: true}, ObservedAt: now.Add(-day), Unverified: []Address{alice}},
			obs:      obs(PhaseActive, func(e *Evidence) { e.RegisteredAt = nil; e.Handle = "H9" }),
			verified: []Address{bob, late},
			want:     Decision{Apply: true, Reason: ReasonReregistered, Unverify: []Address{bob}, Skipped: []Address{late}, Events: []EventKind{EventDomainChanged, EventDomainReregistered}}},
		{name: "released stays released: no reregistration", state: DomainState{Phase: PhaseReleased, Evidence: &Evidence{NotFound: true}, ObservedAt: now.Add(-day)},
			obs:  obs(PhaseReleased, func(e *Evidence) { *e = Evidence{NotFound: true, ObservedAt: now} }),
			want: Decision{Apply: true}},
		{name: "registration date later than verified_at on first sighting", state: DomainState{},
			obs:      obs(PhaseActive, func(e *Evidence) { e.RegisteredAt = at(-100 * day) }),
			verified: []Address{alice, bob},
			want:     Decision{Apply: true, Reason: ReasonReregistered, Unverify: []Address{alice}}},
		{name: "registration date later than verified_at while expired: strongest reason", state: activeState,
			obs:      obs(PhaseExpired, func(e *Evidence) { e.RegisteredAt = at(-100 * day) }),
			verified: []Address{alice, bob},
			want:     Decision{Apply: true, Reason: ReasonReregistered, Unverify: []Address{alice, bob}, Events: []EventKind{EventDomainChanged, EventDomainReregistered}}},
		{name: "restored from redemption", state: DomainState{Phase: PhaseRedemption, Evidence: &activeEv, ObservedAt: now.Add(-day), Unverified: []Address{alice}},
			obs: obs(PhaseActive, func(e *Evidence) { e.ExpiresAt = at(300 * day) }), verified: []Address{bob},
			want: Decision{Apply: true, Events: []EventKind{EventDomainChanged, EventDomainRestored}}},
		{name: "back to active from lapsed with nobody unverified: no restored event", state: DomainState{Phase: PhaseExpired, Evidence: &activeEv, ObservedAt: now.Add(-day)},
			obs:  obs(PhaseActive, nil),
			want: Decision{Apply: true, Events: []EventKind{EventDomainChanged}}},
		{name: "restored from grace in strict mode", state: DomainState{Phase: PhaseGrace, Evidence: &activeEv, ObservedAt: now.Add(-day), Unverified: []Address{alice}},
			obs: obs(PhaseActive, nil), policy: Policy{Strict: true},
			want: Decision{Apply: true, Events: []EventKind{EventDomainChanged, EventDomainRestored}}},
		{name: "grace to active non-strict is no restore", state: DomainState{Phase: PhaseGrace, Evidence: &activeEv, ObservedAt: now.Add(-day), Unverified: []Address{alice}},
			obs:  obs(PhaseActive, nil),
			want: Decision{Apply: true, Events: []EventKind{EventDomainChanged}}},
		{name: "back to active with a new handle is reregistered, not restored", state: DomainState{Phase: PhaseRedemption, Evidence: &activeEv, ObservedAt: now.Add(-day), Unverified: []Address{alice}},
			obs: obs(PhaseActive, func(e *Evidence) { e.Handle = "H2" }), verified: []Address{bob},
			want: Decision{Apply: true, Reason: ReasonReregistered, Unverify: []Address{bob}, Events: []EventKind{EventDomainChanged, EventDomainReregistered}}},
		{name: "cap exceeded holds", state: activeState, obs: obs(PhaseExpired, nil), verified: many(51),
			want: Decision{Apply: true, Reason: ReasonExpired, Unverify: many(51), Hold: HoldCap, Events: []EventKind{EventDomainChanged, EventEnforcementHeld}}},
		{name: "cap reached exactly is applied", state: activeState, obs: obs(PhaseExpired, nil), verified: many(50),
			want: Decision{Apply: true, Reason: ReasonExpired, Unverify: many(50), Events: []EventKind{EventDomainChanged}}},
		{name: "custom cap", state: activeState, obs: obs(PhaseExpired, nil), verified: many(3), policy: Policy{MaxUnverifyPerDomain: 2},
			want: Decision{Apply: true, Reason: ReasonExpired, Unverify: many(3), Hold: HoldCap, Events: []EventKind{EventDomainChanged, EventEnforcementHeld}}},
		{name: "no cap", state: activeState, obs: obs(PhaseExpired, nil), verified: many(60), policy: Policy{MaxUnverifyPerDomain: -1},
			want: Decision{Apply: true, Reason: ReasonExpired, Unverify: many(60), Events: []EventKind{EventDomainChanged}}},
		{name: "protected holds", state: activeState, obs: obs(PhaseReleased, func(e *Evidence) { *e = Evidence{NotFound: true, ObservedAt: now} }), verified: []Address{alice}, policy: Policy{Protected: true},
			want: Decision{Apply: true, Reason: ReasonReleased, Unverify: []Address{alice}, Hold: HoldProtected, Events: []EventKind{EventDomainChanged, EventEnforcementHeld}}},
		{name: "protected and over the cap: protected", state: activeState, obs: obs(PhaseExpired, nil), verified: many(60), policy: Policy{Protected: true},
			want: Decision{Apply: true, Reason: ReasonExpired, Unverify: many(60), Hold: HoldProtected, Events: []EventKind{EventDomainChanged, EventEnforcementHeld}}},
		{name: "handle change after an earlier lapse: applied", state: DomainState{Phase: PhaseExpired, Evidence: &activeEv, ObservedAt: now.Add(-day)},
			obs:      obs(PhaseActive, func(e *Evidence) { e.Handle = "H2" }),
			verified: []Address{bob},
			want:     Decision{Apply: true, Reason: ReasonReregistered, Unverify: []Address{bob}, Events: []EventKind{EventDomainChanged, EventDomainReregistered}}},
		{name: "protected with nothing to unverify: no hold", state: activeState, obs: obs(PhaseActive, nil), verified: []Address{alice}, policy: Policy{Protected: true},
			want: Decision{Apply: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Decide(tt.state, tt.obs, tt.verified, tt.policy)
			checkDecision(t, got, tt.want)
		})
	}
}

// Every decision that unverifies counts toward the breaker, whatever its
// reason: a re-registration while active included.
func TestDecideBreakerCounts(t *testing.T) {
	oldReg := at(-3000 * day)
	prev := Evidence{Statuses: []string{"active"}, RegisteredAt: oldReg, Handle: "H1", ObservedAt: now.Add(-day)}
	active := DomainState{Phase: PhaseActive, Evidence: &prev, ObservedAt: prev.ObservedAt}
	alice := addr("alice", 400*day)
	ev := func(f func(*Evidence)) Evidence {
		e := Evidence{Statuses: []string{"active"}, RegisteredAt: oldReg, Handle: "H1", ObservedAt: now}
		f(&e)
		return e
	}
	tests := []struct {
		name     string
		state    DomainState
		obs      Observation
		verified []Address
		want     bool
	}{
		{"re-registered while active (date moved)", active, Observation{Phase: PhaseActive, Evidence: ev(func(e *Evidence) { e.RegisteredAt = at(-day) })}, []Address{alice}, true},
		{"handle change (held) counts too", active, Observation{Phase: PhaseActive, Evidence: ev(func(e *Evidence) { e.Handle = "H2" })}, []Address{alice}, true},
		{"lapse with nobody verified", active, Observation{Phase: PhaseExpired, Evidence: ev(func(*Evidence) {})}, nil, true},
		{"still expired, nobody left", DomainState{Phase: PhaseExpired, Evidence: &prev, ObservedAt: prev.ObservedAt}, Observation{Phase: PhaseRedemption, Evidence: ev(func(*Evidence) {})}, nil, false},
		{"grace in default mode", active, Observation{Phase: PhaseGrace, Evidence: ev(func(*Evidence) {})}, []Address{alice}, false},
		{"healthy", active, Observation{Phase: PhaseActive, Evidence: ev(func(*Evidence) {})}, []Address{alice}, false},
	}
	for _, tt := range tests {
		if got := Decide(tt.state, tt.obs, tt.verified, Policy{}).BreakerCounts; got != tt.want {
			t.Errorf("%s: BreakerCounts = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// A date-only verified_at (midnight UTC) covers its whole day: a name
// registered later that day is not "registered after verification".
func TestDecideDateOnlyVerifiedAt(t *testing.T) {
	verified := time.Date(2024, 5, 2, 0, 0, 0, 0, time.UTC)
	reg := time.Date(2024, 5, 2, 9, 14, 0, 0, time.UTC)
	ev := Evidence{Statuses: []string{"active"}, RegisteredAt: &reg, Handle: "H1", ObservedAt: now}
	state := DomainState{Phase: PhaseActive, Evidence: &Evidence{RegisteredAt: &reg, Handle: "H1"}, ObservedAt: now.Add(-day)}
	a := Address{UserID: "u", Email: "u@example.com", VerifiedAt: verified}
	if d := Decide(state, Observation{Phase: PhaseActive, Evidence: ev}, []Address{a}, Policy{}); len(d.Unverify) != 0 {
		t.Fatalf("date-only verified_at unverified by a registration the same day: %+v", d)
	}
	next := time.Date(2024, 5, 3, 0, 0, 0, 0, time.UTC)
	ev.RegisteredAt = &next
	state.Evidence.RegisteredAt = &next
	if d := Decide(state, Observation{Phase: PhaseActive, Evidence: ev}, []Address{a}, Policy{}); len(d.Unverify) != 1 {
		t.Fatalf("registration the next day must unverify: %+v", d)
	}
	// A full timestamp keeps its precision.
	a.VerifiedAt = verified.Add(time.Hour)
	ev.RegisteredAt, state.Evidence.RegisteredAt = &reg, &reg
	if d := Decide(state, Observation{Phase: PhaseActive, Evidence: ev}, []Address{a}, Policy{}); len(d.Unverify) != 1 {
		t.Fatalf("registration after a timestamped verification must unverify: %+v", d)
	}
}

func TestHeldByBreaker(t *testing.T) {
	d := Decision{Apply: true, Unverify: []Address{addr("a", day)}}
	if got := d.HeldByBreaker(); got.Hold != HoldBreaker {
		t.Fatalf("hold = %q", got.Hold)
	}
	d.Hold = HoldCap
	if got := d.HeldByBreaker(); got.Hold != HoldCap {
		t.Fatalf("an existing hold was replaced: %q", got.Hold)
	}
	if got := (Decision{Apply: true}).HeldByBreaker(); got.Hold != "" {
		t.Fatalf("nothing to unverify held: %q", got.Hold)
	}
}

func checkDecision(t *testing.T, got, want Decision) {
	t.Helper()
	if got.Stale != want.Stale || got.Apply != want.Apply || got.Reason != want.Reason || got.Hold != want.Hold {
		t.Errorf("stale/apply/reason/hold = %v/%v/%q/%q, want %v/%v/%q/%q",
			got.Stale, got.Apply, got.Reason, got.Hold, want.Stale, want.Apply, want.Reason, want.Hold)
	}
	if !slices.Equal(emails(got.Unverify), emails(want.Unverify)) {
		t.Errorf("unverify = %v, want %v", emails(got.Unverify), emails(want.Unverify))
	}
	if !slices.Equal(emails(got.Skipped), emails(want.Skipped)) {
		t.Errorf("skipped = %v, want %v", emails(got.Skipped), emails(want.Skipped))
	}
	if !slices.Equal(got.Events, want.Events) {
		t.Errorf("events = %v, want %v", got.Events, want.Events)
	}
	if !sameTime(got.ExpiryToWarn, want.ExpiryToWarn) {
		t.Errorf("expiry to warn = %v, want %v", got.ExpiryToWarn, want.ExpiryToWarn)
	}
	if got.Has(EventEmailUnverified) {
		t.Error("audit.email.unverified must be left to the caller")
	}
}

// A grace domain checked daily warns once, then stays quiet until the
// expiry date changes; nothing is ever re-verified on the way back.
func TestDecideSequenceWarnsOncePerExpiry(t *testing.T) {
	state := DomainState{}
	expiry := at(10 * day)
	var warnings int
	for i := range 15 {
		ev := Evidence{Statuses: []string{"active"}, ExpiresAt: expiry, ObservedAt: now.Add(time.Duration(i) * day)}
		phase := PhaseActive
		if i >= 10 {
			phase = PhaseGrace // auto-renew period, same expiry shown
		}
		d := Decide(state, Observation{Phase: phase, Evidence: ev}, []Address{addr("a", 100*day)}, Policy{})
		if len(d.Unverify) != 0 {
			t.Fatalf("day %d: non-strict %s unverified %v", i, phase, d.Unverify)
		}
		if d.Has(EventDomainExpiring) {
			warnings++
			state.WarnedExpiry = d.ExpiryToWarn
		}
		state.Phase, state.Evidence, state.ObservedAt = phase, &ev, ev.ObservedAt
	}
	if warnings != 1 {
		t.Fatalf("warnings = %d, want 1", warnings)
	}
}

func TestPolicyDefaults(t *testing.T) {
	p := Policy{}.WithDefaults()
	if p.MaxUnverifyPerDomain != 50 || p.ExpiryWarning != 30*day {
		t.Fatalf("defaults = %+v", p)
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := (Policy{ExpiryWarning: -1}).Validate(); err == nil {
		t.Fatal("negative warning accepted")
	}
	if p := (Policy{MaxUnverifyPerDomain: -1}).WithDefaults(); p.MaxUnverifyPerDomain != -1 {
		t.Fatalf("negative cap rewritten: %d", p.MaxUnverifyPerDomain)
	}
}
