package console

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/domainguard/domainguard/schemas"
)

// client is a browser-like HTTP client with cookies that does not follow
// redirects.
type client struct {
	t    *testing.T
	base string
	hc   *http.Client
}

func newClient(t *testing.T, base string) *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: t, base: base, hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (c *client) get(path string) (*http.Response, string) {
	c.t.Helper()
	resp, err := c.hc.Get(c.base + path)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func (c *client) post(path string, form url.Values) (*http.Response, string) {
	c.t.Helper()
	resp, err := c.hc.PostForm(c.base+path, form)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t *testing.T, body string) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no csrf token in page:\n%.500s", body)
	}
	return m[1]
}

func (c *client) login(name string) {
	c.t.Helper()
	_, page := c.get("/login")
	resp, body := c.post("/login", url.Values{"csrf": {csrfOf(c.t, page)}, "name": {name}, "password": {password}})
	if resp.StatusCode != http.StatusSeeOther {
		c.t.Fatalf("login %s: %d\n%.400s", name, resp.StatusCode, body)
	}
}

func TestConsoleAuthentication(t *testing.T) {
	f := newFixture(t)
	c := newClient(t, f.srv.URL)
	if resp, _ := c.get("/"); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
		t.Fatalf("anonymous overview: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, page := c.get("/login")
	if csp := resp.Header.Get("Content-Security-Policy"); csp != ContentSecurityPolicy || !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("CSP %q", csp)
	}
	if strings.Contains(page, "<script") || strings.Contains(page, "style=") {
		t.Error("the login page has a script or an inline style")
	}
	token := csrfOf(t, page)
	// Without the CSRF token, or with a wrong password: refused.
	if resp, _ := c.post("/login", url.Values{"name": {operatorName}, "password": {password}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("login without csrf: %d", resp.StatusCode)
	}
	_, page = c.get("/login")
	if resp, body := c.post("/login", url.Values{"csrf": {csrfOf(t, page)}, "name": {operatorName}, "password": {"wrong password!"}}); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "wrong password") {
		t.Errorf("wrong password: %d", resp.StatusCode)
	}
	_ = token
	c.login(operatorName)
	var session *http.Cookie
	for _, ck := range c.hc.Jar.Cookies(mustURL(f.srv.URL)) {
		if ck.Name == sessionCookie {
			session = ck
		}
	}
	if session == nil {
		t.Fatal("no session cookie")
	}
	resp, body := c.get("/")
	if resp.StatusCode != 200 || !strings.Contains(body, "Overview") {
		t.Fatalf("overview after login: %d", resp.StatusCode)
	}
	if sc := resp.Header.Get("Cache-Control"); sc != "no-store" {
		t.Errorf("Cache-Control %q", sc)
	}
	// A tampered cookie is no session.
	other := newClient(t, f.srv.URL)
	other.hc.Jar.SetCookies(mustURL(f.srv.URL), []*http.Cookie{{Name: sessionCookie, Value: strings.Replace(session.Value, "o", "0", 1)}})
	if resp, _ := other.get("/holds"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("tampered cookie: %d", resp.StatusCode)
	}
	// A POST without the session's CSRF token changes nothing.
	if resp, _ := c.post("/holds/"+f.holdID+"/approve", url.Values{"note": {"no token"}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("approve without csrf: %d", resp.StatusCode)
	}
	if n := f.count(t, `SELECT count(*) FROM holds WHERE status = 'pending'`); n != 1 {
		t.Errorf("pending holds %d, want 1", n)
	}
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

func TestConsoleSetCookieFlags(t *testing.T) {
	f := newFixture(t)
	c := newClient(t, f.srv.URL)
	_, page := c.get("/login")
	resp, err := c.hc.PostForm(f.srv.URL+"/login", url.Values{"csrf": {csrfOf(t, page)}, "name": {operatorName}, "password": {password}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var found bool
	for _, h := range resp.Header.Values("Set-Cookie") {
		if strings.HasPrefix(h, sessionCookie+"=") {
			found = true
			if !strings.Contains(h, "HttpOnly") || !strings.Contains(h, "SameSite=Strict") {
				t.Errorf("session cookie %q lacks HttpOnly or SameSite=Strict", h)
			}
		}
	}
	if !found {
		t.Error("no session cookie set")
	}
}

func TestConsoleViewerIsRefused(t *testing.T) {
	f := newFixture(t)
	c := newClient(t, f.srv.URL)
	c.login(viewerName)
	_, holds := c.get("/holds")
	if strings.Contains(holds, `action="/holds/`) {
		t.Error("a viewer sees the approve form")
	}
	token := csrfOf(t, holds) // the sign-out form's
	for path, form := range map[string]url.Values{
		"/holds/" + f.holdID + "/approve": {"csrf": {token}, "note": {"viewer tries"}},
		"/holds/" + f.holdID + "/reject":  {"csrf": {token}, "note": {"viewer tries"}},
		"/breaker/resume":                 {"csrf": {token}, "note": {"viewer tries"}},
		"/dlq/replay":                     {"csrf": {token}, "note": {"viewer tries"}, "all": {"1"}},
		"/check":                          {"csrf": {token}, "domain": {"ok.org"}},
	} {
		resp, body := c.post(path, form)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "Only operators") {
			t.Errorf("viewer POST %s: %d", path, resp.StatusCode)
		}
	}
	if n := f.count(t, `SELECT count(*) FROM holds WHERE status = 'pending'`); n != 1 {
		t.Errorf("pending holds %d, want 1", n)
	}
	if n := f.streamCount(t, schemas.StreamDLQ); n != 1 {
		t.Errorf("dead letters %d, want 1", n)
	}
	if n := f.count(t, `SELECT count(*) FROM audit_log WHERE type = $1`, schemas.SubjectOperatorAction); n != 0 {
		t.Errorf("operator actions %d, want 0", n)
	}
}

func TestConsoleNoteIsRequired(t *testing.T) {
	f := newFixture(t)
	c := newClient(t, f.srv.URL)
	c.login(operatorName)
	_, holds := c.get("/holds")
	resp, body := c.post("/holds/"+f.holdID+"/approve", url.Values{"csrf": {csrfOf(t, holds)}, "note": {"   "}})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "note is required") {
		t.Errorf("approve without note: %d", resp.StatusCode)
	}
	if n := f.count(t, `SELECT count(*) FROM emails WHERE domain = 'held.org' AND verified`); n != 3 {
		t.Errorf("verified on held.org: %d, want 3", n)
	}
	resp, _ = c.post("/holds/"+f.holdID+"/reject", url.Values{"csrf": {csrfOf(t, holds)}, "note": {"renewed, checked with the registrar"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("reject: %d", resp.StatusCode)
	}
	if n := f.count(t, `SELECT count(*) FROM audit_log WHERE type = $1 AND data->>'actor' = $2 AND data->>'action' = 'hold.reject'`, schemas.SubjectOperatorAction, operatorName); n != 1 {
		t.Errorf("reject events by %s: %d", operatorName, n)
	}
}

func TestConsoleEscapesHostileValues(t *testing.T) {
	f := newFixture(t)
	c := newClient(t, f.srv.URL)
	c.login(operatorName)
	for _, path := range []string{"/search?q=hostile.org", "/search?q=" + url.QueryEscape(hostileScript+"@hostile.org"), "/holds", "/dlq", "/audit", "/"} {
		resp, body := c.get(path)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", path, resp.StatusCode)
		}
		for _, raw := range []string{hostileScript, "<b>bold</b>", "<b>x</b>", "\u202e", hostileLong} {
			if strings.Contains(body, raw) {
				t.Errorf("%s renders %.40q unescaped", path, raw)
			}
		}
		if strings.Contains(body, "<script") {
			t.Errorf("%s contains a script element", path)
		}
	}
	_, body := c.get("/search?q=hostile.org")
	for _, want := range []string{"&lt;script&gt;alert(&#34;dg&#34;)&lt;/script&gt;", "O&#39;Brien", "rtl⟨U&#43;202E⟩exe.txt", "… (5000 characters)"} {
		if !strings.Contains(body, want) {
			t.Errorf("search page lacks the escaped %q", want)
		}
	}
}

func TestConsoleLoginRateLimit(t *testing.T) {
	f := newFixture(t)
	c := newClient(t, f.srv.URL)
	codes := map[int]int{}
	for range loginBurst + 2 {
		_, page := c.get("/login")
		resp, _ := c.post("/login", url.Values{"csrf": {csrfOf(t, page)}, "name": {operatorName}, "password": {"guess guess guess"}})
		codes[resp.StatusCode]++
	}
	if codes[http.StatusUnauthorized] != loginBurst || codes[http.StatusTooManyRequests] != 2 {
		t.Errorf("status counts %v, want %d × 401 then 429", codes, loginBurst)
	}
	// Even the right password waits now.
	_, page := c.get("/login")
	if resp, _ := c.post("/login", url.Values{"csrf": {csrfOf(t, page)}, "name": {operatorName}, "password": {password}}); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("right password while limited: %d", resp.StatusCode)
	}
}

func TestConsoleConfig(t *testing.T) {
	f := newFixture(t)
	base := Config{Pool: f.pool, Store: f.store}
	for name, c := range map[string]Config{
		"no users":                {Addr: "127.0.0.1:8080"},
		"insecure on all":         {Addr: ":8080", InsecureLocal: true},
		"insecure on a public ip": {Addr: "10.1.2.3:8080", InsecureLocal: true},
	} {
		c.Pool, c.Store = base.Pool, base.Store
		if _, err := New(c); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	c, err := New(Config{Addr: "127.0.0.1:0", InsecureLocal: true, Pool: f.pool, Store: f.store})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptestGet(c, "/holds")
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "local (operator)") {
		t.Errorf("insecure-local: %d", rec.Code)
	}
}
