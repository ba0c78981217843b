package domainr

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/domainguard/domainguard/checker"
	"github.com/domainguard/domainguard/internal/clock"
	"github.com/domainguard/domainguard/internal/redact"
	"github.com/domainguard/domainguard/lifecycle"
)

// Provider kinds.
const (
	KindDomainr = "domainr"
	KindFastly  = "fastly"
)

// Default base URLs.
const (
	DefaultDomainrURL  = "https://api.domainr.com"
	DefaultRapidAPIURL = "https://domainr.p.rapidapi.com"
	DefaultFastlyURL   = "https://api.fastly.com"
	DefaultTimeout     = 15 * time.Second

	maxBodyBytes = 1 << 20
)

// Config configures a Client.
type Config struct {
	// Kind is KindDomainr or KindFastly. Required.
	Kind string
	// BaseURL is the API root. Default: DefaultFastlyURL for fastly; for
	// domainr DefaultDomainrURL, or DefaultRapidAPIURL when only
	// RapidAPIKey is set.
	BaseURL string
	// ClientID is Domainr's client_id (sent as a query parameter).
	ClientID string
	// RapidAPIKey is the RapidAPI key for Domainr (sent as X-RapidAPI-Key
	// and the legacy mashape-key header).
	RapidAPIKey string
	// FastlyKey is the Fastly API token (sent as Fastly-Key).
	FastlyKey string
	// HTTPClient makes the requests. Default: 15 s timeout, no redirects.
	HTTPClient *http.Client
	// Clock tells the time. Default clock.System{}.
	Clock clock.Clock
	// Logger receives debug logs (never credentials). Default slog.Default().
	Logger *slog.Logger
}

// WithDefaults returns cfg with unset fields filled in.
func (cfg Config) WithDefaults() Config {
	cfg.Kind = strings.ToLower(strings.TrimSpace(cfg.Kind))
	if cfg.BaseURL == "" {
		switch {
		case cfg.Kind == KindFastly:
			cfg.BaseURL = DefaultFastlyURL
		case cfg.ClientID == "" && cfg.RapidAPIKey != "":
			cfg.BaseURL = DefaultRapidAPIURL
		default:
			cfg.BaseURL = DefaultDomainrURL
		}
	}
	cfg.BaseURL = strings.TrimRight(strings.TrimSpace(cfg.BaseURL), "/")
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{
			Timeout: DefaultTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return errors.New("redirects are not followed") // would resend credentials
			},
		}
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.System{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return cfg
}

// ValidateCredentials reports a kind whose credentials are missing:
// fastly needs FASTLY_API_KEY, domainr DOMAINR_CLIENT_ID or
// DOMAINR_RAPIDAPI_KEY.
func (cfg Config) ValidateCredentials() error {
	switch cfg.Kind {
	case KindDomainr:
		if cfg.ClientID == "" && cfg.RapidAPIKey == "" {
			return errors.New("domainr needs a client_id (DOMAINR_CLIENT_ID) or a RapidAPI key (DOMAINR_RAPIDAPI_KEY)")
		}
	case KindFastly:
		if cfg.FastlyKey == "" {
			return errors.New("fastly needs an API key (FASTLY_API_KEY)")
		}
	default:
		return fmt.Errorf("unknown provider kind %q (want %q or %q)", cfg.Kind, KindDomainr, KindFastly)
	}
	return nil
}

// Validate checks that the kind is known, its credentials are present and
// the base URL is an http(s) URL.
func (cfg Config) Validate() error {
	var errs []error
	if err := cfg.ValidateCredentials(); err != nil {
		errs = append(errs, err)
	}
	if err := checker.ValidateServiceURL(cfg.BaseURL); err != nil {
		errs = append(errs, fmt.Errorf("base URL %w", err))
	}
	return errors.Join(errs...)
}

// Client is a Domainr or Fastly provider, safe for concurrent use.
type Client struct {
	cfg Config
}

var _ checker.Provider = (*Client)(nil)

// New returns a Client for cfg (defaults filled in, then validated).
func New(cfg Config) (*Client, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%s config: %w", cfg.Kind, err)
	}
	return &Client{cfg: cfg}, nil
}

// Name returns the kind: "domainr" or "fastly".
func (c *Client) Name() string { return c.cfg.Kind }

// Lookup asks the API about domain. prev is not used: tokens carry no
// history to compare.
func (c *Client) Lookup(ctx context.Context, domain string, _ *lifecycle.Observation) (lifecycle.Observation, error) {
	name := normalizeName(domain)
	now := c.cfg.Clock.Now()
	obs := lifecycle.Observation{Domain: name, Phase: lifecycle.PhaseUnknown,
		Evidence: lifecycle.Evidence{Provider: c.cfg.Kind, Server: redact.WithoutCredentials(c.cfg.BaseURL), ObservedAt: now}}
	if !strings.Contains(name, ".") || strings.ContainsAny(name, "/?#%@&= \t\r\n") {
		return obs, c.lookupErr(name, false, 0, 0, fmt.Errorf("invalid domain name %q", domain))
	}
	req, err := c.request(ctx, name)
	if err != nil {
		return obs, c.lookupErr(name, false, 0, 0, err)
	}
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return obs, c.lookupErr(name, true, 0, 0, redact.Error(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes+1))
	if err != nil {
		return obs, c.lookupErr(name, true, resp.StatusCode, 0, fmt.Errorf("read body: %w", redact.Error(err)))
	}
	if len(body) > maxBodyBytes {
		body = body[:maxBodyBytes]
	}

	switch code := resp.StatusCode; {
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return obs, c.lookupErr(name, false, code, 0, errors.New("credentials rejected: check the API key / client_id"))
	case code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable:
		wait := checker.ParseRetryAfter(resp.Header.Get("Retry-After"), c.cfg.Clock.Now())
		return obs, c.lookupErr(name, true, code, wait, errors.New(http.StatusText(code)))
	case code >= 500:
		return obs, c.lookupErr(name, true, code, 0, errors.New(http.StatusText(code)))
	case code == http.StatusBadRequest || code == http.StatusUnprocessableEntity:
		msg := "the API rejected the name as invalid"
		if e := apiError(body); e != nil {
			msg += ": " + e.Message
		}
		return obs, c.lookupErr(name, false, code, 0, errors.New(msg))
	case code == http.StatusNotFound:
		return obs, c.lookupErr(name, false, code, 0, errors.New("API endpoint not found: check the base URL"))
	case code != http.StatusOK:
		return obs, c.lookupErr(name, true, code, 0, errors.New(http.StatusText(code)))
	}

	var toks []string
	if c.cfg.Kind == KindFastly {
		toks, err = ParseFastlyStatus(body, name)
	} else {
		toks, err = ParseDomainrStatus(body, name)
	}
	var apiErr *APIError
	switch {
	case errors.As(err, &apiErr):
		switch {
		case apiErr.credentialsRejected():
			return obs, c.lookupErr(name, false, resp.StatusCode, 0, fmt.Errorf("credentials rejected: %w", apiErr))
		case apiErr.invalidName():
			return obs, c.lookupErr(name, false, resp.StatusCode, 0, apiErr)
		}
		return obs, c.lookupErr(name, true, resp.StatusCode, 0, apiErr)
	case err != nil:
		obs.Evidence.Detail = fmt.Sprintf("unparseable %s answer: %v", c.cfg.Kind, err)
		return obs, nil
	}
	obs.Evidence.Statuses = toks
	phase, why := lifecycle.ClassifyTokens(toks)
	obs.Phase = phase
	if phase == lifecycle.PhaseUnknown {
		obs.Evidence.Detail = why
	}
	return obs, nil
}

func (c *Client) request(ctx context.Context, name string) (*http.Request, error) {
	q := url.Values{"domain": {name}}
	var u string
	if c.cfg.Kind == KindFastly {
		u = c.cfg.BaseURL + "/domain-management/v1/tools/status"
	} else {
		u = c.cfg.BaseURL + "/v2/status"
		if c.cfg.ClientID != "" {
			q.Set("client_id", c.cfg.ClientID)
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u+"?"+q.Encode(), nil)
	if err != nil {
		return nil, redact.Error(err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "domainguard (+https://github.com/domainguard/domainguard)")
	switch {
	case c.cfg.Kind == KindFastly:
		req.Header.Set("Fastly-Key", c.cfg.FastlyKey)
	case c.cfg.RapidAPIKey != "":
		req.Header.Set("X-RapidAPI-Key", c.cfg.RapidAPIKey)
		req.Header.Set("X-RapidAPI-Host", req.URL.Host)
		req.Header.Set("mashape-key", c.cfg.RapidAPIKey)
	}
	return req, nil
}

func (c *Client) lookupErr(domain string, temporary bool, status int, wait time.Duration, err error) error {
	return &checker.LookupError{Provider: c.cfg.Kind, Domain: domain, Temporary: temporary,
		RetryAfter: wait, StatusCode: status, Err: err}
}
