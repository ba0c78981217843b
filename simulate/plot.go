//go:build plot

package simulate

import (
	"fmt"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// PlotsBuiltIn: this build writes plots (built with -tags plot).
const PlotsBuiltIn = true

// WritePlots writes PlotDelay (cumulative share of lapses fully unverified
// by days after expiry, per policy of Results; the sweep is in PlotBudget), PlotLookups (lookups per day, per
// policy) and, when the report has a budget sweep, PlotBudget (takeovers
// prevented against the daily budget) into dir.
func (rep Report) WritePlots(dir string) error {
	results := rep.Results
	if err := savePlot(filepath.Join(dir, PlotDelay), func(p *plot.Plot) error {
		p.Title.Text = "Detection delay: lapses with every address unverified"
		p.X.Label.Text = "days after expiry"
		p.Y.Label.Text = "share of lapsed domains (%)"
		p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, 90, 0, 100
		var lines []any
		p.Legend.Top = false
		for _, r := range results {
			if r.Kind == PolicyNone || len(r.Delays) == 0 {
				continue
			}
			lines = append(lines, r.Policy, delayCDF(r.Delays, 90))
		}
		return plotutil.AddLines(p, lines...)
	}); err != nil {
		return err
	}
	if err := savePlot(filepath.Join(dir, PlotLookups), func(p *plot.Plot) error {
		p.Title.Text = "Lookups per day"
		p.X.Label.Text = "day"
		p.Y.Label.Text = "lookups"
		p.Y.Min = 0
		var lines []any
		for _, r := range results {
			if r.Kind == PolicyNone {
				continue
			}
			xys := make(plotter.XYs, len(r.LookupsPerDay))
			for i, n := range r.LookupsPerDay {
				xys[i] = plotter.XY{X: float64(i), Y: float64(n)}
			}
			lines = append(lines, r.Policy, xys)
		}
		return plotutil.AddLines(p, lines...)
	}); err != nil {
		return err
	}
	if len(rep.Sweep) == 0 {
		return nil
	}
	return savePlot(filepath.Join(dir, PlotBudget), func(p *plot.Plot) error {
		p.Title.Text = "domainguard: preventable takeovers prevented by daily lookup budget"
		p.X.Label.Text = "daily lookup budget"
		p.Y.Label.Text = "preventable takeovers prevented (%; grace sales excluded)"
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = plot.LogTicks{Prec: -1}
		p.Y.Max = 100
		p.Legend.Top = false
		pts := make(plotter.XYs, 0, len(rep.Sweep))
		for _, r := range rep.Sweep {
			if r.Budget > 0 {
				pts = append(pts, plotter.XY{X: float64(r.Budget), Y: r.PreventablePct})
			}
		}
		target := plotter.XYs{{X: pts[0].X, Y: 99}, {X: pts[len(pts)-1].X, Y: 99}}
		for _, r := range results {
			if r.Kind == PolicyPyPI {
				if err := plotutil.AddScatters(p, r.Policy, plotter.XYs{{X: float64(r.Budget), Y: r.PreventablePct}}); err != nil {
					return err
				}
			}
		}
		return plotutil.AddLinePoints(p, "domainguard", pts, "99 %", target)
	})
}

// delayCDF returns the cumulative share (in percent) of delays ≤ x for
// x in 0..maxDays, stepped by a tenth of a day.
func delayCDF(sorted []float64, maxDays float64) plotter.XYs {
	var xys plotter.XYs
	j := 0
	for x := 0.0; x <= maxDays+1e-9; x += 0.1 {
		for j < len(sorted) && sorted[j] <= x {
			j++
		}
		xys = append(xys, plotter.XY{X: x, Y: 100 * float64(j) / float64(len(sorted))})
	}
	return xys
}

func savePlot(path string, fill func(*plot.Plot) error) error {
	p := plot.New()
	p.Legend.Top = true
	p.Legend.Left = false
	p.Add(plotter.NewGrid())
	if err := fill(p); err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	if err := p.Save(9*vg.Inch, 5*vg.Inch, path); err != nil {
		return fmt.Errorf("save plot %s: %w", path, err)
	}
	return nil
}
