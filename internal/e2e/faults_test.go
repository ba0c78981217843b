package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"

	"github.com/domainguard/domainguard/internal/fakerdap"
	"github.com/domainguard/domainguard/lifecycle"
)

// faultPlan sizes the fault run: the default fits CI's time box, the long
// form (DOMAINGUARD_E2E_LONG=1) is the full run.
type faultPlan struct {
	domains int
	// killRounds is how many times each role is SIGKILLed (wave 1 and, in
	// the long form, wave 2 too).
	killRounds int
	// outage is how long the provider answers 5xx, 429 and timeouts (a
	// third each).
	outage time.Duration
}

func planFaults() faultPlan {
	if long() {
		return faultPlan{domains: 10000, killRounds: 3, outage: time.Minute}
	}
	return faultPlan{domains: 2000, killRounds: 1, outage: 10 * time.Second}
}

// TestFaults runs a flow of 2,000 domains (10,000 in the long form) through
// the three role processes while it SIGKILLs each role at random moments,
// restarts the NATS server and the PostgreSQL server, and makes the
// provider fail with 503s, 429s and timeouts. Afterwards every expected
// unverification must have happened exactly once, every audit event must be
// on AUDIT exactly once by id, no healthy address may be touched, and every
// consumer must drain.
//
// Wave 1: host events for every address are published; 5% of the domains
// are already lapsed (expired, redemption, pending delete or released);
// each role is killed once during the intake and signup checks. Wave 2:
// another 5% lapse, every domain is made due (simulated: next_check_at set
// to now by SQL), and NATS restarts, then PostgreSQL, then the provider
// fails. A failed lookup is retried by the enforcer's schedule after about
// an hour; the suite fast-forwards that hour by SQL as well.
func TestFaults(t *testing.T) {
	// Each scenario has its own NATS server, database and providers.
	t.Parallel()
	plan := planFaults()
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 0xe2e))
	t.Logf("plan %+v, seed %d", plan, seed)

	c := newCluster(t, clusterOptions{privatePG: true, extraEnv: []string{"DOMAINGUARD_BREAKER_PCT=100"}})
	c.supervise = true
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	// The script.
	day := 24 * time.Hour
	now := time.Now().UTC().Truncate(time.Second)
	lapsedAnswer := map[lifecycle.Phase]fakerdap.Answer{
		lifecycle.PhaseExpired:       {Phase: lifecycle.PhaseExpired, ExpiresAt: now.Add(-10 * day)},
		lifecycle.PhaseRedemption:    {Phase: lifecycle.PhaseRedemption, ExpiresAt: now.Add(-40 * day)},
		lifecycle.PhasePendingDelete: {Phase: lifecycle.PhasePendingDelete, ExpiresAt: now.Add(-75 * day)},
		lifecycle.PhaseReleased:      {Phase: lifecycle.PhaseReleased},
	}
	cycle := []lifecycle.Phase{lifecycle.PhaseExpired, lifecycle.PhaseRedemption, lifecycle.PhasePendingDelete, lifecycle.PhaseReleased}
	type dom struct {
		name   string
		emails []string
		wave   int // 0 healthy, 1 lapsed from the start, 2 lapses in wave 2
		phase  lifecycle.Phase
	}
	doms := make([]dom, plan.domains)
	answers := map[string]fakerdap.Answer{} // domains with a Set answer
	var evs []verified
	verifiedAt := now.Add(-30 * day)
	var all []string
	for i := range doms {
		d := dom{name: fmt.Sprintf("fault-%05d.net", i), phase: lifecycle.PhaseActive}
		switch i % 20 {
		case 0:
			d.wave, d.phase = 1, cycle[(i/20)%len(cycle)]
			answers[d.name] = lapsedAnswer[d.phase]
		case 10:
			d.wave, d.phase = 2, lifecycle.PhaseExpired
		}
		n := 1 + i%2 // one or two addresses
		for j := 0; j < n; j++ {
			e := fmt.Sprintf("u%d@%s", j, d.name)
			d.emails = append(d.emails, e)
			evs = append(evs, verified{UserID: fmt.Sprintf("user-%05d-%d", i, j), Email: e, VerifiedAt: verifiedAt})
		}
		doms[i] = d
		all = append(all, d.name)
	}
	for name, a := range answers {
		c.rdap.Set(name, a)
	}
	rng.Shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })

	// providerFails makes every lookup fail with a (nil: restores the script).
	providerFails := func(a *fakerdap.Answer) {
		if a == nil {
			c.rdap.SetDefault(fakerdap.Answer{})
			for name, sa := range answers {
				c.rdap.Set(name, sa)
			}
			return
		}
		c.rdap.SetDefault(*a)
		for name := range answers {
			c.rdap.Set(name, *a)
		}
	}
	randomPause := func() { time.Sleep(time.Duration(200+rng.IntN(1300)) * time.Millisecond) }
	killRound := func(wave int) {
		for _, r := range shuffled(rng, roles) {
			randomPause()
			c.kill(r)
			t.Logf("wave %d: SIGKILL %s", wave, r)
			time.Sleep(time.Duration(100+rng.IntN(400)) * time.Millisecond)
			c.start(r)
		}
	}
	// allChecked reports whether every domain was looked up since `since`
	// and shows its expected phase, fast-forwarding the retry delay of
	// domains whose lookup failed.
	allChecked := func(since time.Time, wave int) func() (bool, string) {
		return func() (bool, string) {
			c.exited()
			if _, err := c.pool.Exec(ctx, `UPDATE domains SET next_check_at = now()
				WHERE check_failures > 0 AND next_check_at > now()`); err != nil {
				return false, "fast-forward retries: " + err.Error()
			}
			ds, err := c.domains(ctx)
			if err != nil {
				return false, err.Error()
			}
			bad := 0
			var example string
			for _, d := range doms {
				want := lifecycle.PhaseActive
				if d.wave != 0 && d.wave <= wave {
					want = d.phase
				}
				r, ok := ds[d.name]
				if !ok || r.LastCheckedAt == nil || r.LastCheckedAt.Before(since) || r.Phase != string(want) || r.CheckFailures > 0 {
					bad++
					example = fmt.Sprintf("%s %+v want %s", d.name, r, want)
				}
			}
			return bad == 0, fmt.Sprintf("%d of %d domains not yet checked with their expected phase, e.g. %s", bad, len(doms), example)
		}
	}

	// Wave 1.
	c.startAll()
	w1 := time.Now()
	c.publishVerified(ctx, evs)
	t.Logf("wave 1: published %d host events for %d domains in %s", len(evs), len(doms), time.Since(w1).Round(time.Millisecond))
	for k := 0; k < plan.killRounds; k++ {
		killRound(1)
	}
	lastKill := time.Now()
	waitFor(t, 3*time.Minute, "wave 1 to settle", allChecked(w1.Add(-time.Minute), 1))
	c.quiet(ctx, time.Minute)
	t.Logf("wave 1: settled %s after the last kill (%s after the start)",
		time.Since(lastKill).Round(100*time.Millisecond), time.Since(w1).Round(100*time.Millisecond))

	// Wave 2.
	for _, d := range doms {
		if d.wave == 2 {
			answers[d.name] = lapsedAnswer[d.phase]
			c.rdap.Set(d.name, answers[d.name])
		}
	}
	since := c.forceRecheck(ctx, all)
	w2 := time.Now()
	if plan.killRounds > 1 {
		killRound(2)
	}
	randomPause()
	t0 := time.Now()
	c.nats.restart()
	t.Logf("wave 2: NATS server restarted (down %s)", time.Since(t0).Round(time.Millisecond))
	randomPause()
	t0 = time.Now()
	c.restartPG()
	t.Logf("wave 2: PostgreSQL restarted (down %s)", time.Since(t0).Round(time.Millisecond))
	randomPause()
	third := plan.outage / 3
	lookupsBefore := c.rdap.TotalLookups()
	providerFails(&fakerdap.Answer{Status: http.StatusServiceUnavailable})
	time.Sleep(third)
	providerFails(&fakerdap.Answer{Status: http.StatusTooManyRequests, RetryAfter: time.Second})
	time.Sleep(third)
	// Longer than the RDAP client's 15s HTTP timeout: every lookup times out.
	providerFails(&fakerdap.Answer{Delay: 20 * time.Second})
	time.Sleep(plan.outage - 2*third)
	providerFails(nil)
	outageEnd := time.Now()
	t.Logf("wave 2: provider outage of %s over (%d lookups during it)", plan.outage, c.rdap.TotalLookups()-lookupsBefore)

	waitFor(t, 4*time.Minute, "wave 2 to settle", allChecked(since, 2))
	c.quiet(ctx, time.Minute)
	recovered := time.Since(outageEnd)
	t.Logf("wave 2: settled %s after the provider outage ended (%s after the wave started)",
		recovered.Round(100*time.Millisecond), time.Since(w2).Round(100*time.Millisecond))

	// Invariants.
	es, err := c.emails(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := c.auditLog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	unverifiedEvents := map[string]int{}
	domainEvents := map[string]map[string]int{}
	for _, r := range rows {
		if r.Type == "audit.email.unverified" {
			unverifiedEvents[r.Email]++
		}
		if domainEvents[r.Domain] == nil {
			domainEvents[r.Domain] = map[string]int{}
		}
		domainEvents[r.Domain][r.Type]++
	}
	wantUnverified, healthyTouched, wrong := 0, 0, 0
	for _, d := range doms {
		for _, email := range d.emails {
			e, ok := es[email]
			switch {
			case !ok:
				wrong++
				t.Errorf("%s was never stored", email)
			case d.wave == 0:
				if !e.Verified || unverifiedEvents[email] != 0 {
					healthyTouched++
					t.Errorf("healthy %s touched: verified=%v reason=%q events=%d", email, e.Verified, e.Reason, unverifiedEvents[email])
				}
			default:
				wantUnverified++
				if e.Verified || e.Reason != string(lifecycle.ReasonFor(d.phase)) || unverifiedEvents[email] != 1 {
					wrong++
					t.Errorf("%s (%s, wave %d): verified=%v reason=%q, %d unverified events; want unverified once for %s",
						email, d.phase, d.wave, e.Verified, e.Reason, unverifiedEvents[email], lifecycle.ReasonFor(d.phase))
				}
			}
		}
		ev := domainEvents[d.name]
		switch {
		case d.wave == 0 && len(ev) > 0:
			t.Errorf("healthy domain %s has audit events %v", d.name, ev)
		case d.wave != 0 && (ev["audit.domain.changed"] != 1 || len(ev) != 2):
			t.Errorf("lapsed domain %s audit events %v, want one audit.domain.changed and its unverifications", d.name, ev)
		}
	}
	if p, ids := c.auditPublished(ctx); p != "" {
		t.Errorf("audit publication: %s", p)
	} else {
		t.Logf("AUDIT: %d events, each exactly once by id, equal to audit_log", len(ids))
	}
	if p := c.pending(ctx); p != "" {
		t.Errorf("consumers not drained: %s", p)
	}
	dls, err := c.deadLetters(ctx, "DOMAIN_CHECKS")
	if err != nil {
		t.Fatal(err)
	}
	for _, dl := range dls {
		t.Errorf("dead-lettered check: %s: %s", dl.Subject, dl.Error)
	}
	c.mu.Lock()
	revived := append([]string(nil), c.revived...)
	c.mu.Unlock()
	t.Logf("outcome: %d domains, %d addresses; %d unverified as expected (wrong %d), %d healthy touched; %d audit events; "+
		"%d provider lookups; roles that exited by themselves and were restarted: %v",
		len(doms), len(evs), wantUnverified, wrong, healthyTouched, len(rows), c.rdap.TotalLookups(), revived)
	c.stopAll()
}

func shuffled(rng *rand.Rand, in []string) []string {
	out := append([]string(nil), in...)
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}
