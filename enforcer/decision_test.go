package enforcer

import (
	"strings"
	"testing"
	"time"

	"github.com/domainguard/domainguard/lifecycle"
	"github.com/domainguard/domainguard/schemas"
)

func TestDecisionsStoreTheNoteAndEmitOperatorActions(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.MaxUnverifyPerDomain = 1 })
	hold := func(domain string) string {
		f.addEmails(domain, 2, t0.Add(-48*time.Hour))
		f.activate(domain, t0.Add(-time.Hour))
		out := f.observe(domain, lifecycle.PhaseActive, lifecycle.PhaseExpired, evidence(t0, reg, "H-"+domain, nil))
		if out.HoldID == "" {
			t.Fatalf("%s: no hold: %+v", domain, out)
		}
		return out.HoldID
	}
	approveID, rejectID := hold("approve-note.com"), hold("reject-note.com")

	if _, err := f.store.Approve(f.ctx, approveID, Decision{By: "", Note: "x", Via: "console"}); err == nil {
		t.Error("approve without an operator: no error")
	}
	if _, err := f.store.Approve(f.ctx, approveID, Decision{By: "ann", Note: "bad \x1b[31m", Via: "console"}); err == nil || !strings.Contains(err.Error(), "control") {
		t.Errorf("approve with an escape in the note: %v", err)
	}
	if _, err := f.store.Approve(f.ctx, approveID, Decision{By: "ann", Note: "x", Via: "web"}); err == nil {
		t.Error("approve via an unknown door: no error")
	}
	res, err := f.store.Approve(f.ctx, approveID, Decision{By: "ann", Note: "registry confirmed", Via: "console"})
	if err != nil || res.Unverified != 2 || res.Hold.Note != "registry confirmed" {
		t.Fatalf("approve: %+v %v", res, err)
	}
	h, err := f.store.Reject(f.ctx, rejectID, Decision{By: "bob", Note: "false alarm, renewed", Via: "console"})
	if err != nil || h.Status != HoldRejected || h.Note != "false alarm, renewed" || h.DecidedBy != "bob" {
		t.Fatalf("reject: %+v %v", h, err)
	}
	if _, err := f.store.Reject(f.ctx, rejectID, Decision{By: "bob", Note: "again"}); err == nil {
		t.Error("second reject: no error")
	}
	if err := f.store.RecordAction(f.ctx, Decision{By: "cy", Note: "fixed the host", Via: "console"},
		schemas.OperatorAction{Action: schemas.ActionDLQReplay, DLQSequence: 7, Stream: "ACCOUNTS", Subject: "accounts.email.verified"}); err != nil {
		t.Fatal(err)
	}

	type row struct{ action, actor, via, note, hold string }
	rows, err := f.pool.Query(f.ctx, `SELECT data->>'action', data->>'actor', data->>'via', COALESCE(data->>'note', ''), COALESCE(data->>'hold_id', '')
		FROM audit_log WHERE type = $1 ORDER BY data->>'action'`, schemas.SubjectOperatorAction)
	if err != nil {
		t.Fatal(err)
	}
	var got []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.action, &r.actor, &r.via, &r.note, &r.hold); err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	want := []row{
		{schemas.ActionDLQReplay, "cy", "console", "fixed the host", ""},
		{schemas.ActionHoldApprove, "ann", "console", "registry confirmed", approveID},
		{schemas.ActionHoldReject, "bob", "console", "false alarm, renewed", rejectID},
	}
	if len(got) != len(want) {
		t.Fatalf("operator actions %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("action %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	// Every operator action also went to the outbox, for AUDIT.
	if n := f.count(`SELECT count(*) FROM outbox WHERE subject = $1`, schemas.SubjectOperatorAction); n != 3 {
		t.Errorf("outbox operator actions = %d, want 3", n)
	}
	var note string
	if err := f.pool.QueryRow(f.ctx, `SELECT note FROM holds WHERE id = $1::uuid`, rejectID).Scan(&note); err != nil || note != "false alarm, renewed" {
		t.Errorf("stored note %q %v", note, err)
	}
}
