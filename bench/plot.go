//go:build plot

package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// PlotsBuiltIn: this build writes plots (built with -tags plot).
const PlotsBuiltIn = true

// WriteScalePlots writes PlotScaleTime (seconds per phase against the
// number of domains) and PlotScaleMemory (peak heap per phase against the
// number of domains) from reports of runs at different sizes, into dir.
func WriteScalePlots(dir string, reps []Report) error {
	if len(reps) == 0 {
		return fmt.Errorf("bench: no reports to plot")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("bench: plot dir: %w", err)
	}
	series := func(y func(Row) float64) []any {
		var names []string
		for _, r := range reps {
			for _, row := range r.Rows {
				if !slices.Contains(names, row.Name) && (row.Name == PhaseSweep || row.Name == PhaseEnforcer) {
					names = append(names, row.Name)
				}
			}
		}
		var lines []any
		for _, name := range names {
			var xys plotter.XYs
			for _, r := range reps {
				if row, ok := r.Row(name); ok {
					xys = append(xys, plotter.XY{X: float64(r.Env.Options.Domains), Y: y(row)})
				}
			}
			label := name
			if name == PhaseEnforcer {
				label = "enforcer (10 emails per domain)"
			}
			lines = append(lines, label, xys)
		}
		return lines
	}
	if err := savePlot(filepath.Join(dir, PlotScaleTime), "Time against size", "seconds",
		series(func(r Row) float64 { return r.Seconds })); err != nil {
		return err
	}
	return savePlot(filepath.Join(dir, PlotScaleMemory), "Peak Go heap against size", "peak heap (MB)",
		series(func(r Row) float64 { return r.PeakHeapMB }))
}

func savePlot(path, title, yLabel string, lines []any) error {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "domains"
	p.Y.Label.Text = yLabel
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Y.Min = 0
	if err := plotutil.AddLinePoints(p, lines...); err != nil {
		return fmt.Errorf("bench: plot %s: %w", path, err)
	}
	if err := p.Save(16*vg.Centimeter, 10*vg.Centimeter, path); err != nil {
		return fmt.Errorf("bench: save plot %s: %w", path, err)
	}
	return nil
}
