package httpserve

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestRoutesCountAndTime(t *testing.T) {
	reg := prometheus.NewRegistry()
	api, err := NewRoutes(reg, "api")
	if err != nil {
		t.Fatal(err)
	}
	console, err := NewRoutes(reg, "console") // shares the collectors
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	api.Handle(mux, "GET /ok", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }))
	console.Handle(mux, "GET /teapot", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) }))
	for _, path := range []string{"/ok", "/ok", "/teapot"} {
		mux.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", path, nil))
	}
	if n := testutil.ToFloat64(api.requests.WithLabelValues("api", "GET /ok", "200")); n != 2 {
		t.Errorf("api GET /ok 200 = %v, want 2", n)
	}
	if n := testutil.ToFloat64(console.requests.WithLabelValues("console", "GET /teapot", "418")); n != 1 {
		t.Errorf("console teapot 418 = %v, want 1", n)
	}
	if n := testutil.CollectAndCount(reg, "domainguard_http_request_duration_seconds"); n != 2 {
		t.Errorf("latency series = %d, want 2", n)
	}
}

func TestStartServesUntilContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s, err := Start(ctx, "127.0.0.1:0", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "hi") }), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + s.Addr() + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "hi" {
		t.Errorf("body %q", b)
	}
	cancel()
	<-s.Done()
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:8080": true, "[::1]:8080": true, "localhost:1": true, "127.3.4.5:1": true,
		":8080": false, "0.0.0.0:8080": false, "10.0.0.1:80": false, "[::]:80": false, "example.com:80": false, "garbage": false,
	} {
		if got := IsLoopback(addr); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}
