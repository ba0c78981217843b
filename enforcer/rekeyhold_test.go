package enforcer

import (
	"testing"
	"time"

	"github.com/domainguard/domainguard/lifecycle"
)

// A hold made while addresses were stored under the key of before (here a
// trailing dot) and approved after the producer rekeyed them still
// unverifies them: the approval looks an address up under both keys.
func TestHoldFromBeforeTheRekeyingUnverifiesRekeyedAddresses(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.MaxUnverifyPerDomain = 1 })
	f.exec(`INSERT INTO emails (user_id, email, domain, verified, verified_at) VALUES
		('u1', 'a@old.com.', 'old.com', true, $1), ('u2', 'b@old.com', 'old.com', true, $1)`, t0.Add(-48*time.Hour))
	f.activate("old.com", t0.Add(-time.Hour))
	out := f.observe("old.com", lifecycle.PhaseActive, lifecycle.PhaseReleased, evidence(t0, reg, "", nil))
	if out.HoldID == "" || out.Unverified != 0 {
		t.Fatalf("outcome %+v, want a cap hold", out)
	}
	// The producer's rekeying, between the hold and its approval.
	f.exec(`UPDATE emails SET email = 'a@old.com' WHERE user_id = 'u1' AND email = 'a@old.com.'`)
	res, err := f.store.ApproveHold(f.ctx, out.HoldID, "alice")
	if err != nil || res.Unverified != 2 {
		t.Fatalf("approve: %+v, %v; want both addresses unverified", res, err)
	}
	if n := f.count(`SELECT count(*) FROM emails WHERE verified`); n != 0 {
		t.Errorf("%d addresses still verified after the approved hold", n)
	}
}
