package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/domainguard/domainguard/simulate"
)

// `simulate` runs its policies, prints the table and writes JSON and plots
// (plots in a build with -tags plot; without it --plot-dir is refused
// before the run).
func TestSimulateCommand(t *testing.T) {
	dir := t.TempDir()
	jsonFile := filepath.Join(dir, "sim.json")
	args := []string{"simulate", "--addresses", "5000", "--seed", "7", "--policies", "pypi,domainguard@200,none", "--json", jsonFile}
	if !simulate.PlotsBuiltIn {
		var errOut strings.Builder
		code := runMain(context.Background(), invocation{args: append(args, "--plot-dir", dir), stdout: io.Discard, stderr: &errOut,
			getenv: func(string) string { return "" }})
		if code != 2 || !strings.Contains(errOut.String(), "-tags plot") {
			t.Errorf("--plot-dir without the plot tag: exit %d, %s; want 2 saying how to build with plots", code, errOut.String())
		}
	} else {
		args = append(args, "--plot-dir", dir)
	}
	var out, errOut strings.Builder
	code := runMain(context.Background(), invocation{
		args:   args,
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
	if !simulate.PlotsBuiltIn {
		return
	}
	pngs, _ := filepath.Glob(filepath.Join(dir, "*.png"))
	if len(pngs) < 2 {
		t.Errorf("plots written: %v", pngs)
	}
}
