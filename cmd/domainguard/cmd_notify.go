package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/domainguard/domainguard/internal/broker"
	"github.com/domainguard/domainguard/internal/redact"
	"github.com/domainguard/domainguard/schemas"
)

func init() {
	register("notify-example", command{
		usage: "[--webhook URL] [--durable NAME]: reference notifier: turns audit events into messages for users on stdout or a webhook (NATS user `notifier`, AUDIT only)",
		run:   runNotify,
	})
}

// notice is what the reference notifier sends: one message for one user.
type notice struct {
	EventID string `json:"event_id"`
	Type    string `json:"type"`
	UserID  string `json:"user_id"`
	Email   string `json:"email"`
	Text    string `json:"text"`
}

// notifyMaxDeliver is the notifier consumer's MaxDeliver.
const notifyMaxDeliver = 20

func runNotify(ctx context.Context, inv invocation) error {
	fs := flag.NewFlagSet("notify-example", flag.ContinueOnError)
	webhook := fs.String("webhook", "", "POST each notice as JSON to this URL instead of printing it")
	durable := fs.String("durable", "notifier", "durable consumer name on the AUDIT stream (deploy/nats/auth.conf allows the user notifier only this one)")
	cfg, rest, log, err := loadConfig(inv, fs)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageErr("notify-example takes no arguments")
	}
	// AUDIT only: the notifier user may look at no other stream and never
	// manages the topology.
	a, err := openApp(ctx, cfg, log, needs{nats: true, serve: true, streams: []string{schemas.StreamAudit}})
	if err != nil {
		return err
	}
	defer a.close()
	stream := a.topo.Namespace.Stream(schemas.StreamAudit)
	// A durable consumer of its own: the notifier resumes where it stopped
	// and never shares acks with another subscriber.
	_, err = a.js.CreateOrUpdateConsumer(a.ctx, stream, jetstream.ConsumerConfig{
		Durable: *durable, AckPolicy: jetstream.AckExplicitPolicy, DeliverPolicy: jetstream.DeliverAllPolicy,
		FilterSubject: a.topo.Namespace.Subject(schemas.SubjectAuditAll), AckWait: 30 * time.Second, MaxDeliver: notifyMaxDeliver,
	})
	if err != nil {
		return fmt.Errorf("notifier consumer: %w", err)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	send := func(ctx context.Context, n notice) error {
		if *webhook == "" {
			fmt.Fprintf(inv.stdout, "to %s <%s>: %s\n", n.UserID, n.Email, n.Text)
			return nil
		}
		body, _ := json.Marshal(n)
		// A webhook URL often is a secret as a whole (a token in its
		// path): errors, logged and dead-lettered, name only its origin.
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, *webhook, bytes.NewReader(body))
		if err != nil {
			return fmt.Errorf("webhook %s: not a usable URL", redact.Origin(*webhook))
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err // without the URL
			}
			return fmt.Errorf("webhook %s: %w", redact.Origin(*webhook), err)
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		resp.Body.Close()
		if resp.StatusCode >= 300 {
			return fmt.Errorf("webhook %s: %s", redact.Origin(*webhook), resp.Status)
		}
		return nil
	}
	err = a.topo.Run(a.ctx, a.js, broker.ConsumeOptions{Stream: schemas.StreamAudit, Durable: *durable, MaxDeliver: notifyMaxDeliver, Logger: log},
		func(ctx context.Context, msg jetstream.Msg) broker.Outcome {
			notices, err := noticesFor(msg.Data())
			if err != nil {
				// Not ours to fix: log and move on rather than block the stream.
				log.Warn("notifier: undecodable audit event", "subject", msg.Subject(), "error", err)
				return broker.Done()
			}
			for _, n := range notices {
				if err := send(ctx, n); err != nil {
					return broker.Retry(err) // the webhook is retried, and dead-lettered on the last delivery
				}
			}
			return broker.Done()
		})
	if denied := a.denied(); denied != nil {
		return denied
	}
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// noticesFor turns one audit event into the user messages it calls for.
// Event types other than expiring and unverified need no user message.
func noticesFor(body []byte) ([]notice, error) {
	var probe schemas.Event
	if err := json.Unmarshal(body, &probe); err != nil {
		return nil, err
	}
	switch strings.TrimPrefix(probe.Type, schemas.TypePrefix) {
	case schemas.SubjectEmailUnverified:
		ev, m, err := schemas.Decode[schemas.EmailUnverified](body)
		if err != nil {
			return nil, err
		}
		return []notice{{EventID: ev.ID, Type: ev.Type, UserID: m.UserID, Email: m.Email, Text: fmt.Sprintf(
			"Your address %s can no longer be used to recover your account: its domain %s is %s (%s). Add another address and verify it.",
			m.Email, m.Domain, strings.ReplaceAll(string(m.Phase), "_", " "), m.Reason)}}, nil
	case schemas.SubjectDomainExpiring:
		ev, m, err := schemas.Decode[schemas.DomainEvent](body)
		if err != nil {
			return nil, err
		}
		when := "soon"
		if m.ExpiresAt != nil {
			when = "on " + m.ExpiresAt.UTC().Format("2006-01-02")
		}
		out := make([]notice, 0, len(m.Addresses))
		for _, a := range m.Addresses {
			out = append(out, notice{EventID: ev.ID, Type: ev.Type, UserID: a.UserID, Email: a.Email, Text: fmt.Sprintf(
				"The domain of your address %s (%s) expires %s. If it lapses, the address will stop working for account recovery: renew it or add a second address.",
				a.Email, m.Domain, when)})
		}
		return out, nil
	}
	return nil, nil
}
