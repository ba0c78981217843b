package enforcer

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/domainguard/domainguard/lifecycle"
	"github.com/domainguard/domainguard/schemas"
)

// HeartbeatResult counts what one batch of heartbeats did.
type HeartbeatResult struct {
	Checked int // last_checked_at moved forward, next check scheduled
	Failed  int // failed lookups: failures counted, retry scheduled
	Stale   int // older than the domain's last check, or unknown domain
	// Unmonitored: no source of evidence for the TLD; marked unmonitored
	// (unmonitored_since), checked again in a week, never "never checked".
	Unmonitored int
}

// ApplyHeartbeats records a batch of domains.checked heartbeats with two
// statements in one transaction, whatever the batch size: one read of the
// domains, one multi-row UPDATE. A successful heartbeat sets
// last_checked_at, resets check_failures and schedules the next check from
// the domain's applied phase; a failed one (Failed, or phase unknown)
// increments check_failures and schedules a retry without marking the
// domain checked. Heartbeats older than the domain's last_checked_at are
// ignored, so redelivered or reordered heartbeats change nothing.
func (s *Store) ApplyHeartbeats(ctx context.Context, hbs []schemas.DomainChecked) (HeartbeatResult, error) {
	var res HeartbeatResult
	if len(hbs) == 0 {
		return res, nil
	}
	// Keep the newest heartbeat per domain.
	latest := make(map[string]schemas.DomainChecked, len(hbs))
	for _, hb := range hbs {
		if cur, ok := latest[hb.Domain]; !ok || hb.ObservedAt.After(cur.ObservedAt) {
			latest[hb.Domain] = hb
		} else {
			res.Stale++
		}
	}
	names := make([]string, 0, len(latest))
	for n := range latest {
		names = append(names, n)
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		now := s.cfg.Clock.Now().UTC()
		rows, err := tx.Query(ctx, `
SELECT name, phase, evidence, released_since, last_checked_at, check_failures
FROM domains WHERE name = ANY($1)`, names)
		if err != nil {
			return fmt.Errorf("read domains: %w", err)
		}
		var (
			upNames         []string
			upChecked       []time.Time
			upFailed        []bool
			upNext          []time.Time
			upFailures      []int32
			upErrors        []string
			upUnmonitored   []bool
			checked, failed int
		)
		for rows.Next() {
			var (
				name          string
				phase         string
				evidence      []byte
				releasedSince *time.Time
				lastChecked   *time.Time
				failures      int
			)
			if err := rows.Scan(&name, &phase, &evidence, &releasedSince, &lastChecked, &failures); err != nil {
				rows.Close()
				return fmt.Errorf("read domains: %w", err)
			}
			hb := latest[name]
			at := hb.ObservedAt.UTC()
			if lastChecked != nil && !at.After(*lastChecked) {
				continue
			}
			if hb.Unmonitored {
				// No source of evidence for the TLD: checked, as far as
				// anything can be, and looked at again in a week.
				upNames = append(upNames, name)
				upChecked = append(upChecked, at)
				upFailed = append(upFailed, false)
				upNext = append(upNext, lifecycle.NextUnmonitoredCheck(now, s.random))
				upFailures = append(upFailures, 0)
				upUnmonitored = append(upUnmonitored, true)
				upErrors = append(upErrors, "")
				res.Unmonitored++
				continue
			}
			if hb.Failed || hb.Phase == lifecycle.PhaseUnknown {
				upUnmonitored = append(upUnmonitored, false)
				upNames = append(upNames, name)
				upChecked = append(upChecked, at)
				upFailed = append(upFailed, true)
				upNext = append(upNext, lifecycle.RetryAfterFailure(failures+1, now, s.random))
				upFailures = append(upFailures, int32(failures+1))
				upErrors = append(upErrors, lookupError(hb))
				failed++
				continue
			}
			var ev *lifecycle.Evidence
			if len(evidence) > 0 && string(evidence) != "null" {
				ev = new(lifecycle.Evidence)
				if err := json.Unmarshal(evidence, ev); err != nil {
					rows.Close()
					return fmt.Errorf("domain %s: stored evidence: %w", name, err)
				}
			}
			upNames = append(upNames, name)
			upUnmonitored = append(upUnmonitored, false)
			upChecked = append(upChecked, at)
			upFailed = append(upFailed, false)
			upNext = append(upNext, lifecycle.NextCheck(name, lifecycle.Phase(phase), ev, releasedSince, now, s.schedule(), s.random))
			upFailures = append(upFailures, 0)
			upErrors = append(upErrors, "")
			checked++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read domains: %w", err)
		}
		if len(upNames) > 0 {
			// The guard repeats the read's condition so a concurrent
			// replica's newer heartbeat is never overwritten.
			if _, err := tx.Exec(ctx, `
UPDATE domains d SET
  last_checked_at = CASE WHEN v.failed THEN d.last_checked_at ELSE v.checked END,
  next_check_at = v.next, check_failures = v.failures,
  unmonitored_since = CASE WHEN v.unmonitored THEN COALESCE(d.unmonitored_since, v.checked)
                           WHEN v.failed THEN d.unmonitored_since END,
  last_error = CASE WHEN v.failed THEN v.error ELSE d.last_error END,
  last_error_at = CASE WHEN v.failed THEN v.checked ELSE d.last_error_at END
FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[], $4::int[], $5::bool[], $6::bool[], $7::text[])
  AS v(name, checked, next, failures, failed, unmonitored, error)
WHERE d.name = v.name AND (d.last_checked_at IS NULL OR d.last_checked_at < v.checked)`,
				upNames, upChecked, upNext, upFailures, upFailed, upUnmonitored, upErrors); err != nil {
				return fmt.Errorf("update domains: %w", err)
			}
		}
		res.Checked, res.Failed = checked, failed
		res.Stale += len(latest) - checked - failed - res.Unmonitored
		return nil
	})
	if err != nil {
		return HeartbeatResult{}, fmt.Errorf("apply %d heartbeats: %w", len(hbs), err)
	}
	s.metrics.heartbeats.WithLabelValues("checked").Add(float64(res.Checked))
	s.metrics.heartbeats.WithLabelValues("failed").Add(float64(res.Failed))
	s.metrics.heartbeats.WithLabelValues("stale").Add(float64(res.Stale))
	s.metrics.heartbeats.WithLabelValues("unmonitored").Add(float64(res.Unmonitored))
	return res, nil
}

// lookupError is what status shows of a failed lookup: the checker's
// detail, or the phase when it gave none.
func lookupError(hb schemas.DomainChecked) string {
	if d := strings.TrimSpace(hb.Detail); d != "" {
		return d
	}
	return "lookup failed (phase " + string(hb.Phase) + ")"
}
