package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/domainguard/domainguard/enforcer"
	"github.com/domainguard/domainguard/internal/broker"
	"github.com/domainguard/domainguard/lifecycle"
	"github.com/domainguard/domainguard/schemas"
)

// enforcerTarget is the goal: the enforcer unverifies at least 30%
// of the bare UPDATE rate.
const enforcerTarget = 0.3

// updateBatch is the rows per statement of the bare UPDATE baseline.
const updateBatch = 1000

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
// audit.email.unverified arrives) with a bare batched UPDATE of the rows.
func (e *env) enforce(ctx context.Context) ([]Row, error) {
	const prefix = "lapsed"
	per := e.o.EmailsPerDomain
	domains := e.o.Emails / per
	emails := domains * per
	seedAt := time.Now()
	active := activeEvidence(seedAt)
	if err := e.seedDomains(ctx, prefix, domains, active); err != nil {
		return nil, err
	}
	if err := e.seedEmails(ctx, prefix, domains, per); err != nil {
		return nil, err
	}
	e.log.Info("bench enforcer: seeded", "domains", domains, "emails", emails, "took", time.Since(seedAt))

	baseline, baseTook, err := e.bareUpdate(ctx, prefix, domains, per)
	if err != nil {
		return nil, err
	}

	topo, err := e.topology(ctx)
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	if _, err := publishAll(ctx, e.js, domains, 1000, func(i int) (*nats.Msg, error) {
		d := prefix + strconv.Itoa(i+1) + ".com"
		prev := active
		ch := schemas.DomainChanged{Domain: d, PreviousPhase: lifecycle.PhaseActive, Phase: lifecycle.PhaseReleased,
			PreviousEvidence: &prev, Evidence: lifecycle.Evidence{Provider: providerName, NotFound: true, ObservedAt: now}}
		return eventMsg(topo.Namespace.ChangedSubject(d), "domains.changed", d, now, ch)
	}); err != nil {
		return nil, fmt.Errorf("publish changed events: %w", err)
	}

	var arrived atomic.Int64
	sub, err := subscribeAudit(e.nc, topo.Namespace.Subject(schemas.SubjectEmailUnverified), func(*nats.Msg) { arrived.Add(1) })
	if err != nil {
		return nil, err
	}
	defer sub.Unsubscribe() //nolint:errcheck // the connection closes at the end of Run
	en, err := enforcer.New(enforcer.Config{Pool: e.pool, JS: e.js, Topology: topo, Logger: e.log,
		Registerer: prometheus.NewRegistry(), BreakerPct: 100})
	if err != nil {
		return nil, err
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
			if err := e.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM emails WHERE verified AND domain LIKE 'lapsed%')`).Scan(&any); err == nil && !any {
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
		return nil, fmt.Errorf("%d of %d audit.email.unverified arrived: %w", arrived.Load(), emails, waitErr)
	}
	if runErr != nil {
		return nil, runErr
	}
	var unverified int
	if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM emails WHERE domain LIKE 'lapsed%' AND NOT verified AND unverify_reason = 'domain_released'`).Scan(&unverified); err != nil {
		return nil, fmt.Errorf("count unverified: %w", err)
	}
	if unverified != emails {
		return nil, fmt.Errorf("enforcer unverified %d of %d addresses", unverified, emails)
	}
	rate := float64(emails) / took.Seconds()
	ratio := rate / baseline
	return []Row{{
		Name: PhaseEnforcer, Figure: rate, Unit: "emails/s", Baseline: baseline, BaselineUnit: "rows/s",
		BaselineWhat: fmt.Sprintf("bare UPDATE, %d rows per statement", updateBatch),
		Ratio:        ratio, Target: fmt.Sprintf("ratio >= %.2f", enforcerTarget), Met: ratio >= enforcerTarget,
		PeakHeapMB: peak, Count: emails, Seconds: took.Seconds(),
		Detail: fmt.Sprintf("%d domains.changed events (%d addresses each) to the last audit.email.unverified on AUDIT, relay included; default enforcer config (batch 50, 4 workers), breaker off; every row unverified in the database after %s (polled every 0.5 s; 0 = not seen before the last event); bare UPDATE %.2f s",
			domains, per, dbDone.Round(100*time.Millisecond), baseTook.Seconds()),
	}}, nil
}

// bareUpdate unverifies the seeded rows with plain batched UPDATEs on one
// connection (what the enforcer's unverify statement does, nothing else),
// then restores them and vacuums, and returns rows per second.
func (e *env) bareUpdate(ctx context.Context, prefix string, domains, per int) (float64, time.Duration, error) {
	conn, err := e.pool.Acquire(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("bare update: %w", err)
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
			users = append(users, prefix+"-u"+strconv.Itoa(i)+"-"+strconv.Itoa(j))
			addrs = append(addrs, "u"+strconv.Itoa(j)+"@"+prefix+strconv.Itoa(i)+".com")
			if len(users) == updateBatch {
				if err := flush(); err != nil {
					return 0, 0, err
				}
			}
		}
	}
	if err := flush(); err != nil {
		return 0, 0, err
	}
	took := time.Since(start)
	if total != domains*per {
		return 0, 0, fmt.Errorf("bare update changed %d of %d rows", total, domains*per)
	}
	if _, err := conn.Exec(ctx, `
UPDATE emails SET verified = true, unverified_at = NULL, unverify_reason = NULL, unverify_phase = NULL
WHERE domain LIKE 'lapsed%'`); err != nil {
		return 0, 0, fmt.Errorf("restore rows after the bare update: %w", err)
	}
	if _, err := conn.Exec(ctx, `VACUUM ANALYZE emails`); err != nil {
		return 0, 0, fmt.Errorf("vacuum emails: %w", err)
	}
	return float64(total) / took.Seconds(), took, nil
}

// eventMsg builds a CloudEvent message with its id as Nats-Msg-Id, as the
// roles publish them (broker.PublishEvent).
func eventMsg(subject, kind, about string, now time.Time, data schemas.Payload) (*nats.Msg, error) {
	ev, err := schemas.NewEvent("domainguard/bench", kind, about, now, data)
	if err != nil {
		return nil, err
	}
	body, err := ev.Marshal()
	if err != nil {
		return nil, fmt.Errorf("encode %s event: %w", kind, err)
	}
	msg := &nats.Msg{Subject: subject, Data: body, Header: nats.Header{}}
	msg.Header.Set(schemas.HeaderMsgID, ev.ID)
	msg.Header.Set("Content-Type", broker.ContentTypeCloudEvent)
	return msg, nil
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
