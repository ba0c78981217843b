package hostapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/domainguard/domainguard/internal/broker"
	"github.com/domainguard/domainguard/producer"
	"github.com/domainguard/domainguard/schemas"
)

// HeaderClient names the API token a published message came through.
const HeaderClient = "Domainguard-Client"

// intakeTypes maps the accepted CloudEvents types to their subjects.
var intakeTypes = map[string]string{
	schemas.TypeFor(schemas.SubjectEmailVerified): schemas.SubjectEmailVerified,
	schemas.TypeFor(schemas.SubjectEmailRemoved):  schemas.SubjectEmailRemoved,
}

// Accepted is the body of a 202 answer to POST /v1/events.
type Accepted struct {
	ID      string `json:"id"`
	Subject string `json:"subject"`
	Stream  string `json:"stream"`
	// Sequence is the event's position in the stream.
	Sequence uint64 `json:"sequence"`
	// Duplicate is true when an event with this id was accepted within the
	// duplicate window before: it was not stored twice.
	Duplicate bool `json:"duplicate"`
}

// badRequest is a 4xx answer: status, code and message.
type badRequest struct {
	status  int
	code    string
	message string
}

func (e *badRequest) Error() string { return e.message }

func reject(status int, code, format string, args ...any) error {
	return &badRequest{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

func (a *API) postEvent(w http.ResponseWriter, r *http.Request) {
	ev, subject, err := a.readEvent(w, r)
	if err != nil {
		var br *badRequest
		if errors.As(err, &br) {
			writeError(w, br.status, br.code, br.message)
			return
		}
		writeError(w, http.StatusBadRequest, "invalid_event", err.Error())
		return
	}
	msg, err := broker.EventMessage(a.cfg.Topology.Namespace.Subject(subject), ev)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_event", err.Error())
		return
	}
	msg.Header = nats.Header{HeaderClient: {client(r)}}
	ack, err := a.cfg.JS.PublishMsg(r.Context(), msg.Msg())
	if err != nil {
		a.log.Error("host API: publish failed", "client", client(r), "subject", subject, "id", ev.ID, "error", err)
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "unavailable", "the event could not be stored; retry with the same id")
		return
	}
	a.log.Info("host API: event accepted", "client", client(r), "subject", subject, "id", ev.ID, "duplicate", ack.Duplicate)
	writeJSON(w, http.StatusAccepted, Accepted{ID: ev.ID, Subject: subject, Stream: ack.Stream, Sequence: ack.Sequence, Duplicate: ack.Duplicate})
}

// readEvent reads and checks the request's CloudEvent (structured or binary
// mode) the way the intake consumer will, so that what is accepted here is
// applied there.
func (a *API) readEvent(w http.ResponseWriter, r *http.Request) (schemas.Event, string, error) {
	var ev schemas.Event
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return ev, "", reject(http.StatusUnsupportedMediaType, "unsupported_media_type",
			"Content-Type is missing: send application/cloudevents+json (structured mode) or application/json with ce-* headers (binary mode)")
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return ev, "", reject(http.StatusUnsupportedMediaType, "unsupported_media_type", "Content-Type %q does not parse", ct)
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return ev, "", reject(http.StatusUnsupportedMediaType, "unsupported_media_type", "charset %q: only utf-8", cs)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.cfg.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return ev, "", reject(http.StatusRequestEntityTooLarge, "body_too_large", "the body exceeds %d bytes", a.cfg.MaxBodyBytes)
		}
		return ev, "", reject(http.StatusBadRequest, "unreadable_body", "reading the body: %v", err)
	}
	switch mt {
	case broker.ContentTypeCloudEvent:
		if ev, err = structured(body); err != nil {
			return ev, "", err
		}
	case schemas.ContentTypeJSON:
		if ev, err = binary(r.Header, body); err != nil {
			return ev, "", err
		}
	case "application/cloudevents-batch+json":
		return ev, "", reject(http.StatusUnsupportedMediaType, "unsupported_media_type", "batched mode is not supported: send one event per request")
	default:
		return ev, "", reject(http.StatusUnsupportedMediaType, "unsupported_media_type",
			"Content-Type %q: send application/cloudevents+json (structured mode) or application/json with ce-* headers (binary mode)", mt)
	}
	subject, ok := intakeTypes[ev.Type]
	if !ok {
		return ev, "", reject(http.StatusBadRequest, "unknown_event_type", "event type %q is not one the host sends: want %s or %s",
			ev.Type, schemas.TypeFor(schemas.SubjectEmailVerified), schemas.TypeFor(schemas.SubjectEmailRemoved))
	}
	if ev.Time.IsZero() {
		ev.Time = a.cfg.Clock.Now().UTC()
	}
	if err := a.checkData(ev, subject); err != nil {
		return ev, "", reject(http.StatusBadRequest, "invalid_event", "%v", err)
	}
	return ev, subject, nil
}

// checkData decodes the event as the intake consumer does and checks the
// address and verification time with the producer's own rules.
func (a *API) checkData(ev schemas.Event, subject string) error {
	raw, err := ev.Marshal()
	if err != nil {
		return err
	}
	var userID, email string
	switch subject {
	case schemas.SubjectEmailVerified:
		_, m, err := schemas.Decode[schemas.EmailVerified](raw)
		if err != nil {
			return err
		}
		if err := producer.CheckVerifiedAt(m.VerifiedAt, a.cfg.Clock.Now()); err != nil {
			return err
		}
		userID, email = m.UserID, m.Email
	default:
		_, m, err := schemas.Decode[schemas.EmailRemoved](raw)
		if err != nil {
			return err
		}
		userID, email = m.UserID, m.Email
	}
	_, err = producer.NormalizeAddress(userID, email)
	return err
}

// structured reads a structured-mode CloudEvent.
func structured(body []byte) (schemas.Event, error) {
	var ev schemas.Event
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return ev, reject(http.StatusBadRequest, "invalid_json", "the body is not a JSON object")
	}
	if err := json.Unmarshal(trimmed, &ev); err != nil {
		return ev, reject(http.StatusBadRequest, "invalid_json", "the body is not a valid CloudEvent: %v", err)
	}
	if ev.SpecVersion != schemas.SpecVersion {
		return ev, reject(http.StatusBadRequest, "invalid_event", "specversion %q is not %s", ev.SpecVersion, schemas.SpecVersion)
	}
	if ev.DataContentType != "" && ev.DataContentType != schemas.ContentTypeJSON {
		return ev, reject(http.StatusBadRequest, "invalid_event", "datacontenttype %q is not %s", ev.DataContentType, schemas.ContentTypeJSON)
	}
	ev.DataContentType = schemas.ContentTypeJSON
	return ev, requireAttributes(ev)
}

// binary reads a binary-mode CloudEvent: attributes in ce-* headers, the
// data in the body.
func binary(h http.Header, body []byte) (schemas.Event, error) {
	ev := schemas.Event{
		SpecVersion:     h.Get("Ce-Specversion"),
		ID:              h.Get("Ce-Id"),
		Source:          h.Get("Ce-Source"),
		Type:            h.Get("Ce-Type"),
		Subject:         h.Get("Ce-Subject"),
		DataContentType: schemas.ContentTypeJSON,
	}
	if ev.SpecVersion == "" {
		return ev, reject(http.StatusBadRequest, "invalid_event",
			"binary mode needs the ce-specversion, ce-id, ce-source and ce-type headers (or send Content-Type application/cloudevents+json)")
	}
	if ev.SpecVersion != schemas.SpecVersion {
		return ev, reject(http.StatusBadRequest, "invalid_event", "ce-specversion %q is not %s", ev.SpecVersion, schemas.SpecVersion)
	}
	if t := h.Get("Ce-Time"); t != "" {
		parsed, err := time.Parse(time.RFC3339Nano, t)
		if err != nil {
			return ev, reject(http.StatusBadRequest, "invalid_event", "ce-time is not RFC 3339")
		}
		ev.Time = parsed
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return ev, reject(http.StatusBadRequest, "invalid_json", "the body is not a JSON object")
	}
	if !json.Valid(trimmed) {
		return ev, reject(http.StatusBadRequest, "invalid_json", "the body is not valid JSON")
	}
	ev.Data = json.RawMessage(trimmed)
	return ev, requireAttributes(ev)
}

func requireAttributes(ev schemas.Event) error {
	for _, f := range [][2]string{{"id", ev.ID}, {"source", ev.Source}, {"type", ev.Type}} {
		if strings.TrimSpace(f[1]) == "" {
			return reject(http.StatusBadRequest, "invalid_event", "the CloudEvent attribute %s is required", f[0])
		}
		if len(f[1]) > 256 || strings.ContainsFunc(f[1], func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return reject(http.StatusBadRequest, "invalid_event", "the CloudEvent attribute %s is longer than 256 bytes or has control characters", f[0])
		}
	}
	if len(ev.Data) == 0 || string(ev.Data) == "null" {
		return reject(http.StatusBadRequest, "invalid_event", "the CloudEvent has no data")
	}
	return nil
}
