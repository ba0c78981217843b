package rdap

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/domainguard/domainguard/checker"
	"github.com/domainguard/domainguard/internal/fakerdap"
	"github.com/domainguard/domainguard/lifecycle"
)

// The RDAP bootstrap and redirects must not aim lookups at loopback,
// private or link-local addresses the operator did not name
// (DOMAINGUARD_ALLOW_PRIVATE_LOOKUPS); the bootstrap URL and the overrides
// are the operator's and always reached.
func TestPrivateLookupsGuard(t *testing.T) {
	fr := fakerdap.New(t) // https://127.0.0.1:port
	frURL, err := url.Parse(fr.URL())
	if err != nil {
		t.Fatal(err)
	}
	port := frURL.Port()
	// redirector is an override that sends every lookup on to fr.
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, fr.URL()+strings.TrimPrefix(r.URL.Path, "/"), http.StatusFound)
	}))
	t.Cleanup(redirector.Close)

	for _, tc := range []struct {
		name      string
		bootstrap string // URL, or a service base written into a seeded file
		overrides map[string]string
		allow     bool
		refused   bool // else the lookup reaches fr and answers active
	}{
		{name: "bootstrap entry on 127.0.0.1", bootstrap: fr.URL(), refused: true},
		{name: "bootstrap entry named localhost", bootstrap: "https://localhost:" + port + "/", refused: true},
		{name: "bootstrap entry on 127.0.0.1, private lookups allowed", bootstrap: fr.URL(), allow: true},
		{name: "operator override on 127.0.0.1", bootstrap: "https://rdap.invalid/", overrides: map[string]string{"com": fr.URL()}},
		{name: "redirect from an operator override to a loopback server not named", bootstrap: "https://rdap.invalid/",
			overrides: map[string]string{"com": redirector.URL}, refused: true},
		{name: "bootstrap URL on 127.0.0.1 listing that same server", bootstrap: "url:" + fr.BootstrapURL()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Overrides: tc.overrides, AllowPrivateLookups: tc.allow, CacheDir: t.TempDir()}
			if u, ok := strings.CutPrefix(tc.bootstrap, "url:"); ok {
				cfg.BootstrapURL = u
			} else {
				cfg.BootstrapURL = fakerdap.WriteBootstrapFile(t, tc.bootstrap, "com")
			}
			c, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			// The default (guarded) client, trusting the fake's certificate.
			c.cfg.HTTPClient.Transport.(*http.Transport).TLSClientConfig = fr.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
			before := fr.Lookups("guarded.com")
			obs, err := c.Lookup(context.Background(), "guarded.com", nil)
			reached := fr.Lookups("guarded.com") - before
			if !tc.refused {
				if err != nil || obs.Phase != lifecycle.PhaseActive || reached != 1 {
					t.Fatalf("lookup = %s, %v (%d requests reached the server), want active", obs.Phase, err, reached)
				}
				return
			}
			if err == nil || obs.Phase != lifecycle.PhaseUnknown || reached != 0 {
				t.Fatalf("lookup = %s, %v (%d requests reached the server), want refused: an error, phase unknown, nothing sent",
					obs.Phase, err, reached)
			}
			if tc.overrides != nil {
				return // refused by the same-host redirect rule before any dial
			}
			if !errors.Is(err, checker.ErrLookupRefused) {
				t.Errorf("error %v does not wrap checker.ErrLookupRefused", err)
			}
			for _, want := range []string{"loopback", "DOMAINGUARD_ALLOW_PRIVATE_LOOKUPS", port} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
		})
	}
}
