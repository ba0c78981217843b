package enforcer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/domainguard/domainguard/lifecycle"
	"github.com/domainguard/domainguard/schemas"
)

// BreakerStatus is the global breaker's state and its current counts.
type BreakerStatus struct {
	Open      bool       `json:"open"`
	OpenedAt  *time.Time `json:"opened_at,omitempty"`
	Reason    string     `json:"reason,omitempty"`
	ResumedAt *time.Time `json:"resumed_at,omitempty"`
	ResumedBy string     `json:"resumed_by,omitempty"`
	// Window counts since max(now - BreakerWindow, ResumedAt).
	Since     time.Time `json:"since"`
	Observed  int       `json:"observed"`
	NonActive int       `json:"non_active"`
	Percent   float64   `json:"percent"`
	// Threshold settings.
	ThresholdPct float64 `json:"threshold_pct"`
	MinDomains   int     `json:"min_domains"`
	// PendingHolds counts holds waiting for resume (cause breaker).
	PendingHolds int `json:"pending_holds"`
}

type breakerRow struct {
	open      bool
	openedAt  *time.Time
	reason    *string
	resumedAt *time.Time
	resumedBy *string
}

// sqlBreakerOpen reads whether the breaker is open, without a lock.
const sqlBreakerOpen = `SELECT open FROM breaker WHERE id = 1`

func (s *Store) readBreaker(ctx context.Context, q pgx.Tx, lock bool) (breakerRow, error) {
	sql := `SELECT open, opened_at, reason, resumed_at, resumed_by FROM breaker WHERE id = 1`
	if lock {
		sql += ` FOR UPDATE`
	}
	var b breakerRow
	if err := q.QueryRow(ctx, sql).Scan(&b.open, &b.openedAt, &b.reason, &b.resumedAt, &b.resumedBy); err != nil {
		return breakerRow{}, fmt.Errorf("read breaker: %w", err)
	}
	return b, nil
}

func (s *Store) windowStart(b breakerRow, now time.Time) time.Time {
	since := now.Add(-s.cfg.BreakerWindow)
	if b.resumedAt != nil && b.resumedAt.After(since) {
		since = *b.resumedAt
	}
	return since
}

// countingWindow returns the start of the breaker's counting window and
// its counts: the last BreakerWindow, widened back to the
// BreakerMinDomains-th most recent lookup when fewer domains were looked
// at within it, never before the last resume. A small site looks at fewer
// than BreakerMinDomains domains an hour, and a window by time alone would
// never let its breaker trip; a window by count does, once that many
// domains were ever looked at.
func (s *Store) countingWindow(ctx context.Context, tx pgx.Tx, b breakerRow, now time.Time) (since time.Time, observed, nonActive int, err error) {
	since = s.windowStart(b, now)
	if observed, nonActive, err = windowCounts(ctx, tx, since); err != nil || observed >= s.cfg.BreakerMinDomains {
		return since, observed, nonActive, err
	}
	var floor time.Time
	if b.resumedAt != nil {
		floor = *b.resumedAt
	}
	var nth *time.Time
	if err := tx.QueryRow(ctx, `
SELECT min(last_checked_at) FROM (
    SELECT last_checked_at FROM domains WHERE last_checked_at > $1 ORDER BY last_checked_at DESC LIMIT $2) AS recent`,
		floor, s.cfg.BreakerMinDomains).Scan(&nth); err != nil {
		return since, 0, 0, fmt.Errorf("breaker window by count: %w", err)
	}
	if nth == nil || !nth.Before(since) {
		return since, observed, nonActive, nil
	}
	since = nth.Add(-time.Microsecond) // the counts take what is after since
	observed, nonActive, err = windowCounts(ctx, tx, since)
	return since, observed, nonActive, err
}

// windowCounts counts the domains observed since `since` (looked up:
// last_checked_at) and those that turned non-active.
func windowCounts(ctx context.Context, tx pgx.Tx, since time.Time) (observed, nonActive int, err error) {
	err = tx.QueryRow(ctx, `
SELECT (SELECT count(*) FROM domains WHERE last_checked_at > $1),
       (SELECT count(DISTINCT domain) FROM domain_observations WHERE turned_lapsed AND recorded_at > $1)`, since).Scan(&observed, &nonActive)
	if err != nil {
		return 0, 0, fmt.Errorf("breaker counts: %w", err)
	}
	// A backlog of old observations can count more lapses than recent checks.
	observed = max(observed, nonActive)
	return observed, nonActive, nil
}

func percent(part, whole int) float64 {
	if whole == 0 {
		return 0
	}
	return 100 * float64(part) / float64(whole)
}

// breakerGate reports whether enforcement is paused. When this change
// turned a domain non-active, it recounts the window and trips the breaker
// past the threshold, returning the audit.enforcement.paused payload
// (emitted once: only the transaction that flips the row returns it).
//
// The breaker row is locked for the rest of tx only when that matters: to
// count exactly (a change that turned a domain non-active, with the breaker
// enabled: concurrent transactions then count one after the other), and
// while it is open (a breaker hold must not slip past a concurrent resume).
// Other changes read it without a lock, so they do not queue behind one
// another on this one row.
func (s *Store) breakerGate(ctx context.Context, tx pgx.Tx, turned bool, now time.Time) (bool, *schemas.EnforcementPaused, error) {
	b, err := s.readBreaker(ctx, tx, false)
	if err != nil {
		return false, nil, err
	}
	if b.open || (turned && s.cfg.BreakerPct < 100) {
		if b, err = s.readBreaker(ctx, tx, true); err != nil {
			return false, nil, err
		}
	}
	if b.open || !turned || s.cfg.BreakerPct >= 100 {
		return b.open, nil, nil // (a percentage cannot exceed 100: never trips)
	}
	since, observed, nonActive, err := s.countingWindow(ctx, tx, b, now)
	if err != nil {
		return false, nil, err
	}
	pct := percent(nonActive, observed)
	if observed < s.cfg.BreakerMinDomains || pct <= s.cfg.BreakerPct {
		return false, nil, nil
	}
	reason := fmt.Sprintf("%d of %d domains observed since %s turned non-active (%.1f%% > %.1f%%)",
		nonActive, observed, since.UTC().Format(time.RFC3339), pct, s.cfg.BreakerPct)
	if _, err := tx.Exec(ctx, `UPDATE breaker SET open = true, opened_at = $1, reason = $2 WHERE id = 1`, now, reason); err != nil {
		return false, nil, fmt.Errorf("open breaker: %w", err)
	}
	s.metrics.breakerOpen.Set(1)
	s.cfg.Logger.Error("breaker open: enforcement paused until an operator resumes it", "reason", reason)
	return true, &schemas.EnforcementPaused{Paused: true, Reason: reason, Observed: observed, NonActive: nonActive, Percent: pct, At: now}, nil
}

// BreakerStatus reports the breaker and the current window counts.
func (s *Store) BreakerStatus(ctx context.Context) (BreakerStatus, error) {
	var st BreakerStatus
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		b, err := s.readBreaker(ctx, tx, false)
		if err != nil {
			return err
		}
		now := s.cfg.Clock.Now().UTC()
		st = BreakerStatus{Open: b.open, OpenedAt: b.openedAt, ResumedAt: b.resumedAt,
			ThresholdPct: s.cfg.BreakerPct, MinDomains: s.cfg.BreakerMinDomains}
		if b.reason != nil {
			st.Reason = *b.reason
		}
		if b.resumedBy != nil {
			st.ResumedBy = *b.resumedBy
		}
		st.Since, st.Observed, st.NonActive, err = s.countingWindow(ctx, tx, b, now)
		if err != nil {
			return err
		}
		st.Percent = percent(st.NonActive, st.Observed)
		return tx.QueryRow(ctx, `SELECT count(*) FROM holds WHERE status = 'pending' AND cause = $1`, string(lifecycle.HoldBreaker)).Scan(&st.PendingHolds)
	})
	if err != nil {
		return BreakerStatus{}, fmt.Errorf("breaker status: %w", err)
	}
	return st, nil
}

// ResumeResult says what resuming did.
type ResumeResult struct {
	// WasOpen is false when the breaker was already closed (pending breaker
	// holds left by an interrupted resume are applied anyway).
	WasOpen bool `json:"was_open"`
	// Applied lists the breaker holds applied, in order.
	Applied []HoldResult `json:"applied"`
}

// ResumeBreaker closes the breaker (emitting audit.enforcement.resumed),
// restarts the counting window, then applies every pending hold with cause
// breaker — the unverifications paused while it was open — each through
// ApproveHold. If interrupted, calling it again finishes the job.
func (s *Store) ResumeBreaker(ctx context.Context, by string) (ResumeResult, error) {
	return s.Resume(ctx, Decision{By: by})
}

// Resume is ResumeBreaker with the operator's note and door: the note is
// stored on the breaker row and, with the actor, published as an
// audit.operator.action event together with audit.enforcement.resumed.
func (s *Store) Resume(ctx context.Context, d Decision) (ResumeResult, error) {
	d = d.withDefaults()
	by := d.By
	if err := d.validate("resume breaker"); err != nil {
		return ResumeResult{}, err
	}
	var res ResumeResult
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		now := s.cfg.Clock.Now().UTC()
		b, err := s.readBreaker(ctx, tx, true)
		if err != nil {
			return err
		}
		res.WasOpen = b.open
		if !b.open {
			return nil
		}
		if _, err := tx.Exec(ctx, `UPDATE breaker SET open = false, resumed_at = $1, resumed_by = $2, resume_note = $3 WHERE id = 1`, now, by, nullable(d.Note)); err != nil {
			return fmt.Errorf("close breaker: %w", err)
		}
		reason := "resumed by operator"
		if b.reason != nil {
			reason = "resumed by operator; paused because " + *b.reason
		}
		var openedAt string
		if b.openedAt != nil {
			openedAt = b.openedAt.UTC().Format(time.RFC3339Nano)
		}
		e, err := s.newAuditEvent(schemas.DerivedID(now, consumerName, "resumed", openedAt), schemas.SubjectEnforcementResumed, "", "", "", now,
			schemas.EnforcementPaused{Paused: false, Reason: reason, At: now, By: by})
		if err != nil {
			return err
		}
		op, err := s.operatorEvent(d, schemas.OperatorAction{Action: schemas.ActionBreakerResume, At: now})
		if err != nil {
			return err
		}
		return writeAudit(ctx, tx, []auditEvent{e, op}, s.cfg.DryRun, now)
	})
	if err != nil {
		return ResumeResult{}, fmt.Errorf("resume breaker: %w", err)
	}
	s.metrics.breakerOpen.Set(0)
	s.cfg.Logger.Warn("breaker resumed", "by", by, "was_open", res.WasOpen)
	holds, err := s.ListHolds(ctx, HoldPending)
	if err != nil {
		return res, fmt.Errorf("resume breaker: %w", err)
	}
	for _, h := range holds {
		if h.Cause != string(lifecycle.HoldBreaker) {
			continue
		}
		r, err := s.approve(ctx, h.ID, d, false)
		if errors.Is(err, ErrHoldDecided) {
			continue // superseded meanwhile by a newer observation
		}
		if err != nil {
			return res, fmt.Errorf("resume breaker: %w", err)
		}
		res.Applied = append(res.Applied, r)
	}
	return res, nil
}
