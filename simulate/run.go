package simulate

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"
)

// PolicyKind names a lookup-and-unverify policy.
type PolicyKind string

// The policies.
const (
	// PolicyDomainguard is this project's scheduler, budget and rules on
	// RDAP evidence.
	PolicyDomainguard PolicyKind = "domainguard"
	// PolicyPyPI is PyPI's reference behaviour on Domainr tokens.
	PolicyPyPI PolicyKind = "pypi"
	// PolicyNone never looks (a baseline).
	PolicyNone PolicyKind = "none"
)

// PolicyConfig selects and tunes a policy.
type PolicyConfig struct {
	Kind PolicyKind
	// Budget is the most lookups a day; 0 means the policy's default:
	// unlimited for domainguard (its default DOMAINGUARD_DAILY_LOOKUP_BUDGET
	// of 100,000 is never reached at 1M addresses, see docs/simulation.md
	// — set it explicitly to model it), 1,000 for pypi.
	Budget int
	// RecheckInterval of domainguard (default 720h) and of pypi (its
	// 30 days).
	RecheckInterval time.Duration
	// Strict: domainguard unverifies on grace too.
	Strict bool
	// MaxUnverifyPerDomain is domainguard's hold cap (default 50).
	MaxUnverifyPerDomain int
}

// PyPIBudget and PyPIInterval are PyPI's batch size per day and recheck age.
const (
	PyPIBudget   = 1000
	PyPIInterval = 30 * 24 * time.Hour
)

// Name is a short label such as "domainguard@1000".
func (p PolicyConfig) Name() string {
	if p.Budget > 0 {
		return fmt.Sprintf("%s@%d", p.Kind, p.Budget)
	}
	return string(p.Kind)
}

// Result is what one policy achieved on one world.
type Result struct {
	Policy string     `json:"policy"`
	Kind   PolicyKind `json:"kind"`
	// Budget is the daily lookup budget in force (0: unlimited).
	Budget int `json:"budget"`
	// LookupsPerDay has one entry per simulated day (period and tail).
	LookupsPerDay []int `json:"lookups_per_day"`
	// LookupsMean and LookupsPeak are over the period (without the tail).
	LookupsMean float64 `json:"lookups_mean"`
	LookupsPeak int     `json:"lookups_peak"`
	LookupsAll  int64   `json:"lookups_total"`
	// Lapses counts lapsed domains (each ends with an attacker owning the
	// name); Auctions of them were auctioned during grace after a lapse
	// sign, GraceSales sold in grace before any.
	Lapses     int `json:"lapses"`
	Auctions   int `json:"auctions"`
	GraceSales int `json:"grace_sales"`
	// Prevented counts lapsed domains all of whose addresses were
	// unverified before the attacker's day; PreventedAuctions those of
	// them that were auctioned.
	Prevented           int `json:"prevented"`
	PreventedAuctions   int `json:"prevented_auctions"`
	PreventedGraceSales int `json:"prevented_grace_sales"`
	// GraceSalesCaught counts grace sales fully unverified within one day
	// after the sale (nothing can show before it).
	GraceSalesCaught int     `json:"grace_sales_caught_1d"`
	PreventedPct     float64 `json:"prevented_pct"`
	// PreventablePct is Prevented over the lapses that show something
	// before the attacker has the name (all but grace sales).
	PreventablePct float64 `json:"preventable_prevented_pct"`
	// LapsedAddresses counts addresses on lapsed domains.
	LapsedAddresses int `json:"lapsed_addresses"`
	// Delay percentiles in days from expiry (grace sales: from the sale,
	// the first day anything shows) to the unverification of the domain's
	// last address; +Inf (JSON: -1) when some address never was.
	DelayP50 float64 `json:"delay_p50_days"`
	DelayP99 float64 `json:"delay_p99_days"`
	DelayMax float64 `json:"delay_max_days"`
	// Undetected counts lapsed domains not (fully) unverified by the end.
	Undetected int `json:"undetected"`
	// Delays are the per-lapse delays in days, sorted (+Inf last).
	Delays []float64 `json:"-"`
	// Unverified counts every address unverified during the run.
	Unverified int `json:"unverified"`
	// FalseUnverified counts addresses unverified on a domain that did not
	// lapse, or before its expiration.
	FalseUnverified int `json:"false_unverified"`
	// Holds counts decisions held by the guard (cap or protected domain);
	// they are applied after Config.HoldApproval.
	Holds int `json:"holds"`
	// Elapsed is the wall time of the run.
	Elapsed time.Duration `json:"elapsed_ns"`
}

// tracker records lookups and unverifications for a Result.
type tracker struct {
	w          *World
	lookups    []int
	unverified []int32 // per domain: addresses unverified
	fullAt     []int64 // per domain: when the last address was unverified (0: not yet)
	falseAddrs int
	allAddrs   int
	holds      int
}

func newTracker(w *World) *tracker {
	return &tracker{
		w:          w,
		lookups:    make([]int, w.cfg.Days+w.cfg.TailDays),
		unverified: make([]int32, len(w.domains)),
		fullAt:     make([]int64, len(w.domains)),
	}
}

// unverify records that n addresses of domain di were unverified at unix
// time at.
func (t *tracker) unverify(di int32, n int, at int64) {
	d := &t.w.domains[di]
	if !d.fate.Lapsed() || at < t.w.dayUnix(d.expDay) {
		t.falseAddrs += n
	}
	t.allAddrs += n
	t.unverified[di] += int32(n)
	if t.unverified[di] >= d.addrN && t.fullAt[di] == 0 {
		t.fullAt[di] = at
	}
}

func (t *tracker) result(p PolicyConfig, budget int, elapsed time.Duration) Result {
	w := t.w
	r := Result{Policy: p.Name(), Kind: p.Kind, Budget: budget, LookupsPerDay: t.lookups,
		FalseUnverified: t.falseAddrs, Unverified: t.allAddrs, Holds: t.holds, Elapsed: elapsed}
	for i, n := range t.lookups {
		r.LookupsAll += int64(n)
		if i < w.cfg.Days {
			r.LookupsMean += float64(n)
			r.LookupsPeak = max(r.LookupsPeak, n)
		}
	}
	r.LookupsMean /= float64(w.cfg.Days)
	for di := range w.domains {
		d := &w.domains[di]
		if !d.fate.Lapsed() {
			continue
		}
		r.Lapses++
		r.LapsedAddresses += int(d.addrN)
		switch d.fate {
		case FateLapseAuction:
			r.Auctions++
		case FateGraceSale:
			r.GraceSales++
		}
		at := t.fullAt[di]
		if at == 0 {
			r.Undetected++
			r.Delays = append(r.Delays, math.Inf(1))
			continue
		}
		from := d.expDay
		if d.fate == FateGraceSale {
			from = d.takeDay // nothing shows before the sale
		}
		r.Delays = append(r.Delays, float64(at-w.dayUnix(from))/float64(secondsPerDay))
		if d.fate == FateGraceSale && at < w.dayUnix(d.takeDay+2) {
			r.GraceSalesCaught++ // during the sale day or the day after
		}
		if at < w.dayUnix(d.takeDay) {
			r.Prevented++
			switch d.fate {
			case FateLapseAuction:
				r.PreventedAuctions++
			case FateGraceSale:
				r.PreventedGraceSales++
			}
		}
	}
	slices.Sort(r.Delays)
	if r.Lapses > 0 {
		r.PreventedPct = 100 * float64(r.Prevented) / float64(r.Lapses)
		if n := r.Lapses - r.GraceSales; n > 0 {
			r.PreventablePct = 100 * float64(r.Prevented) / float64(n)
		}
		r.DelayP50 = percentile(r.Delays, 0.50)
		r.DelayP99 = percentile(r.Delays, 0.99)
		r.DelayMax = r.Delays[len(r.Delays)-1]
	}
	return r
}

// percentile is the nearest-rank percentile of sorted values.
func percentile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// Run runs one policy on the world. It is deterministic: the same world
// and policy give the same Result (except Elapsed).
func (w *World) Run(ctx context.Context, p PolicyConfig) (Result, error) {
	start := time.Now()
	t := newTracker(w)
	var budget int
	var err error
	switch p.Kind {
	case PolicyDomainguard:
		budget, err = runDomainguard(ctx, w, p, t)
	case PolicyPyPI:
		budget, err = runPyPI(ctx, w, p, t)
	case PolicyNone:
	default:
		return Result{}, fmt.Errorf("simulate: unknown policy %q", p.Kind)
	}
	if err != nil {
		return Result{}, fmt.Errorf("simulate %s: %w", p.Name(), err)
	}
	return t.result(p, budget, time.Since(start)), nil
}

// Run draws a world from cfg and runs the policy on it.
func Run(ctx context.Context, cfg Config, p PolicyConfig) (Result, error) {
	w, err := NewWorld(cfg)
	if err != nil {
		return Result{}, err
	}
	return w.Run(ctx, p)
}
