// Package fakerdap is a scriptable RDAP server (RFC 9082/9083) and IANA
// DNS bootstrap (RFC 9224) for tests across the repository: the checker,
// end-to-end tests, deployment smoke tests and benchmarks. It never reaches
// the internet.
//
// A Server answers GET /domain/<name> from per-domain Answers set with Set,
// falling back to a default answer (registered and active, expiring a year
// after the server started). It serves GET /bootstrap/dns.json mapping its
// TLDs (default com, net, org, test, example) to itself. The canary names
// the RDAP client uses to confirm a 404 (the registry profiles' canaries
// for its TLDs: verisign.com, pir.org, nic.<tld>, ...) are always
// registered unless a test Sets them otherwise. Lookups are counted per domain.
//
// The server speaks HTTPS by default, because the RDAP client only takes
// https URLs from a bootstrap file: give the client Server.Client() (or,
// for a separate binary, point SSL_CERT_FILE at a file written with
// WriteCACert). With Options.PlainHTTP it speaks HTTP; the client then
// needs Server.Overrides() as its per-TLD overrides.
//
// All methods are safe for concurrent use.
package fakerdap

import (
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/domainguard/domainguard/internal/clock"
	"github.com/domainguard/domainguard/lifecycle"
)

// Answer scripts what the server says about one domain.
//
// The simplest answer names a Phase; the server then invents the RDAP
// statuses and dates typical for it (relative to the time of Set):
//   - active: "active" + transfer prohibitions, expiring in a year;
//   - grace: "auto renew period", expired 5 days ago;
//   - expired: "auto renew period" + "client hold", expired 10 days ago;
//   - redemption: "redemption period" + "pending delete", expired 40 days ago;
//   - pending_delete: "pending delete", expired 75 days ago;
//   - released: 404 Not Found;
//   - unknown: a 200 answer that is not RDAP (an HTML page).
//
// Explicit fields override the invented ones. Zero Answer{} is the
// default active answer.
type Answer struct {
	// Phase is a shortcut for typical statuses and dates (see above).
	Phase lifecycle.Phase
	// Statuses are the RDAP status values to serve (overrides Phase's).
	Statuses []string
	// RegisteredAt and ExpiresAt override the invented dates. The
	// registration date defaults to the server's fixed one, so repeated
	// answers carry the same evidence.
	RegisteredAt, ExpiresAt time.Time
	// Handle is the registry handle; default derived from the name.
	Handle string
	// RegistrarIANAID defaults to "9999".
	RegistrarIANAID string
	// Nameservers default to ns1/ns2.fakedns.test.
	Nameservers []string
	// NotFound answers 404 (what a released name gets).
	NotFound bool
	// Body, when set, is served verbatim with status 200 (for quirky or
	// malformed answers).
	Body string

	// Status is an HTTP status to fail with (e.g. 503, 429, 500, 400).
	// With FailTimes 0 every request fails; with FailTimes n the first n
	// requests fail and later ones get the answer.
	Status int
	// FailTimes is how many requests fail before the answer is served;
	// Status defaults to 503 when FailTimes is set.
	FailTimes int
	// RetryAfter is sent as a Retry-After header (whole seconds, at least
	// 1) with failures.
	RetryAfter time.Duration
	// Delay is how long the server waits before answering (or failing).
	Delay time.Duration
}

// DefaultTLDs are the TLDs the bootstrap lists unless Options say otherwise.
var DefaultTLDs = []string{"com", "net", "org", "test", "example"}

// Options configure a Server; the zero value is usable.
type Options struct {
	// TLDs listed in the bootstrap; default DefaultTLDs.
	TLDs []string
	// PlainHTTP serves HTTP instead of HTTPS.
	PlainHTTP bool
	// Default is the answer for domains without a Set answer; nil means
	// active, expiring a year after the server started.
	Default *Answer
	// Clock dates the invented answers; default clock.System{}.
	Clock clock.Clock
}

// Server is a running fake RDAP server.
type Server struct {
	srv   *httptest.Server
	clock clock.Clock
	tlds  []string
	// registered and expires anchor the default answer's dates.
	registered, expires time.Time

	mu         sync.Mutex
	answers    map[string]scripted
	def        scripted
	lookups    map[string]int
	total      int
	bootstraps int
	// basicAuth counts domain requests per "user:password" of their
	// basic-auth header.
	basicAuth map[string]int
}

// scripted is an Answer with the dates fixed at Set time and its failure
// counter.
type scripted struct {
	a      Answer
	failed int
}

// New starts a server with default options. With a non-nil t it is
// closed in t.Cleanup; with nil the caller must Close it.
func New(t testing.TB) *Server { return NewWithOptions(t, Options{}) }

// NewWithOptions starts a server with o.
func NewWithOptions(t testing.TB, o Options) *Server {
	if o.Clock == nil {
		o.Clock = clock.System{}
	}
	if len(o.TLDs) == 0 {
		o.TLDs = DefaultTLDs
	}
	now := o.Clock.Now().UTC().Truncate(time.Second)
	s := &Server{
		clock:      o.Clock,
		tlds:       make([]string, 0, len(o.TLDs)),
		registered: time.Date(now.Year()-5, now.Month(), now.Day(), 0, 0, 0, 0, time.UTC),
		expires:    time.Date(now.Year()+1, now.Month(), now.Day(), 0, 0, 0, 0, time.UTC),
		answers:    make(map[string]scripted),
		lookups:    make(map[string]int),
		basicAuth:  make(map[string]int),
	}
	for _, tld := range o.TLDs {
		s.tlds = append(s.tlds, normalize(tld))
	}
	if o.Default != nil {
		s.def = s.script(*o.Default)
	} else {
		s.def = s.script(Answer{})
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /bootstrap/dns.json", s.serveBootstrap)
	mux.HandleFunc("GET /domain/{name}", s.serveDomain)
	if o.PlainHTTP {
		s.srv = httptest.NewServer(mux)
	} else {
		s.srv = httptest.NewTLSServer(mux)
	}
	if t != nil {
		t.Cleanup(s.Close)
	}
	return s
}

// Close shuts the server down.
func (s *Server) Close() { s.srv.Close() }

// URL is the RDAP base URL, with a trailing slash.
func (s *Server) URL() string { return s.srv.URL + "/" }

// BootstrapURL is the URL of the bootstrap file.
func (s *Server) BootstrapURL() string { return s.srv.URL + "/bootstrap/dns.json" }

// Client returns an HTTP client that trusts the server's certificate.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// Overrides maps each of the server's TLDs to its base URL, for an RDAP
// client's per-TLD overrides (needed with PlainHTTP).
func (s *Server) Overrides() map[string]string {
	m := make(map[string]string, len(s.tlds))
	for _, tld := range s.tlds {
		m[tld] = s.URL()
	}
	return m
}

// CACertPEM returns the server's certificate in PEM form (nil with
// PlainHTTP).
func (s *Server) CACertPEM() []byte {
	if s.srv.Certificate() == nil {
		return nil
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw})
}

// WriteCACert writes CACertPEM to path, for a child process started with
// SSL_CERT_FILE=path.
func (s *Server) WriteCACert(path string) error {
	pemBytes := s.CACertPEM()
	if pemBytes == nil {
		return fmt.Errorf("fakerdap: plain HTTP server has no certificate")
	}
	if err := os.WriteFile(path, pemBytes, 0o644); err != nil {
		return fmt.Errorf("fakerdap: write CA cert: %w", err)
	}
	return nil
}

// WriteBootstrapFile writes a bootstrap file (RFC 9224) listing base as
// the RDAP service of tlds into a temporary directory of t, and returns its
// file:// URL: a seeded bootstrap naming a server without serving it (the
// server's address then comes from the bootstrap, not from the operator).
func WriteBootstrapFile(t testing.TB, base string, tlds ...string) string {
	t.Helper()
	body, err := json.Marshal(map[string]any{"version": "1.0", "services": [][][]string{{tlds, {base}}}})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "dns.json")
	if err := os.WriteFile(path, body, 0o644); err != nil {
		t.Fatal(err)
	}
	return "file://" + path
}

// Set scripts the answer for domain (case-insensitive) and resets its
// failure counter. Dates a Phase implies are fixed now.
func (s *Server) Set(domain string, a Answer) {
	sc := s.script(a)
	s.mu.Lock()
	s.answers[normalize(domain)] = sc
	s.mu.Unlock()
}

// SetDefault scripts the answer for domains without a Set answer.
func (s *Server) SetDefault(a Answer) {
	sc := s.script(a)
	s.mu.Lock()
	s.def = sc
	s.mu.Unlock()
}

// Lookups returns how many domain requests were made for domain,
// including failed ones.
func (s *Server) Lookups(domain string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lookups[normalize(domain)]
}

// TotalLookups returns how many domain requests were made in all.
func (s *Server) TotalLookups() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// BasicAuthRequests returns how many domain requests carried basic-auth
// credentials user and password (an RDAP base URL with userinfo sends
// them).
func (s *Server) BasicAuthRequests(user, password string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.basicAuth[user+":"+password]
}

// BootstrapFetches returns how many times the bootstrap was fetched.
func (s *Server) BootstrapFetches() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bootstraps
}

// IsCanary reports whether name is the canary the RDAP client uses for one
// of the server's TLDs (from the registry profiles,
// lifecycle.Profile.CanaryFor: verisign.com, pir.org, nic.uk, nic.<tld>,
// ...).
func (s *Server) IsCanary(name string) bool {
	name = normalize(name)
	for _, tld := range s.tlds {
		if c, ok := lifecycle.ProfileFor(tld).CanaryFor(tld); ok && c == name {
			return true
		}
	}
	return false
}

// script fills in the dates and statuses the answer's phase implies.
func (s *Server) script(a Answer) scripted {
	now := s.clock.Now().UTC().Truncate(time.Second)
	day := 24 * time.Hour
	var statuses []string
	var expires time.Time
	switch a.Phase {
	case "", lifecycle.PhaseActive:
		statuses, expires = []string{"active", "client delete prohibited", "client transfer prohibited"}, s.expires
	case lifecycle.PhaseGrace:
		statuses, expires = []string{"auto renew period"}, now.Add(-5*day)
	case lifecycle.PhaseExpired:
		statuses, expires = []string{"auto renew period", "client hold"}, now.Add(-10*day)
	case lifecycle.PhaseRedemption:
		statuses, expires = []string{"redemption period", "pending delete"}, now.Add(-40*day)
	case lifecycle.PhasePendingDelete:
		statuses, expires = []string{"pending delete"}, now.Add(-75*day)
	case lifecycle.PhaseReleased:
		a.NotFound = true
	case lifecycle.PhaseUnknown:
		if a.Body == "" {
			a.Body = "<html><body>RDAP service under maintenance</body></html>"
		}
	}
	if a.Statuses == nil {
		a.Statuses = statuses
	}
	if a.ExpiresAt.IsZero() {
		a.ExpiresAt = expires
	}
	if a.RegisteredAt.IsZero() {
		a.RegisteredAt = s.registered
	}
	if a.RegistrarIANAID == "" {
		a.RegistrarIANAID = "9999"
	}
	if a.Nameservers == nil {
		a.Nameservers = []string{"ns1.fakedns.test", "ns2.fakedns.test"}
	}
	if a.FailTimes > 0 && a.Status == 0 {
		a.Status = http.StatusServiceUnavailable
	}
	return scripted{a: a}
}

// next returns the answer for name and whether this request fails, and
// counts the lookup.
func (s *Server) next(name string) (a Answer, fail bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lookups[name]++
	s.total++
	sc, ok := s.answers[name]
	if !ok {
		if s.IsCanary(name) {
			return s.script(Answer{}).a, false
		}
		sc = s.def
	}
	a = sc.a
	if a.Status != 0 {
		if a.FailTimes == 0 {
			return a, true
		}
		if sc.failed < a.FailTimes {
			sc.failed++
			if ok {
				s.answers[name] = sc
			} else {
				s.def = sc
			}
			return a, true
		}
	}
	return a, false
}

func (s *Server) serveDomain(w http.ResponseWriter, r *http.Request) {
	name := normalize(r.PathValue("name"))
	if user, pass, ok := r.BasicAuth(); ok {
		s.mu.Lock()
		s.basicAuth[user+":"+pass]++
		s.mu.Unlock()
	}
	a, fail := s.next(name)
	if a.Delay > 0 {
		t := time.NewTimer(a.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			// Never answer: returning would let net/http write an
			// empty 200, which a client whose deadline is just passing
			// may still read as an answer (TestDelayHonoursCancel
			// failed so about once in 300 runs).
			panic(http.ErrAbortHandler)
		}
	}
	switch {
	case fail:
		if a.RetryAfter > 0 {
			secs := int((a.RetryAfter + time.Second - 1) / time.Second)
			w.Header().Set("Retry-After", strconv.Itoa(secs))
		}
		writeRDAPError(w, a.Status)
	case a.NotFound:
		writeRDAPError(w, http.StatusNotFound)
	case a.Body != "":
		w.Header().Set("Content-Type", "application/rdap+json")
		_, _ = w.Write([]byte(a.Body))
	default:
		w.Header().Set("Content-Type", "application/rdap+json")
		_ = json.NewEncoder(w).Encode(domainObject(name, a))
	}
}

func writeRDAPError(w http.ResponseWriter, status int) {
	w.Header().Set("Content-Type", "application/rdap+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"rdapConformance": []string{"rdap_level_0"},
		"errorCode":       status,
		"title":           http.StatusText(status),
	})
}

// domainObject renders a as an RFC 9083 domain object.
func domainObject(name string, a Answer) map[string]any {
	handle := a.Handle
	if handle == "" {
		handle = strings.ToUpper(strings.ReplaceAll(name, ".", "_")) + "-FAKE"
	}
	events := []map[string]string{
		{"eventAction": "registration", "eventDate": a.RegisteredAt.UTC().Format(time.RFC3339)},
	}
	if !a.ExpiresAt.IsZero() {
		events = append(events, map[string]string{"eventAction": "expiration", "eventDate": a.ExpiresAt.UTC().Format(time.RFC3339)})
	}
	nameservers := make([]map[string]string, 0, len(a.Nameservers))
	for _, ns := range a.Nameservers {
		nameservers = append(nameservers, map[string]string{"objectClassName": "nameserver", "ldhName": ns})
	}
	return map[string]any{
		"rdapConformance": []string{"rdap_level_0"},
		"objectClassName": "domain",
		"handle":          handle,
		"ldhName":         name,
		"status":          a.Statuses,
		"events":          events,
		"entities": []map[string]any{{
			"objectClassName": "entity",
			"roles":           []string{"registrar"},
			"publicIds":       []map[string]string{{"type": "IANA Registrar ID", "identifier": a.RegistrarIANAID}},
		}},
		"nameservers": nameservers,
	}
}

func (s *Server) serveBootstrap(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	s.bootstraps++
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"version":     "1.0",
		"publication": "2025-01-01T00:00:00Z",
		"description": "fakerdap bootstrap",
		"services":    [][][]string{{s.tlds, {s.URL()}}},
	})
}

func normalize(name string) string {
	return strings.ToLower(strings.TrimSuffix(strings.TrimSpace(name), "."))
}
