package broker

import (
	"context"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/domainguard/domainguard/schemas"
)

// ContentTypeCloudEvent is the Content-Type header of structured-mode
// CloudEvents.
const ContentTypeCloudEvent = "application/cloudevents+json"

// Message is a message domainguard publishes to JetStream. Every role,
// command and the host API build their NATS messages with it, so the
// de-duplication id and content type are set the same way everywhere.
type Message struct {
	// Subject is the full subject, namespace applied.
	Subject string
	Data    []byte
	// ID is the Nats-Msg-Id: JetStream stores one message per id within
	// the stream's duplicate window, so a retried publish is stored once.
	// Empty: none.
	ID string
	// ContentType is the Content-Type header; empty: none (or the one in
	// Header).
	ContentType string
	// Header holds further headers; ID and ContentType replace any of the
	// same name in it. It is copied, not shared.
	Header nats.Header
}

// EventMessage is the Message of a CloudEvent in structured mode on
// subject (the full subject), with the event id as its Nats-Msg-Id.
func EventMessage(subject string, ev schemas.Event) (Message, error) {
	if ev.ID == "" {
		return Message{}, fmt.Errorf("publish %s: event has no id", subject)
	}
	body, err := ev.Marshal()
	if err != nil {
		return Message{}, fmt.Errorf("publish %s: encode event %s: %w", subject, ev.ID, err)
	}
	return Message{Subject: subject, Data: body, ID: ev.ID, ContentType: ContentTypeCloudEvent}, nil
}

// Msg returns m as a NATS message.
func (m Message) Msg() *nats.Msg {
	h := make(nats.Header, len(m.Header)+2)
	for k, vs := range m.Header {
		h[k] = slices.Clone(vs)
	}
	if m.ID != "" {
		h.Set(schemas.HeaderMsgID, m.ID)
	}
	if m.ContentType != "" {
		h.Set("Content-Type", m.ContentType)
	}
	return &nats.Msg{Subject: m.Subject, Data: m.Data, Header: h}
}

// PublishEvent publishes a CloudEvent (structured JSON mode) on subject (the
// full subject, namespace applied) with Nats-Msg-Id set to the event id, so
// a retried publish within the duplicate window is stored once.
func PublishEvent(ctx context.Context, js jetstream.Publisher, subject string, ev schemas.Event) (*jetstream.PubAck, error) {
	m, err := EventMessage(subject, ev)
	if err != nil {
		return nil, err
	}
	ack, err := js.PublishMsg(ctx, m.Msg())
	if err != nil {
		return nil, fmt.Errorf("publish %s event %s: %w", subject, ev.ID, err)
	}
	return ack, nil
}
