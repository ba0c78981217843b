package schemas_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/domainguard/domainguard/lifecycle"
	"github.com/domainguard/domainguard/schemas"
)

// Example_hostIntegration shows both sides of an integration with
// domainguard over NATS JetStream: the host application publishes
// accounts.email.verified when a user verifies an address, and a
// notification service reads audit.> through a durable consumer of its own
// and decodes each event type. (Here the audit event is published by the
// example itself, standing in for the enforcer's outbox relay.)
func Example_hostIntegration() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	url := os.Getenv("DOMAINGUARD_TEST_NATS_URL")
	if url == "" {
		url = nats.DefaultURL
	}
	nc, err := nats.Connect(url)
	if err != nil {
		fmt.Println("connect:", err)
		return
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)

	// A private namespace so the example never touches a real deployment.
	ns := schemas.Namespace{Prefix: fmt.Sprintf("example%d", rand.Uint32())}
	for _, s := range []struct{ name, subject string }{
		{schemas.StreamAccounts, schemas.SubjectAccountsAll},
		{schemas.StreamAudit, schemas.SubjectAuditAll},
	} {
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: ns.Stream(s.name), Subjects: []string{ns.Subject(s.subject)}, Storage: jetstream.MemoryStorage}); err != nil {
			fmt.Println("stream:", err)
			return
		}
		defer js.DeleteStream(context.Background(), ns.Stream(s.name))
	}

	// Host side: a bare JSON object is enough (a CloudEvent works too).
	// Nats-Msg-Id makes a retried publish harmless.
	verified := schemas.EmailVerified{UserID: "u-42", Email: "ada@example.org", VerifiedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	body, _ := json.Marshal(verified)
	msg := &nats.Msg{Subject: ns.Subject(schemas.SubjectEmailVerified), Data: body, Header: nats.Header{}}
	msg.Header.Set(schemas.HeaderMsgID, "signup-u-42-ada@example.org")
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		fmt.Println("publish:", err)
		return
	}
	fmt.Println("host published", schemas.SubjectEmailVerified)

	// What the enforcer emits when that domain lapses.
	unverified := schemas.EmailUnverified{
		UserID: "u-42", Email: "ada@example.org", Domain: "example.org",
		Reason: lifecycle.ReasonRedemption, Phase: lifecycle.PhaseRedemption, PreviousPhase: lifecycle.PhaseActive,
		Evidence:     lifecycle.Evidence{Provider: "rdap", Statuses: []string{"pending delete", "redemption period"}, ObservedAt: time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)},
		UnverifiedAt: time.Date(2026, 5, 1, 0, 0, 1, 0, time.UTC),
	}
	ev, _ := schemas.NewEvent("domainguard/enforcer", schemas.SubjectEmailUnverified, unverified.Email, unverified.UnverifiedAt, unverified)
	raw, _ := ev.Marshal()
	if _, err := js.Publish(ctx, ns.Subject(schemas.SubjectEmailUnverified), raw, jetstream.WithMsgID(ev.ID)); err != nil {
		fmt.Println("publish audit:", err)
		return
	}

	// Notification side: its own durable consumer, explicit acks.
	cons, err := js.CreateOrUpdateConsumer(ctx, ns.Stream(schemas.StreamAudit), jetstream.ConsumerConfig{
		Durable: "notifier", AckPolicy: jetstream.AckExplicitPolicy, FilterSubject: ns.Subject(schemas.SubjectAuditAll),
	})
	if err != nil {
		fmt.Println("consumer:", err)
		return
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		fmt.Println("fetch:", err)
		return
	}
	for m := range batch.Messages() {
		var probe schemas.Event
		_ = json.Unmarshal(m.Data(), &probe)
		switch strings.TrimPrefix(probe.Type, schemas.TypePrefix) {
		case schemas.SubjectEmailUnverified:
			_, p, err := schemas.Decode[schemas.EmailUnverified](m.Data())
			if err != nil {
				fmt.Println("bad event:", err)
				continue
			}
			fmt.Printf("notify %s: %s is no longer a recovery address (%s, %s)\n", p.UserID, p.Email, p.Domain, p.Reason)
		case schemas.SubjectDomainExpiring, schemas.SubjectDomainRestored, schemas.SubjectDomainReregistered, schemas.SubjectDomainChanged:
			_, p, _ := schemas.Decode[schemas.DomainEvent](m.Data())
			fmt.Printf("%s: %s is %s\n", probe.Type, p.Domain, p.Phase)
		case schemas.SubjectEnforcementHeld:
			_, p, _ := schemas.Decode[schemas.EnforcementHeld](m.Data())
			fmt.Printf("hold %s on %s\n", p.HoldID, p.Domain)
		case schemas.SubjectEnforcementPaused, schemas.SubjectEnforcementResumed:
			_, p, _ := schemas.Decode[schemas.EnforcementPaused](m.Data())
			fmt.Printf("enforcement paused=%v: %s\n", p.Paused, p.Reason)
		}
		_ = m.Ack()
	}
	// Output:
	// host published accounts.email.verified
	// notify u-42: ada@example.org is no longer a recovery address (example.org, domain_redemption)
}
