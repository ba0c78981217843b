// Package config is the one configuration of every domainguard command:
// environment variables (DESIGN.md §5 names) overridden by command-line
// flags that mirror them (flag name = the variable without DOMAINGUARD_,
// lower-kebab: DOMAINGUARD_LOOKUPS_PER_SECOND → --lookups-per-second,
// DATABASE_URL → --database-url).
//
// Load reads env and flags over Defaults; Validate checks the result;
// Redacted renders it for logs with secrets hidden.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/domainguard/domainguard/checker"
	"github.com/domainguard/domainguard/checker/dnsevidence"
	"github.com/domainguard/domainguard/checker/domainr"
	"github.com/domainguard/domainguard/checker/rdap"
	"github.com/domainguard/domainguard/enforcer"
	"github.com/domainguard/domainguard/internal/broker"
	"github.com/domainguard/domainguard/internal/redact"
	"github.com/domainguard/domainguard/lifecycle"
	"github.com/domainguard/domainguard/producer"
)

// Defaults for the fields of Config: the owning package's default where a
// role or lifecycle owns the setting.
const (
	DefaultDatabaseURL          = "postgres://localhost:5432/domainguard"
	DefaultDataDir              = "./data"
	DefaultProvider             = ProviderAuto
	DefaultRDAPBootstrapURL     = rdap.DefaultBootstrapURL
	DefaultFastlyAPIURL         = domainr.DefaultFastlyURL
	DefaultDomainrAPIURL        = domainr.DefaultDomainrURL
	DefaultLookupsPerSecond     = checker.DefaultLookupsPerSecond
	DefaultDailyLookupBudget    = 100000
	DefaultRecheckInterval      = lifecycle.DefaultRecheckInterval
	DefaultMetricsAddr          = "127.0.0.1:9090"
	DefaultMaxUnverifyPerDomain = lifecycle.DefaultMaxUnverifyPerDomain
	DefaultBreakerPct           = enforcer.DefaultBreakerPct
	DefaultBreakerMinDomains    = enforcer.DefaultBreakerMinDomains
	DefaultStreamReplicas       = broker.DefaultReplicas
	DefaultCheckConcurrency     = checker.DefaultConcurrency
	DefaultSweepInterval        = producer.DefaultSweepInterval
	DefaultCheckAckWait         = broker.DefaultCheckAckWait
	DefaultEventAckWait         = broker.DefaultEventAckWait
	DefaultLogLevel             = "info"
	DefaultDNSQueriesPerSecond  = dnsevidence.DefaultQueriesPerSecond
	DefaultUndelegatedConfirm   = lifecycle.DefaultUndelegatedConfirm
)

// Lookup providers (DOMAINGUARD_PROVIDER).
const (
	ProviderAuto    = "auto"    // RDAP where the TLD has a service, else the configured commercial provider
	ProviderRDAP    = "rdap"    // RDAP only
	ProviderFastly  = "fastly"  // Fastly Domain Research API
	ProviderDomainr = "domainr" // Domainr (RapidAPI or client id)
)

// Config is the configuration of every command. Load fills it from Defaults,
// the environment and flags. The comment of each field gives its variable
// and default; "WithDefaults fills it" means a zero value is replaced by the
// default, otherwise zero has the meaning given.
type Config struct {
	// DatabaseURL (DATABASE_URL): PostgreSQL URL or keyword/value string.
	// Default DefaultDatabaseURL; WithDefaults fills it.
	DatabaseURL string
	// DatabaseURLSet is true when DATABASE_URL or --database-url was given,
	// so `run` can tell "use the default server" from "configured".
	DatabaseURLSet bool

	// NATSURL (NATS_URL): NATS server URL(s), comma separated. "" (default)
	// means `run` starts an embedded JetStream server.
	NATSURL string
	// NATSUser, NATSPassword (NATS_USER, NATS_PASSWORD): user/password
	// authentication. NATSCreds (NATS_CREDS): path of a .creds file (JWT
	// auth). Either creds or user/password, not both. Default none.
	NATSUser     string
	NATSPassword string
	NATSCreds    string
	// SubjectPrefix (DOMAINGUARD_SUBJECT_PREFIX): prepended to every NATS
	// subject and stream name so several deployments or tests can share one
	// NATS. Default "" (none).
	SubjectPrefix string
	// StreamReplicas (DOMAINGUARD_STREAM_REPLICAS): JetStream replicas for
	// the streams domainguard creates, 1–5. Default 1; WithDefaults fills it.
	StreamReplicas int

	// ManageTopology (DOMAINGUARD_MANAGE_TOPOLOGY): create or update the
	// JetStream streams and consumers on start. Default true. Set false
	// for least-privilege deployments: the command then only checks that
	// the streams exist, its NATS user needs no stream create/update
	// permission, and an operator runs `domainguard topology`.
	ManageTopology bool

	// DataDir (DOMAINGUARD_DATA_DIR): embedded NATS and private PostgreSQL
	// data. Default "./data"; WithDefaults fills it.
	DataDir string

	// Provider (DOMAINGUARD_PROVIDER): rdap|fastly|domainr|auto. Default
	// auto; WithDefaults fills it.
	Provider string
	// RDAPBootstrapURL (RDAP_BOOTSTRAP_URL): IANA DNS bootstrap file.
	// Default DefaultRDAPBootstrapURL; WithDefaults fills it.
	RDAPBootstrapURL string
	// RDAPOverrides (DOMAINGUARD_RDAP_OVERRIDES, "tld=url,tld=url"): RDAP
	// base URLs used instead of the bootstrap's for these TLDs (keys lower
	// case, no leading dot). Default none.
	RDAPOverrides map[string]string
	// RDAPCanaries (DOMAINGUARD_RDAP_CANARIES, "suffix=name,suffix=name"):
	// known-registered names that confirm an RDAP 404 under a public
	// suffix, in addition to (and before) the registry profiles' canaries
	// (keys lower case, no leading dot: "com", "gc.ca"). Default none.
	RDAPCanaries map[string]string
	// AllowPrivateLookups (DOMAINGUARD_ALLOW_PRIVATE_LOOKUPS): let RDAP
	// lookups connect to loopback, private and link-local addresses found
	// in the bootstrap or a redirect, and DNS evidence query nameservers at
	// such addresses learned from DNS answers (glue). Default false: such a
	// lookup or server is refused (the bootstrap, the overrides, the API
	// URLs and the DNS variables are the operator's and always allowed).
	AllowPrivateLookups bool
	// FastlyAPIURL (FASTLY_API_URL): default "https://api.fastly.com";
	// WithDefaults fills it. FastlyAPIKey (FASTLY_API_KEY): secret.
	FastlyAPIURL string
	FastlyAPIKey string
	// DomainrAPIURL (DOMAINR_API_URL): default "https://api.domainr.com";
	// WithDefaults fills it. DomainrClientID (DOMAINR_CLIENT_ID) and
	// DomainrRapidAPIKey (DOMAINR_RAPIDAPI_KEY): secrets.
	DomainrAPIURL      string
	DomainrClientID    string
	DomainrRapidAPIKey string

	// DNSEvidence (DOMAINGUARD_DNS_EVIDENCE): ask the DNS too — the parent
	// zone's servers for the delegation, the resolver for MX and SOA — as
	// the evidence for TLDs without RDAP and to corroborate RDAP (DESIGN.md
	// §2). Default true (set in Defaults).
	DNSEvidence bool
	// DNSResolver (DOMAINGUARD_DNS_RESOLVER): host:port of the recursive
	// resolver. Default "": the first nameserver in /etc/resolv.conf.
	DNSResolver string
	// DNSTLDServers (DOMAINGUARD_DNS_TLD_SERVERS, "tld=host:port,…",
	// "*=host:port" for every TLD; a TLD may be named more than once):
	// authoritative servers asked for delegations instead of the TLD's
	// published NS. Keys lower case, no leading dot. Default none.
	DNSTLDServers map[string][]string
	// DNSQueriesPerSecond (DOMAINGUARD_DNS_QUERIES_PER_SECOND): DNS
	// queries per second per server, per checker process; DNS lookups do
	// not count against DOMAINGUARD_LOOKUPS_PER_SECOND or the daily budget.
	// Default 20; WithDefaults fills it.
	DNSQueriesPerSecond float64
	// UndelegatedConfirm (DOMAINGUARD_UNDELEGATED_CONFIRM): how long a name
	// that was delegated must stay not delegated, seen on two lookups at
	// least this far apart, before DNS alone counts it as a lapse.
	// Default 24h; WithDefaults fills it.
	UndelegatedConfirm time.Duration

	// LookupsPerSecond (DOMAINGUARD_LOOKUPS_PER_SECOND): rate limit of
	// provider lookups per checker process. Default 5; WithDefaults fills it.
	LookupsPerSecond float64
	// DailyLookupBudget (DOMAINGUARD_DAILY_LOOKUP_BUDGET): most lookups the
	// producer schedules per day. Default 100000; 0 means unlimited (and
	// the value "unlimited" gives 0).
	DailyLookupBudget int
	// CheckConcurrency (DOMAINGUARD_CHECK_CONCURRENCY): lookups in flight
	// per checker process. Default 8; WithDefaults fills it.
	CheckConcurrency int
	// RecheckInterval (DOMAINGUARD_RECHECK_INTERVAL): longest time between
	// two checks of a healthy domain. Default 720h; WithDefaults fills it;
	// at most lifecycle.MaxRecheckInterval (720h).
	RecheckInterval time.Duration
	// SweepInterval (DOMAINGUARD_SWEEP_INTERVAL): how often the producer
	// looks for due domains. Default 1m; WithDefaults fills it.
	SweepInterval time.Duration
	// CheckAckWait (DOMAINGUARD_CHECK_ACK_WAIT): how long a check may go
	// unacknowledged before JetStream redelivers it (the checker reports
	// progress every third of it). Default 2m; WithDefaults fills it.
	CheckAckWait time.Duration
	// EventAckWait (DOMAINGUARD_EVENT_ACK_WAIT): the same for the intake and
	// enforcer consumers: how soon a crashed role's messages are redelivered.
	// Default 1m; WithDefaults fills it.
	EventAckWait time.Duration

	// Strict (DOMAINGUARD_STRICT): unverify on `grace` too. Default false.
	Strict bool
	// DryRun (DOMAINGUARD_DRY_RUN): decide and audit, change no email row.
	// Default false.
	DryRun bool
	// MaxUnverifyPerDomain (DOMAINGUARD_MAX_UNVERIFY_PER_DOMAIN): a change
	// unverifying more addresses than this is held. Default 50;
	// WithDefaults fills it.
	MaxUnverifyPerDomain int
	// BreakerPct (DOMAINGUARD_BREAKER_PCT): enforcement pauses when more than
	// this percent of the domains observed in the last hour (or, when fewer
	// than BreakerMinDomains were, in the last BreakerMinDomains looked at)
	// turn non-active.
	// Default 5; WithDefaults fills it.
	BreakerPct float64
	// BreakerMinDomains (DOMAINGUARD_BREAKER_MIN_DOMAINS): ... and at least
	// this many of them; also the size of the window by count. Default 20; WithDefaults fills it.
	BreakerMinDomains int
	// ProtectedDomains (DOMAINGUARD_PROTECTED_DOMAINS, comma list): held
	// like large mailbox providers, in addition to the built-in list.
	// Lower-cased, empty items dropped. Default none.
	ProtectedDomains []string

	// MetricsAddr (DOMAINGUARD_METRICS_ADDR): listen address of /metrics,
	// /healthz and /readyz. Default "127.0.0.1:9090" (loopback only: expose
	// it deliberately, e.g. ":9090" in a container). "" disables the server;
	// the value "off" gives "".
	MetricsAddr string
	// MetricsAddrSet is true when DOMAINGUARD_METRICS_ADDR or its flag was
	// given: a command may then not start without its metrics server,
	// while on the default address a second process on the machine (the
	// console beside `run`) goes on without one.
	MetricsAddrSet bool
	// LogLevel (DOMAINGUARD_LOG_LEVEL): debug|info|warn|error. Default info;
	// WithDefaults fills it.
	LogLevel string
	// LogFormat (DOMAINGUARD_LOG_FORMAT): json|text. Default "": text when
	// the log goes to a terminal, JSON otherwise (files, containers, log
	// shippers).
	LogFormat string

	// ConsoleAddr (DOMAINGUARD_CONSOLE_ADDR): listen address of the
	// operator console. Default "": `run` starts no console; the `console`
	// command listens on DefaultConsoleAddr when it is empty.
	ConsoleAddr string
	// ConsoleUsers (DOMAINGUARD_CONSOLE_USERS): the console's users file,
	// one name:role:bcrypt-hash line each. Default none.
	ConsoleUsers string
	// APIAddr (DOMAINGUARD_API_ADDR): listen address of the host HTTP API.
	// Default "": `run` starts no API; the `api` command listens on
	// DefaultAPIAddr when it is empty.
	APIAddr string
	// APITokens (DOMAINGUARD_API_TOKENS): the host API's bearer tokens,
	// comma-separated name:token pairs (secret). Default none.
	APITokens string
}

// Listen addresses of the console and API commands when none is set.
const (
	DefaultConsoleAddr = "127.0.0.1:8080"
	DefaultAPIAddr     = "127.0.0.1:8081"
)

// Defaults returns the configuration used when nothing is set.
func Defaults() Config {
	return Config{
		MetricsAddr:       DefaultMetricsAddr,
		DailyLookupBudget: DefaultDailyLookupBudget,
		ManageTopology:    true,
		DNSEvidence:       true,
	}.WithDefaults()
}

// DNSEvidenceInUse reports whether the checker uses DNS evidence: it is on
// and the provider is auto (the other providers ask one source only). Names
// under private PSL suffixes are watched exactly then (DESIGN.md §2).
func (c Config) DNSEvidenceInUse() bool {
	return c.DNSEvidence && c.Provider == ProviderAuto
}

// WithDefaults returns c with every zero field that has no zero meaning set
// to its default (see the field comments).
func (c Config) WithDefaults() Config {
	if c.DatabaseURL == "" {
		c.DatabaseURL = DefaultDatabaseURL
	}
	if c.StreamReplicas == 0 {
		c.StreamReplicas = DefaultStreamReplicas
	}
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	if c.Provider == "" {
		c.Provider = DefaultProvider
	}
	if c.RDAPBootstrapURL == "" {
		c.RDAPBootstrapURL = DefaultRDAPBootstrapURL
	}
	if c.FastlyAPIURL == "" {
		c.FastlyAPIURL = DefaultFastlyAPIURL
	}
	if c.DomainrAPIURL == "" {
		c.DomainrAPIURL = DefaultDomainrAPIURL
	}
	if c.LookupsPerSecond == 0 {
		c.LookupsPerSecond = DefaultLookupsPerSecond
	}
	if c.CheckConcurrency == 0 {
		c.CheckConcurrency = DefaultCheckConcurrency
	}
	if c.RecheckInterval == 0 {
		c.RecheckInterval = DefaultRecheckInterval
	}
	if c.SweepInterval == 0 {
		c.SweepInterval = DefaultSweepInterval
	}
	if c.CheckAckWait == 0 {
		c.CheckAckWait = DefaultCheckAckWait
	}
	if c.EventAckWait == 0 {
		c.EventAckWait = DefaultEventAckWait
	}
	if c.MaxUnverifyPerDomain == 0 {
		c.MaxUnverifyPerDomain = DefaultMaxUnverifyPerDomain
	}
	if c.BreakerPct == 0 {
		c.BreakerPct = DefaultBreakerPct
	}
	if c.BreakerMinDomains == 0 {
		c.BreakerMinDomains = DefaultBreakerMinDomains
	}
	if c.LogLevel == "" {
		c.LogLevel = DefaultLogLevel
	}
	if c.DNSQueriesPerSecond == 0 {
		c.DNSQueriesPerSecond = DefaultDNSQueriesPerSecond
	}
	if c.UndelegatedConfirm == 0 {
		c.UndelegatedConfirm = DefaultUndelegatedConfirm
	}
	return c
}

// Load returns Defaults overridden by the environment (read through getenv;
// empty values count as unset) and then by flags parsed from args (so a
// flag wins over its variable), plus the arguments left after the flags.
// The result has WithDefaults applied, so an explicitly empty or zero flag
// (--data-dir=) takes the default like an unset one: Validate then sees no
// empty field WithDefaults fills. The config flags are registered on fs,
// which may already hold a command's own flags; nil means a new FlagSet.
// Errors name the variable or flag at fault. Load does not Validate.
func Load(args []string, getenv func(string) string, fs *flag.FlagSet) (Config, []string, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	if fs == nil {
		fs = flag.NewFlagSet("domainguard", flag.ContinueOnError)
	}
	c := Defaults()
	var errs []error
	for _, s := range settings {
		if v := getenv(s.env); v != "" {
			if err := s.parse(&c, v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", s.env, displayValue(s, v), err))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return c, nil, fmt.Errorf("config: %w", err)
	}
	for _, s := range settings {
		fs.Var(&flagValue{s: s, c: &c}, s.flagName(), s.help+" (env "+s.env+")")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c, nil, err
		}
		return c, nil, fmt.Errorf("config: %w", err)
	}
	return c.WithDefaults(), fs.Args(), nil
}

func displayValue(s setting, v string) string {
	if s.secret {
		return "REDACTED"
	}
	if s.url {
		return redact.List(v)
	}
	return v
}

// EnvNames returns every environment variable Load reads, sorted.
func EnvNames() []string {
	names := make([]string, 0, len(settings))
	for _, s := range settings {
		names = append(names, s.env)
	}
	sort.Strings(names)
	return names
}

// FlagName returns the flag that mirrors environment variable env, or ""
// when Load does not read env.
func FlagName(env string) string {
	for _, s := range settings {
		if s.env == env {
			return s.flagName()
		}
	}
	return ""
}

// Redacted returns the configuration by variable name, for logs and
// `--print-config`: secrets (API keys, passwords, credentials paths are
// kept) read "REDACTED" when set, and URLs lose their userinfo and secret
// query parameters (redact.List).
func (c Config) Redacted() map[string]string {
	out := make(map[string]string, len(settings))
	for _, s := range settings {
		v := s.format(c)
		switch {
		case s.secret && v != "":
			v = "REDACTED"
		case s.url:
			v = redact.List(v)
		}
		out[s.env] = v
	}
	return out
}

// Logger returns the slog logger writing to w at c.LogLevel (info when the
// level is invalid; Validate reports that) in c.LogFormat: JSON, or text
// when asked or, by default, when w is a terminal. Durations are written
// as text ("1.5s"), not nanoseconds, and credentials quoted in string and
// error values are hidden (redact.Text).
func (c Config) Logger(w io.Writer) *slog.Logger {
	level, err := ParseLogLevel(c.LogLevel)
	if err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		switch a.Value.Kind() {
		case slog.KindDuration:
			a.Value = slog.StringValue(a.Value.Duration().String())
		case slog.KindString:
			// A library's message may quote a URL with credentials
			// (DESIGN.md §5 "Secrets"): the last line of defence.
			a.Value = slog.StringValue(redact.Text(a.Value.String()))
		case slog.KindAny:
			if err, ok := a.Value.Any().(error); ok {
				a.Value = slog.StringValue(redact.Text(err.Error()))
			}
		}
		return a
	}}
	format := c.LogFormat
	if format == "" {
		format = "json"
		if isTerminal(w) {
			format = "text"
		}
	}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// ParseLogLevel parses debug|info|warn|error (case-insensitive; "" is info).
func ParseLogLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "debug":
		return slog.LevelDebug, nil
	case "info", "":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return slog.LevelInfo, fmt.Errorf("log level %q: want debug, info, warn or error", s)
}

// flagValue is the flag.Value of one setting, writing into the Config
// being loaded.
type flagValue struct {
	s setting
	c *Config
}

func (f *flagValue) String() string {
	if f == nil || f.c == nil || f.s.format == nil {
		return ""
	}
	v := f.s.format(*f.c)
	if f.s.secret && v != "" {
		return "REDACTED"
	}
	if f.s.url {
		return redact.List(v)
	}
	return v
}

func (f *flagValue) Set(v string) error { return f.s.parse(f.c, v) }

func (f *flagValue) IsBoolFlag() bool { return f.s.boolean }
