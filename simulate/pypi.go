package simulate

import (
	"context"
	"math/rand/v2"
	"time"
)

// pypiUnverifyTokens are the Domainr tokens on which PyPI unverifies an
// address (warehouse/accounts/tasks.py, unverify_emails_with_expired_domains:
// domain_last_status overlaps this list).
var pypiUnverifyTokens = []string{"undelegated", "inactive", "expiring", "deleting", "unknown"}

// PyPI's behaviour, reproduced literally as the reference:
//   - a daily batch selects up to 1,000 email rows whose domain was last
//     checked more than 30 days ago (never checked first, then oldest) and
//     looks each row's domain up at Domainr (one lookup per row, not per
//     domain), storing the raw tokens; a failed lookup sets
//     last_checked = now − 23 days (retried in about 7 days);
//   - a daily task unverifies up to 1,000 verified rows (whatever the
//     lookup budget) whose stored tokens
//     overlap pypiUnverifyTokens, oldest check first.
//
// Both run at 12:00 UTC each simulated day.
const pypiTaskHour = 12

// runPyPI runs the pypi policy; it returns the budget in force.
func runPyPI(ctx context.Context, w *World, p PolicyConfig, t *tracker) (int, error) {
	budget := p.Budget
	if budget <= 0 {
		budget = PyPIBudget
	}
	interval := int64(PyPIInterval / time.Second)
	if p.RecheckInterval > 0 {
		interval = int64(p.RecheckInterval / time.Second)
	}
	retryAge := interval - 7*secondsPerDay
	rows := len(w.addrDomain)
	lastChecked := make([]int64, rows)
	bad := make([]bool, rows)
	verified := make([]bool, rows)
	// Steady state at the start: the rows were last checked uniformly over
	// one full cycle (all rows at the budget, at least the interval).
	cycle := max(interval, int64(rows)/int64(budget)*secondsPerDay)
	rng := rand.New(rand.NewPCG(w.cfg.Seed, 0x9e7e))
	h := idxHeap{key: func(i int32) int64 { return lastChecked[i] }}
	for i := range rows {
		lastChecked[i] = w.dayUnix(0) - 1 - rng.Int64N(cycle)
		verified[i] = true
		h.push(int32(i))
	}
	var pending, keep []int32
	for day := int32(0); day < int32(len(t.lookups)); day++ {
		if err := ctx.Err(); err != nil {
			return budget, err
		}
		now := w.dayUnix(day) + pypiTaskHour*3600
		cutoff := now - interval
		for n := 0; n < budget && h.len() > 0 && lastChecked[h.top()] < cutoff; n++ {
			row := h.pop()
			di := w.addrDomain[row]
			t.lookups[day]++
			if w.failed(di, now+int64(row)) {
				lastChecked[row] = now - retryAge
			} else {
				lastChecked[row] = now
				bad[row] = overlaps(w.tokens(di, day), pypiUnverifyTokens)
				if bad[row] && verified[row] {
					pending = append(pending, row)
				}
			}
			h.push(row)
		}
		// The unverify task: pending is in check order, the oldest first.
		keep = keep[:0]
		done := 0
		for _, row := range pending {
			switch {
			case !verified[row] || !bad[row]:
			case done < PyPIBudget:
				verified[row] = false
				done++
				t.unverify(w.addrDomain[row], 1, now)
			default:
				keep = append(keep, row)
			}
		}
		pending = append(pending[:0], keep...)
	}
	return budget, nil
}

func overlaps(a, b []string) bool {
	for _, x := range a {
		for _, y := range b {
			if x == y {
				return true
			}
		}
	}
	return false
}
