package broker_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/domainguard/domainguard/internal/broker"
	"github.com/domainguard/domainguard/schemas"
)

func TestMessageMsg(t *testing.T) {
	extra := nats.Header{"Content-Type": {"text/plain"}, schemas.HeaderMsgID: {"old"}, "X-Trace": {"a", "b"}}
	for _, tt := range []struct {
		name string
		in   broker.Message
		want nats.Header
	}{
		{"id and content type", broker.Message{ID: "e1", ContentType: schemas.ContentTypeJSON},
			nats.Header{schemas.HeaderMsgID: {"e1"}, "Content-Type": {schemas.ContentTypeJSON}}},
		{"none", broker.Message{}, nats.Header{}},
		{"id and content type replace the extra headers' own", broker.Message{ID: "e2", ContentType: broker.ContentTypeCloudEvent, Header: extra},
			nats.Header{schemas.HeaderMsgID: {"e2"}, "Content-Type": {broker.ContentTypeCloudEvent}, "X-Trace": {"a", "b"}}},
		{"empty ones keep the extra headers' own", broker.Message{Header: extra},
			nats.Header{schemas.HeaderMsgID: {"old"}, "Content-Type": {"text/plain"}, "X-Trace": {"a", "b"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.in.Subject, tt.in.Data = "dg.domains.check.example.com", []byte(`{"x":1}`)
			got := tt.in.Msg()
			if got.Subject != tt.in.Subject || !bytes.Equal(got.Data, tt.in.Data) {
				t.Errorf("subject %q data %q", got.Subject, got.Data)
			}
			if len(got.Header) != len(tt.want) {
				t.Errorf("headers %v, want %v", got.Header, tt.want)
			}
			for k, vs := range tt.want {
				if g := got.Header.Values(k); len(g) != len(vs) || (len(vs) > 0 && g[0] != vs[0]) || (len(vs) > 1 && g[1] != vs[1]) {
					t.Errorf("header %s = %v, want %v", k, g, vs)
				}
			}
			// The message owns its headers: changing it leaves the
			// Message's (and the next message built from it) alone.
			got.Header.Add("X-Trace", "c")
			got.Header.Set("Y", "1")
			if again := tt.in.Msg(); len(again.Header.Values("X-Trace")) != len(tt.want["X-Trace"]) || again.Header.Get("Y") != "" {
				t.Errorf("a built message shares its headers: %v", again.Header)
			}
		})
	}
	if len(extra["X-Trace"]) != 2 || extra.Get(schemas.HeaderMsgID) != "old" {
		t.Errorf("building changed the Message's headers: %v", extra)
	}
}

func TestEventMessage(t *testing.T) {
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	ev, err := schemas.NewEventWithID("ev-1", "test", "domains.checked", "example.com", at,
		schemas.DomainChecked{Domain: "example.com", Phase: "active", ObservedAt: at})
	if err != nil {
		t.Fatal(err)
	}
	m, err := broker.EventMessage("dg.domains.checked.example.com", ev)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := ev.Marshal()
	msg := m.Msg()
	if msg.Subject != "dg.domains.checked.example.com" || !bytes.Equal(msg.Data, want) ||
		msg.Header.Get(schemas.HeaderMsgID) != "ev-1" || msg.Header.Get("Content-Type") != broker.ContentTypeCloudEvent {
		t.Errorf("message %q %s %v", msg.Subject, msg.Data, msg.Header)
	}
	if _, err := broker.EventMessage("s", schemas.Event{}); err == nil {
		t.Error("an event without id became a message")
	}
}
