// Package coverage says which source of evidence covers the addresses
// domainguard watches, per TLD (DESIGN.md §2): an RDAP registry, a
// commercial provider, the DNS alone, or none. The `coverage` command, the
// run/checker start-up log line, the domainguard_coverage_addresses gauge
// and the console all use Query, so they show the same numbers.
//
// An address under a private PSL suffix (alice@acme.us.com: the
// emails.watch_name column is set) is counted on a row of its own per TLD:
// its own name lapses with the suffix's operator, which no registry sees,
// so only the DNS covers it (SourceDNS with DNS evidence on, else
// SourceNone with the reason).
package coverage

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// Source is what covers a TLD.
type Source string

// The sources, from the best evidence to none.
const (
	SourceRDAP       Source = "rdap"
	SourceCommercial Source = "commercial"
	SourceDNS        Source = "dns"
	SourceNone       Source = "none"
)

// AllSources lists the sources in report order.
var AllSources = []Source{SourceRDAP, SourceCommercial, SourceDNS, SourceNone}

// Sources describes the configured providers, as the checker routes
// lookups (checker/auto): RDAP where it has a service, else the commercial
// provider, else the DNS, else none.
type Sources struct {
	// RDAP reports whether an RDAP service is known for a TLD; nil: no
	// RDAP (a commercial-only provider).
	RDAP func(ctx context.Context, tld string) (bool, error)
	// Commercial: a commercial provider (Domainr/Fastly) answers for every
	// TLD that RDAP does not serve.
	Commercial bool
	// DNS: DNS evidence is on (and can reach servers for every TLD).
	DNS bool
}

// SourceFor returns the source that covers tld.
func (s Sources) SourceFor(ctx context.Context, tld string) (Source, error) {
	if s.RDAP != nil {
		ok, err := s.RDAP(ctx, tld)
		if err != nil {
			return SourceNone, fmt.Errorf("coverage of .%s: %w", tld, err)
		}
		if ok {
			return SourceRDAP, nil
		}
	}
	switch {
	case s.Commercial:
		return SourceCommercial, nil
	case s.DNS:
		return SourceDNS, nil
	}
	return SourceNone, nil
}

// privateSource is the source that covers names under private suffixes:
// the DNS alone, or none (with the reason).
func (s Sources) privateSource() (Source, string) {
	if s.DNS {
		return SourceDNS, ""
	}
	return SourceNone, NotCoveredPrivate
}

// TLD is one row of a Report.
type TLD struct {
	TLD string `json:"tld"`
	// PrivateSuffix: the row counts the addresses under private suffixes
	// in the TLD, and Domains their own names (acme.us.com).
	PrivateSuffix bool   `json:"private_suffix,omitempty"`
	Domains       int64  `json:"domains"`
	Addresses     int64  `json:"addresses"`
	Source        Source `json:"source"`
	// Reason says why a private-suffix row is not covered.
	Reason string `json:"reason,omitempty"`
}

// NotCoveredPrivate is the reason a private-suffix row is not covered.
const NotCoveredPrivate = "the user's own name under a private suffix (acme.us.com) can lapse while its registrable domain stays active; only DNS evidence (DOMAINGUARD_DNS_EVIDENCE=true with provider auto) watches it"

// Report is the coverage of the watched (verified) addresses.
type Report struct {
	TLDs []TLD `json:"tlds"`
	// Domains and Addresses are the totals.
	Domains   int64 `json:"domains"`
	Addresses int64 `json:"addresses"`
	// BySource counts addresses per source (every source present).
	BySource map[Source]int64 `json:"by_source"`
}

// querySQL counts verified addresses and their domains per TLD, the
// addresses under private suffixes (and their own names) apart.
const querySQL = `
SELECT substring(domain from '[^.]+$') AS tld, watch_name IS NOT NULL, count(DISTINCT COALESCE(watch_name, domain)), count(*)
  FROM emails WHERE verified
 GROUP BY 1, 2 ORDER BY 4 DESC, 1, 2`

// Query reads the watched addresses per TLD and classifies each TLD.
func Query(ctx context.Context, pool *pgxpool.Pool, s Sources) (Report, error) {
	rows, err := pool.Query(ctx, querySQL)
	if err != nil {
		return Report{}, fmt.Errorf("coverage: %w", err)
	}
	var tlds []TLD
	for rows.Next() {
		var t TLD
		if err := rows.Scan(&t.TLD, &t.PrivateSuffix, &t.Domains, &t.Addresses); err != nil {
			rows.Close()
			return Report{}, fmt.Errorf("coverage: %w", err)
		}
		tlds = append(tlds, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return Report{}, fmt.Errorf("coverage: %w", err)
	}
	for i := range tlds {
		if tlds[i].PrivateSuffix {
			tlds[i].Source, tlds[i].Reason = s.privateSource()
			continue
		}
		src, err := s.SourceFor(ctx, tlds[i].TLD)
		if err != nil {
			return Report{}, err
		}
		tlds[i].Source = src
	}
	return NewReport(tlds), nil
}

// NewReport sums up rows whose Source is set.
func NewReport(tlds []TLD) Report {
	r := Report{TLDs: tlds, BySource: make(map[Source]int64, len(AllSources))}
	for _, s := range AllSources {
		r.BySource[s] = 0
	}
	for _, t := range tlds {
		r.Domains += t.Domains
		r.Addresses += t.Addresses
		r.BySource[t.Source] += t.Addresses
	}
	return r
}

// tldCount is the number of distinct TLDs among the rows.
func (r Report) tldCount() int {
	seen := make(map[string]bool, len(r.TLDs))
	for _, t := range r.TLDs {
		seen[t.TLD] = true
	}
	return len(seen)
}

// PrivateSuffix counts the addresses under private suffixes, and those
// of them no source covers.
func (r Report) PrivateSuffix() (addresses, notCovered int64) {
	for _, t := range r.TLDs {
		if t.PrivateSuffix {
			addresses += t.Addresses
			if t.Source == SourceNone {
				notCovered += t.Addresses
			}
		}
	}
	return addresses, notCovered
}

// Share returns the percentage of addresses covered by src (0 with none).
func (r Report) Share(src Source) float64 {
	if r.Addresses == 0 {
		return 0
	}
	return 100 * float64(r.BySource[src]) / float64(r.Addresses)
}

// Summary is the one-line summary logged at start, e.g.
// "12,031 addresses on 41 TLDs: 88 % rdap, 0 % commercial, 11 % dns only, 1 % none",
// followed by "; 40 under private suffixes, 0 of them not covered" when
// there are such addresses.
func (r Report) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s addresses on %d TLDs:", Thousands(r.Addresses), r.tldCount())
	for i, s := range AllSources {
		label := string(s)
		if s == SourceDNS {
			label = "dns only"
		}
		sep := ","
		if i == 0 {
			sep = ""
		}
		fmt.Fprintf(&b, "%s %.0f %% %s", sep, r.Share(s), label)
	}
	if n, none := r.PrivateSuffix(); n > 0 {
		fmt.Fprintf(&b, "; %s under private suffixes, %s of them not covered", Thousands(n), Thousands(none))
	}
	return b.String()
}

// Thousands prints n with comma thousands separators.
func Thousands(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var parts []string
	for len(s) > 3 {
		parts = append(parts, s[len(s)-3:])
		s = s[:len(s)-3]
	}
	parts = append(parts, s)
	slices.Reverse(parts)
	out := strings.Join(parts, ",")
	if neg {
		out = "-" + out
	}
	return out
}

// Gauge is domainguard_coverage_addresses{tld,source}: the watched
// addresses per TLD and the source that covers them.
type Gauge struct{ vec *prometheus.GaugeVec }

// NewGauge registers the gauge on reg.
func NewGauge(reg prometheus.Registerer) (*Gauge, error) {
	v := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "domainguard_coverage_addresses",
		Help: "Verified addresses watched, per TLD and the source of evidence that covers the TLD (rdap, commercial, dns, none).",
	}, []string{"tld", "source"})
	if err := reg.Register(v); err != nil {
		return nil, fmt.Errorf("coverage gauge: %w", err)
	}
	return &Gauge{vec: v}, nil
}

// Set replaces the gauge's series with the report's rows.
func (g *Gauge) Set(r Report) {
	g.vec.Reset()
	for _, t := range r.TLDs {
		// A TLD's private-suffix row may share its source with the TLD's
		// other row: the series counts both.
		g.vec.WithLabelValues(t.TLD, string(t.Source)).Add(float64(t.Addresses))
	}
}
