package schemas

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// CloudEvents 1.0 constants.
const (
	SpecVersion     = "1.0"
	ContentTypeJSON = "application/json"
	// TypePrefix is prepended to the unprefixed subject to form the event
	// type, e.g. "io.domainguard.audit.email.unverified".
	TypePrefix = "io.domainguard."
	// HeaderMsgID is JetStream's de-duplication header; domainguard sets it
	// to the CloudEvent id.
	HeaderMsgID = "Nats-Msg-Id"
)

// Event is a CloudEvents 1.0 event in structured JSON mode.
type Event struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Time            time.Time       `json:"time"`
	Subject         string          `json:"subject,omitempty"`
	DataContentType string          `json:"datacontenttype"`
	Data            json.RawMessage `json:"data"`
}

// TypeFor returns the CloudEvents type of messages on the (unprefixed)
// subject pattern, e.g. TypeFor("audit.email.unverified").
func TypeFor(subject string) string { return TypePrefix + subject }

// NewEvent wraps a validated payload in an envelope with a fresh UUIDv7 id.
// kind is the unprefixed subject (or subject family, e.g. "domains.changed")
// and subject the CloudEvents subject (the domain or address concerned).
func NewEvent(source, kind, subject string, now time.Time, data Payload) (Event, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return Event{}, fmt.Errorf("new event id: %w", err)
	}
	return NewEventWithID(id.String(), source, kind, subject, now, data)
}

// NewEventWithID is NewEvent with a caller-chosen id, for events whose id
// must be the same every time they are produced (redelivery-safe publishing).
func NewEventWithID(id, source, kind, subject string, now time.Time, data Payload) (Event, error) {
	if err := data.Validate(); err != nil {
		return Event{}, fmt.Errorf("build %s event: %w", kind, err)
	}
	raw, err := json.Marshal(data)
	if err != nil {
		return Event{}, fmt.Errorf("encode %s event: %w", kind, err)
	}
	return Event{
		SpecVersion:     SpecVersion,
		ID:              id,
		Source:          source,
		Type:            TypeFor(kind),
		Time:            now.UTC(),
		Subject:         subject,
		DataContentType: ContentTypeJSON,
		Data:            raw,
	}, nil
}

// Marshal encodes the event.
func (e Event) Marshal() ([]byte, error) { return json.Marshal(e) }

// MaxEventIDBytes bounds a CloudEvent's id, source and type.
const MaxEventIDBytes = 512

// Decode parses a message body into a payload of type T and validates it.
// The body is a CloudEvents structured envelope whose data is T, or (for
// host intake) a bare JSON object that is T itself. The returned Event has
// ID, Type and Time only when an envelope was given.
func Decode[T Payload](body []byte) (Event, T, error) {
	var zero T
	if len(body) > MaxMessageBytes {
		return Event{}, zero, invalid("message of %d bytes exceeds %d", len(body), MaxMessageBytes)
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return Event{}, zero, invalid("body is not a JSON object")
	}
	var probe struct {
		SpecVersion *string `json:"specversion"`
	}
	if err := json.Unmarshal(trimmed, &probe); err != nil {
		return Event{}, zero, invalid("body is not valid JSON: %v", err)
	}
	var ev Event
	data := trimmed
	if probe.SpecVersion != nil {
		if err := json.Unmarshal(trimmed, &ev); err != nil {
			return Event{}, zero, invalid("cloudevent envelope: %v", err)
		}
		if ev.SpecVersion != SpecVersion {
			return Event{}, zero, invalid("cloudevent specversion %q is not %s", ev.SpecVersion, SpecVersion)
		}
		if ev.ID == "" || ev.Type == "" || ev.Source == "" {
			return Event{}, zero, invalid("cloudevent lacks id, type or source")
		}
		// The id (with the source) is what consumers record to stay
		// idempotent: one that cannot be stored (a NUL) or indexed
		// (thousands of bytes) would fail every delivery, so it is
		// invalid input, dead-lettered at once.
		for _, f := range [][2]string{{"cloudevent id", ev.ID}, {"cloudevent source", ev.Source}, {"cloudevent type", ev.Type}} {
			if err := requireText(f[0], f[1], MaxEventIDBytes); err != nil {
				return Event{}, zero, err
			}
		}
		if len(ev.Data) == 0 || bytes.Equal(ev.Data, []byte("null")) {
			return Event{}, zero, invalid("cloudevent %s has no data", ev.ID)
		}
		data = ev.Data
	}
	var out T
	if err := json.Unmarshal(data, &out); err != nil {
		return ev, zero, invalid("payload: %v", err)
	}
	if err := out.Validate(); err != nil {
		return ev, zero, err
	}
	return ev, out, nil
}
