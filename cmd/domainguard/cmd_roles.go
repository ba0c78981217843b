package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/domainguard/domainguard/checker"
	"github.com/domainguard/domainguard/enforcer"
	"github.com/domainguard/domainguard/internal/coverage"
	"github.com/domainguard/domainguard/producer"
)

func init() {
	register("run", command{
		usage: "producer, checker, enforcer and outbox relay in one process; embedded NATS and private PostgreSQL when none is configured",
		run:   func(ctx context.Context, inv invocation) error { return runRoles(ctx, inv, "run", roleAll) },
	})
	register("producer", command{
		usage: "the producer role alone (intake of account events and the budgeted check sweep)",
		run:   func(ctx context.Context, inv invocation) error { return runRoles(ctx, inv, "producer", roleProducer) },
	})
	register("checker", command{
		usage: "the checker role alone (provider lookups for queued checks)",
		run:   func(ctx context.Context, inv invocation) error { return runRoles(ctx, inv, "checker", roleChecker) },
	})
	register("enforcer", command{
		usage: "the enforcer role alone (decisions, unverifications, holds, breaker and the outbox relay)",
		run:   func(ctx context.Context, inv invocation) error { return runRoles(ctx, inv, "enforcer", roleEnforcer) },
	})
}

type roleSet uint8

const (
	roleProducer roleSet = 1 << iota
	roleChecker
	roleEnforcer
	roleAll = roleProducer | roleChecker | roleEnforcer
)

// runRoles wires the requested roles and runs them until ctx ends (SIGINT or
// SIGTERM), then lets each drain its in-flight work and returns nil. The
// first role to fail stops the others.
func runRoles(ctx context.Context, inv invocation, name string, roles roleSet) error {
	cfg, rest, log, err := loadConfig(inv, flag.NewFlagSet(name, flag.ContinueOnError))
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageErr("%s takes no arguments, got %q", name, rest)
	}
	n := needs{nats: true, metrics: true, serve: true, db: roles&(roleProducer|roleEnforcer) != 0}
	if roles == roleAll {
		// `run` is the one-command start: it may start the embedded broker
		// and a private database, and it migrates.
		n.embedded, n.migrate = true, true
	}
	a, err := openApp(ctx, cfg, log, n)
	if err != nil {
		return err
	}
	defer a.close()
	log.Info("starting", "command", name, "config", cfg.Redacted())

	var (
		runs []func(context.Context) error
		prod *producer.Producer
		enf  *enforcer.Enforcer
	)
	if roles&roleProducer != 0 {
		if prod, err = newProducer(a); err != nil {
			return err
		}
		runs = append(runs, prod.Run)
	}
	if roles&roleChecker != 0 {
		prov, err := newProvider(cfg, log.With("role", "checker"), a.reg)
		if err != nil {
			return err
		}
		w, err := checker.NewWorker(a.checkerConfig(prov))
		if err != nil {
			return err
		}
		runs = append(runs, w.Run)
	}
	if roles&roleEnforcer != 0 {
		if enf, err = enforcer.New(a.enforcerConfig()); err != nil {
			return err
		}
		runs = append(runs, enf.Run)
	}

	if a.pool != nil && roles&(roleChecker|roleProducer) != 0 {
		// Coverage: one log line at start and the gauge, refreshed hourly.
		sources, err := coverageSources(cfg, log)
		if err != nil {
			return err
		}
		g, err := coverage.NewGauge(a.reg)
		if err != nil {
			return err
		}
		runs = append(runs, func(ctx context.Context) error {
			reportCoverage(ctx, a.pool, sources, g, log)
			return nil
		})
	}

	// a.ctx ends at once when NATS denies this user something: a role
	// with a wrong permission stops with the subject in the error instead
	// of retrying a timeout forever.
	runCtx, cancel := context.WithCancel(a.ctx)
	defer cancel()
	if roles == roleAll {
		// The console and the host API, when their addresses are set,
		// share run's connections, store and producer.
		if cfg.ConsoleAddr != "" {
			if err := startConsole(runCtx, a, enf.Store, prod, false); err != nil {
				return err
			}
		}
		if cfg.APIAddr != "" {
			if err := startAPI(runCtx, a); err != nil {
				return err
			}
		}
	}

	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, run := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(runCtx); err != nil && !errors.Is(err, context.Canceled) {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				cancel() // one role failing stops the process: let the supervisor restart it
			}
		}()
	}
	<-runCtx.Done()
	log.Info("shutting down: draining in-flight work", "command", name)
	wg.Wait()
	if denied := a.denied(); denied != nil {
		errs = append(errs, denied)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	log.Info("stopped cleanly", "command", name)
	return nil
}

// coverageRefresh is how often the coverage gauge is recomputed.
const coverageRefresh = time.Hour

// reportCoverage logs the coverage once at start ("12,031 addresses on 41
// TLDs: 88 % rdap, …") and keeps domainguard_coverage_addresses current
// until ctx ends. Failures are logged, never fatal: coverage is a report.
func reportCoverage(ctx context.Context, pool *pgxpool.Pool, sources coverage.Sources, g *coverage.Gauge, log *slog.Logger) {
	first := true
	for {
		qctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		rep, err := coverage.Query(qctx, pool, sources)
		cancel()
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn("coverage not computed", "error", err)
		case err == nil:
			g.Set(rep)
			if first {
				log.Info("coverage: "+rep.Summary(), "addresses", rep.Addresses, "tlds", len(rep.TLDs),
					"rdap", rep.BySource[coverage.SourceRDAP], "commercial", rep.BySource[coverage.SourceCommercial],
					"dns", rep.BySource[coverage.SourceDNS], "none", rep.BySource[coverage.SourceNone])
				first = false
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(coverageRefresh):
		}
	}
}
