package e2e

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/domainguard/domainguard/internal/fakerdap"
	"github.com/domainguard/domainguard/lifecycle"
)

// group is a set of domains that share a script: the provider's answer and
// the expected outcome at each step.
type group struct {
	name    string
	domains int
	perDom  int // addresses per domain
	// answer returns what the provider says at step (nil: unchanged).
	answer func(step int, domain string) *fakerdap.Answer
	// phase is the expected phase after step.
	phase func(step int) lifecycle.Phase
	// events are the audit events expected for each domain of the group at
	// step (audit.email.unverified is counted per address separately).
	events func(step int) []string
	// unverifiedAt is the step at which the group's addresses are
	// unverified and the reason (-1: never).
	unverifiedAt int
	reason       lifecycle.Reason
}

func ans(a fakerdap.Answer) *fakerdap.Answer { return &a }

// The lifecycle steps (simulated days): at each one the provider's answers
// change, every domain is made due by SQL, and the suite waits for every
// domain to be looked up again before it asserts the exact outcome.
var stepNames = []string{"signup", "grace", "expired", "redemption", "pending_delete", "released", "reregistered"}

func lifecycleGroups(newReg time.Time) []group {
	none := func(int) []string { return nil }
	return []group{{
		// The full lifecycle, one phase per step.
		name: "lapse", domains: 30, perDom: 4, unverifiedAt: 2, reason: lifecycle.ReasonExpired,
		answer: func(step int, d string) *fakerdap.Answer {
			switch step {
			case 1:
				return ans(fakerdap.Answer{Phase: lifecycle.PhaseGrace})
			case 2:
				return ans(fakerdap.Answer{Phase: lifecycle.PhaseExpired})
			case 3:
				return ans(fakerdap.Answer{Phase: lifecycle.PhaseRedemption})
			case 4:
				return ans(fakerdap.Answer{Phase: lifecycle.PhasePendingDelete})
			case 5:
				return ans(fakerdap.Answer{Phase: lifecycle.PhaseReleased})
			case 6: // someone else registers it: new date and handle
				return ans(fakerdap.Answer{RegisteredAt: newReg, Handle: "NEWOWNER-" + d})
			}
			return nil
		},
		phase: func(step int) lifecycle.Phase {
			return []lifecycle.Phase{lifecycle.PhaseActive, lifecycle.PhaseGrace, lifecycle.PhaseExpired,
				lifecycle.PhaseRedemption, lifecycle.PhasePendingDelete, lifecycle.PhaseReleased, lifecycle.PhaseActive}[step]
		},
		events: func(step int) []string {
			switch step {
			case 0:
				return nil
			case 1:
				return []string{"audit.domain.changed", "audit.domain.expiring"}
			case 6:
				return []string{"audit.domain.changed", "audit.domain.reregistered"}
			}
			return []string{"audit.domain.changed"}
		},
	}, {
		// Grace, then renewed by the owner: warned, never unverified.
		name: "renewed", domains: 5, perDom: 4, unverifiedAt: -1,
		answer: func(step int, d string) *fakerdap.Answer {
			switch step {
			case 1:
				return ans(fakerdap.Answer{Phase: lifecycle.PhaseGrace})
			case 2:
				return ans(fakerdap.Answer{Phase: lifecycle.PhaseActive})
			}
			return nil
		},
		phase: func(step int) lifecycle.Phase {
			if step == 1 {
				return lifecycle.PhaseGrace
			}
			return lifecycle.PhaseActive
		},
		events: func(step int) []string {
			switch step {
			case 1:
				return []string{"audit.domain.changed", "audit.domain.expiring"}
			case 2:
				return []string{"audit.domain.changed"}
			}
			return nil
		},
	}, {
		// Transferred to a new registrant without ever lapsing visibly:
		// new registration date and handle while active.
		name: "taken", domains: 5, perDom: 4, unverifiedAt: 3, reason: lifecycle.ReasonReregistered,
		answer: func(step int, d string) *fakerdap.Answer {
			if step == 3 {
				return ans(fakerdap.Answer{RegisteredAt: newReg, Handle: "TAKEN-" + d})
			}
			return nil
		},
		phase: func(int) lifecycle.Phase { return lifecycle.PhaseActive },
		events: func(step int) []string {
			if step == 3 {
				return []string{"audit.domain.changed", "audit.domain.reregistered"}
			}
			return nil
		},
	}, {
		// Healthy all along: looked up at every step, never touched.
		name: "healthy", domains: 10, perDom: 4, unverifiedAt: -1,
		answer: func(int, string) *fakerdap.Answer { return nil },
		phase:  func(int) lifecycle.Phase { return lifecycle.PhaseActive },
		events: none,
	}}
}

// auctionGroups: DESIGN §1's expiry auction. The registrar hands the name
// to a new owner during grace without deleting it: registration date and
// handle stay, the nameservers move. The "grace" control group is in the
// same grace period with its nameservers unchanged.
func auctionGroups() []group {
	moved := []string{"ns1.auction-parking.test", "ns2.auction-parking.test"}
	return []group{{
		name: "auction", domains: 10, perDom: 2, unverifiedAt: 1, reason: lifecycle.ReasonExpired,
		answer: func(step int, d string) *fakerdap.Answer {
			if step == 1 {
				return ans(fakerdap.Answer{Statuses: []string{"auto renew period"},
					ExpiresAt: time.Now().Add(-5 * 24 * time.Hour).Truncate(time.Second), Nameservers: moved})
			}
			return nil
		},
		phase: func(step int) lifecycle.Phase {
			if step == 0 {
				return lifecycle.PhaseActive
			}
			return lifecycle.PhaseExpired
		},
		events: func(step int) []string {
			if step == 1 {
				return []string{"audit.domain.changed"}
			}
			return nil
		},
	}, {
		name: "grace-control", domains: 5, perDom: 2, unverifiedAt: -1,
		answer: func(step int, d string) *fakerdap.Answer {
			if step == 1 {
				return ans(fakerdap.Answer{Phase: lifecycle.PhaseGrace})
			}
			return nil
		},
		phase: func(step int) lifecycle.Phase {
			if step == 0 {
				return lifecycle.PhaseActive
			}
			return lifecycle.PhaseGrace
		},
		events: func(step int) []string {
			if step == 1 {
				return []string{"audit.domain.changed", "audit.domain.expiring"}
			}
			return nil
		},
	}}
}

type member struct {
	g      *group
	domain string
	emails []string
}

// TestLifecycleAndAuction runs 200 addresses on 50 domains through active →
// grace → expired → redemption → pending_delete → released →
// re-registered (with renewed, taken-over and healthy control groups), and
// 30 addresses on 15 domains through an expiry auction, with the three
// roles as separate processes of the real binary. After every step it
// asserts the exact set of unverified addresses with their reasons, the
// exact audit events per domain, and that AUDIT carries each audit event
// exactly once.
func TestLifecycleAndAuction(t *testing.T) {
	// Each scenario has its own NATS server, database and providers.
	t.Parallel()
	c := newCluster(t, clusterOptions{extraEnv: []string{
		// 40 of 50 domains lapse in one step: far above the breaker's 5%,
		// which this scenario does not test.
		"DOMAINGUARD_BREAKER_PCT=100",
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	newReg := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	groups := append(lifecycleGroups(newReg), auctionGroups()...)
	var members []member
	var evs []verified
	// Verified a month ago: after the provider's registration date (five
	// years back) and before any observation.
	verifiedAt := time.Now().Add(-30 * 24 * time.Hour).UTC().Truncate(time.Second)
	for gi := range groups {
		g := &groups[gi]
		for i := 0; i < g.domains; i++ {
			m := member{g: g, domain: fmt.Sprintf("e2e-%s-%02d.com", g.name, i)}
			for j := 0; j < g.perDom; j++ {
				email := fmt.Sprintf("user%d@%s", j, m.domain)
				m.emails = append(m.emails, email)
				evs = append(evs, verified{UserID: fmt.Sprintf("%s-%02d-%d", g.name, i, j), Email: email, VerifiedAt: verifiedAt})
			}
			members = append(members, m)
		}
	}
	var all []string
	for _, m := range members {
		all = append(all, m.domain)
	}

	c.startAll()
	start := time.Now()
	c.publishVerified(ctx, evs)
	t.Logf("published %d intake events for %d domains", len(evs), len(members))

	for step, name := range stepNames {
		stepStart := time.Now()
		var since time.Time
		if step == 0 {
			since = start.Add(-time.Minute)
		} else {
			for _, m := range members {
				if a := m.g.answer(step, m.domain); a != nil {
					c.rdap.Set(m.domain, *a)
				}
			}
			since = c.forceRecheck(ctx, all)
		}
		// Every domain looked up (again) and its result applied.
		waitFor(t, 90*time.Second, "step "+name+": every domain checked", func() (bool, string) {
			if ex := c.exited(); len(ex) > 0 {
				t.Fatalf("role processes exited: %v", ex)
			}
			ds, err := c.domains(ctx)
			if err != nil {
				return false, err.Error()
			}
			missing := 0
			var example string
			for _, m := range members {
				d, ok := ds[m.domain]
				if !ok || d.LastCheckedAt == nil || d.LastCheckedAt.Before(since) {
					missing++
					example = m.domain
				}
			}
			return missing == 0, fmt.Sprintf("%d domains not checked since %s, e.g. %s", missing, since.Format(time.RFC3339Nano), example)
		})
		c.quiet(ctx, 60*time.Second)
		took := time.Since(stepStart)

		// Phases.
		ds, err := c.domains(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range members {
			if got, want := ds[m.domain].Phase, string(m.g.phase(step)); got != want {
				t.Errorf("step %s: %s (%s) phase %s, want %s", name, m.domain, m.g.name, got, want)
			}
		}
		// The exact set of unverified addresses and their reasons.
		es, err := c.emails(ctx)
		if err != nil {
			t.Fatal(err)
		}
		unverified := 0
		for _, m := range members {
			for _, email := range m.emails {
				e, ok := es[email]
				if !ok {
					t.Errorf("step %s: %s not stored", name, email)
					continue
				}
				wantUnverified := m.g.unverifiedAt >= 0 && step >= m.g.unverifiedAt
				if !e.Verified {
					unverified++
				}
				switch {
				case wantUnverified && (e.Verified || e.Reason != string(m.g.reason)):
					t.Errorf("step %s: %s (%s) verified=%v reason=%q, want unverified for %s", name, email, m.g.name, e.Verified, e.Reason, m.g.reason)
				case !wantUnverified && (!e.Verified || e.Reason != ""):
					t.Errorf("step %s: %s (%s) verified=%v reason=%q, want untouched", name, email, m.g.name, e.Verified, e.Reason)
				}
			}
		}
		if len(es) != len(evs) {
			t.Errorf("step %s: %d addresses stored, want %d", name, len(es), len(evs))
		}
		// The exact audit events per domain, cumulative.
		rows, err := c.auditLog(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string][]string{}
		for _, r := range rows {
			got[r.Domain] = append(got[r.Domain], r.Type)
		}
		for _, m := range members {
			var want []string
			for s := 0; s <= step; s++ {
				want = append(want, m.g.events(s)...)
				if s == m.g.unverifiedAt {
					for range m.emails {
						want = append(want, "audit.email.unverified")
					}
				}
			}
			sort.Strings(want)
			have := append([]string(nil), got[m.domain]...)
			sort.Strings(have)
			if strings.Join(have, ",") != strings.Join(want, ",") {
				t.Errorf("step %s: %s (%s) audit events\n got  %v\n want %v", name, m.domain, m.g.name, have, want)
			}
			delete(got, m.domain)
		}
		for d, types := range got {
			t.Errorf("step %s: unexpected audit events for %q: %v", name, d, types)
		}
		if p, _ := c.auditPublished(ctx); p != "" {
			t.Errorf("step %s: %s", name, p)
		}
		t.Logf("step %-14s done in %5.1fs: %3d addresses unverified, %4d audit events", name, took.Seconds(), unverified, len(rows))
		if t.Failed() {
			t.FailNow()
		}
	}
	c.stopAll()
}
