package producer

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/domainguard/domainguard/internal/testdb"
	"github.com/domainguard/domainguard/lifecycle"
)

// randomDueDomains returns n domains rows as the enforcer writes them, with
// values on and around every boundary of lifecycle.UrgencyRule: every
// phase, expiration dates at, just before and just after the "expiring
// soon" threshold, never checked (NULL or the zero time), ties in
// next_check_at, and some domains not yet due.
func randomDueDomains(rng *rand.Rand, n int, now time.Time) []lifecycle.DueDomain {
	pick := func(ts ...time.Duration) time.Duration { return ts[rng.IntN(len(ts))] }
	day := 24 * time.Hour
	ds := make([]lifecycle.DueDomain, n)
	for i := range ds {
		d := &ds[i]
		// Fixed-length lower-case names sort the same in every collation.
		name := make([]byte, 6)
		for j := range name {
			name[j] = byte('a' + rng.IntN(26))
		}
		d.Name = string(name) + ".com"
		d.Phase = lifecycle.Phases[rng.IntN(len(lifecycle.Phases))]
		if rng.IntN(4) > 0 { // active is the common case, and the one with a threshold
			d.Phase = lifecycle.PhaseActive
		}
		if rng.IntN(5) > 0 {
			exp := now.Add(pick(
				lifecycle.ExpiringSoon, lifecycle.ExpiringSoon-time.Microsecond, lifecycle.ExpiringSoon+time.Microsecond,
				-day, 0, time.Duration(rng.Int64N(int64(400*day)))-30*day))
			d.ExpiresAt = &exp
		}
		switch rng.IntN(6) {
		case 0: // never checked
		case 1:
			d.LastChecked = &time.Time{}
		default:
			lc := now.Add(-time.Duration(rng.Int64N(int64(60 * day))))
			d.LastChecked = &lc
		}
		// Few distinct due times, so that ties (broken by name) are common;
		// one in ten not yet due.
		d.NextCheck = now.Add(-time.Duration(rng.IntN(8)) * time.Hour)
		if rng.IntN(10) == 0 {
			d.NextCheck = now.Add(pick(time.Microsecond, time.Hour))
		}
	}
	return ds
}

// TestSweepOrderIsUrgencyRule is the property that the sweep's SQL and the
// urgency rule agree: for random domains rows, the order in which the
// sweep reads the due domains from PostgreSQL (readDue, as Sweep does) is
// their order by lifecycle.CompareDue, and each comes in the pass named
// after its lifecycle.UrgencyOf.
func TestSweepOrderIsUrgencyRule(t *testing.T) {
	pool, _ := testdb.New(t)
	ctx := context.Background()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	names := map[lifecycle.Urgency]string{}
	for _, c := range lifecycle.UrgencyRule() {
		names[c.Urgency] = c.Name
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC)
	for round := range 6 {
		seed := uint64(round) + 1
		rng := rand.New(rand.NewPCG(seed, 16))
		rows := randomDueDomains(rng, 150+rng.IntN(150), now)
		if _, err := conn.Exec(ctx, `TRUNCATE domains`); err != nil {
			t.Fatal(err)
		}
		b := &pgx.Batch{}
		seen := map[string]bool{} // random names may repeat
		rows = slices.DeleteFunc(rows, func(d lifecycle.DueDomain) bool {
			dup := seen[d.Name]
			seen[d.Name] = true
			return dup
		})
		for _, d := range rows {
			ev, err := json.Marshal(lifecycle.Evidence{Provider: "rdap", ExpiresAt: d.ExpiresAt})
			if err != nil {
				t.Fatal(err)
			}
			b.Queue(`INSERT INTO domains (name, phase, evidence, expires_at, last_checked_at, next_check_at)
				VALUES ($1, $2, $3, $4, $5, $6)`, d.Name, string(d.Phase), ev, d.ExpiresAt, d.LastChecked, d.NextCheck)
		}
		if err := conn.SendBatch(ctx, b).Close(); err != nil {
			t.Fatal(err)
		}

		var want []lifecycle.DueDomain
		for _, d := range rows {
			if !d.NextCheck.After(now) {
				want = append(want, d)
			}
		}
		slices.SortFunc(want, func(a, b lifecycle.DueDomain) int { return lifecycle.CompareDue(a, b, now) })

		type read struct{ name, pass string }
		var got []read
		pageSize := 1 + rng.IntN(20)
		if err := readDue(ctx, conn, now, pageSize, func(pass string, page []dueDomain) bool {
			for _, d := range page {
				got = append(got, read{d.name, pass})
			}
			return true
		}); err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("seed %d: the sweep read %d due domains, the rule has %d", seed, len(got), len(want))
		}
		for i, w := range want {
			if wp := names[lifecycle.UrgencyOf(w, now)]; got[i] != (read{w.Name, wp}) {
				t.Fatalf("seed %d, page size %d: due domain %d is %s (pass %s); the rule puts %s (%s) there: %+v",
					seed, pageSize, i, got[i].name, got[i].pass, w.Name, wp, w)
			}
		}
	}
}

// A condition the producer cannot translate is refused, not ignored.
func TestUrgencySQLRefusesUnknownCondition(t *testing.T) {
	type unknownCond struct{ lifecycle.Always }
	if _, err := urgencySQL(lifecycle.AnyOf{lifecycle.Always{}, unknownCond{}}, time.Now(), pgx.NamedArgs{}); err == nil {
		t.Fatal("an unknown condition was translated")
	}
}
