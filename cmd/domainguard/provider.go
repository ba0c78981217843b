package main

import (
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/domainguard/domainguard/checker"
	"github.com/domainguard/domainguard/checker/auto"
	"github.com/domainguard/domainguard/checker/domainr"
	"github.com/domainguard/domainguard/checker/rdap"
	"github.com/domainguard/domainguard/internal/config"
)

// newProvider builds the status provider DOMAINGUARD_PROVIDER names.
func newProvider(cfg config.Config, log *slog.Logger) (checker.Provider, error) {
	newRDAP := func() (*rdap.Client, error) {
		return rdap.New(rdap.Config{
			BootstrapURL: cfg.RDAPBootstrapURL,
			CacheDir:     filepath.Join(cfg.DataDir, "rdap"),
			Overrides:    cfg.RDAPOverrides,
			Canaries:     cfg.RDAPCanaries,
			Logger:       log,
		})
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
		return auto.New(r, fallback), nil
	}
	return nil, fmt.Errorf("unknown provider %q", cfg.Provider)
}
