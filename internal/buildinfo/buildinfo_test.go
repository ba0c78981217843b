package buildinfo

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestGetAndString(t *testing.T) {
	old := Version
	t.Cleanup(func() { Version = old })

	Version = ""
	i := Get()
	if i.Version == "" || i.GoVersion == "" {
		t.Fatalf("Get() = %+v, want a version (devel in tests) and the Go version", i)
	}
	Version = "v9.8.7"
	i = Get()
	if i.Version != "v9.8.7" {
		t.Fatalf("with the link-time Version set, Get().Version = %q", i.Version)
	}
	if s := i.String(); !strings.HasPrefix(s, "domainguard v9.8.7") || !strings.Contains(s, i.GoVersion) {
		t.Errorf("String() = %q", s)
	}
	s := Info{Version: "v1", Revision: "0123456789abcdef0123", Modified: true, Time: "2026-01-02T03:04:05Z", GoVersion: "go1.26.8"}.String()
	if s != "domainguard v1 (commit 0123456789ab+modified, 2026-01-02T03:04:05Z, go1.26.8)" {
		t.Errorf("String() = %q", s)
	}
}

func TestRegister(t *testing.T) {
	reg := prometheus.NewRegistry()
	if err := Register(reg, Info{Version: "v1", Revision: "abc", GoVersion: "go1.26.8"}); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP domainguard_build_info Always 1; the labels say which build of domainguard is running.
# TYPE domainguard_build_info gauge
domainguard_build_info{go_version="go1.26.8",revision="abc",version="v1"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}
