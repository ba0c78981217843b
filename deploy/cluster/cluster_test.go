package cluster_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/domainguard/domainguard/internal/broker"
	"github.com/domainguard/domainguard/internal/fakerdap"
	"github.com/domainguard/domainguard/internal/testbin"
	"github.com/domainguard/domainguard/internal/testdb"
	"github.com/domainguard/domainguard/lifecycle"
	"github.com/domainguard/domainguard/producer"
	"github.com/domainguard/domainguard/schemas"
)

// EnvLong turns on the full form of TestClusterFailover.
const EnvLong = "DOMAINGUARD_CLUSTER_LONG"

// testAckWait replaces the consumers' ack waits (defaults 2m for checks,
// 1m for events; DOMAINGUARD_CHECK_ACK_WAIT, DOMAINGUARD_EVENT_ACK_WAIT):
// it bounds how long the messages a SIGKILLed replica held wait before
// redelivery, which the test would otherwise spend minutes on.
// docs/SCALING.md discusses the trade-off.
const testAckWait = 10 * time.Second

// failoverScenario sizes one run of TestClusterFailover.
type failoverScenario struct {
	domains          int           // registrable domains
	addressesPer     int           // verified addresses per domain
	lapseEvery       int           // every n-th domain lapses
	producers        int           // producer processes
	checkers         int           // checker processes
	enforcers        int           // enforcer processes
	concurrency      int           // DOMAINGUARD_CHECK_CONCURRENCY per checker
	latency          time.Duration // fake provider latency per lookup
	killEveryRole    bool          // SIGKILL one producer and one enforcer too (the checker always)
	completeDeadline time.Duration // for the whole pipeline to finish
}

var (
	shortScenario = failoverScenario{
		domains: 500, addressesPer: 4, lapseEvery: 40,
		producers: 2, checkers: 3, enforcers: 2, concurrency: 4,
		latency: 150 * time.Millisecond, completeDeadline: 60 * time.Second,
	}
	longScenario = failoverScenario{
		domains: 5000, addressesPer: 4, lapseEvery: 40,
		producers: 2, checkers: 3, enforcers: 2, concurrency: 8,
		latency: 50 * time.Millisecond, killEveryRole: true, completeDeadline: 10 * time.Minute,
	}
)

// lapsePhases cycle over the lapsing domains, with the reason each must
// produce.
var lapsePhases = []struct {
	phase  lifecycle.Phase
	reason lifecycle.Reason
}{
	{lifecycle.PhaseExpired, lifecycle.ReasonExpired},
	{lifecycle.PhaseRedemption, lifecycle.ReasonRedemption},
	{lifecycle.PhasePendingDelete, lifecycle.ReasonPendingDelete},
	{lifecycle.PhaseReleased, lifecycle.ReasonReleased},
}

// TestClusterFailover runs the pipeline as separate processes on a 3-node
// JetStream cluster with R3 streams and crashes parts of it mid-run: the
// node leading DOMAIN_CHECKS (brought back later) and a checker; in the
// full form (DOMAINGUARD_CLUSTER_LONG=1: 5,000 domains, 20,000 addresses)
// also a producer and an enforcer. The end state must be exact.
func TestClusterFailover(t *testing.T) {
	sc := shortScenario
	if os.Getenv(EnvLong) != "" {
		sc = longScenario
	}
	runFailover(t, sc)
}

// pipeline is everything one test run starts.
type pipeline struct {
	t      *testing.T
	nats   *natsCluster
	js     jetstream.JetStream
	pool   *pgxpool.Pool
	fake   *fakerdap.Server
	topo   broker.Topology
	env    []string
	procs  map[string]*testbin.Process
	domain []string
	begin  time.Time
}

// logf logs with the time since the pipeline was created.
func (p *pipeline) logf(format string, args ...any) {
	p.t.Helper()
	p.t.Logf("[%6.1fs] "+format, append([]any{time.Since(p.begin).Seconds()}, args...)...)
}

func randomPrefix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "cl" + hex.EncodeToString(b)
}

// newPipeline starts the NATS cluster, the database and the fake provider,
// ensures the R3 topology and returns the environment for the roles.
func newPipeline(t *testing.T, latency time.Duration, extraEnv ...string) *pipeline {
	t.Helper()
	begin := time.Now()
	c := startNATSCluster(t)
	nc, js := c.connect()
	t.Cleanup(nc.Close)
	pool, dbURL := testdb.New(t)
	fake := fakerdap.New(t)
	fake.SetDefault(fakerdap.Answer{Delay: latency})
	caFile := filepath.Join(t.TempDir(), "fakerdap-ca.pem")
	if err := fake.WriteCACert(caFile); err != nil {
		t.Fatal(err)
	}
	prefix := randomPrefix()
	topo := broker.Topology{Namespace: schemas.Namespace{Prefix: prefix}, Replicas: 3,
		CheckAckWait: testAckWait, EventAckWait: testAckWait, Logger: slog.New(slog.DiscardHandler)}.WithDefaults()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := topo.Ensure(ctx, js); err != nil {
		t.Fatalf("ensure R3 topology: %v", err)
	}
	env := append([]string{
		"DATABASE_URL=" + dbURL,
		"NATS_URL=" + c.URL(),
		"NATS_USER=" + operatorUser,
		"NATS_PASSWORD=" + operatorPassword,
		"DOMAINGUARD_SUBJECT_PREFIX=" + prefix,
		"DOMAINGUARD_STREAM_REPLICAS=3",
		"DOMAINGUARD_PROVIDER=rdap",
		"RDAP_BOOTSTRAP_URL=" + fake.BootstrapURL(),
		"SSL_CERT_FILE=" + caFile, // the checkers trust the fake RDAP server's certificate
		"DOMAINGUARD_METRICS_ADDR=off",
		"DOMAINGUARD_RECHECK_INTERVAL=720h",
		"DOMAINGUARD_DAILY_LOOKUP_BUDGET=0",
		"DOMAINGUARD_LOG_LEVEL=info",
		"DOMAINGUARD_CHECK_ACK_WAIT=" + testAckWait.String(),
		"DOMAINGUARD_EVENT_ACK_WAIT=" + testAckWait.String(),
	}, extraEnv...)
	return &pipeline{t: t, nats: c, js: js, pool: pool, fake: fake, topo: topo, env: env, procs: map[string]*testbin.Process{}, begin: begin}
}

// start runs one role process and waits until it has connected and
// ensured the topology.
func (p *pipeline) start(name, role string, extraEnv ...string) *testbin.Process {
	p.t.Helper()
	proc := testbin.Start(p.t, testbin.Options{Name: name, Env: append(append([]string{}, p.env...), extraEnv...)}, role)
	p.procs[name] = proc
	return proc
}

func (p *pipeline) waitStarted(timeout time.Duration, procs ...*testbin.Process) {
	p.t.Helper()
	for _, proc := range procs {
		if !proc.WaitOutput(`"msg":"starting"`, timeout) {
			p.t.Fatalf("%s did not start within %s:\n%s", proc.Name, timeout, testbin.Tail(proc.Output(), 4<<10))
		}
	}
}

// seed imports addressesPer verified addresses for each of n domains
// (verified a year ago) and scripts every lapseEvery-th domain to lapse.
// It returns the expected unverify reason per lapsing domain.
func (p *pipeline) seed(ctx context.Context, n, addressesPer, lapseEvery int, latency time.Duration) map[string]lifecycle.Reason {
	p.t.Helper()
	tlds := []string{"com", "net", "org"}
	verifiedAt := time.Now().AddDate(-1, 0, 0).UTC().Format(time.RFC3339)
	var csv bytes.Buffer
	csv.WriteString("user_id,email,verified_at\n")
	lapsing := map[string]lifecycle.Reason{}
	for i := range n {
		d := fmt.Sprintf("dg-cluster-%05d.%s", i, tlds[i%len(tlds)])
		p.domain = append(p.domain, d)
		for a := range addressesPer {
			fmt.Fprintf(&csv, "u%05d-%d,user%d@%s,%s\n", i, a, a, d, verifiedAt)
		}
		if lapseEvery > 0 && i%lapseEvery == lapseEvery/2 {
			lp := lapsePhases[len(lapsing)%len(lapsePhases)]
			p.fake.Set(d, fakerdap.Answer{Phase: lp.phase, Delay: latency})
			lapsing[d] = lp.reason
		}
	}
	res, err := producer.Import(ctx, p.pool, strings.NewReader(csv.String()), producer.ImportOptions{})
	if err != nil {
		p.t.Fatalf("import: %v", err)
	}
	if res.Inserted != int64(n*addressesPer) || res.NewDomains != int64(n) || res.BadCount != 0 {
		p.t.Fatalf("import: %+v, want %d addresses on %d domains", res, n*addressesPer, n)
	}
	return lapsing
}

func (p *pipeline) checkedDomains(ctx context.Context) int {
	var n int
	if err := p.pool.QueryRow(ctx, `SELECT count(*) FROM domains WHERE last_checked_at IS NOT NULL`).Scan(&n); err != nil {
		p.t.Logf("count checked domains: %v", err)
		return -1
	}
	return n
}

// streamState returns a stream's state, each call bounded to 2s.
func (p *pipeline) streamState(ctx context.Context, stream string) (jetstream.StreamState, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	s, err := p.js.Stream(ctx, p.topo.Namespace.Stream(stream))
	if err != nil {
		return jetstream.StreamState{}, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return jetstream.StreamState{}, err
	}
	return info.State, nil
}

func (p *pipeline) consumerInfo(ctx context.Context, stream, durable string) (*jetstream.ConsumerInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c, err := p.js.Consumer(ctx, p.topo.Namespace.Stream(stream), durable)
	if err != nil {
		return nil, err
	}
	return c.Info(ctx)
}

// waitFor polls cond every 100ms until it holds or timeout passes.
func (p *pipeline) waitFor(timeout time.Duration, what string, cond func() (bool, string)) {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	var state string
	for {
		var ok bool
		ok, state = cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s: not reached within %s (%s)", what, timeout, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// failoverTimes are the measured recovery figures of a leader kill.
type failoverTimes struct {
	leader      string
	newLeader   string
	elected     time.Duration // kill → DOMAIN_CHECKS has a new leader
	delivering  time.Duration // kill → the checker consumer delivers new checks
	caughtUp    time.Duration // restart → the restarted node is a current replica again
	checkedKill int           // domains checked when the node was killed
}

func runFailover(t *testing.T, sc failoverScenario) {
	p := newPipeline(t, sc.latency,
		"DOMAINGUARD_SWEEP_INTERVAL=1s", // both producers race for the sweep lock every second
		fmt.Sprintf("DOMAINGUARD_CHECK_CONCURRENCY=%d", sc.concurrency),
		"DOMAINGUARD_LOOKUPS_PER_SECOND=100000", // no rate limit: the fake's latency paces the checks
		// The known subset lapses together; keep the breaker (tested in
		// enforcer) out of the way of this test's exact expectations.
		"DOMAINGUARD_BREAKER_PCT=50",
	)
	ctx, cancel := context.WithTimeout(context.Background(), sc.completeDeadline+2*time.Minute)
	defer cancel()
	lapsing := p.seed(ctx, sc.domains, sc.addressesPer, sc.lapseEvery, sc.latency)
	p.logf("cluster, database and %d domains / %d addresses (%d lapsing) ready",
		sc.domains, sc.domains*sc.addressesPer, len(lapsing))

	var all []*testbin.Process
	for i := range sc.enforcers {
		all = append(all, p.start(fmt.Sprintf("enforcer-%d", i+1), "enforcer"))
	}
	for i := range sc.checkers {
		all = append(all, p.start(fmt.Sprintf("checker-%d", i+1), "checker"))
	}
	for i := range sc.producers {
		all = append(all, p.start(fmt.Sprintf("producer-%d", i+1), "producer"))
	}
	p.waitStarted(90*time.Second, all...)
	p.logf("%d producers, %d checkers, %d enforcers running", sc.producers, sc.checkers, sc.enforcers)

	// Every domain enqueued (the sweep is done) and a fifth checked: kill
	// the node that leads DOMAIN_CHECKS.
	p.waitFor(sc.completeDeadline, "sweep enqueued every domain", func() (bool, string) {
		st, err := p.streamState(ctx, schemas.StreamDomainChecks)
		if err != nil {
			return false, err.Error()
		}
		return st.LastSeq >= uint64(sc.domains), fmt.Sprintf("last seq %d", st.LastSeq)
	})
	p.waitFor(sc.completeDeadline, "a fifth of the domains checked", func() (bool, string) {
		n := p.checkedDomains(ctx)
		return n >= sc.domains/5, fmt.Sprintf("%d checked", n)
	})
	ft := p.killChecksLeader(ctx)

	// A checker crashes while the old leader is still down.
	p.procs["checker-1"].Kill()
	p.logf("SIGKILLed checker-1 with %d domains checked", p.checkedDomains(ctx))
	if sc.killEveryRole {
		p.waitFor(sc.completeDeadline, "half of the domains checked", func() (bool, string) {
			n := p.checkedDomains(ctx)
			return n >= sc.domains/2, fmt.Sprintf("%d checked", n)
		})
		p.procs["enforcer-1"].Kill()
		p.procs["producer-1"].Kill()
		p.logf("SIGKILLed enforcer-1 and producer-1 with %d domains checked", p.checkedDomains(ctx))
	}

	// Bring the old leader back; it must catch up.
	restarted := time.Now()
	p.nats.restart(p.nats.node(ft.leader))
	for _, s := range []string{schemas.StreamAccounts, schemas.StreamDomainChecks, schemas.StreamDomainEvents, schemas.StreamAudit, schemas.StreamDLQ} {
		waitCurrentReplicas(ctx, t, p.js, p.topo.Namespace.Stream(s), 2)
	}
	ft.caughtUp = time.Since(restarted)

	p.waitComplete(ctx, sc)
	p.logf("pipeline complete")
	p.checkInvariants(ctx, sc, ft, lapsing)
	p.logf("RECOVERY: killed DOMAIN_CHECKS leader %s with %d/%d domains checked; new leader %s elected after %s; checks delivered again after %s; restarted node current on all streams after %s",
		ft.leader, ft.checkedKill, sc.domains, ft.newLeader, ft.elected.Round(10*time.Millisecond),
		ft.delivering.Round(10*time.Millisecond), ft.caughtUp.Round(10*time.Millisecond))
	p.stopAll(30 * time.Second)
}

// stopAll sends SIGTERM to every running role process at once and expects
// each to drain and exit 0.
func (p *pipeline) stopAll(timeout time.Duration) {
	p.t.Helper()
	errs := make(chan error, len(p.procs))
	running := 0
	for name, proc := range p.procs {
		if proc.Exited() {
			continue
		}
		running++
		go func() {
			if err := proc.Stop(timeout); err != nil {
				errs <- fmt.Errorf("%s: clean stop: %w", name, err)
				return
			}
			errs <- nil
		}()
	}
	for range running {
		if err := <-errs; err != nil {
			p.t.Error(err)
		}
	}
}

// killChecksLeader SIGKILLs the node leading DOMAIN_CHECKS and measures
// how long the stream is without a leader and the checkers without work.
func (p *pipeline) killChecksLeader(ctx context.Context) failoverTimes {
	p.t.Helper()
	stream := p.topo.Namespace.Stream(schemas.StreamDomainChecks)
	leader, err := streamLeader(ctx, p.js, stream)
	if err != nil || p.nats.node(leader) == nil {
		p.t.Fatalf("DOMAIN_CHECKS leader %q: %v", leader, err)
	}
	ci, err := p.consumerInfo(ctx, schemas.StreamDomainChecks, broker.ConsumerChecker)
	if err != nil {
		p.t.Fatalf("checker consumer: %v", err)
	}
	ft := failoverTimes{leader: leader, checkedKill: p.checkedDomains(ctx)}
	delivered := ci.Delivered.Stream
	killed := time.Now()
	p.nats.kill(p.nats.node(leader))
	p.logf("SIGKILLed nats node %s (DOMAIN_CHECKS leader) with %d domains checked, %d checks delivered",
		leader, ft.checkedKill, delivered)
	p.waitFor(time.Minute, "new DOMAIN_CHECKS leader", func() (bool, string) {
		l, err := streamLeader(ctx, p.js, stream)
		if err != nil || l == "" || l == leader {
			return false, fmt.Sprintf("leader %q, %v", l, err)
		}
		ft.newLeader, ft.elected = l, time.Since(killed)
		return true, ""
	})
	p.waitFor(time.Minute, "checks delivered again", func() (bool, string) {
		ci, err := p.consumerInfo(ctx, schemas.StreamDomainChecks, broker.ConsumerChecker)
		if err != nil {
			return false, err.Error()
		}
		if ci.Delivered.Stream > delivered || (ci.NumPending == 0 && ci.NumAckPending == 0) {
			ft.delivering = time.Since(killed)
			return true, ""
		}
		return false, fmt.Sprintf("delivered %d", ci.Delivered.Stream)
	})
	return ft
}

// waitComplete waits until every domain has a result, the consumers are
// drained and every audit event left the outbox.
func (p *pipeline) waitComplete(ctx context.Context, sc failoverScenario) {
	p.t.Helper()
	p.waitFor(sc.completeDeadline, "pipeline complete", func() (bool, string) {
		checked := p.checkedDomains(ctx)
		if checked < sc.domains {
			return false, fmt.Sprintf("%d/%d domains checked; %s", checked, sc.domains, p.diagnose(ctx))
		}
		var unsent int
		if err := p.pool.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE sent_at IS NULL`).Scan(&unsent); err != nil || unsent > 0 {
			return false, fmt.Sprintf("%d outbox rows unsent (%v)", unsent, err)
		}
		for _, c := range []struct{ stream, durable string }{
			{schemas.StreamAccounts, broker.ConsumerIntake},
			{schemas.StreamDomainChecks, broker.ConsumerChecker},
			{schemas.StreamDomainEvents, broker.ConsumerEnforcer},
		} {
			ci, err := p.consumerInfo(ctx, c.stream, c.durable)
			if err != nil {
				return false, fmt.Sprintf("consumer %s: %v", c.durable, err)
			}
			if ci.NumPending != 0 || ci.NumAckPending != 0 {
				return false, fmt.Sprintf("consumer %s: %d pending, %d ack pending", c.durable, ci.NumPending, ci.NumAckPending)
			}
		}
		return true, ""
	})
}

// diagnose describes where unchecked domains are stuck.
func (p *pipeline) diagnose(ctx context.Context) string {
	var b strings.Builder
	rows, err := p.pool.Query(ctx, `SELECT name, next_check_at, last_enqueued_at FROM domains WHERE last_checked_at IS NULL ORDER BY name LIMIT 5`)
	if err == nil {
		for rows.Next() {
			var name string
			var next time.Time
			var enq *time.Time
			if rows.Scan(&name, &next, &enq) == nil {
				fmt.Fprintf(&b, "unchecked %s (next %s, enqueued %v, lookups %d); ", name, next.Format(time.TimeOnly), enq, p.fake.Lookups(name))
			}
		}
		rows.Close()
	}
	for _, c := range []struct{ stream, durable string }{
		{schemas.StreamDomainChecks, broker.ConsumerChecker},
		{schemas.StreamDomainEvents, broker.ConsumerEnforcer},
	} {
		st, err := p.streamState(ctx, c.stream)
		fmt.Fprintf(&b, "%s msgs %d last %d (%v); ", c.stream, st.Msgs, st.LastSeq, err)
		if ci, err := p.consumerInfo(ctx, c.stream, c.durable); err == nil {
			fmt.Fprintf(&b, "%s pending %d ack pending %d redelivered %d delivered %d acked %d ack wait %s leader %s; ", c.durable, ci.NumPending,
				ci.NumAckPending, ci.NumRedelivered, ci.Delivered.Stream, ci.AckFloor.Stream, ci.Config.AckWait, ci.Cluster.Leader)
		} else {
			fmt.Fprintf(&b, "%s: %v; ", c.durable, err)
		}
	}
	return b.String()
}

// checkInvariants asserts the end state.
func (p *pipeline) checkInvariants(ctx context.Context, sc failoverScenario, ft failoverTimes, lapsing map[string]lifecycle.Reason) {
	t := p.t
	t.Helper()

	// Every address of a lapsed domain unverified once, with its reason;
	// every other address untouched.
	rows, err := p.pool.Query(ctx, `
		SELECT e.email, e.domain, e.verified, e.unverified_at IS NOT NULL, coalesce(e.unverify_reason, ''),
		       (SELECT count(*) FROM audit_log a WHERE a.type LIKE '%audit.email.unverified' AND a.email = e.email AND a.user_id = e.user_id)
		  FROM emails e`)
	if err != nil {
		t.Fatalf("read emails: %v", err)
	}
	var addresses, unverified, healthy int
	for rows.Next() {
		var email, domain, reason string
		var verified, hasUnverifiedAt bool
		var audits int
		if err := rows.Scan(&email, &domain, &verified, &hasUnverifiedAt, &reason, &audits); err != nil {
			t.Fatalf("scan email: %v", err)
		}
		addresses++
		if want, lapses := lapsing[domain]; lapses {
			unverified++
			if verified || !hasUnverifiedAt || reason != string(want) || audits != 1 {
				t.Errorf("%s (lapsed, want %s): verified=%v unverified_at set=%v reason=%q unverified audit events=%d; want unverified once",
					email, want, verified, hasUnverifiedAt, reason, audits)
			}
			continue
		}
		healthy++
		if !verified || hasUnverifiedAt || reason != "" || audits != 0 {
			t.Errorf("healthy %s touched: verified=%v unverified_at set=%v reason=%q unverified audit events=%d",
				email, verified, hasUnverifiedAt, reason, audits)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("read emails: %v", err)
	}
	if want := sc.domains * sc.addressesPer; addresses != want || unverified != len(lapsing)*sc.addressesPer {
		t.Errorf("%d addresses (%d of lapsed domains), want %d (%d)", addresses, unverified, want, len(lapsing)*sc.addressesPer)
	}

	// Every domain has its phase.
	var wrongPhase int
	if err := p.pool.QueryRow(ctx, `SELECT count(*) FROM domains WHERE last_checked_at IS NULL OR (phase <> 'active') <> (name = ANY($1))`,
		keys(lapsing)).Scan(&wrongPhase); err != nil || wrongPhase != 0 {
		t.Errorf("%d domains without their expected phase (%v)", wrongPhase, err)
	}

	// Every audit event exactly once in AUDIT, by id, and the same set as
	// audit_log.
	auditIDs := p.auditStreamIDs(ctx)
	var dupIDs int
	for _, n := range auditIDs {
		if n != 1 {
			dupIDs++
		}
	}
	dbIDs := map[string]bool{}
	idRows, err := p.pool.Query(ctx, `SELECT id::text FROM audit_log`)
	if err != nil {
		t.Fatalf("read audit_log: %v", err)
	}
	for idRows.Next() {
		var id string
		if err := idRows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		dbIDs[id] = true
	}
	if err := idRows.Err(); err != nil {
		t.Fatal(err)
	}
	missing := 0
	for id := range dbIDs {
		if auditIDs[id] == 0 {
			missing++
		}
	}
	if dupIDs != 0 || missing != 0 || len(auditIDs) != len(dbIDs) {
		t.Errorf("AUDIT stream: %d ids, %d of them more than once; audit_log: %d ids, %d missing from the stream",
			len(auditIDs), dupIDs, len(dbIDs), missing)
	}
	if len(dbIDs) < unverified {
		t.Errorf("only %d audit events for %d unverified addresses", len(dbIDs), unverified)
	}

	// Sweep singleton and one pending check per domain: across every sweep
	// of both producers, DOMAIN_CHECKS received exactly one check per
	// domain (the lease keeps a checked domain out of later sweeps).
	st, err := p.streamState(ctx, schemas.StreamDomainChecks)
	if err != nil {
		t.Fatalf("DOMAIN_CHECKS state: %v", err)
	}
	if st.LastSeq != uint64(sc.domains) || st.Msgs != 0 {
		t.Errorf("DOMAIN_CHECKS: %d checks enqueued in all, %d left; want exactly %d (one per domain), 0 left", st.LastSeq, st.Msgs, sc.domains)
	}
	// Every domain looked up. Repeats are at-least-once delivery at work:
	// a check whose result could not be published while DOMAIN_EVENTS had
	// no leader is retried about once a second per in-flight slot, and the
	// checks a crashed checker held come back after the ack wait. More
	// than that means checks were enqueued or delivered twice.
	repeats := 0
	for _, d := range p.domain {
		switch n := p.fake.Lookups(d); {
		case n == 0:
			t.Errorf("%s never looked up", d)
		case n > 1:
			repeats += n - 1
		}
	}
	outage := ft.elected + testAckWait
	bound := sc.checkers * sc.concurrency * int(outage/time.Second+1)
	t.Logf("provider lookups repeated by redelivery: %d (bound %d = %d checkers x %d in flight x %s)",
		repeats, bound, sc.checkers, sc.concurrency, outage.Round(time.Second))
	if repeats > bound {
		t.Errorf("%d repeated lookups, more than %d: checks were enqueued or delivered more than redelivery explains", repeats, bound)
	}
	// No dead letters.
	if dl, err := p.streamState(ctx, schemas.StreamDLQ); err != nil || dl.Msgs != 0 {
		t.Errorf("DLQ: %d dead letters (%v), want 0", dl.Msgs, err)
	}
}

// auditStreamIDs reads every message of AUDIT and counts CloudEvent ids.
func (p *pipeline) auditStreamIDs(ctx context.Context) map[string]int {
	p.t.Helper()
	st, err := p.streamState(ctx, schemas.StreamAudit)
	if err != nil {
		p.t.Fatalf("AUDIT state: %v", err)
	}
	ids := map[string]int{}
	if st.Msgs == 0 {
		return ids
	}
	cons, err := p.js.OrderedConsumer(ctx, p.topo.Namespace.Stream(schemas.StreamAudit), jetstream.OrderedConsumerConfig{})
	if err != nil {
		p.t.Fatalf("AUDIT reader: %v", err)
	}
	read := uint64(0)
	for read < st.Msgs {
		batch, err := cons.Fetch(500, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			p.t.Fatalf("read AUDIT: %v", err)
		}
		got := 0
		for msg := range batch.Messages() {
			got++
			read++
			var ev struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal(msg.Data(), &ev); err != nil || ev.ID == "" {
				p.t.Errorf("AUDIT message %s is not a CloudEvent with an id: %v", msg.Subject(), err)
				continue
			}
			if h := msg.Headers().Get(schemas.HeaderMsgID); h != ev.ID {
				p.t.Errorf("AUDIT message %s: Nats-Msg-Id %q, event id %q", msg.Subject(), h, ev.ID)
			}
			ids[ev.ID]++
		}
		if batch.Error() != nil {
			p.t.Fatalf("read AUDIT: %v", batch.Error())
		}
		if got == 0 {
			p.t.Fatalf("read AUDIT: stalled after %d of %d messages", read, st.Msgs)
		}
	}
	return ids
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
