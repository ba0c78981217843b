package config

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/domainguard/domainguard/checker"
	"github.com/domainguard/domainguard/checker/dnsevidence"
	"github.com/domainguard/domainguard/checker/rdap"
	"github.com/domainguard/domainguard/internal/redact"
)

// setting is one configuration variable: its environment name, how to parse
// it into a Config and how to print it back.
type setting struct {
	env     string
	help    string
	secret  bool // value is hidden whole in Redacted
	url     bool // value is URL(s) (or name=URL pairs) whose credentials redact.List hides
	boolean bool // flag may be given without a value
	parse   func(*Config, string) error
	format  func(Config) string
}

// flagName is env without the DOMAINGUARD_ prefix, lower-kebab.
func (s setting) flagName() string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(s.env, "DOMAINGUARD_")), "_", "-")
}

var settings = []setting{
	{env: "DATABASE_URL", url: true, help: "PostgreSQL `url`",
		parse: func(c *Config, v string) error {
			c.DatabaseURL, c.DatabaseURLSet = strings.TrimSpace(v), true
			return nil
		},
		format: func(c Config) string { return c.DatabaseURL }},
	{env: "NATS_URL", url: true, help: "NATS server `url`(s), comma separated; empty: `run` starts an embedded server",
		parse:  func(c *Config, v string) error { c.NATSURL = strings.TrimSpace(v); return nil },
		format: func(c Config) string { return c.NATSURL }},
	{env: "NATS_USER", help: "NATS `user` name",
		parse:  func(c *Config, v string) error { c.NATSUser = v; return nil },
		format: func(c Config) string { return c.NATSUser }},
	{env: "NATS_PASSWORD", secret: true, help: "NATS `password`",
		parse:  func(c *Config, v string) error { c.NATSPassword = v; return nil },
		format: func(c Config) string { return c.NATSPassword }},
	{env: "NATS_CREDS", help: "NATS credentials (.creds) `file`",
		parse:  func(c *Config, v string) error { c.NATSCreds = v; return nil },
		format: func(c Config) string { return c.NATSCreds }},
	{env: "DOMAINGUARD_SUBJECT_PREFIX", help: "`prefix` for NATS subjects and streams, to share a NATS between deployments",
		parse:  func(c *Config, v string) error { c.SubjectPrefix = strings.TrimSpace(v); return nil },
		format: func(c Config) string { return c.SubjectPrefix }},
	{env: "DOMAINGUARD_STREAM_REPLICAS", help: "JetStream stream `replicas` (1-5)",
		parse:  intParser(func(c *Config) *int { return &c.StreamReplicas }),
		format: func(c Config) string { return strconv.Itoa(c.StreamReplicas) }},
	{env: "DOMAINGUARD_MANAGE_TOPOLOGY", boolean: true, help: "create or update the JetStream topology on start (false: only check it exists)",
		parse:  boolParser(func(c *Config) *bool { return &c.ManageTopology }),
		format: func(c Config) string { return strconv.FormatBool(c.ManageTopology) }},
	{env: "DOMAINGUARD_DATA_DIR", help: "`directory` for the embedded NATS and private PostgreSQL data",
		parse:  func(c *Config, v string) error { c.DataDir = v; return nil },
		format: func(c Config) string { return c.DataDir }},
	{env: "DOMAINGUARD_PROVIDER", help: "lookup `provider`: rdap, fastly, domainr or auto",
		parse:  func(c *Config, v string) error { c.Provider = strings.ToLower(strings.TrimSpace(v)); return nil },
		format: func(c Config) string { return c.Provider }},
	{env: "RDAP_BOOTSTRAP_URL", url: true, help: "IANA RDAP DNS bootstrap `url`",
		parse:  func(c *Config, v string) error { c.RDAPBootstrapURL = strings.TrimSpace(v); return nil },
		format: func(c Config) string { return c.RDAPBootstrapURL }},
	{env: "DOMAINGUARD_RDAP_OVERRIDES", url: true, help: "RDAP base URLs per TLD: `tld=url,...`",
		parse:  parseOverrides,
		format: func(c Config) string { return formatOverrides(c.RDAPOverrides) }},
	{env: "DOMAINGUARD_RDAP_CANARIES", help: "known-registered names confirming RDAP 404s per public suffix: `suffix=name,...`",
		parse:  parseCanaries,
		format: func(c Config) string { return formatOverrides(c.RDAPCanaries) }},
	{env: "DOMAINGUARD_ALLOW_PRIVATE_LOOKUPS", boolean: true, help: "let RDAP lookups reach loopback, private and link-local addresses found in the bootstrap or a redirect, and DNS evidence query nameservers at such addresses found in DNS answers (addresses named in RDAP_BOOTSTRAP_URL, DOMAINGUARD_RDAP_OVERRIDES and the DNS variables are always allowed)",
		parse:  boolParser(func(c *Config) *bool { return &c.AllowPrivateLookups }),
		format: func(c Config) string { return strconv.FormatBool(c.AllowPrivateLookups) }},
	{env: "FASTLY_API_URL", url: true, help: "Fastly API base `url`",
		parse:  func(c *Config, v string) error { c.FastlyAPIURL = strings.TrimSpace(v); return nil },
		format: func(c Config) string { return c.FastlyAPIURL }},
	{env: "FASTLY_API_KEY", secret: true, help: "Fastly API `key`",
		parse:  func(c *Config, v string) error { c.FastlyAPIKey = strings.TrimSpace(v); return nil },
		format: func(c Config) string { return c.FastlyAPIKey }},
	{env: "DOMAINR_API_URL", url: true, help: "Domainr API base `url`",
		parse:  func(c *Config, v string) error { c.DomainrAPIURL = strings.TrimSpace(v); return nil },
		format: func(c Config) string { return c.DomainrAPIURL }},
	{env: "DOMAINR_CLIENT_ID", secret: true, help: "Domainr client `id`",
		parse:  func(c *Config, v string) error { c.DomainrClientID = strings.TrimSpace(v); return nil },
		format: func(c Config) string { return c.DomainrClientID }},
	{env: "DOMAINR_RAPIDAPI_KEY", secret: true, help: "Domainr RapidAPI `key`",
		parse:  func(c *Config, v string) error { c.DomainrRapidAPIKey = strings.TrimSpace(v); return nil },
		format: func(c Config) string { return c.DomainrRapidAPIKey }},
	{env: "DOMAINGUARD_DNS_EVIDENCE", boolean: true, help: "use DNS evidence (parent zone delegation, MX, SOA) for TLDs without RDAP and to corroborate RDAP",
		parse:  boolParser(func(c *Config) *bool { return &c.DNSEvidence }),
		format: func(c Config) string { return strconv.FormatBool(c.DNSEvidence) }},
	{env: "DOMAINGUARD_DNS_RESOLVER", help: "recursive resolver `host:port` (default: first nameserver in /etc/resolv.conf)",
		parse:  func(c *Config, v string) error { c.DNSResolver = strings.TrimSpace(v); return nil },
		format: func(c Config) string { return c.DNSResolver }},
	{env: "DOMAINGUARD_DNS_TLD_SERVERS", help: "authoritative servers asked for delegations: `tld=host:port,...`, *=host:port for every TLD",
		parse:  parseTLDServers,
		format: func(c Config) string { return formatTLDServers(c.DNSTLDServers) }},
	{env: "DOMAINGUARD_DNS_QUERIES_PER_SECOND", help: "DNS `queries` per second per server",
		parse:  floatParser(func(c *Config) *float64 { return &c.DNSQueriesPerSecond }),
		format: func(c Config) string { return strconv.FormatFloat(c.DNSQueriesPerSecond, 'g', -1, 64) }},
	{env: "DOMAINGUARD_UNDELEGATED_CONFIRM", help: "how long a delegated name must stay undelegated, seen twice this far apart, before DNS alone counts it as a lapse (Go `duration`)",
		parse:  durationParser(func(c *Config) *time.Duration { return &c.UndelegatedConfirm }),
		format: func(c Config) string { return c.UndelegatedConfirm.String() }},
	{env: "DOMAINGUARD_LOOKUPS_PER_SECOND", help: "provider `lookups` per second per checker",
		parse:  floatParser(func(c *Config) *float64 { return &c.LookupsPerSecond }),
		format: func(c Config) string { return strconv.FormatFloat(c.LookupsPerSecond, 'g', -1, 64) }},
	{env: "DOMAINGUARD_DAILY_LOOKUP_BUDGET", help: "most `lookups` scheduled per day; 0 or \"unlimited\" for no limit",
		parse: func(c *Config, v string) error {
			if strings.EqualFold(strings.TrimSpace(v), "unlimited") {
				c.DailyLookupBudget = 0
				return nil
			}
			return intParser(func(c *Config) *int { return &c.DailyLookupBudget })(c, v)
		},
		format: func(c Config) string { return strconv.Itoa(c.DailyLookupBudget) }},
	{env: "DOMAINGUARD_CHECK_CONCURRENCY", help: "`lookups` in flight per checker",
		parse:  intParser(func(c *Config) *int { return &c.CheckConcurrency }),
		format: func(c Config) string { return strconv.Itoa(c.CheckConcurrency) }},
	{env: "DOMAINGUARD_RECHECK_INTERVAL", help: "longest time between checks of a healthy domain (Go `duration`, e.g. 720h)",
		parse:  durationParser(func(c *Config) *time.Duration { return &c.RecheckInterval }),
		format: func(c Config) string { return c.RecheckInterval.String() }},
	{env: "DOMAINGUARD_SWEEP_INTERVAL", help: "how often the producer looks for due domains (Go `duration`, e.g. 1m)",
		parse:  durationParser(func(c *Config) *time.Duration { return &c.SweepInterval }),
		format: func(c Config) string { return c.SweepInterval.String() }},
	{env: "DOMAINGUARD_CHECK_ACK_WAIT", help: "how long a check may go unacknowledged before it is redelivered (Go `duration`)",
		parse:  durationParser(func(c *Config) *time.Duration { return &c.CheckAckWait }),
		format: func(c Config) string { return c.CheckAckWait.String() }},
	{env: "DOMAINGUARD_EVENT_ACK_WAIT", help: "how long an intake or domain event may go unacknowledged before it is redelivered (Go `duration`)",
		parse:  durationParser(func(c *Config) *time.Duration { return &c.EventAckWait }),
		format: func(c Config) string { return c.EventAckWait.String() }},
	{env: "DOMAINGUARD_STRICT", boolean: true, help: "unverify addresses of domains in grace too",
		parse:  boolParser(func(c *Config) *bool { return &c.Strict }),
		format: func(c Config) string { return strconv.FormatBool(c.Strict) }},
	{env: "DOMAINGUARD_DRY_RUN", boolean: true, help: "decide and audit but change no email",
		parse:  boolParser(func(c *Config) *bool { return &c.DryRun }),
		format: func(c Config) string { return strconv.FormatBool(c.DryRun) }},
	{env: "DOMAINGUARD_MAX_UNVERIFY_PER_DOMAIN", help: "hold changes unverifying more than this many `addresses`",
		parse:  intParser(func(c *Config) *int { return &c.MaxUnverifyPerDomain }),
		format: func(c Config) string { return strconv.Itoa(c.MaxUnverifyPerDomain) }},
	{env: "DOMAINGUARD_BREAKER_PCT", help: "pause enforcement when more than this `percent` of recently observed domains turn non-active",
		parse:  floatParser(func(c *Config) *float64 { return &c.BreakerPct }),
		format: func(c Config) string { return strconv.FormatFloat(c.BreakerPct, 'g', -1, 64) }},
	{env: "DOMAINGUARD_BREAKER_MIN_DOMAINS", help: "least `number` of domains looked at that the breaker counts over: the last hour's, or the last this many looked at when the hour saw fewer",
		parse:  intParser(func(c *Config) *int { return &c.BreakerMinDomains }),
		format: func(c Config) string { return strconv.Itoa(c.BreakerMinDomains) }},
	{env: "DOMAINGUARD_PROTECTED_DOMAINS", help: "extra protected `domains`, comma separated",
		parse:  func(c *Config, v string) error { c.ProtectedDomains = splitDomains(v); return nil },
		format: func(c Config) string { return strings.Join(c.ProtectedDomains, ",") }},
	{env: "DOMAINGUARD_METRICS_ADDR", help: "metrics/health listen `address`; \"off\" disables",
		parse: func(c *Config, v string) error {
			v = strings.TrimSpace(v)
			if strings.EqualFold(v, "off") {
				v = ""
			}
			c.MetricsAddr, c.MetricsAddrSet = v, true
			return nil
		},
		format: func(c Config) string { return c.MetricsAddr }},
	{env: "DOMAINGUARD_LOG_LEVEL", help: "log `level`: debug, info, warn or error",
		parse:  func(c *Config, v string) error { c.LogLevel = strings.ToLower(strings.TrimSpace(v)); return nil },
		format: func(c Config) string { return c.LogLevel }},
	{env: "DOMAINGUARD_LOG_FORMAT", help: "log `format`: json or text (default: text on a terminal, json otherwise)",
		parse:  func(c *Config, v string) error { c.LogFormat = strings.ToLower(strings.TrimSpace(v)); return nil },
		format: func(c Config) string { return c.LogFormat }},
	{env: "DOMAINGUARD_CONSOLE_ADDR", help: "operator console listen `address` (run: off unless set; console: 127.0.0.1:8080)",
		parse:  func(c *Config, v string) error { c.ConsoleAddr = strings.TrimSpace(v); return nil },
		format: func(c Config) string { return c.ConsoleAddr }},
	{env: "DOMAINGUARD_CONSOLE_USERS", help: "operator console users `file` (name:role:bcrypt-hash lines)",
		parse:  func(c *Config, v string) error { c.ConsoleUsers = strings.TrimSpace(v); return nil },
		format: func(c Config) string { return c.ConsoleUsers }},
	{env: "DOMAINGUARD_API_ADDR", help: "host HTTP API listen `address` (run: off unless set; api: 127.0.0.1:8081)",
		parse:  func(c *Config, v string) error { c.APIAddr = strings.TrimSpace(v); return nil },
		format: func(c Config) string { return c.APIAddr }},
	{env: "DOMAINGUARD_API_TOKENS", secret: true, help: "host HTTP API bearer `tokens`: name:token,...",
		parse:  func(c *Config, v string) error { c.APITokens = strings.TrimSpace(v); return nil },
		format: func(c Config) string { return c.APITokens }},
}

// valueParser parses a setting's trimmed value with parse into field; want
// says what a valid value looks like.
func valueParser[T any](field func(*Config) *T, parse func(string) (T, error), want string) func(*Config, string) error {
	return func(c *Config, v string) error {
		x, err := parse(strings.TrimSpace(v))
		if err != nil {
			return errors.New(want)
		}
		*field(c) = x
		return nil
	}
}

func intParser(field func(*Config) *int) func(*Config, string) error {
	return valueParser(field, strconv.Atoi, "want a whole number")
}

func floatParser(field func(*Config) *float64) func(*Config, string) error {
	return valueParser(field, parseFinite, "want a number")
}

func durationParser(field func(*Config) *time.Duration) func(*Config, string) error {
	return valueParser(field, time.ParseDuration, "want a Go duration such as 90s, 15m or 720h")
}

func boolParser(field func(*Config) *bool) func(*Config, string) error {
	return valueParser(field, strconv.ParseBool, "want true or false")
}

// parseFinite is strconv.ParseFloat without NaN and the infinities.
func parseFinite(s string) (float64, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err == nil && (math.IsNaN(f) || math.IsInf(f, 0)) {
		err = errors.New("not a finite number")
	}
	return f, err
}

func splitDomains(v string) []string {
	var out []string
	for _, d := range strings.Split(v, ",") {
		d = strings.Trim(strings.ToLower(strings.TrimSpace(d)), ".")
		if d != "" {
			out = append(out, d)
		}
	}
	return out
}

func parseOverrides(c *Config, v string) error {
	out := map[string]string{}
	err := eachPair(v, func(item, tld, base string, ok bool) error {
		if !ok {
			return fmt.Errorf("item %q: want tld=url", redact.List(item))
		}
		if err := checker.ValidateServiceURL(base); err != nil {
			return fmt.Errorf("item %q: %w", redact.List(item), err)
		}
		out[tld] = base
		return nil
	})
	if err != nil {
		return err
	}
	c.RDAPOverrides = out
	return nil
}

func parseCanaries(c *Config, v string) error {
	out := map[string]string{}
	err := eachPair(v, func(item, suffix, name string, ok bool) error {
		name = strings.TrimSuffix(strings.ToLower(name), ".")
		if !ok || name == "" {
			return fmt.Errorf("item %q: want suffix=name", item)
		}
		if err := rdap.ValidateCanary(suffix, name); err != nil {
			return fmt.Errorf("item %q: %w", item, err)
		}
		out[suffix] = name
		return nil
	})
	if err != nil {
		return err
	}
	c.RDAPCanaries = out
	return nil
}

// parseTLDServers reads "tld=host:port,…" ("*" for every TLD; a TLD named
// again adds a server).
func parseTLDServers(c *Config, v string) error {
	out := map[string][]string{}
	err := eachPair(v, func(item, tld, addr string, ok bool) error {
		if !ok {
			return fmt.Errorf("item %q: want tld=host:port", item)
		}
		if err := dnsevidence.ValidateServer(addr); err != nil {
			return fmt.Errorf("item %q: %w", item, err)
		}
		out[tld] = append(out[tld], addr)
		return nil
	})
	if err != nil {
		return err
	}
	c.DNSTLDServers = out
	return nil
}

// eachPair calls f with every item of a "key=value,…" list, empty items
// skipped: the key trimmed, lower case and without leading or trailing
// dots (a TLD or suffix as written in any form), the value trimmed. ok is
// false when the item has no "=" or either side is empty.
func eachPair(v string, f func(item, key, value string, ok bool) error) error {
	for _, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		key, value, ok := strings.Cut(item, "=")
		key = strings.Trim(strings.ToLower(strings.TrimSpace(key)), ".")
		value = strings.TrimSpace(value)
		if err := f(item, key, value, ok && key != "" && value != ""); err != nil {
			return err
		}
	}
	return nil
}

func formatTLDServers(m map[string][]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		for _, a := range m[k] {
			parts = append(parts, k+"="+a)
		}
	}
	return strings.Join(parts, ",")
}

func formatOverrides(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, ",")
}
