package auto

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/domainguard/domainguard/checker"
	"github.com/domainguard/domainguard/checker/rdap"
	"github.com/domainguard/domainguard/internal/clock"
	"github.com/domainguard/domainguard/lifecycle"
)

var testNow = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)

// fakeProvider records the domains it was asked about.
type fakeProvider struct {
	mu    sync.Mutex
	asked []string
}

func (f *fakeProvider) Name() string { return "domainr" }

func (f *fakeProvider) Lookup(_ context.Context, domain string, _ *lifecycle.Observation) (lifecycle.Observation, error) {
	f.mu.Lock()
	f.asked = append(f.asked, domain)
	f.mu.Unlock()
	return lifecycle.Observation{Domain: domain, Phase: lifecycle.PhaseActive,
		Evidence: lifecycle.Evidence{Provider: "domainr", Statuses: []string{"active"}, ObservedAt: testNow}}, nil
}

// rdapServer serves a bootstrap listing .com (only) and an active answer
// for every .com name. failBootstrap makes the bootstrap fetch fail.
func rdapServer(t *testing.T, failBootstrap bool) (*rdap.Client, *int) {
	t.Helper()
	var mu sync.Mutex
	domainHits := 0
	var srv *httptest.Server
	srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/dns.json" {
			if failBootstrap {
				http.Error(w, "down", http.StatusBadGateway)
				return
			}
			json.NewEncoder(w).Encode(map[string]any{"version": "1.0",
				"services": [][][]string{{{"com"}, {srv.URL + "/"}}}})
			return
		}
		name, _ := strings.CutPrefix(r.URL.Path, "/domain/")
		mu.Lock()
		domainHits++
		mu.Unlock()
		json.NewEncoder(w).Encode(map[string]any{"objectClassName": "domain", "ldhName": name,
			"handle": "1_DOMAIN_COM-VRSN", "status": []string{"active"}})
	}))
	t.Cleanup(srv.Close)
	c, err := rdap.New(rdap.Config{BootstrapURL: srv.URL + "/dns.json", HTTPClient: srv.Client(),
		Clock: clock.NewStub(testNow), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return c, &domainHits
}

func TestAutoRouting(t *testing.T) {
	tests := []struct {
		name         string
		withRDAP     bool
		withFallback bool
		domain       string
		phase        lifecycle.Phase
		provider     string
		detailHas    string
	}{
		{"RDAP serves the TLD", true, true, "example.com", lifecycle.PhaseActive, "rdap", ""},
		{"RDAP serves the TLD, no fallback", true, false, "example.com", lifecycle.PhaseActive, "rdap", ""},
		{"no RDAP service, fallback", true, true, "example.uz", lifecycle.PhaseActive, "domainr", ""},
		{"no RDAP service, no fallback", true, false, "Example.UZ", lifecycle.PhaseUnknown, "auto",
			"no RDAP service for .uz, no commercial provider configured, DNS evidence off"},
		{"no RDAP client, fallback", false, true, "example.com", lifecycle.PhaseActive, "domainr", ""},
		{"nothing configured", false, false, "example.com", lifecycle.PhaseUnknown, "auto", "no RDAP client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rc *rdap.Client
			var rdapHits *int
			if tt.withRDAP {
				rc, rdapHits = rdapServer(t, false)
			}
			fb := &fakeProvider{}
			var fallback checker.Provider
			if tt.withFallback {
				fallback = fb
			}
			p := New(rc, fallback).WithClock(clock.NewStub(testNow))
			if p.Name() != "auto" {
				t.Errorf("Name = %q", p.Name())
			}
			obs, err := p.Lookup(context.Background(), tt.domain, nil)
			if tt.provider == "auto" {
				// No source at all: unmonitored, never retried in process.
				if !errors.Is(err, checker.ErrNoSource) {
					t.Fatalf("err = %v, want checker.ErrNoSource", err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if obs.Phase != tt.phase || obs.Evidence.Provider != tt.provider {
				t.Errorf("phase %s provider %q, want %s %q", obs.Phase, obs.Evidence.Provider, tt.phase, tt.provider)
			}
			if !strings.Contains(obs.Evidence.Detail, tt.detailHas) {
				t.Errorf("detail %q lacks %q", obs.Evidence.Detail, tt.detailHas)
			}
			if obs.Domain != strings.ToLower(tt.domain) {
				t.Errorf("domain %q", obs.Domain)
			}
			if tt.provider == "auto" && !obs.Evidence.ObservedAt.Equal(testNow) {
				t.Errorf("observed at %v", obs.Evidence.ObservedAt)
			}
			usedFallback := len(fb.asked) > 0
			if usedFallback != (tt.provider == "domainr") {
				t.Errorf("fallback asked %v", fb.asked)
			}
			if rdapHits != nil && (*rdapHits > 0) != (tt.provider == "rdap") {
				t.Errorf("rdap domain lookups: %d", *rdapHits)
			}
		})
	}
}

func TestAutoBootstrapUnavailable(t *testing.T) {
	rc, _ := rdapServer(t, true)
	fb := &fakeProvider{}
	obs, err := New(rc, fb).Lookup(context.Background(), "example.com", nil)
	var le *checker.LookupError
	if !errors.As(err, &le) || !le.Temporary || le.Provider != "auto" {
		t.Fatalf("err = %v, want temporary *checker.LookupError", err)
	}
	if obs.Phase != lifecycle.PhaseUnknown || len(fb.asked) != 0 {
		t.Fatalf("phase %s, fallback asked %v", obs.Phase, fb.asked)
	}
}
