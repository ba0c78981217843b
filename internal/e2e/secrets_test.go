package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/domainguard/domainguard/internal/fakerdap"
	"github.com/domainguard/domainguard/internal/testbin"
	"github.com/domainguard/domainguard/lifecycle"
	"github.com/domainguard/domainguard/schemas"
)

// plantedSecrets are the credentials TestNoSecretLeaks gives the processes,
// each a unique random value, by what they are.
type plantedSecrets map[string]string

func plantSecrets(t *testing.T) plantedSecrets {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	tag := hex.EncodeToString(b[:])
	return plantedSecrets{
		"DATABASE_URL password":           "pgsecret-" + tag,
		"NATS_URL password":               "natssecret-" + tag,
		"FASTLY_API_KEY":                  "fastlysecret-" + tag,
		"DOMAINR_CLIENT_ID":               "domainrid-" + tag,
		"DOMAINR_RAPIDAPI_KEY":            "rapidsecret-" + tag,
		"DOMAINGUARD_API_TOKENS token":    "apitoken-" + tag,
		"RDAP override userinfo user":     "rdapuser-" + tag,
		"RDAP override userinfo secret":   "rdapsecret-" + tag,
		"RDAP override (dead) user":       "deaduser-" + tag,
		"RDAP override (dead) password":   "deadsecret-" + tag,
		"DATABASE_URL (dead) password":    "pgdeadsecret-" + tag,
		"NATS_URL (dead server) password": "natsdeadsecret-" + tag,
		"webhook URL token":               "webhooksecret-" + tag,
	}
}

// leakScan collects every text the test may show an operator or store, and
// finds planted secrets in it.
type leakScan struct {
	secrets plantedSecrets
	mu      sync.Mutex
	scanned map[string]int // texts looked at, by kind
	leaks   []string
}

func (s *leakScan) scan(kind, where, text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scanned[kind]++
	for what, v := range s.secrets {
		if strings.Contains(text, v) {
			line := text
			if i := strings.Index(text, v); len(text) > 300 {
				lo := max(0, i-150)
				line = "…" + text[lo:min(len(text), i+150)] + "…"
			}
			s.leaks = append(s.leaks, fmt.Sprintf("%s %s holds the %s: %s", kind, where, what, line))
		}
	}
}

// scanLines scans output line by line (each a log line or a line of a
// command's answer).
func (s *leakScan) scanLines(kind, where, output string) {
	for i, line := range strings.Split(output, "\n") {
		if strings.TrimSpace(line) != "" {
			s.scan(kind, fmt.Sprintf("%s line %d", where, i+1), line)
		}
	}
}

// TestNoSecretLeaks is issue #14 item 7: the processes run with a
// password in DATABASE_URL and in NATS_URL, Fastly and Domainr keys, host
// API tokens and RDAP overrides with credentials in their userinfo, do
// real work (intake, checks, a lapse that unverifies addresses, a dead
// letter, provider errors, unreachable servers), and none of those secrets
// appears in any line any process printed, any row of any table, any
// message of any stream, nor in the answers of the operator commands, the
// host API and the console. The override's credentials are still used:
// the RDAP server receives them as basic auth.
func TestNoSecretLeaks(t *testing.T) {
	secrets := plantSecrets(t)
	c := newCluster(t, clusterOptions{natsPassword: secrets["NATS_URL password"], extraEnv: []string{"DOMAINGUARD_PROVIDER=auto"}})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	scan := &leakScan{secrets: secrets, scanned: map[string]int{}}

	// The database URL of every process carries a password (the test
	// server trusts loopback, so any password is accepted).
	dbURL, err := url.Parse(c.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	dbURL.User = url.UserPassword(dbURL.User.Username(), secrets["DATABASE_URL password"])

	// Fastly answers 500 for every lookup (provider errors), after noting
	// the key it was sent.
	var fastlyKeys sync.Map
	fastly := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fastlyKeys.Store(r.Header.Get("Fastly-Key"), true)
		http.Error(w, "internal error", http.StatusInternalServerError)
	}))
	t.Cleanup(fastly.Close)
	rdapURL, err := url.Parse(c.rdap.URL())
	if err != nil {
		t.Fatal(err)
	}
	rdapURL.User = url.UserPassword(secrets["RDAP override userinfo user"], secrets["RDAP override userinfo secret"])
	deadPort := freePort(t) // nothing listens here
	deadRDAP := fmt.Sprintf("https://%s:%s@127.0.0.1:%d/", secrets["RDAP override (dead) user"], secrets["RDAP override (dead) password"], deadPort)
	c.env = append(c.env,
		"DATABASE_URL="+dbURL.String(),
		// .com through the fake RDAP server with credentials; .net to a
		// server that does not answer (connection errors name the URL).
		"DOMAINGUARD_RDAP_OVERRIDES=com="+rdapURL.String()+",net="+deadRDAP,
		// .org has no RDAP in the fake bootstrap: auto asks Fastly.
		"FASTLY_API_URL="+fastly.URL,
		"FASTLY_API_KEY="+secrets["FASTLY_API_KEY"],
		"DOMAINR_CLIENT_ID="+secrets["DOMAINR_CLIENT_ID"],
		"DOMAINR_RAPIDAPI_KEY="+secrets["DOMAINR_RAPIDAPI_KEY"],
		"DOMAINGUARD_API_TOKENS=host:"+secrets["DOMAINGUARD_API_TOKENS token"],
		"DOMAINGUARD_LOG_LEVEL=debug",
	)
	// The enforcer names its NATS password in NATS_PASSWORD instead.
	c.roleEnv["enforcer"] = []string{"NATS_URL=" + c.nats.URL(), "NATS_USER=" + natsPasswordUser, "NATS_PASSWORD=" + secrets["NATS_URL password"]}
	c.startAll()
	apiAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	consoleAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	api := testbin.Start(t, testbin.Options{Name: "api", Env: append(append([]string(nil), c.env...), "DOMAINGUARD_API_ADDR="+apiAddr)}, "api")
	console := testbin.Start(t, testbin.Options{Name: "console", Env: append(append([]string(nil), c.env...), "DOMAINGUARD_CONSOLE_ADDR="+consoleAddr)}, "console", "--insecure-local")
	// The reference notifier posts to a webhook whose path is its token,
	// where nothing listens.
	notifier := testbin.Start(t, testbin.Options{Name: "notify-example", Env: c.env}, "notify-example",
		"--webhook", fmt.Sprintf("http://127.0.0.1:%d/hooks/%s", deadPort, secrets["webhook URL token"]))

	// Intake: addresses at a .com that lapses, a .com that stays, a .net
	// whose RDAP server is down and a .org only Fastly covers; and a
	// malformed event that is dead-lettered.
	verifiedAt := time.Now().Add(-30 * 24 * time.Hour).UTC().Truncate(time.Second)
	var evs []verified
	for i := range 3 {
		evs = append(evs, verified{UserID: fmt.Sprintf("l%d", i), Email: fmt.Sprintf("u%d@lapse-secrets.com", i), VerifiedAt: verifiedAt})
	}
	evs = append(evs,
		verified{UserID: "s", Email: "u@stays-secrets.com", VerifiedAt: verifiedAt},
		verified{UserID: "n", Email: "u@down-secrets.net", VerifiedAt: verifiedAt},
		verified{UserID: "o", Email: "u@fastly-secrets.org", VerifiedAt: verifiedAt})
	c.publishVerified(ctx, evs)
	c.publishRaw(ctx, schemas.SubjectEmailVerified, []byte(`{"user_id":"bad","email":`), "")

	coms := []string{"lapse-secrets.com", "stays-secrets.com"}
	waitFor(t, 90*time.Second, "the .com domains to be checked", c.checkedSince(ctx, coms, time.Time{}))
	// The lapse: redemption, so the three addresses are unverified.
	c.rdap.Set("lapse-secrets.com", fakerdap.Answer{Phase: lifecycle.PhaseRedemption})
	since := c.forceRecheck(ctx, coms)
	waitFor(t, 90*time.Second, "the lapse to be observed", c.checkedSince(ctx, coms, since))
	waitFor(t, 60*time.Second, "the lapsed addresses to be unverified", func() (bool, string) {
		es, err := c.emails(ctx)
		if err != nil {
			return false, err.Error()
		}
		n := 0
		for email, e := range es {
			if strings.HasSuffix(email, "@lapse-secrets.com") && !e.Verified {
				n++
			}
		}
		return n == 3, fmt.Sprintf("%d of 3 unverified", n)
	})
	// The failing providers were asked (and failed) at least once.
	waitFor(t, 60*time.Second, "Fastly to be asked", func() (bool, string) {
		_, ok := fastlyKeys.Load(secrets["FASTLY_API_KEY"])
		return ok, "no request with the Fastly key yet"
	})
	waitFor(t, 60*time.Second, "the .net lookup to fail", func() (bool, string) {
		var n int
		err := c.pool.QueryRow(ctx, `SELECT count(*) FROM domains WHERE name = 'down-secrets.net' AND check_failures > 0`).Scan(&n)
		return err == nil && n == 1, fmt.Sprintf("down-secrets.net failures not counted yet (%v)", err)
	})
	c.quiet(ctx, 60*time.Second)

	// The override's credentials were used: the RDAP server saw them.
	if n := c.rdap.BasicAuthRequests(secrets["RDAP override userinfo user"], secrets["RDAP override userinfo secret"]); n == 0 {
		t.Errorf("the RDAP server got no request with the override's basic-auth credentials")
	} else {
		t.Logf("the RDAP server got %d requests with the override's basic-auth credentials", n)
	}

	// What operators and the host see.
	operator := func(env []string, args ...string) {
		out, err := testbin.Run(ctx, t, append(append([]string(nil), c.env...), env...), args...)
		scan.scanLines("output", "of `"+strings.Join(args, " ")+"`", out+fmt.Sprint(err))
	}
	operator(nil, "status", "u0@lapse-secrets.com", "--json")
	operator(nil, "status", "lapse-secrets.com")
	operator(nil, "status", "down-secrets.net", "--json")
	operator(nil, "check", "lapse-secrets.com", "--json")
	operator(nil, "check", "stays-secrets.com")
	operator(nil, "check", "down-secrets.net", "--json")
	operator(nil, "check", "fastly-secrets.org", "--json")
	operator([]string{"DOMAINGUARD_PROVIDER=domainr", "FASTLY_API_KEY=", fmt.Sprintf("DOMAINR_API_URL=http://127.0.0.1:%d", deadPort)},
		"check", "fastly-secrets.org", "--json")
	operator(nil, "coverage", "--json")
	operator(nil, "coverage")
	operator(nil, "version")
	operator(nil, "dlq", "list")
	operator(nil, "breaker", "status")
	// Unreachable servers: the errors name them.
	deadDB := *dbURL
	deadDB.Host = fmt.Sprintf("127.0.0.1:%d", deadPort)
	deadDB.User = url.UserPassword(dbURL.User.Username(), secrets["DATABASE_URL (dead) password"])
	operator([]string{"DATABASE_URL=" + deadDB.String()}, "status", "u0@lapse-secrets.com")
	operator([]string{fmt.Sprintf("NATS_URL=nats://dg:%s@127.0.0.1:%d", secrets["NATS_URL (dead server) password"], deadPort)}, "dlq", "list")

	get := func(kind, u string, hdr http.Header) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range hdr {
			req.Header[k] = v
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Errorf("GET %s: %v", u, err)
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %s", u, resp.Status)
		}
		scan.scanLines(kind, u, string(body))
	}
	if !api.WaitOutput("listening", 30*time.Second) || !console.WaitOutput("listening", 30*time.Second) {
		t.Fatalf("api or console did not start")
	}
	auth := http.Header{"Authorization": {"Bearer " + secrets["DOMAINGUARD_API_TOKENS token"]}}
	for _, email := range []string{"u0@lapse-secrets.com", "u@down-secrets.net", "u@fastly-secrets.org"} {
		get("host API", "http://"+apiAddr+"/v1/addresses/"+url.PathEscape(email), auth)
	}
	for _, page := range []string{"/", "/search?q=u0@lapse-secrets.com", "/search?q=lapse-secrets.com", "/search?q=down-secrets.net", "/audit", "/dlq", "/breaker", "/holds"} {
		get("console page", "http://"+consoleAddr+page, nil)
	}

	// Every table of the database, row by row.
	texts := func(query string) []string {
		rows, err := c.pool.Query(ctx, query)
		if err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		out, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		return out
	}
	tables := texts(`SELECT quote_ident(table_schema) || '.' || quote_ident(table_name) FROM information_schema.tables
		WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1`)
	rowsOf := map[string]int{}
	for _, table := range tables {
		rows := texts(`SELECT t::text FROM ` + table + ` t`)
		for i, row := range rows {
			scan.scan("database row", fmt.Sprintf("%s #%d", table, i+1), row)
		}
		rowsOf[strings.TrimPrefix(table, "domainguard.")] = len(rows)
	}
	for _, table := range []string{"domain_observations", "domains", "audit_log", "outbox"} {
		if rowsOf[table] == 0 {
			t.Errorf("table %s is empty: the test wrote nothing to look at (tables: %v)", table, rowsOf)
		}
	}

	// Every message of every stream.
	msgsOf := map[string]int{}
	names := c.js.StreamNames(ctx)
	for name := range names.Name() {
		s, err := c.js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for seq := info.State.FirstSeq; seq > 0 && seq <= info.State.LastSeq; seq++ {
			m, err := s.GetMsg(ctx, seq)
			if err != nil {
				continue // deleted (acked work-queue messages)
			}
			text := m.Subject + " " + fmt.Sprint(m.Header) + " " + string(m.Data)
			scan.scan("stream message", fmt.Sprintf("%s #%d (%s)", name, seq, m.Subject), text)
			msgsOf[name]++
		}
	}
	if err := names.Err(); err != nil && err != jetstream.ErrEndOfData {
		t.Fatal(err)
	}
	for _, stream := range []string{"AUDIT", "DOMAIN_EVENTS", "DLQ"} {
		if msgsOf[c.topo.Namespace.Stream(stream)] == 0 {
			t.Errorf("stream %s holds no message: the test wrote nothing to look at (streams: %v)", stream, msgsOf)
		}
	}

	// Every line every process printed.
	if !notifier.WaitOutput("webhook", 30*time.Second) {
		t.Errorf("the notifier never reported its failing webhook")
	}
	c.stopAll()
	_ = api.Stop(15 * time.Second)
	_ = console.Stop(15 * time.Second)
	_ = notifier.Stop(15 * time.Second)
	c.mu.Lock()
	procs := map[string]*testbin.Process{"api": api, "console": console, "notify-example": notifier}
	for r, p := range c.procs {
		procs[r] = p
	}
	c.mu.Unlock()
	for name, p := range procs {
		scan.scanLines("log line", "of "+name, p.Output())
	}

	kinds := make([]string, 0, len(scan.scanned))
	for k, n := range scan.scanned {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
	}
	sort.Strings(kinds)
	t.Logf("scanned: %s; tables %v; streams %v", strings.Join(kinds, ", "), rowsOf, msgsOf)
	for _, kind := range []string{"log line", "database row", "stream message", "output", "host API", "console page"} {
		if scan.scanned[kind] == 0 {
			t.Errorf("no %s scanned", kind)
		}
	}
	sort.Strings(scan.leaks)
	for _, l := range scan.leaks {
		t.Errorf("leak: %s", l)
	}
	if len(scan.leaks) > 0 {
		t.Logf("%d leaks", len(scan.leaks))
	}
}
