package main

import (
	"context"
	"encoding/json"
	"flag"
	"io"
	"os/user"

	"github.com/domainguard/domainguard/enforcer"
)

// openStore opens the enforcer's store for the operator commands (status,
// holds, breaker): database only, no NATS. Changes they make reach AUDIT
// through the outbox, which a running enforcer relays. The optional check
// sees the arguments (flags parsed) before anything is opened, so wrong
// arguments are a usage error even when no database answers.
func openStore(ctx context.Context, inv invocation, fs *flag.FlagSet, check ...func(rest []string) error) (*app, *enforcer.Store, []string, error) {
	cfg, rest, log, err := loadConfig(inv, fs)
	if err != nil {
		return nil, nil, nil, err
	}
	for _, c := range check {
		if err := c(rest); err != nil {
			return nil, nil, nil, err
		}
	}
	a, err := openApp(ctx, cfg, log, needs{db: true})
	if err != nil {
		return nil, nil, nil, err
	}
	st, err := enforcer.NewStore(enforcer.Config{
		Pool: a.pool, Logger: log, Registerer: a.reg, Topology: a.topo,
		Strict: cfg.Strict, DryRun: cfg.DryRun, MaxUnverifyPerDomain: cfg.MaxUnverifyPerDomain,
		ProtectedDomains: cfg.ProtectedDomains, BreakerPct: cfg.BreakerPct,
		BreakerMinDomains: cfg.BreakerMinDomains, RecheckInterval: cfg.RecheckInterval,
	})
	if err != nil {
		a.close()
		return nil, nil, nil, err
	}
	return a, st, rest, nil
}

// operatorName is who approves, rejects or resumes: --by, else the OS user.
func operatorName(by string) string {
	if by != "" {
		return by
	}
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return "operator"
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
