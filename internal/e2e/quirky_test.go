package e2e

import (
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// quirkyServer is an HTTPS RDAP server whose answer per domain is a raw
// handler, for the broken answers fakerdap does not script (redirects to
// other hosts, gigantic or truncated bodies). Domains without a handler,
// and the .org canary, get a well-formed active answer.
type quirkyServer struct {
	srv *httptest.Server
	mu  sync.Mutex
	h   map[string]http.HandlerFunc
}

func newQuirkyServer(t testing.TB) *quirkyServer {
	q := &quirkyServer{h: map[string]http.HandlerFunc{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /domain/{name}", func(w http.ResponseWriter, r *http.Request) {
		name := strings.ToLower(r.PathValue("name"))
		q.mu.Lock()
		h := q.h[name]
		q.mu.Unlock()
		if h == nil {
			w.Header().Set("Content-Type", "application/rdap+json")
			fmt.Fprint(w, activeRDAP(name, "2015-03-01T00:00:00Z", "2099-03-01T00:00:00Z"))
			return
		}
		h(w, r)
	})
	q.srv = httptest.NewTLSServer(mux)
	t.Cleanup(q.srv.Close)
	return q
}

func (q *quirkyServer) URL() string { return q.srv.URL + "/" }

func (q *quirkyServer) caPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: q.srv.Certificate().Raw})
}

func (q *quirkyServer) set(domain string, h http.HandlerFunc) {
	q.mu.Lock()
	q.h[strings.ToLower(domain)] = h
	q.mu.Unlock()
}

// activeRDAP is a well-formed RDAP domain object for an active name.
func activeRDAP(name, registered, expires string) string {
	return fmt.Sprintf(`{"rdapConformance":["rdap_level_0"],"objectClassName":"domain","handle":"%s-QUIRKY","ldhName":"%s",`+
		`"status":["active","client transfer prohibited"],`+
		`"events":[{"eventAction":"registration","eventDate":"%s"},{"eventAction":"expiration","eventDate":"%s"}],`+
		`"nameservers":[{"objectClassName":"nameserver","ldhName":"ns1.quirky.test"}]}`,
		strings.ToUpper(strings.ReplaceAll(name, ".", "_")), name, registered, expires)
}

// body answers 200 with the given content type and body.
func body(contentType, b string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", contentType)
		_, _ = w.Write([]byte(b))
	}
}
