package checker

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/domainguard/domainguard/internal/broker"
	"github.com/domainguard/domainguard/internal/clock"
	"github.com/domainguard/domainguard/internal/redact"
)

// Defaults used by Config.WithDefaults.
const (
	DefaultLookupsPerSecond = 5.0
	DefaultBurst            = 1
	DefaultConcurrency      = 8
	DefaultMaxAttempts      = 4
	DefaultMaxElapsed       = 2 * time.Minute
	DefaultRetryInitial     = 500 * time.Millisecond
	DefaultRetryMax         = 30 * time.Second
	DefaultLookupTimeout    = 30 * time.Second
	DefaultFetchWait        = 5 * time.Second
	DefaultSource           = "domainguard/checker"
)

// MaxConcurrency is the largest Concurrency: the worker pulls Concurrency
// checks at once, and the checker consumer lets no more be unacknowledged.
const MaxConcurrency = broker.CheckerMaxAckPending

// ValidateLookupsPerSecond reports a lookup rate that is not above zero
// (DOMAINGUARD_LOOKUPS_PER_SECOND).
func ValidateLookupsPerSecond(r float64) error {
	if !(r > 0) {
		return fmt.Errorf("%g: must be above 0", r)
	}
	return nil
}

// ValidateConcurrency reports a concurrency outside 1..MaxConcurrency
// (DOMAINGUARD_CHECK_CONCURRENCY).
func ValidateConcurrency(n int) error {
	if n < 1 || n > MaxConcurrency {
		return fmt.Errorf("%d: want 1 to %d", n, MaxConcurrency)
	}
	return nil
}

// ValidateServiceURL reports a lookup service URL that is not http(s) with
// a host: RDAP_BOOTSTRAP_URL and DOMAINGUARD_RDAP_OVERRIDES (besides a
// seeded file), FASTLY_API_URL, DOMAINR_API_URL. Credentials in it are
// redacted from the error.
func ValidateServiceURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL", redact.List(raw))
	}
	return nil
}

// Config configures a Worker. Fill what you need and call NewWorker, which
// applies WithDefaults and Validate.
type Config struct {
	// JS is the JetStream context (required).
	JS jetstream.JetStream
	// Topology names the streams and consumer (namespace!); defaults as in
	// broker.Topology.WithDefaults. Its CheckAckWait sizes ProgressEvery.
	Topology broker.Topology
	// Provider looks domains up (required).
	Provider Provider
	// LookupsPerSecond is the token-bucket rate per rate key (see
	// RateKeyer). Default 5.
	LookupsPerSecond float64
	// Burst is the token-bucket size per rate key. Default 1.
	Burst int
	// Concurrency is how many checks this process works on at once, and
	// the most it fetches at a time. Default 8.
	Concurrency int
	// MaxAttempts is how many times one check's lookup is tried in process
	// before it counts as failed. Default 4.
	MaxAttempts int
	// MaxElapsed bounds the time spent retrying one check in process
	// (waits included); a Retry-After beyond it ends the retries. Default 2m.
	MaxElapsed time.Duration
	// RetryInitial and RetryMax shape the exponential backoff between
	// attempts. Defaults 500ms and 30s.
	RetryInitial, RetryMax time.Duration
	// LookupTimeout bounds one lookup attempt. Default 30s.
	LookupTimeout time.Duration
	// FetchWait bounds one pull from the server; shutdown waits for at most
	// one FetchWait. Default 5s.
	FetchWait time.Duration
	// ProgressEvery is how often a check being worked on is reported
	// InProgress. Default a third of Topology.CheckAckWait, at most 30s.
	ProgressEvery time.Duration
	// Clock stamps failed heartbeats. Default clock.System{}.
	Clock clock.Clock
	// Logger receives the worker's logs. Default slog.Default().
	Logger *slog.Logger
	// Registerer receives the metrics. Default: a private registry.
	Registerer prometheus.Registerer
	// Source is the CloudEvents source of published events. Default
	// "domainguard/checker".
	Source string
}

// WithDefaults returns cfg with every unset field at its documented default.
func (cfg Config) WithDefaults() Config {
	cfg.Topology = cfg.Topology.WithDefaults()
	if cfg.LookupsPerSecond == 0 {
		cfg.LookupsPerSecond = DefaultLookupsPerSecond
	}
	if cfg.Burst == 0 {
		cfg.Burst = DefaultBurst
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.MaxElapsed == 0 {
		cfg.MaxElapsed = DefaultMaxElapsed
	}
	if cfg.RetryInitial == 0 {
		cfg.RetryInitial = DefaultRetryInitial
	}
	if cfg.RetryMax == 0 {
		cfg.RetryMax = DefaultRetryMax
	}
	if cfg.LookupTimeout == 0 {
		cfg.LookupTimeout = DefaultLookupTimeout
	}
	if cfg.FetchWait == 0 {
		cfg.FetchWait = DefaultFetchWait
	}
	if cfg.ProgressEvery == 0 {
		cfg.ProgressEvery = min(cfg.Topology.CheckAckWait/3, 30*time.Second)
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.System{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Registerer == nil {
		cfg.Registerer = prometheus.NewRegistry()
	}
	if cfg.Source == "" {
		cfg.Source = DefaultSource
	}
	return cfg
}

// Validate reports every setting that cannot work. Call it on the result
// of WithDefaults.
func (cfg Config) Validate() error {
	var errs []error
	if cfg.JS == nil {
		errs = append(errs, errors.New("JS is required"))
	}
	if cfg.Provider == nil {
		errs = append(errs, errors.New("Provider is required"))
	}
	if err := cfg.Topology.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("%w", err))
	}
	if err := ValidateLookupsPerSecond(cfg.LookupsPerSecond); err != nil {
		errs = append(errs, fmt.Errorf("lookups per second %w", err))
	}
	if cfg.Burst < 1 {
		errs = append(errs, fmt.Errorf("burst %d must be at least 1", cfg.Burst))
	}
	if err := ValidateConcurrency(cfg.Concurrency); err != nil {
		errs = append(errs, fmt.Errorf("concurrency %w", err))
	}
	if cfg.MaxAttempts < 1 {
		errs = append(errs, fmt.Errorf("max attempts %d must be at least 1", cfg.MaxAttempts))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"max elapsed", cfg.MaxElapsed}, {"retry initial", cfg.RetryInitial}, {"retry max", cfg.RetryMax},
		{"lookup timeout", cfg.LookupTimeout}, {"fetch wait", cfg.FetchWait}, {"progress interval", cfg.ProgressEvery}} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("%s %s must be positive", d.name, d.v))
		}
	}
	if cfg.ProgressEvery >= cfg.Topology.CheckAckWait {
		errs = append(errs, fmt.Errorf("progress interval %s must be shorter than the ack wait %s",
			cfg.ProgressEvery, cfg.Topology.CheckAckWait))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("checker config: %w", err)
	}
	return nil
}
