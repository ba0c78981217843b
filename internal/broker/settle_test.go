package broker_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/domainguard/domainguard/internal/broker"
	"github.com/domainguard/domainguard/internal/testnats"
	"github.com/domainguard/domainguard/internal/testwait"
	"github.com/domainguard/domainguard/schemas"
)

// settleMsg records how a message was settled; only the methods the settle
// policy uses without dead-lettering are implemented.
type settleMsg struct {
	jetstream.Msg // nil: other methods panic
	delivered     uint64
	acks, dacks   int
	naks          []time.Duration // NakWithDelay's delay; 0 for Nak
}

func (m *settleMsg) Subject() string { return "domains.check.example.com" }
func (m *settleMsg) Ack() error      { m.acks++; return nil }
func (m *settleMsg) DoubleAck(context.Context) error {
	m.dacks++
	return nil
}
func (m *settleMsg) Nak() error                         { m.naks = append(m.naks, 0); return nil }
func (m *settleMsg) NakWithDelay(d time.Duration) error { m.naks = append(m.naks, d); return nil }
func (m *settleMsg) Metadata() (*jetstream.MsgMetadata, error) {
	return &jetstream.MsgMetadata{Consumer: broker.ConsumerChecker, NumDelivered: m.delivered}, nil
}

// TestSettlePolicy: every outcome settles the same way in every role.
func TestSettlePolicy(t *testing.T) {
	var topo broker.Topology
	o := broker.ConsumeOptions{Stream: schemas.StreamDomainChecks, Durable: broker.ConsumerChecker, MaxDeliver: 100,
		NakDelay: time.Second, Logger: testnats.Logger(t)}
	cause := errors.New("provider unavailable")
	tests := []struct {
		name       string
		out        broker.Outcome
		delivered  uint64
		confirm    bool
		want       broker.Settlement
		acks, dack int
		naks       []time.Duration
	}{
		{"done", broker.Done(), 1, false, broker.Acked, 1, 0, nil},
		{"done, confirmed", broker.Done(), 1, true, broker.Acked, 0, 1, nil},
		{"nil error is done", broker.OutcomeOf(nil), 3, false, broker.Acked, 1, 0, nil},
		{"retry, first delivery", broker.Retry(cause), 1, false, broker.Redelivering, 0, 0, []time.Duration{time.Second}},
		{"retry doubles per delivery", broker.Retry(cause), 4, false, broker.Redelivering, 0, 0, []time.Duration{8 * time.Second}},
		{"retry delay is capped", broker.Retry(cause), 9, false, broker.Redelivering, 0, 0, []time.Duration{time.Minute}},
		{"transient error is retry", broker.OutcomeOf(cause), 2, false, broker.Redelivering, 0, 0, []time.Duration{2 * time.Second}},
		{"retry after a known delay", broker.RetryAfter(7*time.Second, cause), 1, false, broker.Redelivering, 0, 0, []time.Duration{7 * time.Second}},
		{"retry after no delay grows", broker.RetryAfter(0, cause), 2, false, broker.Redelivering, 0, 0, []time.Duration{2 * time.Second}},
		{"release", broker.Release(cause), 5, false, broker.Redelivering, 0, 0, []time.Duration{0}},
	}
	for _, tt := range tests {
		m := &settleMsg{delivered: tt.delivered}
		o := o
		o.ConfirmAck = tt.confirm
		var observed []broker.Settlement
		o.OnSettled = func(_ jetstream.Msg, s broker.Settlement, _ broker.Outcome) { observed = append(observed, s) }
		got := topo.Settle(context.Background(), nil, o, m, tt.out)
		if got != tt.want || m.acks != tt.acks || m.dacks != tt.dack || fmt.Sprint(m.naks) != fmt.Sprint(tt.naks) {
			t.Errorf("%s: %s, %d acks, %d double acks, naks %v; want %s, %d, %d, %v",
				tt.name, got, m.acks, m.dacks, m.naks, tt.want, tt.acks, tt.dack, tt.naks)
		}
		if len(observed) != 1 || observed[0] != got {
			t.Errorf("%s: OnSettled saw %v, want [%s]", tt.name, observed, got)
		}
	}
}

// TestSettleDeadLetters: Permanent dead-letters at once with its reason,
// Retry on the last delivery too, Release never.
func TestSettleDeadLetters(t *testing.T) {
	js, _, topo := testnats.SharedWith(t, func(tp *broker.Topology) { tp.CheckMaxDeliver = 2 })
	ctx := testContext(t)
	c, err := topo.Consumer(ctx, js, schemas.StreamDomainChecks, broker.ConsumerChecker)
	if err != nil {
		t.Fatal(err)
	}
	o := broker.ConsumeOptions{Stream: schemas.StreamDomainChecks, Durable: broker.ConsumerChecker, NakDelay: 10 * time.Millisecond,
		Logger: testnats.Logger(t)}

	publish(t, js, topo.Namespace.CheckSubject("bad.example"), `{}`)
	m := fetchOne(t, c)
	if s := topo.Settle(ctx, js, o, m, broker.OutcomeOf(fmt.Errorf("%w: no domain", schemas.ErrInvalid))); s != broker.DeadLettered {
		t.Fatalf("invalid input settled as %s, want dead-lettered", s)
	}
	if dl := lastDeadLetter(t, js, topo, schemas.StreamDomainChecks); dl.Error != "invalid message: no domain" || dl.Deliveries != 1 {
		t.Errorf("dead letter %+v, want the reason after 1 delivery", dl)
	}

	publish(t, js, topo.Namespace.CheckSubject("flaky.example"), `{}`)
	m = fetchOne(t, c)
	if s := topo.Settle(ctx, js, o, m, broker.Release(errors.New("stopping"))); s != broker.Redelivering {
		t.Fatalf("release settled as %s", s)
	}
	m = fetchOne(t, c) // second and last delivery
	if s := topo.Settle(ctx, js, o, m, broker.Retry(errors.New("still failing"))); s != broker.DeadLettered {
		t.Fatalf("retry on the last delivery settled as %s, want dead-lettered", s)
	}
	if dl := lastDeadLetter(t, js, topo, schemas.StreamDomainChecks); dl.Error != "still failing" || dl.Deliveries != 2 {
		t.Errorf("dead letter %+v, want the retry's error after 2 deliveries", dl)
	}
}

// TestRunBatchRetriesUnsettled: what a failing batch handler left
// unsettled is redelivered; what it settled is not.
func TestRunBatchRetriesUnsettled(t *testing.T) {
	js, _, topo := testnats.Shared(t)
	for i := range 3 {
		publish(t, js, topo.Namespace.CheckedSubject(fmt.Sprintf("d%d.example", i)), `{}`)
	}
	var mu sync.Mutex
	deliveries := map[string]int{}
	var calls atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- topo.RunBatch(ctx, js, broker.ConsumeOptions{Stream: schemas.StreamDomainEvents, Durable: broker.ConsumerEnforcer, Batch: 3,
			MaxWait: 300 * time.Millisecond, NakDelay: 10 * time.Millisecond, Logger: testnats.Logger(t)},
			func(ctx context.Context, msgs []jetstream.Msg, settle func(jetstream.Msg, broker.Outcome)) error {
				mu.Lock()
				for _, m := range msgs {
					deliveries[m.Subject()]++
				}
				mu.Unlock()
				if calls.Add(1) == 1 {
					settle(msgs[0], broker.Done())
					return errors.New("database gone")
				}
				for _, m := range msgs {
					settle(m, broker.Done())
				}
				return nil
			})
	}()
	testwait.For(t, 10*time.Second, "the unsettled messages redelivered", func() bool {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, d := range deliveries {
			n += d
		}
		return n == 5
	})
	time.Sleep(200 * time.Millisecond) // a wrong redelivery of the settled one would come now
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	twice := 0
	for _, d := range deliveries {
		if d == 2 {
			twice++
		}
	}
	if len(deliveries) != 3 || twice != 2 {
		t.Errorf("deliveries %v, want two of the three messages delivered twice", deliveries)
	}
}
