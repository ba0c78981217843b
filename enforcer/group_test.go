package enforcer

import (
	"errors"
	"testing"
	"time"

	"github.com/domainguard/domainguard/lifecycle"
	"github.com/domainguard/domainguard/schemas"
)

// A group shares one transaction, but each event is atomic on its own: a
// failing event rolls back only its writes, an invalid one never reaches
// the database, and one domain's events apply in order.
func TestEnforceChangedGroupIsolatesEachEvent(t *testing.T) {
	f := newFixture(t, nil)
	at := t0.Add(time.Hour)
	for _, d := range []string{"a.com", "b.com", "c.com"} {
		f.addEmails(d, 2, t0.Add(-24*time.Hour))
		f.activate(d, t0)
	}
	ev := func(d string, at time.Time) lifecycle.Evidence {
		return evidence(at, reg, "H-"+d, ptr(t0.AddDate(0, 0, -40)))
	}
	// This event fails in the database: a trigger refuses b.com's
	// observation (standing in for any statement error).
	f.exec(`CREATE FUNCTION refuse_b() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN IF NEW.domain = 'b.com' THEN RAISE EXCEPTION 'refused by test'; END IF; RETURN NEW; END $$`)
	f.exec(`CREATE TRIGGER refuse_b BEFORE INSERT ON domain_observations FOR EACH ROW EXECUTE FUNCTION refuse_b()`)
	bad := ev("b.com", at)
	items := []ChangeItem{
		{MsgID: "g-1", Change: schemas.DomainChanged{Domain: "a.com", PreviousPhase: lifecycle.PhaseActive, Phase: lifecycle.PhaseRedemption, Evidence: ev("a.com", at)}},
		{MsgID: "g-2", Change: schemas.DomainChanged{Domain: "b.com", PreviousPhase: lifecycle.PhaseActive, Phase: lifecycle.PhaseRedemption, Evidence: bad}},
		{MsgID: "g-3", Change: schemas.DomainChanged{Domain: "c.com", PreviousPhase: lifecycle.PhaseActive, Phase: lifecycle.PhaseUnknown, Evidence: ev("c.com", at)}},
		{MsgID: "", Change: schemas.DomainChanged{Domain: "c.com", PreviousPhase: lifecycle.PhaseActive, Phase: lifecycle.PhaseReleased, Evidence: ev("c.com", at)}},
		{MsgID: "g-5", Change: schemas.DomainChanged{Domain: "c.com", PreviousPhase: lifecycle.PhaseActive, Phase: lifecycle.PhasePendingDelete, Evidence: ev("c.com", at)}},
		{MsgID: "g-6", Change: schemas.DomainChanged{Domain: "c.com", PreviousPhase: lifecycle.PhasePendingDelete, Phase: lifecycle.PhaseReleased, Evidence: ev("c.com", at.Add(time.Minute))}},
	}
	outs, errs := f.store.EnforceChangedGroup(f.ctx, items)
	if errs[0] != nil || outs[0].Result != ResultApplied || outs[0].Unverified != 2 {
		t.Errorf("a.com: %+v, %v", outs[0], errs[0])
	}
	if errs[1] == nil || errors.Is(errs[1], schemas.ErrInvalid) {
		t.Errorf("b.com: want a database error, got %v", errs[1])
	}
	if !errors.Is(errs[2], schemas.ErrInvalid) || !errors.Is(errs[3], schemas.ErrInvalid) {
		t.Errorf("invalid items: %v, %v", errs[2], errs[3])
	}
	if errs[4] != nil || outs[4].Unverified != 2 || outs[4].Reason != lifecycle.ReasonPendingDelete {
		t.Errorf("c.com pending delete: %+v, %v", outs[4], errs[4])
	}
	if errs[5] != nil || outs[5].Result != ResultApplied || outs[5].Unverified != 0 {
		t.Errorf("c.com released after pending delete (in order, nobody left): %+v, %v", outs[5], errs[5])
	}
	if n := f.count(`SELECT count(*) FROM emails WHERE domain = 'b.com' AND NOT verified`); n != 0 {
		t.Errorf("the failed event left %d unverified addresses", n)
	}
	if n := f.count(`SELECT count(*) FROM processed_messages WHERE message_id = 'g-2'`); n != 0 {
		t.Errorf("the failed event was recorded as processed")
	}
	if n := f.count(`SELECT count(*) FROM audit_log WHERE domain = 'b.com'`); n != 0 {
		t.Errorf("the failed event wrote %d audit rows", n)
	}
	if got := f.email("u0@c.com").reason; got != string(lifecycle.ReasonPendingDelete) {
		t.Errorf("c.com reason %q", got)
	}
	// The failed event succeeds when redelivered once the cause is gone.
	f.exec(`DROP TRIGGER refuse_b ON domain_observations`)
	outs, errs = f.store.EnforceChangedGroup(f.ctx, []ChangeItem{items[1], items[0]})
	if errs[0] != nil || outs[0].Unverified != 2 || errs[1] != nil || outs[1].Result != ResultDuplicate {
		t.Errorf("redelivery: %+v %v / %+v %v", outs[0], errs[0], outs[1], errs[1])
	}
}

// Provider text with a NUL (which PostgreSQL's jsonb refuses) is cleaned,
// not retried forever.
func TestEnforceChangedCleansControlCharacters(t *testing.T) {
	f := newFixture(t, nil)
	f.addEmails("nul.com", 1, t0.Add(-24*time.Hour))
	f.activate("nul.com", t0)
	ev := evidence(t0.Add(time.Hour), reg, "H-nul\x00.com", ptr(t0.AddDate(0, 0, -40)))
	ev.Detail = "odd \x00 byte"
	out, err := f.enforce("nul-1", schemas.DomainChanged{Domain: "nul.com", PreviousPhase: lifecycle.PhaseActive, Phase: lifecycle.PhaseRedemption, Evidence: ev})
	if err != nil || out.Unverified != 1 {
		t.Fatalf("enforce: %+v, %v", out, err)
	}
	if n := f.count(`SELECT count(*) FROM domains WHERE name = 'nul.com' AND handle = 'H-nul.com'`); n != 1 {
		t.Errorf("handle not stored cleaned")
	}
}
