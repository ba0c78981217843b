package producer

// Benchmarks against the real PostgreSQL and NATS servers. The size comes
// from the environment so that the default run stays short:
//
//	go test ./producer -run '^$' -bench . -benchtime 1x                    # 100,000 domains / rows
//	DOMAINGUARD_BENCH_N=1000000 go test ./producer -run '^$' -bench . -benchtime 1x -timeout 30m
//
// Each reports domains/s (rows/s) and the peak Go heap during the timed
// part (peak-heap-MB), which must stay flat as N grows: the sweep holds one
// page, the import one batch.

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	rtmetrics "runtime/metrics"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/domainguard/domainguard/internal/broker"
	"github.com/domainguard/domainguard/internal/clock"
	"github.com/domainguard/domainguard/internal/testdb"
	"github.com/domainguard/domainguard/internal/testnats"
	"github.com/domainguard/domainguard/schemas"
)

func benchN(b *testing.B) int {
	if s := os.Getenv("DOMAINGUARD_BENCH_N"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			b.Fatalf("DOMAINGUARD_BENCH_N=%q is not a positive number", s)
		}
		return n
	}
	return 100_000
}

// heapPeak samples the live heap until stopped and returns the peak.
func heapPeak() (stop func() uint64) {
	runtime.GC()
	sample := []rtmetrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var peak uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			rtmetrics.Read(sample)
			peak = max(peak, sample[0].Value.Uint64())
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() uint64 {
		close(done)
		wg.Wait()
		return peak
	}
}

func BenchmarkSweep(b *testing.B) {
	n := benchN(b)
	ctx := context.Background()
	pool, _ := testdb.New(b)
	js, _, topo := testnats.SharedWith(b, func(t *broker.Topology) { t.Storage = benchStorage() })
	p, err := New(Config{Pool: pool, JS: js, Topology: topo, Clock: clock.NewStub(t0), Logger: testnats.Logger(b), MaxInFlight: benchInFlight()})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `
		INSERT INTO domains (name, next_check_at)
		SELECT format('d%s.example', lpad(i::text, 8, '0')), $1::timestamptz - make_interval(secs => i)
		  FROM generate_series(1, $2) AS i`, t0, n); err != nil {
		b.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `VACUUM ANALYZE domains`); err != nil {
		b.Fatal(err)
	}
	checks, err := js.Stream(ctx, topo.Namespace.Stream(schemas.StreamDomainChecks))
	if err != nil {
		b.Fatal(err)
	}
	var elapsed time.Duration
	var peak uint64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if i > 0 { // make every domain due again and empty the queue
			if _, err := pool.Exec(ctx, `UPDATE domains SET next_check_at = $1::timestamptz - interval '1 hour', last_enqueued_at = NULL`, t0); err != nil {
				b.Fatal(err)
			}
			if err := checks.Purge(ctx); err != nil {
				b.Fatal(err)
			}
		}
		stop := heapPeak()
		b.StartTimer()
		start := time.Now()
		res, err := p.Sweep(ctx, nil)
		elapsed += time.Since(start)
		b.StopTimer()
		peak = max(peak, stop())
		if err != nil || res.Enqueued != int64(n) {
			b.Fatalf("sweep = %+v, %v; want %d enqueued", res, err, n)
		}
	}
	b.ReportMetric(float64(n*b.N)/elapsed.Seconds(), "domains/s")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
	b.ReportMetric(float64(n), "domains")
}

func BenchmarkImport(b *testing.B) {
	n := benchN(b)
	ctx := context.Background()
	pool, _ := testdb.New(b)
	path := filepath.Join(b.TempDir(), "users.csv")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "user_id,email,verified_at")
	for i := range n {
		// ~10 addresses per domain, as in a real user base
		fmt.Fprintf(w, "user-%d,person%d@host%d.example,2024-%02d-%02dT10:00:00Z\n", i, i, i/10, 1+i%12, 1+i%28)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	size, _ := f.Seek(0, 1)
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	var elapsed time.Duration
	var peak uint64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if _, err := pool.Exec(ctx, `TRUNCATE emails, domains`); err != nil {
			b.Fatal(err)
		}
		in, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		stop := heapPeak()
		b.StartTimer()
		start := time.Now()
		res, err := Import(ctx, pool, in, ImportOptions{Clock: clock.NewStub(t0), Size: size})
		elapsed += time.Since(start)
		b.StopTimer()
		peak = max(peak, stop())
		in.Close()
		if err != nil || res.Inserted != int64(n) || res.BadCount != 0 {
			b.Fatalf("import = %+v, %v; want %d inserted", res, err, n)
		}
	}
	b.ReportMetric(float64(n*b.N)/elapsed.Seconds(), "rows/s")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
	b.ReportMetric(float64(n), "rows")
}

// benchStorage is the DOMAIN_CHECKS storage: file (as deployed) unless
// DOMAINGUARD_BENCH_STORAGE=memory.
func benchStorage() jetstream.StorageType {
	if os.Getenv("DOMAINGUARD_BENCH_STORAGE") == "memory" {
		return jetstream.MemoryStorage
	}
	return jetstream.FileStorage
}

func benchInFlight() int {
	n, _ := strconv.Atoi(os.Getenv("DOMAINGUARD_BENCH_INFLIGHT"))
	return n
}

// BenchmarkPrivateNames times the private-suffix step of a producer start
// on N stored addresses (nine in ten on hosts of three labels under no
// private suffix, one in ten under eu.org, ten thousand names per hundred
// thousand addresses): with the backfill marker matching the list in use
// (a restart) and with another revision recorded (the first start on a new
// list: every address read), with DNS evidence off (the backfill alone)
// and on (plus the domains rows of the names, added at every start).
func BenchmarkPrivateNames(b *testing.B) {
	n := benchN(b)
	ctx := context.Background()
	pool, _ := testdb.New(b)
	js, _, topo := testnats.SharedWith(b, nil)
	producer := func(watch bool) *Producer {
		p, err := New(Config{Pool: pool, JS: js, Topology: topo, Clock: clock.NewStub(t0), Logger: testnats.Logger(b),
			WatchPrivateNames: watch})
		if err != nil {
			b.Fatal(err)
		}
		return p
	}
	if _, err := pool.Exec(ctx, `
		INSERT INTO emails (user_id, email, domain, verified_at)
		SELECT format('user-%s', i),
		       CASE WHEN i % 10 = 0 THEN format('p%s@x%s.eu.org', i, i / 10) ELSE format('p%s@mail.host%s.com', i, i / 10) END,
		       CASE WHEN i % 10 = 0 THEN 'eu.org' ELSE format('host%s.com', i / 10) END, $1::timestamptz
		  FROM generate_series(1, $2) AS i`, t0, n); err != nil {
		b.Fatal(err)
	}
	if _, _, err := producer(true).PrivateNames(ctx); err != nil {
		b.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `VACUUM ANALYZE emails, domains`); err != nil {
		b.Fatal(err)
	}
	for _, watch := range []bool{false, true} {
		p := producer(watch)
		for _, bc := range []struct {
			name   string
			marker string // the revision recorded before each start; "" keeps the one in use
		}{{"marker matches", ""}, {"revision differs", "another list"}} {
			b.Run(fmt.Sprintf("%s/dns evidence %v", bc.name, watch), func(b *testing.B) {
				for b.Loop() {
					if bc.marker != "" {
						b.StopTimer()
						if _, err := pool.Exec(ctx, `UPDATE backfills SET revision = $1`, bc.marker); err != nil {
							b.Fatal(err)
						}
						b.StartTimer()
					}
					if changed, added, err := p.PrivateNames(ctx); err != nil || changed != 0 || added != 0 {
						b.Fatalf("PrivateNames = %d, %d, %v; want nothing to change", changed, added, err)
					}
				}
				b.ReportMetric(float64(n), "addresses")
			})
		}
	}
}
