package enforcer

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/domainguard/domainguard/internal/broker"
	"github.com/domainguard/domainguard/internal/clock"
	"github.com/domainguard/domainguard/internal/postgres"
	"github.com/domainguard/domainguard/internal/testwait"
	"github.com/domainguard/domainguard/lifecycle"
	"github.com/domainguard/domainguard/schemas"
)

// Environment of the enforcer child process of TestCrashRecovery.
const (
	envHelper   = "DG_ENFORCER_HELPER"
	envHelperDB = "DG_ENFORCER_HELPER_DB"
	envHelperNS = "DG_ENFORCER_HELPER_NS"
)

// crashTopology is sharedNATS's topology for the namespace prefix.
func crashTopology(prefix string) broker.Topology {
	return broker.Topology{Namespace: schemas.Namespace{Prefix: prefix}, Storage: jetstream.MemoryStorage, EventAckWait: 3 * time.Second}
}

// TestHelperEnforcerProcess is the enforcer process TestCrashRecovery
// starts and kills; it does nothing in a normal test run.
func TestHelperEnforcerProcess(t *testing.T) {
	if os.Getenv(envHelper) != "1" {
		t.Skip("helper process for TestCrashRecovery")
	}
	ctx := context.Background()
	pool, err := postgres.Open(ctx, os.Getenv(envHelperDB))
	if err != nil {
		t.Fatal(err)
	}
	url := os.Getenv("DOMAINGUARD_TEST_NATS_URL")
	if url == "" {
		url = "nats://127.0.0.1:4222"
	}
	_, js, err := broker.Connect(ctx, broker.ConnectOptions{URL: url, Name: "enforcer crash helper"})
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(Config{Pool: pool, JS: js, Topology: crashTopology(os.Getenv(envHelperNS)), Clock: clock.System{},
		Logger: quietLogger(t), BreakerPct: 100, Batch: 20, RelayBatch: 50, RelayInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Run(ctx); err != nil { // until SIGKILL
		t.Fatal(err)
	}
}

// TestCrashRecovery kills the enforcer process (SIGKILL) at random points
// while 1,000 changed events flow, restarts it, and checks that in the end
// every expected address is unverified exactly once and every audit event
// is published exactly once (by id), none missing.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test starts processes")
	}
	const domains = 1000
	f := newFixture(t, nil)
	js, _, topo := sharedNATS(t)
	ctx := context.Background()
	dbURL := f.dbURL

	obsAt := time.Now().UTC().Add(-time.Minute)
	// Two addresses per domain, each domain known active.
	f.exec(`
INSERT INTO emails (user_id, email, domain, verified, verified_at)
SELECT 'user-' || i || '-' || j, 'u' || j || '@crash' || i || '.com', 'crash' || i || '.com', true, $1
FROM generate_series(1, $2) i, generate_series(1, 2) j`, obsAt.Add(-48*time.Hour), domains)
	f.exec(`INSERT INTO domains (name, phase, observed_at, next_check_at) SELECT 'crash' || i || '.com', 'active', $1, $1 FROM generate_series(1, $2) i`,
		obsAt.Add(-time.Hour), domains)

	// Publish in the background while the enforcer is being killed.
	published := make(chan error, 1)
	go func() {
		for i := 1; i <= domains; i++ {
			d := fmt.Sprintf("crash%d.com", i)
			ch := schemas.DomainChanged{Domain: d, PreviousPhase: lifecycle.PhaseActive, Phase: lifecycle.PhaseExpired,
				Evidence: lifecycle.Evidence{Provider: "rdap", Statuses: []string{"client hold"}, ObservedAt: obsAt}}
			ev, err := schemas.NewEvent("test/checker", "domains.changed", d, obsAt, ch)
			if err == nil {
				_, err = broker.PublishEvent(ctx, js, topo.Namespace.ChangedSubject(d), ev)
			}
			if err != nil {
				published <- err
				return
			}
			if i%100 == 0 {
				time.Sleep(50 * time.Millisecond)
			}
		}
		published <- nil
	}()

	start := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperEnforcerProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), envHelper+"=1", envHelperDB+"="+dbURL, envHelperNS+"="+topo.Namespace.Prefix)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	kills := 0
	for range 6 {
		cmd := start()
		time.Sleep(time.Duration(300+rand.IntN(900)) * time.Millisecond)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		kills++
		t.Logf("kill %d: %d events processed, %d audit events unsent", kills,
			f.count(`SELECT count(*) FROM processed_messages`), f.count(`SELECT count(*) FROM outbox WHERE sent_at IS NULL`))
	}
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	cmd := start()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
	}()
	testwait.For(t, 90*time.Second, "every address unverified and the outbox drained", func() bool {
		return f.count(`SELECT count(*) FROM emails WHERE verified`) == 0 &&
			f.count(`SELECT count(*) FROM processed_messages`) == domains &&
			f.count(`SELECT count(*) FROM outbox WHERE sent_at IS NULL`) == 0
	})
	t.Logf("killed the enforcer %d times; processed %d changed events", kills, domains)

	if n := f.count(`SELECT count(*) FROM (SELECT email FROM audit_log WHERE type = $1 GROUP BY email HAVING count(*) <> 1) x`, schemas.SubjectEmailUnverified); n != 0 {
		t.Errorf("%d addresses without exactly one unverified audit row", n)
	}
	if n := f.count(`SELECT count(*) FROM audit_log WHERE type = $1`, schemas.SubjectEmailUnverified); n != 2*domains {
		t.Errorf("unverified audit rows = %d, want %d", n, 2*domains)
	}
	if n := f.count(`SELECT count(*) FROM domain_observations`); n != domains {
		t.Errorf("observations = %d, want %d (one per event)", n, domains)
	}
	byID, bySubject := auditMessages(t, ctx, js, topo)
	rows, err := f.pool.Query(ctx, `SELECT id::text FROM audit_log`)
	if err != nil {
		t.Fatal(err)
	}
	missing, total := 0, 0
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		total++
		if byID[id] != 1 {
			missing++
			if missing < 5 {
				t.Errorf("audit event %s on AUDIT %d times, want 1", id, byID[id])
			}
		}
	}
	rows.Close()
	if missing > 0 || len(byID) != total {
		t.Errorf("%d of %d audit events not published exactly once; AUDIT holds %d ids", missing, total, len(byID))
	}
	if bySubject[schemas.SubjectEmailUnverified] != 2*domains || bySubject[schemas.SubjectDomainChanged] != domains {
		t.Errorf("AUDIT by subject %v", bySubject)
	}
}
