package main

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/domainguard/domainguard/internal/testbin"
)

// `check` without a network path to the provider says so and how to set
// up an air-gapped installation, instead of a bare dial or DNS error.
func TestCheckOfflineExplains(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close() // nothing listens there: connection refused, as offline
	env := map[string]string{
		"DOMAINGUARD_PROVIDER": "rdap", "RDAP_BOOTSTRAP_URL": "https://" + closed + "/dns.json",
		"DOMAINGUARD_DATA_DIR": t.TempDir(), "DOMAINGUARD_METRICS_ADDR": "off",
	}
	var out testbin.OutputBuffer
	code := runMain(context.Background(), invocation{args: []string{"check", "example.com"}, stdout: &out, stderr: &out,
		getenv: func(k string) string { return env[k] }})
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	for _, want := range []string{closed, "RDAP_BOOTSTRAP_URL=file://", "DOMAINGUARD_RDAP_OVERRIDES"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output does not mention %q:\n%s", want, out.String())
		}
	}
}
