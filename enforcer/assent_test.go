package enforcer

import (
	"bytes"
	"testing"
	"time"

	"github.com/domainguard/domainguard/lifecycle"
	"github.com/domainguard/domainguard/schemas"
)

// Audit events and `status` name an address as the host sent it
// (email_as_sent) beside the normalised key, also for a reregistration's
// domain event.
func TestAuditEventsAndStatusCarryTheAddressAsSent(t *testing.T) {
	f := newFixture(t, nil)
	const domain = "xn--bcher-kva.example"
	f.exec(`INSERT INTO emails (user_id, email, email_as_sent, domain, verified, verified_at) VALUES
		('u1', 'Alice@xn--bcher-kva.example', 'Alice@BÜCHER.Example', $1, true, $2),
		('u2', 'bob@xn--bcher-kva.example', 'bob@bücher.EXAMPLE.', $1, true, $2)`, domain, t0.Add(-48*time.Hour))
	f.activate(domain, t0.Add(-time.Hour))
	f.observe(domain, lifecycle.PhaseActive, lifecycle.PhaseReleased, evidence(t0, reg, "H-1", nil))

	want := map[string]string{"Alice@xn--bcher-kva.example": "Alice@BÜCHER.Example", "bob@xn--bcher-kva.example": "bob@bücher.EXAMPLE."}
	rows, err := f.pool.Query(f.ctx, `SELECT o.payload FROM outbox o JOIN audit_log a USING (id) WHERE a.type = $1`, schemas.SubjectEmailUnverified)
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for rows.Next() {
		var payload []byte
		if err := rows.Scan(&payload); err != nil {
			t.Fatal(err)
		}
		_, ev, err := schemas.Decode[schemas.EmailUnverified](payload)
		if err != nil {
			t.Fatalf("audit.email.unverified payload: %v", err)
		}
		if ev.EmailAsSent != want[ev.Email] {
			t.Errorf("audit.email.unverified for %q carries email_as_sent %q, want %q", ev.Email, ev.EmailAsSent, want[ev.Email])
		}
		seen++
	}
	rows.Close()
	if seen != 2 {
		t.Fatalf("%d audit.email.unverified events, want 2", seen)
	}

	// Re-registered: the domain event lists the unverified addresses, each
	// with its form as sent.
	f.observe(domain, lifecycle.PhaseReleased, lifecycle.PhaseActive, evidence(t0.Add(time.Hour), t0, "H-2", nil))
	var payload []byte
	if err := f.pool.QueryRow(f.ctx, `SELECT o.payload FROM outbox o JOIN audit_log a USING (id) WHERE a.type = $1`,
		schemas.SubjectDomainReregistered).Scan(&payload); err != nil {
		t.Fatalf("audit.domain.reregistered: %v", err)
	}
	_, de, err := schemas.Decode[schemas.DomainEvent](payload)
	if err != nil {
		t.Fatal(err)
	}
	if len(de.Addresses) != 2 {
		t.Fatalf("reregistered addresses %+v", de.Addresses)
	}
	for _, a := range de.Addresses {
		if a.EmailAsSent != want[a.Email] {
			t.Errorf("reregistered lists %q as sent %q, want %q", a.Email, a.EmailAsSent, want[a.Email])
		}
	}

	rep, err := f.store.Status(f.ctx, "Alice@BÜCHER.Example")
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Emails) != 1 || rep.Emails[0].EmailAsSent != "Alice@BÜCHER.Example" {
		t.Fatalf("status emails %+v, want Alice's form as sent", rep.Emails)
	}
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(text.Bytes(), []byte("Alice@BÜCHER.Example")) {
		t.Errorf("status text does not show the address as sent:\n%s", text.String())
	}
}
