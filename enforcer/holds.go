package enforcer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/domainguard/domainguard/internal/domainname"
	"github.com/domainguard/domainguard/lifecycle"
	"github.com/domainguard/domainguard/schemas"
)

// Hold statuses.
const (
	HoldPending    = "pending"
	HoldApproved   = "approved"
	HoldRejected   = "rejected"
	HoldSuperseded = "superseded" // a newer applied observation of the domain replaced it
)

// ErrHoldDecided is returned when approving or rejecting a hold that is no
// longer pending.
var ErrHoldDecided = errors.New("hold already decided")

// Hold is a change waiting for (or decided by) an operator.
type Hold struct {
	ID            string                `json:"id"`
	Domain        string                `json:"domain"`
	Cause         string                `json:"cause"`
	Reason        lifecycle.Reason      `json:"reason"`
	Phase         lifecycle.Phase       `json:"phase"`
	PreviousPhase lifecycle.Phase       `json:"previous_phase,omitempty"`
	Observation   lifecycle.Observation `json:"observation"`
	Addresses     []lifecycle.Address   `json:"addresses"`
	Status        string                `json:"status"`
	CreatedAt     time.Time             `json:"created_at"`
	DecidedAt     *time.Time            `json:"decided_at,omitempty"`
	DecidedBy     string                `json:"decided_by,omitempty"`
	Note          string                `json:"note,omitempty"`
	MessageID     string                `json:"message_id,omitempty"`
}

// HoldResult says what approving a hold did.
type HoldResult struct {
	Hold Hold `json:"hold"`
	// Unverified counts the addresses unverified now; addresses re-verified
	// after the held observation are left alone.
	Unverified int `json:"unverified"`
	// WouldUnverify counts them in dry run.
	WouldUnverify int `json:"would_unverify,omitempty"`
}

func queueHold(b *pgx.Batch, id, domain, cause string, reason lifecycle.Reason, obs lifecycle.Observation, prev lifecycle.Phase, addrs []lifecycle.Address, msgID string, now time.Time) error {
	o, err := json.Marshal(obs)
	if err != nil {
		return fmt.Errorf("encode hold observation: %w", err)
	}
	a, err := json.Marshal(addrs)
	if err != nil {
		return fmt.Errorf("encode hold addresses: %w", err)
	}
	b.Queue(`
INSERT INTO holds (id, domain, cause, reason, phase, observation, addresses, status, created_at, previous_phase, message_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8, $9, $10)
ON CONFLICT (id) DO NOTHING`, id, domain, cause, string(reason), string(obs.Phase), o, a, now, string(prev), nullable(msgID))
	return nil
}

const holdColumns = `id::text, domain, cause, reason, phase, COALESCE(previous_phase, ''), observation, addresses, status, created_at, decided_at, COALESCE(decided_by, ''), COALESCE(message_id, ''), COALESCE(note, '')`

func scanHold(row pgx.Row) (Hold, error) {
	var (
		h         Hold
		obs, addr []byte
		reason    string
		phase     string
		prev      string
	)
	if err := row.Scan(&h.ID, &h.Domain, &h.Cause, &reason, &phase, &prev, &obs, &addr, &h.Status, &h.CreatedAt, &h.DecidedAt, &h.DecidedBy, &h.MessageID, &h.Note); err != nil {
		return Hold{}, err
	}
	h.Reason, h.Phase, h.PreviousPhase = lifecycle.Reason(reason), lifecycle.Phase(phase), lifecycle.Phase(prev)
	if err := json.Unmarshal(obs, &h.Observation); err != nil {
		return Hold{}, fmt.Errorf("hold %s observation: %w", h.ID, err)
	}
	if err := json.Unmarshal(addr, &h.Addresses); err != nil {
		return Hold{}, fmt.Errorf("hold %s addresses: %w", h.ID, err)
	}
	return h, nil
}

// ListHolds lists holds with the given status ("" = all), oldest first.
func (s *Store) ListHolds(ctx context.Context, status string) ([]Hold, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+holdColumns+` FROM holds WHERE ($1 = '' OR status = $1) ORDER BY created_at, id`, status)
	if err != nil {
		return nil, fmt.Errorf("list holds: %w", err)
	}
	defer rows.Close()
	var out []Hold
	for rows.Next() {
		h, err := scanHold(rows)
		if err != nil {
			return nil, fmt.Errorf("list holds: %w", err)
		}
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list holds: %w", err)
	}
	return out, nil
}

// GetHold returns one hold.
func (s *Store) GetHold(ctx context.Context, id string) (Hold, error) {
	id = strings.ToLower(strings.TrimSpace(id))
	h, err := scanHold(s.pool.QueryRow(ctx, `SELECT `+holdColumns+` FROM holds WHERE id::text = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Hold{}, fmt.Errorf("hold %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Hold{}, fmt.Errorf("hold %s: %w", id, err)
	}
	return h, nil
}

// ApproveHold applies a pending hold through the same transactional path as
// a changed event: the domain is locked, the held addresses still verified
// (and verified no later than the held observation) are unverified, one
// audit.email.unverified per address goes to the outbox, and the hold is
// marked approved by `by`.
func (s *Store) ApproveHold(ctx context.Context, id, by string) (HoldResult, error) {
	return s.Approve(ctx, id, Decision{By: by})
}

// Approve is ApproveHold with the operator's note and door: the note is
// stored with the hold and, with the actor, published as an
// audit.operator.action event in the same transaction.
func (s *Store) Approve(ctx context.Context, id string, d Decision) (HoldResult, error) {
	return s.approve(ctx, id, d, true)
}

// approve applies a hold; action says whether to emit the operator action
// (a breaker resume emits one for all the holds it applies).
func (s *Store) approve(ctx context.Context, id string, d Decision, action bool) (HoldResult, error) {
	d = d.withDefaults()
	by := d.By
	if err := d.validate("approve hold"); err != nil {
		return HoldResult{}, err
	}
	h, err := s.GetHold(ctx, id)
	if err != nil {
		return HoldResult{}, err
	}
	id = h.ID
	var res HoldResult
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		now := s.cfg.Clock.Now().UTC()
		// Domain first, then hold: the same lock order as EnforceChangedGroup.
		if _, err := lockDomain(ctx, tx, h.Domain, now); err != nil {
			return err
		}
		h, err = scanHold(tx.QueryRow(ctx, `SELECT `+holdColumns+` FROM holds WHERE id = $1::uuid FOR UPDATE`, id))
		if err != nil {
			return fmt.Errorf("lock hold: %w", err)
		}
		if h.Status != HoldPending {
			return fmt.Errorf("hold %s is %s: %w", id, h.Status, ErrHoldDecided)
		}
		res = HoldResult{}
		obsAt := h.Observation.Evidence.ObservedAt.UTC()
		var addrs []unverifiedRow
		if s.cfg.DryRun {
			for _, a := range h.Addresses {
				addrs = append(addrs, unverifiedRow{a.UserID, a.Email, a.EmailAsSent})
			}
			res.WouldUnverify = len(addrs)
		} else {
			reqs := make([]unverifyRequest, 0, len(h.Addresses))
			for _, a := range h.Addresses {
				reqs = append(reqs, unverifyRequest{addr: a, reason: h.Reason, phase: h.Phase, observedAt: obsAt})
				// A hold made before the producer rekeyed addresses names
				// the key of before; the address may be under its current
				// key now (DESIGN.md §7), and must not escape the hold.
				if key := domainname.StoredEmail(a.Email); key != a.Email {
					a.Email = key
					reqs = append(reqs, unverifyRequest{addr: a, reason: h.Reason, phase: h.Phase, observedAt: obsAt})
				}
			}
			done, err := unverify(ctx, tx, reqs, now)
			if err != nil {
				return err
			}
			for _, r := range done {
				addrs = append(addrs, r.unverifiedRow)
			}
			res.Unverified = len(addrs)
		}
		evs := make([]auditEvent, 0, len(addrs))
		for _, a := range addrs {
			e, err := s.newAuditEvent(schemas.DerivedID(obsAt, consumerName, "hold", h.ID, schemas.SubjectEmailUnverified, a.UserID, a.Email),
				schemas.SubjectEmailUnverified, h.Domain, a.UserID, a.Email, now, schemas.EmailUnverified{
					UserID: a.UserID, Email: a.Email, EmailAsSent: a.EmailAsSent, Domain: h.Domain, Reason: h.Reason, Phase: h.Phase,
					PreviousPhase: h.PreviousPhase, Evidence: h.Observation.Evidence, UnverifiedAt: now, HoldID: h.ID,
				})
			if err != nil {
				return err
			}
			evs = append(evs, e)
		}
		if action {
			e, err := s.operatorEvent(d, schemas.OperatorAction{Action: schemas.ActionHoldApprove, HoldID: h.ID, Domain: h.Domain,
				Addresses: len(addrs), At: now})
			if err != nil {
				return err
			}
			evs = append(evs, e)
		}
		if err := writeAudit(ctx, tx, evs, s.cfg.DryRun, now); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE holds SET status = 'approved', decided_at = $2, decided_by = $3, note = $4 WHERE id = $1::uuid`, id, now, by, nullable(d.Note)); err != nil {
			return fmt.Errorf("mark hold approved: %w", err)
		}
		h.Status, h.DecidedAt, h.DecidedBy, h.Note = HoldApproved, &now, by, d.Note
		res.Hold = h
		return nil
	})
	if err != nil {
		return HoldResult{}, fmt.Errorf("approve hold %s: %w", id, err)
	}
	if res.Unverified > 0 {
		s.metrics.unverified.WithLabelValues(string(h.Reason)).Add(float64(res.Unverified))
	}
	if res.WouldUnverify > 0 {
		s.metrics.wouldBe.WithLabelValues(string(h.Reason)).Add(float64(res.WouldUnverify))
	}
	s.cfg.Logger.Info("hold approved", "hold", id, "domain", h.Domain, "cause", h.Cause, "by", by, "via", d.Via,
		"unverified", res.Unverified, "would_unverify", res.WouldUnverify)
	return res, nil
}

// RejectHold marks a pending hold rejected: its addresses stay verified.
func (s *Store) RejectHold(ctx context.Context, id, by string) (Hold, error) {
	return s.Reject(ctx, id, Decision{By: by})
}

// Reject is RejectHold with the operator's note and door; like Approve it
// stores the note and emits audit.operator.action.
func (s *Store) Reject(ctx context.Context, id string, d Decision) (Hold, error) {
	d = d.withDefaults()
	if err := d.validate("reject hold"); err != nil {
		return Hold{}, err
	}
	id = strings.ToLower(strings.TrimSpace(id))
	var (
		h       Hold
		decided bool
	)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		now := s.cfg.Clock.Now().UTC()
		tag, err := tx.Exec(ctx, `UPDATE holds SET status = 'rejected', decided_at = $2, decided_by = $3, note = $4 WHERE id::text = $1 AND status = 'pending'`,
			id, now, d.By, nullable(d.Note))
		if err != nil {
			return err
		}
		h, err = scanHold(tx.QueryRow(ctx, `SELECT `+holdColumns+` FROM holds WHERE id::text = $1`, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("hold %s: %w", id, ErrNotFound)
		}
		if err != nil {
			return err
		}
		if decided = tag.RowsAffected() == 1; !decided {
			return nil
		}
		e, err := s.operatorEvent(d, schemas.OperatorAction{Action: schemas.ActionHoldReject, HoldID: h.ID, Domain: h.Domain, At: now})
		if err != nil {
			return err
		}
		return writeAudit(ctx, tx, []auditEvent{e}, s.cfg.DryRun, now)
	})
	if err != nil {
		return Hold{}, fmt.Errorf("reject hold %s: %w", id, err)
	}
	if !decided {
		return h, fmt.Errorf("reject hold %s: hold is %s: %w", id, h.Status, ErrHoldDecided)
	}
	s.cfg.Logger.Info("hold rejected", "hold", id, "domain", h.Domain, "cause", h.Cause, "by", d.By, "via", d.Via)
	return h, nil
}
