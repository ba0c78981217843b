package enforcer

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/domainguard/domainguard/internal/testwait"
	"github.com/domainguard/domainguard/lifecycle"
	"github.com/domainguard/domainguard/schemas"
)

// publishedIDs records the Nats-Msg-Id of every message published under
// topo's audit subjects, duplicates included (a core subscription sees
// each publish, also those JetStream then drops as duplicates).
type publishedIDs struct {
	mu  sync.Mutex
	ids []string
}

func subscribePublished(t *testing.T, nc *nats.Conn, subject string) *publishedIDs {
	t.Helper()
	p := &publishedIDs{}
	sub, err := nc.Subscribe(subject, func(m *nats.Msg) {
		p.mu.Lock()
		p.ids = append(p.ids, m.Header.Get(schemas.HeaderMsgID))
		p.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return p
}

func (p *publishedIDs) get() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.ids)
}

// lapseWithBatches enforces the activation and the lapse of two domains
// with 3 addresses each while f.store publishes directly (d), and returns
// the event ids the outbox batch rows list, batch by batch, oldest batch
// first.
func lapseWithBatches(t *testing.T, f *fixture, d *directPublisher) []string {
	t.Helper()
	f.store.direct.Store(d)
	t.Cleanup(func() { f.store.direct.Store(nil) })
	for _, domain := range []string{"batched-1.com", "batched-2.com"} {
		f.addEmails(domain, 3, t0.Add(-48*time.Hour))
		f.activate(domain, t0.Add(-time.Hour))
		if out := f.observe(domain, lifecycle.PhaseActive, lifecycle.PhaseReleased, lifecycle.Evidence{Provider: "rdap", NotFound: true, ObservedAt: t0}); out.Unverified != 3 {
			t.Fatalf("lapse of %s: %+v", domain, out)
		}
	}
	rows, err := f.pool.Query(f.ctx, `SELECT payload FROM outbox WHERE subject = $1 ORDER BY created_at, id`, outboxBatchSubject)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var want []string
	batches := 0
	for rows.Next() {
		var payload []byte
		var ids []string
		if err := rows.Scan(&payload); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(payload, &ids); err != nil {
			t.Fatal(err)
		}
		want = append(want, ids...)
		batches++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	// One batch per enforcing statement that emitted events: the lapses
	// (an activation emits none).
	if batches != 2 || len(want) != f.count(`SELECT count(*) FROM audit_log`) {
		t.Fatalf("%d batch rows listing %d events; want 2 listing every audit row (%d)", batches, len(want), f.count(`SELECT count(*) FROM audit_log`))
	}
	if n := f.count(`SELECT count(*) FROM outbox WHERE sent_at IS NULL AND subject <> $1`, outboxBatchSubject); n != 0 {
		t.Fatalf("%d event rows unsent; a batch's rows are written marked sent", n)
	}
	return want
}

// An enforcer that committed outbox batches and stopped before publishing
// them (a crash) leaves the batch rows unsent: the relay leaves a young
// batch to the direct publisher, then publishes the listed events in
// their order, once, and marks the batch rows sent.
func TestRelayPublishesTheBatchesTheEnforcerDidNot(t *testing.T) {
	f := newFixture(t, nil)
	js, nc, topo := sharedNATS(t)
	got := subscribePublished(t, nc, topo.Namespace.Subject("audit.>"))
	stopped := newDirectPublisher(1)
	close(stopped.done) // no direct publisher takes the batches
	want := lapseWithBatches(t, f, stopped)

	waiting, err := NewRelay(Config{Pool: f.pool, JS: js, Topology: topo, Logger: quietLogger(t), RelayInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := waiting.PublishPending(f.ctx); err != nil || n != 0 {
		t.Fatalf("relay claimed %d rows (err %v) within the direct publisher's grace, want 0", n, err)
	}
	r, err := NewRelay(Config{Pool: f.pool, JS: js, Topology: topo, Logger: quietLogger(t), RelayInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * r.directGrace())
	if n, err := r.PublishPending(f.ctx); err != nil || n != 2 {
		t.Fatalf("relay claimed %d rows (err %v), want the 2 batch rows", n, err)
	}
	if n := f.count(`SELECT count(*) FROM outbox WHERE sent_at IS NULL`); n != 0 {
		t.Errorf("%d outbox rows unsent after the relay's round", n)
	}
	if n, err := r.PublishPending(f.ctx); err != nil || n != 0 {
		t.Fatalf("second round claimed %d rows (err %v), want 0", n, err)
	}
	testwait.For(t, 5*time.Second, "every listed event published", func() bool { return len(got.get()) >= len(want) })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if ids := got.get(); fmt.Sprint(ids) != fmt.Sprint(want) {
		t.Errorf("published %v, want each listed event once, in order %v", ids, want)
	}
}

// The direct publisher publishes a committed batch once and marks its row
// sent; the relay then has nothing to publish, and a batch whose row is
// already sent is not published again.
func TestDirectPublisherPublishesEachBatchOnce(t *testing.T) {
	f := newFixture(t, nil)
	js, nc, topo := sharedNATS(t)
	got := subscribePublished(t, nc, topo.Namespace.Subject("audit.>"))
	r, err := NewRelay(Config{Pool: f.pool, JS: js, Topology: topo, Logger: quietLogger(t), RelayInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(f.ctx)
	d := newDirectPublisher(1)
	go r.runDirect(ctx, d)
	defer func() {
		cancel()
		<-d.done
	}()
	want := lapseWithBatches(t, f, d)
	testwait.For(t, 5*time.Second, "the batch rows marked sent", func() bool {
		return f.count(`SELECT count(*) FROM outbox WHERE sent_at IS NULL`) == 0
	})
	testwait.For(t, 5*time.Second, "every event published", func() bool { return len(got.get()) >= len(want) })

	time.Sleep(3 * r.directGrace())
	if n, err := r.PublishPending(f.ctx); err != nil || n != 0 {
		t.Fatalf("relay claimed %d rows (err %v) after the direct publisher, want 0", n, err)
	}
	var batchID string
	if err := f.pool.QueryRow(f.ctx, `SELECT id::text FROM outbox WHERE subject = $1 LIMIT 1`, outboxBatchSubject).Scan(&batchID); err != nil {
		t.Fatal(err)
	}
	again := outboxBatch{id: batchID, events: []outboxEvent{{id: want[0], subject: schemas.SubjectDomainChanged, payload: []byte(`{}`)}}}
	if err := r.publishBatches(f.ctx, []outboxBatch{again}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if ids := got.get(); fmt.Sprint(ids) != fmt.Sprint(want) {
		t.Errorf("published %v, want each event once, in order %v", ids, want)
	}
}

// Pruning keeps the rows an unsent batch row lists (the relay may still
// have to publish them), whatever their sent_at says, and still prunes
// older sent rows.
func TestPruneKeepsWhatAnUnsentBatchLists(t *testing.T) {
	f := newFixture(t, nil)
	r := newRelay(f.store.cfg, f.store.metrics) // pruning needs no NATS
	old := schemas.DerivedID(t0, "prune", "old")
	listed := schemas.DerivedID(t0, "prune", "listed")
	// A batch row and its events share created_at (one statement).
	created := time.Now().Add(-30 * 24 * time.Hour)
	f.exec(`INSERT INTO outbox (id, subject, payload, created_at, sent_at) VALUES
  ($1, 'audit.domain.changed', '\x7b7d', $3::timestamptz - interval '1 day', now() - interval '10 days'),
  ($2, 'audit.email.unverified', '\x7b7d', $3, now() - interval '10 days')`, old, listed, created)
	f.exec(`INSERT INTO outbox (id, subject, payload, created_at) VALUES (gen_random_uuid(), $1, convert_to(json_build_array($2::text)::text, 'UTF8'), $3)`,
		outboxBatchSubject, listed, created)
	if err := r.Prune(f.ctx); err != nil {
		t.Fatal(err)
	}
	if n := f.count(`SELECT count(*) FROM outbox WHERE id = $1`, old); n != 0 {
		t.Errorf("the old sent row was not pruned")
	}
	if n := f.count(`SELECT count(*) FROM outbox WHERE id = $1`, listed); n != 1 {
		t.Errorf("the row an unsent batch lists was pruned")
	}
	if n := f.count(`SELECT count(*) FROM outbox WHERE subject = $1`, outboxBatchSubject); n != 1 {
		t.Errorf("the unsent batch row was pruned")
	}
}
