package enforcer

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/domainguard/domainguard/lifecycle"
	"github.com/domainguard/domainguard/schemas"
)

// maxEventAddresses bounds the address list of one audit.domain.* event so
// the event stays far below the NATS payload limit; audit.email.unverified
// events (one per address) are never truncated.
const maxEventAddresses = 2000

// Outcome says what enforcing one changed event did.
type Outcome struct {
	// Result is one of ResultApplied, ResultStale, ResultDuplicate,
	// ResultUnknown.
	Result string
	// Reason of the addresses unverified (or that would have been, or held).
	Reason lifecycle.Reason
	// Unverified counts addresses unverified now (0 in dry run).
	Unverified int
	// WouldUnverify counts addresses a dry run would have unverified.
	WouldUnverify int
	// HoldID is set when the change was held (cause cap, protected or breaker).
	HoldID    string
	HoldCause string
	// Paused is set when this event tripped the breaker.
	Paused bool
	// Events lists the kinds of audit events recorded, in order.
	Events []string
}

// EnforceChanged applies one domains.changed event in one transaction:
// record the observation, update the domain if the observation is newer,
// unverify (or hold) the affected addresses, write audit_log and outbox
// rows, and record msgID in processed_messages. A msgID seen before changes
// nothing and returns ResultDuplicate.
func (s *Store) EnforceChanged(ctx context.Context, msgID string, ch schemas.DomainChanged) (Outcome, error) {
	if err := ch.Validate(); err != nil {
		return Outcome{}, err
	}
	if msgID == "" {
		return Outcome{}, fmt.Errorf("%w: message id is empty", schemas.ErrInvalid)
	}
	var out Outcome
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		out, err = s.enforceChangedTx(ctx, tx, msgID, ch)
		return err
	})
	if err != nil {
		return Outcome{}, fmt.Errorf("enforce %s (%s): %w", ch.Domain, msgID, err)
	}
	s.count(out)
	return out, nil
}

// ChangeItem is one changed event for EnforceChangedGroup.
type ChangeItem struct {
	MsgID  string
	Change schemas.DomainChanged
}

// EnforceChangedGroup applies several changed events in one transaction,
// each inside its own savepoint: an event that fails rolls back only its
// own writes, and the others commit together. One commit (one WAL flush)
// for many events is what lets the enforcer keep up with a wave of lapses;
// each event's decision stays atomic. Events are applied in the order
// given (keep one domain's events in order); errs[i] is item i's error,
// and every item fails if the commit does.
func (s *Store) EnforceChangedGroup(ctx context.Context, items []ChangeItem) (outs []Outcome, errs []error) {
	outs, errs = make([]Outcome, len(items)), make([]error, len(items))
	valid := false
	for i, it := range items {
		if err := it.Change.Validate(); err != nil {
			errs[i] = err
		} else if it.MsgID == "" {
			errs[i] = fmt.Errorf("%w: message id is empty", schemas.ErrInvalid)
		} else {
			valid = true
		}
	}
	if !valid {
		return outs, errs
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		for i, it := range items {
			if errs[i] != nil {
				continue
			}
			// pgx runs a nested Begin as a savepoint.
			errs[i] = pgx.BeginFunc(ctx, tx, func(sp pgx.Tx) error {
				var err error
				outs[i], err = s.enforceChangedTx(ctx, sp, it.MsgID, it.Change)
				return err
			})
			if errs[i] != nil {
				errs[i] = fmt.Errorf("enforce %s (%s): %w", it.Change.Domain, it.MsgID, errs[i])
				if ctx.Err() != nil {
					return ctx.Err()
				}
			}
		}
		return nil
	})
	for i := range items {
		switch {
		case err != nil && errs[i] == nil:
			errs[i] = fmt.Errorf("enforce %s (%s): commit: %w", items[i].Change.Domain, items[i].MsgID, err)
		case errs[i] == nil:
			s.count(outs[i])
		}
	}
	return outs, errs
}

func (s *Store) count(out Outcome) {
	s.metrics.events.WithLabelValues(out.Result).Inc()
	if out.Unverified > 0 {
		s.metrics.unverified.WithLabelValues(string(out.Reason)).Add(float64(out.Unverified))
	}
	if out.WouldUnverify > 0 {
		s.metrics.wouldBe.WithLabelValues(string(out.Reason)).Add(float64(out.WouldUnverify))
	}
}

// unverifying reports whether addresses on a domain in phase p are
// unverified under the configured mode.
func (s *Store) unverifying(p lifecycle.Phase) bool {
	return p.Lapsed() || (s.cfg.Strict && p == lifecycle.PhaseGrace)
}

func (s *Store) enforceChangedTx(ctx context.Context, tx pgx.Tx, msgID string, ch schemas.DomainChanged) (Outcome, error) {
	now := s.cfg.Clock.Now().UTC()
	dup, row, verified, unverified, err := openChange(ctx, tx, msgID, ch.Domain, now)
	if err != nil {
		return Outcome{}, err
	}
	if dup {
		return Outcome{Result: ResultDuplicate}, nil
	}
	obs := ch.Observation()
	obs.Evidence = obs.Evidence.Clean() // a NUL would fail the jsonb insert on every redelivery
	obsAt := obs.Evidence.ObservedAt.UTC()
	d := lifecycle.Decide(row.state(unverified), obs, verified, s.policy(ch.Domain))
	turned := d.Apply && s.unverifying(obs.Phase) && !s.unverifying(row.phase)

	evidence, err := json.Marshal(obs.Evidence)
	if err != nil {
		return Outcome{}, fmt.Errorf("encode evidence: %w", err)
	}
	// The writes that need no answer go in one batch, sent at the end.
	writes := &pgx.Batch{}
	writes.Queue(`
INSERT INTO domain_observations (domain, phase, evidence, observed_at, applied, message_id, recorded_at, previous_phase, turned_lapsed)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		ch.Domain, string(obs.Phase), evidence, obsAt, d.Apply, msgID, now, string(row.phase), turned)
	if !d.Apply {
		if err := sendBatch(ctx, tx, writes); err != nil {
			return Outcome{}, fmt.Errorf("record observation: %w", err)
		}
		if obs.Phase == lifecycle.PhaseUnknown {
			return Outcome{Result: ResultUnknown}, nil
		}
		s.cfg.Logger.Info("stale observation recorded, not applied", "domain", ch.Domain, "phase", obs.Phase,
			"observed_at", obsAt, "applied_observed_at", row.observedAt, "message_id", msgID)
		return Outcome{Result: ResultStale}, nil
	}

	s.queueApplyObservation(writes, ch.Domain, row, obs, evidence, d, now)

	out := Outcome{Result: ResultApplied, Reason: d.Reason}
	dry := s.cfg.DryRun
	id := func(parts ...string) string {
		return schemas.DerivedID(obsAt, append([]string{consumerName, msgID}, parts...)...)
	}
	var evs []auditEvent
	add := func(kind, userID, email string, data schemas.Payload) error {
		parts := []string{kind}
		if email != "" {
			parts = append(parts, userID, email)
		}
		e, err := s.newAuditEvent(id(parts...), kind, ch.Domain, userID, email, now, data)
		if err != nil {
			return err
		}
		evs = append(evs, e)
		out.Events = append(out.Events, kind)
		return nil
	}

	// Enforcement: unverify, hold, or (breaker open) hold for resume.
	var unverifiedNow []unverifiedRow
	holdCause := string(d.Hold)
	var paused *schemas.EnforcementPaused
	if !dry && (turned || (len(d.Unverify) > 0 && holdCause == "")) {
		// The breaker counts this observation: write it first.
		if err := sendBatch(ctx, tx, writes); err != nil {
			return Outcome{}, fmt.Errorf("record observation: %w", err)
		}
		writes = &pgx.Batch{}
		open, p, err := s.breakerGate(ctx, tx, turned, now)
		if err != nil {
			return Outcome{}, err
		}
		paused = p
		if open && len(d.Unverify) > 0 && holdCause == "" {
			holdCause = CauseBreaker
		}
	}
	if len(d.Unverify) > 0 {
		switch {
		case holdCause != "":
			out.HoldID, out.HoldCause = id("hold"), holdCause
			if !dry {
				if err := queueHold(writes, out.HoldID, ch.Domain, holdCause, d.Reason, obs, row.phase, d.Unverify, msgID, now); err != nil {
					return Outcome{}, err
				}
			}
		case dry:
			out.WouldUnverify = len(d.Unverify)
		default:
			unverifiedNow, err = unverify(ctx, tx, d.Unverify, d.Reason, obs.Phase, obsAt, now)
			if err != nil {
				return Outcome{}, err
			}
			out.Unverified = len(unverifiedNow)
		}
	}
	if paused != nil {
		out.Paused = true
		if err := add(schemas.SubjectEnforcementPaused, "", "", *paused); err != nil {
			return Outcome{}, err
		}
	}

	// Domain events in Decide's order.
	base := schemas.DomainEvent{
		Domain:           ch.Domain,
		PreviousPhase:    row.phase,
		Phase:            obs.Phase,
		ExpiresAt:        obs.Evidence.ExpiresAt,
		Evidence:         obs.Evidence,
		PreviousEvidence: row.evidence,
		Addresses:        []schemas.Address{},
	}
	for _, kind := range d.Events {
		switch string(kind) {
		case schemas.SubjectDomainChanged:
			if err := add(schemas.SubjectDomainChanged, "", "", base); err != nil {
				return Outcome{}, err
			}
		case schemas.SubjectDomainExpiring:
			e := base
			if d.ExpiryToWarn != nil {
				e.ExpiresAt = d.ExpiryToWarn
			}
			e = withAddresses(e, verified, nil)
			if err := add(schemas.SubjectDomainExpiring, "", "", e); err != nil {
				return Outcome{}, err
			}
		case schemas.SubjectDomainRestored:
			e := withAddresses(base, unverified, nil)
			if err := add(schemas.SubjectDomainRestored, "", "", e); err != nil {
				return Outcome{}, err
			}
		case schemas.SubjectDomainReregistered:
			e := withAddresses(base, unverified, unverifiedNow)
			if err := add(schemas.SubjectDomainReregistered, "", "", e); err != nil {
				return Outcome{}, err
			}
		}
	}
	if out.HoldID != "" && out.HoldCause != CauseBreaker {
		if err := add(schemas.SubjectEnforcementHeld, "", "", schemas.EnforcementHeld{
			HoldID: out.HoldID, Domain: ch.Domain, Cause: out.HoldCause, Reason: d.Reason, Phase: obs.Phase, Addresses: len(d.Unverify),
		}); err != nil {
			return Outcome{}, err
		}
	}
	emailEvent := func(userID, email string) error {
		return add(schemas.SubjectEmailUnverified, userID, email, schemas.EmailUnverified{
			UserID: userID, Email: email, Domain: ch.Domain, Reason: d.Reason, Phase: obs.Phase,
			PreviousPhase: row.phase, Evidence: obs.Evidence, UnverifiedAt: now,
		})
	}
	for _, r := range unverifiedNow {
		if err := emailEvent(r.UserID, r.Email); err != nil {
			return Outcome{}, err
		}
	}
	if dry && out.HoldID == "" {
		for _, a := range d.Unverify {
			if err := emailEvent(a.UserID, a.Email); err != nil {
				return Outcome{}, err
			}
		}
	}
	if err := queueAudit(writes, evs, dry, now); err != nil {
		return Outcome{}, err
	}
	if err := sendBatch(ctx, tx, writes); err != nil {
		return Outcome{}, fmt.Errorf("record change: %w", err)
	}
	s.cfg.Logger.Info("observation applied", "domain", ch.Domain, "previous_phase", row.phase, "phase", obs.Phase,
		"reason", d.Reason, "unverified", out.Unverified, "would_unverify", out.WouldUnverify, "skipped", len(d.Skipped),
		"hold", out.HoldCause, "events", len(evs), "dry_run", dry, "message_id", msgID)
	return out, nil
}

// queueApplyObservation queues the update of the domains row (observation,
// next check) and the superseding of the domain's pending holds (the newest
// applied observation governs; if it still unverifies, it is held anew —
// queued after this).
func (s *Store) queueApplyObservation(b *pgx.Batch, domain string, row domainRow, obs lifecycle.Observation, evidence []byte, d lifecycle.Decision, now time.Time) {
	obsAt := obs.Evidence.ObservedAt.UTC()
	var releasedSince *time.Time
	if obs.Phase == lifecycle.PhaseReleased {
		rs := obsAt
		if row.phase == lifecycle.PhaseReleased && row.releasedSince != nil {
			rs = *row.releasedSince
		}
		releasedSince = &rs
	}
	next := lifecycle.NextCheck(obs.Phase, &obs.Evidence, releasedSince, now, s.schedule(), s.random)
	b.Queue(`
UPDATE domains SET
  phase = $2, evidence = $3, registered_at = $4, expires_at = $5, handle = $6, observed_at = $7,
  phase_since = CASE WHEN phase = $2 AND phase_since IS NOT NULL THEN phase_since ELSE $7 END,
  released_since = $8,
  last_checked_at = GREATEST(last_checked_at, $7),
  next_check_at = $9, check_failures = 0, unmonitored_since = NULL,
  expiry_warned_for = COALESCE($10, expiry_warned_for)
WHERE name = $1`,
		domain, string(obs.Phase), evidence, obs.Evidence.RegisteredAt, obs.Evidence.ExpiresAt, nullable(obs.Evidence.Handle), obsAt,
		releasedSince, next, d.ExpiryToWarn)
	b.Queue(`
UPDATE holds SET status = 'superseded', decided_at = $2, decided_by = 'enforcer'
WHERE domain = $1 AND status = 'pending'`, domain, now)
}

// withAddresses returns e listing addrs and more, at most maxEventAddresses
// of them, with AddressCount giving the full number.
func withAddresses(e schemas.DomainEvent, addrs []lifecycle.Address, more []unverifiedRow) schemas.DomainEvent {
	e.Addresses = addressList(addrs, more)
	e.AddressCount = len(addrs) + len(more)
	return e
}

// addressList lists addresses for an audit.domain.* event, at most
// maxEventAddresses of them.
func addressList(addrs []lifecycle.Address, more []unverifiedRow) []schemas.Address {
	out := make([]schemas.Address, 0, min(len(addrs)+len(more), maxEventAddresses))
	for _, a := range addrs {
		if len(out) == maxEventAddresses {
			return out
		}
		out = append(out, schemas.Address{UserID: a.UserID, Email: a.Email})
	}
	for _, a := range more {
		if len(out) == maxEventAddresses {
			return out
		}
		out = append(out, schemas.Address{UserID: a.UserID, Email: a.Email})
	}
	return out
}
