package producer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/domainguard/domainguard/internal/testwait"
	"github.com/domainguard/domainguard/lifecycle"
	"github.com/domainguard/domainguard/schemas"
)

// addDueDomains inserts n never-checked domains d00000.example ... due at
// t0 minus a second per index (so the order is fixed).
func addDueDomains(t testing.TB, e *env, n int) {
	t.Helper()
	if _, err := e.pool.Exec(context.Background(), `
		INSERT INTO domains (name, next_check_at)
		SELECT format('d%s.example', lpad(i::text, 7, '0')), $1::timestamptz - make_interval(secs => i)
		  FROM generate_series(1, $2) AS i`, t0, n); err != nil {
		t.Fatal(err)
	}
}

func TestSweepLeaseAndFirstSeen(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	// First seen through import: due now, enqueued by the next sweep.
	if _, err := Import(ctx, e.pool, stringsReader("u1,a@fresh.example,2025-01-01\n"), ImportOptions{Clock: e.clk}); err != nil {
		t.Fatal(err)
	}
	if d, _ := readDomain(t, e.pool, "fresh.example"); !d.nextCheckAt.Equal(t0) || d.lastEnqueuedAt != nil {
		t.Fatalf("first-seen domain %+v, want due at t0", d)
	}
	// A checked domain carries its previous observation.
	exp := t0.Add(400 * 24 * time.Hour)
	ev := lifecycle.Evidence{Provider: "rdap", Statuses: []string{"active"}, ExpiresAt: &exp, Handle: "H-1",
		ObservedAt: t0.Add(-31 * 24 * time.Hour)}
	if _, err := e.pool.Exec(ctx, `INSERT INTO domains (name, phase, evidence, expires_at, last_checked_at, next_check_at)
		VALUES ('old.example', 'active', $1, $2, $3, $4)`, ev, exp, ev.ObservedAt, t0.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	// Not due yet.
	if _, err := e.pool.Exec(ctx, `INSERT INTO domains (name, next_check_at) VALUES ('later.example', $1)`, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}

	res, err := e.p.Sweep(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Due != 2 || res.Enqueued != 2 || res.AlreadyPending != 0 || res.Failed != 0 || res.BudgetLeft != -1 {
		t.Errorf("sweep = %+v, want 2 due and enqueued", res)
	}
	_, req := e.pendingCheck(t, "fresh.example")
	if req.Reason != schemas.CheckSchedule || req.Previous != nil || req.Domain != "fresh.example" {
		t.Errorf("check of a new domain = %+v", req)
	}
	_, req = e.pendingCheck(t, "old.example")
	if req.Previous == nil || req.Previous.Phase != lifecycle.PhaseActive || req.Previous.Evidence.Handle != "H-1" ||
		!req.Previous.Evidence.ExpiresAt.Equal(exp) {
		t.Errorf("check of a checked domain = %+v, want previous active evidence", req)
	}
	lease := t0.Add(e.p.cfg.CheckLease * 21 / 20) // jitter 0.5 of 10%
	for _, name := range []string{"fresh.example", "old.example"} {
		if d, _ := readDomain(t, e.pool, name); !d.nextCheckAt.Equal(lease) || d.lastEnqueuedAt == nil || !d.lastEnqueuedAt.Equal(t0) {
			t.Errorf("%s after sweep: %+v, want leased until %s", name, d, lease)
		}
	}
	if n := countRows(t, e.pool, `SELECT count FROM lookup_budget WHERE hour = $1`, t0); n != 2 {
		t.Errorf("budget bucket counts %d, want 2", n)
	}

	// Nothing more is due until the lease ends...
	e.clk.Set(lease.Add(-time.Second))
	e.ackAllChecks(t) // the checker took them; no result arrived
	if res, err := e.p.Sweep(ctx, nil); err != nil || res.Enqueued != 1 {
		t.Errorf("sweep within the lease = %+v, %v; want only later.example", res, err)
	}
	// ... then the lost checks are enqueued again.
	e.clk.Set(lease)
	if res, err := e.p.Sweep(ctx, nil); err != nil || res.Enqueued != 2 {
		t.Errorf("sweep after the lease = %+v, %v; want the 2 lost checks again", res, err)
	}
	if got := testutil.ToFloat64(e.p.m.enqueued); got != 5 {
		t.Errorf("enqueued counter %v, want 5", got)
	}
	if got := testutil.ToFloat64(e.p.m.sweeps); got != 3 {
		t.Errorf("sweeps counter %v, want 3", got)
	}
}

// A result recorded by the enforcer while the page was in flight is not
// overwritten by the lease.
func TestSweepLeaseKeepsEnforcerSchedule(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	addDueDomains(t, e, 3)
	var once sync.Once
	later := t0.Add(30 * 24 * time.Hour)
	e.p.cfg.Jitter = func() float64 {
		// Called while leasing, after the publishes: the enforcer got there first.
		once.Do(func() {
			if _, err := e.pool.Exec(ctx, `UPDATE domains SET next_check_at = $1, last_checked_at = $2 WHERE name = 'd0000002.example'`,
				later, t0); err != nil {
				t.Error(err)
			}
		})
		return 0
	}
	if _, err := e.p.Sweep(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if d, _ := readDomain(t, e.pool, "d0000002.example"); !d.nextCheckAt.Equal(later) {
		t.Errorf("enforcer's next check overwritten: %+v", d)
	}
	if d, _ := readDomain(t, e.pool, "d0000001.example"); !d.nextCheckAt.Equal(t0.Add(e.p.cfg.CheckLease)) {
		t.Errorf("d0000001 not leased: %+v", d)
	}
}

func TestSweepBudgetUrgency(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.DailyBudget = 10; c.PageSize = 2 })
	ctx := context.Background()
	// 3 used in the rolling day; older buckets do not count.
	if _, err := e.pool.Exec(ctx, `INSERT INTO lookup_budget (hour, count) VALUES ($1, 2), ($2, 1), ($3, 100)`,
		t0.Add(-time.Hour), t0.Add(-23*time.Hour), t0.Add(-25*time.Hour)); err != nil {
		t.Fatal(err)
	}
	ins := func(name, phase string, expires *time.Time, checked bool, overdue time.Duration) {
		t.Helper()
		var last *time.Time
		if checked {
			l := t0.Add(-40 * 24 * time.Hour)
			last = &l
		}
		if _, err := e.pool.Exec(ctx, `INSERT INTO domains (name, phase, expires_at, last_checked_at, next_check_at)
			VALUES ($1, $2, $3, $4, $5)`, name, phase, expires, last, t0.Add(-overdue)); err != nil {
			t.Fatal(err)
		}
	}
	soon, far := t0.Add(10*24*time.Hour), t0.Add(300*24*time.Hour)
	// routine: the most overdue ones come first
	ins("routine-a.example", "active", &far, true, 50*time.Hour)
	ins("routine-b.example", "active", nil, true, 40*time.Hour)
	ins("routine-c.example", "active", &far, true, 30*time.Hour)
	ins("routine-d.example", "active", nil, true, 20*time.Hour)
	// urgent
	ins("grace.example", "grace", &soon, true, time.Hour)
	ins("expiring.example", "active", &soon, true, time.Minute)
	ins("released.example", "released", nil, true, 2*time.Hour)
	// never checked
	ins("new-a.example", "unknown", nil, false, time.Second)
	ins("new-b.example", "unknown", nil, false, time.Second)
	ins("new-c.example", "unknown", nil, false, 0)

	var passes []string
	res, err := e.p.Sweep(ctx, func(p SweepProgress) { passes = append(passes, p.Pass) })
	if err != nil {
		t.Fatal(err)
	}
	if res.Due != 10 || res.Enqueued != 7 || !res.BudgetExhausted || res.BudgetLeft != 0 {
		t.Errorf("sweep = %+v, want 7 of 10 enqueued, budget exhausted", res)
	}
	want := []string{"new-a.example", "new-b.example", "new-c.example", "grace.example", "expiring.example",
		"released.example", "routine-a.example"}
	pending := e.pendingChecks(t)
	if len(pending) != len(want) {
		t.Errorf("pending %v, want %v", pending, want)
	}
	for _, d := range want {
		if pending[d] != 1 {
			t.Errorf("%s not enqueued (pending %v)", d, pending)
		}
	}
	if passes[0] != "never checked" || passes[len(passes)-1] != "routine" {
		t.Errorf("passes %v", passes)
	}
	if got := testutil.ToFloat64(e.p.m.budgetLeft); got != 0 {
		t.Errorf("budget_left gauge %v, want 0", got)
	}

	// The budget is spent: the next sweep enqueues nothing, and an hour
	// later (the oldest bucket left the day) one more.
	if res, err := e.p.Sweep(ctx, nil); err != nil || res.Enqueued != 0 || !res.BudgetExhausted {
		t.Errorf("sweep with no budget = %+v, %v", res, err)
	}
	e.clk.Set(t0.Add(time.Hour + time.Minute))
	if res, err := e.p.Sweep(ctx, nil); err != nil || res.Enqueued != 1 || res.BudgetLeft != 0 {
		t.Errorf("sweep an hour later = %+v, %v; want routine-b enqueued", res, err)
	}
	if e.pendingChecks(t)["routine-b.example"] != 1 {
		t.Error("routine-b.example not enqueued next")
	}
}

func TestSweepDNSOnlyAndUnmonitoredChecksAreFree(t *testing.T) {
	// One page: the budget stops the sweep after the page that spends it,
	// so free checks on that page still go out, paid ones beyond it wait.
	e := newEnv(t, func(c *Config) { c.DailyBudget = 2; c.PageSize = 10 })
	ctx := context.Background()
	last := t0.Add(-40 * 24 * time.Hour)
	ins := func(name, evidence string, unmonitored bool) {
		t.Helper()
		var since *time.Time
		if unmonitored {
			since = &last
		}
		var ev any
		if evidence != "" {
			ev = evidence
		}
		if _, err := e.pool.Exec(ctx, `INSERT INTO domains (name, phase, evidence, last_checked_at, next_check_at, unmonitored_since)
			VALUES ($1, 'active', $2, $3, $4, $5)`, name, ev, last, t0.Add(-time.Hour), since); err != nil {
			t.Fatal(err)
		}
	}
	dns := `{"provider":"dns","observed_at":"2026-01-01T00:00:00Z","dns":{"delegated":true,"rcode":"NOERROR"}}`
	rdap := `{"provider":"rdap","observed_at":"2026-01-01T00:00:00Z"}`
	for _, n := range []string{"a.eu", "b.eu", "c.eu", "d.eu"} {
		ins(n, dns, false)
	}
	ins("none.zz", "", true)
	for _, n := range []string{"a.com", "b.com", "c.com"} {
		ins(n, rdap, false)
	}
	res, err := e.p.Sweep(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Every free check (4 DNS-only, 1 unmonitored) and 2 paid ones.
	if res.Enqueued != 7 || res.BudgetLeft != 0 || !res.BudgetExhausted {
		t.Errorf("sweep = %+v, want 7 enqueued, budget 2 spent", res)
	}
	var used int64
	if err := e.pool.QueryRow(ctx, `SELECT COALESCE(sum(count), 0) FROM lookup_budget`).Scan(&used); err != nil || used != 2 {
		t.Errorf("budget used %d (%v), want 2: DNS-only and unmonitored checks are free", used, err)
	}
	pending := e.pendingChecks(t)
	for _, n := range []string{"a.eu", "b.eu", "c.eu", "d.eu", "none.zz"} {
		if pending[n] != 1 {
			t.Errorf("free check %s not enqueued (pending %v)", n, pending)
		}
	}
	if pending["c.com"] != 0 {
		t.Errorf("paid check beyond the budget enqueued (pending %v)", pending)
	}
}

// Two replicas sweeping at once enqueue every due domain once, and a held
// sweep lock makes a sweep skip.
func TestSweepConcurrent(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.PageSize = 100; c.MaxInFlight = 16 })
	ctx := context.Background()
	const n = 1500
	addDueDomains(t, e, n)

	conn, err := e.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, SweepLockKey); err != nil {
		t.Fatal(err)
	}
	res, err := e.p.Sweep(ctx, nil)
	if err != nil || !res.Skipped || res.Enqueued != 0 || res.Due != n {
		t.Errorf("sweep while the lock is held = %+v, %v; want skipped", res, err)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, SweepLockKey); err != nil {
		t.Fatal(err)
	}
	conn.Release()

	replicas := []*Producer{e.p, e.newProducer(t)}
	results := make([]SweepResult, len(replicas))
	errs := make([]error, len(replicas))
	var wg sync.WaitGroup
	for i, p := range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = p.Sweep(ctx, nil)
		}()
	}
	wg.Wait()
	var enqueued, pending int64
	for i := range replicas {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		enqueued += results[i].Enqueued
		pending += results[i].AlreadyPending
	}
	if enqueued != n || pending != 0 {
		t.Errorf("replicas enqueued %d (already pending %d), want %d once: %+v", enqueued, pending, n, results)
	}
	checks := e.pendingChecks(t)
	if len(checks) != n {
		t.Errorf("%d domains pending, want %d", len(checks), n)
	}
	if due := countRows(t, e.pool, `SELECT count(*) FROM domains WHERE next_check_at <= $1`, t0); due != 0 {
		t.Errorf("%d domains still due", due)
	}
}

// A sweep that stops half-way (killed, or its publishes not leased) is
// completed by the next one, each domain enqueued once.
func TestSweepKilledHalfway(t *testing.T) {
	// Pages are published ahead of their acks (at most MaxInFlight), so a
	// cancelled sweep finishes the page it is publishing: with 50 in flight
	// it stops within one page after the one that reached 200.
	e := newEnv(t, func(c *Config) { c.PageSize = 100; c.MaxInFlight = 50 })
	const n = 450
	addDueDomains(t, e, n)

	ctx, cancel := context.WithCancel(context.Background())
	res, err := e.p.Sweep(ctx, func(p SweepProgress) {
		if p.Enqueued >= 200 {
			cancel()
		}
	})
	stopped := res.Enqueued
	if !errors.Is(err, context.Canceled) || stopped < 200 || stopped > 300 {
		t.Fatalf("interrupted sweep = %+v, %v; want 200 to 300 enqueued and context.Canceled", res, err)
	}
	// A crash after publishing but before leasing: 30 more checks are in
	// the queue while their domains are still due.
	for i := range 30 {
		name := fmt.Sprintf("d%07d.example", i+1) // the least overdue: not enqueued yet
		msg, err := e.p.checkMsg(name, schemas.CheckSchedule, nil, t0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.js.PublishMsg(context.Background(), msg); err != nil {
			t.Fatal(err)
		}
	}

	next := e.newProducer(t)
	res, err = next.Sweep(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Due != n-stopped || res.Enqueued != n-stopped-30 || res.AlreadyPending != 30 {
		t.Errorf("completing sweep = %+v, want %d due, %d enqueued, 30 already pending", res, n-stopped, n-stopped-30)
	}
	checks := e.pendingChecks(t)
	if len(checks) != n {
		t.Errorf("%d domains pending, want all %d", len(checks), n)
	}
	for d, c := range checks {
		if c != 1 {
			t.Errorf("%s has %d pending checks", d, c)
		}
	}
	if due := countRows(t, e.pool, `SELECT count(*) FROM domains WHERE next_check_at <= $1`, t0); due != 0 {
		t.Errorf("%d domains still due", due)
	}
}

func TestSweepOverdueGauge(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	if _, err := e.pool.Exec(ctx, `INSERT INTO domains (name, next_check_at) VALUES
		('a.example', $1), ('b.example', $2), ('c.example', $3)`,
		t0.Add(-25*time.Hour), t0.Add(-23*time.Hour), t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	res, err := e.p.Sweep(ctx, nil)
	if err != nil || res.Due != 2 || res.Overdue != 1 {
		t.Fatalf("sweep = %+v, %v", res, err)
	}
	if got := testutil.ToFloat64(e.p.m.domainsOverdue); got != 1 {
		t.Errorf("overdue gauge %v, want 1", got)
	}
	if got := testutil.ToFloat64(e.p.m.domainsDue); got != 2 {
		t.Errorf("due gauge %v, want 2", got)
	}
}

func TestRunSweeperAndRun(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.SweepInterval = time.Second })
	addDueDomains(t, e, 5)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.p.Run(ctx) }()
	testwait.For(t, 15*time.Second, "the first sweep", func() bool { return len(e.pendingChecks(t)) == 5 })
	e.publishHost(t, schemas.SubjectEmailVerified, hostEvent(t, "", verified("u1", "a@run.example", t0)))
	testwait.For(t, 15*time.Second, "the signup check", func() bool { return e.pendingChecks(t)["run.example"] == 1 })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestConfigValidate(t *testing.T) {
	e := newEnv(t, nil)
	base := e.cfg.WithDefaults()
	if err := base.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if base.CheckLease != 6*time.Hour || base.PageSize != 1000 || base.MaxInFlight != 256 || base.SweepInterval != time.Minute {
		t.Errorf("defaults %+v", base)
	}
	for name, mut := range map[string]func(*Config){
		"no pool":       func(c *Config) { c.Pool = nil },
		"no js":         func(c *Config) { c.JS = nil },
		"budget":        func(c *Config) { c.DailyBudget = -1 },
		"lease":         func(c *Config) { c.CheckLease = time.Second },
		"page":          func(c *Config) { c.PageSize = -5 },
		"in flight":     func(c *Config) { c.MaxInFlight = 5000 },
		"workers":       func(c *Config) { c.IntakeWorkers = -1 },
		"sweep":         func(c *Config) { c.SweepInterval = time.Millisecond },
		"pub timeout":   func(c *Config) { c.PublishTimeout = -time.Second },
		"bad namespace": func(c *Config) { c.Topology.Namespace.Prefix = "a.>" },
	} {
		c := base
		mut(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", name, c)
		}
	}
	if _, err := New(Config{}); err == nil {
		t.Error("New accepted an empty config")
	}
}
