package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/domainguard/domainguard/internal/config"
	"github.com/domainguard/domainguard/internal/coverage"
)

func TestWriteCoverage(t *testing.T) {
	rep := coverage.NewReport([]coverage.TLD{
		{TLD: "com", Domains: 900, Addresses: 10500, Source: coverage.SourceRDAP},
		{TLD: "de", Domains: 100, Addresses: 1400, Source: coverage.SourceDNS},
		{TLD: "zz", Domains: 1, Addresses: 131, Source: coverage.SourceNone},
	})
	var b bytes.Buffer
	if err := writeCoverage(&b, rep); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{".com", "10,500", "rdap", ".de", "dns", "total", "12,031", "12,031 addresses on 3 TLDs: 87 % rdap, 0 % commercial, 12 % dns only, 1 % none"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, b.String())
		}
	}
}

func TestCoverageSourcesFollowTheProvider(t *testing.T) {
	cfg := config.Defaults()
	cfg.Provider = config.ProviderDomainr
	s, err := coverageSources(cfg, nil)
	if err != nil || !s.Commercial || s.RDAP != nil || s.DNS {
		t.Fatalf("domainr: %+v, %v", s, err)
	}
	cfg.Provider = config.ProviderAuto
	s, err = coverageSources(cfg, nil)
	if err != nil || s.Commercial || s.RDAP == nil || !s.DNS {
		t.Fatalf("auto without keys: %+v, %v", s, err)
	}
	cfg.DNSEvidence = false
	if s, _ = coverageSources(cfg, nil); s.DNS {
		t.Fatal("DNS evidence off still counted")
	}
	cfg.Provider = config.ProviderRDAP
	cfg.DNSEvidence = true
	if s, _ = coverageSources(cfg, nil); s.DNS || s.Commercial {
		t.Fatalf("rdap only: %+v", s)
	}
}

// A private-suffix row is labelled as such, and its uncovered addresses are
// named with the reason.
func TestWriteCoveragePrivateSuffixes(t *testing.T) {
	rep := coverage.NewReport([]coverage.TLD{
		{TLD: "com", Domains: 9, Addresses: 100, Source: coverage.SourceRDAP},
		{TLD: "com", PrivateSuffix: true, Domains: 3, Addresses: 4, Source: coverage.SourceNone, Reason: coverage.NotCoveredPrivate},
	})
	var b bytes.Buffer
	if err := writeCoverage(&b, rep); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{".com (private suffixes: own names)", "104 addresses on 1 TLDs", "4 under private suffixes, 4 of them not covered",
		"4 addresses NOT COVERED: the user's own name"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, b.String())
		}
	}
}
