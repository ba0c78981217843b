package rdap

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestKnownServicesTableParses(t *testing.T) {
	m, err := ParseKnownServices(knownServicesTSV)
	if err != nil {
		t.Fatal(err)
	}
	for _, tld := range []string{"de", "io", "me", "sh", "ac", "ch", "li", "co", "us"} {
		k, ok := m[tld]
		if !ok || !strings.HasPrefix(k.Base, "https://") || k.Source == "" {
			t.Errorf(".%s: %+v (listed %v)", tld, k, ok)
		}
	}
	for _, bad := range []string{
		"de\thttp://rdap.denic.de/\tsource",                    // not https
		"de\thttps://rdap.denic.de\tsource",                    // no trailing slash
		"de\thttps://rdap.denic.de/\t",                         // no source
		"de\thttps://rdap.denic.de/",                           // two fields
		"de\thttps://a.example/\ts\nde\thttps://b.example/\ts", // twice
	} {
		if _, err := ParseKnownServices(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestKnownServicesAfterBootstrapBeforeOverrides(t *testing.T) {
	var srv *httptest.Server
	srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The bootstrap lists .io (pretend IANA added it) and .com.
		json.NewEncoder(w).Encode(map[string]any{"version": "1.0",
			"services": [][][]string{{{"com", "io"}, {srv.URL + "/"}}}})
	}))
	t.Cleanup(srv.Close)
	c, err := New(Config{BootstrapURL: srv.URL + "/dns.json", HTTPClient: srv.Client(),
		Overrides: map[string]string{"ch": "https://rdap.example.ch/"},
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for tld, want := range map[string]string{
		"com": srv.URL + "/",              // bootstrap
		"io":  srv.URL + "/",              // bootstrap wins over the table
		"de":  "https://rdap.denic.de/",   // the table fills the gap
		"ch":  "https://rdap.example.ch/", // an override wins over the table
		"me":  knownServices["me"].Base,   // table
	} {
		got, ok, err := c.baseURL(ctx, tld)
		if err != nil || !ok || got != want {
			t.Errorf(".%s: %q %v %v, want %q", tld, got, ok, err, want)
		}
	}
	if _, ok, _ := c.baseURL(ctx, "eu"); ok {
		t.Error(".eu has no RDAP service anywhere")
	}
	if got := c.RateKey("example.de"); got != "rdap.denic.de" {
		t.Errorf("rate key of a table TLD = %q", got)
	}
}
