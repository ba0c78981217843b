package rdap

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/domainguard/domainguard/internal/clock"
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
	// HTTPClient makes the requests. Default: 15 s timeout, redirects only
	// within the same host. Bodies are capped at 1 MiB either way.
	HTTPClient *http.Client
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
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = NewHTTPClient(DefaultTimeout)
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
	return cfg
}

// Validate checks a configuration after WithDefaults.
func (cfg Config) Validate() error {
	var errs []error
	if err := checkBootstrapURL(cfg.BootstrapURL); err != nil {
		errs = append(errs, fmt.Errorf("bootstrap URL: %w", err))
	}
	for tld, base := range cfg.Overrides {
		if tld == "" {
			errs = append(errs, errors.New("override with an empty TLD"))
		}
		if err := checkBaseURL(base); err != nil {
			errs = append(errs, fmt.Errorf("override for .%s: %w", tld, err))
		}
	}
	for tld, name := range cfg.Canaries {
		if name == "" || !strings.Contains(name, ".") {
			errs = append(errs, fmt.Errorf("canary for .%s: %q is not a domain name", tld, name))
		}
	}
	return errors.Join(errs...)
}

// NewHTTPClient returns the default HTTP client: the given timeout, and
// redirects followed only to the same host (at most 5).
func NewHTTPClient(timeout time.Duration) *http.Client {
	return &http.Client{
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
}

// checkBaseURL accepts http and https URLs; configured URLs are the
// operator's choice (bootstrap entries are held to https separately).
// checkBootstrapURL accepts what checkBaseURL accepts and file:///path
// (a seeded copy of IANA's dns.json, for air-gapped installations).
func checkBootstrapURL(raw string) error {
	if path, ok := seededBootstrapPath(raw); ok {
		if path == "" {
			return fmt.Errorf("%q: no file path", raw)
		}
		return nil
	}
	return checkBaseURL(raw)
}

// seededBootstrapPath returns the path of a file:// bootstrap URL.
func seededBootstrapPath(raw string) (path string, ok bool) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "file" {
		return "", false
	}
	return u.Path, true
}

func checkBaseURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return fmt.Errorf("%q: unsupported scheme %q", raw, u.Scheme)
	}
	if u.Host == "" {
		return fmt.Errorf("%q: no host", raw)
	}
	return nil
}

func normalizeTLD(tld string) string {
	return strings.ToLower(strings.Trim(strings.TrimSpace(tld), "."))
}

func withTrailingSlash(base string) string {
	base = strings.TrimSpace(base)
	if !strings.HasSuffix(base, "/") {
		base += "/"
	}
	return base
}
