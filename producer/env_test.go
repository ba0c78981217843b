package producer

import (
	"context"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/domainguard/domainguard/internal/broker"
	"github.com/domainguard/domainguard/internal/clock"
	"github.com/domainguard/domainguard/internal/testdb"
	"github.com/domainguard/domainguard/internal/testnats"
	"github.com/domainguard/domainguard/schemas"
)

// env is one producer on a fresh database and a fresh NATS namespace.
type env struct {
	pool *pgxpool.Pool
	js   jetstream.JetStream
	nc   *nats.Conn
	topo broker.Topology
	clk  *clock.Stub
	p    *Producer
	cfg  Config
}

func newEnv(t testing.TB, adjust func(*Config)) *env {
	t.Helper()
	pool, _ := testdb.New(t)
	js, nc, topo := testnats.SharedWith(t, func(tp *broker.Topology) {
		tp.EventMaxDeliver = 3
	})
	e := &env{pool: pool, js: js, nc: nc, topo: topo, clk: clock.NewStub(t0)}
	e.cfg = Config{Pool: pool, JS: js, Topology: topo, Clock: e.clk, Logger: testnats.Logger(t),
		Jitter: func() float64 { return 0.5 }}
	if adjust != nil {
		adjust(&e.cfg)
	}
	e.p = e.newProducer(t)
	return e
}

// newProducer makes another producer (a replica) with the env's config.
func (e *env) newProducer(t testing.TB) *Producer {
	t.Helper()
	p, err := New(e.cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p
}

// pendingChecks maps each domain to its number of pending check messages.
func (e *env) pendingChecks(t testing.TB) map[string]uint64 {
	t.Helper()
	ctx := context.Background()
	s, err := e.js.Stream(ctx, e.topo.Namespace.Stream(schemas.StreamDomainChecks))
	if err != nil {
		t.Fatalf("checks stream: %v", err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(e.topo.Namespace.Subject(schemas.SubjectChecksAll)))
	if err != nil {
		t.Fatalf("checks stream info: %v", err)
	}
	out := make(map[string]uint64, len(info.State.Subjects))
	for subj, n := range info.State.Subjects {
		out[strings.TrimPrefix(e.topo.Namespace.Strip(subj), schemas.SubjectCheckPrefix)] = n
	}
	if uint64(len(out)) != info.State.Msgs && info.State.Msgs > 0 {
		// every subject holds one message at most; Msgs is their sum
		var sum uint64
		for _, n := range out {
			sum += n
		}
		if sum != info.State.Msgs {
			t.Fatalf("checks stream has %d messages, subjects sum to %d", info.State.Msgs, sum)
		}
	}
	return out
}

// pendingCheck returns the pending check request for domain.
func (e *env) pendingCheck(t testing.TB, domain string) (schemas.Event, schemas.CheckRequest) {
	t.Helper()
	ctx := context.Background()
	s, err := e.js.Stream(ctx, e.topo.Namespace.Stream(schemas.StreamDomainChecks))
	if err != nil {
		t.Fatalf("checks stream: %v", err)
	}
	raw, err := s.GetLastMsgForSubject(ctx, e.topo.Namespace.CheckSubject(domain))
	if err != nil {
		t.Fatalf("pending check of %s: %v", domain, err)
	}
	ev, req, err := schemas.Decode[schemas.CheckRequest](raw.Data)
	if err != nil {
		t.Fatalf("decode check of %s: %v", domain, err)
	}
	if got := raw.Header.Get(schemas.HeaderMsgID); got != ev.ID {
		t.Errorf("check of %s: Nats-Msg-Id %q, event id %q", domain, got, ev.ID)
	}
	return ev, req
}

// ackAllChecks plays the checker: it consumes and acks every pending check
// (removing them from the work queue) and returns how many there were.
func (e *env) ackAllChecks(t testing.TB) int {
	t.Helper()
	ctx := context.Background()
	c, err := e.topo.Consumer(ctx, e.js, schemas.StreamDomainChecks, broker.ConsumerChecker)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		batch, err := c.FetchNoWait(500)
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for m := range batch.Messages() {
			if err := m.DoubleAck(ctx); err != nil {
				t.Fatal(err)
			}
			got++
		}
		if batch.Error() != nil {
			t.Fatal(batch.Error())
		}
		n += got
		if got == 0 {
			return n
		}
	}
}

type domainRow struct {
	nextCheckAt    time.Time
	lastEnqueuedAt *time.Time
}

func readDomain(t testing.TB, pool *pgxpool.Pool, name string) (domainRow, bool) {
	t.Helper()
	var r domainRow
	err := pool.QueryRow(context.Background(), `SELECT next_check_at, last_enqueued_at FROM domains WHERE name = $1`, name).
		Scan(&r.nextCheckAt, &r.lastEnqueuedAt)
	if err != nil {
		if strings.Contains(err.Error(), "no rows") {
			return r, false
		}
		t.Fatal(err)
	}
	return r, true
}

// deliver handles m as the intake consumer does (handleIntake, then the
// broker's settle policy with the intake's options).
func (e *env) deliver(ctx context.Context, m jetstream.Msg) broker.Settlement {
	return e.topo.Settle(ctx, e.js, e.p.intakeOptions(), m, e.p.handleIntake(ctx, m))
}

// fakeMsg is a JetStream message for calling handleIntake directly, so a
// test can deliver the very same message twice (a redelivery).
type fakeMsg struct {
	jetstream.Msg // nil: unused methods panic
	subject       string
	data          []byte
	header        nats.Header
	stream        string
	seq           uint64
	delivered     uint64
	acks          atomic.Int32
	naks          atomic.Int32
	// stored is when the stream stored the message; default t0.
	stored time.Time
}

func (m *fakeMsg) Subject() string      { return m.subject }
func (m *fakeMsg) Data() []byte         { return m.data }
func (m *fakeMsg) Headers() nats.Header { return m.header }
func (m *fakeMsg) Reply() string        { return "" }
func (m *fakeMsg) Ack() error           { m.acks.Add(1); return nil }
func (m *fakeMsg) Nak() error           { m.naks.Add(1); return nil }
func (m *fakeMsg) NakWithDelay(time.Duration) error {
	m.naks.Add(1)
	return nil
}
func (m *fakeMsg) DoubleAck(context.Context) error {
	m.acks.Add(1)
	return nil
}
func (m *fakeMsg) Metadata() (*jetstream.MsgMetadata, error) {
	stored := m.stored
	if stored.IsZero() {
		stored = t0
	}
	return &jetstream.MsgMetadata{Stream: m.stream, Sequence: jetstream.SequencePair{Stream: m.seq, Consumer: m.seq},
		NumDelivered: max(m.delivered, 1), Timestamp: stored}, nil
}

// hostEvent builds the body of a host event: a CloudEvent when id is set,
// else the bare JSON object.
func hostEvent(t testing.TB, id string, payload any) []byte {
	t.Helper()
	return hostEventAt(t, id, t0, payload)
}

// hostEventAt is hostEvent with the CloudEvent time at.
func hostEventAt(t testing.TB, id string, at time.Time, payload any) []byte {
	t.Helper()
	data, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	if id == "" {
		return data
	}
	body, err := json.Marshal(schemas.Event{SpecVersion: "1.0", ID: id, Source: "host/test", Type: "com.example.email",
		Time: at, DataContentType: "application/json", Data: data})
	if err != nil {
		t.Fatal(err)
	}
	return body
}

func stringsReader(s string) *strings.Reader { return strings.NewReader(s) }
