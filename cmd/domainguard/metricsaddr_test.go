package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net"
	"strings"
	"syscall"
	"testing"

	"github.com/domainguard/domainguard/internal/config"
)

// The console or the API beside `run` (the README's quick start) finds the
// default metrics address taken: it goes on without a metrics server and
// says so. An address the operator set is one they rely on, and a role's
// health check probes its address: taken, either is an error.
func TestMetricsAddressInUse(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	addr := taken.Addr().String()

	for _, tc := range []struct {
		name     string
		set      bool // given as DOMAINGUARD_METRICS_ADDR
		optional bool // needs.metricsOptional: the console, the API
		fails    bool
	}{
		{"console on the default address", false, true, false},
		{"console on an address the operator set", true, true, true},
		{"role on the default address", false, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{}
			if tc.set {
				env["DOMAINGUARD_METRICS_ADDR"] = addr
			}
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			cfg, _, err := config.Load(nil, func(k string) string { return env[k] }, fs)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.MetricsAddrSet != tc.set {
				t.Fatalf("MetricsAddrSet = %v, want %v", cfg.MetricsAddrSet, tc.set)
			}
			cfg.MetricsAddr = addr // the default, in effect, is the taken one
			var logs bytes.Buffer
			a, err := openApp(context.Background(), cfg, slog.New(slog.NewTextHandler(&logs, nil)), needs{metrics: true, metricsOptional: tc.optional})
			if tc.fails {
				if !errors.Is(err, syscall.EADDRINUSE) {
					t.Fatalf("openApp = %v, want an address-in-use error", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("openApp on a taken default address: %v", err)
			}
			defer a.close()
			if !strings.Contains(logs.String(), "metrics and health not served") || !strings.Contains(logs.String(), "DOMAINGUARD_METRICS_ADDR") {
				t.Errorf("no warning naming DOMAINGUARD_METRICS_ADDR:\n%s", logs.String())
			}
		})
	}
}
