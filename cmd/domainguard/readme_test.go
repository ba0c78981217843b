package main

import (
	"os"
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
	for name := range commands {
		if !strings.Contains(readme, "`"+name) {
			t.Errorf("README does not document the %q command", name)
		}
	}
	for _, env := range config.EnvNames() {
		if !strings.Contains(readme, "`"+env+"`") {
			t.Errorf("README configuration table lacks %s", env)
		}
	}
}
