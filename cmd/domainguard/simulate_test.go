package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// `simulate` runs its policies, prints the table and writes JSON and plots.
func TestSimulateCommand(t *testing.T) {
	dir := t.TempDir()
	jsonFile := filepath.Join(dir, "sim.json")
	var out, errOut strings.Builder
	code := runMain(context.Background(), invocation{
		args: []string{"simulate", "--addresses", "5000", "--seed", "7", "--policies", "pypi,domainguard@200,none",
			"--json", jsonFile, "--plot-dir", dir},
		stdout: &out, stderr: &errOut, getenv: func(string) string { return "" },
	})
	if code != 0 {
		t.Fatalf("simulate exited %d: %s", code, errOut.String())
	}
	for _, want := range []string{"pypi@1000", "domainguard@200", "none", "prevented"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	b, err := os.ReadFile(jsonFile)
	if err != nil {
		t.Fatal(err)
	}
	var report map[string]any
	if err := json.Unmarshal(b, &report); err != nil {
		t.Fatalf("json report: %v", err)
	}
	pngs, _ := filepath.Glob(filepath.Join(dir, "*.png"))
	if len(pngs) < 2 {
		t.Errorf("plots written: %v", pngs)
	}
}
