package bench

import "errors"

// Plot file names written by WriteScalePlots.
const (
	PlotScaleTime   = "bench-scale-time.png"
	PlotScaleMemory = "bench-scale-memory.png"
)

// ErrPlotsNotBuilt is what WriteScalePlots returns in a build without the
// "plot" tag: the plotting library stays out of the production binary.
var ErrPlotsNotBuilt = errors.New("this binary was built without plotting: run it as `go run -tags plot ./cmd/domainguard ...` (or build with -tags plot)")
