package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/domainguard/domainguard/internal/testdb"
	"github.com/domainguard/domainguard/internal/testnats"
)

func natsURL() string {
	if u := os.Getenv(testnats.EnvURL); u != "" {
		return u
	}
	return testnats.DefaultURL
}

// smallOptions keeps a run of every phase to a few seconds.
func smallOptions(t testing.TB) Options {
	return Options{
		NATSURL:       natsURL(),
		DatabaseURL:   testdb.ServerURL(),
		Domains:       2000,
		Emails:        2000,
		CheckRate:     100,
		CheckDuration: 2 * time.Second,
		E2ERate:       200,
		E2EDuration:   3 * time.Second,
		Logger:        testnats.Logger(t),
	}
}

func TestRunReportsEveryPhase(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := Run(ctx, smallOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{PhaseSweep: 2000, PhaseEnforcer: 2000, RowEnforcerFloor: 2000, PhaseChecker: 200, "e2e-p50": 1200, "e2e-p99": 1200}
	if len(rep.Rows) != len(want) {
		t.Errorf("got %d rows, want %d: %+v", len(rep.Rows), len(want), rep.Rows)
	}
	for name, count := range want {
		row, ok := rep.Row(name)
		if !ok {
			t.Errorf("row %s missing", name)
			continue
		}
		if row.Figure <= 0 || row.Baseline <= 0 || row.Ratio <= 0 || row.PeakHeapMB <= 0 || row.Seconds <= 0 {
			t.Errorf("row %s has a non-positive figure: %+v", name, row)
		}
		if row.Count != count {
			t.Errorf("row %s covers %d items, want %d", name, row.Count, count)
		}
		if row.Target == "" || row.Unit == "" || row.BaselineWhat == "" {
			t.Errorf("row %s lacks a target, unit or baseline description: %+v", name, row)
		}
	}
	// The checker cannot beat its own rate limit by more than the one
	// token of burst it starts with.
	if row, _ := rep.Row(PhaseChecker); row.Ratio > 1.05 {
		t.Errorf("checker ran at %.2f of its rate limit", row.Ratio)
	}
	if p50, _ := rep.Row("e2e-p50"); true {
		if p99, _ := rep.Row("e2e-p99"); p99.Figure < p50.Figure {
			t.Errorf("p99 %.1f ms below p50 %.1f ms", p99.Figure, p50.Figure)
		}
	}
	e := rep.Env
	if e.NATSServer == "" || e.PostgresVersion == "" || e.NumCPU < 1 || e.GoVersion == "" || e.Seconds <= 0 {
		t.Errorf("environment incomplete: %+v", e)
	}

	var table bytes.Buffer
	if err := rep.Table(&table); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"sweep", "enforcer", "checker", "e2e-p99", "machine:"} {
		if !strings.Contains(table.String(), s) {
			t.Errorf("table lacks %q:\n%s", s, table.String())
		}
	}
	t.Log("\n" + table.String())
	body, err := rep.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(body, &back); err != nil || len(back.Rows) != len(rep.Rows) {
		t.Errorf("JSON does not round-trip: %v", err)
	}
}

func TestOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		adjust func(*Options)
		ok     bool
	}{
		{"defaults", func(*Options) {}, true},
		{"unknown phase", func(o *Options) { o.Only = []string{"sweep", "nope"} }, false},
		{"negative domains", func(o *Options) { o.Domains = -1 }, false},
		{"too many emails per domain", func(o *Options) { o.EmailsPerDomain = 51 }, false},
		{"fewer emails than one domain", func(o *Options) { o.Emails = 3; o.EmailsPerDomain = 10 }, false},
		{"negative rate", func(o *Options) { o.CheckRate = -5 }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var o Options
			tc.adjust(&o)
			err := o.WithDefaults().Validate()
			if (err == nil) != tc.ok {
				t.Errorf("Validate() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
	if o := (Options{Domains: 1000000}).WithDefaults(); o.Emails != 200000 {
		t.Errorf("default emails for 1M domains = %d, want the 200000 cap", o.Emails)
	}
}

func TestRunOnlySelectedPhase(t *testing.T) {
	o := smallOptions(t)
	o.Only = []string{PhaseChecker}
	o.CheckRate = 50
	o.CheckDuration = time.Second
	rep, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Rows) != 1 || rep.Rows[0].Name != PhaseChecker {
		t.Fatalf("rows %+v, want the checker's only", rep.Rows)
	}
}
