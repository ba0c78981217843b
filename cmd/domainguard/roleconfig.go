package main

import (
	"log/slog"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/domainguard/domainguard/checker"
	"github.com/domainguard/domainguard/checker/dnsevidence"
	"github.com/domainguard/domainguard/checker/rdap"
	"github.com/domainguard/domainguard/enforcer"
	"github.com/domainguard/domainguard/internal/broker"
	"github.com/domainguard/domainguard/internal/config"
	"github.com/domainguard/domainguard/producer"
	"github.com/domainguard/domainguard/schemas"
)

// The one place where each role's configuration is built from the app's
// settings (internal/config) and connections; every command that starts a
// role, or opens its store, takes it from here. Unset settings stay zero
// and the role's WithDefaults fills them.

// topologyConfig is the JetStream topology of the settings, defaults
// applied; log receives dead-letter and topology warnings.
func topologyConfig(cfg config.Config, log *slog.Logger) broker.Topology {
	return broker.Topology{
		Namespace:    schemas.Namespace{Prefix: cfg.SubjectPrefix},
		Replicas:     cfg.StreamReplicas,
		CheckAckWait: cfg.CheckAckWait,
		EventAckWait: cfg.EventAckWait,
		Logger:       log,
	}.WithDefaults()
}

// rdapConfig is the RDAP client's configuration of the settings.
func rdapConfig(cfg config.Config, log *slog.Logger) rdap.Config {
	return rdap.Config{
		BootstrapURL: cfg.RDAPBootstrapURL,
		CacheDir:     filepath.Join(cfg.DataDir, "rdap"),
		Overrides:    cfg.RDAPOverrides,
		Canaries:     cfg.RDAPCanaries,
		Logger:       log,

		AllowPrivateLookups: cfg.AllowPrivateLookups,
	}
}

// dnsEvidenceConfig is the DNS evidence client's configuration of the
// settings (DOMAINGUARD_DNS_*).
func dnsEvidenceConfig(cfg config.Config, log *slog.Logger, reg prometheus.Registerer) dnsevidence.Config {
	return dnsevidence.Config{
		Resolver:           cfg.DNSResolver,
		TLDServers:         cfg.DNSTLDServers,
		QueriesPerSecond:   cfg.DNSQueriesPerSecond,
		UndelegatedConfirm: cfg.UndelegatedConfirm,
		Logger:             log,
		Registerer:         reg,

		AllowPrivateLookups: cfg.AllowPrivateLookups,
	}
}

// producerConfig is the producer configuration of the app.
func (a *app) producerConfig() producer.Config {
	return producer.Config{
		Pool: a.pool, JS: a.js, Topology: a.topo, Logger: a.log, Registerer: a.reg, // producer.New adds role=producer
		DailyBudget: a.cfg.DailyLookupBudget, SweepInterval: a.cfg.SweepInterval,
		WatchPrivateNames: a.cfg.DNSEvidenceInUse(),
	}
}

// checkerConfig is the checker configuration of the app, looking up with
// prov.
func (a *app) checkerConfig(prov checker.Provider) checker.Config {
	return checker.Config{
		JS: a.js, Topology: a.topo, Provider: prov, LookupsPerSecond: a.cfg.LookupsPerSecond,
		Concurrency: a.cfg.CheckConcurrency, Logger: a.log.With("role", "checker"), Registerer: a.reg,
	}
}

// enforcerConfig is the enforcer configuration of the app (JS is nil for a
// store without NATS).
func (a *app) enforcerConfig() enforcer.Config {
	cfg := a.cfg
	return enforcer.Config{
		Pool: a.pool, JS: a.js, Logger: a.log.With("role", "enforcer"), Registerer: a.reg, Topology: a.topo,
		Strict: cfg.Strict, DryRun: cfg.DryRun, MaxUnverifyPerDomain: cfg.MaxUnverifyPerDomain,
		ProtectedDomains: cfg.ProtectedDomains, BreakerPct: cfg.BreakerPct,
		BreakerMinDomains: cfg.BreakerMinDomains, RecheckInterval: cfg.RecheckInterval,
	}
}
