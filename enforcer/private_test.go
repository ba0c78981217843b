package enforcer

import (
	"testing"
	"time"

	"github.com/domainguard/domainguard/lifecycle"
	"github.com/domainguard/domainguard/schemas"
)

// A lapse of a name under a private suffix (acme.us.com, watched through
// the DNS) unverifies the addresses whose own name it is (emails.watch_name),
// not the other addresses of the registrable domain us.com; a lapse of
// us.com still unverifies them all. Changes of plain and private names
// applied in one group each find their own addresses.
func TestPrivateSuffixNameLapseUnverifiesItsAddresses(t *testing.T) {
	f := newFixture(t, nil)
	verifiedAt := t0.Add(-30 * 24 * time.Hour)
	f.exec(`INSERT INTO emails (user_id, email, domain, verified, verified_at, watch_name) VALUES
		('a', 'alice@mail.acme.us.com', 'us.com', true, $1, 'acme.us.com'),
		('b', 'bob@acme.us.com', 'us.com', true, $1, 'acme.us.com'),
		('c', 'carol@other.us.com', 'us.com', true, $1, 'other.us.com'),
		('d', 'dave@us.com', 'us.com', true, $1, NULL),
		('e', 'erin@plain.com', 'plain.com', true, $1, NULL)`, verifiedAt)
	dnsEv := func(at time.Time, present bool, since *time.Time) lifecycle.Evidence {
		d := &lifecycle.DNSEvidence{Delegated: present, Rcode: "NOERROR", Nameservers: []string{"ns1.acme.example"}}
		if !present {
			d = &lifecycle.DNSEvidence{Rcode: "NXDOMAIN", UndelegatedSince: since, BaselineNameservers: []string{"ns1.acme.example"}}
		}
		return lifecycle.Evidence{Provider: lifecycle.ProviderDNS, DNS: d, ObservedAt: at}
	}
	start := t0.Add(-2 * time.Hour)
	for _, name := range []string{"acme.us.com", "other.us.com"} {
		if out := f.observe(name, lifecycle.PhaseUnknown, lifecycle.PhaseActive, dnsEv(start, true, nil)); out.Result != ResultApplied {
			t.Fatalf("activate %s: %+v", name, out)
		}
	}
	f.activate("us.com", start)
	f.activate("plain.com", start)

	since := start.Add(time.Minute)
	outs, errs := f.store.EnforceChangedGroup(f.ctx, []ChangeItem{
		{MsgID: "lapse-acme", Change: schemas.DomainChanged{Domain: "acme.us.com", PreviousPhase: lifecycle.PhaseActive,
			Phase: lifecycle.PhaseExpired, Evidence: dnsEv(t0.Add(-time.Minute), false, &since)}},
		{MsgID: "lapse-plain", Change: schemas.DomainChanged{Domain: "plain.com", PreviousPhase: lifecycle.PhaseActive,
			Phase: lifecycle.PhaseExpired, Evidence: func() lifecycle.Evidence {
				ev := evidence(t0.Add(-time.Minute), reg, "H-plain.com", ptr(t0.Add(-48*time.Hour)))
				ev.Statuses = []string{"client hold"}
				return ev
			}()}},
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("change %d: %v", i, err)
		}
	}
	if outs[0].Unverified != 2 || outs[0].Reason != lifecycle.ReasonUndelegated {
		t.Fatalf("acme.us.com lapse: %+v; want 2 unverified, domain_undelegated", outs[0])
	}
	if outs[1].Unverified != 1 {
		t.Fatalf("plain.com lapse: %+v; want 1 unverified", outs[1])
	}
	for email, want := range map[string]emailState{
		"alice@mail.acme.us.com": {false, string(lifecycle.ReasonUndelegated)},
		"bob@acme.us.com":        {false, string(lifecycle.ReasonUndelegated)},
		"carol@other.us.com":     {true, ""},
		"dave@us.com":            {true, ""},
	} {
		if got := f.email(email); got != want {
			t.Errorf("%s: %+v, want %+v", email, got, want)
		}
	}
	if n := f.countType("acme.us.com", schemas.SubjectEmailUnverified); n != 2 {
		t.Errorf("%d audit.email.unverified events on acme.us.com, want 2", n)
	}

	// us.com itself lapses: every address under it goes, the private ones too.
	exp := evidence(t0, reg, "H-us.com", ptr(t0.Add(-48*time.Hour)))
	exp.Statuses = []string{"client hold"}
	if out := f.observe("us.com", lifecycle.PhaseActive, lifecycle.PhaseExpired, exp); out.Unverified != 2 {
		t.Fatalf("us.com lapse: %+v; want carol and dave unverified", out)
	}
	if got := f.email("carol@other.us.com"); got.verified {
		t.Errorf("carol still verified after us.com lapsed")
	}
	// The rows the enforcer made are marked as the producer marks them, so
	// the sweep checks the private names by DNS alone, outside the budget.
	for name, want := range map[string]int{"acme.us.com": 1, "other.us.com": 1, "us.com": 0, "plain.com": 0} {
		if got := f.count(`SELECT count(*) FROM domains WHERE name = $1 AND private_suffix`, name); got != want {
			t.Errorf("%s: %d private_suffix rows, want %d", name, got, want)
		}
	}
}
