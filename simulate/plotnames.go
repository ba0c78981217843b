package simulate

import "errors"

// Plot file names written by WritePlots.
const (
	PlotDelay   = "sim-delay.png"
	PlotLookups = "sim-lookups.png"
	PlotBudget  = "sim-budget.png"
)

// ErrPlotsNotBuilt is what WritePlots returns in a build without the
// "plot" tag: the plotting library (gonum.org/v1/plot, with its fonts and
// PDF/SVG back ends) stays out of the production binary.
var ErrPlotsNotBuilt = errors.New("this binary was built without plotting: run it as `go run -tags plot ./cmd/domainguard ...` (or build with -tags plot)")
