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
// through the outbox, which a running enforcer relays. checkArgs sees the
// arguments left after the flags and reports usage errors before any
// connection is made, so a mistyped command fails the same on every machine.
func openStore(ctx context.Context, inv invocation, fs *flag.FlagSet, checkArgs func(rest []string) error) (*app, *enforcer.Store, []string, error) {
	cfg, rest, log, err := loadConfig(inv, fs)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := checkArgs(rest); err != nil {
		return nil, nil, nil, err
	}
	a, err := openApp(ctx, cfg, log, needs{db: true})
	if err != nil {
		return nil, nil, nil, err
	}
	st, err := enforcer.NewStore(a.enforcerConfig())
	if err != nil {
		a.close()
		return nil, nil, nil, err
	}
	return a, st, rest, nil
}

// enforcerConfig is the enforcer configuration of the app's settings and
// connections (JS is nil for a store without NATS).
func (a *app) enforcerConfig() enforcer.Config {
	cfg := a.cfg
	return enforcer.Config{
		Pool: a.pool, JS: a.js, Logger: a.log, Registerer: a.reg, Topology: a.topo,
		Strict: cfg.Strict, DryRun: cfg.DryRun, MaxUnverifyPerDomain: cfg.MaxUnverifyPerDomain,
		ProtectedDomains: cfg.ProtectedDomains, BreakerPct: cfg.BreakerPct,
		BreakerMinDomains: cfg.BreakerMinDomains, RecheckInterval: cfg.RecheckInterval,
	}
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
