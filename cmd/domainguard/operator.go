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

// decisionFlags adds --by and --note to an operator command: who took the
// decision (what names it in the help: "resume", "decision") and why. The
// function returned reads them once the flags are parsed.
func decisionFlags(fs *flag.FlagSet, what string) func() enforcer.Decision {
	by := fs.String("by", "", "operator name recorded with the "+what+" (default: the OS user)")
	note := fs.String("note", "", "why: stored with the "+what+" and published in audit.operator.action")
	return func() enforcer.Decision { return enforcer.Decision{By: operatorName(*by), Note: *note} }
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
