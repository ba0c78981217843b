package bench

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/domainguard/domainguard/lifecycle"
)

// Phase names, in the order Run runs them.
const (
	PhaseSweep    = "sweep"
	PhaseEnforcer = "enforcer"
	PhaseChecker  = "checker"
	PhaseE2E      = "e2e"
)

// Phases lists every phase in run order.
var Phases = []string{PhaseSweep, PhaseEnforcer, PhaseChecker, PhaseE2E}

// Options configure a benchmark run. Zero values take the documented
// defaults (WithDefaults).
type Options struct {
	// NATSURL is the NATS server. "" starts an embedded JetStream server in
	// a temporary directory for the run (its heap then counts in the peaks).
	NATSURL string
	// DatabaseURL points at a PostgreSQL server; Run creates a fresh
	// database dg_bench_<random> on it and drops it at the end (the
	// database named in the URL is not touched). Default
	// postgres://postgres@127.0.0.1:5432/postgres.
	DatabaseURL string
	// Domains is the number of due domains the sweep enqueues. Default 20000.
	Domains int
	// Emails is the number of verified addresses the enforcer phase
	// unverifies, EmailsPerDomain per domain. Default 10 × Domains, at most
	// 200000 unless set explicitly.
	Emails int
	// EmailsPerDomain is the addresses per lapsed domain in the enforcer
	// and e2e phases. Default 10 (below the default per-domain hold cap).
	EmailsPerDomain int
	// EnforcerRounds is how many times the enforcer phase runs each of its
	// arms (bare UPDATE, like-for-like floor, enforcer), interleaved, the
	// order reversed every other round. Default 3.
	EnforcerRounds int
	// CheckRate is the checker's configured lookups per second in the
	// checker phase. Default 100.
	CheckRate float64
	// CheckDuration is how long the checker phase's work lasts at
	// CheckRate (it enqueues CheckRate × CheckDuration checks). Default 10s.
	CheckDuration time.Duration
	// ProviderLatency is the fake provider's answer time. Default 50ms.
	ProviderLatency time.Duration
	// E2ERate is the steady check feed of the e2e phase, domains per
	// second. Default 500.
	E2ERate float64
	// E2EDuration is how long the e2e feed lasts. Default 20s.
	E2EDuration time.Duration
	// E2EChangeEvery makes every n-th e2e domain lapse (the provider
	// answers released); the others answer unchanged (heartbeats).
	// Default 5.
	E2EChangeEvery int
	// Only restricts the run to these phases (names in Phases). Default all.
	Only []string
	// Logger receives progress (Info) and role warnings. Default: a
	// logger that discards everything.
	Logger *slog.Logger
}

// WithDefaults returns o with every unset field at its documented default.
func (o Options) WithDefaults() Options {
	if o.DatabaseURL == "" {
		o.DatabaseURL = "postgres://postgres@127.0.0.1:5432/postgres"
	}
	if o.Domains == 0 {
		o.Domains = 20000
	}
	if o.EmailsPerDomain == 0 {
		o.EmailsPerDomain = 10
	}
	if o.Emails == 0 {
		o.Emails = min(10*o.Domains, 200000)
	}
	if o.EnforcerRounds == 0 {
		o.EnforcerRounds = 3
	}
	if o.CheckRate == 0 {
		o.CheckRate = 100
	}
	if o.CheckDuration == 0 {
		o.CheckDuration = 10 * time.Second
	}
	if o.ProviderLatency == 0 {
		o.ProviderLatency = 50 * time.Millisecond
	}
	if o.E2ERate == 0 {
		o.E2ERate = 500
	}
	if o.E2EDuration == 0 {
		o.E2EDuration = 20 * time.Second
	}
	if o.E2EChangeEvery == 0 {
		o.E2EChangeEvery = 5
	}
	if len(o.Only) == 0 {
		o.Only = slices.Clone(Phases)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Validate reports every setting that cannot work. Call it on the result
// of WithDefaults.
func (o Options) Validate() error {
	var errs []error
	if o.Domains < 1 {
		errs = append(errs, fmt.Errorf("bench: domains %d must be at least 1", o.Domains))
	}
	if o.EmailsPerDomain < 1 || o.EmailsPerDomain > lifecycle.DefaultMaxUnverifyPerDomain {
		errs = append(errs, fmt.Errorf("bench: emails per domain %d is not between 1 and %d (the default hold cap)",
			o.EmailsPerDomain, lifecycle.DefaultMaxUnverifyPerDomain))
	}
	if o.Emails < o.EmailsPerDomain {
		errs = append(errs, fmt.Errorf("bench: emails %d must be at least emails per domain %d", o.Emails, o.EmailsPerDomain))
	}
	if o.EnforcerRounds < 1 {
		errs = append(errs, fmt.Errorf("bench: enforcer rounds %d must be at least 1", o.EnforcerRounds))
	}
	if o.CheckRate <= 0 || o.E2ERate <= 0 {
		errs = append(errs, fmt.Errorf("bench: rates (check %g, e2e %g) must be positive", o.CheckRate, o.E2ERate))
	}
	if o.CheckDuration <= 0 || o.E2EDuration <= 0 || o.ProviderLatency < 0 {
		errs = append(errs, errors.New("bench: durations must be positive"))
	}
	if o.E2EChangeEvery < 1 {
		errs = append(errs, fmt.Errorf("bench: e2e change every %d must be at least 1", o.E2EChangeEvery))
	}
	for _, p := range o.Only {
		if !slices.Contains(Phases, p) {
			errs = append(errs, fmt.Errorf("bench: unknown phase %q (want %v)", p, Phases))
		}
	}
	return errors.Join(errs...)
}

func (o Options) runs(phase string) bool { return slices.Contains(o.Only, phase) }
