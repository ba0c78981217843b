package rdap

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/domainguard/domainguard/checker"
	"github.com/domainguard/domainguard/internal/domainname"
	"github.com/domainguard/domainguard/internal/redact"
	"github.com/domainguard/domainguard/lifecycle"
)

// ProviderName is the name of this provider in evidence, logs and metrics.
const ProviderName = "rdap"

// Client is the RDAP provider. It is safe for concurrent use.
type Client struct {
	cfg       Config
	bootstrap *bootstrapCache
}

var _ checker.Provider = (*Client)(nil)

// New returns a Client for cfg (defaults filled in, then validated).
func New(cfg Config) (*Client, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("rdap config: %w", err)
	}
	c := &Client{cfg: cfg}
	c.bootstrap = &bootstrapCache{c: c}
	return c, nil
}

// Name returns "rdap".
func (c *Client) Name() string { return ProviderName }

// HasService reports whether an RDAP server is known for tld, from the
// overrides or the bootstrap. It fails only when no bootstrap could ever
// be loaded (nor a cached copy read).
func (c *Client) HasService(ctx context.Context, tld string) (bool, error) {
	_, ok, err := c.baseURL(ctx, normalizeTLD(tld))
	return ok, err
}

func (c *Client) baseURL(ctx context.Context, tld string) (string, bool, error) {
	if base, ok := c.cfg.Overrides[tld]; ok {
		return base, true, nil
	}
	b, err := c.bootstrap.get(ctx)
	if err != nil {
		return "", false, err
	}
	base, ok := serviceFor(b, tld)
	return base, ok, nil
}

// canaryFor returns the known-registered name that must answer on the
// server before a 404 for a name under the public suffix may mean
// released: the configured one (DOMAINGUARD_RDAP_CANARIES), else the
// registry profile's (lifecycle.Profile.CanaryFor). ok is false when
// nothing can vouch for the suffix (the registry is not known to hold it).
func (c *Client) canaryFor(suffix string) (string, bool) {
	if name, ok := c.cfg.Canaries[suffix]; ok {
		return name, true
	}
	return lifecycle.ProfileFor(suffix).CanaryFor(suffix)
}

// Lookup asks the authoritative RDAP server about domain (a registrable
// domain, A-label). See the package doc for how answers map to results.
func (c *Client) Lookup(ctx context.Context, domain string, prev *lifecycle.Observation) (lifecycle.Observation, error) {
	name := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(domain), "."))
	now := c.cfg.Clock.Now()
	obs := lifecycle.Observation{Domain: name, Phase: lifecycle.PhaseUnknown,
		Evidence: lifecycle.Evidence{Provider: ProviderName, ObservedAt: now}}
	dot := strings.LastIndexByte(name, '.')
	if dot <= 0 || dot == len(name)-1 || strings.ContainsAny(name, "/?#%@ \t\r\n") {
		return obs, c.lookupErr(name, false, 0, 0, fmt.Errorf("invalid domain name %q", domain))
	}
	tld := name[dot+1:]
	base, ok, err := c.baseURL(ctx, tld)
	if err != nil {
		return obs, c.lookupErr(name, true, 0, 0, err)
	}
	if !ok {
		obs.Evidence.Detail = fmt.Sprintf("no RDAP service for .%s", tld)
		return obs, nil
	}
	// Evidence names the server, never the credentials in its base URL
	// (the request below still sends them, as basic auth).
	obs.Evidence.Server = redact.WithoutCredentials(base)

	res, err := c.get(ctx, base, name)
	if err != nil {
		return obs, err
	}
	switch {
	case res.status == http.StatusOK:
		return c.observeAnswer(obs, name, res.body, prev)
	case res.status == http.StatusNotFound:
		return c.observeNotFound(ctx, obs, base, domainname.PublicSuffix(name), prev)
	default:
		obs.Evidence.Detail = fmt.Sprintf("unexpected HTTP %d from %s", res.status, obs.Evidence.Server)
		return obs, nil
	}
}

func (c *Client) observeAnswer(obs lifecycle.Observation, name string, body []byte, prev *lifecycle.Observation) (lifecycle.Observation, error) {
	ev, err := ParseDomain(body)
	if err != nil {
		obs.Evidence.Detail = "unparseable RDAP answer: " + err.Error()
		return obs, nil
	}
	ev.Provider, ev.Server, ev.ObservedAt = ProviderName, obs.Evidence.Server, obs.Evidence.ObservedAt
	if got := answerName(body); got != "" && got != name {
		obs.Evidence.Detail = fmt.Sprintf("RDAP answer is for %q, not %q", got, name)
		return obs, nil
	}
	obs.Evidence = ev
	obs.Phase, obs.Evidence.Detail = classify(name, ev, prev)
	if obs.Phase.Known() {
		// Kept with the evidence so later lookups inside the grace-sale
		// window compare with the same last active observation.
		obs.Evidence.Baseline = lifecycle.GraceBaseline(ev, prev, ev.ObservedAt)
	}
	return obs, nil
}

// classify calls lifecycle.ClassifyRDAPFor. Parse notes in ev.Detail (such
// as an ignored placeholder date) are kept in the result's Detail but not
// shown to the classifier, which reads a Detail as "no decision possible".
// The previous evidence is compared only if it came from RDAP too.
func classify(domain string, ev lifecycle.Evidence, prev *lifecycle.Observation) (lifecycle.Phase, string) {
	notes := ev.Detail
	ev.Detail = ""
	phase, why := lifecycle.ClassifyRDAPAfter(domain, ev, prev, ev.ObservedAt)
	if phase == lifecycle.PhaseUnknown {
		return phase, joinDetail(why, notes)
	}
	return phase, notes
}

func joinDetail(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "; " + b
}

// observeNotFound applies the canary rule: a 404 means released only if a
// known-registered name under the same public suffix (or, where the
// registry's profile says it holds the suffix, under its TLD) answers on
// the same server right now. The canary is asked again after every 404:
// a node answering 404 for everything for a few minutes must not release
// every name it is asked about.
func (c *Client) observeNotFound(ctx context.Context, obs lifecycle.Observation, base, suffix string, prev *lifecycle.Observation) (lifecycle.Observation, error) {
	canary, ok := c.canaryFor(suffix)
	if !ok {
		obs.Evidence.Detail = fmt.Sprintf("404 under .%s, which the %s registry is not known to hold, and no canary under .%s is configured (DOMAINGUARD_RDAP_CANARIES)",
			suffix, lifecycle.ProfileFor(suffix).Registry, suffix)
		return obs, nil
	}
	if canary == obs.Domain {
		obs.Evidence.Detail = fmt.Sprintf("404 for the canary name %s itself: server not trusted", canary)
		return obs, nil
	}
	if err := c.checkCanary(ctx, base, canary); err != nil {
		obs.Evidence.Detail = fmt.Sprintf("404 not confirmed by canary %s: %v", canary, err)
		return obs, nil
	}
	obs.Evidence.NotFound = true
	obs.Phase, obs.Evidence.Detail = classify(obs.Domain, obs.Evidence, prev)
	return obs, nil
}

// checkCanary succeeds when canary answers on base now as a registered
// domain object for itself.
func (c *Client) checkCanary(ctx context.Context, base, canary string) error {
	res, err := c.get(ctx, base, canary)
	if err != nil {
		return err
	}
	if res.status != http.StatusOK {
		return fmt.Errorf("HTTP %d", res.status)
	}
	if _, err := ParseDomain(res.body); err != nil {
		return err
	}
	if got := answerName(res.body); got != "" && got != canary {
		return fmt.Errorf("answer is for %q", got)
	}
	return nil
}

// response is a read HTTP answer that is worth interpreting (200, 404 and
// other non-retryable statuses); retryable failures become errors.
type response struct {
	status int
	body   []byte
}

// get fetches {base}domain/{name}. It returns *checker.LookupError for
// network failures, timeouts, 429, 5xx (temporary) and 400/422 (permanent).
func (c *Client) get(ctx context.Context, base, name string) (response, error) {
	u := base + "domain/" + url.PathEscape(name)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return response{}, c.lookupErr(name, false, 0, 0, err)
	}
	req.Header.Set("Accept", "application/rdap+json, application/json;q=0.9")
	req.Header.Set("User-Agent", c.cfg.UserAgent)
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return response{}, c.lookupErr(name, true, 0, 0, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable:
		wait := checker.ParseRetryAfter(resp.Header.Get("Retry-After"), c.cfg.Clock.Now())
		return response{}, c.lookupErr(name, true, resp.StatusCode, wait, errors.New(http.StatusText(resp.StatusCode)))
	case resp.StatusCode >= 500:
		return response{}, c.lookupErr(name, true, resp.StatusCode, 0, errors.New(http.StatusText(resp.StatusCode)))
	case resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusUnprocessableEntity:
		return response{}, c.lookupErr(name, false, resp.StatusCode, 0, errors.New("server rejected the name as invalid"))
	}
	res := response{status: resp.StatusCode}
	if resp.StatusCode == http.StatusOK {
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes+1))
		if err != nil {
			return response{}, c.lookupErr(name, true, resp.StatusCode, 0, fmt.Errorf("read body: %w", err))
		}
		if len(body) > maxBodyBytes {
			body = body[:maxBodyBytes] // cut: ParseDomain reports it unparseable
		}
		res.body = body
	}
	return res, nil
}

func (c *Client) lookupErr(domain string, temporary bool, status int, wait time.Duration, err error) error {
	return &checker.LookupError{Provider: ProviderName, Domain: domain, Temporary: temporary,
		RetryAfter: wait, StatusCode: status, Err: redact.Error(err)}
}

// answerName returns the lower-case ldhName of an answer, "" if none.
func answerName(body []byte) string {
	var v struct {
		LDHName string `json:"ldhName"`
	}
	if json.Unmarshal(trimBody(body), &v) != nil {
		return ""
	}
	return strings.ToLower(strings.TrimSuffix(strings.TrimSpace(v.LDHName), "."))
}

// RateKey names the RDAP server that answers for domain (its host), so the
// checker rate-limits each registry's server on its own instead of all RDAP
// lookups together. Before the bootstrap is loaded, and for TLDs without a
// service, it is "rdap".
func (c *Client) RateKey(domain string) string {
	tld := normalizeTLD(domainname.TLD(domain))
	base, ok := c.cfg.Overrides[tld]
	if !ok {
		b := c.bootstrap.loaded()
		if b == nil {
			return ProviderName
		}
		if base, ok = serviceFor(b, tld); !ok {
			return ProviderName
		}
	}
	if u, err := url.Parse(base); err == nil && u.Host != "" {
		return u.Host
	}
	return ProviderName
}
