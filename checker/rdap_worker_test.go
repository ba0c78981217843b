package checker_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/domainguard/domainguard/checker"
	"github.com/domainguard/domainguard/checker/rdap"
	"github.com/domainguard/domainguard/internal/broker"
	"github.com/domainguard/domainguard/internal/fakerdap"
	"github.com/domainguard/domainguard/internal/testnats"
	"github.com/domainguard/domainguard/lifecycle"
	"github.com/domainguard/domainguard/schemas"
)

// TestWorkerWithRDAP runs the worker with the real RDAP client against the
// fake RDAP server: retried 503s, the canary rule, a confirmed release.
func TestWorkerWithRDAP(t *testing.T) {
	t.Parallel()
	fr := fakerdap.New(t)
	client, err := rdap.New(rdap.Config{BootstrapURL: fr.BootstrapURL(), HTTPClient: fr.Client(), Logger: testnats.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	js, _, topo := testnats.Shared(t)
	topo = topo.WithDefaults()
	w, err := checker.NewWorker(checker.Config{
		JS: js, Topology: topo, Provider: client,
		LookupsPerSecond: 100, Burst: 10, Concurrency: 4,
		RetryInitial: 10 * time.Millisecond, FetchWait: 300 * time.Millisecond,
		Logger: testnats.Logger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})

	// Previous observations as the enforcer would hold them: what the
	// server said before the scripted change.
	previous := func(domain string) *lifecycle.Observation {
		obs, err := client.Lookup(context.Background(), domain, nil)
		if err != nil || obs.Phase != lifecycle.PhaseActive {
			t.Fatalf("previous lookup of %s: %s %v", domain, obs.Phase, err)
		}
		return &obs
	}
	prevFlaky, prevGone, prevUnsure := previous("flaky.com"), previous("gone.org"), previous("unsure.net")

	fr.Set("flaky.com", fakerdap.Answer{Phase: lifecycle.PhaseRedemption, FailTimes: 3})
	fr.Set("gone.org", fakerdap.Answer{NotFound: true})
	fr.Set("unsure.net", fakerdap.Answer{NotFound: true})
	fr.Set("verisign.net", fakerdap.Answer{Status: 500}) // the .net canary fails
	before := fr.Lookups("flaky.com")

	for _, c := range []struct {
		domain string
		prev   *lifecycle.Observation
	}{{"flaky.com", prevFlaky}, {"gone.org", prevGone}, {"unsure.net", prevUnsure}} {
		publishCheck(t, js, topo, c.domain, c.prev)
	}

	got := waitEvents(t, js, topo, 3)
	changed := func(domain string) schemas.DomainChanged {
		t.Helper()
		m, ok := got[topo.Namespace.ChangedSubject(domain)]
		if !ok {
			t.Fatalf("no change event for %s", domain)
		}
		_, ch, err := schemas.Decode[schemas.DomainChanged](m.Data)
		if err != nil {
			t.Fatal(err)
		}
		return ch
	}
	if ch := changed("flaky.com"); ch.Phase != lifecycle.PhaseRedemption || ch.PreviousPhase != lifecycle.PhaseActive {
		t.Errorf("flaky.com change = %s → %s", ch.PreviousPhase, ch.Phase)
	}
	if n := fr.Lookups("flaky.com") - before; n != 4 {
		t.Errorf("flaky.com looked up %d times, want 4 (three 503s, then the answer)", n)
	}
	if ch := changed("gone.org"); ch.Phase != lifecycle.PhaseReleased || !ch.Evidence.NotFound {
		t.Errorf("gone.org change = %s (not found %v), want released confirmed by the canary", ch.Phase, ch.Evidence.NotFound)
	}
	// The canary failed: a 404 must not become released.
	if _, ok := got[topo.Namespace.ChangedSubject("unsure.net")]; ok {
		t.Fatal("unsure.net published as a change although its 404 was not confirmed")
	}
	m, ok := got[topo.Namespace.CheckedSubject("unsure.net")]
	if !ok {
		t.Fatal("no heartbeat for unsure.net")
	}
	_, hb, err := schemas.Decode[schemas.DomainChecked](m.Data)
	if err != nil {
		t.Fatal(err)
	}
	if !hb.Failed || hb.Phase != lifecycle.PhaseActive || hb.Detail == "" {
		t.Errorf("unsure.net heartbeat = %+v, want failed with the previous phase active and a reason", hb)
	}
}

func publishCheck(t *testing.T, js jetstream.JetStream, topo broker.Topology, domain string, prev *lifecycle.Observation) {
	t.Helper()
	req := schemas.CheckRequest{Domain: domain, Reason: schemas.CheckSchedule, RequestedAt: time.Now().UTC(), Previous: prev}
	ev, err := schemas.NewEvent("test", "domains.check", domain, time.Now(), req)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := broker.PublishEvent(ctx, js, topo.Namespace.CheckSubject(domain), ev); err != nil {
		t.Fatalf("publish check for %s: %v", domain, err)
	}
}

// waitEvents waits for n events in DOMAIN_EVENTS and returns them by
// subject, failing on two events with the same subject.
func waitEvents(t *testing.T, js jetstream.JetStream, topo broker.Topology, n int) map[string]*jetstream.RawStreamMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, topo.Namespace.Stream(schemas.StreamDomainEvents))
	if err != nil {
		t.Fatal(err)
	}
	for {
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatalf("waiting for %d events: %v", n, err)
		}
		if info.State.Msgs >= uint64(n) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // room for a duplicate to show up; there is no event to wait for
	out := make(map[string]*jetstream.RawStreamMsg)
	for seq := uint64(1); ; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, dup := out[m.Subject]; dup {
			t.Errorf("two events on %s", m.Subject)
		}
		var ev schemas.Event
		if json.Unmarshal(m.Data, &ev) != nil {
			t.Errorf("event on %s is not a CloudEvent", m.Subject)
		}
		out[m.Subject] = m
	}
	if len(out) != n {
		t.Errorf("%d events, want %d", len(out), n)
	}
	return out
}
