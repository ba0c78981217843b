package broker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/domainguard/domainguard/internal/broker"
	"github.com/domainguard/domainguard/internal/testnats"
	"github.com/domainguard/domainguard/internal/testwait"
	"github.com/domainguard/domainguard/schemas"
)

// startRun runs topo.Run in the background; the returned stop cancels it
// and returns Run's result (failing the test if Run does not return).
func startRun(t *testing.T, js jetstream.JetStream, topo broker.Topology, o broker.ConsumeOptions, h broker.Handler) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	if o.Logger == nil {
		o.Logger = testnats.Logger(t)
	}
	go func() { done <- topo.Run(ctx, js, o, h) }()
	var once sync.Once
	var result error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case result = <-done:
			case <-time.After(20 * time.Second):
				t.Fatal("Run did not return after cancel")
			}
		})
		return result
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

func publish(t *testing.T, js jetstream.JetStream, subject, body string) {
	t.Helper()
	if _, err := js.Publish(testContext(t), subject, []byte(body)); err != nil {
		t.Fatalf("publish %s: %v", subject, err)
	}
}

func ackPending(t *testing.T, js jetstream.JetStream, topo broker.Topology, stream, durable string) int {
	t.Helper()
	c, err := js.Consumer(testContext(t), topo.Namespace.Stream(stream), durable)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	return info.NumAckPending + int(info.NumPending)
}

// TestRunDrainsOnCancel: a handler in flight when the context ends
// finishes and acks; Run waits for it and returns nil.
func TestRunDrainsOnCancel(t *testing.T) {
	for _, srv := range servers {
		t.Run(srv.name, func(t *testing.T) {
			js, _, topo := srv.setup(t, nil)
			started := make(chan struct{})
			release := make(chan struct{})
			var handlerErr atomic.Value
			stop := startRun(t, js, topo, broker.ConsumeOptions{Stream: schemas.StreamAccounts, Durable: broker.ConsumerIntake, MaxWait: 300 * time.Millisecond,
				ConfirmAck: true}, // the ack is confirmed when Run returns
				func(ctx context.Context, msg jetstream.Msg) broker.Outcome {
					close(started)
					<-release
					if ctx.Err() != nil {
						handlerErr.Store(fmt.Errorf("handler context ended during drain: %w", ctx.Err()))
					}
					return broker.Done()
				})
			publish(t, js, topo.Namespace.Subject(schemas.SubjectEmailVerified), `{"user_id":"u1"}`)
			<-started
			stopped := make(chan error, 1)
			go func() { stopped <- stop() }()
			select {
			case err := <-stopped:
				t.Fatalf("Run returned (%v) while a handler was in flight", err)
			case <-time.After(200 * time.Millisecond):
			}
			close(release)
			if err := <-stopped; err != nil {
				t.Fatalf("Run returned %v, want nil", err)
			}
			if err, _ := handlerErr.Load().(error); err != nil {
				t.Fatal(err)
			}
			if n := ackPending(t, js, topo, schemas.StreamAccounts, broker.ConsumerIntake); n != 0 {
				t.Errorf("%d messages pending or unacked after drain, want 0", n)
			}
		})
	}
}

// TestRunFetchesOnlyForIdleWorkers guards against the prefetch pitfall:
// with two busy workers no further message is pulled (and left to age past
// its ack wait in a client buffer).
func TestRunFetchesOnlyForIdleWorkers(t *testing.T) {
	js, _, topo := testnats.Shared(t)
	release := make(chan struct{})
	var inFlight, handled atomic.Int32
	startRun(t, js, topo, broker.ConsumeOptions{Stream: schemas.StreamDomainChecks, Durable: broker.ConsumerChecker, Workers: 2, Batch: 10, MaxWait: 300 * time.Millisecond},
		func(ctx context.Context, msg jetstream.Msg) broker.Outcome {
			inFlight.Add(1)
			<-release
			handled.Add(1)
			return broker.Done()
		})
	var releaseOnce sync.Once
	releaseAll := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(releaseAll) // before Run's stop: let blocked handlers end if the test fails
	for i := range 6 {
		publish(t, js, topo.Namespace.CheckSubject(fmt.Sprintf("d%d.example", i)), `{}`)
	}
	testwait.For(t, 10*time.Second, "two handlers in flight", func() bool { return inFlight.Load() == 2 })
	// Give an over-eager puller the chance to pull more than it can handle.
	time.Sleep(300 * time.Millisecond)
	c, err := js.Consumer(testContext(t), topo.Namespace.Stream(schemas.StreamDomainChecks), broker.ConsumerChecker)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	if info.NumAckPending != 2 || inFlight.Load() != 2 {
		t.Fatalf("%d delivered unacked, %d handlers in flight; want 2 and 2", info.NumAckPending, inFlight.Load())
	}
	releaseAll()
	testwait.For(t, 10*time.Second, "all six handled", func() bool { return handled.Load() == 6 })
}

// TestRunRetriesThenDeadLetters: a Retry is redelivered after a Nak, and
// dead-lettered on its last delivery by the settle policy.
func TestRunRetriesThenDeadLetters(t *testing.T) {
	js, _, topo := testnats.SharedWith(t, func(tp *broker.Topology) { tp.CheckMaxDeliver = 3 })
	var deliveries atomic.Int32
	dead := make(chan struct{})
	startRun(t, js, topo, broker.ConsumeOptions{Stream: schemas.StreamDomainChecks, Durable: broker.ConsumerChecker, MaxWait: 300 * time.Millisecond, NakDelay: 20 * time.Millisecond,
		OnSettled: func(_ jetstream.Msg, s broker.Settlement, _ broker.Outcome) {
			if s == broker.DeadLettered {
				close(dead)
			}
		}},
		func(ctx context.Context, msg jetstream.Msg) broker.Outcome {
			deliveries.Add(1)
			return broker.Retry(errors.New("registry unavailable"))
		})
	publish(t, js, topo.Namespace.CheckSubject("flaky.example"), `{}`)
	select {
	case <-dead:
	case <-time.After(15 * time.Second):
		t.Fatalf("not dead-lettered after %d deliveries", deliveries.Load())
	}
	if n := deliveries.Load(); n != 3 {
		t.Errorf("%d deliveries, want 3", n)
	}
	if dl := lastDeadLetter(t, js, topo, schemas.StreamDomainChecks); dl.Error != "registry unavailable" || dl.Deliveries != 3 {
		t.Errorf("dead letter %+v, want the handler's error after 3 deliveries", dl)
	}
	publish(t, js, topo.Namespace.CheckSubject("flaky.example"), `{"again":true}`)
}

// lastDeadLetter reads the last dead letter of stream.
func lastDeadLetter(t *testing.T, js jetstream.JetStream, topo broker.Topology, stream string) schemas.DeadLetter {
	t.Helper()
	dlq, err := js.Stream(testContext(t), topo.Namespace.Stream(schemas.StreamDLQ))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := dlq.GetLastMsgForSubject(testContext(t), topo.Namespace.DeadLetterSubject(stream))
	if err != nil {
		t.Fatalf("no dead letter of %s: %v", stream, err)
	}
	var dl schemas.DeadLetter
	if err := json.Unmarshal(raw.Data, &dl); err != nil {
		t.Fatal(err)
	}
	return dl
}

// TestRunRecoversAfterConsumerDeleted: Run recreates a deleted durable and
// goes on consuming.
func TestRunRecoversAfterConsumerDeleted(t *testing.T) {
	for _, srv := range servers {
		t.Run(srv.name, func(t *testing.T) {
			js, _, topo := srv.setup(t, nil)
			var handled atomic.Int32
			stop := startRun(t, js, topo, broker.ConsumeOptions{Stream: schemas.StreamDomainEvents, Durable: broker.ConsumerEnforcer, MaxWait: 300 * time.Millisecond},
				func(ctx context.Context, msg jetstream.Msg) broker.Outcome {
					handled.Add(1)
					return broker.Done()
				})
			publish(t, js, topo.Namespace.ChangedSubject("a.example"), `{}`)
			testwait.For(t, 10*time.Second, "first message handled", func() bool { return handled.Load() == 1 })
			if err := js.DeleteConsumer(testContext(t), topo.Namespace.Stream(schemas.StreamDomainEvents), broker.ConsumerEnforcer); err != nil {
				t.Fatal(err)
			}
			publish(t, js, topo.Namespace.CheckedSubject("b.example"), `{}`)
			// The recreated durable delivers all: the first message again, then the second.
			testwait.For(t, 20*time.Second, "messages handled after the consumer was deleted", func() bool { return handled.Load() >= 2 })
			if err := stop(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestRunRecoversAfterServerRestart: the embedded server stops and starts
// again on the same port and store; the connection reconnects and Run goes
// on consuming from the same durable.
func TestRunRecoversAfterServerRestart(t *testing.T) {
	dir, port := t.TempDir(), freePort(t)
	start := func() *broker.Embedded {
		srv, err := broker.StartEmbedded(testContext(t), broker.EmbeddedOptions{StoreDir: dir, Port: port, Logger: testnats.Logger(t)})
		if err != nil {
			t.Fatal(err)
		}
		return srv
	}
	srv := start()
	t.Cleanup(func() { srv.Shutdown() })
	nc, js, err := broker.Connect(testContext(t), broker.ConnectOptions{URL: srv.URL(), Logger: testnats.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	topo := broker.Topology{Logger: testnats.Logger(t)}
	if err := topo.Ensure(testContext(t), js); err != nil {
		t.Fatal(err)
	}
	var handled atomic.Int32
	stop := startRun(t, js, topo, broker.ConsumeOptions{Stream: schemas.StreamAccounts, Durable: broker.ConsumerIntake, MaxWait: 300 * time.Millisecond},
		func(ctx context.Context, msg jetstream.Msg) broker.Outcome {
			handled.Add(1)
			return broker.Done()
		})
	publish(t, js, schemas.SubjectEmailVerified, `{"n":1}`)
	testwait.For(t, 10*time.Second, "message handled before restart", func() bool { return handled.Load() == 1 })

	srv.Shutdown()
	srv = start()
	testwait.For(t, 15*time.Second, "reconnect", nc.IsConnected)
	publish(t, js, schemas.SubjectEmailVerified, `{"n":2}`)
	testwait.For(t, 20*time.Second, "message handled after restart", func() bool { return handled.Load() == 2 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// TestRunBatch delivers fetched messages as slices.
func TestRunBatch(t *testing.T) {
	js, _, topo := testnats.Shared(t)
	for i := range 5 {
		publish(t, js, topo.Namespace.CheckedSubject(fmt.Sprintf("d%d.example", i)), `{}`)
	}
	var mu sync.Mutex
	var sizes []int
	total := 0
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- topo.RunBatch(ctx, js, broker.ConsumeOptions{Stream: schemas.StreamDomainEvents, Durable: broker.ConsumerEnforcer, Batch: 5, MaxWait: 300 * time.Millisecond, Logger: testnats.Logger(t)},
			func(ctx context.Context, msgs []jetstream.Msg, settle func(jetstream.Msg, broker.Outcome)) error {
				for _, m := range msgs {
					settle(m, broker.Done())
				}
				mu.Lock()
				sizes = append(sizes, len(msgs))
				total += len(msgs)
				mu.Unlock()
				return nil
			})
	}()
	testwait.For(t, 10*time.Second, "five messages handled", func() bool { mu.Lock(); defer mu.Unlock(); return total == 5 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sizes) != 1 || sizes[0] != 5 {
		t.Errorf("batch sizes %v, want one batch of 5", sizes)
	}
}

func TestRunRejectsBadOptions(t *testing.T) {
	var topo broker.Topology
	if err := topo.Run(context.Background(), nil, broker.ConsumeOptions{Stream: schemas.StreamAccounts}, func(context.Context, jetstream.Msg) broker.Outcome { return broker.Done() }); err == nil {
		t.Error("Run without durable: no error")
	}
	if err := topo.Run(context.Background(), nil, broker.ConsumeOptions{Stream: "S", Durable: "D"}, nil); err == nil {
		t.Error("Run with nil handler: no error")
	}
}

// recorder is a slog handler that keeps records.
type recorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	r.records = append(r.records, rec.Clone())
	r.mu.Unlock()
	return nil
}
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }

// has reports whether an error-level record mentions substr (in its
// message or attributes).
func (r *recorder) has(level slog.Level, substr string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rec := range r.records {
		if rec.Level != level {
			continue
		}
		text := rec.Message
		rec.Attrs(func(a slog.Attr) bool { text += " " + a.Value.String(); return true })
		if strings.Contains(strings.ToLower(text), strings.ToLower(substr)) {
			return true
		}
	}
	return false
}

// TestConnectLogsPermissionViolation: a publish the user may not make is
// logged at error level, not lost as a silent timeout.
func TestConnectLogsPermissionViolation(t *testing.T) {
	srv, err := broker.StartEmbedded(testContext(t), broker.EmbeddedOptions{StoreDir: t.TempDir(), Logger: testnats.Logger(t),
		Configure: func(o *server.Options) {
			o.Users = []*server.User{{Username: "relay", Password: "s3cret", Permissions: &server.Permissions{
				Publish: &server.SubjectPermission{Allow: []string{"audit.>", "$JS.API.>"}},
			}}}
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	rec := &recorder{}
	nc, _, err := broker.Connect(testContext(t), broker.ConnectOptions{URL: srv.URL(), User: "relay", Password: "s3cret", Logger: slog.New(rec)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if err := nc.Publish("audit.email.unverified", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if rec.has(slog.LevelError, "permissions violation") {
		t.Fatal("allowed publish logged as a permissions violation")
	}
	if err := nc.Publish("accounts.email.verified", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 5*time.Second, "the permissions violation logged at error level", func() bool {
		return rec.has(slog.LevelError, "permissions violation") && rec.has(slog.LevelError, "accounts.email.verified")
	})
	if rec.has(slog.LevelInfo, "s3cret") || rec.has(slog.LevelError, "s3cret") {
		t.Error("password logged")
	}
}

// TestConnectGivesUpWhenContextEnds: with no server the initial connect is
// retried until the context ends.
func TestConnectGivesUpWhenContextEnds(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, _, err := broker.Connect(ctx, broker.ConnectOptions{URL: fmt.Sprintf("nats://user:pw@127.0.0.1:%d", freePort(t)), Logger: testnats.Logger(t)})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Connect = %v, want deadline exceeded", err)
	}
	if strings.Contains(err.Error(), ":pw@") {
		t.Errorf("error leaks the password: %v", err)
	}
}

// TestEmbeddedListensOnLoopbackRandomPort: two servers side by side get
// distinct free loopback ports.
func TestEmbeddedListensOnLoopbackRandomPort(t *testing.T) {
	a, _, _, _ := testnats.Embedded(t)
	b, _, _, _ := testnats.Embedded(t)
	for _, s := range []*broker.Embedded{a, b} {
		if !strings.HasPrefix(s.URL(), "nats://127.0.0.1:") || s.Port() <= 0 || s.Port() == 4222 {
			t.Errorf("embedded server at %s (port %d), want a free loopback port", s.URL(), s.Port())
		}
	}
	if a.Port() == b.Port() {
		t.Errorf("both servers on port %d", a.Port())
	}
}
