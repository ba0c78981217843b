package simulate

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"text/tabwriter"
)

// Report is the outcome of a simulation: the world and each policy's result.
type Report struct {
	Config    Config   `json:"config"`
	Domains   int      `json:"domains"`
	Addresses int      `json:"addresses"`
	Results   []Result `json:"results"`
	// Sweep holds domainguard runs at the budgets of a budget sweep.
	Sweep []Result `json:"budget_sweep,omitempty"`
	// SmallestBudget99 is the smallest swept budget that prevented ≥ 99%
	// of the preventable takeovers (grace sales show nothing before the
	// sale; 0: none did, or no sweep).
	SmallestBudget99 int `json:"smallest_budget_99"`
	// DNSOnly is the ccTLD-without-RDAP run (World.DNSOnly), when asked for.
	DNSOnly *DNSOnlyResult `json:"dns_only,omitempty"`
}

// SmallestBudgetFor returns the smallest budget among sweep results that
// prevented at least pct percent of the preventable takeovers (0 if none
// did).
func SmallestBudgetFor(sweep []Result, pct float64) int {
	best := 0
	for _, r := range sweep {
		if r.PreventablePct >= pct && r.Budget > 0 && (best == 0 || r.Budget < best) {
			best = r.Budget
		}
	}
	return best
}

// WriteText writes the report as a table.
func (rep Report) WriteText(out io.Writer) error {
	fmt.Fprintf(out, "world: %d addresses on %d domains, seed %d, %d days (+%d tail days)\n",
		rep.Addresses, rep.Domains, rep.Config.Seed, rep.Config.Days, rep.Config.TailDays)
	if len(rep.Results) > 0 {
		r := rep.Results[0]
		fmt.Fprintf(out, "lapses: %d domains (%d addresses), %d of them auctioned during grace after a lapse sign, %d sold in grace before any\n\n",
			r.Lapses, r.LapsedAddresses, r.Auctions, r.GraceSales)
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "policy\tbudget/day\tlookups/day mean\tpeak\tprevented\tprevented %\tauctions prevented\tgrace sales caught ≤1d\tdelay p50 (d)\tp99 (d)\tmax (d)\tundetected\tfalse unverified\tholds\truntime\t")
	rows := append(append([]Result(nil), rep.Results...), rep.Sweep...)
	for _, r := range rows {
		budget := "unlimited"
		if r.Budget > 0 {
			budget = strconv.Itoa(r.Budget)
		}
		fmt.Fprintf(tw, "%s\t%s\t%.0f\t%d\t%d/%d\t%.2f\t%d/%d\t%d/%d\t%s\t%s\t%s\t%d\t%d\t%d\t%.1fs\t\n",
			r.Policy, budget, r.LookupsMean, r.LookupsPeak, r.Prevented, r.Lapses, r.PreventedPct,
			r.PreventedAuctions, r.Auctions, r.GraceSalesCaught, r.GraceSales, days(r.DelayP50), days(r.DelayP99), days(r.DelayMax),
			r.Undetected, r.FalseUnverified, r.Holds, r.Elapsed.Seconds())
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if len(rep.Sweep) > 0 {
		if rep.SmallestBudget99 > 0 {
			fmt.Fprintf(out, "\nsmallest swept daily budget at which domainguard prevents ≥ 99%% of the preventable takeovers (grace sales excluded): %d\n", rep.SmallestBudget99)
		} else {
			fmt.Fprintln(out, "\nno swept budget reached 99% of the preventable takeovers")
		}
	}
	return nil
}

func days(v float64) string {
	if math.IsInf(v, 1) {
		return "never"
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

// WriteJSON writes the report as JSON; an infinite delay (some address
// never unverified) is written as -1.
func (rep Report) WriteJSON(out io.Writer) error {
	fix := func(rs []Result) []Result {
		out := make([]Result, len(rs))
		for i, r := range rs {
			for _, v := range []*float64{&r.DelayP50, &r.DelayP99, &r.DelayMax} {
				if math.IsInf(*v, 0) {
					*v = -1
				}
			}
			out[i] = r
		}
		return out
	}
	rep.Results, rep.Sweep = fix(rep.Results), fix(rep.Sweep)
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rep); err != nil {
		return fmt.Errorf("write report json: %w", err)
	}
	return nil
}
