package rdap

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/domainguard/domainguard/checker"
	"github.com/domainguard/domainguard/internal/clock"
	"github.com/domainguard/domainguard/lifecycle"
)

var testNow = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)

// answer is what the fake registry says for one name.
type answer struct {
	status int
	file   string            // fixture under testdata/
	body   string            // used when file is ""
	header map[string]string // extra response headers
	block  bool              // wait until the client gives up
}

// registry is a fake RDAP server (TLS, so it can be listed in a
// bootstrap) that also serves the bootstrap file at /dns.json.
type registry struct {
	t   *testing.T
	srv *httptest.Server

	mu           sync.Mutex
	answers      map[string]answer
	hits         map[string]int
	bootstrap    []byte
	bootstrapErr bool
	bootHits     int
}

func newRegistry(t *testing.T, tlds ...string) *registry {
	r := &registry{t: t, answers: map[string]answer{}, hits: map[string]int{}}
	r.srv = httptest.NewTLSServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	if len(tlds) == 0 {
		tlds = []string{"com", "xyz", "no"}
	}
	b, err := json.Marshal(map[string]any{
		"version": "1.0", "publication": "2025-05-01T00:00:00Z",
		"services": [][][]string{{tlds, {r.srv.URL + "/rdap"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	r.bootstrap = b
	return r
}

func (r *registry) set(name string, a answer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.answers[name] = a
}

func (r *registry) hitCount(name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.hits[name]
}

func (r *registry) bootstrapHits() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bootHits
}

func (r *registry) serve(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	if req.URL.Path == "/dns.json" {
		r.bootHits++
		body, fail := r.bootstrap, r.bootstrapErr
		r.mu.Unlock()
		if fail {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		w.Write(body)
		return
	}
	name, ok := strings.CutPrefix(req.URL.Path, "/rdap/domain/")
	name = strings.ToLower(name)
	a, known := r.answers[name]
	r.hits[name]++
	r.mu.Unlock()
	if !ok {
		http.NotFound(w, req)
		return
	}
	if got := req.Header.Get("Accept"); !strings.Contains(got, "application/rdap+json") {
		r.t.Errorf("Accept = %q", got)
	}
	if !known {
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"errorCode":404,"title":"Not Found"}`)
		return
	}
	if a.block {
		<-req.Context().Done()
		return
	}
	for k, v := range a.header {
		w.Header().Set(k, v)
	}
	body := []byte(a.body)
	if a.file != "" {
		var err error
		if body, err = os.ReadFile(filepath.Join("testdata", a.file)); err != nil {
			r.t.Error(err)
		}
	}
	w.Header().Set("Content-Type", "application/rdap+json")
	if a.status == 0 {
		a.status = http.StatusOK
	}
	w.WriteHeader(a.status)
	w.Write(body)
}

func (r *registry) client(t *testing.T, clk clock.Clock, mod func(*Config)) *Client {
	t.Helper()
	cfg := Config{
		BootstrapURL: r.srv.URL + "/dns.json",
		HTTPClient:   r.srv.Client(),
		Clock:        clk,
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func okCanary(r *registry) {
	r.set("verisign.com", answer{file: "canary-verisign-com.json"})
}

func TestLookupPhases(t *testing.T) {
	tests := []struct {
		name      string
		domain    string
		answers   map[string]answer
		prev      *lifecycle.Observation
		phase     lifecycle.Phase
		notFound  bool
		detailHas string
		check     func(t *testing.T, ev lifecycle.Evidence)
	}{
		{
			name:    "active com with prohibitions",
			domain:  "Example-Active.COM.",
			answers: map[string]answer{"example-active.com": {file: "active-com.json"}},
			phase:   lifecycle.PhaseActive,
			check: func(t *testing.T, ev lifecycle.Evidence) {
				if ev.Handle != "2001234567_DOMAIN_COM-VRSN" || ev.RegistrarIANAID != "292" ||
					!slices.Equal(ev.Nameservers, []string{"ns1.example-dns.net", "ns2.example-dns.net"}) ||
					!sameTime(ev.ExpiresAt, mustTime(t, "2026-03-01T12:00:00Z")) ||
					!sameTime(ev.RegisteredAt, mustTime(t, "2010-03-01T12:00:00Z")) {
					t.Errorf("evidence %+v", ev)
				}
			},
		},
		{
			name:    "com auto renew period, healthy",
			domain:  "example-renewed.com",
			answers: map[string]answer{"example-renewed.com": {file: "arp-healthy-com.json"}},
			phase:   lifecycle.PhaseGrace,
		},
		{
			name:    "auto renew period, nameservers moved since the last RDAP answer",
			domain:  "example-renewed.com",
			answers: map[string]answer{"example-renewed.com": {file: "arp-healthy-com.json"}},
			prev: &lifecycle.Observation{Domain: "example-renewed.com", Phase: lifecycle.PhaseActive,
				Evidence: lifecycle.Evidence{Provider: "rdap", Nameservers: []string{"ns1.old-host.test"}}},
			phase: lifecycle.PhaseExpired,
		},
		{
			name:    "auto renew period, previous evidence from another provider is not compared",
			domain:  "example-renewed.com",
			answers: map[string]answer{"example-renewed.com": {file: "arp-healthy-com.json"}},
			prev: &lifecycle.Observation{Domain: "example-renewed.com", Phase: lifecycle.PhaseActive,
				Evidence: lifecycle.Evidence{Provider: "domainr", Nameservers: []string{"ns1.old-host.test"}}},
			phase: lifecycle.PhaseGrace,
		},
		{
			name:    "auto renew period plus client hold",
			domain:  "example-lapsing.com",
			answers: map[string]answer{"example-lapsing.com": {file: "arp-hold-com.json"}},
			phase:   lifecycle.PhaseExpired,
		},
		{
			name:    "expiration passed with hold, no auto-renew",
			domain:  "example-past.xyz",
			answers: map[string]answer{"example-past.xyz": {file: "expired-past-xyz.json"}},
			phase:   lifecycle.PhaseExpired,
		},
		{
			name:    "redemption",
			domain:  "example-redemption.com",
			answers: map[string]answer{"example-redemption.com": {file: "redemption-com.json"}},
			phase:   lifecycle.PhaseRedemption,
		},
		{
			name:    "pending delete",
			domain:  "example-pendingdelete.com",
			answers: map[string]answer{"example-pendingdelete.com": {file: "pending-delete-com.json"}},
			phase:   lifecycle.PhasePendingDelete,
			check: func(t *testing.T, ev lifecycle.Evidence) {
				if !sameTime(ev.DeletionAt, mustTime(t, "2025-06-02T18:00:00Z")) {
					t.Errorf("deletion = %v", ev.DeletionAt)
				}
			},
		},
		{
			name:    "ccTLD without status",
			domain:  "eksempel.no",
			answers: map[string]answer{"eksempel.no": {file: "no-status-no.json"}},
			phase:   lifecycle.PhaseActive,
			check: func(t *testing.T, ev lifecycle.Evidence) {
				if len(ev.Statuses) != 0 || ev.ExpiresAt != nil || ev.Handle != "EKS12345D-NORID" {
					t.Errorf("evidence %+v", ev)
				}
			},
		},
		{
			name:    "odd dates",
			domain:  "example-odddates.com",
			answers: map[string]answer{"example-odddates.com": {file: "odd-dates-com.json"}},
			phase:   lifecycle.PhaseActive,
			check: func(t *testing.T, ev lifecycle.Evidence) {
				if !sameTime(ev.ExpiresAt, mustTime(t, "2026-03-01T07:00:00Z")) || ev.DeletionAt != nil {
					t.Errorf("evidence %+v", ev)
				}
			},
		},
		{
			name:    "escaped slashes",
			domain:  "example-escaped.com",
			answers: map[string]answer{"example-escaped.com": {file: "escaped-slashes-com.json"}},
			phase:   lifecycle.PhaseActive,
		},
		{
			name:    "non-standard event names",
			domain:  "example-events.com",
			answers: map[string]answer{"example-events.com": {file: "nonstandard-events-com.json"}},
			phase:   lifecycle.PhaseActive,
			check: func(t *testing.T, ev lifecycle.Evidence) {
				if !sameTime(ev.RegisteredAt, mustTime(t, "2023-07-01T10:00:00Z")) {
					t.Errorf("reregistration not taken: %v", ev.RegisteredAt)
				}
			},
		},
		{
			name:      "HTML body",
			domain:    "example-html.com",
			answers:   map[string]answer{"example-html.com": {file: "html-body.html"}},
			phase:     lifecycle.PhaseUnknown,
			detailHas: "unparseable RDAP answer",
		},
		{
			name:      "truncated JSON",
			domain:    "example-active.com",
			answers:   map[string]answer{"example-active.com": {file: "truncated-com.json"}},
			phase:     lifecycle.PhaseUnknown,
			detailHas: "unparseable RDAP answer",
		},
		{
			name:   "answer larger than 1 MiB",
			domain: "example-big.com",
			answers: map[string]answer{"example-big.com": {body: `{"objectClassName":"domain","ldhName":"example-big.com",` +
				`"remarks":[{"description":["` + strings.Repeat("x", 1<<20) + `"]}],"status":["active"]}`}},
			phase:     lifecycle.PhaseUnknown,
			detailHas: "unparseable RDAP answer",
		},
		{
			name:      "error object with 200",
			domain:    "example-active.com",
			answers:   map[string]answer{"example-active.com": {file: "error-object.json"}},
			phase:     lifecycle.PhaseUnknown,
			detailHas: "error object",
		},
		{
			name:      "answer about another name",
			domain:    "example-other.com",
			answers:   map[string]answer{"example-other.com": {file: "active-com.json"}},
			phase:     lifecycle.PhaseUnknown,
			detailHas: `answer is for "example-active.com"`,
		},
		{
			name:      "other 4xx",
			domain:    "example-forbidden.com",
			answers:   map[string]answer{"example-forbidden.com": {status: http.StatusForbidden, body: "{}"}},
			phase:     lifecycle.PhaseUnknown,
			detailHas: "unexpected HTTP 403",
		},
		{
			name:     "404 confirmed by canary",
			domain:   "example-gone.com",
			answers:  map[string]answer{"verisign.com": {file: "canary-verisign-com.json"}},
			phase:    lifecycle.PhaseReleased,
			notFound: true,
		},
		{
			name:      "404, canary also 404",
			domain:    "example-gone.com",
			phase:     lifecycle.PhaseUnknown,
			detailHas: "404 not confirmed by canary verisign.com: HTTP 404",
		},
		{
			name:      "404, canary 500",
			domain:    "example-gone.com",
			answers:   map[string]answer{"verisign.com": {status: 500, body: "oops"}},
			phase:     lifecycle.PhaseUnknown,
			detailHas: "404 not confirmed by canary verisign.com",
		},
		{
			name:      "404, canary answers HTML",
			domain:    "example-gone.com",
			answers:   map[string]answer{"verisign.com": {file: "html-body.html"}},
			phase:     lifecycle.PhaseUnknown,
			detailHas: "404 not confirmed by canary",
		},
		{
			name:      "404, canary answers for another name",
			domain:    "example-gone.com",
			answers:   map[string]answer{"verisign.com": {file: "active-com.json"}},
			phase:     lifecycle.PhaseUnknown,
			detailHas: "404 not confirmed by canary",
		},
		{
			name:      "404 for the canary itself",
			domain:    "verisign.com",
			phase:     lifecycle.PhaseUnknown,
			detailHas: "canary name verisign.com itself",
		},
		{
			name:      "404 on .xyz uses nic.xyz as canary",
			domain:    "example-gone.xyz",
			answers:   map[string]answer{"verisign.com": {file: "canary-verisign-com.json"}},
			phase:     lifecycle.PhaseUnknown,
			detailHas: "canary nic.xyz",
		},
		{
			name:      "no RDAP service",
			domain:    "example.uz",
			phase:     lifecycle.PhaseUnknown,
			detailHas: "no RDAP service for .uz",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := newRegistry(t)
			for name, a := range tt.answers {
				reg.set(name, a)
			}
			c := reg.client(t, clock.NewStub(testNow), nil)
			obs, err := c.Lookup(context.Background(), tt.domain, tt.prev)
			if err != nil {
				t.Fatalf("Lookup: %v", err)
			}
			ev := obs.Evidence
			if obs.Phase != tt.phase {
				t.Errorf("phase = %s, want %s (detail %q)", obs.Phase, tt.phase, ev.Detail)
			}
			if ev.NotFound != tt.notFound {
				t.Errorf("NotFound = %v, want %v", ev.NotFound, tt.notFound)
			}
			if !strings.Contains(ev.Detail, tt.detailHas) {
				t.Errorf("detail %q lacks %q", ev.Detail, tt.detailHas)
			}
			if obs.Domain != strings.ToLower(strings.TrimSuffix(tt.domain, ".")) {
				t.Errorf("domain = %q", obs.Domain)
			}
			if ev.Provider != "rdap" || !ev.ObservedAt.Equal(testNow) {
				t.Errorf("provider %q observed %v", ev.Provider, ev.ObservedAt)
			}
			if tt.detailHas != "no RDAP service for .uz" && ev.Server != reg.srv.URL+"/rdap/" {
				t.Errorf("server = %q", ev.Server)
			}
			if tt.phase == lifecycle.PhaseReleased || ev.NotFound {
				if tt.phase != lifecycle.PhaseReleased || !ev.NotFound {
					t.Error("released without NotFound, or the reverse")
				}
			}
			if tt.check != nil {
				tt.check(t, ev)
			}
		})
	}
}

func TestLookupErrors(t *testing.T) {
	tests := []struct {
		name       string
		answer     answer
		timeout    time.Duration
		temporary  bool
		status     int
		retryAfter time.Duration
	}{
		{"429 with seconds", answer{status: 429, header: map[string]string{"Retry-After": "120"}}, 0, true, 429, 2 * time.Minute},
		{"503 with HTTP date", answer{status: 503, header: map[string]string{"Retry-After": testNow.Add(90 * time.Second).Format(http.TimeFormat)}}, 0, true, 503, 90 * time.Second},
		{"429 without Retry-After", answer{status: 429}, 0, true, 429, 0},
		{"500", answer{status: 500, body: "<html>"}, 0, true, 500, 0},
		{"502", answer{status: 502}, 0, true, 502, 0},
		{"400 invalid name", answer{status: 400}, 0, false, 400, 0},
		{"422", answer{status: 422}, 0, false, 422, 0},
		{"timeout", answer{block: true}, 100 * time.Millisecond, true, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := newRegistry(t)
			reg.set("example.com", tt.answer)
			okCanary(reg)
			c := reg.client(t, clock.NewStub(testNow), nil)
			ctx := context.Background()
			if tt.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
				if _, err := c.HasService(context.Background(), "com"); err != nil {
					t.Fatal(err) // load the bootstrap outside the short deadline
				}
			}
			obs, err := c.Lookup(ctx, "example.com", nil)
			var le *checker.LookupError
			if !errors.As(err, &le) {
				t.Fatalf("err = %v (%T), obs %+v; want *checker.LookupError", err, err, obs)
			}
			if le.Temporary != tt.temporary || checker.IsPermanent(err) == tt.temporary {
				t.Errorf("temporary = %v, want %v", le.Temporary, tt.temporary)
			}
			if le.StatusCode != tt.status {
				t.Errorf("status = %d, want %d", le.StatusCode, tt.status)
			}
			if got := checker.RetryAfter(err); got != tt.retryAfter {
				t.Errorf("RetryAfter = %v, want %v", got, tt.retryAfter)
			}
			if le.Provider != "rdap" || le.Domain != "example.com" {
				t.Errorf("error names %q/%q", le.Provider, le.Domain)
			}
			if obs.Phase != lifecycle.PhaseUnknown || obs.Evidence.NotFound {
				t.Errorf("error path produced phase %s", obs.Phase)
			}
			if reg.hitCount("verisign.com") != 0 {
				t.Error("canary consulted on an error path")
			}
		})
	}
}

func TestLookupRejectsInvalidNames(t *testing.T) {
	reg := newRegistry(t)
	c := reg.client(t, clock.NewStub(testNow), nil)
	for _, name := range []string{"", "com", ".com", "example.", "a/b.com", "x.com?y", "a b.com"} {
		_, err := c.Lookup(context.Background(), name, nil)
		if !checker.IsPermanent(err) {
			t.Errorf("Lookup(%q) err = %v, want permanent", name, err)
		}
	}
}

func TestNetworkErrorIsTemporary(t *testing.T) {
	reg := newRegistry(t)
	c := reg.client(t, clock.NewStub(testNow), nil)
	if _, err := c.HasService(context.Background(), "com"); err != nil {
		t.Fatal(err)
	}
	reg.srv.CloseClientConnections()
	reg.srv.Close()
	obs, err := c.Lookup(context.Background(), "example.com", nil)
	if err == nil || checker.IsPermanent(err) {
		t.Fatalf("err = %v, want temporary", err)
	}
	if obs.Phase != lifecycle.PhaseUnknown {
		t.Errorf("phase %s on a network error", obs.Phase)
	}
}

func TestRedirectToOtherHostRefused(t *testing.T) {
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("redirect followed to another host")
	}))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/domain/example.test", http.StatusFound)
	}))
	defer srv.Close()
	c, err := New(Config{Overrides: map[string]string{"test": srv.URL}, Clock: clock.NewStub(testNow),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Lookup(context.Background(), "example.test", nil)
	if err == nil || checker.IsPermanent(err) || !strings.Contains(err.Error(), "another host") {
		t.Fatalf("err = %v", err)
	}
}

func TestOverrideTakesPrecedence(t *testing.T) {
	reg := newRegistry(t) // its bootstrap lists .com
	var hits int
	var mu sync.Mutex
	override := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits++
		mu.Unlock()
		if r.URL.Path != "/v1/domain/example-active.com" {
			t.Errorf("path %q", r.URL.Path)
		}
		w.Write(readFixture(t, "active-com.json"))
	}))
	defer override.Close()
	c := reg.client(t, clock.NewStub(testNow), func(cfg *Config) {
		cfg.Overrides = map[string]string{".COM": override.URL + "/v1"}
		cfg.HTTPClient = nil // plain http to the override
	})
	obs, err := c.Lookup(context.Background(), "example-active.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	if obs.Phase != lifecycle.PhaseActive || obs.Evidence.Server != override.URL+"/v1/" || hits != 1 {
		t.Fatalf("obs %+v, hits %d", obs, hits)
	}
	if ok, err := c.HasService(context.Background(), "com"); !ok || err != nil {
		t.Fatalf("HasService(com) = %v, %v", ok, err)
	}
	if reg.bootstrapHits() != 0 {
		t.Error("bootstrap fetched although an override serves the TLD")
	}
}

// The canary is asked again right after every 404, never trusted from an
// earlier success: a node answering 404 for everything (canary included)
// for a few minutes must not release the names asked about meanwhile.
func TestCanaryAskedAfterEvery404(t *testing.T) {
	reg := newRegistry(t)
	okCanary(reg)
	c := reg.client(t, clock.NewStub(testNow), nil)
	lookup := func() lifecycle.Observation {
		t.Helper()
		obs, err := c.Lookup(context.Background(), "example-gone.com", nil)
		if err != nil {
			t.Fatal(err)
		}
		return obs
	}
	for range 3 {
		if obs := lookup(); obs.Phase != lifecycle.PhaseReleased {
			t.Fatalf("phase %s: %s", obs.Phase, obs.Evidence.Detail)
		}
	}
	if n := reg.hitCount("verisign.com"); n != 3 {
		t.Fatalf("canary asked %d times for 3 404s, want 3", n)
	}
	// The node now answers 404 for the canary too: the very next 404 is
	// not trusted, although the canary answered a moment ago.
	reg.set("verisign.com", answer{status: 404, body: `{"errorCode":404}`})
	obs := lookup()
	if obs.Phase != lifecycle.PhaseUnknown || obs.Evidence.NotFound {
		t.Fatalf("phase %s after the canary's own 404", obs.Phase)
	}
	if !strings.Contains(obs.Evidence.Detail, "404 not confirmed by canary") {
		t.Errorf("detail %q", obs.Evidence.Detail)
	}
	okCanary(reg)
	if obs := lookup(); obs.Phase != lifecycle.PhaseReleased {
		t.Fatalf("phase %s", obs.Phase)
	}
}

// A 404 means released only when a canary under the same public suffix
// answers on that server, or the registry's profile says it holds the
// suffix: Nominet's server answers 404 for ox.ac.uk (ac.uk is Jisc's zone),
// and its nic.uk canary says nothing about it.
func TestCanaryPerPublicSuffix(t *testing.T) {
	reg := newRegistry(t, "uk", "ca")
	nicUK := `{"objectClassName":"domain","ldhName":"nic.uk","status":["active"]}`
	reg.set("nic.uk", answer{body: nicUK})
	reg.set("cira.ca", answer{body: `{"objectClassName":"domain","ldhName":"cira.ca","status":["active"]}`})
	reg.set("canada.gc.ca", answer{body: `{"objectClassName":"domain","ldhName":"canada.gc.ca","status":["active"]}`})
	tests := []struct {
		domain    string
		canaries  map[string]string
		phase     lifecycle.Phase
		detailHas string
		canary    string // asked
	}{
		{domain: "ox.ac.uk", phase: lifecycle.PhaseUnknown, detailHas: "not known to hold"},
		{domain: "example.gov.uk", phase: lifecycle.PhaseUnknown, detailHas: ".gov.uk"},
		{domain: "gone.co.uk", phase: lifecycle.PhaseReleased, canary: "nic.uk"}, // Nominet holds co.uk
		{domain: "gone.uk", phase: lifecycle.PhaseReleased, canary: "nic.uk"},
		{domain: "tbs.gc.ca", phase: lifecycle.PhaseUnknown, detailHas: "DOMAINGUARD_RDAP_CANARIES"},
		{domain: "gone.ca", phase: lifecycle.PhaseReleased, canary: "cira.ca"},
		// An operator who knows a name under gc.ca on that server may vouch.
		{domain: "tbs.gc.ca", canaries: map[string]string{"gc.ca": "canada.gc.ca"}, phase: lifecycle.PhaseReleased, canary: "canada.gc.ca"},
	}
	for _, tt := range tests {
		t.Run(tt.domain, func(t *testing.T) {
			c := reg.client(t, clock.NewStub(testNow), func(cfg *Config) { cfg.Canaries = tt.canaries })
			before := 0
			if tt.canary != "" {
				before = reg.hitCount(tt.canary)
			}
			obs, err := c.Lookup(context.Background(), tt.domain, nil)
			if err != nil {
				t.Fatal(err)
			}
			if obs.Phase != tt.phase || !strings.Contains(obs.Evidence.Detail, tt.detailHas) {
				t.Fatalf("phase %s (%q), want %s (%q)", obs.Phase, obs.Evidence.Detail, tt.phase, tt.detailHas)
			}
			if tt.canary != "" && reg.hitCount(tt.canary) != before+1 {
				t.Errorf("canary %s not asked", tt.canary)
			}
		})
	}
}

func TestCanaryConfigured(t *testing.T) {
	reg := newRegistry(t, "test")
	reg.set("registry-owned.test", answer{body: `{"objectClassName":"domain","ldhName":"REGISTRY-OWNED.TEST","status":["active"]}`})
	c := reg.client(t, clock.NewStub(testNow), func(cfg *Config) {
		cfg.Canaries = map[string]string{"TEST": "Registry-Owned.test."}
	})
	obs, err := c.Lookup(context.Background(), "gone.test", nil)
	if err != nil {
		t.Fatal(err)
	}
	if obs.Phase != lifecycle.PhaseReleased || reg.hitCount("registry-owned.test") != 1 {
		t.Fatalf("phase %s, detail %q", obs.Phase, obs.Evidence.Detail)
	}
}

func TestBootstrapCache(t *testing.T) {
	dir := t.TempDir()
	reg := newRegistry(t)
	clk := clock.NewStub(testNow)
	var logs bytes.Buffer
	var logMu sync.Mutex
	mk := func() *Client {
		return reg.client(t, clk, func(cfg *Config) {
			cfg.CacheDir = dir
			cfg.Logger = slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &logMu}, nil))
		})
	}
	ctx := context.Background()
	has := func(c *Client, tld string) bool {
		t.Helper()
		ok, err := c.HasService(ctx, tld)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}

	first := mk()
	if !has(first, "com") || has(first, "uz") {
		t.Fatal("wrong services")
	}
	if reg.bootstrapHits() != 1 {
		t.Fatalf("bootstrap fetched %d times", reg.bootstrapHits())
	}
	if _, err := os.Stat(filepath.Join(dir, "dns.json")); err != nil {
		t.Fatalf("cache not written: %v", err)
	}

	// A second client with the same cache directory does not fetch.
	clk.Advance(time.Hour)
	second := mk()
	if !has(second, "xyz") || reg.bootstrapHits() != 1 {
		t.Fatalf("second client fetched (hits %d)", reg.bootstrapHits())
	}

	// Past the max age, the cache is refreshed (and so is memory).
	clk.Advance(24 * time.Hour)
	third := mk()
	if !has(third, "com") || reg.bootstrapHits() != 2 {
		t.Fatalf("stale cache not refreshed (hits %d)", reg.bootstrapHits())
	}
	if !has(first, "com") || reg.bootstrapHits() != 3 {
		t.Fatalf("stale memory copy not refreshed (hits %d)", reg.bootstrapHits())
	}

	// A failed refresh falls back on the stale cache, with a warning, and
	// is not retried on every lookup.
	clk.Advance(25 * time.Hour)
	reg.mu.Lock()
	reg.bootstrapErr = true
	reg.mu.Unlock()
	fourth := mk()
	if !has(fourth, "com") {
		t.Fatal("stale cache not used")
	}
	if !has(fourth, "no") || reg.bootstrapHits() != 4 {
		t.Fatalf("failed refresh retried at once (hits %d)", reg.bootstrapHits())
	}
	logMu.Lock()
	if !strings.Contains(logs.String(), "using stale copy") {
		t.Errorf("no warning logged: %s", logs.String())
	}
	logMu.Unlock()
	clk.Advance(bootstrapRetryDelay)
	has(fourth, "com")
	if reg.bootstrapHits() != 5 {
		t.Fatalf("refresh not retried after the delay (hits %d)", reg.bootstrapHits())
	}

	// Without any copy, a failed fetch is an error (and auto-style callers
	// get no answer rather than a guess).
	fresh := reg.client(t, clk, nil)
	if _, err := fresh.HasService(ctx, "com"); err == nil {
		t.Fatal("no error without bootstrap")
	}
	_, err := fresh.Lookup(ctx, "example.com", nil)
	if err == nil || checker.IsPermanent(err) {
		t.Fatalf("Lookup without bootstrap: %v", err)
	}
}

func TestBootstrapConcurrentLoadFetchesOnce(t *testing.T) {
	reg := newRegistry(t)
	c := reg.client(t, clock.NewStub(testNow), nil)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if ok, err := c.HasService(context.Background(), "com"); !ok || err != nil {
				t.Errorf("HasService = %v, %v", ok, err)
			}
		}()
	}
	wg.Wait()
	if n := reg.bootstrapHits(); n != 1 {
		t.Fatalf("bootstrap fetched %d times", n)
	}
}

func TestBootstrapCorruptCacheIsRefetched(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "dns.json"), []byte("{garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	reg := newRegistry(t)
	c := reg.client(t, clock.NewStub(testNow), func(cfg *Config) { cfg.CacheDir = dir })
	if ok, err := c.HasService(context.Background(), "com"); !ok || err != nil {
		t.Fatalf("HasService = %v, %v", ok, err)
	}
	if reg.bootstrapHits() != 1 {
		t.Fatal("not refetched")
	}
}

func TestConfigValidate(t *testing.T) {
	for _, cfg := range []Config{
		{BootstrapURL: "ftp://example.test/dns.json"},
		{Overrides: map[string]string{"test": "not a url"}},
		{Overrides: map[string]string{"": "https://rdap.example.test/"}},
		{Canaries: map[string]string{"test": "nodot"}},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
	c, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	canary := func(suffix string) string { name, _ := c.canaryFor(suffix); return name }
	if c.Name() != "rdap" || c.cfg.BootstrapURL != DefaultBootstrapURL ||
		c.cfg.BootstrapMaxAge != 24*time.Hour || c.cfg.HTTPClient.Timeout != 15*time.Second ||
		canary("com") != "verisign.com" || canary("org") != "pir.org" || canary("xyz") != "nic.xyz" || canary("ac.uk") != "" {
		t.Errorf("defaults: %+v", c.cfg)
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestRateKeyIsTheServerHost(t *testing.T) {
	r := newRegistry(t, "com")
	c := r.client(t, clock.NewStub(testNow), func(cfg *Config) {
		cfg.Overrides = map[string]string{"io": "https://rdap.nic.io.example/"}
	})
	// Before the bootstrap is loaded, only overrides are known.
	if got := c.RateKey("example.com"); got != ProviderName {
		t.Errorf("before load: RateKey = %q, want %q", got, ProviderName)
	}
	if got := c.RateKey("example.io"); got != "rdap.nic.io.example" {
		t.Errorf("override: RateKey = %q", got)
	}
	if _, err := c.HasService(context.Background(), "com"); err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(r.srv.URL, "https://")
	if got := c.RateKey("example.com"); got != host {
		t.Errorf("after load: RateKey = %q, want %q", got, host)
	}
	if got := c.RateKey("example.zz"); got != ProviderName {
		t.Errorf("no service: RateKey = %q, want %q", got, ProviderName)
	}
}

// TestOverrideCredentials: an override URL with userinfo is used for basic
// auth, but the credentials appear neither in the evidence (stored and
// published) nor in the error of a failed lookup.
func TestOverrideCredentials(t *testing.T) {
	var gotUser, gotPass string
	override := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotUser, gotPass, _ = r.BasicAuth()
		w.Write(readFixture(t, "active-com.json"))
	}))
	defer override.Close()
	withCreds := strings.Replace(override.URL, "http://", "http://ovuser:ovpass@", 1) + "/v1"
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close() // nothing listens there any more
	deadWithCreds := strings.Replace(dead.URL, "http://", "http://deaduser:deadpass@", 1)
	c, err := New(Config{Overrides: map[string]string{"com": withCreds, "net": deadWithCreds}, Clock: clock.NewStub(testNow),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	obs, err := c.Lookup(context.Background(), "example-active.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	if gotUser != "ovuser" || gotPass != "ovpass" {
		t.Errorf("override got basic auth %q:%q, want the URL's userinfo", gotUser, gotPass)
	}
	blob, _ := json.Marshal(obs)
	if strings.Contains(string(blob), "ovuser") || strings.Contains(string(blob), "ovpass") {
		t.Errorf("evidence holds the credentials: %s", blob)
	}
	if obs.Evidence.Server != override.URL+"/v1/" {
		t.Errorf("evidence server %q, want %q", obs.Evidence.Server, override.URL+"/v1/")
	}
	_, err = c.Lookup(context.Background(), "example.net", nil)
	if err == nil || strings.Contains(err.Error(), "deaduser") || strings.Contains(err.Error(), "deadpass") {
		t.Errorf("lookup error = %v; want one without the credentials", err)
	}
}
