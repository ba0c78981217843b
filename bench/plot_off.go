//go:build !plot

package bench

// PlotsBuiltIn: this build writes no plots (built without -tags plot).
const PlotsBuiltIn = false

// WriteScalePlots returns ErrPlotsNotBuilt: this build has no plotting
// (see plot.go, built with -tags plot).
func WriteScalePlots(dir string, reps []Report) error { return ErrPlotsNotBuilt }
