//go:build !plot

package simulate

// PlotsBuiltIn: this build writes no plots (built without -tags plot).
const PlotsBuiltIn = false

// WritePlots returns ErrPlotsNotBuilt: this build has no plotting (see
// plot.go, built with -tags plot).
func (rep Report) WritePlots(dir string) error { return ErrPlotsNotBuilt }
