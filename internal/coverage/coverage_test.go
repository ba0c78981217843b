package coverage

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/domainguard/domainguard/internal/testdb"
)

func rdapFor(tlds ...string) func(context.Context, string) (bool, error) {
	return func(_ context.Context, tld string) (bool, error) {
		for _, t := range tlds {
			if t == tld {
				return true, nil
			}
		}
		return false, nil
	}
}

func TestSourceFor(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name string
		s    Sources
		tld  string
		want Source
	}{
		{"rdap serves it", Sources{RDAP: rdapFor("com"), Commercial: true, DNS: true}, "com", SourceRDAP},
		{"commercial before dns", Sources{RDAP: rdapFor("com"), Commercial: true, DNS: true}, "eu", SourceCommercial},
		{"dns only", Sources{RDAP: rdapFor("com"), DNS: true}, "eu", SourceDNS},
		{"none", Sources{RDAP: rdapFor("com")}, "eu", SourceNone},
		{"commercial-only provider", Sources{Commercial: true}, "com", SourceCommercial},
	} {
		if got, err := tt.s.SourceFor(ctx, tt.tld); err != nil || got != tt.want {
			t.Errorf("%s: %s, %v; want %s", tt.name, got, err, tt.want)
		}
	}
	if _, err := (Sources{RDAP: func(context.Context, string) (bool, error) { return false, errors.New("no bootstrap") }}).SourceFor(ctx, "com"); err == nil {
		t.Error("bootstrap error not reported")
	}
}

func TestQueryAgainstPostgres(t *testing.T) {
	pool, _ := testdb.New(t)
	ctx := context.Background()
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, row := range []struct {
		email, domain string
		verified      bool
	}{
		{"a@x.com", "x.com", true}, {"b@x.com", "x.com", true}, {"c@y.com", "y.com", true},
		{"d@z.eu", "z.eu", true}, {"e@q.zz", "q.zz", true}, {"f@old.com", "old.com", false},
	} {
		if _, err := pool.Exec(ctx, `INSERT INTO emails (user_id, email, domain, verified, verified_at) VALUES ($1, $2, $3, $4, $5)`,
			"u"+string(rune('0'+i)), row.email, row.domain, row.verified, at); err != nil {
			t.Fatal(err)
		}
	}
	r, err := Query(ctx, pool, Sources{RDAP: rdapFor("com"), DNS: true})
	if err != nil {
		t.Fatal(err)
	}
	if r.Addresses != 5 || r.Domains != 4 || len(r.TLDs) != 3 {
		t.Fatalf("report %+v", r)
	}
	if r.TLDs[0].TLD != "com" || r.TLDs[0].Domains != 2 || r.TLDs[0].Addresses != 3 || r.TLDs[0].Source != SourceRDAP {
		t.Fatalf("first row %+v", r.TLDs[0])
	}
	if r.BySource[SourceRDAP] != 3 || r.BySource[SourceDNS] != 2 || r.BySource[SourceNone] != 0 {
		t.Fatalf("by source %v", r.BySource)
	}
	if got := r.Summary(); got != "5 addresses on 3 TLDs: 60 % rdap, 0 % commercial, 40 % dns only, 0 % none" {
		t.Fatalf("summary %q", got)
	}
	reg := prometheus.NewRegistry()
	g, err := NewGauge(reg)
	if err != nil {
		t.Fatal(err)
	}
	g.Set(r)
	if v := testutil.ToFloat64(g.vec.WithLabelValues("com", "rdap")); v != 3 {
		t.Fatalf("gauge com/rdap = %v", v)
	}
	if n := testutil.CollectAndCount(g.vec); n != 3 {
		t.Fatalf("%d series", n)
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 12031: "12,031", 1234567: "1,234,567", -4500: "-4,500"} {
		if got := Thousands(n); got != want {
			t.Errorf("Thousands(%d) = %q", n, got)
		}
	}
	if !strings.Contains(NewReport(nil).Summary(), "0 addresses on 0 TLDs") {
		t.Error("empty summary")
	}
}

// Addresses under private suffixes are counted apart: covered by the DNS
// (their own names) when DNS evidence is on, not covered otherwise.
func TestQueryPrivateSuffixes(t *testing.T) {
	pool, _ := testdb.New(t)
	ctx := context.Background()
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, row := range []struct{ email, domain, watch string }{
		{"a@x.com", "x.com", ""}, {"b@us.com", "us.com", ""},
		{"c@acme.us.com", "us.com", "acme.us.com"}, {"d@mail.acme.us.com", "us.com", "acme.us.com"},
		{"e@other.us.com", "us.com", "other.us.com"},
	} {
		var watch *string
		if row.watch != "" {
			watch = &row.watch
		}
		if _, err := pool.Exec(ctx, `INSERT INTO emails (user_id, email, domain, verified, verified_at, watch_name) VALUES ($1, $2, $3, true, $4, $5)`,
			"u"+string(rune('0'+i)), row.email, row.domain, at, watch); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		dns  bool
		want Source
	}{{true, SourceDNS}, {false, SourceNone}} {
		r, err := Query(ctx, pool, Sources{RDAP: rdapFor("com"), DNS: tc.dns})
		if err != nil {
			t.Fatal(err)
		}
		if r.Addresses != 5 || len(r.TLDs) != 2 {
			t.Fatalf("dns %v: report %+v", tc.dns, r)
		}
		var private *TLD
		for i := range r.TLDs {
			if r.TLDs[i].PrivateSuffix {
				private = &r.TLDs[i]
			} else if r.TLDs[i].Addresses != 2 || r.TLDs[i].Domains != 2 || r.TLDs[i].Source != SourceRDAP {
				t.Fatalf("dns %v: plain row %+v", tc.dns, r.TLDs[i])
			}
		}
		if private == nil || private.TLD != "com" || private.Addresses != 3 || private.Domains != 2 || private.Source != tc.want ||
			(private.Reason == "") != tc.dns {
			t.Fatalf("dns %v: private-suffix row %+v", tc.dns, private)
		}
		n, none := r.PrivateSuffix()
		if n != 3 || (none == 0) != tc.dns || r.BySource[tc.want] != 3 {
			t.Fatalf("dns %v: private %d, not covered %d, by source %v", tc.dns, n, none, r.BySource)
		}
		if !strings.Contains(r.Summary(), "on 1 TLDs") || !strings.Contains(r.Summary(), "3 under private suffixes") {
			t.Fatalf("summary %q", r.Summary())
		}
		g, err := NewGauge(prometheus.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		g.Set(r)
		if v := testutil.ToFloat64(g.vec.WithLabelValues("com", string(tc.want))); v != 3 {
			t.Fatalf("dns %v: gauge com/%s = %v", tc.dns, tc.want, v)
		}
	}
}
