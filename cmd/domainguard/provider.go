package main

import (
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/domainguard/domainguard/checker"
	"github.com/domainguard/domainguard/checker/auto"
	"github.com/domainguard/domainguard/checker/dnsevidence"
	"github.com/domainguard/domainguard/checker/domainr"
	"github.com/domainguard/domainguard/checker/rdap"
	"github.com/domainguard/domainguard/internal/config"
	"github.com/domainguard/domainguard/internal/coverage"
)

// newProvider builds the status provider DOMAINGUARD_PROVIDER names; reg
// receives the DNS evidence metrics (nil: a private registry).
func newProvider(cfg config.Config, log *slog.Logger, reg prometheus.Registerer) (checker.Provider, error) {
	newRDAP := func() (*rdap.Client, error) {
		return rdap.New(rdapConfig(cfg, log))
	}
	newDomainr := func(kind string) (checker.Provider, error) {
		c := domainr.Config{Kind: kind, Logger: log}
		if kind == domainr.KindFastly {
			c.BaseURL, c.FastlyKey = cfg.FastlyAPIURL, cfg.FastlyAPIKey
			return domainr.New(c)
		}
		c.BaseURL, c.ClientID, c.RapidAPIKey = cfg.DomainrAPIURL, cfg.DomainrClientID, cfg.DomainrRapidAPIKey
		if c.ClientID == "" && c.BaseURL == config.DefaultDomainrAPIURL {
			c.BaseURL = "" // RapidAPI key only: the client picks the RapidAPI host
		}
		return domainr.New(c)
	}
	switch cfg.Provider {
	case config.ProviderRDAP:
		return newRDAP()
	case config.ProviderFastly:
		return newDomainr(domainr.KindFastly)
	case config.ProviderDomainr:
		return newDomainr(domainr.KindDomainr)
	case config.ProviderAuto:
		r, err := newRDAP()
		if err != nil {
			return nil, err
		}
		// auto: RDAP where the TLD has a service, else the commercial
		// provider whose credentials are configured, else unknown.
		var fallback checker.Provider
		switch {
		case cfg.FastlyAPIKey != "":
			fallback, err = newDomainr(domainr.KindFastly)
		case cfg.DomainrClientID != "" || cfg.DomainrRapidAPIKey != "":
			fallback, err = newDomainr(domainr.KindDomainr)
		}
		if err != nil {
			return nil, err
		}
		p := auto.New(r, fallback)
		if !cfg.DNSEvidence {
			return p, nil
		}
		d, err := newDNSEvidence(cfg, log, reg)
		if err != nil {
			return nil, err
		}
		return p.WithDNS(d, log, reg)
	}
	return nil, fmt.Errorf("unknown provider %q", cfg.Provider)
}

// newDNSEvidence builds the DNS evidence client (DOMAINGUARD_DNS_*).
func newDNSEvidence(cfg config.Config, log *slog.Logger, reg prometheus.Registerer) (*dnsevidence.Client, error) {
	return dnsevidence.New(dnsEvidenceConfig(cfg, log, reg))
}

// coverageSources describes the configured providers for internal/coverage:
// the routing of checker/auto (or of the one provider configured).
func coverageSources(cfg config.Config, log *slog.Logger) (coverage.Sources, error) {
	commercial := cfg.FastlyAPIKey != "" || cfg.DomainrClientID != "" || cfg.DomainrRapidAPIKey != ""
	switch cfg.Provider {
	case config.ProviderFastly, config.ProviderDomainr:
		return coverage.Sources{Commercial: true}, nil
	case config.ProviderRDAP, config.ProviderAuto:
		r, err := rdap.New(rdapConfig(cfg, log))
		if err != nil {
			return coverage.Sources{}, err
		}
		s := coverage.Sources{RDAP: r.HasService}
		if cfg.Provider == config.ProviderAuto {
			s.Commercial, s.DNS = commercial, cfg.DNSEvidenceInUse()
		}
		return s, nil
	}
	return coverage.Sources{}, fmt.Errorf("unknown provider %q", cfg.Provider)
}
