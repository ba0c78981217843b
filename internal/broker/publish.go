package broker

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/domainguard/domainguard/schemas"
)

// ContentTypeCloudEvent is the Content-Type header of structured-mode
// CloudEvents.
const ContentTypeCloudEvent = "application/cloudevents+json"

// PublishEvent publishes a CloudEvent (structured JSON mode) on subject (the
// full subject, namespace applied) with Nats-Msg-Id set to the event id, so
// a retried publish within the duplicate window is stored once.
func PublishEvent(ctx context.Context, js jetstream.JetStream, subject string, ev schemas.Event) (*jetstream.PubAck, error) {
	if ev.ID == "" {
		return nil, fmt.Errorf("publish %s: event has no id", subject)
	}
	body, err := ev.Marshal()
	if err != nil {
		return nil, fmt.Errorf("publish %s: encode event %s: %w", subject, ev.ID, err)
	}
	msg := &nats.Msg{Subject: subject, Data: body, Header: nats.Header{}}
	msg.Header.Set(schemas.HeaderMsgID, ev.ID)
	msg.Header.Set("Content-Type", ContentTypeCloudEvent)
	ack, err := js.PublishMsg(ctx, msg)
	if err != nil {
		return nil, fmt.Errorf("publish %s event %s: %w", subject, ev.ID, err)
	}
	return ack, nil
}
