package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/domainguard/domainguard/checker"
	"github.com/domainguard/domainguard/checker/dnsevidence"
	"github.com/domainguard/domainguard/checker/domainr"
	"github.com/domainguard/domainguard/checker/rdap"
	"github.com/domainguard/domainguard/enforcer"
	"github.com/domainguard/domainguard/internal/broker"
	"github.com/domainguard/domainguard/internal/redact"
	"github.com/domainguard/domainguard/lifecycle"
	"github.com/domainguard/domainguard/producer"
	"github.com/domainguard/domainguard/schemas"
)

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
	// owner reports a setting whose bound lives in the package that uses
	// it (broker, producer, checker, dnsevidence, enforcer, lifecycle):
	// the roles' own Validate checks the same bound with the same function.
	owner := func(env string, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", env, err))
		}
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
	owner("DOMAINGUARD_SUBJECT_PREFIX", schemas.Namespace{Prefix: c.SubjectPrefix}.Validate())
	if c.DNSResolver != "" {
		owner("DOMAINGUARD_DNS_RESOLVER", dnsevidence.ValidateServer(c.DNSResolver))
	}
	owner("DOMAINGUARD_DNS_QUERIES_PER_SECOND", dnsevidence.ValidateQueriesPerSecond(c.DNSQueriesPerSecond))
	owner("DOMAINGUARD_UNDELEGATED_CONFIRM", lifecycle.ValidateUndelegatedConfirm(c.UndelegatedConfirm))
	owner("DOMAINGUARD_STREAM_REPLICAS", broker.ValidateReplicas(c.StreamReplicas))

	switch c.Provider {
	case ProviderAuto, ProviderRDAP:
	case ProviderFastly:
		owner("FASTLY_API_KEY", domainr.Config{Kind: domainr.KindFastly, FastlyKey: c.FastlyAPIKey}.ValidateCredentials())
	case ProviderDomainr:
		owner("DOMAINR_RAPIDAPI_KEY", domainr.Config{Kind: domainr.KindDomainr, ClientID: c.DomainrClientID,
			RapidAPIKey: c.DomainrRapidAPIKey}.ValidateCredentials())
	default:
		bad("DOMAINGUARD_PROVIDER", "%q: want rdap, fastly, domainr or auto", c.Provider)
	}
	owner("RDAP_BOOTSTRAP_URL", rdap.ValidateBootstrapURL(c.RDAPBootstrapURL))
	owner("FASTLY_API_URL", checker.ValidateServiceURL(c.FastlyAPIURL))
	owner("DOMAINR_API_URL", checker.ValidateServiceURL(c.DomainrAPIURL))

	owner("DOMAINGUARD_LOOKUPS_PER_SECOND", checker.ValidateLookupsPerSecond(c.LookupsPerSecond))
	owner("DOMAINGUARD_DAILY_LOOKUP_BUDGET", producer.ValidateDailyBudget(c.DailyLookupBudget))
	owner("DOMAINGUARD_CHECK_CONCURRENCY", checker.ValidateConcurrency(c.CheckConcurrency))
	owner("DOMAINGUARD_RECHECK_INTERVAL", lifecycle.ValidateRecheckInterval(c.RecheckInterval))
	owner("DOMAINGUARD_SWEEP_INTERVAL", producer.ValidateSweepInterval(c.SweepInterval))
	owner("DOMAINGUARD_CHECK_ACK_WAIT", broker.ValidateAckWait(c.CheckAckWait))
	owner("DOMAINGUARD_EVENT_ACK_WAIT", broker.ValidateAckWait(c.EventAckWait))
	if c.MaxUnverifyPerDomain < 1 {
		bad("DOMAINGUARD_MAX_UNVERIFY_PER_DOMAIN", "%d: must be at least 1", c.MaxUnverifyPerDomain)
	}
	owner("DOMAINGUARD_BREAKER_PCT", enforcer.ValidateBreakerPct(c.BreakerPct))
	owner("DOMAINGUARD_BREAKER_MIN_DOMAINS", enforcer.ValidateBreakerMinDomains(c.BreakerMinDomains))
	for _, d := range c.ProtectedDomains {
		owner("DOMAINGUARD_PROTECTED_DOMAINS", enforcer.ValidateProtectedDomain(d))
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
