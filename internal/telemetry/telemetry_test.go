package telemetry

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func TestServeEndpoints(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reg := NewRegistry()
	checks := prometheus.NewCounter(prometheus.CounterOpts{Name: "domainguard_test_checks_total", Help: "test counter"})
	reg.MustRegister(checks)
	checks.Add(3)

	var notReady atomic.Pointer[error]
	ready := func(context.Context) error {
		if e := notReady.Load(); e != nil {
			return *e
		}
		return nil
	}
	srv, err := Serve(ctx, "127.0.0.1:0", reg, ready, nil)
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + srv.Addr()
	if strings.HasSuffix(srv.Addr(), ":0") {
		t.Fatalf("Addr() = %s, want the real port", srv.Addr())
	}

	want := `
# HELP domainguard_test_checks_total test counter
# TYPE domainguard_test_checks_total counter
domainguard_test_checks_total 3
`
	if err := testutil.ScrapeAndCompare(base+"/metrics", strings.NewReader(want), "domainguard_test_checks_total"); err != nil {
		t.Fatalf("/metrics: %v", err)
	}
	// The registry /metrics serves has the runtime and process collectors.
	if n, err := testutil.GatherAndCount(reg, "go_goroutines", "process_start_time_seconds"); err != nil || n != 2 {
		t.Fatalf("go_goroutines and process_start_time_seconds: %d series (%v), want 2", n, err)
	}
	if code, body := get(t, base+"/healthz"); code != 200 {
		t.Fatalf("/healthz = %d %q", code, body)
	}
	if code, body := get(t, base+"/readyz"); code != 200 {
		t.Fatalf("/readyz while ready = %d %q", code, body)
	}
	e := errors.New("database unreachable")
	notReady.Store(&e)
	if code, body := get(t, base+"/readyz"); code != 503 || !strings.Contains(body, "database unreachable") {
		t.Fatalf("/readyz while not ready = %d %q", code, body)
	}
	if code, _ := get(t, base+"/healthz"); code != 200 {
		t.Fatalf("/healthz follows readiness: %d", code)
	}
	notReady.Store(nil)
	if code, body := get(t, base+"/readyz"); code != 200 {
		t.Fatalf("/readyz after recovery = %d %q", code, body)
	}
	if code, _ := get(t, base+"/nope"); code != 404 {
		t.Fatalf("/nope = %d", code)
	}

	cancel()
	select {
	case <-srv.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("server did not stop after its context ended")
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Fatal("server still answers after shutdown")
	}
}

func TestServeDisabled(t *testing.T) {
	srv, err := Serve(context.Background(), "", NewRegistry(), nil, nil)
	if err != nil || srv != nil {
		t.Fatalf("Serve(\"\") = %v, %v; want no server", srv, err)
	}
	if srv.Addr() != "" {
		t.Fatal("nil server has an address")
	}
	select {
	case <-srv.Done():
	default:
		t.Fatal("nil server's Done is open")
	}
}

func TestServePortTaken(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, err = Serve(context.Background(), l.Addr().String(), NewRegistry(), nil, nil)
	if err == nil || !strings.Contains(err.Error(), l.Addr().String()) {
		t.Fatalf("err = %v, want a listen error naming the address", err)
	}
}

func TestReadyCheckGetsDeadline(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var hadDeadline atomic.Bool
	srv, err := Serve(ctx, "127.0.0.1:0", NewRegistry(), func(ctx context.Context) error {
		_, ok := ctx.Deadline()
		hadDeadline.Store(ok)
		return nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := get(t, "http://"+srv.Addr()+"/readyz"); code != 200 || !hadDeadline.Load() {
		t.Fatalf("readyz = %d, deadline passed = %v", code, hadDeadline.Load())
	}
}

func TestMetricNames(t *testing.T) {
	reg := NewRegistry()
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "domainguard_b_total", Help: "b"}, []string{"k"})
	reg.MustRegister(vec, prometheus.NewGauge(prometheus.GaugeOpts{Name: "domainguard_a", Help: "a"}))
	vec.WithLabelValues("x").Inc()
	names, err := MetricNames(reg)
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(names, " ")
	ia, ib := strings.Index(joined, "domainguard_a "), strings.Index(joined, "domainguard_b_total")
	if ia < 0 || ib < 0 || ia > ib || !strings.Contains(joined, "go_goroutines") {
		t.Fatalf("names = %v", names)
	}
	for i := 1; i < len(names); i++ {
		if names[i-1] >= names[i] {
			t.Fatalf("not sorted or duplicated at %d: %v", i, names)
		}
	}
}
