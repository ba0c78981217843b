package producer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/domainguard/domainguard/internal/broker"
	"github.com/domainguard/domainguard/internal/domainname"
	"github.com/domainguard/domainguard/lifecycle"
	"github.com/domainguard/domainguard/schemas"
)

// Producer runs the intake consumer and the sweep.
type Producer struct {
	cfg Config
	log *slog.Logger
	m   *metrics
	// watchRev is the revision of the watch-name rules in use
	// (domainname.WatchNameRevision), which the backfill is keyed by.
	watchRev string
}

// New checks cfg (after filling its defaults) and registers the metrics.
func New(cfg Config) (*Producer, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	return &Producer{cfg: cfg, log: cfg.Logger.With("role", "producer"), m: m,
		watchRev: domainname.WatchNameRevision()}, nil
}

// Run runs the intake consumer and the sweeper until ctx ends, then drains
// both and returns nil (or the first error either returned).
func (p *Producer) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, run := range []func(context.Context) error{p.RunIntake, p.RunSweeper} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = run(ctx)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// checkMsg builds the NATS message of a check request: a CloudEvent with a
// fresh UUIDv7 id as Nats-Msg-Id. A fresh id per enqueue (not one derived
// from the domain) matters: DOMAIN_CHECKS de-duplicates ids within its
// window, which would silently drop a legitimate re-enqueue.
func (p *Producer) checkMsg(domain string, reason schemas.CheckReason, prev *lifecycle.Observation, now time.Time) (*nats.Msg, error) {
	req := schemas.CheckRequest{Domain: domain, Reason: reason, RequestedAt: now, Previous: prev}
	ev, err := schemas.NewEvent(p.cfg.Source, "domains.check", domain, now, req)
	if err != nil {
		return nil, err
	}
	m, err := broker.EventMessage(p.cfg.Topology.Namespace.CheckSubject(domain), ev)
	if err != nil {
		return nil, fmt.Errorf("check of %s: %w", domain, err)
	}
	return m.Msg(), nil
}

// leaseSQL leases enqueued domains (the ones still due: a result the
// enforcer already recorded is not overwritten) and counts the new checks
// against the hourly budget bucket, in one statement.
const leaseSQL = `
WITH leased AS (
	UPDATE domains d
	   SET next_check_at = u.next_at, last_enqueued_at = $3
	  FROM unnest($1::text[], $2::timestamptz[]) AS u(name, next_at)
	 WHERE d.name = u.name AND d.next_check_at <= $3
	RETURNING 1
)
INSERT INTO lookup_budget (hour, count)
SELECT $4, $5 WHERE $5 > 0
ON CONFLICT (hour) DO UPDATE SET count = lookup_budget.count + excluded.count`

// lookupCost is what one check adds to the lookup budget (leaseSQL's
// count): 1 when it was published now and asks a registry, 0 when one was
// already pending or it is free (dueDomain.free: DNS alone, unmonitored,
// a private-suffix name). Sweep, signup and check now count by it.
func lookupCost(published, free bool) int {
	if published && !free {
		return 1
	}
	return 0
}

// leaseTime is when an enqueued domain becomes due again if no result
// arrives: now + lease + up to 10% jitter.
func (p *Producer) leaseTime(now time.Time) time.Time {
	j := p.cfg.Jitter()
	if j < 0 || j >= 1 {
		j = 0
	}
	return now.Add(p.cfg.CheckLease + time.Duration(j*float64(p.cfg.CheckLease)/10))
}
