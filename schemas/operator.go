package schemas

import (
	"slices"
	"strings"
	"time"
)

// SubjectOperatorAction carries one audit event per operator decision:
// approving or rejecting a hold, resuming the breaker, replaying a dead
// letter, asking for a check now. It says who did it, through which door
// and why (the note).
const SubjectOperatorAction = "audit.operator.action"

// Operator actions (OperatorAction.Action).
const (
	ActionHoldApprove   = "hold.approve"
	ActionHoldReject    = "hold.reject"
	ActionBreakerResume = "breaker.resume"
	ActionDLQReplay     = "dlq.replay"
	ActionCheckNow      = "check.now"
)

// OperatorActions lists every OperatorAction.Action value.
var OperatorActions = []string{ActionHoldApprove, ActionHoldReject, ActionBreakerResume, ActionDLQReplay, ActionCheckNow}

// MaxNoteBytes bounds an operator's note.
const MaxNoteBytes = 2000

// OperatorAction is emitted on audit.operator.action for every decision an
// operator makes, from the CLI or the console.
type OperatorAction struct {
	Action string `json:"action"`
	// Actor is the operator's name (console user, or --by / the OS user).
	Actor string `json:"actor"`
	// Via is where the action was taken: "console" or "cli".
	Via  string `json:"via"`
	Note string `json:"note,omitempty"`
	// What the action was about, as applies.
	HoldID string `json:"hold_id,omitempty"`
	Domain string `json:"domain,omitempty"`
	// Addresses counts the addresses the action unverified (hold.approve,
	// breaker.resume).
	Addresses   int       `json:"addresses,omitempty"`
	DLQSequence uint64    `json:"dlq_sequence,omitempty"`
	Stream      string    `json:"stream,omitempty"`
	Subject     string    `json:"subject,omitempty"`
	At          time.Time `json:"at"`
}

// Validate checks the required fields.
func (m OperatorAction) Validate() error {
	if !slices.Contains(OperatorActions, m.Action) {
		return invalid("action %q is not one of %s", m.Action, strings.Join(OperatorActions, ", "))
	}
	if err := requireText("actor", m.Actor, 256); err != nil {
		return err
	}
	if m.Via != "console" && m.Via != "cli" {
		return invalid("via %q is not console or cli", m.Via)
	}
	if len(m.Note) > MaxNoteBytes {
		return invalid("note is longer than %d bytes", MaxNoteBytes)
	}
	if strings.ContainsFunc(m.Note, func(r rune) bool { return (r < 0x20 && r != '\n' && r != '\r' && r != '\t') || r == 0x7f }) {
		return invalid("note contains control characters")
	}
	return requireTime("at", m.At)
}
