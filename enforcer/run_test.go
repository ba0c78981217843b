package enforcer

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/domainguard/domainguard/internal/broker"
	"github.com/domainguard/domainguard/internal/deadletters"
	"github.com/domainguard/domainguard/internal/testnats"
	"github.com/domainguard/domainguard/internal/testwait"
	"github.com/domainguard/domainguard/lifecycle"
	"github.com/domainguard/domainguard/schemas"
)

// publishChanged publishes a domains.changed event and returns its id.
func publishChanged(t testing.TB, ctx context.Context, js jetstream.JetStream, topo broker.Topology, ch schemas.DomainChanged) string {
	t.Helper()
	ev, err := schemas.NewEvent("test/checker", "domains.changed", ch.Domain, ch.Evidence.ObservedAt, ch)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := broker.PublishEvent(ctx, js, topo.Namespace.ChangedSubject(ch.Domain), ev); err != nil {
		t.Fatal(err)
	}
	return ev.ID
}

func publishChecked(t testing.TB, ctx context.Context, js jetstream.JetStream, topo broker.Topology, hb schemas.DomainChecked) {
	t.Helper()
	ev, err := schemas.NewEvent("test/checker", "domains.checked", hb.Domain, hb.ObservedAt, hb)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := broker.PublishEvent(ctx, js, topo.Namespace.CheckedSubject(hb.Domain), ev); err != nil {
		t.Fatal(err)
	}
}

// auditMessages reads every message of the AUDIT stream: count per
// Nats-Msg-Id and per subject.
func auditMessages(t testing.TB, ctx context.Context, js jetstream.JetStream, topo broker.Topology) (byID map[string]int, bySubject map[string]int) {
	t.Helper()
	stream, err := js.Stream(ctx, topo.Namespace.Stream(schemas.StreamAudit))
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byID, bySubject = map[string]int{}, map[string]int{}
	total := int(info.State.Msgs)
	if total == 0 {
		return byID, bySubject
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for got := 0; got < total; {
		batch, err := cons.Fetch(min(total-got, 500), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			byID[m.Headers().Get(schemas.HeaderMsgID)]++
			bySubject[topo.Namespace.Strip(m.Subject())]++
			n++
		}
		if n == 0 {
			t.Fatalf("audit stream: read %d of %d messages", got, total)
		}
		got += n
	}
	return byID, bySubject
}

func TestRunConsumesEnforcesAndRelays(t *testing.T) {
	f := newFixture(t, nil)
	js, _, topo := sharedNATS(t)
	e, err := New(Config{Pool: f.pool, JS: js, Topology: topo, Clock: f.clock, Logger: quietLogger(t), RelayInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("Run did not return after cancel")
		}
	}()

	f.addEmails("e2e.com", 3, t0.Add(-48*time.Hour))
	f.activate("e2e.com", t0.Add(-time.Hour))
	f.activate("beat.com", t0.Add(-48*time.Hour))
	id := publishChanged(t, ctx, js, topo, schemas.DomainChanged{Domain: "e2e.com", PreviousPhase: lifecycle.PhaseActive, Phase: lifecycle.PhaseReleased, Evidence: evidence(t0, reg, "", nil)})
	// The same CloudEvent again, as a checker that crashed before its ack
	// would publish it (outside JetStream's de-duplication, via a new
	// Nats-Msg-Id, to reach the enforcer twice).
	ev, _ := schemas.NewEventWithID(id, "test/checker", "domains.changed", "e2e.com", t0,
		schemas.DomainChanged{Domain: "e2e.com", PreviousPhase: lifecycle.PhaseActive, Phase: lifecycle.PhaseReleased, Evidence: evidence(t0, reg, "", nil)})
	raw, _ := ev.Marshal()
	if _, err := js.Publish(ctx, topo.Namespace.ChangedSubject("e2e.com"), raw, jetstream.WithMsgID("other-"+id)); err != nil {
		t.Fatal(err)
	}
	publishChecked(t, ctx, js, topo, schemas.DomainChecked{Domain: "beat.com", Phase: lifecycle.PhaseActive, ObservedAt: t0})
	if _, err := js.Publish(ctx, topo.Namespace.ChangedSubject("bad.com"), []byte("not json")); err != nil {
		t.Fatal(err)
	}

	// released: audit.domain.changed and 3 audit.email.unverified (the
	// activations emit nothing).
	testwait.For(t, 30*time.Second, "4 audit events on AUDIT", func() bool {
		_, subj := auditMessages(t, ctx, js, topo)
		return subj[schemas.SubjectEmailUnverified] == 3 && subj[schemas.SubjectDomainChanged] == 1
	})
	testwait.For(t, 30*time.Second, "the heartbeat", func() bool {
		return f.count(`SELECT count(*) FROM domains WHERE name = 'beat.com' AND last_checked_at = $1`, t0) == 1
	})
	testwait.For(t, 30*time.Second, "the dead letter", func() bool {
		s, err := js.Stream(ctx, topo.Namespace.Stream(schemas.StreamDLQ))
		if err != nil {
			return false
		}
		info, err := s.Info(ctx)
		return err == nil && info.State.Msgs == 1
	})
	byID, _ := auditMessages(t, ctx, js, topo)
	rows, err := f.pool.Query(ctx, `SELECT id::text FROM audit_log`)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for rows.Next() {
		var s string
		_ = rows.Scan(&s)
		ids = append(ids, s)
	}
	rows.Close()
	if len(ids) != len(byID) {
		t.Errorf("audit_log has %d rows, AUDIT %d distinct ids", len(ids), len(byID))
	}
	for _, id := range ids {
		if byID[id] != 1 {
			t.Errorf("audit event %s published %d times", id, byID[id])
		}
	}
	// Published rows are marked sent right after their acks.
	testwait.For(t, 10*time.Second, "the outbox to be marked sent", func() bool {
		return f.count(`SELECT count(*) FROM outbox WHERE sent_at IS NULL`) == 0
	})
	if n := f.count(`SELECT count(*) FROM processed_messages WHERE message_id = $1`, id); n != 1 {
		t.Errorf("processed %d times", n)
	}
}

// sharedNATS is the system server under a fresh namespace, with short ack
// waits so redeliveries happen within a test.
func sharedNATS(t testing.TB) (jetstream.JetStream, *nats.Conn, broker.Topology) {
	return testnats.SharedWith(t, func(topo *broker.Topology) { topo.EventAckWait = 3 * time.Second })
}

// TestReplicasShareTheWork runs two enforcers (consumer and relay each) on
// one database and stream: every address is unverified once and every audit
// event published once.
func TestReplicasShareTheWork(t *testing.T) {
	const domains = 300
	f := newFixture(t, nil)
	js, _, topo := sharedNATS(t)
	ctx, cancel := context.WithCancel(context.Background())
	var (
		runs      []chan error
		enforcers []*Enforcer
	)
	for range 2 {
		e, err := New(Config{Pool: f.pool, JS: js, Topology: topo, Logger: quietLogger(t), BreakerPct: 100,
			Batch: 10, RelayBatch: 20, RelayInterval: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		enforcers = append(enforcers, e)
		done := make(chan error, 1)
		go func() { done <- e.Run(ctx) }()
		runs = append(runs, done)
	}
	defer func() {
		cancel()
		for _, done := range runs {
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		}
	}()
	obsAt := time.Now().UTC().Add(-time.Minute)
	f.exec(`INSERT INTO emails (user_id, email, domain, verified, verified_at)
SELECT 'user-' || i, 'u@rep' || i || '.com', 'rep' || i || '.com', true, $1 FROM generate_series(1, $2) i`, obsAt.Add(-time.Hour), domains)
	for i := 1; i <= domains; i++ {
		d := "rep" + itoa(i) + ".com"
		publishChanged(t, ctx, js, topo, schemas.DomainChanged{Domain: d, PreviousPhase: lifecycle.PhaseActive, Phase: lifecycle.PhasePendingDelete,
			Evidence: lifecycle.Evidence{Provider: "rdap", Statuses: []string{"pending delete"}, ObservedAt: obsAt}})
	}
	testwait.For(t, 60*time.Second, "all addresses unverified and relayed", func() bool {
		return f.count(`SELECT count(*) FROM emails WHERE verified`) == 0 && f.count(`SELECT count(*) FROM outbox WHERE sent_at IS NULL`) == 0
	})
	byID, bySubject := auditMessages(t, ctx, js, topo)
	if n := f.count(`SELECT count(*) FROM audit_log`); n != len(byID) || bySubject[schemas.SubjectEmailUnverified] != domains {
		t.Errorf("audit_log %d rows, AUDIT %d ids, by subject %v", n, len(byID), bySubject)
	}
	for id, n := range byID {
		if n != 1 {
			t.Errorf("%s published %d times", id, n)
		}
	}
	// SKIP LOCKED: the relays never published a row twice (JetStream's
	// de-duplication would hide it on the stream).
	var published float64
	for _, e := range enforcers {
		published += testutil.ToFloat64(e.relay.metrics.published)
	}
	if int(published) != len(byID) {
		t.Errorf("relays published %v times for %d events", published, len(byID))
	}
}

// An observation stamped more than lifecycle.MaxClockSkew ahead (#14 item
// 5) is dead-lettered with a reason naming its observed_at and how far
// ahead it is, and changes nothing: applied, it would make the real
// redemption that follows look stale and switch enforcement off. One
// exactly MaxClockSkew ahead is applied. The skew gauge reports each
// observation's observed_at − now (the enforcer's clock stands at t0).
func TestFutureObservationIsDeadLettered(t *testing.T) {
	f := newFixture(t, nil)
	js, _, topo := sharedNATS(t)
	metricsReg := prometheus.NewRegistry()
	e, err := New(Config{Pool: f.pool, JS: js, Topology: topo, Clock: f.clock, Logger: quietLogger(t), RelayInterval: 200 * time.Millisecond,
		Registerer: metricsReg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	dlq, err := deadletters.Stream(ctx, js, topo.Namespace)
	if err != nil {
		t.Fatal(err)
	}
	unverified := func(domain string) int {
		return f.count(`SELECT count(*) FROM emails WHERE domain = $1 AND NOT verified`, domain)
	}
	for _, d := range []string{"future.com", "edge.com", "behind.com"} {
		f.addEmails(d, 2, t0.Add(-48*time.Hour))
		f.activate(d, t0.Add(-time.Hour))
	}

	tests := []struct {
		name      string
		domain    string
		ahead     time.Duration
		heartbeat bool // a domains.checked heartbeat, else a change to redemption
		// wantReason, if set, is in the error of the dead letter expected.
		wantReason string
	}{
		{name: "change one second past the allowed skew", domain: "future.com", ahead: lifecycle.MaxClockSkew + time.Second,
			wantReason: "observed_at 2026-03-01T12:05:01Z is 5m1s in the future (more than the 5m0s clock skew allowed)"},
		{name: "heartbeat thirty days ahead", domain: "future.com", ahead: 30 * 24 * time.Hour, heartbeat: true,
			wantReason: "observed_at 2026-03-31T12:00:00Z is 720h0m0s in the future (more than the 5m0s clock skew allowed)"},
		{name: "change exactly at the allowed skew", domain: "edge.com", ahead: lifecycle.MaxClockSkew},
		{name: "change behind the enforcer's clock", domain: "behind.com", ahead: -90 * time.Second},
	}
	letters := 0
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			at := t0.Add(tc.ahead)
			if tc.heartbeat {
				publishChecked(t, ctx, js, topo, schemas.DomainChecked{Domain: tc.domain, Phase: lifecycle.PhaseActive, ObservedAt: at})
			} else {
				publishChanged(t, ctx, js, topo, schemas.DomainChanged{Domain: tc.domain, PreviousPhase: lifecycle.PhaseActive,
					Phase: lifecycle.PhaseRedemption, Evidence: evidence(at, reg, "H-"+tc.domain, nil)})
			}
			if tc.wantReason == "" {
				testwait.For(t, 30*time.Second, "the redemption applied", func() bool { return unverified(tc.domain) == 2 })
			} else {
				letters++
				testwait.For(t, 30*time.Second, "the observation dead-lettered", func() bool {
					n, err := deadletters.Depth(ctx, dlq)
					return err == nil && n == uint64(letters)
				})
				list, err := deadletters.List(ctx, dlq, 100)
				if err != nil {
					t.Fatal(err)
				}
				l := list[len(list)-1].Letter
				subject := schemas.SubjectChangedPrefix + tc.domain
				if tc.heartbeat {
					subject = schemas.SubjectCheckedPrefix + tc.domain
				}
				if l.Subject != subject || l.Stream != schemas.StreamDomainEvents {
					t.Errorf("dead letter from %s %s, want %s %s", l.Stream, l.Subject, schemas.StreamDomainEvents, subject)
				}
				if !strings.Contains(l.Error, tc.wantReason) {
					t.Errorf("dead letter reason %q, want it to contain %q", l.Error, tc.wantReason)
				}
				if got := unverified(tc.domain); got != 0 {
					t.Errorf("%d addresses unverified by a refused observation", got)
				}
			}
			if n, err := testutil.GatherAndCount(metricsReg, "domainguard_enforcer_observation_clock_skew_seconds"); err != nil || n != 1 {
				t.Errorf("clock skew metric exported as %d series (%v), want 1", n, err)
			}
			if got, want := testutil.ToFloat64(e.metrics.clockSkew), tc.ahead.Seconds(); got != want {
				t.Errorf("clock skew gauge = %g s, want %g", got, want)
			}
		})
	}

	publishChanged(t, ctx, js, topo, schemas.DomainChanged{Domain: "future.com", PreviousPhase: lifecycle.PhaseActive,
		Phase: lifecycle.PhaseRedemption, Evidence: evidence(t0, reg, "", nil)})
	testwait.For(t, 30*time.Second, "the real redemption to unverify both addresses", func() bool {
		return unverified("future.com") == 2
	})
	if n, err := deadletters.Depth(ctx, dlq); err != nil || n != uint64(letters) {
		t.Errorf("dlq holds %d letters (%v), want %d", n, err, letters)
	}
}
