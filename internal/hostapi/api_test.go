package hostapi

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/domainguard/domainguard/internal/broker"
	"github.com/domainguard/domainguard/internal/clock"
	"github.com/domainguard/domainguard/internal/testbin"
	"github.com/domainguard/domainguard/internal/testdb"
	"github.com/domainguard/domainguard/internal/testmetrics"
	"github.com/domainguard/domainguard/internal/testnats"
	"github.com/domainguard/domainguard/producer"
	"github.com/domainguard/domainguard/schemas"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const (
	goodToken  = "s3cret-token-of-the-host-app"
	otherToken = "another-token-for-the-batch-job"
)

type env struct {
	pool *pgxpool.Pool
	js   jetstream.JetStream
	topo broker.Topology
	reg  *prometheus.Registry
	srv  *httptest.Server
	logs *testbin.OutputBuffer
}

func newEnv(t *testing.T) *env {
	t.Helper()
	pool, _ := testdb.New(t)
	js, _, topo := testnats.Shared(t)
	e := &env{pool: pool, js: js, topo: topo, reg: prometheus.NewRegistry(), logs: &testbin.OutputBuffer{}}
	api, err := New(Config{
		Tokens: []Token{NewToken("webapp", goodToken), NewToken("batch", otherToken)},
		Pool:   pool, JS: js, Topology: topo, Registerer: e.reg, Clock: clock.NewStub(t0),
		Logger: slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(api.Handler())
	t.Cleanup(e.srv.Close)
	return e
}

func (e *env) exec(t *testing.T, sql string, args ...any) {
	t.Helper()
	if _, err := e.pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// do sends a request and returns the status and the body.
func (e *env) do(t *testing.T, method, path string, header map[string]string, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// accountsMessages counts the messages in the ACCOUNTS stream.
func (e *env) accountsMessages(t *testing.T) uint64 {
	t.Helper()
	return testnats.StreamMsgs(t, e.js, e.topo.Namespace.Stream(schemas.StreamAccounts))
}

func bearer(token string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + token}
}

func with(h map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range h {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

func structuredEvent(id, typ, data string) string {
	return `{"specversion":"1.0","id":"` + id + `","source":"https://host.example/accounts","type":"` + typ + `","time":"2026-03-01T11:00:00Z","datacontenttype":"application/json","data":` + data + `}`
}

const verifiedType = "io.domainguard.accounts.email.verified"

func TestPostEventStructuredAndBinary(t *testing.T) {
	e := newEnv(t)
	ce := with(bearer(goodToken), "Content-Type", "application/cloudevents+json")
	body := structuredEvent("0190f1a2-0000-7000-8000-000000000001", verifiedType,
		`{"user_id":"u1","email":"Ada@Example.org","verified_at":"2026-01-02T03:04:05Z"}`)
	code, resp := e.do(t, "POST", "/v1/events", ce, body)
	if code != http.StatusAccepted {
		t.Fatalf("structured: %d %s", code, resp)
	}
	var acc Accepted
	if err := json.Unmarshal(resp, &acc); err != nil || acc.ID != "0190f1a2-0000-7000-8000-000000000001" || acc.Subject != schemas.SubjectEmailVerified || acc.Duplicate || acc.Sequence == 0 {
		t.Fatalf("accepted %+v %v", acc, err)
	}
	// The same id again: accepted, not stored twice.
	code, resp = e.do(t, "POST", "/v1/events", ce, body)
	if err := json.Unmarshal(resp, &acc); code != http.StatusAccepted || err != nil || !acc.Duplicate {
		t.Fatalf("duplicate: %d %s", code, resp)
	}
	// Binary mode, through the other token.
	bin := with(bearer(otherToken), "Content-Type", "application/json; charset=utf-8", "Ce-Specversion", "1.0",
		"Ce-Id", "bin-1", "Ce-Source", "host", "Ce-Type", "io.domainguard.accounts.email.removed")
	code, resp = e.do(t, "POST", "/v1/events", bin, `{"user_id":"u1","email":"ada@example.org"}`)
	if code != http.StatusAccepted {
		t.Fatalf("binary: %d %s", code, resp)
	}
	if n := e.accountsMessages(t); n != 2 {
		t.Fatalf("ACCOUNTS holds %d messages, want 2", n)
	}
	// What the intake consumer gets: a structured CloudEvent with
	// Nats-Msg-Id = the event id, and the client's name.
	s, _ := e.js.Stream(context.Background(), e.topo.Namespace.Stream(schemas.StreamAccounts))
	for seq, want := range map[uint64][3]string{1: {"0190f1a2-0000-7000-8000-000000000001", "webapp", schemas.SubjectEmailVerified}, 2: {"bin-1", "batch", schemas.SubjectEmailRemoved}} {
		m, err := s.GetMsg(context.Background(), seq)
		if err != nil {
			t.Fatal(err)
		}
		if m.Header.Get(schemas.HeaderMsgID) != want[0] || m.Header.Get(HeaderClient) != want[1] || m.Subject != e.topo.Namespace.Subject(want[2]) {
			t.Errorf("message %d: subject %s headers %v, want id %s client %s", seq, m.Subject, m.Header, want[0], want[1])
		}
		ev, _, err := schemas.Decode[schemas.EmailRemoved](m.Data)
		if err != nil || ev.ID != want[0] {
			t.Errorf("message %d does not decode as the intake consumer does: %v %+v", seq, err, ev)
		}
	}
	if strings.Contains(e.logs.String(), goodToken) || strings.Contains(e.logs.String(), otherToken) {
		t.Error("a token value was logged")
	}
	if !strings.Contains(e.logs.String(), `"client":"webapp"`) {
		t.Error("the token's name was not logged")
	}
}

func TestPostEventBadInputChangesNothing(t *testing.T) {
	e := newEnv(t)
	ce := with(bearer(goodToken), "Content-Type", "application/cloudevents+json")
	okData := `{"user_id":"u1","email":"a@example.org","verified_at":"2026-01-02T03:04:05Z"}`
	ev := func(data string) string { return structuredEvent("id-1", verifiedType, data) }
	cases := []struct {
		name   string
		header map[string]string
		body   string
		code   int
		err    string
	}{
		{"no Authorization", map[string]string{"Content-Type": "application/cloudevents+json"}, ev(okData), 401, "missing_token"},
		{"wrong token", with(ce, "Authorization", "Bearer not-the-right-token-at-all"), ev(okData), 401, "invalid_token"},
		{"token of another scheme", with(ce, "Authorization", "Basic "+goodToken), ev(okData), 401, "missing_token"},
		{"empty bearer", with(ce, "Authorization", "Bearer "), ev(okData), 401, "missing_token"},
		{"bearer with a near miss", with(ce, "Authorization", "Bearer "+goodToken[:len(goodToken)-1]), ev(okData), 401, "invalid_token"},
		{"oversized body", ce, ev(`{"user_id":"u1","email":"a@example.org","verified_at":"2026-01-02T03:04:05Z","pad":"` + strings.Repeat("x", 70<<10) + `"}`), 413, "body_too_large"},
		{"invalid JSON", ce, `{"specversion":"1.0",`, 400, "invalid_json"},
		{"JSON array", ce, `[` + ev(okData) + `]`, 400, "invalid_json"},
		{"empty body", ce, ``, 400, "invalid_json"},
		{"no Content-Type", bearer(goodToken), ev(okData), 415, "unsupported_media_type"},
		{"text/plain", with(ce, "Content-Type", "text/plain"), ev(okData), 415, "unsupported_media_type"},
		{"form", with(ce, "Content-Type", "application/x-www-form-urlencoded"), "a=b", 415, "unsupported_media_type"},
		{"latin-1", with(ce, "Content-Type", "application/cloudevents+json; charset=iso-8859-1"), ev(okData), 415, "unsupported_media_type"},
		{"batch mode", with(ce, "Content-Type", "application/cloudevents-batch+json"), `[` + ev(okData) + `]`, 415, "unsupported_media_type"},
		{"unknown event type", ce, structuredEvent("id-2", "io.domainguard.audit.email.unverified", okData), 400, "unknown_event_type"},
		{"foreign event type", ce, structuredEvent("id-3", "com.example.user.created", okData), 400, "unknown_event_type"},
		{"specversion 0.3", ce, strings.Replace(ev(okData), `"1.0"`, `"0.3"`, 1), 400, "invalid_event"},
		{"no id", ce, structuredEvent("", verifiedType, okData), 400, "invalid_event"},
		{"no data", ce, `{"specversion":"1.0","id":"x","source":"h","type":"` + verifiedType + `"}`, 400, "invalid_event"},
		{"data not JSON content", ce, strings.Replace(ev(okData), `"application/json"`, `"text/xml"`, 1), 400, "invalid_event"},
		{"missing email", ce, ev(`{"user_id":"u1","verified_at":"2026-01-02T03:04:05Z"}`), 400, "invalid_event"},
		{"script in domain", ce, ev(`{"user_id":"u1","email":"x@<script>alert(1)</script>.com","verified_at":"2026-01-02T03:04:05Z"}`), 400, "invalid_event"},
		{"RTL override in domain", ce, ev(`{"user_id":"u1","email":"x@exa\u202emple.com","verified_at":"2026-01-02T03:04:05Z"}`), 400, "invalid_event"},
		{"5000-character name", ce, ev(`{"user_id":"u1","email":"x@` + strings.Repeat("a", 5000) + `.com","verified_at":"2026-01-02T03:04:05Z"}`), 400, "invalid_event"},
		{"verified_at in the future", ce, ev(`{"user_id":"u1","email":"a@example.org","verified_at":"2026-03-03T00:00:00Z"}`), 400, "invalid_event"},
		{"verified_at words", ce, ev(`{"user_id":"u1","email":"a@example.org","verified_at":"yesterday"}`), 400, "invalid_event"},
		{"binary without ce headers", with(ce, "Content-Type", "application/json"), okData, 400, "invalid_event"},
		{"binary with bad ce-time", with(ce, "Content-Type", "application/json", "Ce-Specversion", "1.0", "Ce-Id", "b", "Ce-Source", "h", "Ce-Type", verifiedType, "Ce-Time", "noon"), okData, 400, "invalid_event"},
		{"binary with invalid JSON", with(ce, "Content-Type", "application/json", "Ce-Specversion", "1.0", "Ce-Id", "b", "Ce-Source", "h", "Ce-Type", verifiedType), `{"user_id":`, 400, "invalid_json"},
		{"binary with a 300-byte id", with(ce, "Content-Type", "application/json", "Ce-Specversion", "1.0", "Ce-Id", strings.Repeat("i", 300), "Ce-Source", "h", "Ce-Type", verifiedType), okData, 400, "invalid_event"},
		{"GET on events", bearer(goodToken), "", 405, "method_not_allowed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			method := "POST"
			if strings.HasPrefix(c.name, "GET") {
				method = "GET"
			}
			code, body := e.do(t, method, "/v1/events", c.header, c.body)
			if code != c.code {
				t.Fatalf("status %d (%s), want %d", code, body, c.code)
			}
			if c.err == "" {
				return
			}
			var got Error
			if err := json.Unmarshal(body, &got); err != nil || got.Error != c.err || got.Message == "" {
				t.Errorf("body %s, want error %q with a message", body, c.err)
			}
		})
	}
	if n := e.accountsMessages(t); n != 0 {
		t.Errorf("bad input published %d messages", n)
	}
	if n := testdbCount(t, e, `SELECT count(*) FROM emails`); n != 0 {
		t.Errorf("bad input stored %d addresses", n)
	}
}

func testdbCount(t *testing.T, e *env, sql string) int {
	t.Helper()
	var n int
	if err := e.pool.QueryRow(context.Background(), sql).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestGetAddress(t *testing.T) {
	e := newEnv(t)
	e.exec(t, `INSERT INTO domains (name, phase, last_checked_at) VALUES ('ok.org', 'active', $1), ('grace.org', 'grace', $1), ('gone.org', 'released', $1),
		('us.com', 'active', $1), ('acme.us.com', 'expired', $1), ('fine.us.com', 'active', $1)`, t0)
	// Under a private suffix: held (not yet unverified) while acme.us.com lapsed.
	e.exec(t, `INSERT INTO emails (user_id, email, domain, verified, verified_at, watch_name) VALUES
		('p1', 'al@acme.us.com', 'us.com', true, $1, 'acme.us.com'), ('p2', 'al@fine.us.com', 'us.com', true, $1, 'fine.us.com')`, t0.Add(-48*time.Hour))
	e.exec(t, `INSERT INTO emails (user_id, email, domain, verified, verified_at, unverified_at, unverify_reason, unverify_phase, email_as_sent) VALUES
		('u1', 'Ada@ok.org', 'ok.org', true, $1, NULL, NULL, NULL, 'Ada@OK.Org.'),
		('u2', 'bob@grace.org', 'grace.org', true, $1, NULL, NULL, NULL, NULL),
		('u3', 'cy@gone.org', 'gone.org', false, $1, $2, 'domain_released', 'released', NULL),
		('u4', 'cy@gone.org', 'gone.org', true, $2, NULL, NULL, NULL, NULL),
		('u5', 'new@fresh.org', 'fresh.org', true, $1, NULL, NULL, NULL, NULL)`, t0.Add(-48*time.Hour), t0.Add(-time.Hour))
	// Stored under the older key (domain part only lower-cased) and not yet
	// rekeyed: unverified when their domains went.
	e.exec(t, `INSERT INTO domains (name, phase, last_checked_at) VALUES ('xn--mller-kva.de', 'released', $1)`, t0)
	e.exec(t, `INSERT INTO emails (user_id, email, domain, verified, verified_at, unverified_at, unverify_reason, unverify_phase) VALUES
		('u6', 'old@gone.org.', 'gone.org', false, $1, $2, 'domain_released', 'released'),
		('u7', 'zed@müller.de', 'xn--mller-kva.de', false, $1, $2, 'domain_released', 'released'),
		('u8', 'two@gone.org.', 'gone.org', false, $1, $2, 'domain_released', 'released'),
		('u8', 'two@gone.org', 'gone.org', true, $1, NULL, NULL, NULL)`, t0.Add(-48*time.Hour), t0.Add(-time.Hour))
	auth := bearer(goodToken)
	get := func(path string) (int, Address) {
		t.Helper()
		code, body := e.do(t, "GET", path, auth, "")
		var a Address
		if code == 200 {
			if err := json.Unmarshal(body, &a); err != nil {
				t.Fatal(err)
			}
		}
		return code, a
	}
	cases := []struct {
		path, phase, reason string
		trusted, verified   bool
		checked             bool
		users               int
	}{
		{"/v1/addresses/Ada@OK.org", "active", "", true, true, true, 1},
		{"/v1/addresses/bob@grace.org", "grace", "", false, true, true, 1},
		{"/v1/addresses/cy@gone.org", "released", "domain_released", false, false, true, 2},
		{"/v1/addresses/cy@gone.org?user_id=u4", "released", "", false, true, true, 1},
		{"/v1/addresses/new@fresh.org", "unknown", "", true, true, false, 1},
		{"/v1/addresses/" + url.PathEscape("Ada@ok.org"), "active", "", true, true, true, 1},
		{"/v1/addresses/al@acme.us.com", "active", "", false, true, true, 1},
		{"/v1/addresses/al@fine.us.com", "active", "", true, true, true, 1},
		// Not yet rekeyed: found in the form stored, and in the others.
		{"/v1/addresses/old@gone.org.", "released", "domain_released", false, false, true, 1},
		{"/v1/addresses/old@gone.org", "released", "domain_released", false, false, true, 1},
		{"/v1/addresses/" + url.PathEscape("zed@müller.de"), "released", "domain_released", false, false, true, 1},
		{"/v1/addresses/zed@xn--mller-kva.de", "released", "domain_released", false, false, true, 1},
		// Under both keys for one user (a verification in the new form
		// before the pass merged them): one entry, unverified as the older row is.
		{"/v1/addresses/two@gone.org", "released", "domain_released", false, false, true, 1},
	}
	for _, c := range cases {
		code, a := get(c.path)
		if code != 200 || string(a.Phase) != c.phase || a.Reason != c.reason || a.TrustedForReset != c.trusted ||
			a.Verified != c.verified || (a.CheckedAt != nil) != c.checked || len(a.Users) != c.users {
			t.Errorf("%s: %d %+v", c.path, code, a)
		}
	}
	if _, a := get("/v1/addresses/two@gone.org"); len(a.Users) != 1 || a.Users[0].Verified || a.Users[0].Reason != "domain_released" {
		t.Errorf("one user under two keys: %+v, want one unverified entry", a.Users)
	}
	// Each user's form of the address as the host sent it, beside the key.
	if _, a := get("/v1/addresses/Ada@ok.ORG"); a.Email != "Ada@ok.org" || len(a.Users) != 1 || a.Users[0].EmailAsSent != "Ada@OK.Org." {
		t.Errorf("address as sent: %+v", a)
	}
	// Registered in one form, asked about in another (U-label or A-label,
	// upper case, trailing dot): the same address, whose lapsed domain the
	// answer names. An unknown_address here would read as "not watched".
	e.exec(t, `INSERT INTO domains (name, phase, last_checked_at) VALUES ('xn--bcher-kva.de', 'expired', $1)`, t0)
	for _, sent := range []string{"zoe@bücher.de", "max@XN--BCHER-KVA.DE."} {
		a, err := producer.NormalizeAddress("i1", sent) // the key intake stores
		if err != nil {
			t.Fatal(err)
		}
		e.exec(t, `INSERT INTO emails (user_id, email, domain, verified, verified_at, email_as_sent) VALUES ($1, $2, $3, true, $4, $5)`,
			a.UserID, a.Email, a.Domain, t0.Add(-48*time.Hour), a.AsSent)
	}
	for _, asked := range []struct{ form, asSent string }{
		{"zoe@xn--bcher-kva.de", "zoe@bücher.de"},
		{"zoe@XN--BCHER-KVA.DE", "zoe@bücher.de"},
		{"zoe@BÜCHER.de", "zoe@bücher.de"},
		{"zoe@bücher.de.", "zoe@bücher.de"},
		{"max@bücher.de", "max@XN--BCHER-KVA.DE."},
		{"max@xn--bcher-kva.de", "max@XN--BCHER-KVA.DE."},
	} {
		code, a := get("/v1/addresses/" + url.PathEscape(asked.form))
		if code != 200 || a.TrustedForReset || a.Phase != "expired" || len(a.Users) != 1 || a.Users[0].EmailAsSent != asked.asSent {
			t.Errorf("asked as %q: %d %+v; want the address sent as %q, not trusted for reset (expired)", asked.form, code, a, asked.asSent)
		}
	}
	for path, want := range map[string]int{
		"/v1/addresses/nobody@ok.org":                                404,
		"/v1/addresses/cy@gone.org?user_id=u9":                       404,
		"/v1/addresses/not-an-address":                               400,
		"/v1/addresses/" + url.PathEscape("x@<script>.com"):          400,
		"/v1/addresses/" + url.PathEscape("x@exa\u202emple.com"):     400,
		"/v1/addresses/a@" + strings.Repeat("b", 5000) + ".com":      400,
		"/v1/addresses/a@ok.org?user_id=" + strings.Repeat("u", 300): 400,
	} {
		code, body := e.do(t, "GET", path, auth, "")
		var er Error
		if code != want || json.Unmarshal(body, &er) != nil || er.Error == "" {
			t.Errorf("%.80s: %d %s, want %d with a JSON error", path, code, body, want)
		}
	}
	if code, _ := e.do(t, "GET", "/v1/addresses/Ada@ok.org", nil, ""); code != 401 {
		t.Errorf("without a token: %d, want 401", code)
	}
	if code, _ := e.do(t, "GET", "/v2/addresses/Ada@ok.org", auth, ""); code != 404 {
		t.Errorf("unknown version: %d, want 404", code)
	}
}

func TestRouteMetrics(t *testing.T) {
	e := newEnv(t)
	e.do(t, "GET", "/v1/addresses/a@example.org", bearer(goodToken), "")
	e.do(t, "GET", "/v1/addresses/a@example.org", nil, "")
	e.do(t, "GET", "/v1/openapi.json", nil, "")
	want := `
# HELP domainguard_http_requests_total HTTP requests served, by server, route and status code.
# TYPE domainguard_http_requests_total counter
domainguard_http_requests_total{code="401",route="GET /v1/addresses/{email}",server="api"} 1
domainguard_http_requests_total{code="404",route="GET /v1/addresses/{email}",server="api"} 1
domainguard_http_requests_total{code="200",route="GET /v1/openapi.json",server="api"} 1
`
	if err := testutil.GatherAndCompare(e.reg, strings.NewReader(want), "domainguard_http_requests_total"); err != nil {
		t.Error(err)
	}
	for route, want := range map[string]uint64{"GET /v1/addresses/{email}": 2, "GET /v1/openapi.json": 1, "POST /v1/events": 0} {
		got, err := testmetrics.Observations(e.reg, "domainguard_http_request_duration_seconds", map[string]string{"server": "api", "route": route})
		if err != nil || got != want {
			t.Errorf("latency samples of %s = %d (%v), want %d", route, got, err, want)
		}
	}
}

func TestParseTokens(t *testing.T) {
	toks, err := ParseTokens(" webapp:" + goodToken + ", batch:" + otherToken + ",")
	if err != nil || len(toks) != 2 || toks[0].Name != "webapp" || toks[1].Name != "batch" {
		t.Fatalf("%+v %v", toks, err)
	}
	if name, ok := match(toks, otherToken); !ok || name != "batch" {
		t.Errorf("match = %q %v", name, ok)
	}
	if _, ok := match(toks, otherToken+"x"); ok {
		t.Error("a longer token matched")
	}
	for _, bad := range []string{"webapp", "web app:" + goodToken, ":" + goodToken, "a:short", "a:" + goodToken + ",a:" + otherToken, "a:has a space in it ok"} {
		_, err := ParseTokens(bad)
		if err == nil {
			t.Errorf("ParseTokens(%q): no error", bad)
			continue
		}
		if strings.Contains(err.Error(), goodToken) || strings.Contains(err.Error(), otherToken) {
			t.Errorf("error %q repeats a token", err)
		}
	}
}
