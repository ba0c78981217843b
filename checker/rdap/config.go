package rdap

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"

	"golang.org/x/net/http/httpproxy"

	"github.com/domainguard/domainguard/checker"
	"github.com/domainguard/domainguard/internal/clock"
	"github.com/domainguard/domainguard/internal/dialguard"
	"github.com/domainguard/domainguard/internal/redact"
)

// Defaults used by Config.WithDefaults.
const (
	DefaultBootstrapURL    = "https://data.iana.org/rdap/dns.json"
	DefaultBootstrapMaxAge = 24 * time.Hour
	DefaultTimeout         = 15 * time.Second
	DefaultUserAgent       = "domainguard (+https://github.com/domainguard/domainguard)"

	// maxBodyBytes caps how much of a domain answer is read.
	maxBodyBytes = 1 << 20
	// maxBootstrapBytes caps how much of the bootstrap file is read.
	maxBootstrapBytes = 8 << 20
	// bootstrapRetryDelay is how long a failed bootstrap refresh waits
	// before the next attempt while a stale copy is in use.
	bootstrapRetryDelay = 15 * time.Minute
)

// Config configures a Client. The zero value is usable: WithDefaults fills
// every unset field.
type Config struct {
	// BootstrapURL is the IANA DNS bootstrap file (RFC 9224): http(s), or
	// file:///path for a copy seeded by hand (air-gapped installations).
	// Default DefaultBootstrapURL.
	BootstrapURL string
	// CacheDir is where the bootstrap file is cached as dns.json;
	// "" keeps it in memory only.
	CacheDir string
	// BootstrapMaxAge is how long a fetched bootstrap is used before it is
	// refreshed. Default 24h.
	BootstrapMaxAge time.Duration
	// Overrides maps a TLD (lower case, no dot) to an RDAP base URL; it
	// takes precedence over the bootstrap, for TLDs IANA does not list.
	Overrides map[string]string
	// Canaries maps a public suffix (a TLD such as "com" or a suffix such
	// as "gc.ca") to a known-registered name under it, used to confirm that
	// a 404 from its server means "not registered"
	// (DOMAINGUARD_RDAP_CANARIES). Entries here take precedence over the
	// registry profiles' canaries (lifecycle.Profile.CanaryFor); a suffix
	// neither names nor holds gets no canary, and its 404s stay unknown.
	Canaries map[string]string
	// HTTPClient makes the requests. Default: NewHTTPClient (15 s timeout,
	// redirects only within the same host, no connection to a non-public
	// address the operator did not name unless AllowPrivateLookups).
	// Bodies are capped at 1 MiB either way.
	HTTPClient *http.Client
	// AllowPrivateLookups (DOMAINGUARD_ALLOW_PRIVATE_LOOKUPS) lets the
	// default HTTP client connect to loopback, private and link-local
	// addresses found in the bootstrap or a redirect. The bootstrap URL,
	// the overrides and the HTTP(S) proxy are the operator's own choice and
	// are always allowed.
	AllowPrivateLookups bool
	// Clock tells the time. Default clock.System{}.
	Clock clock.Clock
	// Logger receives warnings. Default slog.Default().
	Logger *slog.Logger
	// UserAgent is sent with every request. Default DefaultUserAgent.
	UserAgent string
}

// WithDefaults returns cfg with every unset field filled in.
func (cfg Config) WithDefaults() Config {
	if cfg.BootstrapURL == "" {
		cfg.BootstrapURL = DefaultBootstrapURL
	}
	if cfg.BootstrapMaxAge <= 0 {
		cfg.BootstrapMaxAge = DefaultBootstrapMaxAge
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.System{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = DefaultUserAgent
	}
	canaries := make(map[string]string, len(cfg.Canaries))
	for tld, name := range cfg.Canaries {
		canaries[normalizeTLD(tld)] = strings.ToLower(strings.TrimSuffix(name, "."))
	}
	cfg.Canaries = canaries
	overrides := make(map[string]string, len(cfg.Overrides))
	for tld, base := range cfg.Overrides {
		overrides[normalizeTLD(tld)] = withTrailingSlash(base)
	}
	cfg.Overrides = overrides
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = NewHTTPClient(DefaultTimeout, cfg.dialGuard())
	}
	return cfg
}

// Validate checks a configuration after WithDefaults.
func (cfg Config) Validate() error {
	var errs []error
	if err := ValidateBootstrapURL(cfg.BootstrapURL); err != nil {
		errs = append(errs, fmt.Errorf("bootstrap URL: %w", err))
	}
	for tld, base := range cfg.Overrides {
		if tld == "" {
			errs = append(errs, errors.New("override with an empty TLD"))
		}
		if err := checker.ValidateServiceURL(base); err != nil {
			errs = append(errs, fmt.Errorf("override for .%s: %w", tld, err))
		}
	}
	for suffix, name := range cfg.Canaries {
		if err := ValidateCanary(suffix, name); err != nil {
			errs = append(errs, fmt.Errorf("canary for .%s: %w", suffix, err))
		}
	}
	return errors.Join(errs...)
}

// NewHTTPClient returns the default HTTP client: the given timeout,
// redirects followed only to the same host (at most 5), and every
// connection checked by guard (nil: no check).
func NewHTTPClient(timeout time.Duration, guard *dialguard.Guard) *http.Client {
	c := &http.Client{
		Timeout: timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("too many redirects")
			}
			if !strings.EqualFold(req.URL.Host, via[0].URL.Host) {
				return fmt.Errorf("refusing redirect from %s to another host %s", via[0].URL.Host, req.URL.Host)
			}
			return nil
		},
	}
	if guard != nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.DialContext = guard.DialContext(&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second})
		t.Proxy = func(req *http.Request) (*url.URL, error) {
			proxy, err := http.ProxyFromEnvironment(req)
			if proxy != nil && err == nil {
				// The proxy resolves the name and dials; only a literal
				// address can be judged here.
				if err := guard.CheckLiteral(req.URL); err != nil {
					return nil, err
				}
			}
			return proxy, err
		}
		c.Transport = t
	}
	return c
}

// dialGuard returns the guard of the default HTTP client: every address
// the operator named (the bootstrap URL, the overrides, the proxies of the
// environment) is allowed.
func (cfg Config) dialGuard() *dialguard.Guard {
	g := &dialguard.Guard{AllowPrivate: cfg.AllowPrivateLookups,
		Hint: "it came from the RDAP bootstrap or a redirect; set DOMAINGUARD_ALLOW_PRIVATE_LOOKUPS=true to allow private lookups, or name the server in DOMAINGUARD_RDAP_OVERRIDES"}
	g.Name(cfg.BootstrapURL)
	for _, base := range cfg.Overrides {
		g.Name(base)
	}
	proxies := httpproxy.FromEnvironment()
	for _, p := range []string{proxies.HTTPProxy, proxies.HTTPSProxy} {
		if p != "" && !strings.Contains(p, "://") {
			p = "http://" + p // as net/http reads a proxy without a scheme
		}
		g.Name(p)
	}
	return g
}

// checkBaseURL accepts http and https URLs; configured URLs are the
// operator's choice (bootstrap entries are held to https separately).
// checkBootstrapURL accepts what checkBaseURL accepts and file:///path
// (a seeded copy of IANA's dns.json, for air-gapped installations).
// ValidateBootstrapURL reports a bootstrap URL (RDAP_BOOTSTRAP_URL) that is
// neither an http(s) URL nor file:///path of a seeded copy.
func ValidateBootstrapURL(raw string) error {
	if path, ok := seededBootstrapPath(raw); ok {
		if path == "" {
			return fmt.Errorf("%q: no file path; want an http(s) or file:///path URL", redact.List(raw))
		}
		return nil
	}
	if checker.ValidateServiceURL(raw) != nil {
		return fmt.Errorf("%q is not an http(s) or file:///path URL", redact.List(raw))
	}
	return nil
}

// ValidateCanary reports a canary (DOMAINGUARD_RDAP_CANARIES) that is not
// a name under its suffix, both lower case without a trailing dot: a name
// elsewhere would probe another registry's server.
func ValidateCanary(suffix, name string) error {
	if len(name) <= len(suffix)+1 || !strings.HasSuffix(name, "."+suffix) {
		return fmt.Errorf("the canary %q must be a name under .%s", name, suffix)
	}
	return nil
}

// seededBootstrapPath returns the path of a file:// bootstrap URL.
func seededBootstrapPath(raw string) (path string, ok bool) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "file" {
		return "", false
	}
	return u.Path, true
}

// normalizeTLD lower-cases tld and trims dots and white space from both
// ends, in any mix, so that normalising twice gives the same key (" x. "
// and "x. ." alike).
func normalizeTLD(tld string) string {
	return strings.ToLower(strings.TrimFunc(tld, func(r rune) bool { return r == '.' || unicode.IsSpace(r) }))
}

func withTrailingSlash(base string) string {
	base = strings.TrimSpace(base)
	if !strings.HasSuffix(base, "/") {
		base += "/"
	}
	return base
}
