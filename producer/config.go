package producer

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/domainguard/domainguard/internal/broker"
	"github.com/domainguard/domainguard/internal/clock"
)

// Config wires a Producer. Pool and JS are required; every other field has
// the documented default, filled by WithDefaults.
type Config struct {
	// Pool is the database (required).
	Pool *pgxpool.Pool
	// JS is the JetStream context checks are published on and intake reads
	// from (required).
	JS jetstream.JetStream
	// Topology names the streams and subjects (namespace). Default: the
	// unprefixed production topology.
	Topology broker.Topology
	// Clock tells the time. Default clock.System.
	Clock clock.Clock
	// Logger. Default slog.Default().
	Logger *slog.Logger
	// Registerer receives the metrics. Default: a private registry (so tests
	// and several producers in one process do not collide).
	Registerer prometheus.Registerer
	// Source is the CloudEvents source of the check requests. Default
	// "domainguard/producer".
	Source string
	// DailyBudget caps the checks enqueued per rolling 24 hours (sweeps and
	// signup checks together). 0 means unlimited. Signup checks are never
	// held back by the budget, but they count against it.
	DailyBudget int
	// CheckLease is how long an enqueued domain is left alone before the
	// sweep enqueues it again if no result arrived. Default 6h.
	CheckLease time.Duration
	// SweepInterval is the pause between sweeps in RunSweeper. Default 1m.
	SweepInterval time.Duration
	// PageSize is the number of domains read and published per keyset page.
	// Default 1000.
	PageSize int
	// MaxInFlight bounds the unacknowledged asynchronous publishes. Default 256.
	MaxInFlight int
	// PublishTimeout is how long the sweep waits for one publish ack before
	// giving up on it (the domain stays due). Default 10s.
	PublishTimeout time.Duration
	// IntakeWorkers is the number of intake messages handled concurrently.
	// Default 4.
	IntakeWorkers int
	// WatchPrivateNames: DNS evidence is on (DOMAINGUARD_DNS_EVIDENCE with
	// the auto provider), so an address under a private PSL suffix gets a
	// domains row of its own name (Address.WatchName, private_suffix)
	// besides its registrable domain's; the checker watches it through the
	// DNS alone (DESIGN.md §2 "Private suffixes").
	WatchPrivateNames bool
	// Jitter returns a number in [0, 1) that spreads leases. Default
	// math/rand/v2.Float64.
	Jitter func() float64
}

// WithDefaults returns c with every unset field at its documented default.
// DefaultSweepInterval is SweepInterval's default
// (DOMAINGUARD_SWEEP_INTERVAL).
const DefaultSweepInterval = time.Minute

func (c Config) WithDefaults() Config {
	c.Topology = c.Topology.WithDefaults()
	if c.Clock == nil {
		c.Clock = clock.System{}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Registerer == nil {
		c.Registerer = prometheus.NewRegistry()
	}
	if c.Source == "" {
		c.Source = "domainguard/producer"
	}
	if c.CheckLease == 0 {
		c.CheckLease = 6 * time.Hour
	}
	if c.SweepInterval == 0 {
		c.SweepInterval = DefaultSweepInterval
	}
	if c.PageSize == 0 {
		c.PageSize = 1000
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = 256
	}
	if c.PublishTimeout == 0 {
		c.PublishTimeout = 10 * time.Second
	}
	if c.IntakeWorkers == 0 {
		c.IntakeWorkers = 4
	}
	if c.Jitter == nil {
		c.Jitter = rand.Float64
	}
	return c
}

// Validate reports every setting that cannot work. Call it on the result
// of WithDefaults.
func (c Config) Validate() error {
	var errs []error
	if c.Pool == nil {
		errs = append(errs, errors.New("pool is required"))
	}
	if c.JS == nil {
		errs = append(errs, errors.New("jetstream is required"))
	}
	if err := c.Topology.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.DailyBudget < 0 {
		errs = append(errs, fmt.Errorf("daily budget %d is negative (0 means unlimited)", c.DailyBudget))
	}
	if c.CheckLease < time.Minute {
		errs = append(errs, fmt.Errorf("check lease %s is shorter than 1m", c.CheckLease))
	}
	if c.SweepInterval < time.Second {
		errs = append(errs, fmt.Errorf("sweep interval %s is shorter than 1s", c.SweepInterval))
	}
	if c.PageSize < 1 || c.PageSize > 100_000 {
		errs = append(errs, fmt.Errorf("page size %d is not between 1 and 100000", c.PageSize))
	}
	if c.MaxInFlight < 1 || c.MaxInFlight > 4000 {
		errs = append(errs, fmt.Errorf("max in-flight publishes %d is not between 1 and 4000", c.MaxInFlight))
	}
	if c.PublishTimeout <= 0 {
		errs = append(errs, fmt.Errorf("publish timeout %s must be positive", c.PublishTimeout))
	}
	if c.IntakeWorkers < 1 {
		errs = append(errs, fmt.Errorf("intake workers %d must be at least 1", c.IntakeWorkers))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("producer config: %w", err)
	}
	return nil
}
