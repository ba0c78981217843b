package main

import (
	"context"
	"encoding/json"
	"flag"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/domainguard/domainguard/internal/broker"
	"github.com/domainguard/domainguard/internal/deadletters"
	"github.com/domainguard/domainguard/internal/fakerdap"
	"github.com/domainguard/domainguard/internal/postgres"
	"github.com/domainguard/domainguard/internal/testbin"
	"github.com/domainguard/domainguard/internal/testdb"
	"github.com/domainguard/domainguard/internal/testnats"
	"github.com/domainguard/domainguard/lifecycle"
	"github.com/domainguard/domainguard/schemas"
)

func TestUsageErrorsExitTwo(t *testing.T) {
	ctx := context.Background()
	// Nothing listens at these addresses: a command that connected before
	// checking its arguments would exit 1 on every machine, whatever
	// databases or streams earlier runs left behind.
	env := map[string]string{
		"DATABASE_URL":             "postgres://127.0.0.1:1/domainguard_usage?connect_timeout=1",
		"NATS_URL":                 "nats://127.0.0.1:1",
		"DOMAINGUARD_METRICS_ADDR": "off",
	}
	getenv := func(k string) string { return env[k] }
	for _, args := range [][]string{
		{}, {"no-such-command"}, {"check"}, {"migrate", "--no-such-flag"}, {"migrate", "extra"},
		{"holds"}, {"holds", "sideways"}, {"holds", "approve"}, {"holds", "reject", "a", "b"}, {"holds", "list", "extra"},
		{"breaker"}, {"breaker", "sideways"}, {"breaker", "status", "extra"},
		{"status"}, {"status", "a@b.org", "c@d.org"},
		{"dlq"}, {"dlq", "sideways"}, {"dlq", "list", "extra"}, {"dlq", "replay"}, {"dlq", "replay", "x"},
		{"sweep", "extra"}, {"topology", "extra"}, {"notify-example", "extra"},
		{"producer", "extra"}, {"checker", "extra"}, {"enforcer", "extra"}, {"run", "extra"},
	} {
		var out, errOut strings.Builder
		code := runMain(ctx, invocation{args: args, stdout: &out, stderr: &errOut, getenv: getenv})
		if code != 2 {
			t.Errorf("domainguard %q exited %d, want 2 (stderr %q)", args, code, errOut.String())
		}
	}
}

// Two migrate processes started at once both succeed and leave one schema.
func TestConcurrentMigrates(t *testing.T) {
	url := testdb.NewEmpty(t)
	env := []string{"DATABASE_URL=" + url, "DOMAINGUARD_METRICS_ADDR=off"}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	testbin.Path(t) // build before the race starts
	var wg sync.WaitGroup
	errs := make([]error, 2)
	outs := make([]string, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], errs[i] = testbin.Run(ctx, t, env, "migrate")
		}()
	}
	wg.Wait()
	for i := range 2 {
		if errs[i] != nil {
			t.Fatalf("migrate %d: %v\n%s", i, errs[i], outs[i])
		}
	}
	pool, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	migrations, err := postgres.LoadMigrations(schemas.Migrations)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != len(migrations) {
		t.Fatalf("schema_migrations has %d rows, want %d", n, len(migrations))
	}
}

// `run` without NATS_URL starts the embedded broker, migrates, serves and
// exits 0 on SIGTERM after draining.
func TestRunEmbeddedStartsAndStopsCleanly(t *testing.T) {
	url := testdb.NewEmpty(t)
	dataDir := t.TempDir()
	p := testbin.Start(t, testbin.Options{Name: "run"}, "run",
		"--database-url", url, "--data-dir", dataDir, "--metrics-addr", "off")
	if !p.WaitOutput("embedded NATS JetStream server started", 60*time.Second) {
		t.Fatalf("embedded NATS did not start:\n%s", p.Output())
	}
	deadline := time.Now().Add(60 * time.Second)
	for strings.Count(p.Output(), `"msg":"consuming"`) < 3 {
		if time.Now().After(deadline) || p.Exited() {
			t.Fatalf("roles did not start consuming:\n%s", p.Output())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(p.Output(), "nats://127.0.0.1:") {
		t.Errorf("the embedded server's loopback URL is not logged")
	}
	if err := p.Stop(60 * time.Second); err != nil {
		t.Fatalf("run did not exit 0 on SIGTERM: %v\n%s", err, p.Output())
	}
	if !strings.Contains(p.Output(), "stopped cleanly") {
		t.Errorf("no clean-stop log line:\n%s", p.Output())
	}
	if matches, _ := filepath.Glob(filepath.Join(dataDir, "nats", "*")); len(matches) == 0 {
		t.Errorf("embedded JetStream store not under the data dir")
	}
}

// `check` looks a domain up through RDAP and changes nothing.
func TestCheckCommandPrintsPhaseAndEvidence(t *testing.T) {
	rdap := fakerdap.New(t)
	exp := time.Now().UTC().AddDate(0, 0, -20)
	rdap.Set("lapsing.com", fakerdap.Answer{Phase: lifecycle.PhaseRedemption, ExpiresAt: exp, Handle: "H-1"})
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := rdap.WriteCACert(ca); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	env := []string{"RDAP_BOOTSTRAP_URL=" + rdap.BootstrapURL(), "SSL_CERT_FILE=" + ca, "DOMAINGUARD_PROVIDER=rdap",
		"DOMAINGUARD_DATA_DIR=" + t.TempDir()}
	out, err := testbin.Run(ctx, t, env, "check", "--json", "Mail.Lapsing.COM")
	if err != nil {
		t.Fatalf("check: %v\n%s", err, out)
	}
	var obs lifecycle.Observation
	if err := json.Unmarshal([]byte(stdoutJSON(out)), &obs); err != nil {
		t.Fatalf("check --json output: %v\n%s", err, out)
	}
	if obs.Domain != "lapsing.com" || obs.Phase != lifecycle.PhaseRedemption || obs.Evidence.Handle != "H-1" {
		t.Fatalf("check = %+v", obs)
	}
	out, err = testbin.Run(ctx, t, env, "check", "lapsing.com")
	if err != nil || !strings.Contains(out, "redemption") || !strings.Contains(out, "H-1") {
		t.Fatalf("check (text): %v\n%s", err, out)
	}
}

// With a database reachable, `check` classifies against the stored
// previous observation as the pipeline does, and says so: a name past its
// expiry whose nameservers moved away from the last active set (a sale in
// the auto-renew grace) is expired, not the grace a lookup without history
// would print.
func TestCheckCommandUsesStoredPrevious(t *testing.T) {
	pool, dbURL := testdb.New(t)
	rdap := fakerdap.New(t)
	now := time.Now().UTC()
	expiry := now.AddDate(0, 0, -10).Truncate(time.Second)
	rdap.Set("sold.com", fakerdap.Answer{Statuses: []string{"active"}, ExpiresAt: expiry,
		Nameservers: []string{"ns1.parking.example", "ns2.parking.example"}})
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := rdap.WriteCACert(ca); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	lastActive := lifecycle.Evidence{Provider: "rdap", Statuses: []string{"active"}, ExpiresAt: &expiry,
		Nameservers: []string{"ns1.fakedns.test", "ns2.fakedns.test"}, RegistrarIANAID: "9999", ObservedAt: expiry.Add(-24 * time.Hour)}
	evJSON, err := json.Marshal(lastActive)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO domains (name, phase, evidence, observed_at) VALUES ('sold.com', 'active', $1, $2)`,
		evJSON, lastActive.ObservedAt); err != nil {
		t.Fatal(err)
	}
	base := []string{"RDAP_BOOTSTRAP_URL=" + rdap.BootstrapURL(), "SSL_CERT_FILE=" + ca, "DOMAINGUARD_PROVIDER=rdap",
		"DOMAINGUARD_DATA_DIR=" + t.TempDir(), "DOMAINGUARD_METRICS_ADDR=off"}
	out, err := testbin.Run(ctx, t, append(base, "DATABASE_URL="+dbURL), "check", "sold.com")
	if err != nil || !strings.Contains(out, "expired") || !strings.Contains(out, "stored previous observation") {
		t.Fatalf("check with the database: %v\n%s", err, out)
	}
	out, err = testbin.Run(ctx, t, append(base, "DATABASE_URL="+dbURL), "check", "--json", "sold.com")
	var obs lifecycle.Observation
	if err != nil || json.Unmarshal([]byte(stdoutJSON(out)), &obs) != nil || obs.Phase != lifecycle.PhaseExpired ||
		obs.Evidence.Baseline == nil || !strings.Contains(out, "stored previous observation") {
		t.Fatalf("check --json with the database: %v %+v\n%s", err, obs, out)
	}
	out, err = testbin.Run(ctx, t, append(base, "DATABASE_URL=postgres://127.0.0.1:1/none?connect_timeout=2"), "check", "sold.com")
	if err != nil || !strings.Contains(out, "grace") || !strings.Contains(out, "no database reachable") {
		t.Fatalf("check without a database: %v\n%s", err, out)
	}
}

// dlq list and replay against a real stream: a dead letter is listed, and
// replaying it republishes the original message and removes the letter.
func TestDLQListAndReplay(t *testing.T) {
	// File storage, as the binary's topology has: Ensure never changes the
	// storage of an existing stream.
	js, _, topo := testnats.SharedWith(t, func(tp *broker.Topology) { tp.Storage = jetstream.FileStorage })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Dead-letter one intake message by hand, as the intake consumer would
	// after its last delivery (a valid message: replay refuses payloads
	// that are not valid for their subject).
	if _, err := js.Publish(ctx, topo.Namespace.Subject(schemas.SubjectEmailVerified),
		[]byte(`{"user_id":"u1","email":"replay-me@example.com","verified_at":"2026-01-02T03:04:05Z"}`)); err != nil {
		t.Fatal(err)
	}
	cons, err := topo.Consumer(ctx, js, schemas.StreamAccounts, "producer-intake")
	if err != nil {
		t.Fatal(err)
	}
	msg, err := cons.Next()
	if err != nil {
		t.Fatal(err)
	}
	if err := topo.DeadLetter(ctx, js, msg, schemas.StreamAccounts, "producer-intake", schemas.ErrInvalid); err != nil {
		t.Fatal(err)
	}
	env := []string{"NATS_URL=" + testnats.URL(), "DOMAINGUARD_SUBJECT_PREFIX=" + topo.Namespace.Prefix, "DOMAINGUARD_METRICS_ADDR=off"}
	out, err := testbin.Run(ctx, t, env, "dlq", "list", "--json")
	if err != nil {
		t.Fatalf("dlq list: %v\n%s", err, out)
	}
	var entries []deadletters.Entry
	if err := json.Unmarshal([]byte(stdoutJSON(out)), &entries); err != nil || len(entries) != 1 {
		t.Fatalf("dlq list: %v %d entries\n%s", err, len(entries), out)
	}
	if entries[0].Letter.Subject != schemas.SubjectEmailVerified {
		t.Fatalf("dead letter subject %q", entries[0].Letter.Subject)
	}
	// The payload readable, not only as base64.
	var payload struct{ Email string }
	if err := json.Unmarshal(entries[0].PayloadJSON, &payload); err != nil || payload.Email != "replay-me@example.com" {
		t.Errorf("dlq list --json payload_json = %s, want the decoded payload", entries[0].PayloadJSON)
	}
	out, err = testbin.Run(ctx, t, env, "dlq", "replay", "--all")
	if err != nil {
		t.Fatalf("dlq replay: %v\n%s", err, out)
	}
	again, err := cons.Next()
	if err != nil {
		t.Fatalf("replayed message not delivered: %v", err)
	}
	if !strings.Contains(string(again.Data()), "replay-me@example.com") {
		t.Fatalf("replayed payload %q", again.Data())
	}
	_ = again.Ack()
	out, err = testbin.Run(ctx, t, env, "dlq", "list", "--json")
	if err != nil || strings.Contains(out, "replay-me@example.com") {
		t.Fatalf("dead letter still listed after replay: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(stdoutJSON(out)); got != "[]" {
		t.Errorf("dlq list --json with no dead letters printed %q, want []", got)
	}
}

// stdoutJSON returns the JSON document a command printed, skipping the log
// lines (JSON objects with a "level") it wrote to stderr around it.
func stdoutJSON(out string) string {
	var keep []string
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, `{"time":`) {
			continue
		}
		keep = append(keep, line)
	}
	return strings.TrimSpace(strings.Join(keep, "\n"))
}

func TestFlagsFirst(t *testing.T) {
	newFS := func() *flag.FlagSet {
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		fs.Bool("json", false, "")
		fs.String("by", "", "")
		return fs
	}
	tests := []struct{ in, want []string }{
		{[]string{"list", "--json"}, []string{"--json", "--", "list"}},
		{[]string{"approve", "ID", "--by", "ops"}, []string{"--by", "ops", "--", "approve", "ID"}},
		{[]string{"--nats-url", "nats://x:1", "list"}, []string{"--nats-url", "nats://x:1", "--", "list"}},
		{[]string{"list", "--strict", "--json"}, []string{"--strict", "--json", "--", "list"}},
		{[]string{"-", "--by=me"}, []string{"--by=me", "--", "-"}},
		{[]string{"a", "--", "--json"}, []string{"--", "a", "--", "--json"}},
		{nil, nil},
	}
	for _, tt := range tests {
		got := flagsFirst(tt.in, newFS())
		if strings.Join(got, " ") != strings.Join(tt.want, " ") {
			t.Errorf("flagsFirst(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// With DOMAINGUARD_MANAGE_TOPOLOGY=false a role refuses to start until an
// operator has created the topology with `domainguard topology`.
func TestRoleWaitsForOperatorTopology(t *testing.T) {
	prefix := testnats.ProcessPrefix(t)
	topo := broker.Topology{Namespace: schemas.Namespace{Prefix: prefix}}
	js, _, _ := testnats.Shared(t) // a connection to inspect our streams
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	env := []string{"NATS_URL=" + testnats.URL(), "DOMAINGUARD_SUBJECT_PREFIX=" + prefix,
		"DOMAINGUARD_METRICS_ADDR=off", "DOMAINGUARD_MANAGE_TOPOLOGY=false", "DOMAINGUARD_DATA_DIR=" + t.TempDir()}
	out, err := testbin.Run(ctx, t, env, "checker")
	if err == nil || !strings.Contains(out, "domainguard topology") {
		t.Fatalf("checker without a topology: err=%v\n%s", err, out)
	}
	if _, err := js.Stream(ctx, topo.Namespace.Stream(schemas.StreamAudit)); err == nil {
		t.Fatal("the checker created streams although it may not manage the topology")
	}
	out, err = testbin.Run(ctx, t, env, "topology")
	if err != nil || !strings.Contains(out, topo.Namespace.Stream(schemas.StreamDomainChecks)) {
		t.Fatalf("topology: %v\n%s", err, out)
	}
	p := testbin.Start(t, testbin.Options{Name: "checker", Env: env}, "checker")
	if !p.WaitOutput(`"msg":"consuming"`, time.Minute) {
		t.Fatalf("checker did not start after the topology was created:\n%s", p.Output())
	}
	if err := p.Stop(time.Minute); err != nil {
		t.Fatalf("checker stop: %v", err)
	}
}

// reachable decides whether `run` falls back to a private PostgreSQL: only
// when nothing listens at the (default) TCP address.
func TestReachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	open := l.Addr().String()
	l.Close() // now nothing listens there
	if reachable("postgres://" + open + "/domainguard") {
		t.Errorf("closed port %s counted as reachable", open)
	}
	if !reachable("postgres://127.0.0.1:5432/postgres") {
		t.Errorf("the local PostgreSQL is not reachable")
	}
	if !reachable("postgres:///domainguard?host=/tmp/sock") {
		t.Errorf("a unix-socket URL must count as the user's choice")
	}
}

// A check dead-lettered because the provider refused it is replayed with
// `dlq replay` once the provider is fixed, and its change is applied: the
// address on the lapsed domain ends up unverified.
func TestDLQReplayAfterFixIsApplied(t *testing.T) {
	dbURL := testdb.NewEmpty(t)
	rdap := fakerdap.New(t)
	rdap.Set("broken.com", fakerdap.Answer{Status: 400}) // permanent: the name is refused
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := rdap.WriteCACert(ca); err != nil {
		t.Fatal(err)
	}
	js, _, _ := testnats.Shared(t)
	prefix := testnats.ProcessPrefix(t)
	topo := broker.Topology{Namespace: schemas.Namespace{Prefix: prefix}}
	env := []string{"NATS_URL=" + testnats.URL(), "DOMAINGUARD_SUBJECT_PREFIX=" + prefix, "DATABASE_URL=" + dbURL,
		"DOMAINGUARD_METRICS_ADDR=off", "DOMAINGUARD_PROVIDER=rdap", "RDAP_BOOTSTRAP_URL=" + rdap.BootstrapURL(),
		"SSL_CERT_FILE=" + ca, "DOMAINGUARD_DATA_DIR=" + t.TempDir(), "DOMAINGUARD_LOOKUPS_PER_SECOND=100",
		"DOMAINGUARD_SWEEP_INTERVAL=1s"}
	p := testbin.Start(t, testbin.Options{Name: "run", Env: env}, "run")
	if !p.WaitOutput(`"msg":"consuming"`, time.Minute) {
		t.Fatalf("run did not start:\n%s", p.Output())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	body := `{"user_id":"u1","email":"ada@broken.com","verified_at":"2025-01-02T03:04:05Z"}`
	if _, err := js.Publish(ctx, topo.Namespace.Subject(schemas.SubjectEmailVerified), []byte(body)); err != nil {
		t.Fatal(err)
	}
	dlq := func() []deadletters.Entry {
		out, err := testbin.Run(ctx, t, env, "dlq", "list", "--json")
		if err != nil {
			t.Fatalf("dlq list: %v\n%s", err, out)
		}
		var entries []deadletters.Entry
		if err := json.Unmarshal([]byte(stdoutJSON(out)), &entries); err != nil {
			t.Fatalf("dlq list output: %v\n%s", err, out)
		}
		return entries
	}
	var entries []deadletters.Entry
	for deadline := time.Now().Add(time.Minute); len(entries) == 0; {
		if time.Now().After(deadline) {
			t.Fatalf("the refused check was not dead-lettered:\n%s", p.Output())
		}
		time.Sleep(500 * time.Millisecond)
		entries = dlq()
	}
	if entries[0].Letter.Stream != schemas.StreamDomainChecks || entries[0].Letter.Subject != schemas.SubjectCheckPrefix+"broken.com" {
		t.Fatalf("dead letter %+v", entries[0].Letter)
	}

	// The registry's server is fixed; the name turns out to be lapsing.
	rdap.Set("broken.com", fakerdap.Answer{Phase: lifecycle.PhaseRedemption})
	if out, err := testbin.Run(ctx, t, env, "dlq", "replay", "--all"); err != nil {
		t.Fatalf("dlq replay: %v\n%s", err, out)
	}
	pool, err := postgres.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	for deadline := time.Now().Add(time.Minute); ; {
		var verified bool
		var reason *string
		err := pool.QueryRow(ctx, `SELECT verified, unverify_reason FROM emails WHERE email = 'ada@broken.com'`).Scan(&verified, &reason)
		if err == nil && !verified && reason != nil && *reason == string(lifecycle.ReasonRedemption) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replayed check not applied (verified=%v reason=%v err=%v):\n%s", verified, reason, err, p.Output())
		}
		time.Sleep(300 * time.Millisecond)
	}
	if left := dlq(); len(left) != 0 {
		t.Errorf("%d dead letters left after the replay", len(left))
	}
	if err := p.Stop(time.Minute); err != nil {
		t.Fatalf("run stop: %v", err)
	}
}
