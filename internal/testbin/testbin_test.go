package testbin

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestRunHelpListsCommands(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := Run(ctx, t, nil, "help")
	if err != nil {
		t.Fatalf("help: %v\n%s", err, out)
	}
	// Each command starts a line of the list: its name, then its arguments
	// (if any) on the same line.
	listed := map[string]bool{}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(line, "  ") {
			listed[f[0]] = true
		}
	}
	for _, c := range []string{"run", "producer", "checker", "enforcer", "migrate"} {
		if !listed[c] {
			t.Errorf("help does not list %q:\n%s", c, out)
		}
	}
}

func TestStopSendsTerm(t *testing.T) {
	// An unknown command exits 2 by itself; Wait reports it.
	p := Start(t, Options{Name: "bogus"}, "no-such-command")
	if err := p.Wait(); err == nil {
		t.Fatal("unknown command exited 0")
	}
	if !strings.Contains(p.Output(), "unknown command") {
		t.Fatalf("output: %s", p.Output())
	}
}
