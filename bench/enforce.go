package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/domainguard/domainguard/enforcer"
	"github.com/domainguard/domainguard/internal/broker"
	"github.com/domainguard/domainguard/lifecycle"
	"github.com/domainguard/domainguard/schemas"
)

// enforcerTarget is issue 9's goal: the enforcer unverifies at least 30%
// of the bare UPDATE rate.
const enforcerTarget = 0.3

// enforcerFloorTarget is issue 16's goal: the enforcer unverifies at least
// half as fast as the like-for-like floor (bareFloor).
const enforcerFloorTarget = 0.5

// RowEnforcerFloor is the enforcer row measured against the like-for-like
// floor; the PhaseEnforcer row measures it against the bare UPDATE.
const RowEnforcerFloor = "enforcer-floor"

// updateBatch is the rows per statement of the bare UPDATE baseline.
const updateBatch = 1000

// seed inserts the world the enforcer and end-to-end runs start from:
// domains active domains prefix<i>.com, seen active at seedAt, with
// perDomain verified addresses each. It returns their evidence.
func (e *env) seed(ctx context.Context, prefix string, domains, perDomain int, seedAt time.Time) (lifecycle.Evidence, error) {
	active := activeEvidence(seedAt)
	if err := e.seedDomains(ctx, prefix, domains, active); err != nil {
		return lifecycle.Evidence{}, err
	}
	return active, e.seedEmails(ctx, prefix, domains, perDomain)
}

// seedDomains inserts n active domains prefix<i>.com (i from 1) with the
// evidence the fake provider serves, last observed a day ago.
func (e *env) seedDomains(ctx context.Context, prefix string, n int, ev lifecycle.Evidence) error {
	body, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encode evidence: %w", err)
	}
	if _, err := e.pool.Exec(ctx, `
INSERT INTO domains (name, phase, evidence, registered_at, expires_at, handle, observed_at, phase_since, last_checked_at, next_check_at)
SELECT $1 || i || '.com', 'active', $3::jsonb, $4, $5, $6, $7, $7, $7, now() + interval '30 days'
FROM generate_series(1, $2) i`, prefix, n, body, ev.RegisteredAt, ev.ExpiresAt, ev.Handle, ev.ObservedAt); err != nil {
		return fmt.Errorf("seed %d domains: %w", n, err)
	}
	return nil
}

// seedEmails inserts perDomain verified addresses u<j>@prefix<i>.com for
// each of the n domains, verified 30 days ago (user ids prefix-u<i>-<j>).
func (e *env) seedEmails(ctx context.Context, prefix string, n, perDomain int) error {
	if _, err := e.pool.Exec(ctx, `
INSERT INTO emails (user_id, email, domain, verified, verified_at)
SELECT $1 || '-u' || i || '-' || j, 'u' || j || '@' || $1 || i || '.com', $1 || i || '.com', true, now() - interval '30 days'
FROM generate_series(1, $2) i, generate_series(1, $3) j`, prefix, n, perDomain); err != nil {
		return fmt.Errorf("seed %d emails: %w", n*perDomain, err)
	}
	if _, err := e.pool.Exec(ctx, `VACUUM ANALYZE emails`); err != nil {
		return fmt.Errorf("analyze emails: %w", err)
	}
	_, err := e.pool.Exec(ctx, `VACUUM ANALYZE domains`)
	return err
}

// enforce compares the enforcer unverifying every seeded address (from
// pre-published domains.changed events until the last
// audit.email.unverified arrives) with two baselines on the same rows: a
// bare batched UPDATE (the database's limit for the row writes alone) and
// the like-for-like floor (bareFloor: the same UPDATE plus the audit_log
// and outbox INSERTs in the same transaction and an async publish of every
// audit event). The three arms run EnforcerRounds times, interleaved (the
// order reversed every other round) with the rows reset between arms, so a
// machine whose load changes during the run slows each arm alike; each
// figure is pooled over the rounds (addresses / total time).
func (e *env) enforce(ctx context.Context) ([]Row, error) {
	const prefix = "lapsed"
	per := e.o.EmailsPerDomain
	domains := e.o.Emails / per
	emails := domains * per
	seedAt := time.Now()
	active, err := e.seed(ctx, prefix, domains, per, seedAt)
	if err != nil {
		return nil, err
	}
	e.log.Info("bench enforcer: seeded", "domains", domains, "emails", emails, "took", time.Since(seedAt))
	cfg := e.enforcerConfig(broker.Topology{})

	const (
		armUpdate   = "bare UPDATE"
		armFloor    = "floor"
		armEnforcer = "enforcer"
	)
	took := map[string]time.Duration{}
	var (
		peak                      float64
		dbDone                    time.Duration
		updateRatios, floorRatios []string
	)
	for round := range e.o.EnforcerRounds {
		arms := []string{armUpdate, armFloor, armEnforcer}
		if round%2 == 1 {
			slices.Reverse(arms)
		}
		this := map[string]time.Duration{}
		for _, arm := range arms {
			var (
				d   time.Duration
				err error
			)
			switch arm {
			case armUpdate:
				d, err = e.bareUpdate(ctx, prefix, domains, per)
			case armFloor:
				d, err = e.floor(ctx, prefix, domains, per)
			case armEnforcer:
				var armPeak float64
				var armDB time.Duration
				d, armDB, armPeak, err = e.runEnforcer(ctx, prefix, domains, per, active)
				peak, dbDone = max(peak, armPeak), max(dbDone, armDB)
			}
			if err != nil {
				return nil, fmt.Errorf("round %d, %s: %w", round+1, arm, err)
			}
			e.log.Info("bench enforcer: arm done", "round", round+1, "arm", arm, "seconds", d.Seconds(), "per_second", float64(emails)/d.Seconds())
			this[arm] = d
			took[arm] += d
			if err := e.resetLapsed(ctx, prefix, domains, active); err != nil {
				return nil, err
			}
		}
		// A round's ratio is the inverse ratio of its times.
		updateRatios = append(updateRatios, fmt.Sprintf("%.2f", this[armUpdate].Seconds()/this[armEnforcer].Seconds()))
		floorRatios = append(floorRatios, fmt.Sprintf("%.2f", this[armFloor].Seconds()/this[armEnforcer].Seconds()))
	}
	n := float64(emails * e.o.EnforcerRounds)
	rate := n / took[armEnforcer].Seconds()
	update, floor := n/took[armUpdate].Seconds(), n/took[armFloor].Seconds()
	what := fmt.Sprintf("%d domains.changed events (%d addresses each) to the last audit.email.unverified on AUDIT, relay included; enforcer config batch %d, group %d, %d workers, breaker off; %d rounds of the three arms interleaved, rows reset between arms; every row unverified in the database at most %s before the last event (polled every 0.5 s; 0 = not seen before it)",
		domains, per, cfg.Batch, cfg.Group, cfg.Workers, e.o.EnforcerRounds, dbDone.Round(100*time.Millisecond))
	row := func(name string, baseline float64, baseWhat string, goal float64, ratios []string, baseTook time.Duration, detail string) Row {
		ratio := rate / baseline
		return Row{
			Name: name, Figure: rate, Unit: "emails/s", Baseline: baseline, BaselineUnit: "rows/s",
			BaselineWhat: baseWhat, Ratio: ratio, Target: fmt.Sprintf("ratio >= %.2f", goal), Met: ratio >= goal,
			PeakHeapMB: peak, Count: emails, Seconds: took[armEnforcer].Seconds() / float64(e.o.EnforcerRounds),
			Detail: fmt.Sprintf("%s; baseline %.2f s per round; ratio per round %s", detail, baseTook.Seconds()/float64(e.o.EnforcerRounds), strings.Join(ratios, ", ")),
		}
	}
	return []Row{
		row(PhaseEnforcer, update, fmt.Sprintf("bare UPDATE, %d rows per statement", updateBatch),
			enforcerTarget, updateRatios, took[armUpdate], what),
		row(RowEnforcerFloor, floor, fmt.Sprintf("floor: UPDATE + audit_log and outbox INSERTs, %d rows per transaction, async publish", floorBatch),
			enforcerFloorTarget, floorRatios, took[armFloor], "the enforcer arm above against the floor arm of the same rounds"),
	}, nil
}

// enforcerConfig is the configuration the bench runs the enforcer with:
// the defaults, with the breaker off (a wave of lapses is what it is for).
func (e *env) enforcerConfig(topo broker.Topology) enforcer.Config {
	return enforcer.Config{Pool: e.pool, JS: e.js, Topology: topo, Logger: e.log,
		Registerer: prometheus.NewRegistry(), BreakerPct: 100}.WithDefaults()
}

// runEnforcer runs the enforcer on pre-published domains.changed events of
// every seeded domain until the last audit.email.unverified arrives, and
// returns how long that took, when the database had every row unverified
// (0 if not seen before the last event) and the peak heap.
func (e *env) runEnforcer(ctx context.Context, prefix string, domains, per int, active lifecycle.Evidence) (time.Duration, time.Duration, float64, error) {
	emails := domains * per
	topo, err := e.topology(ctx)
	if err != nil {
		return 0, 0, 0, err
	}
	now := time.Now().UTC()
	// Each domain observed a millisecond after the one before, ending now,
	// as a checker observes one domain after another (faster than any
	// provider allows). The audit event ids start with the observation's
	// millisecond (schemas.DerivedID), so this keeps them in the order a
	// real wave produces; one instant for every domain made them random
	// within it and each insert into the outbox and audit_log keys a
	// random index page.
	first := now.Add(-time.Duration(domains) * time.Millisecond)
	if _, err := publishAll(ctx, e.js, domains, 1000, func(i int) (*nats.Msg, error) {
		d := prefix + strconv.Itoa(i+1) + ".com"
		prev := active
		observed := first.Add(time.Duration(i+1) * time.Millisecond)
		ch := schemas.DomainChanged{Domain: d, PreviousPhase: lifecycle.PhaseActive, Phase: lifecycle.PhaseReleased,
			PreviousEvidence: &prev, Evidence: lifecycle.Evidence{Provider: providerName, NotFound: true, ObservedAt: observed}}
		return eventMsg(topo.Namespace.ChangedSubject(d), "domains.changed", d, now, ch)
	}); err != nil {
		return 0, 0, 0, fmt.Errorf("publish changed events: %w", err)
	}

	var arrived atomic.Int64
	sub, err := subscribeAudit(e.nc, topo.Namespace.Subject(schemas.SubjectEmailUnverified), func(*nats.Msg) { arrived.Add(1) })
	if err != nil {
		return 0, 0, 0, err
	}
	defer sub.Unsubscribe() //nolint:errcheck // the connection closes at the end of Run
	en, err := enforcer.New(e.enforcerConfig(topo))
	if err != nil {
		return 0, 0, 0, err
	}
	heap := watchHeap()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- en.Run(runCtx) }()
	// Every 500 ms, also note when the database has every row unverified:
	// the gap to the last audit event is the outbox relay's share.
	var dbDone time.Duration
	lastPoll := start
	waitErr := waitFor(ctx, 20*time.Millisecond, 60*time.Second, func() (int64, bool, error) {
		n := arrived.Load()
		select {
		case err := <-done:
			return n, false, fmt.Errorf("enforcer stopped early: %v", err)
		default:
		}
		if dbDone == 0 && time.Since(lastPoll) >= 500*time.Millisecond {
			lastPoll = time.Now()
			// EXISTS stops at the first verified row: a count(*) here ran
			// as a parallel scan of every row twice a second and took CPU
			// from the enforcer being measured.
			var any bool
			if err := e.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM emails WHERE verified AND domain LIKE $1)`, prefix+"%").Scan(&any); err == nil && !any {
				dbDone = time.Since(start)
			}
		}
		return n, n >= int64(emails), nil
	})
	took := time.Since(start)
	stop()
	runErr := <-done
	peak := heap.stopMB()
	if waitErr != nil {
		return 0, 0, 0, fmt.Errorf("%d of %d audit.email.unverified arrived: %w", arrived.Load(), emails, waitErr)
	}
	if runErr != nil {
		return 0, 0, 0, runErr
	}
	var unverified int
	if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM emails WHERE domain LIKE $1 AND NOT verified AND unverify_reason = 'domain_released'`, prefix+"%").Scan(&unverified); err != nil {
		return 0, 0, 0, fmt.Errorf("count unverified: %w", err)
	}
	if unverified != emails {
		return 0, 0, 0, fmt.Errorf("enforcer unverified %d of %d addresses", unverified, emails)
	}
	if dbDone > 0 {
		dbDone = took - dbDone
	}
	return took, dbDone, peak, nil
}

// bareUpdate unverifies the seeded rows with plain batched UPDATEs on one
// connection (what the enforcer's unverify statement does, nothing else)
// and returns how long that took.
func (e *env) bareUpdate(ctx context.Context, prefix string, domains, per int) (time.Duration, error) {
	conn, err := e.pool.Acquire(ctx)
	if err != nil {
		return 0, fmt.Errorf("bare update: %w", err)
	}
	defer conn.Release()
	users := make([]string, 0, updateBatch)
	addrs := make([]string, 0, updateBatch)
	total := 0
	flush := func() error {
		if len(users) == 0 {
			return nil
		}
		now := time.Now().UTC()
		tag, err := conn.Exec(ctx, `
UPDATE emails e
SET verified = false, unverified_at = $3, unverify_reason = 'domain_released', unverify_phase = 'released', updated_at = $3
FROM unnest($1::text[], $2::text[]) AS t(user_id, email)
WHERE e.user_id = t.user_id AND e.email = t.email AND e.verified AND e.verified_at <= $3`, users, addrs, now)
		if err != nil {
			return fmt.Errorf("bare update: %w", err)
		}
		total += int(tag.RowsAffected())
		users, addrs = users[:0], addrs[:0]
		return nil
	}
	start := time.Now()
	for i := 1; i <= domains; i++ {
		for j := 1; j <= per; j++ {
			user, email, _ := floorAddress(prefix, i, j)
			users, addrs = append(users, user), append(addrs, email)
			if len(users) == updateBatch {
				if err := flush(); err != nil {
					return 0, err
				}
			}
		}
	}
	if err := flush(); err != nil {
		return 0, err
	}
	took := time.Since(start)
	if total != domains*per {
		return 0, fmt.Errorf("bare update changed %d of %d rows", total, domains*per)
	}
	return took, nil
}

// floor runs bareFloor into a fresh AUDIT stream until the last of its
// audit events reaches a subscriber (as the enforcer arm is timed), and
// returns how long that took.
func (e *env) floor(ctx context.Context, prefix string, domains, per int) (time.Duration, error) {
	emails := domains * per
	topo, err := e.topology(ctx)
	if err != nil {
		return 0, err
	}
	subject := topo.Namespace.Subject(schemas.SubjectEmailUnverified)
	var arrived atomic.Int64
	sub, err := subscribeAudit(e.nc, subject, func(*nats.Msg) { arrived.Add(1) })
	if err != nil {
		return 0, err
	}
	defer sub.Unsubscribe() //nolint:errcheck // the connection closes at the end of Run
	conn, err := e.pool.Acquire(ctx)
	if err != nil {
		return 0, fmt.Errorf("floor: %w", err)
	}
	defer conn.Release()
	start := time.Now()
	if err := bareFloor(ctx, conn.Conn(), e.js, subject, prefix, domains, per); err != nil {
		return 0, err
	}
	if err := waitFor(ctx, 5*time.Millisecond, 60*time.Second, func() (int64, bool, error) {
		n := arrived.Load()
		return n, n >= int64(emails), nil
	}); err != nil {
		return 0, fmt.Errorf("floor: %d of %d audit events arrived: %w", arrived.Load(), emails, err)
	}
	return time.Since(start), nil
}

// resetLapsed puts the enforcer phase's rows back as seeded (addresses
// verified, domains active), empties the tables the arms write (audit_log,
// outbox, observations, processed messages, holds: this phase owns them
// while it runs) and vacuums, so that every arm starts from the same
// state.
func (e *env) resetLapsed(ctx context.Context, prefix string, domains int, active lifecycle.Evidence) error {
	for _, sql := range []string{
		`UPDATE emails SET verified = true, unverified_at = NULL, unverify_reason = NULL, unverify_phase = NULL
WHERE domain LIKE '` + prefix + `%' AND NOT verified`,
		`DELETE FROM domains WHERE name LIKE '` + prefix + `%'`,
		`TRUNCATE audit_log, outbox, domain_observations, processed_messages, holds`,
	} {
		if _, err := e.pool.Exec(ctx, sql); err != nil {
			return fmt.Errorf("reset enforcer rows: %w", err)
		}
	}
	if err := e.seedDomains(ctx, prefix, domains, active); err != nil {
		return err
	}
	if _, err := e.pool.Exec(ctx, `VACUUM ANALYZE emails, domains, audit_log, outbox, domain_observations, processed_messages`); err != nil {
		return fmt.Errorf("reset enforcer rows: vacuum: %w", err)
	}
	return nil
}

// eventMsg builds a CloudEvent message with its id as Nats-Msg-Id, as the
// roles publish them (broker.PublishEvent).
func eventMsg(subject, kind, about string, now time.Time, data schemas.Payload) (*nats.Msg, error) {
	ev, err := schemas.NewEvent("domainguard/bench", kind, about, now, data)
	if err != nil {
		return nil, err
	}
	m, err := broker.EventMessage(subject, ev)
	if err != nil {
		return nil, fmt.Errorf("%s event: %w", kind, err)
	}
	return m.Msg(), nil
}

// subscribeAudit subscribes to the audit events the phase waits for, with
// no pending limit (a slow handler must not drop events the count relies
// on), and makes sure the server has the interest before anything is fed.
func subscribeAudit(nc *nats.Conn, subject string, h nats.MsgHandler) (*nats.Subscription, error) {
	sub, err := nc.Subscribe(subject, h)
	if err != nil {
		return nil, fmt.Errorf("subscribe to audit: %w", err)
	}
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("subscribe to audit: %w", err)
	}
	if err := nc.Flush(); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("subscribe to audit: %w", err)
	}
	return sub, nil
}
