// Package buildinfo says which build of domainguard is running: the
// version stamped by the release script (scripts/release.sh sets Version
// with -ldflags "-X"), else the module version and VCS revision Go records
// in every binary. `domainguard version` prints it and every role exports
// it as the domainguard_build_info gauge.
package buildinfo

import (
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// Version is set at link time by release builds:
//
//	go build -ldflags "-X github.com/domainguard/domainguard/internal/buildinfo.Version=v1.2.3"
//
// Empty in other builds; Get then falls back to the module version.
var Version string

// Info describes the running binary.
type Info struct {
	// Version: the release version, the module version (go install
	// module@version), or "devel".
	Version string `json:"version"`
	// Revision is the VCS commit the binary was built from ("" unknown);
	// Modified says the work tree had uncommitted changes.
	Revision string `json:"revision,omitempty"`
	Modified bool   `json:"modified,omitempty"`
	// Time is the commit time (RFC 3339), "" when unknown.
	Time string `json:"time,omitempty"`
	// GoVersion is the toolchain that built the binary.
	GoVersion string `json:"go_version"`
}

// Get returns the build information of the running binary.
func Get() Info {
	info := Info{Version: Version}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		if info.Version == "" {
			info.Version = "devel"
		}
		return info
	}
	info.GoVersion = bi.GoVersion
	if info.Version == "" {
		info.Version = bi.Main.Version
	}
	if info.Version == "" || info.Version == "(devel)" {
		info.Version = "devel"
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Revision = s.Value
		case "vcs.time":
			info.Time = s.Value
		case "vcs.modified":
			info.Modified = s.Value == "true"
		}
	}
	return info
}

// String is the one-line form `domainguard version` prints, e.g.
// "domainguard v1.2.3 (commit 0123abcd, 2026-12-01T10:00:00Z, go1.26.8)".
func (i Info) String() string {
	var extra []string
	if i.Revision != "" {
		rev := i.Revision
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if i.Modified {
			rev += "+modified"
		}
		extra = append(extra, "commit "+rev)
	}
	if i.Time != "" {
		extra = append(extra, i.Time)
	}
	if i.GoVersion != "" {
		extra = append(extra, i.GoVersion)
	}
	if len(extra) == 0 {
		return "domainguard " + i.Version
	}
	return fmt.Sprintf("domainguard %s (%s)", i.Version, strings.Join(extra, ", "))
}

// Register adds the gauge domainguard_build_info{version, revision,
// go_version} = 1 to reg, the usual way to join a build's identity to its
// other metrics.
func Register(reg prometheus.Registerer, i Info) error {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "domainguard_build_info",
		Help: "Always 1; the labels say which build of domainguard is running.",
	}, []string{"version", "revision", "go_version"})
	g.WithLabelValues(i.Version, i.Revision, i.GoVersion).Set(1)
	return reg.Register(g)
}
