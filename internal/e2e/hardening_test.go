package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/domainguard/domainguard/internal/broker"
	"github.com/domainguard/domainguard/internal/fakerdap"
	"github.com/domainguard/domainguard/internal/testbin"
	"github.com/domainguard/domainguard/internal/testmetrics"
	"github.com/domainguard/domainguard/internal/testnats"
	"github.com/domainguard/domainguard/internal/testroles"
	"github.com/domainguard/domainguard/lifecycle"
	"github.com/domainguard/domainguard/schemas"
)

// Hardening tests (issue #14). Each runs the real binary as separate
// processes with the shipped NATS users (deploy/nats/auth.conf) and SQL
// roles (deploy/sql/roles.sql): newCluster with secure.

// hostEvent is one host event, kept to publish it again.
type hostEvent struct {
	subject string
	body    []byte
}

// publishHostEvents publishes the events asynchronously without
// Nats-Msg-Id (so a second publish is stored again, as a redelivery of the
// same CloudEvent would be) and waits for every ack.
func (c *cluster) publishHostEvents(ctx context.Context, evs []hostEvent) {
	c.t.Helper()
	var futures []jetstream.PubAckFuture
	for _, e := range evs {
		f, err := c.js.PublishMsgAsync(&nats.Msg{Subject: c.topo.Namespace.Subject(e.subject), Data: e.body})
		if err != nil {
			c.t.Fatalf("publish %s: %v", e.subject, err)
		}
		futures = append(futures, f)
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			c.t.Fatalf("publish %s: %v", f.Msg().Subject, err)
		case <-ctx.Done():
			c.t.Fatalf("publish: %v", ctx.Err())
		}
	}
}

func hostEventOf(t *testing.T, subject, email string, at time.Time, data schemas.Payload) hostEvent {
	t.Helper()
	ev, err := schemas.NewEvent("e2e/host", subject, email, at, data)
	if err != nil {
		t.Fatal(err)
	}
	body, err := ev.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return hostEvent{subject: subject, body: body}
}

// intakeDrained reports whether the intake consumer has nothing pending.
func (c *cluster) intakeDrained(ctx context.Context) (bool, string) {
	cons, err := c.js.Consumer(ctx, c.topo.Namespace.Stream(schemas.StreamAccounts), broker.ConsumerIntake)
	if err != nil {
		return false, err.Error()
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return false, err.Error()
	}
	if n := info.NumPending + uint64(info.NumAckPending); n > 0 {
		return false, fmt.Sprintf("intake: %d pending, %d ack pending", info.NumPending, info.NumAckPending)
	}
	return true, ""
}

// TestRemovalsStayRemoved is item 2: 1,000 back-to-back verified/removed
// pairs handled by the producer's 4 intake workers, redelivered shuffled
// (the same CloudEvents again, and the same facts re-sent by the host with
// new ids), with a SIGKILL of the producer in the middle, leave every one
// of those addresses removed; 100 addresses verified again after their
// removal (a newer event) stay verified.
func TestRemovalsStayRemoved(t *testing.T) {
	c := newCluster(t, clusterOptions{secure: true})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	const pairs, readded = 1000, 100
	base := time.Now().Add(-time.Hour).UTC()
	var first, resent []hostEvent
	removed := map[string]bool{}
	for i := range pairs + readded {
		user, email := fmt.Sprintf("u%d", i), fmt.Sprintf("user%d@removal%d.com", i, i%25)
		at := base.Add(time.Duration(i) * 10 * time.Millisecond)
		v := schemas.EmailVerified{UserID: user, Email: email, VerifiedAt: at.Add(-time.Minute)}
		r := schemas.EmailRemoved{UserID: user, Email: email}
		first = append(first,
			hostEventOf(t, schemas.SubjectEmailVerified, email, at, v),
			hostEventOf(t, schemas.SubjectEmailRemoved, email, at.Add(time.Millisecond), r))
		// The host re-sends the same facts (new CloudEvent ids, same times).
		resent = append(resent,
			hostEventOf(t, schemas.SubjectEmailVerified, email, at, v),
			hostEventOf(t, schemas.SubjectEmailRemoved, email, at.Add(time.Millisecond), r))
		if i >= pairs {
			// Verified again after the removal: a newer event.
			again := at.Add(time.Second)
			first = append(first, hostEventOf(t, schemas.SubjectEmailVerified, email, again,
				schemas.EmailVerified{UserID: user, Email: email, VerifiedAt: again}))
		} else {
			removed[email] = true
		}
	}
	redelivered := append(append([]hostEvent(nil), first...), resent...)
	rand.Shuffle(len(redelivered), func(i, j int) { redelivered[i], redelivered[j] = redelivered[j], redelivered[i] })

	c.start("producer")
	c.publishHostEvents(ctx, first)
	c.publishHostEvents(ctx, redelivered)
	// A crash in the middle of the intake.
	waitFor(t, time.Minute, "the intake to get going", func() (bool, string) {
		var n int
		if err := c.pool.QueryRow(ctx, `SELECT count(*) FROM processed_messages WHERE consumer = $1`, broker.ConsumerIntake).Scan(&n); err != nil {
			return false, err.Error()
		}
		return n >= len(first)/3, fmt.Sprintf("%d processed", n)
	})
	c.kill("producer")
	c.start("producer")
	waitFor(t, 2*time.Minute, "the intake to drain", func() (bool, string) { return c.intakeDrained(ctx) })

	emails, err := c.emails(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var resurrected []string
	for e := range removed {
		if _, ok := emails[e]; ok {
			resurrected = append(resurrected, e)
		}
	}
	if len(resurrected) > 0 {
		t.Errorf("%d of %d removed addresses are back (e.g. %v)", len(resurrected), pairs, resurrected[:min(5, len(resurrected))])
	}
	for i := pairs; i < pairs+readded; i++ {
		email := fmt.Sprintf("user%d@removal%d.com", i, i%25)
		if row, ok := emails[email]; !ok || !row.Verified {
			t.Errorf("%s was verified again after its removal but is %+v (present %v)", email, row, ok)
		}
	}
	if dls, err := c.deadLetters(ctx, schemas.StreamAccounts); err != nil || len(dls) > 0 {
		t.Errorf("dead letters on ACCOUNTS: %d (%v)", len(dls), err)
	}
}

// connectAs connects to the cluster's secure NATS server as one of the
// shipped users, as a compromised role would.
func (c *cluster) connectAs(user string) (*nats.Conn, jetstream.JetStream) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, js, err := broker.Connect(ctx, broker.ConnectOptions{URL: c.nats.URL(), Name: "e2e as " + user, User: user,
		Password: testroles.NATSPassword(user), InboxPrefix: "_INBOX_" + user, Logger: testnats.Logger(c.t)})
	if err != nil {
		c.t.Fatalf("connect as %s: %v", user, err)
	}
	c.t.Cleanup(nc.Close)
	return nc, js
}

// operatorRun runs a domainguard command as the operator (NATS user
// operator, the database owner) to completion.
func (c *cluster) operatorRun(ctx context.Context, args ...string) (string, error) {
	c.t.Helper()
	env := append(append([]string(nil), c.env...), c.roleEnv["operator"]...)
	return testbin.Run(ctx, c.t, env, args...)
}

// TestDLQReplayIsNoConfusedDeputy is item 1: a role may dead-letter only
// into its own stream's DLQ subject, and `dlq replay` (run by the operator)
// replays a letter only into the subjects of the stream it belongs to, with
// a payload valid for the subject, and records who replayed it. Letters
// forged by the checker user that name accounts.email.removed or a
// JetStream API subject are refused and stay in the DLQ; a non-JSON message
// on dlq.> breaks neither list nor replay --all.
func TestDLQReplayIsNoConfusedDeputy(t *testing.T) {
	c := newCluster(t, clusterOptions{secure: true})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, checkerJS := c.connectAs("checker")

	removal, err := json.Marshal(schemas.EmailRemoved{UserID: "victim", Email: "victim@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	check := func(domain string) []byte {
		b, err := json.Marshal(schemas.CheckRequest{Domain: domain, Reason: schemas.CheckManual, RequestedAt: time.Now().UTC()})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	letter := func(stream, subject string, payload []byte) []byte {
		b, err := json.Marshal(schemas.DeadLetter{Stream: stream, Consumer: "checker", Subject: subject, Sequence: 1,
			Payload: payload, Error: "forged", Deliveries: 1, At: time.Now().UTC()})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// The AUDIT stream holds something a purge would remove.
	if _, err := c.js.Publish(ctx, schemas.SubjectDomainChanged, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}

	// The checker may not publish into another stream's DLQ subject at all.
	pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
	if _, err := checkerJS.Publish(pctx, "dlq.ACCOUNTS", letter(schemas.StreamAccounts, schemas.SubjectEmailRemoved, removal)); err == nil {
		t.Error("the checker published a dead letter on dlq.ACCOUNTS")
	}
	pcancel()

	forged := []struct {
		name string
		body []byte
	}{
		{"removal claiming ACCOUNTS", letter(schemas.StreamAccounts, schemas.SubjectEmailRemoved, removal)},
		{"removal on the checks stream", letter(schemas.StreamDomainChecks, schemas.SubjectEmailRemoved, removal)},
		{"purge AUDIT", letter(schemas.StreamDomainChecks, "$JS.API.STREAM.PURGE.AUDIT", []byte(`{}`))},
		{"inbox", letter(schemas.StreamDomainChecks, "_INBOX.x.y", []byte(`{}`))},
		{"wildcard", letter(schemas.StreamDomainChecks, "domains.check.>", check("example.com"))},
		{"payload for another domain", letter(schemas.StreamDomainChecks, "domains.check.other.com", check("victim.com"))},
		{"payload not a check", letter(schemas.StreamDomainChecks, "domains.check.other.com", removal)},
		{"not JSON", []byte("\x1b]0;pwned\x07 not a dead letter")},
	}
	for _, f := range forged {
		if _, err := checkerJS.Publish(ctx, "dlq.DOMAIN_CHECKS", f.body); err != nil {
			t.Fatalf("checker publishes forged letter %q on its own DLQ subject: %v", f.name, err)
		}
	}
	if _, err := checkerJS.Publish(ctx, "dlq.DOMAIN_CHECKS", letter(schemas.StreamDomainChecks, "domains.check.good.com", check("good.com"))); err != nil {
		t.Fatal(err)
	}
	auditBefore := testnats.StreamMsgs(t, c.js, schemas.StreamAudit)

	out, err := c.operatorRun(ctx, "dlq", "list")
	if err != nil {
		t.Fatalf("dlq list: %v\n%s", err, out)
	}
	if strings.Contains(out, "\x1b") {
		t.Errorf("dlq list printed a raw escape sequence:\n%q", out)
	}
	out, err = c.operatorRun(ctx, "dlq", "replay", "--all")
	if err == nil {
		t.Errorf("dlq replay --all with refused letters exited 0:\n%s", out)
	}
	if !strings.Contains(out, "replayed dead letter") || strings.Count(out, "refused dead letter") != len(forged)-1 {
		t.Errorf("dlq replay --all: want %d refused and 1 replayed:\n%s", len(forged)-1, out)
	}

	if n := testnats.StreamMsgs(t, c.js, schemas.StreamAccounts); n != 0 {
		t.Errorf("ACCOUNTS holds %d messages after the replay, want 0 (a forged removal was replayed)", n)
	}
	if n := testnats.StreamMsgs(t, c.js, schemas.StreamAudit); n != auditBefore+1 {
		t.Errorf("AUDIT holds %d messages after the replay, want %d (+1 replay record)", n, auditBefore+1)
	}
	if n := testnats.StreamMsgs(t, c.js, schemas.StreamDLQ); n != uint64(len(forged)) {
		t.Errorf("DLQ holds %d messages, want the %d refused ones", n, len(forged))
	}
	if n := testnats.StreamMsgs(t, c.js, schemas.StreamDomainChecks); n != 1 {
		t.Errorf("DOMAIN_CHECKS holds %d messages, want the replayed check", n)
	}
	// The replay record names the operator.
	s, err := c.js.Stream(ctx, schemas.StreamAudit)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := s.GetLastMsgForSubject(ctx, schemas.SubjectDeadLetterReplayed)
	if err != nil {
		t.Fatalf("no %s event: %v", schemas.SubjectDeadLetterReplayed, err)
	}
	_, rec, err := schemas.Decode[schemas.DeadLetterReplayed](raw.Data)
	if err != nil {
		t.Fatalf("replay record: %v", err)
	}
	if rec.Subject != "domains.check.good.com" || !strings.Contains(rec.By, "nats:operator") || rec.PayloadSHA256 == "" {
		t.Errorf("replay record %+v: want the subject, the operator and the payload digest", rec)
	}
}

// TestPausedRegistryStallsNothing is item 3: one registry answering 429
// with Retry-After: 86400 must not hold the checker's workers. Checks for
// its domains go back to the queue with the (capped) pause as their delay,
// checks of other registries go on, the pause is exported per server, and
// the checker stops promptly.
func TestPausedRegistryStallsNothing(t *testing.T) {
	c := newCluster(t, clusterOptions{secure: true, extraEnv: []string{"DOMAINGUARD_CHECK_CONCURRENCY=4"}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// .org goes to a registry that asks for a day's pause.
	slow := fakerdap.NewWithOptions(t, fakerdap.Options{TLDs: []string{"org"}})
	slow.SetDefault(fakerdap.Answer{Status: 429, RetryAfter: 24 * time.Hour})
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, append(c.rdap.CACertPEM(), slow.CACertPEM()...), 0o644); err != nil {
		t.Fatal(err)
	}
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	c.env = append(c.env, "SSL_CERT_FILE="+caFile, "DOMAINGUARD_RDAP_OVERRIDES=org="+slow.URL())
	c.roleEnv["checker"] = append(c.roleEnv["checker"], "DOMAINGUARD_METRICS_ADDR="+metricsAddr)
	c.startAll()

	var evs []verified
	var healthy []string
	for i := range 40 {
		evs = append(evs, verified{UserID: fmt.Sprintf("s%d", i), Email: fmt.Sprintf("a@paused%d.org", i), VerifiedAt: time.Now().Add(-time.Hour)})
	}
	for i := range 10 {
		d := fmt.Sprintf("healthy%d.com", i)
		healthy = append(healthy, d)
		evs = append(evs, verified{UserID: fmt.Sprintf("h%d", i), Email: "a@" + d, VerifiedAt: time.Now().Add(-time.Hour)})
	}
	c.publishVerified(ctx, evs)

	took := waitFor(t, 45*time.Second, "every healthy domain to be checked while .org is paused", func() (bool, string) {
		var n int
		if err := c.pool.QueryRow(ctx, `SELECT count(*) FROM domains WHERE name = ANY($1) AND last_checked_at IS NOT NULL`, healthy).Scan(&n); err != nil {
			return false, err.Error()
		}
		return n == len(healthy), fmt.Sprintf("%d of %d healthy domains checked; .org lookups %d", n, len(healthy), slow.TotalLookups())
	})
	t.Logf("healthy domains checked within %s; .org lookups %d", took.Round(time.Millisecond), slow.TotalLookups())
	if n := slow.TotalLookups(); n > 8 {
		t.Errorf("the paused registry got %d lookups; want it left alone during its pause", n)
	}

	// The pause is exported for the server, capped at 6h.
	families, err := testmetrics.Scrape("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatalf("scrape checker metrics: %v", err)
	}
	// One series per lookup server; the paused one is furthest ahead.
	var until float64
	for _, m := range families["domainguard_checker_paused_until_seconds"].GetMetric() {
		until = max(until, m.GetGauge().GetValue())
	}
	if left := time.Until(time.Unix(int64(until), 0)); left < 5*time.Hour || left > 6*time.Hour+time.Minute {
		t.Errorf("domainguard_checker_paused_until_seconds is %.0f (%s from now); want about 6h from now (Retry-After 86400 capped)", until, left)
	}

	// Nothing waits on the pause at shutdown.
	start := time.Now()
	c.mu.Lock()
	checker := c.procs["checker"]
	c.mu.Unlock()
	if err := checker.Stop(15 * time.Second); err != nil {
		t.Errorf("checker stop: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the checker took %s to stop", d)
	}
}

// TestStrandedCheckIsReplaced is item 4: a check left in DOMAIN_CHECKS
// that the checker's consumer will never deliver (below its ack floor
// after a nats-server crash, or out of deliveries, as here: a work queue
// keeps it) refused every later check of its domain as "already pending",
// for good. The producer now inspects the pending check when its publish is
// refused and replaces a stranded one, so the domain is observed.
func TestStrandedCheckIsReplaced(t *testing.T) {
	// A delivered check is stale after check ack wait x 20 deliveries: 60s here.
	c := newCluster(t, clusterOptions{secure: true, extraEnv: []string{"DOMAINGUARD_CHECK_ACK_WAIT=3s"}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// A check for zombie.com that ran out of deliveries: the message stays
	// in the work queue but will never be delivered again.
	body, err := json.Marshal(schemas.CheckRequest{Domain: "zombie.com", Reason: schemas.CheckSchedule, RequestedAt: time.Now().UTC()})
	if err != nil {
		t.Fatal(err)
	}
	ack, err := c.js.Publish(ctx, c.topo.Namespace.CheckSubject("zombie.com"), body)
	if err != nil {
		t.Fatal(err)
	}
	stranded := time.Now()
	streamName := c.topo.Namespace.Stream(schemas.StreamDomainChecks)
	var cfg jetstream.ConsumerConfig
	for _, cc := range c.topo.Consumers()[streamName] {
		if cc.Durable == broker.ConsumerChecker {
			cfg = cc
		}
	}
	if err := c.js.DeleteConsumer(ctx, streamName, broker.ConsumerChecker); err != nil {
		t.Fatal(err)
	}
	cfg.MaxDeliver, cfg.AckWait = 1, time.Second
	cons, err := c.js.CreateConsumer(ctx, streamName, cfg)
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for m := range batch.Messages() {
		if meta, _ := m.Metadata(); meta == nil || meta.Sequence.Stream != ack.Sequence {
			t.Fatalf("fetched %v, want the zombie check", meta)
		}
	}
	time.Sleep(2 * time.Second) // past its ack wait: never delivered again

	c.startAll()
	c.publishVerified(ctx, []verified{{UserID: "z1", Email: "a@zombie.com", VerifiedAt: time.Now().Add(-time.Hour)}})
	// The signup check was refused while the stranded one was young; once
	// it outlived its deliveries, the domain's lease running out (here:
	// fast-forwarded) makes the sweep publish again, and replace it.
	time.Sleep(time.Until(stranded.Add(62 * time.Second)))
	waitFor(t, 60*time.Second, "zombie.com to be observed", func() (bool, string) {
		c.forceRecheck(ctx, []string{"zombie.com"})
		var checked *time.Time
		err := c.pool.QueryRow(ctx, `SELECT last_checked_at FROM domains WHERE name = 'zombie.com'`).Scan(&checked)
		if err != nil || checked == nil {
			return false, fmt.Sprintf("last_checked_at %v (%v); stream has %d messages", checked, err, testnats.StreamMsgs(t, c.js, schemas.StreamDomainChecks))
		}
		return true, ""
	})
	if n := testnats.StreamMsgs(t, c.js, schemas.StreamDomainChecks); n != 0 {
		t.Errorf("DOMAIN_CHECKS holds %d messages after the replacement was checked, want 0", n)
	}
}

// TestCheckBelowAckFloorIsReplaced is item 4 as the red team saw it: a
// SIGKILL of nats-server while the checker works through a wave of checks.
// nats-server 2.9's store keeps the checker consumer's ack floor but loses
// the removal of checks acknowledged since its last index write, so after
// the restart those checks sit in DOMAIN_CHECKS below the ack floor, never
// to be delivered, and refuse every later check of their domains. (Should
// the server on PATH strand none, testnats.StrandChecks builds the state
// for one domain.) The producer's gauge reports the stranded checks; when
// their domains are next due, each refused publish replaces its stranded
// check at once, young as it is, and every domain is checked and its phase
// recorded; the gauge drops to 0.
func TestCheckBelowAckFloorIsReplaced(t *testing.T) {
	// Slow lookups (50 a second), so the crash lands mid-wave.
	c := newCluster(t, clusterOptions{secure: true, extraEnv: []string{"DOMAINGUARD_LOOKUPS_PER_SECOND=50"}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	c.roleEnv["producer"] = append(c.roleEnv["producer"], "DOMAINGUARD_METRICS_ADDR="+metricsAddr)
	c.startAll()

	const n = 200
	var evs []verified
	var domains []string
	for i := range n {
		d := fmt.Sprintf("floor%d.com", i)
		domains = append(domains, d)
		evs = append(evs, verified{UserID: fmt.Sprintf("f%d", i), Email: "a@" + d, VerifiedAt: time.Now().Add(-time.Hour)})
	}
	c.publishVerified(ctx, evs)
	streamName := c.topo.Namespace.Stream(schemas.StreamDomainChecks)
	waitFor(t, 60*time.Second, "a quarter of the checks to be acknowledged", func() (bool, string) {
		cons, err := c.js.Consumer(ctx, streamName, broker.ConsumerChecker)
		if err != nil {
			return false, err.Error()
		}
		info, err := cons.Info(ctx)
		if err != nil {
			return false, err.Error()
		}
		return info.AckFloor.Stream >= n/4, fmt.Sprintf("ack floor %d", info.AckFloor.Stream)
	})
	c.nats.crash()
	c.nats.start()
	// Let the checker finish what the crash left pending: what stays in
	// the stream then is stranded.
	drained := waitFor(t, 60*time.Second, "the checker to drain its consumer after the crash", func() (bool, string) {
		p := c.pending(ctx)
		return p == "", p
	})
	stranded := strandedDomains(ctx, t, c, streamName)
	if len(stranded) == 0 {
		t.Logf("the crash of %s stranded no check; building the state for %s", c.nats.bin, domains[0])
		c.mu.Lock()
		checker := c.procs["checker"]
		c.mu.Unlock()
		if err := checker.Stop(30 * time.Second); err != nil {
			t.Fatalf("stop the checker: %v", err)
		}
		body, err := json.Marshal(schemas.CheckRequest{Domain: domains[0], Reason: schemas.CheckSchedule, RequestedAt: time.Now().UTC()})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.js.Publish(ctx, c.topo.Namespace.CheckSubject(domains[0]), body); err != nil {
			t.Fatal(err)
		}
		testnats.StrandChecks(ctx, t, c.js, c.topo)
		c.start("checker")
		if stranded = strandedDomains(ctx, t, c, streamName); len(stranded) != 1 {
			t.Fatalf("stranded %v, want %s", stranded, domains[0])
		}
	}
	t.Logf("%d of %d checks stranded below the ack floor, e.g. %v (consumers drained %s after the restart)",
		len(stranded), n, stranded[:min(3, len(stranded))], drained.Round(time.Millisecond))

	// The gauge is set after every sweep (each second here).
	producerMetrics := func(wantStranded, wantReplaced float64) func() (bool, string) {
		return func() (bool, string) {
			families, err := testmetrics.Scrape("http://" + metricsAddr + "/metrics")
			if err != nil {
				return false, err.Error()
			}
			var strandedNow, replaced float64 = -1, -1
			if m := families["domainguard_producer_stranded_checks"].GetMetric(); len(m) == 1 {
				strandedNow = m[0].GetGauge().GetValue()
			}
			if m := families["domainguard_producer_stale_checks_replaced_total"].GetMetric(); len(m) == 1 {
				replaced = m[0].GetCounter().GetValue()
			}
			return strandedNow == wantStranded && replaced == wantReplaced,
				fmt.Sprintf("stranded_checks %v, stale_checks_replaced_total %v (want %v, %v)", strandedNow, replaced, wantStranded, wantReplaced)
		}
	}
	waitFor(t, 30*time.Second, "the producer to report the stranded checks", producerMetrics(float64(len(stranded)), 0))

	// Every domain falls due (its lease ran out, fast-forwarded).
	since := c.forceRecheck(ctx, domains)
	took := waitFor(t, 60*time.Second, "every domain to be checked again", func() (bool, string) {
		ds, err := c.domains(ctx)
		if err != nil {
			return false, err.Error()
		}
		var missing []string
		for _, d := range domains {
			if r := ds[d]; r.LastCheckedAt == nil || r.LastCheckedAt.Before(since) || r.Phase != string(lifecycle.PhaseActive) {
				missing = append(missing, fmt.Sprintf("%s %+v", d, r))
			}
		}
		return len(missing) == 0, fmt.Sprintf("%d not checked again, e.g. %v; DOMAIN_CHECKS holds %d messages",
			len(missing), missing[:min(3, len(missing))], testnats.StreamMsgs(t, c.js, schemas.StreamDomainChecks))
	})
	t.Logf("every domain checked again %s after it fell due", took.Round(time.Millisecond))
	waitFor(t, 30*time.Second, "the producer to report no stranded check", producerMetrics(0, float64(len(stranded))))
	if n := testnats.StreamMsgs(t, c.js, schemas.StreamDomainChecks); n != 0 {
		t.Errorf("DOMAIN_CHECKS holds %d messages after the replacements were checked, want 0", n)
	}
}

// strandedDomains lists the domains of the checks in DOMAIN_CHECKS at or
// below the checker consumer's ack floor.
func strandedDomains(ctx context.Context, t *testing.T, c *cluster, streamName string) []string {
	t.Helper()
	s, err := c.js.Stream(ctx, streamName)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := c.js.Consumer(ctx, streamName, broker.ConsumerChecker)
	if err != nil {
		t.Fatal(err)
	}
	ci, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	si := testnats.StreamInfo(t, c.js, streamName)
	var out []string
	for seq := si.State.FirstSeq; seq <= ci.AckFloor.Stream && si.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatalf("get check %d: %v", seq, err)
		}
		out = append(out, strings.TrimPrefix(m.Subject, c.topo.Namespace.Subject(schemas.SubjectCheckPrefix)))
	}
	return out
}
