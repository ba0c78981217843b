package main

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/domainguard/domainguard/internal/config"
)

// The README's command and configuration tables are what users read first;
// these tests keep them in step with the code.
func TestREADMEListsEveryCommandAndVariable(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	documented := readmeCommands(readme)
	for name := range commands {
		if !documented[name] {
			t.Errorf("README's command table does not document the %q command", name)
		}
	}
	for _, env := range config.EnvNames() {
		if !strings.Contains(readme, "`"+env+"`") {
			t.Errorf("README configuration table lacks %s", env)
		}
	}
}

// readmeCommands returns the command names of the README's command table:
// the first word of every backquoted span in a row's first cell, such as
// "holds" of "`holds list|approve ID|reject ID`" (the whole word, so that
// "checker" never counts as "check").
func readmeCommands(readme string) map[string]bool {
	names := map[string]bool{}
	row := regexp.MustCompile("(?m)^\\| (`[^|]*(?:\\\\\\|[^|]*)*) \\|")
	span := regexp.MustCompile("`([a-z][a-z-]*)[^`]*`")
	for _, m := range row.FindAllStringSubmatch(readme, -1) {
		for _, s := range span.FindAllStringSubmatch(m[1], -1) {
			names[s[1]] = true
		}
	}
	return names
}

// The parser must tell commands apart by whole names: deleting a row fails.
func TestREADMECommandsAreWholeNames(t *testing.T) {
	table := "| `checker` | x |\n| `status EMAIL\\|DOMAIN [--json]` | y |\n| `DATABASE_URL` | z |\n"
	got := readmeCommands(table)
	if got["check"] || !got["checker"] || !got["status"] || got["DATABASE_URL"] || len(got) != 2 {
		t.Errorf("readmeCommands = %v, want checker and status only", got)
	}
}
