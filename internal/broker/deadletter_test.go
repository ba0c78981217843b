package broker_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/domainguard/domainguard/internal/broker"
	"github.com/domainguard/domainguard/internal/clock"
	"github.com/domainguard/domainguard/internal/testnats"
	"github.com/domainguard/domainguard/schemas"
)

// TestDeadLetterUnblocksDomain: dead-lettering a pending check publishes it
// to the DLQ and removes it from the work queue, so the domain can be
// checked again.
func TestDeadLetterUnblocksDomain(t *testing.T) {
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, srv := range servers {
		t.Run(srv.name, func(t *testing.T) {
			js, _, topo := srv.setup(t, func(tp *broker.Topology) { tp.Clock = clock.NewStub(at) })
			ctx := testContext(t)
			subj := topo.Namespace.CheckSubject("lapsed.example")
			msg := nats.NewMsg(subj)
			msg.Data = []byte(`{"domain":"lapsed.example"}`)
			msg.Header.Set("X-Test", "yes")
			if _, err := js.PublishMsg(ctx, msg); err != nil {
				t.Fatal(err)
			}
			c, err := topo.Consumer(ctx, js, schemas.StreamDomainChecks, broker.ConsumerChecker)
			if err != nil {
				t.Fatal(err)
			}
			got := fetchOne(t, c)
			if topo.IsLastDelivery(got, 0) {
				t.Errorf("first delivery reported as last (max deliver %d)", topo.WithDefaults().CheckMaxDeliver)
			}
			if !topo.IsLastDelivery(got, 1) {
				t.Errorf("first delivery of 1 not reported as last")
			}
			if err := topo.DeadLetter(ctx, js, got, schemas.StreamDomainChecks, broker.ConsumerChecker, errors.New("lookup kept failing")); err != nil {
				t.Fatalf("DeadLetter: %v", err)
			}
			if _, err := js.Publish(ctx, subj, []byte(`{"domain":"lapsed.example","again":true}`)); err != nil {
				t.Fatalf("publish after dead-lettering: %v (the dead-lettered check still blocks the domain)", err)
			}

			dlq, err := js.Stream(ctx, topo.Namespace.Stream(schemas.StreamDLQ))
			if err != nil {
				t.Fatal(err)
			}
			raw, err := dlq.GetLastMsgForSubject(ctx, topo.Namespace.DeadLetterSubject(schemas.StreamDomainChecks))
			if err != nil {
				t.Fatalf("dead letter not found: %v", err)
			}
			if id := raw.Header.Get(schemas.HeaderMsgID); id != "DOMAIN_CHECKS-1" {
				t.Errorf("dead letter Nats-Msg-Id %q, want DOMAIN_CHECKS-1", id)
			}
			var dl schemas.DeadLetter
			if err := json.Unmarshal(raw.Data, &dl); err != nil {
				t.Fatalf("decode dead letter: %v", err)
			}
			if err := dl.Validate(); err != nil {
				t.Errorf("dead letter invalid: %v", err)
			}
			want := schemas.DeadLetter{Stream: "DOMAIN_CHECKS", Consumer: "checker", Subject: "domains.check.lapsed.example",
				Sequence: 1, Error: "lookup kept failing", Deliveries: 1, At: at}
			if dl.Stream != want.Stream || dl.Consumer != want.Consumer || dl.Subject != want.Subject || dl.Sequence != want.Sequence ||
				dl.Error != want.Error || dl.Deliveries != want.Deliveries || !dl.At.Equal(at) ||
				string(dl.Payload) != `{"domain":"lapsed.example"}` || len(dl.Headers["X-Test"]) != 1 || dl.Headers["X-Test"][0] != "yes" {
				t.Errorf("dead letter %+v, want %+v with payload and X-Test header", dl, want)
			}
		})
	}
}

// TestDeadLetterPublishFailsKeepsMessage: when the DLQ is missing the
// publish fails, the error is returned and the original stays pending.
func TestDeadLetterPublishFailsKeepsMessage(t *testing.T) {
	js, _, topo := testnats.Shared(t)
	ctx := testContext(t)
	subj := topo.Namespace.CheckSubject("kept.example")
	if _, err := js.Publish(ctx, subj, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if err := js.DeleteStream(ctx, topo.Namespace.Stream(schemas.StreamDLQ)); err != nil {
		t.Fatal(err)
	}
	c, err := topo.Consumer(ctx, js, schemas.StreamDomainChecks, broker.ConsumerChecker)
	if err != nil {
		t.Fatal(err)
	}
	msg := fetchOne(t, c)
	if err := topo.DeadLetter(ctx, js, msg, schemas.StreamDomainChecks, broker.ConsumerChecker, errors.New("bad")); err == nil {
		t.Fatal("DeadLetter without a DLQ stream succeeded")
	}
	if _, err := js.Publish(ctx, subj, []byte(`{}`)); !broker.IsAlreadyPending(err) {
		t.Fatalf("publish after failed dead-lettering: %v, want already pending (original must not be acked)", err)
	}
}

func TestPublishEventDeduplicates(t *testing.T) {
	js, _, topo := testnats.Shared(t)
	ctx := testContext(t)
	ev, err := schemas.NewEvent("test", "domains.checked", "example.com", time.Now(),
		schemas.DomainChecked{Domain: "example.com", Phase: "active", ObservedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	subj := topo.Namespace.CheckedSubject("example.com")
	first, err := broker.PublishEvent(ctx, js, subj, ev)
	if err != nil {
		t.Fatal(err)
	}
	second, err := broker.PublishEvent(ctx, js, subj, ev)
	if err != nil {
		t.Fatal(err)
	}
	if first.Duplicate || !second.Duplicate || first.Sequence != second.Sequence {
		t.Errorf("pub acks %+v then %+v, want the second a duplicate of the first", first, second)
	}
	s, err := js.Stream(ctx, topo.Namespace.Stream(schemas.StreamDomainEvents))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := s.GetMsg(ctx, first.Sequence)
	if err != nil {
		t.Fatal(err)
	}
	if raw.Header.Get("Content-Type") != broker.ContentTypeCloudEvent || raw.Header.Get(schemas.HeaderMsgID) != ev.ID {
		t.Errorf("headers %v", raw.Header)
	}
	if _, _, err := schemas.Decode[schemas.DomainChecked](raw.Data); err != nil {
		t.Errorf("stored event does not decode: %v", err)
	}
	if _, err := broker.PublishEvent(ctx, js, subj, schemas.Event{}); err == nil {
		t.Error("event without id published")
	}
}

// A message too big to carry whole in a dead letter (≈780 KB and more no
// longer fit the 1 MB max payload once base64-encoded) is dead-lettered
// with its first MaxDeadLetterPayload bytes, its size and its SHA-256,
// instead of failing to dead-letter and being dropped (#14 item 10).
func TestDeadLetterTruncatesHugePayload(t *testing.T) {
	for _, srv := range servers {
		t.Run(srv.name, func(t *testing.T) {
			js, _, topo := srv.setup(t, nil)
			ctx := testContext(t)
			body := []byte(`{"user_id":"` + strings.Repeat("x", 900_000) + `"}`)
			if _, err := js.Publish(ctx, topo.Namespace.Subject(schemas.SubjectEmailVerified), body); err != nil {
				t.Fatal(err)
			}
			c, err := topo.Consumer(ctx, js, schemas.StreamAccounts, broker.ConsumerIntake)
			if err != nil {
				t.Fatal(err)
			}
			got := fetchOne(t, c)
			if err := topo.DeadLetter(ctx, js, got, schemas.StreamAccounts, broker.ConsumerIntake, errors.New(strings.Repeat("e", 10_000))); err != nil {
				t.Fatalf("DeadLetter of a %d-byte message: %v", len(body), err)
			}
			dlq, err := js.Stream(ctx, topo.Namespace.Stream(schemas.StreamDLQ))
			if err != nil {
				t.Fatal(err)
			}
			raw, err := dlq.GetLastMsgForSubject(ctx, topo.Namespace.DeadLetterSubject(schemas.StreamAccounts))
			if err != nil {
				t.Fatalf("dead letter not found: %v", err)
			}
			var dl schemas.DeadLetter
			if err := json.Unmarshal(raw.Data, &dl); err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(body)
			if len(dl.Payload) != schemas.MaxDeadLetterPayload || dl.PayloadBytes != len(body) || dl.PayloadSHA256 != hex.EncodeToString(sum[:]) {
				t.Errorf("dead letter payload %d bytes, payload_bytes %d, sha %q; want the first %d bytes, %d and the digest",
					len(dl.Payload), dl.PayloadBytes, dl.PayloadSHA256, schemas.MaxDeadLetterPayload, len(body))
			}
		})
	}
}
