package rdap

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// addFixtures seeds f with the fixtures under testdata/ matching pattern
// (the checked-in corpus under testdata/fuzz/ adds hand-picked edge cases).
func addFixtures(f *testing.F, pattern string) {
	files, err := filepath.Glob(filepath.Join("testdata", pattern))
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

func FuzzParseDomain(f *testing.F) {
	addFixtures(f, "*.json")
	addFixtures(f, "*.html")
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := ParseDomain(body)
		if err != nil {
			return
		}
		if ev.NotFound || ev.Provider != "" || ev.Server != "" {
			t.Fatalf("parser set caller fields: %+v", ev)
		}
		if !slices.IsSorted(ev.Nameservers) || len(slices.Compact(slices.Clone(ev.Nameservers))) != len(ev.Nameservers) {
			t.Fatalf("nameservers not sorted and unique: %q", ev.Nameservers)
		}
		for _, ns := range ev.Nameservers {
			if ns == "" || ns != strings.ToLower(ns) || strings.HasSuffix(ns, ".") {
				t.Fatalf("nameserver %q not normalised", ns)
			}
		}
		for i, s := range ev.Statuses {
			if s == "" || slices.Contains(ev.Statuses[:i], s) {
				t.Fatalf("statuses %q: empty or duplicate", ev.Statuses)
			}
		}
		for _, tm := range []*time.Time{ev.RegisteredAt, ev.ExpiresAt, ev.LastChangedAt, ev.DeletionAt} {
			if tm != nil && (tm.Year() < 1985 || tm.Year() >= 9999 || tm.Location() != time.UTC) {
				t.Fatalf("date %v kept", tm)
			}
		}
	})
}

func FuzzParseBootstrap(f *testing.F) {
	addFixtures(f, "bootstrap.json")
	f.Fuzz(func(t *testing.T, body []byte) {
		b, err := ParseBootstrap(body)
		if err != nil {
			return
		}
		if len(b.Services) == 0 {
			t.Fatal("accepted a bootstrap without services")
		}
		for tld, base := range b.Services {
			if tld == "" || tld != strings.ToLower(tld) || strings.Contains(tld, ".") && strings.HasPrefix(tld, ".") {
				t.Fatalf("tld %q not normalised", tld)
			}
			if !strings.HasPrefix(strings.ToLower(base), "https://") || !strings.HasSuffix(base, "/") {
				t.Fatalf("base %q for %q", base, tld)
			}
			if got, ok := b.BaseURL(tld); !ok || got != base {
				t.Fatalf("BaseURL(%q) = %q, %v", tld, got, ok)
			}
		}
	})
}

func FuzzParseDate(f *testing.F) {
	for _, s := range []string{"2024-06-12T22:09:39Z", "2028-09-13T07:00:00.000+0000", "2024-07-02", "0000-00-00T00:00:00Z", "02-Jan-2024", "2024-07-02 10:11:12 UTC"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tm, ok := ParseDate(s)
		if ok && (tm.Year() < 1985 || tm.Year() >= 9999 || tm.Location() != time.UTC) {
			t.Fatalf("ParseDate(%q) = %v", s, tm)
		}
	})
}
