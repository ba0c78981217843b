package console

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/domainguard/domainguard/internal/coverage"

	"github.com/domainguard/domainguard/lifecycle"
	"github.com/domainguard/domainguard/schemas"
)

// Overview is the numbers of the overview page.
type Overview struct {
	Verified, Unverified, Addresses int
	Domains                         int
	Phases                          []Count // every phase, in lifecycle order
	Coverage                        []Count // watched addresses by source (internal/coverage)
	CoverageShare                   []string
	CoverageNote                    string // why coverage is missing
	LookupsToday                    int    // checks enqueued in the last 24 hours
	Budget                          int    // 0: unlimited
	OpenHolds                       int
	OldestHold                      *time.Time
	Chart                           Chart
}

// Count is one labelled number.
type Count struct {
	Label string
	N     int
}

// chartDays is the span of the overview chart.
const chartDays = 90

func (c *Console) overviewData(ctx context.Context, now time.Time) (Overview, error) {
	o := Overview{Budget: c.cfg.DailyBudget}
	err := pgx.BeginTxFunc(ctx, c.cfg.Pool, pgx.TxOptions{AccessMode: pgx.ReadOnly, IsoLevel: pgx.RepeatableRead}, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `
SELECT count(*) FILTER (WHERE verified), count(*) FILTER (WHERE NOT verified AND unverify_reason IS NOT NULL), count(*) FROM emails`).
			Scan(&o.Verified, &o.Unverified, &o.Addresses); err != nil {
			return fmt.Errorf("count addresses: %w", err)
		}
		phases := map[string]int{}
		if err := groupCounts(ctx, tx, phases, `SELECT phase, count(*) FROM domains GROUP BY phase`); err != nil {
			return err
		}
		for _, p := range lifecycle.Phases {
			o.Phases = append(o.Phases, Count{string(p), phases[string(p)]})
			o.Domains += phases[string(p)]
		}
		if err := tx.QueryRow(ctx, `SELECT COALESCE(sum(count), 0) FROM lookup_budget WHERE hour > $1`, now.Add(-24*time.Hour)).Scan(&o.LookupsToday); err != nil {
			return fmt.Errorf("lookups: %w", err)
		}
		if err := tx.QueryRow(ctx, `SELECT count(*), min(created_at) FROM holds WHERE status = 'pending'`).Scan(&o.OpenHolds, &o.OldestHold); err != nil {
			return fmt.Errorf("holds: %w", err)
		}
		chart, err := chartData(ctx, tx, now)
		if err != nil {
			return err
		}
		o.Chart = chart
		return nil
	})
	if err != nil {
		return o, err
	}
	c.addCoverage(ctx, &o)
	return o, nil
}

// addCoverage fills the coverage with internal/coverage's report; a
// failure (an RDAP bootstrap that cannot be fetched) is shown, not fatal.
func (c *Console) addCoverage(ctx context.Context, o *Overview) {
	if c.cfg.Coverage == nil {
		o.CoverageNote = "coverage sources are not configured"
		return
	}
	rep, err := coverage.Query(ctx, c.cfg.Pool, *c.cfg.Coverage)
	if err != nil {
		c.log.Warn("console: coverage", "error", err)
		o.CoverageNote = "coverage could not be computed (see the log)"
		return
	}
	for _, src := range coverage.AllSources {
		o.Coverage = append(o.Coverage, Count{string(src), int(rep.BySource[src])})
		o.CoverageShare = append(o.CoverageShare, fmt.Sprintf("%.1f%%", rep.Share(src)))
	}
}

func groupCounts(ctx context.Context, tx pgx.Tx, into map[string]int, sql string) error {
	rows, err := tx.Query(ctx, sql)
	if err != nil {
		return fmt.Errorf("%s: %w", sql, err)
	}
	var (
		k string
		n int
	)
	_, err = pgx.ForEachRow(rows, []any{&k, &n}, func() error { into[k] += n; return nil })
	return err
}

// chartData counts, per UTC day of the last chartDays, the addresses
// unverified (audit.email.unverified, not dry run) and the domains that
// turned non-active (lapses).
func chartData(ctx context.Context, tx pgx.Tx, now time.Time) (Chart, error) {
	end := now.UTC().Truncate(24 * time.Hour).Add(24 * time.Hour)
	start := end.Add(-chartDays * 24 * time.Hour)
	days := make([]Day, chartDays)
	for i := range days {
		days[i].Date = start.Add(time.Duration(i) * 24 * time.Hour)
	}
	fill := func(sql string, set func(*Day, int)) error {
		rows, err := tx.Query(ctx, sql, start, end)
		if err != nil {
			return fmt.Errorf("chart: %w", err)
		}
		var (
			d time.Time
			n int
		)
		_, err = pgx.ForEachRow(rows, []any{&d, &n}, func() error {
			if i := int(d.Sub(start) / (24 * time.Hour)); i >= 0 && i < len(days) {
				set(&days[i], n)
			}
			return nil
		})
		return err
	}
	if err := fill(`SELECT date_trunc('day', created_at, 'UTC'), count(*) FROM audit_log
		WHERE type = '`+schemas.SubjectEmailUnverified+`' AND NOT dry_run AND created_at >= $1 AND created_at < $2 GROUP BY 1`,
		func(d *Day, n int) { d.Unverified = n }); err != nil {
		return Chart{}, err
	}
	if err := fill(`SELECT date_trunc('day', recorded_at, 'UTC'), count(DISTINCT domain) FROM domain_observations
		WHERE turned_lapsed AND recorded_at >= $1 AND recorded_at < $2 GROUP BY 1`,
		func(d *Day, n int) { d.Lapsed = n }); err != nil {
		return Chart{}, err
	}
	return newChart(days), nil
}

// AuditFilter narrows the audit log page.
type AuditFilter struct {
	Type, Domain, Reason string
	From, To             *time.Time
}

// AuditRow is one audit_log row with the fields worth a column.
type AuditRow struct {
	ID, Type, Domain, Email string
	DryRun                  bool
	At                      time.Time
	Reason, Phase, Actor    string
	Note, Detail            string
}

// auditPageSize is the rows per audit page.
const auditPageSize = 50

// auditCursor is the keyset position: the last row shown.
type auditCursor struct {
	At time.Time
	ID string
}

// auditPage returns up to auditPageSize rows older than after (newest
// first) and the cursor of the next page, if any.
func (c *Console) auditPage(ctx context.Context, f AuditFilter, after *auditCursor) ([]AuditRow, *auditCursor, error) {
	var at *time.Time
	var id *string
	if after != nil {
		at, id = &after.At, &after.ID
	}
	rows, err := c.cfg.Pool.Query(ctx, `
SELECT id::text, type, COALESCE(domain, ''), COALESCE(email, ''), dry_run, created_at, data
  FROM audit_log
 WHERE ($1 = '' OR type = $1) AND ($2 = '' OR domain = $2) AND ($3 = '' OR data->>'reason' = $3)
   AND ($4::timestamptz IS NULL OR created_at >= $4) AND ($5::timestamptz IS NULL OR created_at < $5)
   AND ($6::timestamptz IS NULL OR (created_at, id) < ($6, $7::uuid))
 ORDER BY created_at DESC, id DESC
 LIMIT $8`, f.Type, f.Domain, f.Reason, f.From, f.To, at, id, auditPageSize+1)
	if err != nil {
		return nil, nil, fmt.Errorf("audit log: %w", err)
	}
	var (
		out  []AuditRow
		r    AuditRow
		data []byte
	)
	_, err = pgx.ForEachRow(rows, []any{&r.ID, &r.Type, &r.Domain, &r.Email, &r.DryRun, &r.At, &data}, func() error {
		r.Reason, r.Phase, r.Actor, r.Note, r.Detail = summarize(data)
		out = append(out, r)
		r = AuditRow{}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("audit log: %w", err)
	}
	var next *auditCursor
	if len(out) > auditPageSize {
		out = out[:auditPageSize]
		last := out[len(out)-1]
		next = &auditCursor{At: last.At, ID: last.ID}
	}
	return out, next, nil
}

// summarize picks the fields of an audit payload worth showing.
func summarize(data []byte) (reason, phase, actor, note, detail string) {
	var d struct {
		Reason    string `json:"reason"`
		Phase     string `json:"phase"`
		Prev      string `json:"previous_phase"`
		Actor     string `json:"actor"`
		By        string `json:"by"`
		Note      string `json:"note"`
		Action    string `json:"action"`
		HoldID    string `json:"hold_id"`
		Cause     string `json:"cause"`
		Addresses any    `json:"addresses"`
	}
	_ = json.Unmarshal(data, &d)
	phase = d.Phase
	if d.Prev != "" && d.Phase != "" {
		phase = d.Prev + " → " + d.Phase
	}
	actor = d.Actor
	if actor == "" {
		actor = d.By
	}
	switch {
	case d.Action != "":
		detail = d.Action
		if d.HoldID != "" {
			detail += " hold " + d.HoldID
		}
	case d.Cause != "":
		detail = "held (" + d.Cause + ")"
	}
	return d.Reason, phase, actor, d.Note, detail
}

// auditTypes are the audit event types offered by the filter.
var auditTypes = []string{
	schemas.SubjectEmailUnverified, schemas.SubjectDomainChanged, schemas.SubjectDomainExpiring,
	schemas.SubjectDomainRestored, schemas.SubjectDomainReregistered, schemas.SubjectEnforcementHeld,
	schemas.SubjectEnforcementPaused, schemas.SubjectEnforcementResumed, schemas.SubjectOperatorAction,
}
