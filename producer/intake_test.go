package producer

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/domainguard/domainguard/internal/broker"
	"github.com/domainguard/domainguard/internal/testwait"
	"github.com/domainguard/domainguard/schemas"
)

func verified(user, email string, at time.Time) schemas.EmailVerified {
	return schemas.EmailVerified{UserID: user, Email: email, VerifiedAt: at}
}

// runIntake runs the intake consumer until the test ends.
func (e *env) runIntake(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.p.RunIntake(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("RunIntake: %v", err)
		}
	})
}

func (e *env) publishHost(t *testing.T, subject string, body []byte) {
	t.Helper()
	if _, err := e.js.Publish(context.Background(), e.topo.Namespace.Subject(subject), body); err != nil {
		t.Fatalf("publish %s: %v", subject, err)
	}
}

func (e *env) deadLetters(t *testing.T) []schemas.DeadLetter {
	t.Helper()
	ctx := context.Background()
	s, err := e.js.Stream(ctx, e.topo.Namespace.Stream(schemas.StreamDLQ))
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []schemas.DeadLetter
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		raw, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		var dl schemas.DeadLetter
		if err := json.Unmarshal(raw.Data, &dl); err != nil {
			t.Fatal(err)
		}
		out = append(out, dl)
	}
	return out
}

// Both event kinds in both encodings, malformed events, and an unrelated
// subject, through the real consumer.
func TestIntakeEndToEnd(t *testing.T) {
	e := newEnv(t, nil)
	e.runIntake(t)
	v1 := t0.Add(-48 * time.Hour)

	e.publishHost(t, schemas.SubjectEmailVerified, hostEvent(t, "ev-1", verified("u1", "Alice@Example.COM", v1)))
	e.publishHost(t, schemas.SubjectEmailVerified, hostEvent(t, "", verified("u2", "bob@mail.example.com", v1)))
	e.publishHost(t, schemas.SubjectEmailVerified, hostEvent(t, "", verified("u3", "carol@other.org", v1)))
	e.publishHost(t, schemas.SubjectEmailVerified, hostEvent(t, "ev-2", verified("u4", "dave@other.org", v1)))
	// malformed
	e.publishHost(t, schemas.SubjectEmailVerified, []byte(`{"user_id": "u5", "email": `))
	e.publishHost(t, schemas.SubjectEmailVerified, hostEvent(t, "ev-3", map[string]any{"user_id": "u6", "verified_at": v1}))
	e.publishHost(t, schemas.SubjectEmailVerified, hostEvent(t, "", verified("u7", "eve@com", v1)))
	e.publishHost(t, schemas.SubjectEmailVerified, hostEvent(t, "", verified("u8", "x@"+strings.Repeat("a", 70000)+".com", v1)))
	e.publishHost(t, schemas.SubjectEmailVerified, hostEvent(t, "", verified("u9", "frank@example.net", t0.Add(48*time.Hour))))
	e.publishHost(t, schemas.SubjectEmailRemoved, hostEvent(t, "", map[string]string{"user_id": "u10"}))
	// not ours
	e.publishHost(t, "accounts.user.created", []byte(`{"user_id": "u11"}`))

	testwait.For(t, 15*time.Second, "4 addresses and 6 dead letters", func() bool {
		return countRows(t, e.pool, `SELECT count(*) FROM emails`) == 4 && len(e.deadLetters(t)) == 6
	})
	if r, ok := readEmail(t, e.pool, "u1", "Alice@example.com"); !ok || r.domain != "example.com" || !r.verifiedAt.Equal(v1) {
		t.Errorf("u1 = %+v, %v", r, ok)
	}
	if r, ok := readEmail(t, e.pool, "u2", "bob@mail.example.com"); !ok || r.domain != "example.com" {
		t.Errorf("u2 = %+v, %v", r, ok)
	}
	// by stream sequence of the original (workers finish in any order)
	wantReasons := map[uint64]string{5: "not valid JSON", 6: "email is required", 7: "two labels", 8: "exceeds", 9: "future", 10: "email is required"}
	for _, dl := range e.deadLetters(t) {
		want := wantReasons[dl.Sequence]
		if want == "" || !strings.Contains(dl.Error, want) || dl.Stream != schemas.StreamAccounts || dl.Consumer != "producer-intake" {
			t.Errorf("dead letter of seq %d = %s %s %q, want reason containing %q", dl.Sequence, dl.Stream, dl.Consumer, dl.Error, want)
		}
		delete(wantReasons, dl.Sequence)
	}

	// One signup check per first-seen domain, even with two addresses on it.
	testwait.For(t, 15*time.Second, "signup checks", func() bool { return len(e.pendingChecks(t)) == 2 })
	pending := e.pendingChecks(t)
	if pending["example.com"] != 1 || pending["other.org"] != 1 {
		t.Errorf("pending checks %v, want one each for example.com and other.org", pending)
	}
	ev, req := e.pendingCheck(t, "example.com")
	if req.Reason != schemas.CheckSignup || req.Previous != nil || !req.RequestedAt.Equal(t0) || ev.Source != "domainguard/producer" ||
		ev.Type != "io.domainguard.domains.check" || ev.Subject != "example.com" {
		t.Errorf("signup check = %+v %+v", ev, req)
	}
	// ... and the domain is leased, not left due for the sweep to enqueue again.
	testwait.For(t, 15*time.Second, "lease", func() bool {
		d, _ := readDomain(t, e.pool, "other.org")
		return d.lastEnqueuedAt != nil
	})
	d, _ := readDomain(t, e.pool, "example.com")
	if want := t0.Add(e.p.cfg.CheckLease * 21 / 20); !d.nextCheckAt.Equal(want) || !d.lastEnqueuedAt.Equal(t0) {
		t.Errorf("example.com after signup check: %+v, want next check %s", d, want)
	}

	// Removal in both encodings.
	e.publishHost(t, schemas.SubjectEmailRemoved, hostEvent(t, "ev-4", schemas.EmailRemoved{UserID: "u1", Email: "Alice@EXAMPLE.com"}))
	e.publishHost(t, schemas.SubjectEmailRemoved, hostEvent(t, "", schemas.EmailRemoved{UserID: "u3", Email: "carol@other.org"}))
	testwait.For(t, 15*time.Second, "removals", func() bool { return countRows(t, e.pool, `SELECT count(*) FROM emails`) == 2 })
	if _, ok := readEmail(t, e.pool, "u2", "bob@mail.example.com"); !ok {
		t.Error("u2 removed too")
	}

	testwait.For(t, 15*time.Second, "metrics", func() bool {
		return testutil.ToFloat64(e.p.m.intakeAccepted) == 6 && testutil.ToFloat64(e.p.m.intakeIgnored) == 1
	})
	if got := testutil.ToFloat64(e.p.m.intakeDeadLettered); got != 6 {
		t.Errorf("dead-lettered counter %v, want 6", got)
	}
	if got := testutil.ToFloat64(e.p.m.signupChecks); got != 2 {
		t.Errorf("signup checks counter %v, want 2", got)
	}
	if n := countRows(t, e.pool, `SELECT COALESCE(sum(count), 0)::int FROM lookup_budget`); n != 2 {
		t.Errorf("budget counts %d signup checks, want 2", n)
	}
}

// Redelivery of the same message changes nothing a second time, even when
// the state moved on in between.
func TestIntakeRedelivery(t *testing.T) {
	for _, enc := range []string{"cloudevent", "bare"} {
		t.Run(enc, func(t *testing.T) {
			e := newEnv(t, nil)
			ctx := context.Background()
			ns := e.topo.Namespace
			id := func(s string) string {
				if enc == "bare" {
					return ""
				}
				return s
			}
			v1 := t0.Add(-time.Hour)
			add := &fakeMsg{subject: ns.Subject(schemas.SubjectEmailVerified), stream: "ACCOUNTS", seq: 1,
				data: hostEvent(t, id("v1"), verified("u1", "a@example.com", v1)), header: nats.Header{}}
			if s := e.deliver(ctx, add); s != broker.Acked {
				t.Fatalf("settled as %s, want acked", s)
			}
			// The enforcer unverifies the address.
			if _, err := e.pool.Exec(ctx, `UPDATE emails SET verified = false, unverified_at = $1, unverify_reason = 'domain_expired'`,
				t0); err != nil {
				t.Fatal(err)
			}
			add.delivered = 2
			if s := e.deliver(ctx, add); s != broker.Acked {
				t.Fatalf("settled as %s, want acked", s)
			}
			if r, _ := readEmail(t, e.pool, "u1", "a@example.com"); r.verified {
				t.Error("redelivered verification re-verified an address the enforcer unverified")
			}

			remove := &fakeMsg{subject: ns.Subject(schemas.SubjectEmailRemoved), stream: "ACCOUNTS", seq: 2,
				data: hostEvent(t, id("r1"), schemas.EmailRemoved{UserID: "u1", Email: "a@example.com"}), header: nats.Header{}}
			if s := e.deliver(ctx, remove); s != broker.Acked {
				t.Fatalf("settled as %s, want acked", s)
			}
			// Re-added after the removal: a newer event (removals leave a
			// tombstone that older verifications do not pass).
			readdAt := t0.Add(time.Minute)
			readd := &fakeMsg{subject: ns.Subject(schemas.SubjectEmailVerified), stream: "ACCOUNTS", seq: 3,
				data: hostEventAt(t, id("v2"), readdAt, verified("u1", "a@example.com", readdAt)), header: nats.Header{}}
			if s := e.deliver(ctx, readd); s != broker.Acked {
				t.Fatalf("settled as %s, want acked", s)
			}
			remove.delivered = 2
			if s := e.deliver(ctx, remove); s != broker.Acked {
				t.Fatalf("settled as %s, want acked", s)
			}
			if r, ok := readEmail(t, e.pool, "u1", "a@example.com"); !ok || !r.verified || !r.verifiedAt.Equal(readdAt) {
				t.Errorf("after redelivered removal: %+v, %v; want the re-added address", r, ok)
			}
			for _, m := range []*fakeMsg{add, remove, readd} {
				if n := m.acks.Load(); n != int32(m.delivered) && !(m.delivered == 0 && n == 1) {
					t.Errorf("message %d acked %d times over %d deliveries", m.seq, n, m.delivered)
				}
			}
			if got := testutil.ToFloat64(e.p.m.intakeDuplicates); got != 2 {
				t.Errorf("duplicates %v, want 2", got)
			}
			if n := countRows(t, e.pool, `SELECT count(*) FROM processed_messages WHERE consumer = 'producer-intake'`); n != 3 {
				t.Errorf("%d processed messages, want 3", n)
			}
			if p := e.pendingChecks(t); len(p) != 1 || p["example.com"] != 1 {
				t.Errorf("pending checks %v, want exactly one for example.com", p)
			}
		})
	}
}

// The host re-verifying an address: a newer verified_at wins, also after
// domainguard unverified it; an older one is stale.
func TestIntakeReverification(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	subj := e.topo.Namespace.Subject(schemas.SubjectEmailVerified)
	deliver := func(seq uint64, at time.Time) {
		t.Helper()
		m := &fakeMsg{subject: subj, stream: "ACCOUNTS", seq: seq, header: nats.Header{},
			data: hostEvent(t, "", verified("u1", "a@example.com", at))}
		if s := e.deliver(ctx, m); s != broker.Acked {
			t.Fatalf("settled as %s, want acked", s)
		}
	}
	deliver(1, t0.Add(-10*time.Hour))
	deliver(2, t0.Add(-5*time.Hour))
	if r, _ := readEmail(t, e.pool, "u1", "a@example.com"); !r.verifiedAt.Equal(t0.Add(-5 * time.Hour)) {
		t.Errorf("newer verification not applied: %+v", r)
	}
	deliver(3, t0.Add(-8*time.Hour)) // late, older event
	if r, _ := readEmail(t, e.pool, "u1", "a@example.com"); !r.verifiedAt.Equal(t0.Add(-5 * time.Hour)) {
		t.Errorf("older verification applied: %+v", r)
	}
	if _, err := e.pool.Exec(ctx, `UPDATE emails SET verified = false, unverified_at = $1, unverify_reason = 'domain_released'`,
		t0.Add(-2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	deliver(4, t0.Add(-3*time.Hour)) // newer than verified_at, older than the unverification
	if r, _ := readEmail(t, e.pool, "u1", "a@example.com"); r.verified {
		t.Error("a verification older than the unverification re-verified the address")
	}
	deliver(5, t0.Add(-time.Hour))
	var reason *string
	r, _ := readEmail(t, e.pool, "u1", "a@example.com")
	if err := e.pool.QueryRow(ctx, `SELECT unverify_reason FROM emails`).Scan(&reason); err != nil {
		t.Fatal(err)
	}
	if !r.verified || !r.verifiedAt.Equal(t0.Add(-time.Hour)) || reason != nil {
		t.Errorf("host re-verification: %+v reason %v; want verified at t0-1h, reason cleared", r, reason)
	}
}

// 20 addresses on one new domain, handled concurrently, give one check.
func TestIntakeOneCheckPerDomain(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.IntakeWorkers = 8 })
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := &fakeMsg{subject: e.topo.Namespace.Subject(schemas.SubjectEmailVerified), stream: "ACCOUNTS",
				seq: uint64(i + 1), header: nats.Header{},
				data: hostEvent(t, fmt.Sprintf("ev-%d", i), verified(fmt.Sprintf("u%d", i), fmt.Sprintf("user%d@Shared.example", i), t0))}
			if s := e.deliver(ctx, m); s != broker.Acked {
				t.Errorf("settled as %s, want acked", s)
			}
		}()
	}
	wg.Wait()
	if n := countRows(t, e.pool, `SELECT count(*) FROM emails WHERE domain = 'shared.example'`); n != 20 {
		t.Fatalf("%d addresses stored, want 20", n)
	}
	if p := e.pendingChecks(t); len(p) != 1 || p["shared.example"] != 1 {
		t.Errorf("pending checks %v, want one for shared.example", p)
	}
	if got := testutil.ToFloat64(e.p.m.signupChecks); got != 1 {
		t.Errorf("signup checks %v, want 1", got)
	}
	// The sweep sees nothing due: the domain is leased.
	res, err := e.p.Sweep(ctx, nil)
	if err != nil || res.Due != 0 || res.Enqueued != 0 {
		t.Errorf("sweep after signup: %+v, %v; want nothing due", res, err)
	}
}

// A transient failure is left for redelivery; on the last delivery the
// message is dead-lettered instead of retried forever.
func TestIntakeTransientFailure(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	if _, err := e.pool.Exec(ctx, `ALTER TABLE emails RENAME TO emails_gone`); err != nil {
		t.Fatal(err)
	}
	m := &fakeMsg{subject: e.topo.Namespace.Subject(schemas.SubjectEmailVerified), stream: "ACCOUNTS", seq: 1,
		header: nats.Header{}, data: hostEvent(t, "", verified("u1", "a@example.com", t0))}
	m.delivered = 1
	if s := e.deliver(ctx, m); s != broker.Redelivering || m.acks.Load() != 0 || m.naks.Load() != 1 {
		t.Fatalf("first delivery with the table gone: %s, acks %d, naks %d; want redelivering, no ack, one nak", s, m.acks.Load(), m.naks.Load())
	}
	m.delivered = uint64(e.topo.EventMaxDeliver)
	if s := e.deliver(ctx, m); s != broker.DeadLettered {
		t.Fatalf("last delivery: %s, want dead-lettered", s)
	}
	if m.acks.Load() != 1 || len(e.deadLetters(t)) != 1 {
		t.Errorf("last delivery: %d acks, %d dead letters; want both 1", m.acks.Load(), len(e.deadLetters(t)))
	}
	if got := testutil.ToFloat64(e.p.m.intakeErrors); got != 1 {
		t.Errorf("intake errors %v, want 1", got)
	}
}

var _ jetstream.Msg = (*fakeMsg)(nil)

// A removal leaves a tombstone: a verification not newer than it (a late
// or re-sent event) does not bring the address back, a newer one does, and
// a removal older than the address's latest verification is not applied.
// sender returns a function that delivers one host event (a CloudEvent
// with id and time at) to intake, each at the next stream position, and
// fails the test unless it is acked.
func (e *env) sender(t *testing.T) func(subject, id string, at time.Time, payload any) {
	seq := uint64(0)
	return func(subject, id string, at time.Time, payload any) {
		t.Helper()
		seq++
		m := &fakeMsg{subject: e.topo.Namespace.Subject(subject), stream: "ACCOUNTS", seq: seq, data: hostEventAt(t, id, at, payload), header: nats.Header{}}
		if s := e.deliver(context.Background(), m); s != broker.Acked {
			t.Fatalf("settled as %s, want acked", s)
		}
	}
}

func TestIntakeRemovalTombstone(t *testing.T) {
	e := newEnv(t, nil)
	send := e.sender(t)
	present := func() bool {
		_, ok := readEmail(t, e.pool, "u1", "a@example.com")
		return ok
	}
	removedAt := t0.Add(-time.Hour)
	send(schemas.SubjectEmailRemoved, "r1", removedAt, schemas.EmailRemoved{UserID: "u1", Email: "a@example.com"})
	send(schemas.SubjectEmailVerified, "v-late", removedAt.Add(-time.Second), verified("u1", "a@example.com", removedAt.Add(-time.Minute)))
	if present() {
		t.Fatal("a verification older than the removal brought the address back")
	}
	send(schemas.SubjectEmailVerified, "v-same", removedAt, verified("u1", "a@example.com", removedAt))
	if present() {
		t.Fatal("a verification as old as the removal brought the address back")
	}
	send(schemas.SubjectEmailVerified, "v-new", removedAt.Add(time.Second), verified("u1", "a@example.com", removedAt.Add(time.Second)))
	if !present() {
		t.Fatal("a verification newer than the removal did not add the address")
	}
	send(schemas.SubjectEmailRemoved, "r-old", removedAt.Add(time.Millisecond), schemas.EmailRemoved{UserID: "u1", Email: "a@example.com"})
	if !present() {
		t.Fatal("a removal older than the latest verification deleted the address")
	}
	send(schemas.SubjectEmailRemoved, "r-new", removedAt.Add(time.Minute), schemas.EmailRemoved{UserID: "u1", Email: "a@example.com"})
	if present() {
		t.Fatal("a newer removal did not delete the address")
	}
}

// A binary-mode CloudEvent (attributes in ce-* headers, the bare payload
// in the body) is de-duplicated by its ce-id, like the structured envelope's
// id: the same event at two stream positions is applied once, and the same
// event sent structured is the same event.
func TestIntakeBinaryModeCEID(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	subject := e.topo.Namespace.Subject(schemas.SubjectEmailVerified)
	body := hostEvent(t, "", verified("u1", "a@example.com", t0.Add(-time.Hour)))
	header := func(id string) nats.Header {
		return nats.Header{"ce-specversion": {"1.0"}, "ce-id": {id}, "ce-source": {"host/test"}, "ce-type": {"com.example.email"}}
	}
	msgs := []*fakeMsg{
		{subject: subject, stream: "ACCOUNTS", seq: 1, data: body, header: header("ev-1")},
		{subject: subject, stream: "ACCOUNTS", seq: 2, data: body, header: header("ev-1")},                                              // resent: duplicate
		{subject: subject, stream: "ACCOUNTS", seq: 3, data: hostEvent(t, "ev-1", verified("u1", "a@example.com", t0.Add(-time.Hour)))}, // structured, same id
		{subject: subject, stream: "ACCOUNTS", seq: 4, data: body, header: header("ev-2")},                                              // another event
	}
	for _, m := range msgs {
		if m.header == nil {
			m.header = nats.Header{}
		}
		if s := e.deliver(ctx, m); s != broker.Acked {
			t.Fatalf("settled as %s, want acked", s)
		}
	}
	if got := testutil.ToFloat64(e.p.m.intakeDuplicates); got != 2 {
		t.Errorf("duplicates %v, want 2 (the resent binary event and its structured twin)", got)
	}
	var ids []string
	rows, err := e.pool.Query(ctx, `SELECT message_id FROM processed_messages WHERE consumer = 'producer-intake' ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if strings.Join(ids, ",") != "ce:host/test ev-1,ce:host/test ev-2" {
		t.Errorf("processed message ids %q", ids)
	}
}
