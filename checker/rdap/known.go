package rdap

import (
	_ "embed"
	"fmt"
	"net/url"
	"strings"
)

// knownServicesTSV is the shipped table of RDAP services for TLDs the IANA
// bootstrap does not list, each row with its public source.
//
//go:embed known_services.tsv
var knownServicesTSV string

// KnownService is one row of the shipped table.
type KnownService struct {
	TLD    string
	Base   string
	Source string
}

// knownServices is the parsed table, keyed by TLD.
var knownServices = mustParseKnownServices(knownServicesTSV)

// KnownServices returns the shipped table (a copy), keyed by TLD.
func KnownServices() map[string]KnownService {
	out := make(map[string]KnownService, len(knownServices))
	for k, v := range knownServices {
		out[k] = v
	}
	return out
}

func mustParseKnownServices(tsv string) map[string]KnownService {
	m, err := ParseKnownServices(tsv)
	if err != nil {
		panic(err) // the embedded table is checked by a test
	}
	return m
}

// ParseKnownServices reads "tld<TAB>https base URL<TAB>source" rows ("#"
// comments and blank lines skipped). Every row needs an https URL ending
// in "/" and a source; a TLD may appear once.
func ParseKnownServices(tsv string) (map[string]KnownService, error) {
	out := map[string]KnownService{}
	for i, line := range strings.Split(tsv, "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 3 || strings.TrimSpace(f[2]) == "" {
			return nil, fmt.Errorf("known RDAP services line %d: want tld, base URL and source separated by tabs", i+1)
		}
		tld := normalizeTLD(f[0])
		u, err := url.Parse(f[1])
		if err != nil || u.Scheme != "https" || u.Host == "" || !strings.HasSuffix(f[1], "/") || tld == "" {
			return nil, fmt.Errorf("known RDAP services line %d: %q is not an https base URL ending in /", i+1, f[1])
		}
		if _, dup := out[tld]; dup {
			return nil, fmt.Errorf("known RDAP services line %d: .%s listed twice", i+1, tld)
		}
		out[tld] = KnownService{TLD: tld, Base: f[1], Source: strings.TrimSpace(f[2])}
	}
	return out, nil
}

// serviceFor returns the base URL for tld from the bootstrap, else from
// the shipped table (overrides are the caller's, and win over both).
func serviceFor(b *Bootstrap, tld string) (string, bool) {
	if base, ok := b.BaseURL(tld); ok {
		return base, true
	}
	if k, ok := knownServices[tld]; ok {
		return k.Base, true
	}
	return "", false
}
