package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the outcome of a run: one Row per figure and the environment
// it was measured in.
type Report struct {
	Env  Env   `json:"env"`
	Rows []Row `json:"rows"`
}

// Row is one measured figure and its baseline from the same run.
type Row struct {
	// Name is the phase, or phase-qualifier ("e2e-p99").
	Name string `json:"name"`
	// Figure is what domainguard achieved, in Unit.
	Figure float64 `json:"figure"`
	Unit   string  `json:"unit"`
	// Baseline is what the figure is compared with, in BaselineUnit: a
	// bare broker or database loop, the configured rate, or a latency
	// budget.
	Baseline     float64 `json:"baseline"`
	BaselineUnit string  `json:"baseline_unit"`
	BaselineWhat string  `json:"baseline_what"`
	// Ratio is Figure / Baseline.
	Ratio float64 `json:"ratio"`
	// Target states the goal ("ratio >= 0.50", "< 1000 ms"); Met says
	// whether it was reached. Rows without a goal have Target "-" and Met
	// true.
	Target string `json:"target"`
	Met    bool   `json:"met"`
	// PeakHeapMB is the highest Go heap seen during the phase (see the
	// package doc for what it includes).
	PeakHeapMB float64 `json:"peak_heap_mb"`
	// Count is how many items (domains, emails, checks) the figure covers;
	// Seconds how long the measured part took.
	Count   int     `json:"count"`
	Seconds float64 `json:"seconds"`
	// Detail says anything else worth knowing about the figure.
	Detail string `json:"detail,omitempty"`
}

// Env describes where and when the figures were measured.
type Env struct {
	StartedAt       time.Time   `json:"started_at"`
	Seconds         float64     `json:"seconds"`
	GoVersion       string      `json:"go_version"`
	GOOS            string      `json:"goos"`
	GOARCH          string      `json:"goarch"`
	NumCPU          int         `json:"num_cpu"`
	GOMAXPROCS      int         `json:"gomaxprocs"`
	CPUModel        string      `json:"cpu_model"`
	MemTotalMB      int         `json:"mem_total_mb"`
	LoadAvgStart    string      `json:"load_avg_start"`
	LoadAvgEnd      string      `json:"load_avg_end"`
	NATSServer      string      `json:"nats_server"`
	NATSEmbedded    bool        `json:"nats_embedded"`
	PostgresVersion string      `json:"postgres_version"`
	Options         OptionsJSON `json:"options"`
}

// OptionsJSON is the part of Options a report records.
type OptionsJSON struct {
	Domains         int      `json:"domains"`
	Emails          int      `json:"emails"`
	EmailsPerDomain int      `json:"emails_per_domain"`
	EnforcerRounds  int      `json:"enforcer_rounds"`
	CheckRate       float64  `json:"check_rate"`
	CheckDuration   string   `json:"check_duration"`
	ProviderLatency string   `json:"provider_latency"`
	E2ERate         float64  `json:"e2e_rate"`
	E2EDuration     string   `json:"e2e_duration"`
	E2EChangeEvery  int      `json:"e2e_change_every"`
	Only            []string `json:"only"`
}

func optionsJSON(o Options) OptionsJSON {
	return OptionsJSON{Domains: o.Domains, Emails: o.Emails, EmailsPerDomain: o.EmailsPerDomain, EnforcerRounds: o.EnforcerRounds,
		CheckRate: o.CheckRate, CheckDuration: o.CheckDuration.String(), ProviderLatency: o.ProviderLatency.String(),
		E2ERate: o.E2ERate, E2EDuration: o.E2EDuration.String(), E2EChangeEvery: o.E2EChangeEvery, Only: o.Only}
}

// Row returns the row called name, if present.
func (r Report) Row(name string) (Row, bool) {
	for _, row := range r.Rows {
		if row.Name == name {
			return row, true
		}
	}
	return Row{}, false
}

// AllMet reports whether every row reached its target.
func (r Report) AllMet() bool {
	for _, row := range r.Rows {
		if !row.Met {
			return false
		}
	}
	return true
}

// Table writes the rows as an aligned text table, then the environment.
func (r Report) Table(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "phase\tfigure\tbaseline\tratio\ttarget\tmet\tpeak heap\tcount\tseconds")
	for _, row := range r.Rows {
		met := "yes"
		if !row.Met {
			met = "NO"
		}
		fmt.Fprintf(tw, "%s\t%s %s\t%s %s (%s)\t%.2f\t%s\t%s\t%.0f MB\t%d\t%.1f\n",
			row.Name, num(row.Figure), row.Unit, num(row.Baseline), row.BaselineUnit, row.BaselineWhat,
			row.Ratio, row.Target, met, row.PeakHeapMB, row.Count, row.Seconds)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, row := range r.Rows {
		if row.Detail != "" {
			fmt.Fprintf(w, "  %s: %s\n", row.Name, row.Detail)
		}
	}
	e := r.Env
	nats := e.NATSServer
	if e.NATSEmbedded {
		nats += " (embedded, in process)"
	}
	_, err := fmt.Fprintf(w, "machine: %d CPUs (%s), %d MB RAM, %s %s/%s, GOMAXPROCS %d; NATS %s; PostgreSQL %s; load average %s at start, %s at end; run took %.0f s\n",
		e.NumCPU, e.CPUModel, e.MemTotalMB, e.GoVersion, e.GOOS, e.GOARCH, e.GOMAXPROCS, nats, e.PostgresVersion,
		e.LoadAvgStart, e.LoadAvgEnd, e.Seconds)
	return err
}

// JSON returns the report as indented JSON.
func (r Report) JSON() ([]byte, error) {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("bench: encode report: %w", err)
	}
	return append(b, '\n'), nil
}

func num(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// machineEnv fills what the machine says about itself.
func machineEnv() Env {
	e := Env{GoVersion: runtime.Version(), GOOS: runtime.GOOS, GOARCH: runtime.GOARCH,
		NumCPU: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), LoadAvgStart: LoadAvg()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				e.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			var kb int
			if _, err := fmt.Sscanf(line, "MemTotal: %d kB", &kb); err == nil {
				e.MemTotalMB = kb / 1024
				break
			}
		}
	}
	return e
}

// LoadAvg returns the 1, 5 and 15 minute load averages, or "n/a": the
// machine's load beside every figure measured on it (the cluster scaling
// test reports it too).
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "n/a"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "n/a"
	}
	return strings.Join(f[:3], " ")
}
