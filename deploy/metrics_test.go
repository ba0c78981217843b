package deploy_test

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/yaml"
)

// externalMetrics are the metrics the deploy files use that domainguard
// does not export: JetStream stream and consumer state from the NATS
// Prometheus exporter (prometheus-nats-exporter -jsz=all, labels
// stream_name and consumer_name). Each use is explained where it occurs.
var externalMetrics = map[string]bool{
	"jetstream_stream_total_messages": true, // DLQ depth
	"jetstream_consumer_num_pending":  true, // consumer lag (checker, enforcer)
}

// registeredMetrics returns the metric names the module's non-test Go
// sources register, with their kind (counter, gauge, histogram, summary).
//
// How: it parses every non-test .go file and reads each
// prometheus.{Counter,Gauge,Histogram,Summary}Opts composite literal,
// resolving Namespace, Subsystem and Name from string literals or
// constants of the same file. When Name is a parameter of a function
// literal assigned to a local variable (the producer's
// `counter := func(name, help string) ...`), the names are the string
// literals passed to that variable's calls. Reading the sources rather than
// constructing each role keeps this test independent of the roles' wiring
// (pools, JetStream) and still finds metrics registered on code paths a
// constructor does not take.
func registeredMetrics(t *testing.T) map[string]string {
	t.Helper()
	root := repoRoot(t)
	out := map[string]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "vendor" || name == "deploy") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		for name, kind := range metricsInFile(f) {
			out[name] = kind
		}
		return nil
	})
	if err != nil {
		t.Fatalf("scan Go sources: %v", err)
	}
	if len(out) == 0 {
		t.Fatal("found no registered metrics in the Go sources")
	}
	return out
}

var optsKinds = map[string]string{
	"CounterOpts": "counter", "GaugeOpts": "gauge", "HistogramOpts": "histogram", "SummaryOpts": "summary",
}

func metricsInFile(f *ast.File) map[string]string {
	consts := map[string]string{}
	ast.Inspect(f, func(n ast.Node) bool {
		if gd, ok := n.(*ast.GenDecl); ok && gd.Tok == token.CONST {
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, id := range vs.Names {
					if i < len(vs.Values) {
						if s, ok := stringLit(vs.Values[i]); ok {
							consts[id.Name] = s
						}
					}
				}
			}
		}
		return true
	})
	resolve := func(e ast.Expr) (string, bool) {
		if s, ok := stringLit(e); ok {
			return s, true
		}
		if id, ok := e.(*ast.Ident); ok {
			s, ok := consts[id.Name]
			return s, ok
		}
		return "", false
	}
	// Function literals assigned to a variable: name → literal.
	helpers := map[string]*ast.FuncLit{}
	ast.Inspect(f, func(n ast.Node) bool {
		if as, ok := n.(*ast.AssignStmt); ok && len(as.Lhs) == len(as.Rhs) {
			for i, rhs := range as.Rhs {
				if fl, ok := rhs.(*ast.FuncLit); ok {
					if id, ok := as.Lhs[i].(*ast.Ident); ok {
						helpers[id.Name] = fl
					}
				}
			}
		}
		return true
	})
	out := map[string]string{}
	ast.Inspect(f, func(n ast.Node) bool {
		cl, ok := n.(*ast.CompositeLit)
		if !ok {
			return true
		}
		sel, ok := cl.Type.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		pkg, ok := sel.X.(*ast.Ident)
		kind := optsKinds[sel.Sel.Name]
		if !ok || pkg.Name != "prometheus" || kind == "" {
			return true
		}
		fields := map[string]ast.Expr{}
		for _, el := range cl.Elts {
			if kv, ok := el.(*ast.KeyValueExpr); ok {
				if k, ok := kv.Key.(*ast.Ident); ok {
					fields[k.Name] = kv.Value
				}
			}
		}
		var ns, sub string
		if e, ok := fields["Namespace"]; ok {
			ns, _ = resolve(e)
		}
		if e, ok := fields["Subsystem"]; ok {
			sub, _ = resolve(e)
		}
		nameExpr := fields["Name"]
		if nameExpr == nil {
			return true
		}
		if name, ok := resolve(nameExpr); ok {
			out[prometheus.BuildFQName(ns, sub, name)] = kind
			return true
		}
		param, ok := nameExpr.(*ast.Ident)
		if !ok {
			return true
		}
		for helper, fl := range helpers {
			if cl.Pos() < fl.Pos() || cl.End() > fl.End() {
				continue
			}
			idx, i := -1, 0
			for _, field := range fl.Type.Params.List {
				for _, pn := range field.Names {
					if pn.Name == param.Name {
						idx = i
					}
					i++
				}
			}
			if idx < 0 {
				continue
			}
			ast.Inspect(f, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok || len(call.Args) <= idx {
					return true
				}
				if id, ok := call.Fun.(*ast.Ident); ok && id.Name == helper {
					if name, ok := resolve(call.Args[idx]); ok {
						out[prometheus.BuildFQName(ns, sub, name)] = kind
					}
				}
				return true
			})
		}
		return true
	})
	return out
}

func stringLit(e ast.Expr) (string, bool) {
	bl, ok := e.(*ast.BasicLit)
	if !ok || bl.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(bl.Value)
	return s, err == nil
}

var (
	dgMetricRef       = regexp.MustCompile(`\bdomainguard_[a-z0-9_]+`)
	externalMetricRef = regexp.MustCompile(`\b(jetstream|gnatsd|nats)_[a-z0-9_]+`)
)

// checkMetricRefs reports every metric an expression names that is not
// registered (allowing the _bucket/_sum/_count series of histograms and
// summaries) and not one of externalMetrics. It returns the domainguard
// metrics named.
func checkMetricRefs(t *testing.T, where, expr string, registered map[string]string) []string {
	t.Helper()
	var names []string
	for _, ref := range dgMetricRef.FindAllString(expr, -1) {
		name := ref
		if _, ok := registered[name]; !ok {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				base := strings.TrimSuffix(ref, suffix)
				if k := registered[base]; base != ref && (k == "histogram" || k == "summary") {
					name = base
				}
			}
		}
		if _, ok := registered[name]; !ok {
			t.Errorf("%s: metric %s is not registered by any role (expr %q)", where, ref, expr)
		}
		names = append(names, name)
	}
	for _, ref := range externalMetricRef.FindAllString(expr, -1) {
		if !externalMetrics[ref] {
			t.Errorf("%s: external metric %s is not in the documented list (expr %q)", where, ref, expr)
		}
	}
	return names
}

func TestMetricScannerFindsRoleMetrics(t *testing.T) {
	reg := registeredMetrics(t)
	names := make([]string, 0, len(reg))
	for n := range reg {
		names = append(names, n)
	}
	sort.Strings(names)
	t.Logf("registered: %s", strings.Join(names, " "))
	// One per way of naming a metric in the sources: a full-name literal
	// (checker, enforcer) and Namespace/Subsystem with the name passed to a
	// local helper (producer) or given as a literal (producer histogram).
	for name, kind := range map[string]string{
		"domainguard_checker_lookups_total":            "counter",
		"domainguard_enforcer_outbox_lag_seconds":      "gauge",
		"domainguard_producer_domains_overdue":         "gauge",
		"domainguard_producer_intake_accepted_total":   "counter",
		"domainguard_producer_sweep_duration_seconds":  "histogram",
		"domainguard_checker_lookup_duration_seconds":  "histogram",
		"domainguard_enforcer_emails_unverified_total": "counter",
	} {
		if reg[name] != kind {
			t.Errorf("scanner: %s is %q, want %s", name, reg[name], kind)
		}
	}
}

// alertRules is the Prometheus rule file format (decoded strictly).
type alertRules struct {
	Groups []struct {
		Name     string `json:"name"`
		Interval string `json:"interval,omitempty"`
		Rules    []struct {
			Alert       string            `json:"alert,omitempty"`
			Record      string            `json:"record,omitempty"`
			Expr        string            `json:"expr"`
			For         string            `json:"for,omitempty"`
			Labels      map[string]string `json:"labels,omitempty"`
			Annotations map[string]string `json:"annotations,omitempty"`
		} `json:"rules"`
	} `json:"groups"`
}

func TestAlertRules(t *testing.T) {
	registered := registeredMetrics(t)
	var rules alertRules
	if err := yaml.UnmarshalStrict(readRepoFile(t, "deploy/observability/prometheus-alerts.yaml"), &rules); err != nil {
		t.Fatalf("prometheus-alerts.yaml: %v", err)
	}
	operating := string(readRepoFile(t, "docs/OPERATING.md"))
	seen := map[string]bool{}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				t.Errorf("group %s: rule without alert name", g.Name)
				continue
			}
			if seen[r.Alert] {
				t.Errorf("alert %s defined twice", r.Alert)
			}
			seen[r.Alert] = true
			if len(checkMetricRefs(t, "alert "+r.Alert, r.Expr, registered)) == 0 && !strings.Contains(r.Expr, "jetstream_") {
				t.Errorf("alert %s: expression names no metric", r.Alert)
			}
			if s := r.Labels["severity"]; s != "page" && s != "ticket" {
				t.Errorf("alert %s: severity %q, want page or ticket", r.Alert, s)
			}
			for _, a := range []string{"summary", "description", "runbook_url"} {
				if r.Annotations[a] == "" {
					t.Errorf("alert %s: annotation %s missing", r.Alert, a)
				}
			}
			if !strings.Contains(r.Annotations["runbook_url"], "OPERATING.md#"+strings.ToLower(r.Alert)) {
				t.Errorf("alert %s: runbook_url %q should point at OPERATING.md#%s", r.Alert, r.Annotations["runbook_url"], strings.ToLower(r.Alert))
			}
			if !strings.Contains(operating, "### "+r.Alert+"\n") {
				t.Errorf("alert %s has no section \"### %s\" in docs/OPERATING.md", r.Alert, r.Alert)
			}
		}
	}
	// The alerts issue 7 asks for.
	for _, name := range []string{
		"DomainguardChecksOverdue", "DomainguardDeadLettersGrowing", "DomainguardHoldWaiting",
		"DomainguardBreakerOpen", "DomainguardProviderErrorRateHigh", "DomainguardOutboxLag",
	} {
		if !seen[name] {
			t.Errorf("alert %s missing", name)
		}
	}
}

// grafanaDashboard is the part of the dashboard model the test reads.
type grafanaDashboard struct {
	UID    string `json:"uid"`
	Title  string `json:"title"`
	Panels []struct {
		ID      int    `json:"id"`
		Title   string `json:"title"`
		Type    string `json:"type"`
		Targets []struct {
			Expr  string `json:"expr"`
			RefID string `json:"refId"`
		} `json:"targets"`
	} `json:"panels"`
}

func TestGrafanaDashboard(t *testing.T) {
	registered := registeredMetrics(t)
	var d grafanaDashboard
	if err := json.Unmarshal(readRepoFile(t, "deploy/observability/grafana-dashboard.json"), &d); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	if d.UID == "" || d.Title == "" || len(d.Panels) == 0 {
		t.Fatalf("dashboard uid %q title %q with %d panels: want all set", d.UID, d.Title, len(d.Panels))
	}
	ids := map[int]bool{}
	used := map[string]bool{}
	external := ""
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			if q.Expr == "" || q.RefID == "" {
				t.Errorf("panel %q: target without expr or refId", p.Title)
			}
			for _, n := range checkMetricRefs(t, "panel "+p.Title, q.Expr, registered) {
				used[n] = true
			}
			external += q.Expr
		}
	}
	// What issue 7 asks the dashboard to show.
	for _, name := range []string{
		"domainguard_checker_lookups_total",            // lookups by outcome
		"domainguard_producer_domains_overdue",         // check lag
		"domainguard_enforcer_emails_unverified_total", // unverifications by reason
		"domainguard_enforcer_holds_open",              // holds
		"domainguard_enforcer_breaker_open",            // breaker
		"domainguard_enforcer_outbox_lag_seconds",      // outbox lag
		"domainguard_dlq_messages",                     // DLQ depth
	} {
		if !used[name] {
			t.Errorf("dashboard does not show %s", name)
		}
	}
}
