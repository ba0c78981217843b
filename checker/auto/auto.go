// Package auto is the default provider: RDAP where the IANA bootstrap (or
// a configured override) has a service for the domain's TLD, else the
// configured commercial provider (Domainr or Fastly), else the DNS alone
// (when DNS evidence is on), else checker.ErrNoSource: the domain is
// unmonitored.
//
// With DNS evidence on, every RDAP answer is combined with the DNS
// evidence of the same moment (lifecycle.CombineRDAPAndDNS): a 404 is
// released only when the parent zone does not delegate the name, and NS/MX
// moves around the expiration date are lapse signs. DNS failures never
// change the RDAP result except that a 404 then stays unknown.
//
// A name held under a private PSL suffix (acme.us.com, foo.github.io:
// domainname.IsWatchName) is in no registry: it goes to the DNS alone,
// never to RDAP or the commercial provider, and without DNS evidence it is
// unmonitored.
package auto

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/domainguard/domainguard/checker"
	"github.com/domainguard/domainguard/checker/rdap"
	"github.com/domainguard/domainguard/internal/clock"
	"github.com/domainguard/domainguard/internal/domainname"
	"github.com/domainguard/domainguard/lifecycle"
)

// ProviderName is the name of this provider. Observations keep the name
// of the provider that actually answered in Evidence.Provider.
const ProviderName = "auto"

// DNSSource is the DNS evidence the provider uses (dnsevidence.Client).
type DNSSource interface {
	checker.Provider
	// Evidence asks the DNS about domain, without classifying.
	Evidence(ctx context.Context, domain string) (*lifecycle.DNSEvidence, error)
	// HasServers reports whether delegations under tld can be asked.
	HasServers(tld string) bool
}

// Provider routes each lookup to RDAP, the fallback or the DNS.
type Provider struct {
	rdap     *rdap.Client
	fallback checker.Provider
	dns      DNSSource
	clock    clock.Clock
	log      *slog.Logger
	// contradicted counts RDAP 404s the parent zone contradicted.
	contradicted prometheus.Counter
}

var _ checker.Provider = (*Provider)(nil)

// New returns a Provider. rdap may be nil (fallback only); fallback may be
// nil (RDAP only).
func New(rdap *rdap.Client, fallback checker.Provider) *Provider {
	return &Provider{rdap: rdap, fallback: fallback, clock: clock.System{}, log: slog.Default(),
		contradicted: newContradicted()}
}

func newContradicted() prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{
		Name: "domainguard_checker_rdap_404_contradicted_total",
		Help: "RDAP 404s for names the parent zone still delegates (kept unknown, never released).",
	})
}

// WithClock sets the clock that stamps the provider's own (unknown)
// observations and returns p.
func (p *Provider) WithClock(c clock.Clock) *Provider {
	p.clock = c
	return p
}

// WithDNS turns DNS evidence on: d corroborates RDAP and is the evidence
// for TLDs that neither RDAP nor the fallback covers. The contradicted-404
// counter is registered on reg (nil: not exported) and log receives the
// contradictions. It returns p.
func (p *Provider) WithDNS(d DNSSource, log *slog.Logger, reg prometheus.Registerer) (*Provider, error) {
	p.dns = d
	if log != nil {
		p.log = log
	}
	if reg != nil {
		if err := reg.Register(p.contradicted); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, fmt.Errorf("auto provider metrics: %w", err)
			}
			if c, ok := are.ExistingCollector.(prometheus.Counter); ok {
				p.contradicted = c
			}
		}
	}
	return p, nil
}

// Name returns "auto".
func (p *Provider) Name() string { return ProviderName }

// Lookup asks RDAP when it serves the TLD (with DNS evidence alongside),
// else the fallback, else the DNS. When the bootstrap cannot be loaded at
// all it returns a temporary error rather than switching providers:
// evidence from different providers is not comparable, and the check is
// retried later. Without any source it returns checker.ErrNoSource.
func (p *Provider) Lookup(ctx context.Context, domain string, prev *lifecycle.Observation) (lifecycle.Observation, error) {
	name := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(domain), "."))
	tld := domainname.TLD(name)
	if domainname.IsWatchName(name) {
		return p.lookupPrivate(ctx, name, tld, prev)
	}
	if p.rdap != nil {
		ok, err := p.rdap.HasService(ctx, tld)
		if err != nil {
			return lifecycle.Observation{Domain: name, Phase: lifecycle.PhaseUnknown},
				&checker.LookupError{Provider: ProviderName, Domain: name, Temporary: true,
					Err: fmt.Errorf("rdap bootstrap unavailable: %w", err)}
		}
		if ok {
			return p.lookupRDAP(ctx, name, prev)
		}
	}
	if p.fallback != nil {
		return p.lookupFallback(ctx, name, prev)
	}
	if p.dns != nil && p.dns.HasServers(tld) {
		return p.dns.Lookup(ctx, name, prev)
	}
	reason := fmt.Sprintf("no RDAP service for .%s, no commercial provider configured", tld)
	if p.rdap == nil {
		reason = "no RDAP client and no commercial provider configured"
	}
	if p.dns == nil {
		reason += ", DNS evidence off"
	} else {
		reason += ", no DNS servers known for it"
	}
	return lifecycle.Observation{Domain: name, Phase: lifecycle.PhaseUnknown,
			Evidence: lifecycle.Evidence{Provider: ProviderName, Detail: reason, ObservedAt: p.clock.Now()}},
		fmt.Errorf("%w: %s", checker.ErrNoSource, reason)
}

// ChecksPrivateNames reports true: Lookup sends names under private
// suffixes to the DNS alone (or reports them unmonitored without it).
func (p *Provider) ChecksPrivateNames() bool { return true }

// lookupPrivate checks a name under a private suffix through the DNS alone:
// no registry holds it (an RDAP 404 for it would say nothing).
func (p *Provider) lookupPrivate(ctx context.Context, name, tld string, prev *lifecycle.Observation) (lifecycle.Observation, error) {
	if p.dns != nil && p.dns.HasServers(tld) {
		return p.dns.Lookup(ctx, name, prev)
	}
	reason := name + " lies under the private suffix " + domainname.PrivateSuffix(name) +
		": no registry holds it and only DNS evidence can watch it"
	if p.dns == nil {
		reason += ", DNS evidence off"
	} else {
		reason += ", no DNS servers known for ." + tld
	}
	return lifecycle.Observation{Domain: name, Phase: lifecycle.PhaseUnknown,
			Evidence: lifecycle.Evidence{Provider: ProviderName, Detail: reason, ObservedAt: p.clock.Now()}},
		fmt.Errorf("%w: %s", checker.ErrNoSource, reason)
}

// lookupRDAP asks RDAP and, with DNS evidence on, the DNS, and combines
// them. An RDAP error is returned as it is (the DNS is not asked).
func (p *Provider) lookupRDAP(ctx context.Context, name string, prev *lifecycle.Observation) (lifecycle.Observation, error) {
	obs, err := p.rdap.Lookup(ctx, name, prev)
	if err != nil || p.dns == nil {
		return obs, err
	}
	d, derr := p.dns.Evidence(ctx, name)
	if derr != nil {
		if ctx.Err() != nil {
			return obs, &checker.LookupError{Provider: ProviderName, Domain: name, Temporary: true, Err: derr}
		}
		p.log.Debug("dns evidence unavailable; RDAP alone decides", "domain", name, "error", derr)
		d = nil
	}
	combined, contradicted := lifecycle.CombineRDAPAndDNS(obs, d, prev, obs.Evidence.ObservedAt)
	if contradicted {
		p.contradicted.Inc()
		p.log.Warn("RDAP 404 while the parent zone still delegates the name; not released",
			"domain", name, "rdap_server", obs.Evidence.Server, "nameservers", d.Nameservers)
	}
	return combined, nil
}

// lookupFallback asks the commercial provider; with DNS evidence on, an
// "inactive" it could not decide on its own is released when the parent
// zone agrees the name is not delegated (lifecycle.ClassifyTokensWithParent).
func (p *Provider) lookupFallback(ctx context.Context, name string, prev *lifecycle.Observation) (lifecycle.Observation, error) {
	obs, err := p.fallback.Lookup(ctx, name, prev)
	if err != nil || p.dns == nil || obs.Phase.Known() || !hasToken(obs.Evidence.Statuses, "inactive") {
		return obs, err
	}
	d, derr := p.dns.Evidence(ctx, name)
	if derr != nil {
		p.log.Debug("dns evidence unavailable; inactive stays undecided", "domain", name, "error", derr)
		return obs, nil
	}
	obs.Evidence.DNS = lifecycle.WithDNSBaseline(d, lifecycle.PhaseUnknown, prev)
	if phase, why := lifecycle.ClassifyTokensWithParent(obs.Evidence.Statuses, !d.Delegated); phase.Known() {
		obs.Phase, obs.Evidence.Detail = phase, why
	}
	return obs, nil
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

// RateExempt reports whether a lookup of domain goes to the DNS alone: it
// then neither waits on the checker's per-provider rate limit nor counts
// as a registry lookup (the DNS client limits each server itself).
func (p *Provider) RateExempt(domain string) bool {
	if p.dns != nil && domainname.IsWatchName(domain) {
		return true // lookupPrivate: the DNS alone
	}
	if p.dns == nil || p.fallback != nil {
		return false
	}
	if p.rdap != nil && p.rdap.RateKey(domain) != rdap.ProviderName {
		return false // RDAP serves it
	}
	return p.rdap == nil || p.rdap.BootstrapLoaded()
}

// hasToken reports whether tok is one of the (possibly space-separated)
// status tokens.
func hasToken(statuses []string, tok string) bool {
	return slices.ContainsFunc(statuses, func(s string) bool {
		return slices.Contains(strings.Fields(strings.ToLower(s)), tok)
	})
}
