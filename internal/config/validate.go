package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/domainguard/domainguard/internal/redact"
	"github.com/domainguard/domainguard/lifecycle"
)

var subjectPrefixPattern = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`)

// Validate reports every invalid field at once, naming its variable. It
// checks what Load can produce: Load applies WithDefaults, so a field
// WithDefaults fills is never empty here, and a list Load parses itself
// (RDAP overrides, DNS TLD servers, canaries, protected domains without
// empty items) was checked while parsing.
func (c Config) Validate() error {
	var errs []error
	bad := func(env, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", env, fmt.Sprintf(format, args...)))
	}

	if strings.Contains(c.DatabaseURL, "://") {
		if u, err := url.Parse(c.DatabaseURL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			bad("DATABASE_URL", "%q is not a postgres:// URL", redact.List(c.DatabaseURL))
		}
	}
	if c.NATSURL != "" {
		for _, raw := range strings.Split(c.NATSURL, ",") {
			raw = strings.TrimSpace(raw)
			if !strings.Contains(raw, "://") {
				continue // host:port is accepted by the NATS client
			}
			u, err := url.Parse(raw)
			if err != nil || u.Host == "" {
				bad("NATS_URL", "%q is not a URL", redact.List(raw))
				continue
			}
			switch u.Scheme {
			case "nats", "tls", "ws", "wss":
			default:
				bad("NATS_URL", "%q: scheme must be nats, tls, ws or wss", redact.List(raw))
			}
		}
	}
	if c.NATSCreds != "" && (c.NATSUser != "" || c.NATSPassword != "") {
		bad("NATS_CREDS", "set either NATS_CREDS or NATS_USER/NATS_PASSWORD, not both")
	}
	if c.NATSPassword != "" && c.NATSUser == "" {
		bad("NATS_PASSWORD", "set without NATS_USER")
	}
	if c.SubjectPrefix != "" && !subjectPrefixPattern.MatchString(c.SubjectPrefix) {
		bad("DOMAINGUARD_SUBJECT_PREFIX", "%q: want dot-separated tokens of letters, digits, _ and -", c.SubjectPrefix)
	}
	if c.DNSResolver != "" {
		if host, port, err := net.SplitHostPort(c.DNSResolver); err != nil || host == "" || port == "" {
			bad("DOMAINGUARD_DNS_RESOLVER", "%q is not host:port", c.DNSResolver)
		}
	}
	if c.DNSQueriesPerSecond <= 0 {
		bad("DOMAINGUARD_DNS_QUERIES_PER_SECOND", "%g: must be positive", c.DNSQueriesPerSecond)
	}
	if c.UndelegatedConfirm <= 0 {
		bad("DOMAINGUARD_UNDELEGATED_CONFIRM", "%s: must be positive", c.UndelegatedConfirm)
	}
	if c.StreamReplicas < 1 || c.StreamReplicas > 5 {
		bad("DOMAINGUARD_STREAM_REPLICAS", "%d: want 1 to 5", c.StreamReplicas)
	}

	switch c.Provider {
	case ProviderAuto, ProviderRDAP:
	case ProviderFastly:
		if c.FastlyAPIKey == "" {
			bad("FASTLY_API_KEY", "required when DOMAINGUARD_PROVIDER=fastly")
		}
	case ProviderDomainr:
		if c.DomainrClientID == "" && c.DomainrRapidAPIKey == "" {
			bad("DOMAINR_RAPIDAPI_KEY", "DOMAINR_RAPIDAPI_KEY or DOMAINR_CLIENT_ID required when DOMAINGUARD_PROVIDER=domainr")
		}
	default:
		bad("DOMAINGUARD_PROVIDER", "%q: want rdap, fastly, domainr or auto", c.Provider)
	}
	for _, f := range []struct{ env, v string }{
		{"RDAP_BOOTSTRAP_URL", c.RDAPBootstrapURL},
		{"FASTLY_API_URL", c.FastlyAPIURL},
		{"DOMAINR_API_URL", c.DomainrAPIURL},
	} {
		env, v := f.env, f.v
		u, err := url.Parse(v)
		if err == nil && env == "RDAP_BOOTSTRAP_URL" && u.Scheme == "file" && u.Path != "" {
			continue // a seeded copy of IANA's dns.json (air-gapped)
		}
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			if env == "RDAP_BOOTSTRAP_URL" {
				bad(env, "%q is not an http(s) or file:///path URL", redact.List(v))
				continue
			}
			bad(env, "%q is not an http(s) URL", redact.List(v))
		}
	}

	if !(c.LookupsPerSecond > 0) {
		bad("DOMAINGUARD_LOOKUPS_PER_SECOND", "%g: must be above 0", c.LookupsPerSecond)
	}
	if c.DailyLookupBudget < 0 {
		bad("DOMAINGUARD_DAILY_LOOKUP_BUDGET", "%d: must be 0 (unlimited) or more", c.DailyLookupBudget)
	}
	if c.CheckConcurrency < 1 || c.CheckConcurrency > 1000 {
		bad("DOMAINGUARD_CHECK_CONCURRENCY", "%d: want 1 to 1000", c.CheckConcurrency)
	}
	switch {
	case c.RecheckInterval < time.Hour:
		bad("DOMAINGUARD_RECHECK_INTERVAL", "%s: want at least 1h", c.RecheckInterval)
	case c.RecheckInterval > lifecycle.MaxRecheckInterval:
		bad("DOMAINGUARD_RECHECK_INTERVAL", "%s: want at most %s — a deleted name can be released %s after deletion (DENIC's redemption grace period), so a longer interval can miss a whole lapse between two checks",
			c.RecheckInterval, lifecycle.MaxRecheckInterval, lifecycle.MaxRecheckInterval)
	}
	if c.SweepInterval < time.Second {
		bad("DOMAINGUARD_SWEEP_INTERVAL", "%s: want at least 1s", c.SweepInterval)
	}
	if c.CheckAckWait < 3*time.Second || c.CheckAckWait > time.Hour {
		bad("DOMAINGUARD_CHECK_ACK_WAIT", "%s: want 3s to 1h", c.CheckAckWait)
	}
	if c.EventAckWait < time.Second || c.EventAckWait > time.Hour {
		bad("DOMAINGUARD_EVENT_ACK_WAIT", "%s: want 1s to 1h", c.EventAckWait)
	}
	if c.MaxUnverifyPerDomain < 1 {
		bad("DOMAINGUARD_MAX_UNVERIFY_PER_DOMAIN", "%d: must be at least 1", c.MaxUnverifyPerDomain)
	}
	if !(c.BreakerPct > 0 && c.BreakerPct <= 100) {
		bad("DOMAINGUARD_BREAKER_PCT", "%g: want above 0 and at most 100", c.BreakerPct)
	}
	if c.BreakerMinDomains < 1 {
		bad("DOMAINGUARD_BREAKER_MIN_DOMAINS", "%d: must be at least 1", c.BreakerMinDomains)
	}
	for _, d := range c.ProtectedDomains {
		if strings.ContainsAny(d, " /@*") {
			bad("DOMAINGUARD_PROTECTED_DOMAINS", "%q is not a domain name", d)
		}
	}
	if c.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			bad("DOMAINGUARD_METRICS_ADDR", "%q: want host:port, :port or off", c.MetricsAddr)
		}
	}
	if _, err := ParseLogLevel(c.LogLevel); err != nil {
		bad("DOMAINGUARD_LOG_LEVEL", "%v", err)
	}
	if c.LogFormat != "" && c.LogFormat != "json" && c.LogFormat != "text" {
		bad("DOMAINGUARD_LOG_FORMAT", "%q: want json or text", c.LogFormat)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}
