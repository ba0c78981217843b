package simulate

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/domainguard/domainguard/lifecycle"
)

const testAddresses = 20_000

var (
	worldOnce sync.Once
	testW     *World
	worldErr  error
)

// testWorld is one shared small world (20k addresses) for the tests.
func testWorld(t *testing.T) *World {
	t.Helper()
	worldOnce.Do(func() { testW, worldErr = NewWorld(Config{Addresses: testAddresses, Seed: 7}) })
	if worldErr != nil {
		t.Fatal(worldErr)
	}
	return testW
}

func run(t *testing.T, w *World, p PolicyConfig) Result {
	t.Helper()
	r, err := w.Run(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// comparable strips what may differ between identical runs.
func comparable(r Result) Result {
	r.Elapsed = 0
	return r
}

func TestSameSeedSameResult(t *testing.T) {
	for _, p := range []PolicyConfig{{Kind: PolicyDomainguard, Budget: 100}, {Kind: PolicyPyPI}} {
		t.Run(p.Name(), func(t *testing.T) {
			cfg := Config{Addresses: 5000, Seed: 42}
			a, err := Run(context.Background(), cfg, p)
			if err != nil {
				t.Fatal(err)
			}
			b, err := Run(context.Background(), cfg, p)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(comparable(a), comparable(b)) {
				t.Fatalf("same seed, different results:\n%+v\n%+v", comparable(a), comparable(b))
			}
			if a.Lapses == 0 || a.LookupsAll == 0 {
				t.Fatalf("degenerate run: %+v", comparable(a))
			}
			cfg.Seed = 43
			c, err := Run(context.Background(), cfg, p)
			if err != nil {
				t.Fatal(err)
			}
			if reflect.DeepEqual(comparable(a).Delays, comparable(c).Delays) && slices.Equal(a.LookupsPerDay, c.LookupsPerDay) {
				t.Fatal("another seed gave the very same run: the seed is not used")
			}
		})
	}
}

func TestNeverLookingPreventsNothing(t *testing.T) {
	w := testWorld(t)
	r := run(t, w, PolicyConfig{Kind: PolicyNone})
	if r.Lapses == 0 {
		t.Fatal("the world has no lapses; the test proves nothing")
	}
	if r.Prevented != 0 || r.PreventedPct != 0 || r.LookupsAll != 0 || r.Unverified != 0 {
		t.Fatalf("never-looking policy: %+v", comparable(r))
	}
	if r.Undetected != r.Lapses || !math.IsInf(r.DelayP50, 1) {
		t.Fatalf("every lapse must be undetected: undetected %d of %d, p50 %v", r.Undetected, r.Lapses, r.DelayP50)
	}
}

func TestNoLapsesNobodyUnverified(t *testing.T) {
	w, err := NewWorld(Config{Addresses: testAddresses, Seed: 7, LapseRate: NoLapses})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []PolicyConfig{{Kind: PolicyDomainguard}, {Kind: PolicyDomainguard, Budget: 50}, {Kind: PolicyPyPI}, {Kind: PolicyDomainguard, Strict: true}} {
		r := run(t, w, p)
		if r.Lapses != 0 {
			t.Fatalf("%s: lapse rate 0 but %d lapses", p.Name(), r.Lapses)
		}
		if r.LookupsAll == 0 {
			t.Fatalf("%s: no lookups at all", p.Name())
		}
		// Strict mode unverifies on grace, so healthy grace renewals are
		// unverified there: that is what strict costs.
		if p.Strict {
			if r.Unverified == 0 || r.FalseUnverified != r.Unverified {
				t.Fatalf("strict: expected false unverifications of grace renewals, got %d/%d", r.FalseUnverified, r.Unverified)
			}
			continue
		}
		if r.Unverified != 0 || r.FalseUnverified != 0 {
			t.Fatalf("%s: %d addresses unverified (%d false) without lapses", p.Name(), r.Unverified, r.FalseUnverified)
		}
	}
}

func TestDomainguardBeatsPyPIAtEqualBudget(t *testing.T) {
	w := testWorld(t)
	// 20k addresses at PyPI's 1,000 a day is PyPI's best case (every row
	// every 30 days); 20 a day is 1,000 a day scaled down from 1M.
	for _, budget := range []int{PyPIBudget, PyPIBudget * testAddresses / 1_000_000} {
		pypi := run(t, w, PolicyConfig{Kind: PolicyPyPI, Budget: budget})
		dg := run(t, w, PolicyConfig{Kind: PolicyDomainguard, Budget: budget})
		t.Logf("budget %d: pypi %.1f%% (p50 %.1f d), domainguard %.1f%% (p50 %.1f d)", budget, pypi.PreventedPct, pypi.DelayP50, dg.PreventedPct, dg.DelayP50)
		if dg.LookupsPeak > budget || pypi.LookupsPeak > budget {
			t.Fatalf("budget %d exceeded: pypi peak %d, domainguard peak %d", budget, pypi.LookupsPeak, dg.LookupsPeak)
		}
		if dg.PreventedPct < pypi.PreventedPct+5 {
			t.Fatalf("budget %d: domainguard %.2f%% is not clearly above pypi %.2f%%", budget, dg.PreventedPct, pypi.PreventedPct)
		}
		if dg.FalseUnverified != 0 || pypi.FalseUnverified != 0 {
			t.Fatalf("false unverifications: domainguard %d, pypi %d", dg.FalseUnverified, pypi.FalseUnverified)
		}
	}
}

func TestDomainguardDefaultsPreventAlmostAll(t *testing.T) {
	w := testWorld(t)
	r := run(t, w, PolicyConfig{Kind: PolicyDomainguard})
	// Grace sales show nothing before the sale: no policy can prevent
	// them, domainguard must catch them within a day (the baseline rule).
	if r.PreventablePct < 99 || 100*r.PreventedAuctions < 99*r.Auctions {
		t.Fatalf("domainguard defaults: %.2f%% of the preventable lapses prevented, auctions %d/%d", r.PreventablePct, r.PreventedAuctions, r.Auctions)
	}
	if r.GraceSales == 0 || r.GraceSalesCaught != r.GraceSales {
		t.Fatalf("grace sales caught within a day: %d/%d", r.GraceSalesCaught, r.GraceSales)
	}
	if r.FalseUnverified != 0 {
		t.Fatalf("%d false unverifications", r.FalseUnverified)
	}
	if r.Auctions == 0 || r.Auctions == r.Lapses {
		t.Fatalf("world should have both auctions and drops: %d of %d", r.Auctions, r.Lapses)
	}
	// Detection is within the lapse-sign window plus about a day.
	if r.DelayMax > float64(w.cfg.LapseSignMaxDays)+3 {
		t.Fatalf("max delay %.1f days", r.DelayMax)
	}
}

// TestWorldEvidenceClassifies checks the world model against the real
// classifier: what each fate looks like on the days that matter.
func TestWorldEvidenceClassifies(t *testing.T) {
	w := testWorld(t)
	seen := map[Fate]bool{}
	for i := range w.domains {
		di := int32(i)
		d := &w.domains[di]
		if seen[d.fate] && d.fate != FateLapseAuction {
			continue
		}
		seen[d.fate] = true
		classify := func(day int32, prev *lifecycle.Evidence) lifecycle.Phase {
			var ev lifecycle.Evidence
			var tm evidenceTimes
			at := w.dayTime(day).Add(12 * time.Hour)
			w.evidence(di, day, at, &ev, &tm)
			p, _ := lifecycle.ClassifyRDAPFor(d.name, ev, prev, at)
			return p
		}
		var prev lifecycle.Evidence
		var prevT evidenceTimes
		w.evidence(di, d.expDay-1, w.dayTime(d.expDay-1), &prev, &prevT)
		if p := classify(d.expDay-1, nil); p != lifecycle.PhaseActive {
			t.Fatalf("%s (fate %d) the day before expiry: %s", d.name, d.fate, p)
		}
		switch d.fate {
		case FateRenewEarly:
			if p := classify(d.expDay, &prev); p != lifecycle.PhaseActive {
				t.Fatalf("early renewal at expiry: %s", p)
			}
		case FateRenewGrace:
			if p := classify(d.expDay, &prev); p != lifecycle.PhaseGrace {
				t.Fatalf("grace renewal at expiry: %s", p)
			}
			if p := classify(d.renewDay, &prev); p != lifecycle.PhaseActive {
				t.Fatalf("grace renewal after renewing: %s", p)
			}
		case FateGraceSale:
			if p := classify(d.takeDay-1, &prev); p != lifecycle.PhaseGrace {
				t.Fatalf("grace sale before the sale: %s", p)
			}
			// After the sale the registry shows the name active again;
			// only the move away from the last active observation before
			// expiry (the baseline) gives it away.
			var ev lifecycle.Evidence
			var tm evidenceTimes
			at := w.dayTime(d.takeDay).Add(12 * time.Hour)
			w.evidence(di, d.takeDay, at, &ev, &tm)
			lastActive := lifecycle.Observation{Phase: lifecycle.PhaseActive, Evidence: prev}
			if p, _ := lifecycle.ClassifyRDAPAfter(d.name, ev, &lastActive, at); p != lifecycle.PhaseExpired {
				t.Fatalf("grace sale after the sale: %s", p)
			}
		case FateLapseAuction, FateLapseDrop:
			if p := classify(d.signDay, &prev); p != lifecycle.PhaseExpired {
				t.Fatalf("lapse on its sign day (hold %v park %v): %s", d.hold, d.park, p)
			}
			if !slices.Contains(pypiUnverifyTokens, w.tokens(di, d.signDay)[0]) && d.hold {
				t.Fatalf("held lapse: tokens %v", w.tokens(di, d.signDay))
			}
			if d.fate == FateLapseDrop {
				if p := classify(d.deleteDay, &prev); p != lifecycle.PhaseRedemption {
					t.Fatalf("deleted: %s", p)
				}
				if p := classify(d.takeDay-1, &prev); p != lifecycle.PhasePendingDelete {
					t.Fatalf("before the drop: %s", p)
				}
				var ev lifecycle.Evidence
				var tm evidenceTimes
				w.evidence(di, d.takeDay, w.dayTime(d.takeDay), &ev, &tm)
				if !lifecycle.Reregistered(&prev, ev) {
					t.Fatal("the attacker's registration is not a re-registration")
				}
			}
		}
	}
	if len(seen) != 5 {
		t.Fatalf("fates seen: %v", seen)
	}
}

func TestWorldShape(t *testing.T) {
	w := testWorld(t)
	if w.Addresses() != testAddresses {
		t.Fatalf("addresses %d", w.Addresses())
	}
	var providers, small int
	for _, d := range w.domains {
		switch {
		case d.class == ClassProvider:
			providers += int(d.addrN)
			if d.fate.Lapsed() {
				t.Fatalf("provider %s lapses", d.name)
			}
		case d.class == ClassCustom && d.addrN <= 3:
			small++
		}
		if d.expDay < 0 || int(d.expDay) >= w.cfg.Days {
			t.Fatalf("expiry day %d outside the period", d.expDay)
		}
	}
	if got := float64(providers) / testAddresses; math.Abs(got-0.55) > 0.01 {
		t.Fatalf("provider share %.3f", got)
	}
	if small < w.Domains()/2 {
		t.Fatalf("long tail: only %d of %d domains have 1-3 addresses", small, w.Domains())
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{
		{Addresses: -1},
		{ProviderShare: 0.7, OrgShare: 0.4},
		{AuctionRate: 2},
		{AuctionMinDay: 40, AuctionMaxDay: 30},
	} {
		if _, err := NewWorld(c); err == nil {
			t.Errorf("config %+v accepted", c)
		}
	}
	if _, err := Run(context.Background(), Config{Addresses: 100}, PolicyConfig{Kind: "bogus"}); err == nil {
		t.Error("unknown policy accepted")
	}
}

func TestSelectFirst(t *testing.T) {
	keys := []int64{9, 3, 7, 3, 1, 8, 2, 6, 5, 4, 0, 11}
	for k := 1; k <= len(keys); k++ {
		s := []int32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}
		selectFirst(s, k, func(a, b int32) bool { return keys[a] < keys[b] || keys[a] == keys[b] && a < b })
		got := make([]int64, 0, k)
		for _, i := range s[:k] {
			got = append(got, keys[i])
		}
		all := slices.Clone(keys)
		slices.Sort(all)
		slices.Sort(got)
		if !slices.Equal(got, all[:k]) {
			t.Fatalf("k=%d: %v, want %v", k, got, all[:k])
		}
	}
}

func TestReportOutputs(t *testing.T) {
	w := testWorld(t)
	rep := Report{Config: w.Config(), Domains: w.Domains(), Addresses: w.Addresses()}
	for _, p := range []PolicyConfig{{Kind: PolicyPyPI, Budget: 20}, {Kind: PolicyDomainguard}} {
		rep.Results = append(rep.Results, run(t, w, p))
	}
	for _, b := range []int{5, 20, 80} {
		rep.Sweep = append(rep.Sweep, run(t, w, PolicyConfig{Kind: PolicyDomainguard, Budget: b}))
	}
	rep.SmallestBudget99 = SmallestBudgetFor(rep.Sweep, 99)
	var text, js bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "pypi@20") || !strings.Contains(text.String(), "domainguard@80") || !strings.Contains(js.String(), `"prevented_pct"`) ||
		!strings.Contains(text.String(), "sold in grace before any") || !strings.Contains(js.String(), `"grace_sales_caught_1d"`) {
		t.Fatalf("report:\n%s", text.String())
	}
	dir := t.TempDir()
	err := rep.WritePlots(dir)
	if !PlotsBuiltIn {
		// Without -tags plot the production build has no plotting.
		if !errors.Is(err, ErrPlotsNotBuilt) {
			t.Fatalf("WritePlots without the plot tag: %v, want ErrPlotsNotBuilt", err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{PlotDelay, PlotLookups, PlotBudget} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte("\x89PNG")) {
			t.Fatalf("%s is not a PNG", name)
		}
	}
}

func BenchmarkDomainguardYear(b *testing.B) {
	w, err := NewWorld(Config{Addresses: 100_000})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if _, err := w.Run(context.Background(), PolicyConfig{Kind: PolicyDomainguard}); err != nil {
			b.Fatal(err)
		}
	}
}

func TestDNSOnlyCcTLDs(t *testing.T) {
	w := testWorld(t)
	r, err := w.DNSOnly(context.Background(), 0.5, 0)
	if err != nil {
		t.Fatal(err)
	}
	if r.Domains == 0 || r.Addresses == 0 || r.DNSLookups == 0 {
		t.Fatalf("nothing simulated: %+v", r)
	}
	if r.Lapses == 0 || r.Drops == 0 {
		t.Fatalf("no lapses among %d domains: %+v", r.Domains, r)
	}
	// Deleted names leave the zone for the redemption and pending delete
	// days: far longer than the daily confirmation, so DNS evidence catches
	// every drop seen within the recheck interval.
	if r.PreventedDrops == 0 || r.PreventedDrops > r.Drops || r.Prevented > r.Lapses {
		t.Fatalf("prevented drops %d of %d: %+v", r.PreventedDrops, r.Drops, r)
	}
	// Sales that keep the name delegated are invisible to DNS-only rules.
	if r.Prevented != r.PreventedDrops {
		t.Fatalf("a sale or auction was caught by DNS alone: %+v", r)
	}
	if r.FalseUnverified != 0 || r.PreventedPctNoDNS != 0 {
		t.Fatalf("false unverifications or catches without DNS: %+v", r)
	}
	if _, err := w.DNSOnly(context.Background(), 2, 0); err == nil {
		t.Fatal("share above 1 accepted")
	}
}
