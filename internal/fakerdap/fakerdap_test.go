package fakerdap

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/domainguard/domainguard/internal/clock"
	"github.com/domainguard/domainguard/lifecycle"
)

type rdapDomain struct {
	ObjectClassName string   `json:"objectClassName"`
	LDHName         string   `json:"ldhName"`
	Handle          string   `json:"handle"`
	Status          []string `json:"status"`
	Events          []struct {
		EventAction string `json:"eventAction"`
		EventDate   string `json:"eventDate"`
	} `json:"events"`
	Nameservers []struct {
		LDHName string `json:"ldhName"`
	} `json:"nameservers"`
	ErrorCode int `json:"errorCode"`
}

func get(t *testing.T, c *http.Client, url string) (*http.Response, []byte) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s: %v", url, err)
	}
	return resp, body
}

func lookup(t *testing.T, s *Server, domain string) (int, rdapDomain, http.Header) {
	t.Helper()
	resp, body := get(t, s.Client(), s.URL()+"domain/"+domain)
	var d rdapDomain
	if resp.StatusCode == http.StatusOK && json.Valid(body) {
		if err := json.Unmarshal(body, &d); err != nil {
			t.Fatalf("decode %s: %v", body, err)
		}
	}
	return resp.StatusCode, d, resp.Header
}

func eventDate(t *testing.T, d rdapDomain, action string) time.Time {
	t.Helper()
	for _, e := range d.Events {
		if e.EventAction == action {
			at, err := time.Parse(time.RFC3339, e.EventDate)
			if err != nil {
				t.Fatalf("event %s date %q: %v", action, e.EventDate, err)
			}
			return at
		}
	}
	return time.Time{}
}

func TestBootstrapListsItself(t *testing.T) {
	s := New(t)
	resp, body := get(t, s.Client(), s.BootstrapURL())
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	var b struct {
		Services [][][]string `json:"services"`
	}
	if err := json.Unmarshal(body, &b); err != nil {
		t.Fatal(err)
	}
	if len(b.Services) != 1 || !slices.Equal(b.Services[0][0], DefaultTLDs) || b.Services[0][1][0] != s.URL() {
		t.Fatalf("bootstrap = %s", body)
	}
	if s.URL()[:8] != "https://" {
		t.Errorf("URL %s is not https", s.URL())
	}
	if s.BootstrapFetches() != 1 {
		t.Errorf("BootstrapFetches = %d", s.BootstrapFetches())
	}
	if got := s.Overrides()["example"]; got != s.URL() {
		t.Errorf("Overrides[example] = %q", got)
	}
}

func TestPhases(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	s := NewWithOptions(t, Options{Clock: clock.NewStub(now), PlainHTTP: true, TLDs: []string{"test"}})
	if s.CACertPEM() != nil {
		t.Error("plain server has a certificate")
	}
	tests := []struct {
		phase        lifecycle.Phase
		wantHTTP     int
		wantStatuses []string
		expiredDays  int // expiration relative to now, in days (negative: future)
	}{
		{"", 200, []string{"active", "client delete prohibited", "client transfer prohibited"}, -365},
		{lifecycle.PhaseActive, 200, []string{"active", "client delete prohibited", "client transfer prohibited"}, -365},
		{lifecycle.PhaseGrace, 200, []string{"auto renew period"}, 5},
		{lifecycle.PhaseExpired, 200, []string{"auto renew period", "client hold"}, 10},
		{lifecycle.PhaseRedemption, 200, []string{"redemption period", "pending delete"}, 40},
		{lifecycle.PhasePendingDelete, 200, []string{"pending delete"}, 75},
		{lifecycle.PhaseReleased, 404, nil, 0},
		{lifecycle.PhaseUnknown, 200, nil, 0},
	}
	for _, tc := range tests {
		t.Run(string(tc.phase), func(t *testing.T) {
			name := "x" + string(tc.phase) + ".test"
			s.Set(name, Answer{Phase: tc.phase})
			code, d, hdr := lookup(t, s, name)
			if code != tc.wantHTTP {
				t.Fatalf("HTTP %d, want %d", code, tc.wantHTTP)
			}
			if code != 200 {
				return
			}
			if tc.phase == lifecycle.PhaseUnknown {
				if d.LDHName != "" {
					t.Fatalf("unknown phase served an RDAP object")
				}
				return
			}
			if hdr.Get("Content-Type") != "application/rdap+json" {
				t.Errorf("content type %q", hdr.Get("Content-Type"))
			}
			if d.ObjectClassName != "domain" || d.LDHName != name || d.Handle == "" || len(d.Nameservers) != 2 {
				t.Errorf("object = %+v", d)
			}
			if !slices.Equal(d.Status, tc.wantStatuses) {
				t.Errorf("statuses = %q, want %q", d.Status, tc.wantStatuses)
			}
			exp := eventDate(t, d, "expiration")
			if got := int(now.Sub(exp).Round(24*time.Hour) / (24 * time.Hour)); got != tc.expiredDays {
				t.Errorf("expired %d days ago, want %d (expiration %s)", got, tc.expiredDays, exp)
			}
			if eventDate(t, d, "registration").IsZero() {
				t.Error("no registration event")
			}
		})
	}
}

func TestStableEvidenceAndOverrides(t *testing.T) {
	s := New(t)
	_, first, _ := lookup(t, s, "stable.com")
	_, again, _ := lookup(t, s, "stable.com")
	if !slices.Equal(first.Status, again.Status) || first.Handle != again.Handle ||
		!eventDate(t, first, "expiration").Equal(eventDate(t, again, "expiration")) {
		t.Errorf("default answer changed between lookups: %+v vs %+v", first, again)
	}
	reg := time.Date(2020, 2, 2, 0, 0, 0, 0, time.UTC)
	s.Set("Custom.COM", Answer{Statuses: []string{"server hold"}, Handle: "H1", RegisteredAt: reg, Nameservers: []string{"a.ns.test"}})
	_, d, _ := lookup(t, s, "custom.com")
	if d.Handle != "H1" || !slices.Equal(d.Status, []string{"server hold"}) || !eventDate(t, d, "registration").Equal(reg) ||
		len(d.Nameservers) != 1 || d.Nameservers[0].LDHName != "a.ns.test" {
		t.Errorf("custom answer = %+v", d)
	}
	if s.Lookups("stable.com") != 2 || s.Lookups("CUSTOM.com") != 1 || s.TotalLookups() != 3 {
		t.Errorf("lookups: stable %d custom %d total %d", s.Lookups("stable.com"), s.Lookups("custom.com"), s.TotalLookups())
	}
}

func TestFailuresThenAnswer(t *testing.T) {
	s := New(t)
	s.Set("flaky.com", Answer{FailTimes: 3, RetryAfter: 1500 * time.Millisecond})
	for i := range 3 {
		code, _, hdr := lookup(t, s, "flaky.com")
		if code != http.StatusServiceUnavailable || hdr.Get("Retry-After") != "2" {
			t.Fatalf("request %d: HTTP %d Retry-After %q", i, code, hdr.Get("Retry-After"))
		}
	}
	if code, d, _ := lookup(t, s, "flaky.com"); code != 200 || d.LDHName != "flaky.com" {
		t.Fatalf("after failures: HTTP %d %+v", code, d)
	}
	s.Set("limited.com", Answer{Status: http.StatusTooManyRequests})
	for range 2 {
		if code, _, _ := lookup(t, s, "limited.com"); code != http.StatusTooManyRequests {
			t.Fatalf("HTTP %d, want 429 every time", code)
		}
	}
	s.SetDefault(Answer{Status: http.StatusInternalServerError})
	if code, _, _ := lookup(t, s, "other.net"); code != 500 {
		t.Errorf("failing default: HTTP %d", code)
	}
	for _, canary := range []string{"verisign.com", "verisign.net", "pir.org", "nic.example"} {
		if !s.IsCanary(canary) {
			t.Errorf("%s is not a canary", canary)
		}
		if code, d, _ := lookup(t, s, canary); code != 200 || d.LDHName != canary {
			t.Errorf("canary %s: HTTP %d", canary, code)
		}
	}
	s.Set("verisign.com", Answer{NotFound: true})
	if code, _, _ := lookup(t, s, "verisign.com"); code != 404 {
		t.Errorf("canary set to not found: HTTP %d", code)
	}
}

func TestDelayHonoursCancel(t *testing.T) {
	s := New(t)
	s.Set("slow.com", Answer{Delay: 10 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL()+"domain/slow.com", nil)
	start := time.Now()
	_, err := s.Client().Do(req)
	if err == nil {
		t.Fatal("slow answer arrived before the deadline")
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("request took %s", time.Since(start))
	}
	s.Set("slowish.com", Answer{Delay: 50 * time.Millisecond})
	start = time.Now()
	if code, _, _ := lookup(t, s, "slowish.com"); code != 200 || time.Since(start) < 50*time.Millisecond {
		t.Errorf("HTTP %d after %s", code, time.Since(start))
	}
}

func TestConcurrentLookupsCounted(t *testing.T) {
	s := New(t)
	s.Set("busy.com", Answer{FailTimes: 5})
	var wg sync.WaitGroup
	codes := make(chan int, 20)
	for range 20 {
		wg.Go(func() {
			resp, err := s.Client().Get(s.URL() + "domain/busy.com")
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		})
	}
	wg.Wait()
	close(codes)
	failed := 0
	for c := range codes {
		if c == http.StatusServiceUnavailable {
			failed++
		}
	}
	if failed != 5 || s.Lookups("busy.com") != 20 {
		t.Errorf("failed %d (want 5), lookups %d (want 20)", failed, s.Lookups("busy.com"))
	}
}
