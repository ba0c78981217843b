package broker_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/domainguard/domainguard/internal/broker"
	"github.com/domainguard/domainguard/internal/testnats"
	"github.com/domainguard/domainguard/schemas"
)

// server is one kind of real server the tests run against.
type testServer struct {
	name  string
	setup func(t *testing.T, adjust func(*broker.Topology)) (jetstream.JetStream, *nats.Conn, broker.Topology)
}

// servers are the Debian system server (nats-server 2.9, under a unique
// namespace) and a fresh embedded current server.
var servers = []testServer{
	{"system-2.9", func(t *testing.T, adjust func(*broker.Topology)) (jetstream.JetStream, *nats.Conn, broker.Topology) {
		return testnats.SharedWith(t, adjust)
	}},
	{"embedded", func(t *testing.T, adjust func(*broker.Topology)) (jetstream.JetStream, *nats.Conn, broker.Topology) {
		_, js, nc, topo := testnats.EmbeddedWith(t, adjust)
		return js, nc, topo
	}},
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestTopologyValidate(t *testing.T) {
	tests := []struct {
		name    string
		topo    broker.Topology
		wantErr bool
	}{
		{"defaults", broker.Topology{}, false},
		{"prefixed R3 memory", broker.Topology{Namespace: schemas.Namespace{Prefix: "staging"}, Replicas: 3, Storage: jetstream.MemoryStorage}, false},
		{"wildcard prefix", broker.Topology{Namespace: schemas.Namespace{Prefix: "a.*"}}, true},
		{"dotted prefix end", broker.Topology{Namespace: schemas.Namespace{Prefix: "a."}}, true},
		{"negative replicas", broker.Topology{Replicas: -1}, true},
		{"six replicas", broker.Topology{Replicas: 6}, true},
		{"duplicate window beyond max age", broker.Topology{DuplicateWindow: time.Hour, EventsMaxAge: time.Minute}, true},
		{"ack wait too short", broker.Topology{CheckAckWait: time.Millisecond}, true},
		{"negative max deliver", broker.Topology{CheckMaxDeliver: -1}, true},
		{"negative max messages", broker.Topology{DLQMaxMsgs: -1}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.topo.WithDefaults().Validate()
			if (err != nil) != tt.wantErr {
				t.Fatalf("Validate() = %v, want error %v", err, tt.wantErr)
			}
		})
	}
}

func TestTopologyDefaultsAndShape(t *testing.T) {
	topo := broker.Topology{Namespace: schemas.Namespace{Prefix: "ns"}}.WithDefaults()
	if topo.Replicas != 1 || topo.Storage != jetstream.FileStorage || topo.DuplicateWindow != 2*time.Minute ||
		topo.CheckAckWait != 2*time.Minute || topo.CheckMaxDeliver != 20 || topo.EventAckWait != time.Minute ||
		topo.EventsMaxAge != 14*24*time.Hour || topo.AuditMaxAge != 90*24*time.Hour {
		t.Fatalf("unexpected defaults: %+v", topo)
	}
	streams := map[string]jetstream.StreamConfig{}
	for _, s := range topo.Streams() {
		streams[s.Name] = s
	}
	if len(streams) != 5 {
		t.Fatalf("got %d streams, want 5", len(streams))
	}
	checks, ok := streams["NS_DOMAIN_CHECKS"]
	if !ok {
		t.Fatalf("no NS_DOMAIN_CHECKS stream in %v", streams)
	}
	if checks.Retention != jetstream.WorkQueuePolicy || checks.MaxMsgsPerSubject != 1 ||
		checks.Discard != jetstream.DiscardNew || !checks.DiscardNewPerSubject ||
		len(checks.Subjects) != 1 || checks.Subjects[0] != "ns.domains.check.>" {
		t.Errorf("DOMAIN_CHECKS config %+v", checks)
	}
	if ev := streams["NS_DOMAIN_EVENTS"]; len(ev.Subjects) != 2 || ev.Subjects[0] != "ns.domains.changed.>" || ev.Subjects[1] != "ns.domains.checked.>" {
		t.Errorf("DOMAIN_EVENTS subjects %v", ev.Subjects)
	}
	cons := topo.Consumers()
	for stream, want := range map[string]string{"NS_ACCOUNTS": broker.ConsumerIntake, "NS_DOMAIN_CHECKS": broker.ConsumerChecker, "NS_DOMAIN_EVENTS": broker.ConsumerEnforcer} {
		if len(cons[stream]) != 1 || cons[stream][0].Durable != want || cons[stream][0].AckPolicy != jetstream.AckExplicitPolicy {
			t.Errorf("consumers of %s: %+v, want durable %s with explicit ack", stream, cons[stream], want)
		}
	}
	if c := cons["NS_DOMAIN_CHECKS"][0]; c.MaxAckPending != 1000 || c.FilterSubject != "ns.domains.check.>" || c.AckWait != 2*time.Minute || c.MaxDeliver != 20 {
		t.Errorf("checker consumer %+v", c)
	}
}

// TestEnsureIdempotent ensures twice (the setup ensured once already), with
// a changed ack wait the second time, on both servers.
func TestEnsureIdempotent(t *testing.T) {
	for _, srv := range servers {
		t.Run(srv.name, func(t *testing.T) {
			js, _, topo := srv.setup(t, nil)
			ctx := testContext(t)
			if err := topo.Ensure(ctx, js); err != nil {
				t.Fatalf("second Ensure: %v", err)
			}
			topo.CheckAckWait = 90 * time.Second
			if err := topo.Ensure(ctx, js); err != nil {
				t.Fatalf("Ensure with changed ack wait: %v", err)
			}
			for _, cfg := range topo.Streams() {
				s, err := js.Stream(ctx, cfg.Name)
				if err != nil {
					t.Fatalf("stream %s: %v", cfg.Name, err)
				}
				got := s.CachedInfo().Config
				if got.Retention != cfg.Retention || got.MaxAge != cfg.MaxAge || len(got.Subjects) != len(cfg.Subjects) ||
					got.Storage != jetstream.MemoryStorage && srv.name != "embedded" ||
					cfg.MaxMsgsPerSubject > 0 && got.MaxMsgsPerSubject != cfg.MaxMsgsPerSubject ||
					got.DiscardNewPerSubject != cfg.DiscardNewPerSubject || got.Discard != cfg.Discard {
					t.Errorf("stream %s config %+v, want %+v", cfg.Name, got, cfg)
				}
			}
			// DOMAIN_CHECKS drops checks older than the lease (6h by
			// default): a check stranded by a crash goes at the latest then.
			if got := checksMaxAge(t, js, topo); got != topo.WithDefaults().ChecksMaxAge || got != 6*time.Hour {
				t.Errorf("DOMAIN_CHECKS max age on the server %s, want ChecksMaxAge (default 6h)", got)
			}
			c, err := js.Consumer(ctx, topo.Namespace.Stream(schemas.StreamDomainChecks), broker.ConsumerChecker)
			if err != nil {
				t.Fatalf("checker consumer: %v", err)
			}
			if got := c.CachedInfo().Config.AckWait; got != 90*time.Second {
				t.Errorf("checker ack wait %s after update, want 1m30s", got)
			}
			ev, err := js.Consumer(ctx, topo.Namespace.Stream(schemas.StreamDomainEvents), broker.ConsumerEnforcer)
			if err != nil {
				t.Fatalf("enforcer consumer: %v", err)
			}
			if got := ev.CachedInfo().Config.FilterSubject; got != topo.Namespace.Subject("domains.>") {
				t.Errorf("enforcer filter %q", got)
			}
		})
	}
}

// TestCheckAlreadyPending: a second check for a domain is refused while the
// first is pending, and accepted once it is acknowledged.
func TestCheckAlreadyPending(t *testing.T) {
	for _, srv := range servers {
		t.Run(srv.name, func(t *testing.T) {
			js, _, topo := srv.setup(t, nil)
			ctx := testContext(t)
			subj := topo.Namespace.CheckSubject("example.com")
			if _, err := js.Publish(ctx, subj, []byte(`{"n":1}`)); err != nil {
				t.Fatalf("first publish: %v", err)
			}
			_, err := js.Publish(ctx, subj, []byte(`{"n":2}`))
			if !broker.IsAlreadyPending(err) {
				t.Fatalf("second publish: got %v, want an already-pending error", err)
			}
			if _, err := js.Publish(ctx, topo.Namespace.CheckSubject("example.org"), []byte(`{"n":3}`)); err != nil {
				t.Fatalf("publish for another domain: %v", err)
			}
			c, err := topo.Consumer(ctx, js, schemas.StreamDomainChecks, broker.ConsumerChecker)
			if err != nil {
				t.Fatal(err)
			}
			msg := fetchOne(t, c)
			if msg.Subject() != subj || string(msg.Data()) != `{"n":1}` {
				t.Fatalf("fetched %s %s", msg.Subject(), msg.Data())
			}
			if err := msg.DoubleAck(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := js.Publish(ctx, subj, []byte(`{"n":4}`)); err != nil {
				t.Fatalf("publish after ack: %v", err)
			}
		})
	}
}

func TestIsAlreadyPendingOtherErrors(t *testing.T) {
	for _, err := range []error{nil, errors.New("maximum messages per subject exceeded"), jetstream.ErrStreamNotFound, context.DeadlineExceeded} {
		if broker.IsAlreadyPending(err) {
			t.Errorf("IsAlreadyPending(%v) = true", err)
		}
	}
}

// checksMaxAge reads DOMAIN_CHECKS's max age from the server.
func checksMaxAge(t *testing.T, js jetstream.JetStream, topo broker.Topology) time.Duration {
	t.Helper()
	return testnats.StreamInfo(t, js, topo.Namespace.Stream(schemas.StreamDomainChecks)).Config.MaxAge
}

func fetchOne(t *testing.T, c jetstream.Consumer) jetstream.Msg {
	t.Helper()
	b, err := c.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	for m := range b.Messages() {
		return m
	}
	t.Fatalf("fetch: no message (%v)", b.Error())
	return nil
}

// Verify accepts an ensured topology and names the missing streams of one
// that is not, creating nothing.
func TestVerify(t *testing.T) {
	js, _, topo := testnats.Shared(t)
	ctx := testContext(t)
	if err := topo.Verify(ctx, js); err != nil {
		t.Fatalf("Verify after Ensure: %v", err)
	}
	other := topo
	other.Namespace = schemas.Namespace{Prefix: testnats.UniquePrefix()}
	err := other.Verify(ctx, js)
	if err == nil || !strings.Contains(err.Error(), other.Namespace.Stream(schemas.StreamAudit)) || !strings.Contains(err.Error(), "domainguard topology") {
		t.Fatalf("Verify of a missing topology: %v", err)
	}
	if _, err := js.Stream(ctx, other.Namespace.Stream(schemas.StreamAudit)); err == nil {
		t.Fatal("Verify created a stream")
	}
}

// Every stream has a message limit, and a full work stream refuses new
// messages (the publisher gets an error and retries) while a full DLQ
// drops its oldest letters. Ensure moves streams created by an older
// version (no limits, DiscardOld) to the limits, keeping their messages.
func TestStreamLimitsAndUpgrade(t *testing.T) {
	for _, srv := range servers {
		t.Run(srv.name, func(t *testing.T) {
			js, _, base := srv.setup(t, nil)
			ctx := testContext(t)
			topo := base
			topo.Namespace = schemas.Namespace{Prefix: testnats.UniquePrefix()}
			topo.AccountsMaxMsgs, topo.DLQMaxMsgs = 3, 2
			topo.ChecksMaxAge = 3 * time.Hour
			t.Cleanup(func() {
				for _, s := range topo.Streams() {
					_ = js.DeleteStream(context.Background(), s.Name)
				}
			})
			// The streams as the version before the limits created them
			// (DOMAIN_CHECKS without a max age, too).
			for _, cfg := range topo.Streams() {
				cfg.MaxMsgs = 0
				if strings.HasSuffix(cfg.Name, schemas.StreamDomainChecks) {
					cfg.MaxAge = 0
				}
				if cfg.Retention == jetstream.LimitsPolicy {
					cfg.Discard = jetstream.DiscardOld
				}
				if _, err := js.CreateStream(ctx, cfg); err != nil {
					t.Fatalf("create old stream %s: %v", cfg.Name, err)
				}
			}
			accounts := topo.Namespace.Subject(schemas.SubjectEmailVerified)
			for range 2 {
				if _, err := js.Publish(ctx, accounts, []byte(`{}`)); err != nil {
					t.Fatal(err)
				}
			}
			if err := topo.Ensure(ctx, js); err != nil {
				t.Fatalf("Ensure over the old streams: %v", err)
			}
			for _, cfg := range topo.Streams() {
				s, err := js.Stream(ctx, cfg.Name)
				if err != nil {
					t.Fatal(err)
				}
				got := s.CachedInfo().Config
				if got.MaxMsgs != cfg.MaxMsgs || cfg.MaxMsgs <= 0 || got.Discard != cfg.Discard {
					t.Errorf("%s: max msgs %d, discard %s; want %d, %s", cfg.Name, got.MaxMsgs, got.Discard, cfg.MaxMsgs, cfg.Discard)
				}
				wantDiscard := jetstream.DiscardNew
				if strings.HasSuffix(cfg.Name, schemas.StreamDLQ) {
					wantDiscard = jetstream.DiscardOld
				}
				if cfg.Discard != wantDiscard {
					t.Errorf("%s: discard %s, want %s", cfg.Name, cfg.Discard, wantDiscard)
				}
			}
			if got := checksMaxAge(t, js, topo); got != 3*time.Hour {
				t.Errorf("DOMAIN_CHECKS max age on the server %s after Ensure, want the configured ChecksMaxAge 3h", got)
			}
			// ACCOUNTS kept its two messages and takes one more, then refuses.
			if _, err := js.Publish(ctx, accounts, []byte(`{}`)); err != nil {
				t.Fatalf("third message: %v", err)
			}
			if _, err := js.Publish(ctx, accounts, []byte(`{}`)); err == nil {
				t.Fatal("a full ACCOUNTS took a fourth message (it must refuse, not drop unprocessed work)")
			} else if broker.IsAlreadyPending(err) {
				t.Errorf("a full stream reads as an already pending check: %v", err)
			}
			if n := testnats.StreamMsgs(t, js, topo.Namespace.Stream(schemas.StreamAccounts)); n != 3 {
				t.Errorf("ACCOUNTS holds %d messages, want 3", n)
			}
			// The DLQ keeps its newest letters.
			for i := range 3 {
				if _, err := js.Publish(ctx, topo.Namespace.Subject("dlq."+schemas.StreamAccounts), []byte{byte('0' + i)}); err != nil {
					t.Fatalf("dead letter %d: %v", i, err)
				}
			}
			if n := testnats.StreamMsgs(t, js, topo.Namespace.Stream(schemas.StreamDLQ)); n != 2 {
				t.Errorf("DLQ holds %d letters, want its limit 2", n)
			}
		})
	}
}
