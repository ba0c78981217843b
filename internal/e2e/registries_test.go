package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/domainguard/domainguard/internal/fakerdap"
	"github.com/domainguard/domainguard/lifecycle"
)

// TestRegistryProfiles runs the registry-dependent rules through the real
// roles (producer, checker, enforcer processes, NATS, PostgreSQL):
//   - a 404 under a public suffix the registry does not hold (ox.ac.uk at
//     Nominet) is unknown, while one under a suffix it holds (co.uk) is
//     released (issue #13 item 1);
//   - a past expiration date reads by the registry's profile: .tv
//     (Verisign) and .co.uk within Nominet's 30 days are grace, a .co.uk
//     40 days past is expired (item 3);
//   - a name sold in the auto-renew grace (same handle and registration
//     date, nameservers moved away from the last active set before
//     expiry) is expired; the same grace without the move stays grace
//     (item 7).
//
// It runs twice, in parallel: "roles" with one process per role, "run"
// with the all-in-one `domainguard run` of the README's quick start.
func TestRegistryProfiles(t *testing.T) {
	t.Parallel()
	for _, mode := range []struct {
		name     string
		allInOne bool
	}{{"roles", false}, {"run", true}} {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			testRegistryProfiles(t, clusterOptions{tlds: []string{"com", "uk", "tv"},
				extraEnv: []string{"DOMAINGUARD_BREAKER_PCT=100"}, allInOne: mode.allInOne})
		})
	}
}

func testRegistryProfiles(t *testing.T, o clusterOptions) {
	c := newCluster(t, o)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	day := 24 * time.Hour
	now := time.Now().UTC().Truncate(time.Second)
	// The last active observation before expiry (simulated time: written
	// into the stored evidence, as the harness fast-forwards schedules).
	expiry := now.Add(-5 * day)
	parking := []string{"ns1.parking.example", "ns2.parking.example"}
	cases := []struct {
		email  string
		domain string
		answer fakerdap.Answer // after the first lookup
		// lastActiveBeforeExpiry rewrites the stored evidence as if the
		// last active lookup was the day before expiry.
		lastActiveBeforeExpiry bool
		phase                  lifecycle.Phase // "" = unchanged active, lookup unknown
		reason                 lifecycle.Reason
	}{
		{email: "alice@cs.ox.ac.uk", domain: "ox.ac.uk", answer: fakerdap.Answer{NotFound: true}},
		{email: "bob@gone.co.uk", domain: "gone.co.uk", answer: fakerdap.Answer{NotFound: true},
			phase: lifecycle.PhaseReleased, reason: lifecycle.ReasonReleased},
		{email: "carol@late.tv", domain: "late.tv", answer: fakerdap.Answer{Statuses: []string{"active"}, ExpiresAt: now.Add(-3 * day)},
			phase: lifecycle.PhaseGrace},
		{email: "dan@late.co.uk", domain: "late.co.uk", answer: fakerdap.Answer{Statuses: []string{"active"}, ExpiresAt: now.Add(-3 * day)},
			phase: lifecycle.PhaseGrace},
		{email: "erin@suspended.co.uk", domain: "suspended.co.uk", answer: fakerdap.Answer{Statuses: []string{"active"}, ExpiresAt: now.Add(-40 * day)},
			phase: lifecycle.PhaseExpired, reason: lifecycle.ReasonExpired},
		{email: "frank@sold.com", domain: "sold.com", lastActiveBeforeExpiry: true,
			answer: fakerdap.Answer{Statuses: []string{"auto renew period"}, ExpiresAt: expiry.AddDate(1, 0, 0), Nameservers: parking},
			phase:  lifecycle.PhaseExpired, reason: lifecycle.ReasonExpired},
		{email: "gina@kept.com", domain: "kept.com", lastActiveBeforeExpiry: true,
			answer: fakerdap.Answer{Statuses: []string{"auto renew period"}, ExpiresAt: expiry.AddDate(1, 0, 0)},
			phase:  lifecycle.PhaseGrace},
	}
	var evs []verified
	var all []string
	for i, tc := range cases {
		evs = append(evs, verified{UserID: fmt.Sprintf("u%d", i), Email: tc.email, VerifiedAt: now.Add(-30 * day)})
		all = append(all, tc.domain)
	}
	c.startAll()
	start := time.Now()
	c.publishVerified(ctx, evs)

	checkedSince := func(what string, since time.Time, unknownOK map[string]bool) {
		waitFor(t, 90*time.Second, what, func() (bool, string) {
			if ex := c.exited(); len(ex) > 0 {
				t.Fatalf("role processes exited: %v", ex)
			}
			ds, err := c.domains(ctx)
			if err != nil {
				return false, err.Error()
			}
			for _, d := range all {
				r, ok := ds[d]
				switch {
				case ok && unknownOK[d] && r.CheckFailures > 0:
				case !ok || r.LastCheckedAt == nil || r.LastCheckedAt.Before(since):
					return false, d + " not checked yet"
				}
			}
			return true, ""
		})
		c.quiet(ctx, 60*time.Second)
	}
	checkedSince("first lookups", start.Add(-time.Minute), nil)

	for _, tc := range cases {
		c.rdap.Set(tc.domain, tc.answer)
		if tc.lastActiveBeforeExpiry {
			if _, err := c.pool.Exec(ctx, `UPDATE domains SET evidence = evidence || jsonb_build_object('expires_at', $2::timestamptz, 'observed_at', $3::timestamptz)
WHERE name = $1 AND phase = 'active'`, tc.domain, expiry, expiry.Add(-day)); err != nil {
				t.Fatal(err)
			}
		}
	}
	unknownOK := map[string]bool{"ox.ac.uk": true}
	checkedSince("second lookups", c.forceRecheck(ctx, all), unknownOK)

	ds, err := c.domains(ctx)
	if err != nil {
		t.Fatal(err)
	}
	es, err := c.emails(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		want := tc.phase
		if want == "" {
			want = lifecycle.PhaseActive // the 404 was unknown: the known phase stays
			if ds[tc.domain].CheckFailures == 0 {
				t.Errorf("%s: the unconfirmed 404 was not a failed lookup", tc.domain)
			}
		}
		if got := ds[tc.domain].Phase; got != string(want) {
			t.Errorf("%s: phase %s, want %s", tc.domain, got, want)
		}
		e := es[tc.email]
		if tc.reason == "" && (!e.Verified || e.Reason != "") {
			t.Errorf("%s: unverified (%s), want untouched", tc.email, e.Reason)
		}
		if tc.reason != "" && (e.Verified || e.Reason != string(tc.reason)) {
			t.Errorf("%s: verified=%v reason %q, want unverified for %s", tc.email, e.Verified, e.Reason, tc.reason)
		}
	}
	c.stopAll()
}
