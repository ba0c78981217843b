package domainr

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
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

const (
	secretClientID = "cid-SECRET-1234"
	secretRapidKey = "rapid-SECRET-5678"
	secretFastly   = "fastly-SECRET-9012"
)

// fakeAPI answers every request with a fixed status, headers and body, and
// records the requests.
type fakeAPI struct {
	t      *testing.T
	srv    *httptest.Server
	status int
	header map[string]string
	body   string

	mu   sync.Mutex
	reqs []*http.Request
}

func newFakeAPI(t *testing.T, status int, body string, header map[string]string) *fakeAPI {
	f := &fakeAPI{t: t, status: status, body: body, header: header}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.reqs = append(f.reqs, r.Clone(context.Background()))
		f.mu.Unlock()
		for k, v := range f.header {
			w.Header().Set(k, v)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(f.status)
		io.WriteString(w, f.body)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAPI) lastRequest() *http.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.reqs) == 0 {
		f.t.Fatal("no request made")
	}
	return f.reqs[len(f.reqs)-1]
}

func newClient(t *testing.T, kind, base string) *Client {
	t.Helper()
	cfg := Config{Kind: kind, BaseURL: base, Clock: clock.NewStub(testNow)}
	switch kind {
	case KindFastly:
		cfg.FastlyKey = secretFastly
	default:
		cfg.ClientID = secretClientID
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func domainrBody(domain, status string) string {
	return fmt.Sprintf(`{"status":[{"domain":%q,"zone":"com","status":%q,"summary":"x"}]}`, domain, status)
}

func fastlyBody(domain, status string) string {
	return fmt.Sprintf(`{"domain":%q,"zone":"com","status":%q,"tags":"generic","scope":"tld"}`, domain, status)
}

// tokenCases covers the token combinations of DESIGN.md §2.
var tokenCases = []struct {
	status string
	phase  lifecycle.Phase
}{
	{"active", lifecycle.PhaseActive},
	{"undelegated active", lifecycle.PhaseActive},
	{"active parked", lifecycle.PhaseActive},
	{"marketed active", lifecycle.PhaseActive},
	{"active priced transferable", lifecycle.PhaseActive},
	{"expiring", lifecycle.PhaseRedemption},
	{"active expiring", lifecycle.PhaseRedemption},
	{"deleting", lifecycle.PhasePendingDelete},
	{"active deleting", lifecycle.PhasePendingDelete},
	{"inactive", lifecycle.PhaseUnknown}, // released only when the parent zone agrees
	{"undelegated inactive", lifecycle.PhaseUnknown},
	{"Undelegated  INACTIVE", lifecycle.PhaseUnknown},
	// Names nobody can register: never released.
	{"inactive reserved", lifecycle.PhaseUnknown},
	{"inactive dpml", lifecycle.PhaseUnknown},
	{"claimed", lifecycle.PhaseUnknown},
	{"inactive active", lifecycle.PhaseActive},
	{"unknown", lifecycle.PhaseUnknown},
	{"undelegated", lifecycle.PhaseUnknown},
	{"inactive invalid", lifecycle.PhaseUnknown},
	{"disallowed inactive", lifecycle.PhaseUnknown},
	{"zone inactive", lifecycle.PhaseUnknown},
	{"reserved", lifecycle.PhaseUnknown},
}

func TestLookupTokens(t *testing.T) {
	for _, kind := range []string{KindDomainr, KindFastly} {
		for _, tc := range tokenCases {
			t.Run(kind+"/"+tc.status, func(t *testing.T) {
				body := domainrBody("example.com", tc.status)
				if kind == KindFastly {
					body = fastlyBody("example.com", tc.status)
				}
				api := newFakeAPI(t, http.StatusOK, body, nil)
				c := newClient(t, kind, api.srv.URL)
				obs, err := c.Lookup(context.Background(), "Example.COM", nil)
				if err != nil {
					t.Fatalf("Lookup: %v", err)
				}
				if obs.Phase != tc.phase {
					t.Errorf("phase = %s, want %s (detail %q)", obs.Phase, tc.phase, obs.Evidence.Detail)
				}
				want := strings.Fields(strings.ToLower(tc.status))
				if !slices.Equal(obs.Evidence.Statuses, want) {
					t.Errorf("statuses = %q, want %q", obs.Evidence.Statuses, want)
				}
				ev := obs.Evidence
				if obs.Domain != "example.com" || ev.Provider != kind || ev.Server != api.srv.URL || !ev.ObservedAt.Equal(testNow) {
					t.Errorf("observation %+v", obs)
				}
				if ev.NotFound {
					t.Error("NotFound set by a token provider")
				}
				if (obs.Phase == lifecycle.PhaseUnknown) != (ev.Detail != "") {
					t.Errorf("detail %q for phase %s", ev.Detail, obs.Phase)
				}
			})
		}
	}
}

func TestRequests(t *testing.T) {
	t.Run("domainr client_id", func(t *testing.T) {
		api := newFakeAPI(t, 200, domainrBody("example.com", "active"), nil)
		c := newClient(t, KindDomainr, api.srv.URL+"/")
		if _, err := c.Lookup(context.Background(), "example.com", nil); err != nil {
			t.Fatal(err)
		}
		r := api.lastRequest()
		if r.URL.Path != "/v2/status" || r.URL.Query().Get("domain") != "example.com" ||
			r.URL.Query().Get("client_id") != secretClientID || r.Header.Get("X-RapidAPI-Key") != "" {
			t.Errorf("request %s %v", r.URL, r.Header)
		}
	})
	t.Run("domainr rapidapi", func(t *testing.T) {
		api := newFakeAPI(t, 200, domainrBody("example.com", "active"), nil)
		c, err := New(Config{Kind: KindDomainr, BaseURL: api.srv.URL, RapidAPIKey: secretRapidKey})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Lookup(context.Background(), "example.com", nil); err != nil {
			t.Fatal(err)
		}
		r := api.lastRequest()
		if r.URL.Query().Has("client_id") || r.Header.Get("X-RapidAPI-Key") != secretRapidKey ||
			r.Header.Get("mashape-key") != secretRapidKey || r.Header.Get("X-RapidAPI-Host") != r.Host {
			t.Errorf("request %s %v", r.URL, r.Header)
		}
	})
	t.Run("fastly", func(t *testing.T) {
		api := newFakeAPI(t, 200, fastlyBody("example.com", "active"), nil)
		c := newClient(t, KindFastly, api.srv.URL)
		if _, err := c.Lookup(context.Background(), "example.com", nil); err != nil {
			t.Fatal(err)
		}
		r := api.lastRequest()
		if r.URL.Path != "/domain-management/v1/tools/status" || r.URL.Query().Get("domain") != "example.com" ||
			r.Header.Get("Fastly-Key") != secretFastly || r.URL.Query().Has("client_id") {
			t.Errorf("request %s %v", r.URL, r.Header)
		}
	})
}

func TestLookupFailures(t *testing.T) {
	tests := []struct {
		name       string
		kind       string
		status     int
		body       string
		header     map[string]string
		temporary  bool
		retryAfter time.Duration
		errHas     string
	}{
		{"domainr 401", KindDomainr, 401, `{"message":"Invalid API key"}`, nil, false, 0, "credentials rejected"},
		{"fastly 401", KindFastly, 401, `{"msg":"Provided credentials are missing or invalid"}`, nil, false, 0, "credentials rejected"},
		{"domainr 403", KindDomainr, 403, `{"message":"You are not subscribed to this API."}`, nil, false, 0, "credentials rejected"},
		{"domainr 429 seconds", KindDomainr, 429, `{"errors":[{"code":429,"message":"Too Many Requests"}]}`, map[string]string{"Retry-After": "30"}, true, 30 * time.Second, "Too Many Requests"},
		{"fastly 429 date", KindFastly, 429, `{"msg":"rate limited"}`, map[string]string{"Retry-After": testNow.Add(2 * time.Minute).Format(http.TimeFormat)}, true, 2 * time.Minute, "Too Many Requests"},
		{"fastly 503", KindFastly, 503, ``, map[string]string{"Retry-After": "5"}, true, 5 * time.Second, "Service Unavailable"},
		{"domainr 500", KindDomainr, 500, `oops`, nil, true, 0, "Internal Server Error"},
		{"domainr 400", KindDomainr, 400, `{"errors":[{"code":400,"message":"Invalid domain","detail":"bad name"}]}`, nil, false, 0, "Invalid domain"},
		{"fastly 404", KindFastly, 404, `{"msg":"Record not found"}`, nil, false, 0, "endpoint not found"},
		{"domainr 200 with transient error", KindDomainr, 200, `{"errors":[{"code":503,"message":"Service unavailable","detail":"backend timeout"}]}`, nil, true, 0, "backend timeout"},
		{"domainr 200 with invalid domain", KindDomainr, 200, `{"errors":[{"code":400,"message":"Invalid domain name","detail":"example.com"}]}`, nil, false, 0, "Invalid domain name"},
		{"domainr 200 with unsupported zone", KindDomainr, 200, `{"errors":[{"code":"422","message":"Unsupported zone"}]}`, nil, false, 0, "Unsupported zone"},
		{"domainr 200 with credentials error", KindDomainr, 200, `{"errors":[{"code":403,"message":"Invalid client_id"}]}`, nil, false, 0, "credentials rejected"},
		{"rapidapi 200 with message", KindDomainr, 200, `{"message":"You are not subscribed to this API."}`, nil, false, 0, "credentials rejected"},
		{"fastly 200 with errors", KindFastly, 200, `{"errors":[{"title":"Internal error","detail":"try later"}]}`, nil, true, 0, "Internal error: try later"},
		{"fastly 200 with msg", KindFastly, 200, `{"msg":"Bad request","detail":"Invalid domain"}`, nil, false, 0, "Invalid domain"},
		{"domainr 418", KindDomainr, 418, ``, nil, true, 0, "teapot"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := newFakeAPI(t, tt.status, tt.body, tt.header)
			c := newClient(t, tt.kind, api.srv.URL)
			obs, err := c.Lookup(context.Background(), "example.com", nil)
			var le *checker.LookupError
			if !errors.As(err, &le) {
				t.Fatalf("err = %v, obs %+v; want *checker.LookupError", err, obs)
			}
			if le.Temporary != tt.temporary || checker.IsPermanent(err) == tt.temporary {
				t.Errorf("temporary = %v, want %v (%v)", le.Temporary, tt.temporary, err)
			}
			if got := checker.RetryAfter(err); got != tt.retryAfter {
				t.Errorf("RetryAfter = %v, want %v", got, tt.retryAfter)
			}
			if le.StatusCode != tt.status || le.Provider != tt.kind || le.Domain != "example.com" {
				t.Errorf("error fields %+v", le)
			}
			if !strings.Contains(err.Error(), tt.errHas) {
				t.Errorf("error %q lacks %q", err, tt.errHas)
			}
			assertNoSecret(t, err.Error())
			if obs.Phase != lifecycle.PhaseUnknown {
				t.Errorf("error path produced phase %s", obs.Phase)
			}
		})
	}
}

func TestUnparseableAnswerIsUnknown(t *testing.T) {
	for _, tt := range []struct{ kind, body string }{
		{KindDomainr, `<html>maintenance</html>`},
		{KindDomainr, `{"status":[{"domain":"other.com","status":"inactive"}]}`},
		{KindDomainr, `{"status":[{"domain":"example.com","status":""}]}`},
		{KindDomainr, `{"status":[{"domain":"example.com","status":"ina`},
		{KindFastly, `{"domain":"other.com","status":"inactive"}`},
		{KindFastly, `{"domain":"example.com"}`},
		{KindFastly, `[]`},
	} {
		api := newFakeAPI(t, 200, tt.body, nil)
		c := newClient(t, tt.kind, api.srv.URL)
		obs, err := c.Lookup(context.Background(), "example.com", nil)
		if err != nil {
			t.Errorf("%s %q: err %v", tt.kind, tt.body, err)
			continue
		}
		if obs.Phase != lifecycle.PhaseUnknown || !strings.Contains(obs.Evidence.Detail, "unparseable") {
			t.Errorf("%s %q: phase %s detail %q", tt.kind, tt.body, obs.Phase, obs.Evidence.Detail)
		}
	}
}

func TestNetworkErrorRedactsCredentials(t *testing.T) {
	api := newFakeAPI(t, 200, "", nil)
	base := api.srv.URL
	api.srv.Close()
	c := newClient(t, KindDomainr, base)
	_, err := c.Lookup(context.Background(), "example.com", nil)
	if err == nil || checker.IsPermanent(err) {
		t.Fatalf("err = %v, want temporary", err)
	}
	assertNoSecret(t, err.Error())
	if !strings.Contains(err.Error(), base+"/v2/status") {
		t.Errorf("error %q does not name the endpoint", err)
	}

	// Redirects are refused (they would carry the key elsewhere).
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("redirect followed")
	}))
	defer other.Close()
	redir := httptest.NewServer(http.RedirectHandler(other.URL, http.StatusFound))
	defer redir.Close()
	c = newClient(t, KindDomainr, redir.URL)
	_, err = c.Lookup(context.Background(), "example.com", nil)
	if err == nil {
		t.Fatal("redirect accepted")
	}
	assertNoSecret(t, err.Error())
}

func TestInvalidNameIsPermanent(t *testing.T) {
	api := newFakeAPI(t, 200, domainrBody("x", "active"), nil)
	c := newClient(t, KindDomainr, api.srv.URL)
	for _, name := range []string{"", "com", "a&client_id=x.com", "a b.com"} {
		if _, err := c.Lookup(context.Background(), name, nil); !checker.IsPermanent(err) {
			t.Errorf("Lookup(%q) err = %v, want permanent", name, err)
		}
	}
}

func TestConfig(t *testing.T) {
	for _, cfg := range []Config{
		{},
		{Kind: "whois", ClientID: "x"},
		{Kind: KindDomainr},
		{Kind: KindFastly, ClientID: "x"},
		{Kind: KindFastly, FastlyKey: "k", BaseURL: "ftp://x"},
	} {
		_, err := New(cfg)
		if err == nil {
			t.Errorf("New(%+v) accepted", cfg)
			continue
		}
		assertNoSecret(t, err.Error())
	}
	for _, tt := range []struct {
		cfg  Config
		base string
	}{
		{Config{Kind: KindDomainr, ClientID: "x"}, DefaultDomainrURL},
		{Config{Kind: "Domainr", RapidAPIKey: "x"}, DefaultRapidAPIURL},
		{Config{Kind: KindFastly, FastlyKey: "x"}, DefaultFastlyURL},
	} {
		c, err := New(tt.cfg)
		if err != nil {
			t.Fatal(err)
		}
		if c.cfg.BaseURL != tt.base || c.Name() != strings.ToLower(tt.cfg.Kind) {
			t.Errorf("%+v: base %q name %q", tt.cfg, c.cfg.BaseURL, c.Name())
		}
	}
}

func assertNoSecret(t *testing.T, s string) {
	t.Helper()
	for _, secret := range []string{secretClientID, secretRapidKey, secretFastly} {
		if strings.Contains(s, secret) {
			t.Errorf("secret leaked in %q", s)
		}
	}
}
