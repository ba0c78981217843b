package simulate

import (
	"context"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/domainguard/domainguard/lifecycle"
)

// dgDomain is the domainguard policy's row for one domain (the domains
// table plus the producer's schedule). Evidence is not stored: the world
// regenerates the evidence of any earlier day, so the row keeps the day
// and time it was observed.
type dgDomain struct {
	next          int64 // next_check_at, unix seconds
	lastChecked   int64 // last successful lookup (0: never)
	lastAt        int64 // observed_at of the last known observation
	releasedSince int64
	warned        int64 // WarnedExpiry (0: none)
	lastExp       int64 // expiration date in the last evidence (0: none)
	lastDay       int32 // day of the last known observation
	phase         lifecycle.Phase
	// baseline is the grace-sale baseline the last applied evidence
	// carries (lifecycle.GraceBaseline; nil outside a window), as the
	// domains row's evidence does in production.
	baseline *lifecycle.Baseline
	failures uint8
	held     bool
	inPool   bool
}

// dgRun is one run of the domainguard policy.
type dgRun struct {
	w      *World
	t      *tracker
	rows   []dgDomain
	heap   idxHeap
	rnd    func() float64
	sched  lifecycle.ScheduleConfig
	policy lifecycle.Policy
	// scratch evidences: current, last known
	cur, last     lifecycle.Evidence
	curT, lastT   evidenceTimes
	releasedSince time.Time
	// scratch of choose
	due      []lifecycle.RankedDue
	dueTimes []time.Time
	order    []int32
	rest     []int32
}

// runDomainguard runs the domainguard policy; it returns the budget in force.
func runDomainguard(ctx context.Context, w *World, p PolicyConfig, t *tracker) (int, error) {
	r := &dgRun{
		w:      w,
		t:      t,
		rows:   make([]dgDomain, len(w.domains)),
		sched:  lifecycle.ScheduleConfig{RecheckInterval: p.RecheckInterval}.WithDefaults(),
		policy: lifecycle.Policy{Strict: p.Strict, MaxUnverifyPerDomain: p.MaxUnverifyPerDomain}.WithDefaults(),
	}
	if err := r.sched.Validate(); err != nil {
		return 0, err
	}
	rng := rand.New(rand.NewPCG(w.cfg.Seed, 0xd0a1_6a4d))
	r.rnd = rng.Float64
	// Steady state at the start: every domain was last checked within the
	// last recheck interval, and found active.
	interval := int64(r.sched.RecheckInterval / time.Second)
	r.heap.key = func(i int32) int64 { return r.rows[i].next }
	for di := range r.rows {
		at := w.dayUnix(0) - 1 - rng.Int64N(interval)
		day := int32((at - w.dayUnix(0)) / secondsPerDay)
		if at < w.dayUnix(day) {
			day--
		}
		atT := time.Unix(at, 0).UTC()
		w.evidence(int32(di), day, atT, &r.cur, &r.curT)
		phase, _ := lifecycle.ClassifyRDAPFor(w.domains[di].name, r.cur, nil, atT)
		row := &r.rows[di]
		*row = dgDomain{lastChecked: at, lastAt: at, lastDay: day, phase: phase, lastExp: r.curT.exp.Unix()}
		row.next = lifecycle.NextCheck(w.domains[di].name, phase, &r.cur, nil, atT, r.sched, r.rnd).Unix()
		r.heap.push(int32(di))
	}

	budget := p.Budget
	var pool, chosen []int32
	for day := int32(0); day < int32(len(t.lookups)); day++ {
		if err := ctx.Err(); err != nil {
			return budget, err
		}
		dayStart, dayEnd := w.dayUnix(day), w.dayUnix(day+1)
		for r.heap.len() > 0 && r.rows[r.heap.top()].next < dayEnd {
			di := r.heap.pop()
			r.rows[di].inPool = true
			pool = append(pool, di)
		}
		chosen, pool = r.choose(pool, chosen[:0], budget, dayStart)
		for i, di := range chosen {
			row := &r.rows[di]
			row.inPool = false
			at := row.next
			if at < dayStart {
				// Overdue work is spread over the day in urgency order.
				at = dayStart + int64(i)*secondsPerDay/int64(len(chosen))
			}
			r.lookup(di, day, at)
			r.heap.push(di)
		}
	}
	return budget, nil
}

// choose picks the domains the sweep enqueues today from the due pool:
// the first budget of them (all when budget <= 0) in the sweep's order,
// lifecycle.RankedDue.Compare (urgency by lifecycle.UrgencyRule, then the
// most overdue, DESIGN.md §8). It returns them in that order, and the rest of
// the pool, which stays due.
func (r *dgRun) choose(pool, chosen []int32, budget int, dayStart int64) ([]int32, []int32) {
	now := time.Unix(dayStart, 0).UTC()
	n := len(pool)
	k := n
	if budget > 0 {
		k = min(budget, n)
	}
	// The domains rows as the sweep reads them, by position in pool.
	r.due = slices.Grow(r.due[:0], n)[:n]
	r.dueTimes = slices.Grow(r.dueTimes[:0], 2*n)[:2*n]
	r.order = r.order[:0]
	for i, di := range pool {
		row := &r.rows[di]
		d := lifecycle.DueDomain{Name: r.w.domains[di].name, Phase: row.phase, NextCheck: time.Unix(row.next, 0).UTC()}
		if row.lastExp != 0 {
			r.dueTimes[2*i] = time.Unix(row.lastExp, 0).UTC()
			d.ExpiresAt = &r.dueTimes[2*i]
		}
		if row.lastChecked != 0 {
			r.dueTimes[2*i+1] = time.Unix(row.lastChecked, 0).UTC()
			d.LastChecked = &r.dueTimes[2*i+1]
		}
		r.due[i] = lifecycle.Rank(d, now)
		r.order = append(r.order, int32(i))
	}
	compare := func(a, b int32) int { return r.due[a].Compare(r.due[b]) }
	if k < n {
		selectFirst(r.order, k, func(a, b int32) bool { return compare(a, b) < 0 })
	}
	slices.SortFunc(r.order[:k], compare)
	for _, i := range r.order[:k] {
		chosen = append(chosen, pool[i])
	}
	rest := r.rest[:0]
	for _, i := range r.order[k:] {
		rest = append(rest, pool[i])
	}
	r.rest = rest
	return chosen, append(pool[:0], rest...)
}

// lookup performs one RDAP lookup of domain di at unix time at (on day)
// and applies it like checker and enforcer would.
func (r *dgRun) lookup(di int32, day int32, at int64) {
	w, row, d := r.w, &r.rows[di], &r.w.domains[di]
	r.t.lookups[day]++
	atT := time.Unix(at, 0).UTC()
	if w.failed(di, at) {
		row.failures = min(row.failures+1, 100)
		row.next = lifecycle.RetryAfterFailure(int(row.failures), atT, r.rnd).Unix()
		return
	}
	row.failures = 0
	w.evidence(di, day, atT, &r.cur, &r.curT)
	// Classify exactly as the checker does: against the previous
	// observation the check message carries (lifecycle.ClassifyRDAPAfter,
	// which keeps a lapse once seen).
	w.evidence(di, row.lastDay, time.Unix(row.lastAt, 0).UTC(), &r.last, &r.lastT)
	r.last.Baseline = row.baseline
	lastObs := lifecycle.Observation{Domain: d.name, Phase: row.phase, Evidence: r.last}
	var prev *lifecycle.Observation
	if row.lastAt != 0 {
		prev = &lastObs
	}
	phase, _ := lifecycle.ClassifyRDAPAfter(d.name, r.cur, prev, atT)
	obs := lifecycle.Observation{Domain: d.name, Phase: phase, Evidence: r.cur}
	if lifecycle.Changed(&lastObs, obs) {
		r.decide(di, row, obs, at)
		// The applied evidence carries the baseline through the window.
		row.baseline = lifecycle.GraceBaseline(r.cur, prev, atT)
	}
	if phase.Known() {
		row.phase, row.lastDay, row.lastAt = phase, day, at
	}
	var released *time.Time
	if phase == lifecycle.PhaseReleased {
		if row.releasedSince == 0 {
			row.releasedSince = at
		}
		r.releasedSince = time.Unix(row.releasedSince, 0).UTC()
		released = &r.releasedSince
	}
	row.lastChecked = at
	row.lastExp = 0
	if r.cur.ExpiresAt != nil {
		row.lastExp = r.cur.ExpiresAt.Unix()
	}
	row.next = lifecycle.NextCheck(w.domains[di].name, phase, &r.cur, released, atT, r.sched, r.rnd).Unix()
}

// decide runs lifecycle.Decide for a changed observation and records the
// unverifications (held ones after the operator's approval delay).
func (r *dgRun) decide(di int32, row *dgDomain, obs lifecycle.Observation, at int64) {
	w, d := r.w, &r.w.domains[di]
	state := lifecycle.DomainState{Phase: row.phase, Evidence: &r.last, ObservedAt: time.Unix(row.lastAt, 0).UTC()}
	if row.warned != 0 {
		wt := time.Unix(row.warned, 0).UTC()
		state.WarnedExpiry = &wt
	}
	var verified []lifecycle.Address
	if r.t.unverified[di] == 0 && !row.held {
		verified = w.addresses[d.addrOff : d.addrOff+d.addrN]
	}
	pol := r.policy
	pol.Protected = d.class == ClassProvider
	dec := lifecycle.Decide(state, obs, verified, pol)
	if dec.ExpiryToWarn != nil {
		row.warned = dec.ExpiryToWarn.Unix()
	}
	if len(dec.Unverify) == 0 {
		return
	}
	if dec.Hold != "" {
		r.t.holds++
		row.held = true
		at += int64(w.cfg.HoldApproval / time.Second)
	}
	r.t.unverify(di, len(dec.Unverify), at)
}
