package enforcer

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/domainguard/domainguard/internal/broker"
	"github.com/domainguard/domainguard/internal/clock"
	"github.com/domainguard/domainguard/lifecycle"
)

// BuiltinProtectedDomains are large mailbox providers. A change that would
// unverify addresses on one of them is always held for an operator: a
// false "released" for gmail.com must never unverify millions of users.
var BuiltinProtectedDomains = []string{
	"gmail.com", "googlemail.com",
	"outlook.com", "hotmail.com", "live.com", "msn.com", "outlook.de", "hotmail.co.uk", "hotmail.fr", "live.co.uk",
	"yahoo.com", "ymail.com", "rocketmail.com", "yahoo.co.uk", "yahoo.co.jp", "yahoo.fr", "yahoo.de",
	"aol.com", "aim.com",
	"icloud.com", "me.com", "mac.com",
	"proton.me", "protonmail.com", "pm.me",
	"gmx.de", "gmx.net", "gmx.com", "web.de", "t-online.de", "freenet.de",
	"yandex.ru", "yandex.com", "mail.ru", "bk.ru", "inbox.ru", "list.ru", "rambler.ru",
	"qq.com", "163.com", "126.com", "sina.com", "sohu.com", "foxmail.com",
	"naver.com", "daum.net", "hanmail.net",
	"zoho.com", "fastmail.com", "fastmail.fm", "hey.com", "tutanota.com", "tuta.io", "mailbox.org", "posteo.de",
	"orange.fr", "free.fr", "laposte.net", "sfr.fr", "wanadoo.fr",
	"libero.it", "virgilio.it", "seznam.cz", "wp.pl", "o2.pl", "interia.pl",
	"comcast.net", "att.net", "verizon.net", "sbcglobal.net", "cox.net", "charter.net",
	"btinternet.com", "sky.com", "virginmedia.com",
	"rediffmail.com", "uol.com.br", "bol.com.br", "terra.com.br",
}

// Config configures the enforcer. Zero values take the documented defaults
// (WithDefaults); Validate reports settings that cannot work.
type Config struct {
	// Pool is the PostgreSQL pool (required).
	Pool *pgxpool.Pool
	// JS is the JetStream context (required by New and NewRelay, not by
	// NewStore: the operator commands only write the outbox).
	JS jetstream.JetStream
	// Topology names streams, subjects and the consumer (namespace!).
	Topology broker.Topology
	// Clock tells the time. Default clock.System.
	Clock clock.Clock
	// Logger. Default slog.Default().
	Logger *slog.Logger
	// Registerer receives the metrics. Default: a private registry.
	Registerer prometheus.Registerer
	// Source is the CloudEvents source of emitted events. Default
	// "domainguard/enforcer".
	Source string
	// Strict makes grace unverify too (DOMAINGUARD_STRICT). Default false.
	Strict bool
	// DryRun computes, logs, counts and records decisions (audit_log rows
	// with dry_run=true) but changes no email and publishes nothing
	// (DOMAINGUARD_DRY_RUN). Default false.
	DryRun bool
	// MaxUnverifyPerDomain holds a change that would unverify more addresses
	// than this. Default lifecycle.DefaultMaxUnverifyPerDomain (50);
	// negative: no cap (lifecycle.Policy), for callers of this package such
	// as the benchmarks. The binary refuses a
	// DOMAINGUARD_MAX_UNVERIFY_PER_DOMAIN below 1: an operator cannot
	// switch the guard off.
	MaxUnverifyPerDomain int
	// ProtectedDomains are added to BuiltinProtectedDomains.
	ProtectedDomains []string
	// BreakerPct: enforcement pauses when more than this percentage of the
	// domains observed within BreakerWindow turned non-active. Default
	// DefaultBreakerPct (5); 100 never trips.
	BreakerPct float64
	// BreakerMinDomains is the least number of observed domains before the
	// breaker may trip. Default DefaultBreakerMinDomains (20).
	BreakerMinDomains int
	// BreakerWindow is the breaker's counting window. Default 1h.
	BreakerWindow time.Duration
	// ExpiryWarning: an active domain expiring within it gets one
	// audit.domain.expiring per expiry date. Default
	// lifecycle.DefaultExpiryWarning (720h, 30 days).
	ExpiryWarning time.Duration
	// RecheckInterval is the healthy re-check interval
	// (DOMAINGUARD_RECHECK_INTERVAL). Default
	// lifecycle.DefaultRecheckInterval (720h).
	RecheckInterval time.Duration
	// Batch is how many DOMAIN_EVENTS messages are fetched at once.
	// Default DefaultBatch (100).
	Batch int
	// RelayInterval is the outbox poll interval when no NOTIFY arrives.
	// Default 1s.
	RelayInterval time.Duration
	// RelayBatch is how many outbox rows one relay round publishes.
	// Default 1000.
	RelayBatch int
	// OutboxRetention is how long published outbox rows are kept (the
	// audit_log keeps the history). Default 168h.
	OutboxRetention time.Duration
	// ProcessedRetention is how long processed message ids are kept for
	// de-duplication; it must exceed the DOMAIN_EVENTS max age (14 days by
	// default). Default 720h.
	ProcessedRetention time.Duration
	// Group is how many changed events share one transaction, applied
	// set-based (a failing event is retried alone in a savepoint; one
	// domain's events are never split). Default DefaultGroup (25).
	Group int
	// Workers is how many groups of changed events are enforced
	// concurrently (each group in its own transaction; domains are locked
	// row by row, in name order). Default 4.
	Workers int
}

// Defaults of Config the enforcer owns (the decision and schedule
// defaults are lifecycle's).
const (
	// DefaultSource is the CloudEvents source of the enforcer's events.
	DefaultSource = "domainguard/enforcer"
	// DefaultBreakerPct is BreakerPct's default
	// (DOMAINGUARD_BREAKER_PCT).
	DefaultBreakerPct = 5.0
	// DefaultBreakerMinDomains is BreakerMinDomains's default
	// (DOMAINGUARD_BREAKER_MIN_DOMAINS).
	DefaultBreakerMinDomains = 20
	// DefaultBatch is Batch's default and DefaultGroup Group's: a full
	// fetched batch is four equal transactions, one per default worker,
	// enforced in parallel (issue 16: 16 of 50 made four transactions, the
	// last of 2 events; the throughput of each choice is in
	// docs/benchmarks.md). A fetch returns when its batch is full or after
	// 2 s: a batch of 100 takes twice as long as 50 to fill, at most 2 s
	// (0.2 s at 500 events/s).
	DefaultBatch = 100
	DefaultGroup = 25
)

// ValidateBreakerPct reports a breaker threshold outside (0, 100]
// (DOMAINGUARD_BREAKER_PCT): above 100 the breaker could never trip
// without saying so; 100 is how it is switched off.
func ValidateBreakerPct(pct float64) error {
	if !(pct > 0 && pct <= 100) {
		return fmt.Errorf("%g: want above 0 and at most 100", pct)
	}
	return nil
}

// ValidateProtectedDomain reports a protected domain that cannot be a
// domain name (DOMAINGUARD_PROTECTED_DOMAINS): empty, or with a space,
// "/", "@" or a wildcard.
func ValidateProtectedDomain(d string) error {
	if strings.TrimSpace(d) == "" || strings.ContainsAny(d, " /@*>") {
		return fmt.Errorf("%q is not a domain name", d)
	}
	return nil
}

// ValidateBreakerMinDomains reports a breaker minimum below one domain
// (DOMAINGUARD_BREAKER_MIN_DOMAINS).
func ValidateBreakerMinDomains(n int) error {
	if n < 1 {
		return fmt.Errorf("%d: must be at least 1", n)
	}
	return nil
}

// WithDefaults returns c with every unset field at its documented default.
func (c Config) WithDefaults() Config {
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
		c.Source = DefaultSource
	}
	if c.MaxUnverifyPerDomain == 0 {
		c.MaxUnverifyPerDomain = lifecycle.DefaultMaxUnverifyPerDomain
	}
	if c.BreakerPct == 0 {
		c.BreakerPct = DefaultBreakerPct
	}
	if c.BreakerMinDomains == 0 {
		c.BreakerMinDomains = DefaultBreakerMinDomains
	}
	if c.BreakerWindow == 0 {
		c.BreakerWindow = time.Hour
	}
	if c.ExpiryWarning == 0 {
		c.ExpiryWarning = lifecycle.DefaultExpiryWarning
	}
	if c.RecheckInterval == 0 {
		c.RecheckInterval = lifecycle.DefaultRecheckInterval
	}
	if c.Group == 0 {
		c.Group = DefaultGroup
	}
	if c.Batch == 0 {
		c.Batch = DefaultBatch
	}
	if c.RelayInterval == 0 {
		c.RelayInterval = time.Second
	}
	if c.RelayBatch == 0 {
		c.RelayBatch = 1000
	}
	if c.OutboxRetention == 0 {
		c.OutboxRetention = 7 * 24 * time.Hour
	}
	if c.ProcessedRetention == 0 {
		c.ProcessedRetention = broker.DefaultProcessedRetention
	}
	if c.Workers == 0 {
		c.Workers = 4
	}
	c.Topology = c.Topology.WithDefaults()
	return c
}

// Validate reports every setting that cannot work. Call it on the result
// of WithDefaults. JS is checked by New and NewRelay.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Pool == nil {
		bad("Pool is required")
	}
	if err := ValidateBreakerPct(c.BreakerPct); err != nil {
		bad("breaker percent %w", err)
	}
	if err := ValidateBreakerMinDomains(c.BreakerMinDomains); err != nil {
		bad("breaker minimum domains %w", err)
	}
	if err := lifecycle.ValidateRecheckInterval(c.RecheckInterval); err != nil {
		bad("recheck interval %w", err)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"breaker window", c.BreakerWindow}, {"expiry warning", c.ExpiryWarning}, {"relay interval", c.RelayInterval},
		{"outbox retention", c.OutboxRetention}, {"processed retention", c.ProcessedRetention}} {
		if d.v <= 0 {
			bad("%s %s must be positive", d.name, d.v)
		}
	}
	if c.Batch < 1 || c.Batch > 1000 {
		bad("batch %d is not between 1 and 1000", c.Batch)
	}
	if c.RelayBatch < 1 || c.RelayBatch > 10000 {
		bad("relay batch %d is not between 1 and 10000", c.RelayBatch)
	}
	if c.Group < 1 || c.Group > 1000 {
		bad("group %d is not between 1 and 1000", c.Group)
	}
	if c.Workers < 1 || c.Workers > 64 {
		bad("workers %d is not between 1 and 64", c.Workers)
	}
	for _, d := range c.ProtectedDomains {
		if err := ValidateProtectedDomain(d); err != nil {
			bad("protected domain %w", err)
		}
	}
	if c.ProcessedRetention < c.Topology.EventsMaxAge {
		bad("processed retention %s is shorter than the DOMAIN_EVENTS max age %s: redeliveries could be applied twice",
			c.ProcessedRetention, c.Topology.EventsMaxAge)
	}
	if err := c.Topology.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("enforcer config: %w", err)
	}
	return nil
}

// prepare is how every constructor starts: the defaults, Validate, JS
// when the part publishes (who names the part in the error), and the
// metrics.
func (c Config) prepare(who string, needJS bool) (Config, *metrics, error) {
	c = c.WithDefaults()
	if err := c.Validate(); err != nil {
		return c, nil, err
	}
	if needJS && c.JS == nil {
		return c, nil, fmt.Errorf("%s: JS is required", who)
	}
	m, err := newMetrics(c.Registerer)
	if err != nil {
		return c, nil, err
	}
	return c, m, nil
}

// protectedSet returns the built-in and configured protected domains, lower
// case, without trailing dots.
func (c Config) protectedSet() map[string]bool {
	set := make(map[string]bool, len(BuiltinProtectedDomains)+len(c.ProtectedDomains))
	for _, d := range slices.Concat(BuiltinProtectedDomains, c.ProtectedDomains) {
		set[strings.TrimSuffix(strings.ToLower(strings.TrimSpace(d)), ".")] = true
	}
	return set
}
