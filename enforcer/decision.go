package enforcer

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/domainguard/domainguard/schemas"
)

// Decision is who makes an operator decision, through which door, and why.
type Decision struct {
	// By is the operator's name (required).
	By string
	// Note says why; the console requires one, the CLI makes it optional.
	Note string
	// Via is "console" or "cli". Default "cli".
	Via string
}

func (d Decision) withDefaults() Decision {
	d.By, d.Note = strings.TrimSpace(d.By), strings.TrimSpace(d.Note)
	if d.Via == "" {
		d.Via = "cli"
	}
	return d
}

func (d Decision) validate(what string) error {
	if d.By == "" {
		return fmt.Errorf("%s: operator name is required", what)
	}
	// The payload's own checks (actor length, note length and characters).
	probe := schemas.OperatorAction{Action: schemas.ActionHoldApprove, Actor: d.By, Via: d.Via, Note: d.Note, At: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)}
	if err := probe.Validate(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// operatorEvent builds the audit.operator.action event of a decision; a
// carries the action, what it concerns and when.
func (s *Store) operatorEvent(d Decision, a schemas.OperatorAction) (auditEvent, error) {
	a.Actor, a.Via, a.Note = d.By, d.Via, d.Note
	id := schemas.DerivedID(a.At, consumerName, "operator", a.Action, a.HoldID, a.Domain, a.Actor,
		a.At.Format("2006-01-02T15:04:05.000000000Z07:00"))
	return s.newAuditEvent(id, schemas.SubjectOperatorAction, a.Domain, "", "", a.At, a)
}

// RecordAction records an operator action taken outside the store (a dead
// letter replayed, a check asked for) in audit_log and the outbox, so the
// audit trail and AUDIT see every decision in one place.
func (s *Store) RecordAction(ctx context.Context, d Decision, a schemas.OperatorAction) error {
	d = d.withDefaults()
	if err := d.validate("record " + a.Action); err != nil {
		return err
	}
	if a.At.IsZero() {
		a.At = s.cfg.Clock.Now().UTC()
	}
	e, err := s.operatorEvent(d, a)
	if err != nil {
		return err
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		return writeAudit(ctx, tx, []auditEvent{e}, s.cfg.DryRun, a.At)
	})
	if err != nil {
		return fmt.Errorf("record %s: %w", a.Action, err)
	}
	s.cfg.Logger.Info("operator action", "action", a.Action, "by", d.By, "via", d.Via, "domain", a.Domain)
	return nil
}
