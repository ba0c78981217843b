package dnsevidence

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/domainguard/domainguard/internal/clock"
	"github.com/domainguard/domainguard/lifecycle"
)

// Defaults used by Config.WithDefaults.
const (
	DefaultQueriesPerSecond = 20.0
	DefaultTimeout          = 2 * time.Second
	DefaultAttempts         = 3
	DefaultRetryInitial     = 200 * time.Millisecond
	DefaultServerCacheTTL   = time.Hour
	// DefaultResolvConf is where the default resolver is read from.
	DefaultResolvConf = "/etc/resolv.conf"
	// WildcardTLD in TLDServers applies to every TLD without its own entry.
	WildcardTLD = "*"
	// maxServersPerZone caps how many parent zone servers one lookup asks.
	maxServersPerZone = 4
)

// Config configures a Client. WithDefaults fills every unset field.
type Config struct {
	// Resolver is the host:port of the recursive resolver
	// (DOMAINGUARD_DNS_RESOLVER). Default: the first nameserver in
	// ResolvConf, port 53.
	Resolver string
	// ResolvConf is the resolv.conf file read for the default Resolver.
	// Default /etc/resolv.conf.
	ResolvConf string
	// TLDServers maps a TLD (lower case, no dot) or "*" to the host:port
	// of authoritative servers to ask for delegations instead of the TLD's
	// published NS (DOMAINGUARD_DNS_TLD_SERVERS).
	TLDServers map[string][]string
	// QueriesPerSecond is the rate limit per server (parent zone servers
	// and the resolver alike). Default 20.
	QueriesPerSecond float64
	// Timeout bounds one query. Default 2s.
	Timeout time.Duration
	// Attempts is how many rounds over the servers one question gets.
	// Default 3.
	Attempts int
	// RetryInitial is the backoff before the second round, doubled after
	// each. Default 200ms.
	RetryInitial time.Duration
	// ServerCacheTTL is how long the TLD servers found through the resolver
	// are kept. Default 1h.
	ServerCacheTTL time.Duration
	// AllowPrivateLookups (DOMAINGUARD_ALLOW_PRIVATE_LOOKUPS) lets the
	// client query nameservers at loopback, private, link-local and other
	// non-public addresses learned from answers (glue, the resolver's
	// addresses of NS hosts). Default false: such a server is skipped,
	// since whoever holds a zone chooses them. Resolver and TLDServers are
	// the operator's and always queried.
	AllowPrivateLookups bool
	// UndelegatedConfirm is DOMAINGUARD_UNDELEGATED_CONFIRM, used by
	// Lookup (lifecycle.ClassifyDNS). Default 24h.
	UndelegatedConfirm time.Duration
	// Clock tells the time. Default clock.System{}.
	Clock clock.Clock
	// Logger receives warnings. Default slog.Default().
	Logger *slog.Logger
	// Registerer receives the metrics. Default: a private registry.
	Registerer prometheus.Registerer
}

// WithDefaults returns cfg with every unset field at its default, except
// Resolver, which New reads from ResolvConf when empty.
func (cfg Config) WithDefaults() Config {
	if cfg.ResolvConf == "" {
		cfg.ResolvConf = DefaultResolvConf
	}
	if cfg.QueriesPerSecond == 0 {
		cfg.QueriesPerSecond = DefaultQueriesPerSecond
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Attempts == 0 {
		cfg.Attempts = DefaultAttempts
	}
	if cfg.RetryInitial == 0 {
		cfg.RetryInitial = DefaultRetryInitial
	}
	if cfg.ServerCacheTTL == 0 {
		cfg.ServerCacheTTL = DefaultServerCacheTTL
	}
	if cfg.UndelegatedConfirm == 0 {
		cfg.UndelegatedConfirm = lifecycle.DefaultUndelegatedConfirm
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
	return cfg
}

// Validate reports every setting that cannot work. Call it on the result
// of WithDefaults.
func (cfg Config) Validate() error {
	var errs []error
	if cfg.Resolver != "" {
		if err := ValidateServer(cfg.Resolver); err != nil {
			errs = append(errs, fmt.Errorf("dns resolver: %w", err))
		}
	}
	for tld, servers := range cfg.TLDServers {
		if len(servers) == 0 {
			errs = append(errs, fmt.Errorf("dns tld servers: no server for %q", tld))
		}
		for _, s := range servers {
			if err := ValidateServer(s); err != nil {
				errs = append(errs, fmt.Errorf("dns tld servers: %s: %w", tld, err))
			}
		}
	}
	if err := ValidateQueriesPerSecond(cfg.QueriesPerSecond); err != nil {
		errs = append(errs, fmt.Errorf("dns queries per second %w", err))
	}
	if cfg.Timeout <= 0 || cfg.RetryInitial <= 0 || cfg.ServerCacheTTL <= 0 {
		errs = append(errs, errors.New("dns timeout, retry backoff and server cache TTL must be positive"))
	}
	if err := lifecycle.ValidateUndelegatedConfirm(cfg.UndelegatedConfirm); err != nil {
		errs = append(errs, fmt.Errorf("undelegated confirm %w", err))
	}
	if cfg.Attempts < 1 {
		errs = append(errs, fmt.Errorf("dns attempts %d must be at least 1", cfg.Attempts))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("dnsevidence config: %w", err)
	}
	return nil
}

// ValidateServer reports an address that is not host:port with a
// non-empty host and a port from 1 to 65535: the resolver
// (DOMAINGUARD_DNS_RESOLVER) and each TLD server
// (DOMAINGUARD_DNS_TLD_SERVERS).
func ValidateServer(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" {
		return fmt.Errorf("%q is not host:port", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q: port %q is not 1-65535", s, port)
	}
	return nil
}

// ValidateQueriesPerSecond reports a per-server query rate that is not
// positive (DOMAINGUARD_DNS_QUERIES_PER_SECOND).
func ValidateQueriesPerSecond(r float64) error {
	if !(r > 0) {
		return fmt.Errorf("%g: must be positive", r)
	}
	return nil
}

// ResolverFromFile returns host:port of the first nameserver in a
// resolv.conf file.
func ResolverFromFile(path string) (string, error) {
	cc, err := dns.ClientConfigFromFile(path)
	if err != nil {
		return "", fmt.Errorf("read resolver from %s: %w", path, err)
	}
	if len(cc.Servers) == 0 {
		return "", fmt.Errorf("read resolver from %s: no nameserver line", path)
	}
	port := cc.Port
	if port == "" {
		port = "53"
	}
	return net.JoinHostPort(cc.Servers[0], port), nil
}
