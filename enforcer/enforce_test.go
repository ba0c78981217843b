package enforcer

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/domainguard/domainguard/lifecycle"
	"github.com/domainguard/domainguard/schemas"
)

func TestLapsedPhasesUnverifyWithReason(t *testing.T) {
	f := newFixture(t, nil)
	for _, tc := range []struct {
		phase  lifecycle.Phase
		reason lifecycle.Reason
	}{
		{lifecycle.PhaseExpired, lifecycle.ReasonExpired},
		{lifecycle.PhaseRedemption, lifecycle.ReasonRedemption},
		{lifecycle.PhasePendingDelete, lifecycle.ReasonPendingDelete},
		{lifecycle.PhaseReleased, lifecycle.ReasonReleased},
	} {
		t.Run(string(tc.phase), func(t *testing.T) {
			domain := string(tc.phase) + "-lapse.com"
			emails := f.addEmails(domain, 3, t0.Add(-48*time.Hour))
			f.activate(domain, t0.Add(-time.Hour))
			out := f.observe(domain, lifecycle.PhaseActive, tc.phase, evidence(t0, reg, "H-"+domain, ptr(t0.Add(-time.Hour))))
			if out.Result != ResultApplied || out.Unverified != 3 || out.Reason != tc.reason {
				t.Fatalf("outcome %+v, want applied, 3 unverified, reason %s", out, tc.reason)
			}
			for _, e := range emails {
				if s := f.email(e); s.verified || s.reason != string(tc.reason) {
					t.Errorf("%s: %+v, want unverified with %s", e, s, tc.reason)
				}
			}
			if n := f.countType(domain, schemas.SubjectEmailUnverified); n != 3 {
				t.Errorf("audit.email.unverified rows = %d, want 3", n)
			}
			if n := f.countType(domain, schemas.SubjectDomainChanged); n != 1 {
				t.Errorf("audit.domain.changed rows = %d, want 1", n)
			}
			var phase string
			if err := f.pool.QueryRow(f.ctx, `SELECT phase FROM domains WHERE name = $1`, domain).Scan(&phase); err != nil || phase != string(tc.phase) {
				t.Errorf("domain phase %q (%v), want %s", phase, err, tc.phase)
			}
		})
	}
	// Every audit row (not dry run) has its outbox row with the same id.
	if n := f.count(`SELECT count(*) FROM audit_log a LEFT JOIN outbox o USING (id) WHERE o.id IS NULL`); n != 0 {
		t.Errorf("%d audit rows without outbox row", n)
	}
}

func TestGraceWarnsByDefaultAndUnverifiesInStrictMode(t *testing.T) {
	for _, strict := range []bool{false, true} {
		name := "default"
		if strict {
			name = "strict"
		}
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, func(c *Config) { c.Strict = strict })
			domain := "grace.com"
			emails := f.addEmails(domain, 2, t0.Add(-48*time.Hour))
			f.activate(domain, t0.Add(-2*time.Hour))
			exp := t0.Add(-time.Hour)
			out := f.observe(domain, lifecycle.PhaseActive, lifecycle.PhaseGrace, evidence(t0, reg, "H-"+domain, &exp))
			if strict {
				if out.Unverified != 2 || out.Reason != lifecycle.ReasonGrace {
					t.Fatalf("strict: %+v, want 2 unverified with domain_grace", out)
				}
				if f.email(emails[0]).verified {
					t.Error("strict: address still verified")
				}
				return
			}
			if out.Unverified != 0 || !slices.Contains(out.Events, schemas.SubjectDomainExpiring) {
				t.Fatalf("default: %+v, want no unverification and an expiring warning", out)
			}
			if !f.email(emails[0]).verified {
				t.Error("default: address unverified in grace")
			}
			// Still in grace, same expiry: no second warning.
			out = f.observe(domain, lifecycle.PhaseGrace, lifecycle.PhaseGrace, evidence(t0.Add(24*time.Hour), reg, "H-"+domain, &exp))
			if slices.Contains(out.Events, schemas.SubjectDomainExpiring) {
				t.Errorf("second grace observation warned again: %+v", out)
			}
			if n := f.countType(domain, schemas.SubjectDomainExpiring); n != 1 {
				t.Errorf("expiring rows = %d, want 1", n)
			}
			// Scheduled daily while in grace.
			var next time.Time
			if err := f.pool.QueryRow(f.ctx, `SELECT next_check_at FROM domains WHERE name = $1`, domain).Scan(&next); err != nil {
				t.Fatal(err)
			}
			if d := next.Sub(f.clock.Now()); d > 26*time.Hour {
				t.Errorf("grace domain next check in %s, want about a day", d)
			}
		})
	}
}

func TestActiveExpiringWarnsOncePerExpiryDate(t *testing.T) {
	f := newFixture(t, nil)
	domain := "soon.com"
	f.addEmails(domain, 1, t0.Add(-48*time.Hour))
	exp1 := t0.Add(10 * 24 * time.Hour)
	out := f.observe(domain, lifecycle.PhaseUnknown, lifecycle.PhaseActive, evidence(t0, reg, "H", &exp1))
	if !slices.Contains(out.Events, schemas.SubjectDomainExpiring) {
		t.Fatalf("first sighting within 30 days: %+v, want expiring", out)
	}
	ev := evidence(t0.Add(time.Hour), reg, "H", &exp1)
	ev.Statuses = []string{"active", "client transfer prohibited"} // changed evidence, same expiry
	out = f.observe(domain, lifecycle.PhaseActive, lifecycle.PhaseActive, ev)
	if slices.Contains(out.Events, schemas.SubjectDomainExpiring) {
		t.Fatalf("same expiry warned twice: %+v", out)
	}
	exp2 := t0.Add(20 * 24 * time.Hour) // renewed for a short period: a new date
	out = f.observe(domain, lifecycle.PhaseActive, lifecycle.PhaseActive, evidence(t0.Add(2*time.Hour), reg, "H", &exp2))
	if !slices.Contains(out.Events, schemas.SubjectDomainExpiring) {
		t.Fatalf("new expiry date not warned: %+v", out)
	}
	if n := f.countType(domain, schemas.SubjectDomainExpiring); n != 2 {
		t.Errorf("expiring rows = %d, want 2", n)
	}
	if n := f.count(`SELECT count(*) FROM emails WHERE domain = $1 AND verified`, domain); n != 1 {
		t.Errorf("verified = %d, want 1 (warnings unverify nobody)", n)
	}
}

func TestStaleEventAfterReverificationIsNotApplied(t *testing.T) {
	f := newFixture(t, nil)
	domain := "comeback.com"
	emails := f.addEmails(domain, 1, t0.Add(-48*time.Hour))
	f.activate(domain, t0.Add(-10*time.Hour))
	f.observe(domain, lifecycle.PhaseActive, lifecycle.PhaseExpired, evidence(t0.Add(-9*time.Hour), reg, "H-"+domain, nil))
	if f.email(emails[0]).verified {
		t.Fatal("not unverified by expired")
	}
	// The user re-verifies (after renewing) at t0.
	f.reverify(emails[0], t0)
	// A redemption observation taken before the re-verification arrives late.
	out := f.observe(domain, lifecycle.PhaseExpired, lifecycle.PhaseRedemption, evidence(t0.Add(-time.Hour), reg, "H-"+domain, nil))
	if out.Unverified != 0 {
		t.Fatalf("old observation unverified a re-verified address: %+v", out)
	}
	if s := f.email(emails[0]); !s.verified {
		t.Fatalf("re-verified address unverified again: %+v", s)
	}
	// A newer lapse observation does apply to it.
	out = f.observe(domain, lifecycle.PhaseRedemption, lifecycle.PhasePendingDelete, evidence(t0.Add(time.Hour), reg, "H-"+domain, nil))
	if out.Unverified != 1 || f.email(emails[0]).verified {
		t.Fatalf("newer observation did not unverify: %+v", out)
	}
}

func TestOutOfOrderObservationIsRecordedNotApplied(t *testing.T) {
	f := newFixture(t, nil)
	domain := "order.com"
	emails := f.addEmails(domain, 1, t0.Add(-48*time.Hour))
	f.activate(domain, t0.Add(-10*time.Hour))
	out := f.observe(domain, lifecycle.PhaseRedemption, lifecycle.PhaseReleased, evidence(t0, reg, "", nil))
	if out.Reason != lifecycle.ReasonReleased {
		t.Fatalf("released: %+v", out)
	}
	before := len(f.auditTypes(domain))
	out = f.observe(domain, lifecycle.PhaseActive, lifecycle.PhaseExpired, evidence(t0.Add(-time.Hour), reg, "H-"+domain, nil))
	if out.Result != ResultStale || len(out.Events) != 0 {
		t.Fatalf("older observation: %+v, want stale with no events", out)
	}
	if got := len(f.auditTypes(domain)); got != before {
		t.Errorf("audit rows %d -> %d after a stale observation", before, got)
	}
	var phase string
	if err := f.pool.QueryRow(f.ctx, `SELECT phase FROM domains WHERE name = $1`, domain).Scan(&phase); err != nil || phase != "released" {
		t.Errorf("domain phase %q (%v), want released", phase, err)
	}
	if n := f.count(`SELECT count(*) FROM domain_observations WHERE domain = $1 AND NOT applied AND phase = 'expired'`, domain); n != 1 {
		t.Errorf("stale observation recorded %d times, want 1", n)
	}
	if s := f.email(emails[0]); s.reason != string(lifecycle.ReasonReleased) {
		t.Errorf("reason overwritten by stale event: %+v", s)
	}
}

func TestRedeliveredEventChangesNothing(t *testing.T) {
	f := newFixture(t, nil)
	domain := "twice.com"
	f.addEmails(domain, 2, t0.Add(-48*time.Hour))
	f.activate(domain, t0.Add(-time.Hour))
	ch := schemas.DomainChanged{Domain: domain, PreviousPhase: lifecycle.PhaseActive, Phase: lifecycle.PhaseExpired, Evidence: evidence(t0, reg, "H-"+domain, nil)}
	out, err := f.enforce("the-id", ch)
	if err != nil || out.Unverified != 2 {
		t.Fatalf("first: %+v %v", out, err)
	}
	audits, outbox, obs := f.count(`SELECT count(*) FROM audit_log`), f.outboxCount(), f.count(`SELECT count(*) FROM domain_observations`)
	f.reverify("u0@"+domain, t0.Add(time.Minute)) // even a changed state does not make a duplicate apply
	for range 3 {
		out, err = f.enforce("the-id", ch)
		if err != nil || out.Result != ResultDuplicate {
			t.Fatalf("redelivery: %+v %v, want duplicate", out, err)
		}
	}
	if a, o, n := f.count(`SELECT count(*) FROM audit_log`), f.outboxCount(), f.count(`SELECT count(*) FROM domain_observations`); a != audits || o != outbox || n != obs {
		t.Errorf("rows changed by redelivery: audit %d->%d outbox %d->%d observations %d->%d", audits, a, outbox, o, obs, n)
	}
	if !f.email("u0@" + domain).verified {
		t.Error("redelivery unverified a re-verified address")
	}
}

// A negative cap (Config and lifecycle.Policy; the benchmarks and the
// simulator use it, the binary refuses it) holds nothing, however many
// addresses a change unverifies.
func TestNegativeCapHoldsNothing(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.MaxUnverifyPerDomain = -1 })
	domain := "huge.com"
	f.addEmails(domain, lifecycle.DefaultMaxUnverifyPerDomain+10, t0.Add(-48*time.Hour))
	f.activate(domain, t0.Add(-time.Hour))
	out := f.observe(domain, lifecycle.PhaseActive, lifecycle.PhaseReleased, evidence(t0, reg, "", nil))
	if out.HoldCause != "" || out.Unverified != lifecycle.DefaultMaxUnverifyPerDomain+10 {
		t.Fatalf("outcome %+v, want no hold and all %d addresses unverified", out, lifecycle.DefaultMaxUnverifyPerDomain+10)
	}
}

func TestCapHoldAppliedOnlyOnApprove(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.MaxUnverifyPerDomain = 5 })
	domain := "big.com"
	emails := f.addEmails(domain, 6, t0.Add(-48*time.Hour))
	f.activate(domain, t0.Add(-time.Hour))
	out := f.observe(domain, lifecycle.PhaseActive, lifecycle.PhaseReleased, evidence(t0, reg, "", nil))
	if out.HoldCause != string(lifecycle.HoldCap) || out.HoldID == "" || out.Unverified != 0 {
		t.Fatalf("outcome %+v, want a cap hold and nobody unverified", out)
	}
	if n := f.count(`SELECT count(*) FROM emails WHERE domain = $1 AND verified`, domain); n != 6 {
		t.Fatalf("verified = %d, want 6 while held", n)
	}
	if n := f.countType(domain, schemas.SubjectEnforcementHeld); n != 1 {
		t.Errorf("held events = %d, want 1", n)
	}
	holds, err := f.store.ListHolds(f.ctx, HoldPending)
	if err != nil || len(holds) != 1 || len(holds[0].Addresses) != 6 || holds[0].Reason != lifecycle.ReasonReleased {
		t.Fatalf("pending holds %+v %v", holds, err)
	}
	// One user re-verifies before the operator decides: left alone.
	f.reverify(emails[5], t0.Add(time.Minute))
	f.clock.Advance(time.Hour)
	res, err := f.store.ApproveHold(f.ctx, out.HoldID, "alice")
	if err != nil || res.Unverified != 5 || res.Hold.Status != HoldApproved || res.Hold.DecidedBy != "alice" {
		t.Fatalf("approve: %+v %v", res, err)
	}
	if !f.email(emails[5]).verified || f.email(emails[0]).verified {
		t.Error("approve touched the wrong addresses")
	}
	if n := f.count(`SELECT count(*) FROM audit_log WHERE type = $1 AND data->>'hold_id' = $2`, schemas.SubjectEmailUnverified, out.HoldID); n != 5 {
		t.Errorf("unverified events with hold id = %d, want 5", n)
	}
	if _, err := f.store.ApproveHold(f.ctx, out.HoldID, "alice"); !errors.Is(err, ErrHoldDecided) {
		t.Errorf("second approve: %v, want ErrHoldDecided", err)
	}
	if _, err := f.store.ApproveHold(f.ctx, "0190aaaa-0000-7000-8000-000000000000", "alice"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown hold: %v, want ErrNotFound", err)
	}
}

func TestRejectedHoldKeepsAddressesVerified(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.MaxUnverifyPerDomain = 1 })
	domain := "reject.com"
	f.addEmails(domain, 2, t0.Add(-48*time.Hour))
	f.activate(domain, t0.Add(-time.Hour))
	out := f.observe(domain, lifecycle.PhaseActive, lifecycle.PhaseExpired, evidence(t0, reg, "H-"+domain, nil))
	h, err := f.store.RejectHold(f.ctx, out.HoldID, "bob")
	if err != nil || h.Status != HoldRejected {
		t.Fatalf("reject: %+v %v", h, err)
	}
	if n := f.count(`SELECT count(*) FROM emails WHERE domain = $1 AND verified`, domain); n != 2 {
		t.Errorf("verified = %d, want 2", n)
	}
	if _, err := f.store.ApproveHold(f.ctx, out.HoldID, "bob"); !errors.Is(err, ErrHoldDecided) {
		t.Errorf("approve after reject: %v", err)
	}
}

func TestNewerObservationSupersedesPendingHold(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.MaxUnverifyPerDomain = 1 })
	domain := "flap.com"
	f.addEmails(domain, 2, t0.Add(-48*time.Hour))
	f.activate(domain, t0.Add(-time.Hour))
	out := f.observe(domain, lifecycle.PhaseActive, lifecycle.PhaseExpired, evidence(t0, reg, "H-"+domain, nil))
	f.observe(domain, lifecycle.PhaseExpired, lifecycle.PhaseActive, evidence(t0.Add(time.Hour), reg, "H-"+domain, ptr(t0.AddDate(1, 0, 0))))
	h, err := f.store.GetHold(f.ctx, out.HoldID)
	if err != nil || h.Status != HoldSuperseded {
		t.Fatalf("hold after the domain came back: %+v %v, want superseded", h, err)
	}
}

func TestProtectedDomainsAreHeld(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.ProtectedDomains = []string{"corp.example"} })
	for _, domain := range []string{"gmail.com", "corp.example"} {
		f.addEmails(domain, 1, t0.Add(-48*time.Hour))
		f.activate(domain, t0.Add(-time.Hour))
		out := f.observe(domain, lifecycle.PhaseActive, lifecycle.PhaseReleased, evidence(t0, reg, "", nil))
		if out.HoldCause != string(lifecycle.HoldProtected) || out.Unverified != 0 {
			t.Errorf("%s: %+v, want a protected hold", domain, out)
		}
	}
}

func TestBreakerTripsAtThresholdAndResumeAppliesPaused(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.BreakerPct = 5; c.BreakerMinDomains = 20 })
	// 100 domains looked at within the hour, 10 of them with an address.
	for i := range 100 {
		d := "b" + itoa(i) + ".com"
		f.activate(d, t0.Add(-30*time.Minute))
		if i < 10 {
			f.addEmails(d, 1, t0.Add(-48*time.Hour))
		}
	}
	lapse := func(i int) Outcome {
		d := "b" + itoa(i) + ".com"
		return f.observe(d, lifecycle.PhaseActive, lifecycle.PhaseExpired, evidence(t0, reg, "H-"+d, nil))
	}
	for i := range 5 { // 5% is not more than 5%
		if out := lapse(i); out.Unverified != 1 || out.Paused {
			t.Fatalf("lapse %d: %+v, want applied", i, out)
		}
	}
	out := lapse(5) // 6 of 100
	if !out.Paused || out.HoldCause != string(lifecycle.HoldBreaker) || out.Unverified != 0 {
		t.Fatalf("6th lapse: %+v, want the breaker to trip and hold", out)
	}
	out = lapse(6)
	if out.Paused || out.HoldCause != string(lifecycle.HoldBreaker) {
		t.Fatalf("7th lapse: %+v, want held for the breaker without a second pause", out)
	}
	if n := f.count(`SELECT count(*) FROM audit_log WHERE type = $1`, schemas.SubjectEnforcementPaused); n != 1 {
		t.Errorf("paused events = %d, want 1", n)
	}
	st, err := f.store.BreakerStatus(f.ctx)
	if err != nil || !st.Open || st.PendingHolds != 2 || st.NonActive != 7 || st.Observed != 100 {
		t.Fatalf("status %+v %v", st, err)
	}
	// Observations are still recorded and applied to domains while paused.
	var phase string
	if err := f.pool.QueryRow(f.ctx, `SELECT phase FROM domains WHERE name = 'b6.com'`).Scan(&phase); err != nil || phase != "expired" {
		t.Errorf("paused domain phase %q %v", phase, err)
	}
	f.clock.Advance(time.Minute)
	res, err := f.store.ResumeBreaker(f.ctx, "carol")
	if err != nil || !res.WasOpen || len(res.Applied) != 2 {
		t.Fatalf("resume: %+v %v", res, err)
	}
	for _, e := range []string{"u0@b5.com", "u0@b6.com"} {
		if s := f.email(e); s.verified || s.reason != string(lifecycle.ReasonExpired) {
			t.Errorf("%s after resume: %+v", e, s)
		}
	}
	if n := f.count(`SELECT count(*) FROM audit_log WHERE type = $1`, schemas.SubjectEnforcementResumed); n != 1 {
		t.Errorf("resumed events = %d, want 1", n)
	}
	// The window restarted: the next lapse is enforced.
	if out := lapse(7); out.Unverified != 1 || out.Paused {
		t.Fatalf("lapse after resume: %+v", out)
	}
	st, _ = f.store.BreakerStatus(f.ctx)
	if st.Open || st.PendingHolds != 0 {
		t.Errorf("status after resume %+v", st)
	}
}

// A wave of re-registrations while active (a registry backend migration
// that moves registration dates) trips the breaker like a wave of lapses:
// every unverifying decision counts, whatever its reason.
func TestBreakerCountsReregistrations(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.BreakerPct = 5; c.BreakerMinDomains = 20 })
	for i := range 100 {
		d := "r" + itoa(i) + ".com"
		f.activate(d, t0.Add(-30*time.Minute))
		if i < 10 {
			f.addEmails(d, 1, t0.Add(-48*time.Hour))
		}
	}
	rereg := func(i int) Outcome {
		d := "r" + itoa(i) + ".com"
		return f.observe(d, lifecycle.PhaseActive, lifecycle.PhaseActive, evidence(t0, t0.Add(-time.Hour), "NEW-"+d, ptr(t0.AddDate(1, 0, 0))))
	}
	for i := range 5 {
		if out := rereg(i); out.Unverified != 1 || out.Reason != lifecycle.ReasonReregistered || out.Paused {
			t.Fatalf("re-registration %d: %+v, want applied", i, out)
		}
	}
	if out := rereg(5); !out.Paused || out.HoldCause != string(lifecycle.HoldBreaker) || out.Unverified != 0 {
		t.Fatalf("6th re-registration: %+v, want the breaker to trip and hold", out)
	}
}

func TestRestoredVersusReregistered(t *testing.T) {
	f := newFixture(t, nil)
	// Restored: back to active with the same registration.
	f.addEmails("same.com", 2, t0.Add(-48*time.Hour))
	f.activate("same.com", t0.Add(-3*time.Hour))
	f.observe("same.com", lifecycle.PhaseActive, lifecycle.PhaseRedemption, evidence(t0.Add(-2*time.Hour), reg, "H-same.com", nil))
	out := f.observe("same.com", lifecycle.PhaseRedemption, lifecycle.PhaseActive, evidence(t0, reg, "H-same.com", ptr(t0.AddDate(1, 0, 0))))
	if !slices.Contains(out.Events, schemas.SubjectDomainRestored) || slices.Contains(out.Events, schemas.SubjectDomainReregistered) {
		t.Fatalf("restored: %+v", out)
	}
	if f.email("u0@same.com").verified {
		t.Error("restored re-verified an address")
	}
	var n, count int
	if err := f.pool.QueryRow(f.ctx, `SELECT jsonb_array_length(data->'addresses'), (data->>'address_count')::int FROM audit_log WHERE domain = 'same.com' AND type = $1`, schemas.SubjectDomainRestored).Scan(&n, &count); err != nil || n != 2 || count != 2 {
		t.Errorf("restored addresses = %d, address_count = %d (%v), want 2 and 2", n, count, err)
	}

	// Re-registered after release: new handle and registration date.
	f.addEmails("new.com", 1, t0.Add(-48*time.Hour))
	f.activate("new.com", t0.Add(-3*time.Hour))
	f.observe("new.com", lifecycle.PhaseActive, lifecycle.PhaseReleased, evidence(t0.Add(-2*time.Hour), reg, "", nil))
	out = f.observe("new.com", lifecycle.PhaseReleased, lifecycle.PhaseActive, evidence(t0, t0.Add(-time.Hour), "H2-new.com", ptr(t0.AddDate(1, 0, 0))))
	if !slices.Contains(out.Events, schemas.SubjectDomainReregistered) || slices.Contains(out.Events, schemas.SubjectDomainRestored) {
		t.Fatalf("reregistered: %+v", out)
	}

	// A new handle alone — registration date unmoved, no lapse seen — is a
	// registry migration's shape: held for an operator (handle_changed),
	// announced by the held event Decide returned, nobody unverified yet.
	f.addEmails("auction.com", 1, t0.Add(-48*time.Hour))
	f.activate("auction.com", t0.Add(-3*time.Hour))
	out = f.observe("auction.com", lifecycle.PhaseActive, lifecycle.PhaseActive, evidence(t0, reg, "H-other", ptr(t0.AddDate(1, 0, 0))))
	if out.Unverified != 0 || out.HoldCause != string(lifecycle.HoldHandleChanged) || out.Reason != lifecycle.ReasonReregistered ||
		!slices.Equal(out.Events, []string{schemas.SubjectDomainChanged, schemas.SubjectDomainReregistered, schemas.SubjectEnforcementHeld}) {
		t.Fatalf("handle change: %+v", out)
	}
	if s := f.email("u0@auction.com"); !s.verified {
		t.Errorf("handle change unverified %+v before an operator approved", s)
	}
	if err := f.pool.QueryRow(f.ctx, `SELECT count(*) FROM domain_observations WHERE domain = 'auction.com' AND turned_lapsed`).Scan(&n); err != nil || n != 1 {
		t.Errorf("the held handle change counted toward the breaker %d times (%v), want 1", n, err)
	}

	// Registration date later than the address's verification.
	f.addEmails("later.com", 1, t0.Add(-48*time.Hour))
	out = f.observe("later.com", lifecycle.PhaseUnknown, lifecycle.PhaseActive, evidence(t0, t0.Add(-24*time.Hour), "H", ptr(t0.AddDate(1, 0, 0))))
	if out.Unverified != 1 || out.Reason != lifecycle.ReasonReregistered {
		t.Fatalf("registered after verification: %+v", out)
	}
}

func TestDryRunChangesNothing(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.DryRun = true; c.MaxUnverifyPerDomain = 3 })
	f.addEmails("dry.com", 2, t0.Add(-48*time.Hour))
	f.addEmails("drybig.com", 4, t0.Add(-48*time.Hour))
	f.activate("dry.com", t0.Add(-time.Hour))
	out := f.observe("dry.com", lifecycle.PhaseActive, lifecycle.PhaseReleased, evidence(t0, reg, "", nil))
	if out.Unverified != 0 || out.WouldUnverify != 2 {
		t.Fatalf("dry run: %+v", out)
	}
	out = f.observe("drybig.com", lifecycle.PhaseUnknown, lifecycle.PhaseReleased, evidence(t0, reg, "", nil))
	if out.HoldCause != string(lifecycle.HoldCap) {
		t.Fatalf("dry run big: %+v", out)
	}
	if n := f.count(`SELECT count(*) FROM emails WHERE NOT verified`); n != 0 {
		t.Errorf("dry run unverified %d addresses", n)
	}
	if n := f.outboxCount(); n != 0 {
		t.Errorf("dry run wrote %d outbox rows", n)
	}
	if n := f.count(`SELECT count(*) FROM holds`); n != 0 {
		t.Errorf("dry run wrote %d holds", n)
	}
	if n := f.count(`SELECT count(*) FROM audit_log WHERE dry_run AND type = $1`, schemas.SubjectEmailUnverified); n != 2 {
		t.Errorf("would-be unverified rows = %d, want 2", n)
	}
	if n := f.count(`SELECT count(*) FROM audit_log WHERE NOT dry_run`); n != 0 {
		t.Errorf("%d audit rows not marked dry run", n)
	}
}

func TestInvalidChangeIsRejected(t *testing.T) {
	f := newFixture(t, nil)
	_, err := f.enforce("x", schemas.DomainChanged{Domain: "a.com", PreviousPhase: "active", Phase: "bogus"})
	if !errors.Is(err, schemas.ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
}

func itoa(i int) string {
	const digits = "0123456789"
	if i < 10 {
		return digits[i : i+1]
	}
	return itoa(i/10) + digits[i%10:i%10+1]
}
