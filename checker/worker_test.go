package checker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/domainguard/domainguard/internal/broker"
	"github.com/domainguard/domainguard/internal/dialguard"
	"github.com/domainguard/domainguard/internal/testmetrics"
	"github.com/domainguard/domainguard/internal/testnats"
	"github.com/domainguard/domainguard/internal/testwait"
	"github.com/domainguard/domainguard/lifecycle"
	"github.com/domainguard/domainguard/schemas"
)

// fakeProvider answers from a script and records every call.
type fakeProvider struct {
	delay time.Duration
	// answer returns the result of the n-th call (from 1) for domain; nil
	// answers active with fixed evidence.
	answer func(ctx context.Context, domain string, n int) (lifecycle.Observation, error)

	mu    sync.Mutex
	calls map[string][]time.Time
}

func (p *fakeProvider) Name() string { return "fake" }

func (p *fakeProvider) Lookup(ctx context.Context, domain string, _ *lifecycle.Observation) (lifecycle.Observation, error) {
	p.mu.Lock()
	if p.calls == nil {
		p.calls = make(map[string][]time.Time)
	}
	p.calls[domain] = append(p.calls[domain], time.Now())
	n := len(p.calls[domain])
	p.mu.Unlock()
	if p.delay > 0 {
		if err := sleep(ctx, p.delay); err != nil {
			return lifecycle.Observation{}, &LookupError{Provider: "fake", Domain: domain, Temporary: true, Err: err}
		}
	}
	if p.answer == nil {
		return observation(domain, lifecycle.PhaseActive), nil
	}
	return p.answer(ctx, domain, n)
}

func (p *fakeProvider) callTimes(domain string) []time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]time.Time(nil), p.calls[domain]...)
}

func (p *fakeProvider) allCalls() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]int, len(p.calls))
	for d, c := range p.calls {
		out[d] = len(c)
	}
	return out
}

var fixedExpiry = time.Date(2030, 1, 2, 0, 0, 0, 0, time.UTC)

// observation is a classified answer with fixed evidence per phase.
func observation(domain string, phase lifecycle.Phase) lifecycle.Observation {
	exp := fixedExpiry
	statuses := map[lifecycle.Phase][]string{
		lifecycle.PhaseActive:  {"active"},
		lifecycle.PhaseExpired: {"auto renew period", "client hold"},
	}[phase]
	return lifecycle.Observation{Domain: domain, Phase: phase, Evidence: lifecycle.Evidence{
		Provider: "fake", Statuses: statuses, ExpiresAt: &exp, Handle: "H-" + domain, ObservedAt: time.Now().UTC(),
	}}
}

func temporary(domain string, status int, retryAfter time.Duration) error {
	return &LookupError{Provider: "fake", Domain: domain, Temporary: true, StatusCode: status, RetryAfter: retryAfter,
		Err: errors.New(http.StatusText(status))}
}

// env is one test's NATS namespace.
type env struct {
	js   jetstream.JetStream
	nc   *nats.Conn
	topo broker.Topology
}

func newEnv(t *testing.T, ackWait time.Duration) env {
	t.Helper()
	js, nc, topo := testnats.SharedWith(t, func(tp *broker.Topology) {
		if ackWait > 0 {
			tp.CheckAckWait = ackWait
		}
	})
	return env{js: js, nc: nc, topo: topo.WithDefaults()}
}

// baseConfig is a fast-retrying configuration for tests.
func (e env) baseConfig(t *testing.T, p Provider) Config {
	return Config{
		JS: e.js, Topology: e.topo, Provider: p,
		LookupsPerSecond: 1000, Burst: 100, Concurrency: 4,
		RetryInitial: 10 * time.Millisecond, RetryMax: 100 * time.Millisecond,
		FetchWait: 300 * time.Millisecond,
		Logger:    testnats.Logger(t),
	}
}

// start runs a worker until the test ends.
func startWorker(t *testing.T, cfg Config) *Worker {
	t.Helper()
	w, err := NewWorker(cfg)
	if err != nil {
		t.Fatalf("NewWorker: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(40 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return w
}

func (e env) publishCheck(t testing.TB, domain string, prev *lifecycle.Observation) {
	t.Helper()
	req := schemas.CheckRequest{Domain: domain, Reason: schemas.CheckSchedule, RequestedAt: time.Now().UTC(), Previous: prev}
	ev, err := schemas.NewEvent("test", "domains.check", domain, time.Now(), req)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := broker.PublishEvent(ctx, e.js, e.topo.Namespace.CheckSubject(domain), ev); err != nil {
		t.Fatalf("publish check for %s: %v", domain, err)
	}
}

// streamMsgs returns every message stored in the (unprefixed) stream.
func (e env) streamMsgs(t *testing.T, stream string) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := e.js.Stream(ctx, e.topo.Namespace.Stream(stream))
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatalf("stream %s info: %v", stream, err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatalf("stream %s seq %d: %v", stream, seq, err)
		}
		out = append(out, m)
	}
	return out
}

func (e env) pendingChecks(t testing.TB) uint64 { return e.streamCount(t, schemas.StreamDomainChecks) }

// streamCount returns how many messages the (unprefixed) stream holds.
func (e env) streamCount(t testing.TB, stream string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := e.js.Stream(ctx, e.topo.Namespace.Stream(stream))
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// waitEvents waits until the events stream holds n messages, then checks
// that no more arrive for settle, and returns them.
func (e env) waitEvents(t *testing.T, n int, settle time.Duration) []*jetstream.RawStreamMsg {
	t.Helper()
	testwait.For(t, 30*time.Second, fmt.Sprintf("%d events", n), func() bool {
		return e.streamCount(t, schemas.StreamDomainEvents) >= uint64(n)
	})
	time.Sleep(settle) // a duplicate would arrive in this window; there is no event to wait for
	msgs := e.streamMsgs(t, schemas.StreamDomainEvents)
	if len(msgs) != n {
		t.Fatalf("%d events in DOMAIN_EVENTS, want exactly %d", len(msgs), n)
	}
	return msgs
}

func TestPublishesChangeOrHeartbeat(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 0)
	p := &fakeProvider{answer: func(_ context.Context, domain string, _ int) (lifecycle.Observation, error) {
		switch domain {
		case "lapsed.com":
			return observation(domain, lifecycle.PhaseExpired), nil
		case "jumped.com", "dropped.com":
			return lifecycle.Observation{Domain: domain, Phase: lifecycle.PhaseReleased, Evidence: lifecycle.Evidence{
				Provider: "fake", NotFound: true, ObservedAt: time.Now().UTC()}}, nil
		case "murky.com":
			o := observation(domain, lifecycle.PhaseUnknown)
			o.Evidence.Detail = "404 not confirmed by canary"
			return o, nil
		}
		return observation(domain, lifecycle.PhaseActive), nil
	}}
	w := startWorker(t, e.baseConfig(t, p))

	active := func(d string) *lifecycle.Observation { o := observation(d, lifecycle.PhaseActive); return &o }
	renewed := active("renewed.com")
	later := fixedExpiry.AddDate(-1, 0, 0)
	renewed.Evidence.ExpiresAt = &later

	tests := []struct {
		domain     string
		prev       *lifecycle.Observation
		wantKind   string // changed | checked
		wantPhase  lifecycle.Phase
		wantFailed bool
	}{
		{"same.com", active("same.com"), "checked", lifecycle.PhaseActive, false},
		{"lapsed.com", active("lapsed.com"), "changed", lifecycle.PhaseExpired, false},
		{"first.com", nil, "changed", lifecycle.PhaseActive, false},
		{"renewed.com", renewed, "changed", lifecycle.PhaseActive, false},
		{"murky.com", active("murky.com"), "checked", lifecycle.PhaseActive, true},
		// Released straight from active (counted as suspicious) and after
		// pending delete (a normal lapse).
		{"jumped.com", active("jumped.com"), "changed", lifecycle.PhaseReleased, false},
		{"dropped.com", &lifecycle.Observation{Domain: "dropped.com", Phase: lifecycle.PhasePendingDelete,
			Evidence: lifecycle.Evidence{Provider: "fake", Statuses: []string{"pending delete"}, ObservedAt: time.Now().UTC()}}, "changed", lifecycle.PhaseReleased, false},
	}
	for _, tc := range tests {
		e.publishCheck(t, tc.domain, tc.prev)
	}
	msgs := e.waitEvents(t, len(tests), 300*time.Millisecond)
	bySubject := map[string]*jetstream.RawStreamMsg{}
	for _, m := range msgs {
		bySubject[m.Subject] = m
	}
	for _, tc := range tests {
		t.Run(tc.domain, func(t *testing.T) {
			subject := e.topo.Namespace.CheckedSubject(tc.domain)
			if tc.wantKind == "changed" {
				subject = e.topo.Namespace.ChangedSubject(tc.domain)
			}
			m, ok := bySubject[subject]
			if !ok {
				t.Fatalf("no event on %s; got %v", subject, keys(bySubject))
			}
			if m.Header.Get(schemas.HeaderMsgID) == "" {
				t.Error("event published without Nats-Msg-Id")
			}
			var ev schemas.Event
			if err := json.Unmarshal(m.Data, &ev); err != nil {
				t.Fatal(err)
			}
			if ev.ID != m.Header.Get(schemas.HeaderMsgID) || ev.Source != DefaultSource || ev.Subject != tc.domain {
				t.Errorf("envelope id %s (header %s) source %s subject %s", ev.ID, m.Header.Get(schemas.HeaderMsgID), ev.Source, ev.Subject)
			}
			if tc.wantKind == "changed" {
				_, ch, err := schemas.Decode[schemas.DomainChanged](m.Data)
				if err != nil {
					t.Fatal(err)
				}
				wantPrev := lifecycle.PhaseUnknown
				if tc.prev != nil {
					wantPrev = tc.prev.Phase
				}
				if ch.Phase != tc.wantPhase || ch.PreviousPhase != wantPrev || ch.Evidence.Provider != "fake" {
					t.Errorf("changed = %+v", ch)
				}
				if (tc.prev == nil) != (ch.PreviousEvidence == nil) {
					t.Errorf("previous evidence %v with prev %v", ch.PreviousEvidence, tc.prev)
				}
				return
			}
			_, hb, err := schemas.Decode[schemas.DomainChecked](m.Data)
			if err != nil {
				t.Fatal(err)
			}
			if hb.Phase != tc.wantPhase || hb.Failed != tc.wantFailed {
				t.Errorf("heartbeat = %+v, want phase %s failed %v", hb, tc.wantPhase, tc.wantFailed)
			}
			if tc.wantFailed && hb.Detail == "" {
				t.Error("failed heartbeat without detail")
			}
		})
	}
	if n := e.pendingChecks(t); n != 0 {
		t.Errorf("%d checks left in the work queue", n)
	}
	if got := testutil.ToFloat64(w.metrics.published.WithLabelValues(kindChanged)); got != 5 {
		t.Errorf("changed events metric = %g, want 5", got)
	}
	if got := testutil.ToFloat64(w.metrics.releasedJumps); got != 1 {
		t.Errorf("released without lapse metric = %g, want 1", got)
	}
	if got := testutil.ToFloat64(w.metrics.lookups.WithLabelValues("fake", outcomeUnknown)); got != 1 {
		t.Errorf("unknown lookups metric = %g, want 1", got)
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestTransientFailuresRetriedThenOneEvent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 0)
	p := &fakeProvider{answer: func(_ context.Context, domain string, n int) (lifecycle.Observation, error) {
		if n <= 3 {
			return lifecycle.Observation{}, temporary(domain, http.StatusServiceUnavailable, 0)
		}
		return observation(domain, lifecycle.PhaseExpired), nil
	}}
	w := startWorker(t, e.baseConfig(t, p))
	prev := observation("flaky.com", lifecycle.PhaseActive)
	e.publishCheck(t, "flaky.com", &prev)

	msgs := e.waitEvents(t, 1, 500*time.Millisecond)
	if msgs[0].Subject != e.topo.Namespace.ChangedSubject("flaky.com") {
		t.Errorf("event on %s, want changed", msgs[0].Subject)
	}
	if n := len(p.callTimes("flaky.com")); n != 4 {
		t.Errorf("%d lookups, want 4 (3 failures + 1 answer)", n)
	}
	if got := testutil.ToFloat64(w.metrics.retries); got != 3 {
		t.Errorf("retries metric = %g, want 3", got)
	}
	if got := testutil.ToFloat64(w.metrics.lookups.WithLabelValues("fake", outcomeTemporary)); got != 3 {
		t.Errorf("temporary_error lookups = %g, want 3", got)
	}
	testwait.For(t, 5*time.Second, "check acknowledged", func() bool { return e.pendingChecks(t) == 0 })
}

func TestRetryAfterHonoured(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 0)
	const retryAfter = 1200 * time.Millisecond
	p := &fakeProvider{answer: func(_ context.Context, domain string, n int) (lifecycle.Observation, error) {
		if n == 1 {
			return lifecycle.Observation{}, temporary(domain, http.StatusTooManyRequests, retryAfter)
		}
		return observation(domain, lifecycle.PhaseActive), nil
	}}
	startWorker(t, e.baseConfig(t, p))
	prev := observation("busy.com", lifecycle.PhaseActive)
	e.publishCheck(t, "busy.com", &prev)
	msgs := e.waitEvents(t, 1, 100*time.Millisecond)
	if msgs[0].Subject != e.topo.Namespace.CheckedSubject("busy.com") {
		t.Errorf("event on %s, want heartbeat", msgs[0].Subject)
	}
	calls := p.callTimes("busy.com")
	if len(calls) != 2 {
		t.Fatalf("%d lookups, want 2", len(calls))
	}
	if gap := calls[1].Sub(calls[0]); gap < retryAfter {
		t.Errorf("retried after %s, before the Retry-After of %s (backoff alone is 10ms)", gap, retryAfter)
	}
}

func TestExhaustedRetriesPublishFailedHeartbeat(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 0)
	p := &fakeProvider{answer: func(_ context.Context, domain string, _ int) (lifecycle.Observation, error) {
		return lifecycle.Observation{}, temporary(domain, http.StatusBadGateway, 0)
	}}
	cfg := e.baseConfig(t, p)
	cfg.MaxAttempts = 3
	startWorker(t, cfg)
	prev := observation("down.com", lifecycle.PhaseGrace)
	e.publishCheck(t, "down.com", &prev)
	msgs := e.waitEvents(t, 1, 300*time.Millisecond)
	if msgs[0].Subject != e.topo.Namespace.CheckedSubject("down.com") {
		t.Fatalf("event on %s, want a heartbeat (an error is never a change)", msgs[0].Subject)
	}
	_, hb, err := schemas.Decode[schemas.DomainChecked](msgs[0].Data)
	if err != nil {
		t.Fatal(err)
	}
	if !hb.Failed || hb.Phase != lifecycle.PhaseGrace || hb.Detail == "" {
		t.Errorf("heartbeat = %+v, want failed, previous phase grace, with detail", hb)
	}
	if n := len(p.callTimes("down.com")); n != 3 {
		t.Errorf("%d lookups, want MaxAttempts = 3", n)
	}
	testwait.For(t, 5*time.Second, "check acknowledged", func() bool { return e.pendingChecks(t) == 0 })
}

func TestNoSourcePublishesUnmonitoredHeartbeatWithoutRetries(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 0)
	p := &fakeProvider{answer: func(_ context.Context, domain string, _ int) (lifecycle.Observation, error) {
		return lifecycle.Observation{Domain: domain, Phase: lifecycle.PhaseUnknown}, fmt.Errorf("%w: nothing for .zz", ErrNoSource)
	}}
	cfg := e.baseConfig(t, p)
	w := startWorker(t, cfg)
	e.publishCheck(t, "none.zz", nil)
	msgs := e.waitEvents(t, 1, 300*time.Millisecond)
	_, hb, err := schemas.Decode[schemas.DomainChecked](msgs[0].Data)
	if err != nil {
		t.Fatal(err)
	}
	if !hb.Unmonitored || hb.Failed || hb.Phase != lifecycle.PhaseUnknown || !strings.Contains(hb.Detail, ".zz") {
		t.Errorf("heartbeat = %+v, want unmonitored with detail", hb)
	}
	if n := len(p.callTimes("none.zz")); n != 1 {
		t.Errorf("%d lookups, want 1 (no retries)", n)
	}
	if got := testutil.ToFloat64(w.metrics.published.WithLabelValues(kindUnmonitored)); got != 1 {
		t.Errorf("unmonitored events = %g", got)
	}
	testwait.For(t, 5*time.Second, "check acknowledged", func() bool { return e.pendingChecks(t) == 0 })
}

// A lookup the dial guard refused (the server is at a private address
// the operator did not name) is not retried, is no decision and no dead
// letter: a failed heartbeat with the previous phase, counted as refused.
func TestRefusedLookupPublishesFailedHeartbeatWithoutRetries(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 0)
	p := &fakeProvider{answer: func(_ context.Context, domain string, _ int) (lifecycle.Observation, error) {
		refused := &dialguard.RefusedError{Target: "10.0.0.7:443", Addr: netip.MustParseAddr("10.0.0.7"), Class: "private"}
		return lifecycle.Observation{}, &LookupError{Provider: "fake", Domain: domain, Temporary: true,
			Err: fmt.Errorf("dial tcp 10.0.0.7:443: %w", refused)}
	}}
	cfg := e.baseConfig(t, p)
	cfg.MaxAttempts = 3
	w := startWorker(t, cfg)
	prev := observation("internal.com", lifecycle.PhaseActive)
	e.publishCheck(t, "internal.com", &prev)
	msgs := e.waitEvents(t, 1, 300*time.Millisecond)
	if msgs[0].Subject != e.topo.Namespace.CheckedSubject("internal.com") {
		t.Fatalf("event on %s, want a heartbeat", msgs[0].Subject)
	}
	_, hb, err := schemas.Decode[schemas.DomainChecked](msgs[0].Data)
	if err != nil {
		t.Fatal(err)
	}
	if !hb.Failed || hb.Phase != lifecycle.PhaseActive || !strings.Contains(hb.Detail, "10.0.0.7") {
		t.Errorf("heartbeat = %+v, want failed, previous phase active, naming the refused address", hb)
	}
	if n := len(p.callTimes("internal.com")); n != 1 {
		t.Errorf("%d lookups, want 1 (a refusal is not retried)", n)
	}
	if got := testutil.ToFloat64(w.metrics.lookups.WithLabelValues("fake", "refused")); got != 1 {
		t.Errorf("refused lookups counted = %g, want 1", got)
	}
	if got := testutil.ToFloat64(w.metrics.deadLetters); got != 0 {
		t.Errorf("dead letters = %g, want 0", got)
	}
	testwait.For(t, 5*time.Second, "check acknowledged", func() bool { return e.pendingChecks(t) == 0 })
}

// exemptProvider is exempt from the rate limit for every domain.
type exemptProvider struct{ *fakeProvider }

func (exemptProvider) RateExempt(string) bool { return true }

func TestRateExemptLookupsSkipTheLimiter(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 0)
	p := exemptProvider{&fakeProvider{}}
	cfg := e.baseConfig(t, p)
	cfg.LookupsPerSecond, cfg.Burst = 1, 1
	w := startWorker(t, cfg)
	for i := range 5 {
		e.publishCheck(t, "x"+strconv.Itoa(i)+".eu", nil)
	}
	e.waitEvents(t, 5, 0)
	// No lookup went through the limiter (at 1/s it would also have
	// spaced them by a second each).
	if got := rateLimitWaits(t, w); got != 0 {
		t.Errorf("rate limit wait observations = %d, want 0", got)
	}
}

func TestPermanentFailureAndBadInputDeadLettered(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 0)
	p := &fakeProvider{answer: func(_ context.Context, domain string, n int) (lifecycle.Observation, error) {
		if domain == "nozone.com" && n == 1 {
			return lifecycle.Observation{}, &LookupError{Provider: "fake", Domain: domain, StatusCode: 400, Err: errors.New("invalid name")}
		}
		return observation(domain, lifecycle.PhaseActive), nil
	}}
	w := startWorker(t, e.baseConfig(t, p))

	e.publishCheck(t, "nozone.com", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := e.js.Publish(ctx, e.topo.Namespace.CheckSubject("garbage.com"), []byte("not json")); err != nil {
		t.Fatal(err)
	}
	// Valid JSON, but the domain is a public suffix.
	bad, _ := json.Marshal(schemas.CheckRequest{Domain: "co.uk", Reason: schemas.CheckManual, RequestedAt: time.Now()})
	if _, err := e.js.Publish(ctx, e.topo.Namespace.CheckSubject("co.uk"), bad); err != nil {
		t.Fatal(err)
	}

	testwait.For(t, 20*time.Second, "3 dead letters", func() bool { return e.streamCount(t, schemas.StreamDLQ) == 3 })
	for _, m := range e.streamMsgs(t, schemas.StreamDLQ) {
		var dl schemas.DeadLetter
		if err := json.Unmarshal(m.Data, &dl); err != nil {
			t.Fatal(err)
		}
		if dl.Stream != schemas.StreamDomainChecks || dl.Consumer != broker.ConsumerChecker || dl.Error == "" {
			t.Errorf("dead letter %+v", dl)
		}
	}
	if n := len(e.streamMsgs(t, schemas.StreamDomainEvents)); n != 0 {
		t.Errorf("%d events published for failed checks", n)
	}
	if p.allCalls()["co.uk"] != 0 {
		t.Error("invalid domain was looked up")
	}
	testwait.For(t, 5*time.Second, "work queue empty", func() bool { return e.pendingChecks(t) == 0 })
	// The dead-lettered check no longer blocks the domain.
	e.publishCheck(t, "nozone.com", nil)
	e.waitEvents(t, 1, 100*time.Millisecond)
	if got := testutil.ToFloat64(w.metrics.deadLetters); got != 3 {
		t.Errorf("dead letters metric = %g, want 3", got)
	}
}

func TestKilledWorkerCheckRedeliveredOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1500*time.Millisecond)
	started := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	p := &fakeProvider{answer: func(ctx context.Context, domain string, n int) (lifecycle.Observation, error) {
		if n == 1 { // the doomed worker's lookup hangs until the end
			once.Do(func() { close(started) })
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return observation(domain, lifecycle.PhaseExpired), nil
	}}
	defer close(release)

	// The doomed worker has its own connection, closed to kill it.
	url := e.nc.ConnectedUrl()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc1, js1, err := broker.Connect(ctx, broker.ConnectOptions{URL: url, Name: "doomed", Logger: testnats.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	cfg1 := e.baseConfig(t, p)
	cfg1.JS = js1
	startWorker(t, cfg1)

	prev := observation("victim.com", lifecycle.PhaseActive)
	e.publishCheck(t, "victim.com", &prev)
	select {
	case <-started:
	case <-time.After(15 * time.Second):
		t.Fatal("lookup never started")
	}
	nc1.Close() // killed mid-lookup: no ack, no in-progress reports

	startWorker(t, e.baseConfig(t, p))
	msgs := e.waitEvents(t, 1, 500*time.Millisecond)
	if msgs[0].Subject != e.topo.Namespace.ChangedSubject("victim.com") {
		t.Errorf("event on %s", msgs[0].Subject)
	}
	if n := len(p.callTimes("victim.com")); n != 2 {
		t.Errorf("%d lookups, want 2 (killed + redelivered)", n)
	}
	testwait.For(t, 5*time.Second, "check acknowledged", func() bool { return e.pendingChecks(t) == 0 })
}

func TestInProgressPreventsRedeliveryOfSlowLookup(t *testing.T) {
	t.Parallel()
	e := newEnv(t, time.Second)
	p := &fakeProvider{delay: 2500 * time.Millisecond}
	cfgA, cfgB := e.baseConfig(t, p), e.baseConfig(t, p)
	startWorker(t, cfgA)
	startWorker(t, cfgB)
	e.publishCheck(t, "slow.com", nil)
	e.waitEvents(t, 1, 1200*time.Millisecond)
	if n := len(p.callTimes("slow.com")); n != 1 {
		t.Errorf("%d lookups of a check slower than the ack wait, want 1", n)
	}
}

func TestTwoWorkersSlowProviderEachDomainOnce(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("500 checks")
	}
	e := newEnv(t, 2*time.Second)
	p := &fakeProvider{delay: 100 * time.Millisecond}
	for range 2 {
		cfg := e.baseConfig(t, p)
		cfg.Concurrency = 4
		startWorker(t, cfg)
	}
	const n = 500
	for i := range n {
		e.publishCheck(t, "d"+strconv.Itoa(i)+".com", nil)
	}
	testwait.For(t, 45*time.Second, "all checks done", func() bool { return e.pendingChecks(t) == 0 })
	msgs := e.waitEvents(t, n, 0)
	calls := p.allCalls()
	if len(calls) != n {
		t.Errorf("%d domains looked up, want %d", len(calls), n)
	}
	for d, c := range calls {
		if c != 1 {
			t.Errorf("%s looked up %d times", d, c)
		}
	}
	seen := map[string]bool{}
	for _, m := range msgs {
		if seen[m.Subject] {
			t.Errorf("two events on %s", m.Subject)
		}
		seen[m.Subject] = true
	}
}

func TestRateLimitPerKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 0)
	p := &keyedProvider{fakeProvider: &fakeProvider{}}
	cfg := e.baseConfig(t, p)
	cfg.LookupsPerSecond, cfg.Burst, cfg.Concurrency = 10, 1, 8
	w := startWorker(t, cfg)
	// Six checks on host "a" are spaced by the limiter; six on host "b"
	// run in parallel with them.
	for i := range 6 {
		e.publishCheck(t, "a"+strconv.Itoa(i)+".com", nil)
		e.publishCheck(t, "b"+strconv.Itoa(i)+".com", nil)
	}
	e.waitEvents(t, 12, 0)
	for _, host := range []string{"a", "b"} {
		var times []time.Time
		for i := range 6 {
			times = append(times, p.callTimes(host+strconv.Itoa(i)+".com")...)
		}
		first, last := times[0], times[0]
		for _, at := range times {
			if at.Before(first) {
				first = at
			}
			if at.After(last) {
				last = at
			}
		}
		// 6 lookups at 10/s with burst 1: at least 5 intervals of 100ms.
		if span := last.Sub(first); span < 450*time.Millisecond || span > 3*time.Second {
			t.Errorf("host %s: 6 lookups spanned %s, want about 500ms", host, span)
		}
	}
	if got := rateLimitWaits(t, w); got != 12 {
		t.Errorf("rate limit wait observations = %d, want 12", got)
	}
}

// keyedProvider rate-limits by the first letter of the domain.
type keyedProvider struct{ *fakeProvider }

func (k *keyedProvider) RateKey(domain string) string { return domain[:1] }

func TestRecoversFromDeletedConsumer(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 0)
	p := &fakeProvider{}
	startWorker(t, e.baseConfig(t, p))
	e.publishCheck(t, "one.com", nil)
	e.waitEvents(t, 1, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.js.DeleteConsumer(ctx, e.topo.Namespace.Stream(schemas.StreamDomainChecks), broker.ConsumerChecker); err != nil {
		t.Fatal(err)
	}
	e.publishCheck(t, "two.com", nil)
	e.waitEvents(t, 2, 0)
}

// rateLimitWaits returns how many lookups waited for the rate limiter.
func rateLimitWaits(t *testing.T, w *Worker) uint64 {
	t.Helper()
	n, err := testmetrics.Observations(w.cfg.Registerer.(prometheus.Gatherer), "domainguard_checker_rate_limit_wait_seconds", nil)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Evidence is capped at the source (#14 item 6): an answer with 5,000
// nameservers becomes one change event every consumer accepts (within
// schemas.MaxMessageBytes), saying what it dropped, instead of an event the
// enforcer dead-letters for every change of the domain.
func TestHugeEvidenceIsCappedBeforePublishing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 0)
	p := &fakeProvider{answer: func(_ context.Context, domain string, _ int) (lifecycle.Observation, error) {
		obs := observation(domain, lifecycle.PhaseExpired)
		for i := range 5000 {
			obs.Evidence.Nameservers = append(obs.Evidence.Nameservers, fmt.Sprintf("ns%04d.parking-%s.example", i, strings.Repeat("x", 20)))
		}
		return obs, nil
	}}
	startWorker(t, e.baseConfig(t, p))
	prev := observation("huge.com", lifecycle.PhaseActive)
	e.publishCheck(t, "huge.com", &prev)
	msgs := e.waitEvents(t, 1, 500*time.Millisecond)
	if len(msgs[0].Data) > schemas.MaxMessageBytes {
		t.Fatalf("change event is %d bytes, over the %d every consumer accepts", len(msgs[0].Data), schemas.MaxMessageBytes)
	}
	_, changed, err := schemas.Decode[schemas.DomainChanged](msgs[0].Data)
	if err != nil {
		t.Fatalf("change event refused: %v", err)
	}
	if n := len(changed.Evidence.Nameservers); n == 0 || n > lifecycle.MaxEvidenceItems {
		t.Errorf("%d nameservers kept, want 1..%d", n, lifecycle.MaxEvidenceItems)
	}
	if !strings.Contains(changed.Evidence.Detail, "nameservers 5000 -> ") {
		t.Errorf("detail %q does not say what was dropped", changed.Evidence.Detail)
	}
}

// privateProvider can check names under private suffixes (as auto does).
type privateProvider struct{ *fakeProvider }

func (privateProvider) ChecksPrivateNames() bool { return true }

// A check of a name under a private suffix looks up the name itself, never
// its registrable domain; a provider that cannot check such names (it would
// ask a registry that does not hold them) is never asked: unmonitored.
func TestPrivateSuffixNameChecks(t *testing.T) {
	t.Parallel()
	t.Run("provider that checks them", func(t *testing.T) {
		e := newEnv(t, 0)
		p := privateProvider{&fakeProvider{}}
		startWorker(t, e.baseConfig(t, p))
		e.publishCheck(t, "acme.us.com", nil)
		msgs := e.waitEvents(t, 1, 0)
		if !strings.HasSuffix(msgs[0].Subject, "acme.us.com") || p.allCalls()["acme.us.com"] != 1 || p.allCalls()["us.com"] != 0 {
			t.Fatalf("event on %s, lookups %v; want acme.us.com looked up as itself", msgs[0].Subject, p.allCalls())
		}
	})
	t.Run("provider that does not", func(t *testing.T) {
		e := newEnv(t, 0)
		p := &fakeProvider{}
		startWorker(t, e.baseConfig(t, p))
		e.publishCheck(t, "foo.github.io", nil)
		msgs := e.waitEvents(t, 1, 300*time.Millisecond)
		_, hb, err := schemas.Decode[schemas.DomainChecked](msgs[0].Data)
		if err != nil {
			t.Fatal(err)
		}
		if !hb.Unmonitored || hb.Domain != "foo.github.io" || !strings.Contains(hb.Detail, "private suffix github.io") || len(p.allCalls()) != 0 {
			t.Fatalf("heartbeat %+v, lookups %v; want unmonitored, no lookup", hb, p.allCalls())
		}
	})
}
