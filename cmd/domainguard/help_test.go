package main

import (
	"context"
	"strings"
	"testing"
)

func runIn(args ...string) (code int, stdout, stderr string) {
	var out, errOut strings.Builder
	code = runMain(context.Background(), invocation{args: args, stdout: &out, stderr: &errOut, getenv: func(string) string { return "" }})
	return code, out.String(), errOut.String()
}

// `domainguard help CMD` and `CMD -h`: synopsis, one-line summary, the
// command's own flags first, then the shared settings under a heading.
func TestCommandHelp(t *testing.T) {
	code, out, _ := runIn("help", "holds")
	if code != 0 {
		t.Fatalf("help holds exited %d", code)
	}
	own, settings := strings.Index(out, "flags of holds:"), strings.Index(out, "settings (every command")
	switch {
	case !strings.HasPrefix(out, "usage: domainguard holds list"):
		t.Errorf("no synopsis first:\n%s", out)
	case !strings.Contains(out, "changes held by the per-domain cap"):
		t.Errorf("no summary:\n%s", out)
	case own < 0 || settings < own:
		t.Errorf("own flags not before the settings heading:\n%s", out)
	case !strings.Contains(out[own:settings], "-status"), strings.Contains(out[own:settings], "-database-url"):
		t.Errorf("-status is not among holds' own flags, or a setting is:\n%s", out[own:settings])
	case !strings.Contains(out[settings:], "-database-url") || !strings.Contains(out[settings:], "DATABASE_URL"):
		t.Errorf("settings do not list -database-url with its variable:\n%s", out[settings:])
	}
	code, _, errOut := runIn("holds", "-h")
	if code != 0 || !strings.Contains(errOut, "flags of holds:") {
		t.Errorf("holds -h: exit %d\n%s", code, errOut)
	}
	if code, _, errOut := runIn("help", "no-such-command"); code != 2 || !strings.Contains(errOut, "unknown command") {
		t.Errorf("help no-such-command: exit %d\n%s", code, errOut)
	}
}

// Every command has a one-line summary and appears in `domainguard help`
// with its synopsis.
func TestCommandList(t *testing.T) {
	code, out, _ := runIn("help")
	if code != 0 {
		t.Fatalf("help exited %d", code)
	}
	for name, c := range commands {
		synopsis, summary := c.parts()
		if summary == "" || strings.Contains(summary, "\n") {
			t.Errorf("%s: summary %q, want one line", name, summary)
		}
		if !strings.Contains(out, "  "+strings.TrimSpace(name+" "+synopsis)+"\n      "+summary+"\n") {
			t.Errorf("help does not list %s as %q / %q", name, synopsis, summary)
		}
	}
}

// `domainguard version` and `--version` print the build.
func TestVersion(t *testing.T) {
	for _, arg := range []string{"version", "--version"} {
		code, out, _ := runIn(arg)
		if code != 0 || !strings.HasPrefix(out, "domainguard ") || !strings.Contains(out, "go1.") {
			t.Errorf("%s: exit %d, %q", arg, code, out)
		}
	}
}
