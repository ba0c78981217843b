package enforcer

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/domainguard/domainguard/schemas"
)

// The relay claims the next round while the previous one's acks are on
// their way: a full round stays in flight (claimed, published, not yet
// marked sent) until the next step, rows are published oldest first, a
// short round finishes at once, and the next round claims after the last
// row of a full one (the relay starts from the oldest row again after a
// short round).
func TestRelayOverlapsRoundsInOrder(t *testing.T) {
	f := newFixture(t, nil)
	js, nc, topo := sharedNATS(t)
	r, err := NewRelay(Config{Pool: f.pool, JS: js, Topology: topo, Logger: quietLogger(t), RelayBatch: 3, RelayInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu  sync.Mutex
		got []string
	)
	sub, err := nc.Subscribe(topo.Namespace.Subject("audit.>"), func(m *nats.Msg) {
		mu.Lock()
		got = append(got, m.Header.Get(schemas.HeaderMsgID))
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe() //nolint:errcheck
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range 7 {
		id := schemas.DerivedID(t0, "relay-order", fmt.Sprint(i))
		want = append(want, id)
		f.exec(`INSERT INTO outbox (id, subject, payload, created_at) VALUES ($1, $2, $3, $4)`,
			id, schemas.SubjectDomainChanged, []byte(`{}`), t0.Add(time.Duration(i)*time.Second))
	}
	unsent := func() int { return f.count(`SELECT count(*) FROM outbox WHERE sent_at IS NULL`) }

	// A row that commits late with an older created_at is behind the
	// cursor: it waits until the relay starts again from the oldest row.
	late := schemas.DerivedID(t0, "relay-order", "late")
	var inFlight *relayRound
	ctx := context.Background()
	for step, c := range []struct{ claimed, unsent int }{
		{3, 7}, // rows 0-2 in flight
		{3, 4}, // rows 3-5 in flight, 0-2 sent
		{1, 1}, // after row 5: row 6; it and rows 3-5 finished, the late row left
		{1, 0}, // from the oldest row again: the late row
		{0, 0},
	} {
		if step == 2 {
			f.exec(`INSERT INTO outbox (id, subject, payload, created_at) VALUES ($1, $2, $3, $4)`,
				late, schemas.SubjectDomainChanged, []byte(`{}`), t0.Add(-time.Hour))
		}
		n, err := r.relayStep(ctx, &inFlight)
		if err != nil || n != c.claimed || unsent() != c.unsent {
			t.Fatalf("step %d: claimed %d (want %d), unsent %d (want %d), err %v", step+1, n, c.claimed, unsent(), c.unsent, err)
		}
		if (inFlight != nil) != (c.claimed == 3) {
			t.Fatalf("step %d: in flight %v", step+1, inFlight != nil)
		}
	}
	want = append(want, late)
	waitFor(t, 5*time.Second, "8 audit events", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) >= 8
	})
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("published %v, want oldest first %v", got, want)
	}
}
