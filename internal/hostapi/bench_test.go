package hostapi

// The address lookup at password-reset time must stay fast with a big
// database. The default run uses 20,000 addresses; the figure in
// docs/benchmarks.md comes from
//
//	DOMAINGUARD_BENCH_N=1000000 go test ./internal/hostapi -run '^$' -bench GetAddress -benchtime 20000x -timeout 30m

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/domainguard/domainguard/internal/clock"
	"github.com/domainguard/domainguard/internal/testdb"
	"github.com/domainguard/domainguard/internal/testnats"
)

func BenchmarkGetAddress(b *testing.B) {
	n := 20000
	if s := os.Getenv("DOMAINGUARD_BENCH_N"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			b.Fatalf("DOMAINGUARD_BENCH_N=%q is not a positive number", s)
		}
		n = v
	}
	ctx := context.Background()
	pool, _ := testdb.New(b)
	js, _, topo := testnats.Shared(b)
	// n addresses on n/10 domains, a tenth of them unverified, like a host's
	// table after a while.
	start := time.Now()
	if _, err := pool.Exec(ctx, `
INSERT INTO domains (name, phase, last_checked_at)
SELECT 'd' || i || '.example', CASE WHEN i % 20 = 0 THEN 'expired' ELSE 'active' END, now()
  FROM generate_series(0, $1 / 10) AS i`, n); err != nil {
		b.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `
INSERT INTO emails (user_id, email, domain, verified, verified_at, unverified_at, unverify_reason)
SELECT 'u' || i, 'user' || i || '@d' || (i / 10) || '.example', 'd' || (i / 10) || '.example',
       i % 10 <> 0, now() - interval '30 days',
       CASE WHEN i % 10 = 0 THEN now() END, CASE WHEN i % 10 = 0 THEN 'domain_expired' END
  FROM generate_series(0, $1 - 1) AS i`, n); err != nil {
		b.Fatal(err)
	}
	// As a database in service would be: vacuumed (hint bits and the
	// visibility map set, so reads do not write) and analysed.
	for _, t := range []string{"emails", "domains"} {
		if _, err := pool.Exec(ctx, `VACUUM ANALYZE `+t); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("loaded %d addresses in %s", n, time.Since(start).Round(time.Millisecond))
	api, err := New(Config{Tokens: []Token{NewToken("bench", goodToken)}, Pool: pool, JS: js, Topology: topo,
		Registerer: prometheus.NewRegistry(), Clock: clock.System{}, Logger: testnats.Logger(b)})
	if err != nil {
		b.Fatal(err)
	}
	h := api.Handler()
	rnd := rand.New(rand.NewPCG(1, 2))
	lookup := func() time.Duration {
		i := rnd.IntN(n)
		req := httptest.NewRequest("GET", fmt.Sprintf("/v1/addresses/user%d@d%d.example", i, i/10), nil)
		req.Header.Set("Authorization", "Bearer "+goodToken)
		rec := httptest.NewRecorder()
		t0 := time.Now()
		h.ServeHTTP(rec, req)
		d := time.Since(t0)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		return d
	}
	for range 1000 { // fill the pool's connections and prepared statements
		lookup()
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		lat = append(lat, lookup())
	}
	b.StopTimer()
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(q(0.5), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(float64(n), "addresses")
}
