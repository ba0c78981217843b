package main

import (
	"io"
	"log/slog"
	"testing"

	"github.com/domainguard/domainguard/internal/config"
)

// TestPrivateLookupSwitchReachesEveryLookupClient: one setting,
// DOMAINGUARD_ALLOW_PRIVATE_LOOKUPS, decides for the RDAP client and the
// DNS evidence client alike whether addresses learned from data (the
// bootstrap, a redirect, glue) may be non-public.
func TestPrivateLookupSwitchReachesEveryLookupClient(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, allow := range []bool{false, true} {
		cfg := config.Config{AllowPrivateLookups: allow}
		if got := rdapConfig(cfg, log).AllowPrivateLookups; got != allow {
			t.Errorf("rdap: AllowPrivateLookups %v, want %v", got, allow)
		}
		if got := dnsEvidenceConfig(cfg, log, nil).AllowPrivateLookups; got != allow {
			t.Errorf("dns evidence: AllowPrivateLookups %v, want %v", got, allow)
		}
	}
}
