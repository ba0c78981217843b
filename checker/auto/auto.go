// Package auto is the default provider: RDAP where the IANA bootstrap (or
// a configured override) has a service for the domain's TLD, else the
// configured commercial provider (Domainr or Fastly), else an unknown
// observation that says why.
package auto

import (
	"context"
	"fmt"
	"strings"

	"github.com/domainguard/domainguard/checker"
	"github.com/domainguard/domainguard/checker/rdap"
	"github.com/domainguard/domainguard/internal/clock"
	"github.com/domainguard/domainguard/lifecycle"
)

// ProviderName is the name of this provider. Observations keep the name
// of the provider that actually answered in Evidence.Provider.
const ProviderName = "auto"

// Provider routes each lookup to RDAP or the fallback.
type Provider struct {
	rdap     *rdap.Client
	fallback checker.Provider
	clock    clock.Clock
}

var _ checker.Provider = (*Provider)(nil)

// New returns a Provider. rdap may be nil (fallback only); fallback may be
// nil (RDAP only).
func New(rdap *rdap.Client, fallback checker.Provider) *Provider {
	return &Provider{rdap: rdap, fallback: fallback, clock: clock.System{}}
}

// WithClock sets the clock that stamps the provider's own (unknown)
// observations and returns p.
func (p *Provider) WithClock(c clock.Clock) *Provider {
	p.clock = c
	return p
}

// Name returns "auto".
func (p *Provider) Name() string { return ProviderName }

// Lookup asks RDAP when it serves the TLD, else the fallback. When the
// bootstrap cannot be loaded at all it returns a temporary error rather
// than switching providers: evidence from different providers is not
// comparable, and the check is retried later.
func (p *Provider) Lookup(ctx context.Context, domain string, prev *lifecycle.Observation) (lifecycle.Observation, error) {
	name := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(domain), "."))
	tld := name
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		tld = name[i+1:]
	}
	if p.rdap != nil {
		ok, err := p.rdap.HasService(ctx, tld)
		if err != nil {
			return lifecycle.Observation{Domain: name, Phase: lifecycle.PhaseUnknown},
				&checker.LookupError{Provider: ProviderName, Domain: name, Temporary: true,
					Err: fmt.Errorf("rdap bootstrap unavailable: %w", err)}
		}
		if ok {
			return p.rdap.Lookup(ctx, name, prev)
		}
	}
	if p.fallback != nil {
		return p.fallback.Lookup(ctx, name, prev)
	}
	reason := fmt.Sprintf("no RDAP service for .%s and no commercial provider configured", tld)
	if p.rdap == nil {
		reason = "no RDAP client and no commercial provider configured"
	}
	return lifecycle.Observation{Domain: name, Phase: lifecycle.PhaseUnknown,
		Evidence: lifecycle.Evidence{Provider: ProviderName, Detail: reason, ObservedAt: p.clock.Now()}}, nil
}

// RateKey passes the RDAP server's rate key through (see rdap.Client.RateKey),
// so the checker limits each registry's server separately.
func (p *Provider) RateKey(domain string) string {
	if p.rdap != nil {
		if k := p.rdap.RateKey(domain); k != rdap.ProviderName {
			return k
		}
	}
	if p.fallback != nil {
		if rk, ok := p.fallback.(checker.RateKeyer); ok {
			return rk.RateKey(domain)
		}
		return p.fallback.Name()
	}
	return ProviderName
}
