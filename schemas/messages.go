package schemas

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/domainguard/domainguard/lifecycle"
)

// MaxMessageBytes is the largest message any consumer accepts; bigger ones
// are dead-lettered without decoding.
const MaxMessageBytes = 64 << 10

// Payload is implemented by every message body.
type Payload interface {
	// Validate reports the first problem that makes the payload unusable.
	Validate() error
}

// ErrInvalid is wrapped by every validation error, so consumers can tell
// bad input (dead-letter it) from failures worth retrying.
var ErrInvalid = errors.New("invalid message")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

func requireText(field, v string, max int) error {
	if strings.TrimSpace(v) == "" {
		return invalid("%s is required", field)
	}
	if len(v) > max {
		return invalid("%s is longer than %d bytes", field, max)
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return invalid("%s contains control characters", field)
		}
	}
	return nil
}

func requireTime(field string, t time.Time) error {
	if t.IsZero() {
		return invalid("%s is required", field)
	}
	if t.Year() < 1985 || t.Year() > 9000 {
		return invalid("%s %s is out of range", field, t.Format(time.RFC3339))
	}
	return nil
}

// requireDomain checks a domain name field against the DNS length limit
// (253 bytes); the intake consumer checks the name itself.
func requireDomain(v string) error {
	return requireText("domain", v, 253)
}

func requirePhase(field string, p lifecycle.Phase) error {
	if !p.Valid() {
		return invalid("%s %q is not a phase", field, p)
	}
	return nil
}

// optionalPhase checks p unless it is absent ("").
func optionalPhase(field string, p lifecycle.Phase) error {
	if p == "" {
		return nil
	}
	return requirePhase(field, p)
}

// requireEvidence checks what the evidence schema requires: who answered
// and when.
func requireEvidence(field string, e lifecycle.Evidence) error {
	if err := requireText(field+".provider", e.Provider, 64); err != nil {
		return err
	}
	return requireTime(field+".observed_at", e.ObservedAt)
}

// optionalEvidence checks e unless it is absent (nil).
func optionalEvidence(field string, e *lifecycle.Evidence) error {
	if e == nil {
		return nil
	}
	return requireEvidence(field, *e)
}

func requireReason(r lifecycle.Reason) error {
	if !r.Valid() {
		return invalid("reason %q is not an unverification reason", r)
	}
	return nil
}

// EmailVerified is published by the host application on
// accounts.email.verified when a user verifies (or re-verifies) an address.
type EmailVerified struct {
	UserID     string    `json:"user_id"`
	Email      string    `json:"email"`
	VerifiedAt time.Time `json:"verified_at"`
}

// Validate checks the required fields. The email's domain is checked by the
// intake consumer (internal/domainname), which knows the PSL.
func (m EmailVerified) Validate() error {
	if err := requireText("user_id", m.UserID, 256); err != nil {
		return err
	}
	if err := requireText("email", m.Email, 254); err != nil {
		return err
	}
	return requireTime("verified_at", m.VerifiedAt)
}

// EmailRemoved is published by the host application on
// accounts.email.removed when an address is deleted from an account.
type EmailRemoved struct {
	UserID string `json:"user_id"`
	Email  string `json:"email"`
}

// Validate checks the required fields.
func (m EmailRemoved) Validate() error {
	if err := requireText("user_id", m.UserID, 256); err != nil {
		return err
	}
	return requireText("email", m.Email, 254)
}

// CheckReason says why a check was enqueued.
type CheckReason string

// The check reasons.
const (
	CheckSchedule CheckReason = "schedule"
	CheckSignup   CheckReason = "signup"
	CheckManual   CheckReason = "manual"
)

// CheckRequest is published by the producer on domains.check.<domain>. It
// carries the previous observation so that checkers stay stateless.
type CheckRequest struct {
	Domain      string                 `json:"domain"`
	Reason      CheckReason            `json:"reason"`
	RequestedAt time.Time              `json:"requested_at"`
	Previous    *lifecycle.Observation `json:"previous,omitempty"`
}

// Validate checks the required fields.
func (m CheckRequest) Validate() error {
	if err := requireDomain(m.Domain); err != nil {
		return err
	}
	switch m.Reason {
	case CheckSchedule, CheckSignup, CheckManual:
	default:
		return invalid("reason %q is not schedule, signup or manual", m.Reason)
	}
	if err := requireTime("requested_at", m.RequestedAt); err != nil {
		return err
	}
	if m.Previous != nil {
		if err := requirePhase("previous.phase", m.Previous.Phase); err != nil {
			return err
		}
	}
	return nil
}

// DomainChanged is published by a checker on domains.changed.<domain> when
// the phase or the evidence differs from the previous observation.
type DomainChanged struct {
	Domain           string              `json:"domain"`
	PreviousPhase    lifecycle.Phase     `json:"previous_phase"`
	Phase            lifecycle.Phase     `json:"phase"`
	PreviousEvidence *lifecycle.Evidence `json:"previous_evidence,omitempty"`
	Evidence         lifecycle.Evidence  `json:"evidence"`
}

// Validate checks the required fields. A change to unknown is never
// published, so it is invalid here.
func (m DomainChanged) Validate() error {
	if err := requireDomain(m.Domain); err != nil {
		return err
	}
	if err := requirePhase("previous_phase", m.PreviousPhase); err != nil {
		return err
	}
	if err := requirePhase("phase", m.Phase); err != nil {
		return err
	}
	if m.Phase == lifecycle.PhaseUnknown {
		return invalid("phase unknown is never a change")
	}
	if err := optionalEvidence("previous_evidence", m.PreviousEvidence); err != nil {
		return err
	}
	return requireEvidence("evidence", m.Evidence)
}

// Observation returns the new observation the event carries.
func (m DomainChanged) Observation() lifecycle.Observation {
	return lifecycle.Observation{Domain: m.Domain, Phase: m.Phase, Evidence: m.Evidence}
}

// DomainChecked is the checker's heartbeat on domains.checked.<domain>: the
// domain was looked up and nothing changed (or the answer was unknown).
type DomainChecked struct {
	Domain     string          `json:"domain"`
	Phase      lifecycle.Phase `json:"phase"`
	ObservedAt time.Time       `json:"observed_at"`
	// Failed is set when the lookup failed or was inconclusive; the domain
	// is then not marked checked and is retried with growing delays.
	Failed bool `json:"failed,omitempty"`
	// Unmonitored is set when no source of evidence covers the domain's
	// TLD (no RDAP service, no commercial provider, no DNS evidence): the
	// domain is marked unmonitored and retried weekly (DESIGN.md §8).
	Unmonitored bool   `json:"unmonitored,omitempty"`
	Detail      string `json:"detail,omitempty"`
}

// Validate checks the required fields.
func (m DomainChecked) Validate() error {
	if err := requireDomain(m.Domain); err != nil {
		return err
	}
	if err := requirePhase("phase", m.Phase); err != nil {
		return err
	}
	return requireTime("observed_at", m.ObservedAt)
}

// EmailUnverified is emitted on audit.email.unverified for every address
// domainguard unverifies.
type EmailUnverified struct {
	UserID string `json:"user_id"`
	// Email is the stored key (domainname.StoredEmail): the local part as
	// the host sent it, the domain part as its IDNA A-label in lower case
	// without a trailing dot.
	Email string `json:"email"`
	// EmailAsSent is the address exactly as the host sent it in its
	// latest applied event or import row (absent for addresses stored
	// before domainguard kept it).
	EmailAsSent   string             `json:"email_as_sent,omitempty"`
	Domain        string             `json:"domain"`
	Reason        lifecycle.Reason   `json:"reason"`
	Phase         lifecycle.Phase    `json:"phase"`
	PreviousPhase lifecycle.Phase    `json:"previous_phase"`
	Evidence      lifecycle.Evidence `json:"evidence"`
	UnverifiedAt  time.Time          `json:"unverified_at"`
	HoldID        string             `json:"hold_id,omitempty"`
}

// Validate checks the required fields.
func (m EmailUnverified) Validate() error {
	for _, f := range [][2]string{{"user_id", m.UserID}, {"email", m.Email}, {"domain", m.Domain}} {
		if err := requireText(f[0], f[1], 256); err != nil {
			return err
		}
	}
	if m.EmailAsSent != "" {
		if err := requireText("email_as_sent", m.EmailAsSent, 256); err != nil {
			return err
		}
	}
	if err := requireReason(m.Reason); err != nil {
		return err
	}
	if err := requirePhase("phase", m.Phase); err != nil {
		return err
	}
	if err := optionalPhase("previous_phase", m.PreviousPhase); err != nil {
		return err
	}
	if err := requireEvidence("evidence", m.Evidence); err != nil {
		return err
	}
	return requireTime("unverified_at", m.UnverifiedAt)
}

// Address names one email address of one user.
type Address struct {
	UserID string `json:"user_id"`
	Email  string `json:"email"`
	// EmailAsSent is the address as the host sent it (see EmailUnverified).
	EmailAsSent string `json:"email_as_sent,omitempty"`
}

// DomainEvent is the payload of audit.domain.changed, .expiring, .restored
// and .reregistered: what happened to a domain, with the addresses it
// concerns (verified ones for expiring; the unverified ones for restored and
// reregistered).
type DomainEvent struct {
	Domain           string              `json:"domain"`
	PreviousPhase    lifecycle.Phase     `json:"previous_phase"`
	Phase            lifecycle.Phase     `json:"phase"`
	ExpiresAt        *time.Time          `json:"expires_at,omitempty"`
	Evidence         lifecycle.Evidence  `json:"evidence"`
	PreviousEvidence *lifecycle.Evidence `json:"previous_evidence,omitempty"`
	Addresses        []Address           `json:"addresses"`
	// AddressCount is how many addresses the event concerns. Addresses is
	// cut at a few thousand to keep the message under the NATS payload
	// limit; when AddressCount is larger, list them with `domainguard
	// status DOMAIN` (the per-address audit.email.unverified events are
	// never cut).
	AddressCount int `json:"address_count"`
}

// Validate checks the required fields.
func (m DomainEvent) Validate() error {
	if err := requireDomain(m.Domain); err != nil {
		return err
	}
	if err := requirePhase("phase", m.Phase); err != nil {
		return err
	}
	if err := optionalPhase("previous_phase", m.PreviousPhase); err != nil {
		return err
	}
	if m.Addresses == nil {
		return invalid("addresses is required (may be empty)")
	}
	if err := optionalEvidence("previous_evidence", m.PreviousEvidence); err != nil {
		return err
	}
	return requireEvidence("evidence", m.Evidence)
}

// EnforcementHeld is emitted on audit.enforcement.held when a change was
// held for an operator instead of applied.
type EnforcementHeld struct {
	HoldID    string           `json:"hold_id"`
	Domain    string           `json:"domain"`
	Cause     string           `json:"cause"` // a lifecycle.HoldCause other than breaker
	Reason    lifecycle.Reason `json:"reason"`
	Phase     lifecycle.Phase  `json:"phase"`
	Addresses int              `json:"addresses"`
}

// Validate checks the required fields.
func (m EnforcementHeld) Validate() error {
	for _, f := range [][2]string{{"hold_id", m.HoldID}, {"domain", m.Domain}} {
		if err := requireText(f[0], f[1], 256); err != nil {
			return err
		}
	}
	if c := lifecycle.HoldCause(m.Cause); !c.Valid() || c == lifecycle.HoldBreaker {
		return invalid("cause %q is not cap, protected or handle_changed", m.Cause)
	}
	if err := requireReason(m.Reason); err != nil {
		return err
	}
	return requirePhase("phase", m.Phase)
}

// EnforcementPaused is emitted on audit.enforcement.paused when the breaker
// trips, and on audit.enforcement.resumed (with Paused false) when an
// operator resumes enforcement.
type EnforcementPaused struct {
	Paused    bool      `json:"paused"`
	Reason    string    `json:"reason"`
	Observed  int       `json:"observed"`   // domains observed in the window
	NonActive int       `json:"non_active"` // of which turned non-active
	Percent   float64   `json:"percent"`
	At        time.Time `json:"at"`
	By        string    `json:"by,omitempty"`
}

// Validate checks the required fields.
func (m EnforcementPaused) Validate() error {
	if err := requireText("reason", m.Reason, 1024); err != nil {
		return err
	}
	return requireTime("at", m.At)
}

// MaxDeadLetterPayload bounds the payload a dead letter carries: base64
// and the letter's other fields must still fit the server's max_payload
// (1 MB in deploy/nats). A longer payload is cut, with its size and
// SHA-256 kept (such a letter is never replayed: the payload is invalid).
const MaxDeadLetterPayload = 256 << 10

// DeadLetter is published on dlq.<stream> for a message a consumer could
// not process: bad input, or a message that failed too often.
type DeadLetter struct {
	Stream   string              `json:"stream"`
	Consumer string              `json:"consumer"`
	Subject  string              `json:"subject"`
	Sequence uint64              `json:"sequence"`
	Headers  map[string][]string `json:"headers,omitempty"`
	Payload  []byte              `json:"payload"` // base64 in JSON
	// PayloadBytes and PayloadSHA256 describe the original payload when
	// Payload holds only its first MaxDeadLetterPayload bytes (a letter
	// must fit a NATS message); zero and empty otherwise.
	PayloadBytes  int       `json:"payload_bytes,omitempty"`
	PayloadSHA256 string    `json:"payload_sha256,omitempty"`
	Error         string    `json:"error"`
	Deliveries    uint64    `json:"deliveries"`
	At            time.Time `json:"at"`
}

// Validate checks the required fields.
func (m DeadLetter) Validate() error {
	for _, f := range [][2]string{{"stream", m.Stream}, {"subject", m.Subject}} {
		if err := requireText(f[0], f[1], 512); err != nil {
			return err
		}
	}
	if strings.TrimSpace(m.Error) == "" {
		return invalid("error is required")
	}
	return requireTime("at", m.At)
}

// DeadLetterReplayed is published on audit.dlq.replayed when an operator
// replays a dead letter (`domainguard dlq replay`): who put which message
// back into which stream.
type DeadLetterReplayed struct {
	// DLQSequence is the dead letter's sequence in the DLQ stream.
	DLQSequence uint64 `json:"dlq_sequence"`
	// Stream, Sequence and Subject locate the original message.
	Stream   string `json:"stream"`
	Sequence uint64 `json:"sequence"`
	Subject  string `json:"subject"`
	// PayloadSHA256 is the hex SHA-256 of the replayed payload.
	PayloadSHA256 string `json:"payload_sha256"`
	// MessageID is the Nats-Msg-Id the replay was published with.
	MessageID string `json:"message_id"`
	// By names who replayed: the NATS user and the OS user and host.
	By string    `json:"by"`
	At time.Time `json:"at"`
}

// Validate checks the required fields.
func (m DeadLetterReplayed) Validate() error {
	for _, f := range [][2]string{{"stream", m.Stream}, {"subject", m.Subject}, {"payload_sha256", m.PayloadSHA256},
		{"message_id", m.MessageID}, {"by", m.By}} {
		if err := requireText(f[0], f[1], 512); err != nil {
			return err
		}
	}
	return requireTime("at", m.At)
}

// ValidatePayload checks body (a CloudEvent or bare JSON) against the
// payload type of an unprefixed subject that a host or a role publishes
// and a dead letter may be replayed to: the host's account events, check
// requests, changes and heartbeats. For a per-domain subject the payload's
// domain must be the subject's. Errors wrap ErrInvalid.
func ValidatePayload(subject string, body []byte) error {
	var domain string
	var err error
	perDomain := func(prefix string) (string, bool) { return strings.CutPrefix(subject, prefix) }
	if subject == SubjectEmailVerified {
		_, _, err = Decode[EmailVerified](body)
		return err
	}
	if subject == SubjectEmailRemoved {
		_, _, err = Decode[EmailRemoved](body)
		return err
	}
	var want string
	if d, ok := perDomain(SubjectCheckPrefix); ok {
		want = d
		var m CheckRequest
		_, m, err = Decode[CheckRequest](body)
		domain = m.Domain
	} else if d, ok := perDomain(SubjectChangedPrefix); ok {
		want = d
		var m DomainChanged
		_, m, err = Decode[DomainChanged](body)
		domain = m.Domain
	} else if d, ok := perDomain(SubjectCheckedPrefix); ok {
		want = d
		var m DomainChecked
		_, m, err = Decode[DomainChecked](body)
		domain = m.Domain
	} else {
		return invalid("subject %q carries no payload that may be replayed", subject)
	}
	if err != nil {
		return err
	}
	if domain != want {
		return invalid("payload names domain %q, subject %q another", domain, subject)
	}
	return nil
}
