package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/domainguard/domainguard/internal/broker"
	"github.com/domainguard/domainguard/internal/fakerdap"
	"github.com/domainguard/domainguard/internal/postgres"
	"github.com/domainguard/domainguard/internal/testbin"
	"github.com/domainguard/domainguard/internal/testdb"
	"github.com/domainguard/domainguard/internal/testnats"
	"github.com/domainguard/domainguard/internal/testroles"
	"github.com/domainguard/domainguard/schemas"
)

// long reports whether the long form of the suite was asked for.
func long() bool { return os.Getenv("DOMAINGUARD_E2E_LONG") == "1" }

// The consumers' ack waits in the suite (DOMAINGUARD_CHECK_ACK_WAIT,
// DOMAINGUARD_EVENT_ACK_WAIT).
const (
	checkAckWait = 10 * time.Second
	eventAckWait = 5 * time.Second
)

// roles are the binary's role commands the suite runs as processes.
var roles = []string{"producer", "checker", "enforcer"}

// ---------------------------------------------------------------------------
// A private nats-server process, so a test may restart it.

type natsServer struct {
	t    testing.TB
	bin  string
	port int
	dir  string
	// conf, when set, is the configuration file the server runs with
	// (testroles.WriteNATSConfig: the shipped users) and env its
	// environment (their passwords).
	conf string
	env  []string
	// user and pass, when set, are the one user the server accepts
	// (nats-server --user/--pass).
	user, pass string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	log  *bytes.Buffer
}

func natsServerBinary(t testing.TB) string {
	if p, err := exec.LookPath("nats-server"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatal("e2e: nats-server binary not found (Debian: apt install nats-server)")
	return ""
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startNATS runs nats-server with JetStream on a free loopback port and a
// store under a temp dir; it is stopped at cleanup.
func startNATS(t testing.TB) *natsServer { return startNATSWith(t, false, "", "") }

// startNATSWith is startNATS; with secure the server runs with the users
// and permissions of deploy/nats/auth.conf, with user and pass (not
// secure) it accepts only that user.
func startNATSWith(t testing.TB, secure bool, user, pass string) *natsServer {
	n := &natsServer{t: t, bin: natsServerBinary(t), port: freePort(t), dir: t.TempDir(), user: user, pass: pass}
	if secure {
		n.conf = testroles.WriteNATSConfig(t, n.dir, n.port)
		n.env = append([]string{"PATH=" + os.Getenv("PATH")}, testroles.NATSServerEnv()...)
	}
	n.start()
	t.Cleanup(func() {
		n.stop()
		if t.Failed() {
			n.mu.Lock()
			t.Logf("--- nats-server log (tail) ---\n%s", tail(n.log.String(), 4<<10))
			n.mu.Unlock()
		}
	})
	return n
}

func (n *natsServer) URL() string { return "nats://127.0.0.1:" + strconv.Itoa(n.port) }

// natsPasswordUser is the one user of a server started with a password.
const natsPasswordUser = "dg"

// userURL is URL with the server's user and password, if it has them.
func (n *natsServer) userURL() string {
	if n.user == "" {
		return n.URL()
	}
	return "nats://" + n.user + ":" + n.pass + "@127.0.0.1:" + strconv.Itoa(n.port)
}

func (n *natsServer) start() {
	n.t.Helper()
	cmd := exec.Command(n.bin, "-a", "127.0.0.1", "-p", strconv.Itoa(n.port), "-js", "-sd", n.dir)
	if n.user != "" {
		cmd.Args = append(cmd.Args, "--user", n.user, "--pass", n.pass)
	}
	if n.conf != "" {
		cmd = exec.Command(n.bin, "-c", n.conf)
		cmd.Env = n.env
	}
	buf := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = &lockedWriter{mu: &n.mu, w: buf}, &lockedWriter{mu: &n.mu, w: buf}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		n.t.Fatalf("start nats-server: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	n.mu.Lock()
	n.cmd, n.done, n.log = cmd, done, buf
	n.mu.Unlock()
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(n.port)), time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("nats-server did not listen on %d: %v\n%s", n.port, err, buf.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends SIGTERM (a clean shutdown that flushes the store) and waits.
func (n *natsServer) stop() {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// crash SIGKILLs the server (it writes nothing more to its store) and
// waits until it is gone; start runs it again on the same port and store.
func (n *natsServer) crash() {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.mu.Unlock()
	_ = cmd.Process.Kill()
	<-done
}

// restart stops the server and starts it again on the same port and store.
func (n *natsServer) restart() {
	n.stop()
	n.start()
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.w.Len() > 4<<20 {
		l.w.Reset()
	}
	return l.w.Write(p)
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

// ---------------------------------------------------------------------------
// The cluster: database, broker, provider and the role processes.

type clusterOptions struct {
	// privatePG starts a private socket-only PostgreSQL cluster the test
	// may restart, instead of a database on the shared server.
	privatePG bool
	// quirky adds the quirky provider for .org (broken answers).
	quirky bool
	// extraEnv is added to every role's environment.
	extraEnv []string
	// secure runs every process with the shipped least-privilege
	// configuration: the NATS users of deploy/nats/auth.conf (the test
	// connects as the operator, which creates the topology; roles run with
	// DOMAINGUARD_MANAGE_TOPOLOGY=false) and the SQL roles of
	// deploy/sql/roles.sql (each role logs in as a user of its group).
	secure bool
	// tlds the fake RDAP server's bootstrap lists; default com, net, test,
	// example.
	tlds []string
	// natsPassword, when set (not with secure), makes the NATS server
	// accept only the user "dg" with this password; every process gets
	// it inside NATS_URL (nats://dg:PASSWORD@host:port).
	natsPassword string
	// allInOne runs the one `domainguard run` process (every role in one,
	// as the README's quick start does) instead of one process per role;
	// it gets the same NATS_URL and DATABASE_URL. Not with secure.
	allInOne bool
}

type cluster struct {
	t      *testing.T
	nats   *natsServer
	dbURL  string
	pool   *pgxpool.Pool
	pg     *postgres.Private
	pgDir  string
	rdap   *fakerdap.Server
	quirky *quirkyServer
	env    []string
	// roleEnv is added to one role's environment (secure clusters: its
	// NATS user and database login).
	roleEnv  map[string][]string
	sqlRoles *testroles.SQLRoles
	// commands names the processes startAll, stopAll and exited handle:
	// roles, or "run" (clusterOptions.allInOne).
	commands []string

	nc   *nats.Conn
	js   jetstream.JetStream
	topo broker.Topology

	mu    sync.Mutex
	procs map[string]*testbin.Process
	// starts counts how often each role was started.
	starts map[string]int
	// supervise restarts a role process that exited by itself (as compose
	// or Kubernetes would) instead of failing the test; revived counts it.
	supervise bool
	revived   []string
}

func newCluster(t *testing.T, o clusterOptions) *cluster {
	t.Helper()
	// Build (or reuse) the binary before starting servers, so the build
	// time does not count against any wait below.
	testbin.Path(t)
	c := &cluster{t: t, procs: map[string]*testbin.Process{}, starts: map[string]int{}, commands: roles}
	if o.allInOne {
		if o.secure {
			t.Fatal("e2e: allInOne runs one process; secure needs one per role")
		}
		c.commands = []string{"run"}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	if o.privatePG {
		dir, err := os.MkdirTemp("", "dge2e")
		if err != nil {
			t.Fatal(err)
		}
		c.pgDir = dir
		t.Cleanup(func() { os.RemoveAll(dir) })
		c.startPG(ctx)
		t.Cleanup(func() {
			if c.pg != nil {
				sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer scancel()
				_ = c.pg.Stop(sctx)
			}
		})
		c.dbURL = c.pg.URL
		pool, err := postgres.Open(ctx, c.dbURL)
		if err != nil {
			t.Fatalf("open private postgres: %v", err)
		}
		t.Cleanup(pool.Close)
		if _, err := postgres.Migrate(ctx, pool, schemas.Migrations); err != nil {
			t.Fatalf("migrate private postgres: %v", err)
		}
		c.pool = pool
	} else {
		c.pool, c.dbURL = testdb.New(t)
	}

	natsUser := ""
	if o.natsPassword != "" {
		natsUser = natsPasswordUser
	}
	c.nats = startNATSWith(t, o.secure, natsUser, o.natsPassword)
	connOpts := broker.ConnectOptions{URL: c.nats.URL(), Name: "e2e " + t.Name(), Logger: testnats.Logger(t),
		User: natsUser, Password: o.natsPassword}
	if o.secure {
		connOpts.User, connOpts.Password, connOpts.InboxPrefix = "operator", testroles.NATSPassword("operator"), "_INBOX_operator"
	}
	nc, js, err := broker.Connect(ctx, connOpts)
	if err != nil {
		t.Fatalf("connect nats: %v", err)
	}
	t.Cleanup(nc.Close)
	c.nc, c.js = nc, js
	// The same (default, unprefixed) topology the binaries ensure.
	c.topo = broker.Topology{Logger: testnats.Logger(t), CheckAckWait: checkAckWait, EventAckWait: eventAckWait}.WithDefaults()
	if err := c.topo.Ensure(ctx, js); err != nil {
		t.Fatalf("ensure topology: %v", err)
	}

	tlds := o.tlds
	if len(tlds) == 0 {
		tlds = []string{"com", "net", "test", "example"}
	}
	c.rdap = fakerdap.NewWithOptions(t, fakerdap.Options{TLDs: tlds})
	ca := c.rdap.CACertPEM()
	overrides := ""
	if o.quirky {
		c.quirky = newQuirkyServer(t)
		ca = append(ca, c.quirky.caPEM()...)
		overrides = "org=" + c.quirky.URL()
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, ca, 0o644); err != nil {
		t.Fatal(err)
	}
	c.env = []string{
		"DATABASE_URL=" + c.dbURL,
		"NATS_URL=" + c.nats.userURL(),
		"DOMAINGUARD_PROVIDER=rdap",
		"RDAP_BOOTSTRAP_URL=" + c.rdap.BootstrapURL(),
		// The child processes trust the fake providers' test certificates.
		"SSL_CERT_FILE=" + caFile,
		"DOMAINGUARD_LOOKUPS_PER_SECOND=2000",
		"DOMAINGUARD_CHECK_CONCURRENCY=32",
		"DOMAINGUARD_DAILY_LOOKUP_BUDGET=unlimited",
		"DOMAINGUARD_METRICS_ADDR=off",
		// The shortest sweep interval the producer accepts: a domain whose
		// next_check_at is moved to now() by a test is enqueued within 1s.
		"DOMAINGUARD_SWEEP_INTERVAL=1s",
		"DOMAINGUARD_LOG_LEVEL=info",
		// Short ack waits: a crashed role's messages come back within
		// seconds, not minutes, and a lookup slower than the check ack
		// wait (the provider timeouts of the fault run take 15s) must be
		// kept alive by the checker's progress reports.
		"DOMAINGUARD_CHECK_ACK_WAIT=" + checkAckWait.String(),
		"DOMAINGUARD_EVENT_ACK_WAIT=" + eventAckWait.String(),
	}
	if overrides != "" {
		c.env = append(c.env, "DOMAINGUARD_RDAP_OVERRIDES="+overrides)
	}
	c.env = append(c.env, o.extraEnv...)
	c.roleEnv = map[string][]string{}
	if o.secure {
		c.sqlRoles = testroles.ApplySQLRoles(t, c.pool, c.dbURL)
		for _, r := range roles {
			env := []string{"NATS_USER=" + r, "NATS_PASSWORD=" + testroles.NATSPassword(r), "DOMAINGUARD_MANAGE_TOPOLOGY=false"}
			if r != "checker" { // the checker has no database access
				env = append(env, "DATABASE_URL="+c.sqlRoles.LoginURL(t, r))
			}
			c.roleEnv[r] = env
		}
		c.roleEnv["operator"] = []string{"NATS_USER=operator", "NATS_PASSWORD=" + testroles.NATSPassword("operator")}
	}
	return c
}

func (c *cluster) startPG(ctx context.Context) {
	c.t.Helper()
	pg, err := postgres.StartPrivate(ctx, c.pgDir, nil)
	if err != nil {
		c.t.Fatalf("start private postgres: %v", err)
	}
	c.pg = pg
}

// restartPG stops the private cluster (fast shutdown: open connections are
// cut) and starts it again on the same data directory.
func (c *cluster) restartPG() {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.pg.Stop(ctx); err != nil {
		c.t.Fatalf("stop private postgres: %v", err)
	}
	c.startPG(ctx)
}

// start runs one role process (replacing a dead one of the same name).
func (c *cluster) start(role string) {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.starts[role]++
	name := fmt.Sprintf("%s#%d", role, c.starts[role])
	env := append(append([]string(nil), c.env...), c.roleEnv[role]...)
	c.procs[role] = testbin.Start(c.t, testbin.Options{Name: name, Env: env}, role)
}

func (c *cluster) startAll() {
	for _, r := range c.commands {
		c.start(r)
	}
}

// kill SIGKILLs a role (a crash) and returns once it is gone.
func (c *cluster) kill(role string) {
	c.mu.Lock()
	p := c.procs[role]
	c.mu.Unlock()
	if p != nil {
		p.Kill()
	}
}

// stopAll sends SIGTERM to every role and checks each exits cleanly.
func (c *cluster) stopAll() {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.commands {
		if p := c.procs[r]; p != nil {
			if err := p.Stop(30 * time.Second); err != nil {
				c.t.Errorf("%s did not stop cleanly: %v", p.Name, err)
			}
		}
	}
}

// exited lists role processes that ended by themselves. With supervise
// it restarts them and returns nil.
func (c *cluster) exited() []string {
	c.mu.Lock()
	var out, dead []string
	for _, r := range c.commands {
		if p := c.procs[r]; p != nil && p.Exited() {
			out = append(out, p.Name)
			dead = append(dead, r)
		}
	}
	c.mu.Unlock()
	if !c.supervise || len(out) == 0 {
		return out
	}
	for i, r := range dead {
		c.t.Logf("supervisor: %s exited by itself; restarting it", out[i])
		c.start(r)
	}
	c.mu.Lock()
	c.revived = append(c.revived, out...)
	c.mu.Unlock()
	return nil
}

// ---------------------------------------------------------------------------
// Host events.

// verified is one accounts.email.verified event.
type verified struct {
	UserID     string
	Email      string
	VerifiedAt time.Time
}

// publishVerified publishes the events as CloudEvents (asynchronously,
// waiting for every ack).
func (c *cluster) publishVerified(ctx context.Context, evs []verified) {
	c.t.Helper()
	subject := c.topo.Namespace.Subject(schemas.SubjectEmailVerified)
	var futures []jetstream.PubAckFuture
	for _, v := range evs {
		ev, err := schemas.NewEvent("e2e/host", schemas.SubjectEmailVerified, v.Email, time.Now(),
			schemas.EmailVerified{UserID: v.UserID, Email: v.Email, VerifiedAt: v.VerifiedAt})
		if err != nil {
			c.t.Fatal(err)
		}
		body, err := ev.Marshal()
		if err != nil {
			c.t.Fatal(err)
		}
		msg := &nats.Msg{Subject: subject, Data: body, Header: nats.Header{}}
		msg.Header.Set(schemas.HeaderMsgID, ev.ID)
		f, err := c.js.PublishMsgAsync(msg)
		if err != nil {
			c.t.Fatalf("publish intake: %v", err)
		}
		futures = append(futures, f)
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			c.t.Fatalf("publish intake %s: %v", f.Msg().Header.Get(schemas.HeaderMsgID), err)
		case <-ctx.Done():
			c.t.Fatalf("publish intake: %v", ctx.Err())
		}
	}
}

// publishRaw publishes one raw intake message on subject (unprefixed).
func (c *cluster) publishRaw(ctx context.Context, subject string, body []byte, msgID string) uint64 {
	c.t.Helper()
	msg := &nats.Msg{Subject: c.topo.Namespace.Subject(subject), Data: body, Header: nats.Header{}}
	if msgID != "" {
		msg.Header.Set(schemas.HeaderMsgID, msgID)
	}
	ack, err := c.js.PublishMsg(ctx, msg)
	if err != nil {
		c.t.Fatalf("publish raw %s (%d bytes): %v", subject, len(body), err)
	}
	return ack.Sequence
}

// ---------------------------------------------------------------------------
// Scheduler control ("simulated time").

// forceRecheck makes the domains due now (as if their next check time had
// come) and returns the database time before the change.
func (c *cluster) forceRecheck(ctx context.Context, domains []string) time.Time {
	c.t.Helper()
	var now time.Time
	if err := c.pool.QueryRow(ctx, `SELECT now()`).Scan(&now); err != nil {
		c.t.Fatalf("db now: %v", err)
	}
	if _, err := c.pool.Exec(ctx, `UPDATE domains SET next_check_at = now() WHERE name = ANY($1)`, domains); err != nil {
		c.t.Fatalf("force recheck: %v", err)
	}
	return now
}

// checkedSince is a waitFor condition: every one of domains was checked
// at or after since (and the role processes still run).
func (c *cluster) checkedSince(ctx context.Context, domains []string, since time.Time) func() (bool, string) {
	return func() (bool, string) {
		if ex := c.exited(); len(ex) > 0 {
			c.t.Fatalf("role processes exited: %v", ex)
		}
		ds, err := c.domains(ctx)
		if err != nil {
			return false, err.Error()
		}
		for _, d := range domains {
			if r, ok := ds[d]; !ok || r.LastCheckedAt == nil || r.LastCheckedAt.Before(since) {
				return false, d + " not checked yet"
			}
		}
		return true, ""
	}
}

// waitFor polls cond until it reports done, failing the test after timeout
// with cond's last explanation.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	var why string
	for {
		var ok bool
		ok, why = cond()
		if ok {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("timed out after %s waiting for %s: %s", timeout, what, why)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// ---------------------------------------------------------------------------
// Reading the outcome.

type domainRow struct {
	Phase         string
	LastCheckedAt *time.Time
	CheckFailures int
}

func (c *cluster) domains(ctx context.Context) (map[string]domainRow, error) {
	rows, err := c.pool.Query(ctx, `SELECT name, phase, last_checked_at, check_failures FROM domains`)
	if err != nil {
		return nil, err
	}
	out := map[string]domainRow{}
	var name string
	var d domainRow
	_, err = pgx.ForEachRow(rows, []any{&name, &d.Phase, &d.LastCheckedAt, &d.CheckFailures}, func() error {
		out[name] = d
		return nil
	})
	return out, err
}

type emailRow struct {
	Domain   string
	Verified bool
	Reason   string
}

// emails returns every stored address keyed by email.
func (c *cluster) emails(ctx context.Context) (map[string]emailRow, error) {
	rows, err := c.pool.Query(ctx, `SELECT email, domain, verified, coalesce(unverify_reason, '') FROM emails`)
	if err != nil {
		return nil, err
	}
	out := map[string]emailRow{}
	var email string
	var e emailRow
	_, err = pgx.ForEachRow(rows, []any{&email, &e.Domain, &e.Verified, &e.Reason}, func() error {
		out[email] = e
		return nil
	})
	return out, err
}

type auditRow struct {
	ID, Type, Domain, Email string
}

func (c *cluster) auditLog(ctx context.Context) ([]auditRow, error) {
	rows, err := c.pool.Query(ctx, `SELECT id::text, type, coalesce(domain, ''), coalesce(email, '') FROM audit_log ORDER BY created_at, id`)
	if err != nil {
		return nil, err
	}
	var out []auditRow
	var r auditRow
	_, err = pgx.ForEachRow(rows, []any{&r.ID, &r.Type, &r.Domain, &r.Email}, func() error {
		out = append(out, r)
		return nil
	})
	return out, err
}

func (c *cluster) unsentOutbox(ctx context.Context) (int, error) {
	var n int
	err := c.pool.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE sent_at IS NULL`).Scan(&n)
	return n, err
}

// streamIDs reads every message of the (unprefixed) stream and counts the
// CloudEvent ids (or, for messages without one, the Nats-Msg-Id).
func (c *cluster) streamIDs(ctx context.Context, stream string) (map[string]int, error) {
	s, err := c.js.Stream(ctx, c.topo.Namespace.Stream(stream))
	if err != nil {
		return nil, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	if info.State.Msgs == 0 {
		return out, nil
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return nil, err
	}
	var got uint64
	for got < info.State.Msgs {
		batch, err := cons.Fetch(500, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return nil, err
		}
		n := 0
		for m := range batch.Messages() {
			n++
			got++
			var ev struct {
				ID string `json:"id"`
			}
			if json.Unmarshal(m.Data(), &ev) != nil || ev.ID == "" {
				ev.ID = "msgid:" + m.Headers().Get(schemas.HeaderMsgID)
			}
			out[ev.ID]++
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return nil, err
		}
		if n == 0 {
			return nil, fmt.Errorf("stream %s: read %d of %d messages", stream, got, info.State.Msgs)
		}
	}
	return out, nil
}

// deadLetters reads dlq.<stream>.
func (c *cluster) deadLetters(ctx context.Context, stream string) ([]schemas.DeadLetter, error) {
	s, err := c.js.Stream(ctx, c.topo.Namespace.Stream(schemas.StreamDLQ))
	if err != nil {
		return nil, err
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{c.topo.Namespace.DeadLetterSubject(stream)},
	})
	if err != nil {
		return nil, err
	}
	var out []schemas.DeadLetter
	for {
		batch, err := cons.Fetch(200, jetstream.FetchMaxWait(300*time.Millisecond))
		if err != nil {
			return nil, err
		}
		n := 0
		for m := range batch.Messages() {
			n++
			var dl schemas.DeadLetter
			if err := json.Unmarshal(m.Data(), &dl); err != nil {
				return nil, fmt.Errorf("dead letter: %w", err)
			}
			out = append(out, dl)
		}
		if n == 0 {
			return out, nil
		}
	}
}

// lastHeartbeat returns the last domains.checked.<domain> heartbeat.
func (c *cluster) lastHeartbeat(ctx context.Context, domain string) (schemas.DomainChecked, bool) {
	s, err := c.js.Stream(ctx, c.topo.Namespace.Stream(schemas.StreamDomainEvents))
	if err != nil {
		return schemas.DomainChecked{}, false
	}
	m, err := s.GetLastMsgForSubject(ctx, c.topo.Namespace.CheckedSubject(domain))
	if err != nil {
		return schemas.DomainChecked{}, false
	}
	_, hb, err := schemas.Decode[schemas.DomainChecked](m.Data)
	if err != nil {
		return schemas.DomainChecked{}, false
	}
	return hb, true
}

// pending reports the consumers' unprocessed and unacknowledged counts; ""
// when all are zero.
func (c *cluster) pending(ctx context.Context) string {
	var busy []string
	for _, sc := range []struct{ stream, durable string }{
		{schemas.StreamAccounts, broker.ConsumerIntake},
		{schemas.StreamDomainChecks, broker.ConsumerChecker},
		{schemas.StreamDomainEvents, broker.ConsumerEnforcer},
	} {
		cons, err := c.js.Consumer(ctx, c.topo.Namespace.Stream(sc.stream), sc.durable)
		if err != nil {
			busy = append(busy, fmt.Sprintf("%s: %v", sc.durable, err))
			continue
		}
		info, err := cons.Info(ctx)
		if err != nil {
			busy = append(busy, fmt.Sprintf("%s: %v", sc.durable, err))
			continue
		}
		if info.NumPending+uint64(info.NumAckPending) != 0 {
			busy = append(busy, fmt.Sprintf("%s: pending %d, ack pending %d", sc.durable, info.NumPending, info.NumAckPending))
		}
	}
	return strings.Join(busy, "; ")
}

// auditPublished checks that every audit_log row was published to AUDIT
// exactly once by id and nothing else is there; "" when so.
func (c *cluster) auditPublished(ctx context.Context) (string, map[string]int) {
	rows, err := c.auditLog(ctx)
	if err != nil {
		return err.Error(), nil
	}
	ids, err := c.streamIDs(ctx, schemas.StreamAudit)
	if err != nil {
		return err.Error(), nil
	}
	var problems []string
	want := map[string]bool{}
	for _, r := range rows {
		want[r.ID] = true
		if n := ids[r.ID]; n != 1 {
			problems = append(problems, fmt.Sprintf("audit %s (%s %s) published %d times", r.ID, r.Type, r.Domain, n))
		}
	}
	for id, n := range ids {
		if !want[id] {
			problems = append(problems, fmt.Sprintf("AUDIT has %s (%d times) that audit_log lacks", id, n))
		}
	}
	sort.Strings(problems)
	if len(problems) > 5 {
		problems = append(problems[:5], fmt.Sprintf("... and %d more", len(problems)-5))
	}
	return strings.Join(problems, "; "), ids
}

// quiet waits until the pipeline is idle: no unsent outbox rows, every
// consumer drained and AUDIT in step with audit_log.
func (c *cluster) quiet(ctx context.Context, timeout time.Duration) time.Duration {
	c.t.Helper()
	return waitFor(c.t, timeout, "the pipeline to drain", func() (bool, string) {
		if ex := c.exited(); len(ex) > 0 {
			c.t.Fatalf("role processes exited: %v", ex)
		}
		if n, err := c.unsentOutbox(ctx); err != nil || n > 0 {
			return false, fmt.Sprintf("outbox unsent %d (%v)", n, err)
		}
		if p := c.pending(ctx); p != "" {
			return false, p
		}
		if p, _ := c.auditPublished(ctx); p != "" {
			return false, p
		}
		return true, ""
	})
}
