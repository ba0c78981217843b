package cluster_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/domainguard/domainguard/bench"
	"github.com/domainguard/domainguard/internal/broker"
	"github.com/domainguard/domainguard/internal/testbin"
	"github.com/domainguard/domainguard/schemas"
)

// EnvScaling turns on TestCheckerScaling.
const EnvScaling = "DOMAINGUARD_CLUSTER_SCALING"

// scalingLatency is the fake provider's fixed answer time.
const scalingLatency = 50 * time.Millisecond

// scalingRun is one row of the scaling table.
type scalingRun struct {
	checkers  int
	perSecond float64 // DOMAINGUARD_LOOKUPS_PER_SECOND per process; 0: unlimited
	checks    int
}

// TestCheckerScaling measures checks per second with 1, 2 and 4 checker
// processes on the 3-node cluster (R3 streams), against a provider that
// answers in a fixed 50ms with no rate limit of its own: first with no
// per-process limit (concurrency 8 each: 160 checks/s per process at
// most, so the machine's cores should become the limit), then with a
// per-process limit of 20 lookups/s, where the aggregate must stay at
// replicas × limit. It prints the table docs/SCALING.md quotes. Run it
// without -race for meaningful figures:
//
//	DOMAINGUARD_CLUSTER_SCALING=1 go test -run TestCheckerScaling -v ./deploy/cluster/
func TestCheckerScaling(t *testing.T) {
	if os.Getenv(EnvScaling) == "" {
		t.Skipf("set %s=1 to measure checker scaling (takes a few minutes)", EnvScaling)
	}
	p := newPipeline(t, scalingLatency)
	const concurrency = 8
	const limit = 20.0
	runs := []scalingRun{
		{checkers: 1, checks: 2400},
		{checkers: 2, checks: 3600},
		{checkers: 4, checks: 4800},
		{checkers: 8, checks: 9600},
		{checkers: 1, perSecond: limit, checks: 200},
		{checkers: 2, perSecond: limit, checks: 400},
		{checkers: 4, perSecond: limit, checks: 800},
	}
	var table strings.Builder
	fmt.Fprintf(&table, "checker scaling: 3-node cluster, R3 streams, provider latency %s, concurrency %d per process, race detector %v\n",
		scalingLatency, concurrency, raceEnabled)
	fmt.Fprintf(&table, "machine: %d CPUs, load average at start %s\n", runtime.NumCPU(), bench.LoadAvg())
	fmt.Fprintf(&table, "%-9s %-22s %7s %9s %9s %13s %13s %10s\n", "checkers", "limit/process", "checks", "checks/s", "per proc",
		"checker CPU", "NATS CPU", "machine")
	fmt.Fprintf(&table, "%-9s %-22s %7s %9s %9s %13s %13s %10s\n", "", "", "", "", "", "ms/check", "ms/check", "busy cores")
	var base float64
	for i, r := range runs {
		m := p.measureCheckers(t, i, r, concurrency)
		rate := m.rate
		if r.perSecond == 0 && r.checkers == 1 {
			base = rate
		}
		limitText := "none"
		if r.perSecond > 0 {
			limitText = fmt.Sprintf("%g/s (aggregate %g)", r.perSecond, r.perSecond*float64(r.checkers))
		}
		fmt.Fprintf(&table, "%-9d %-22s %7d %9.1f %9.1f %13.2f %13.2f %10.2f\n", r.checkers, limitText, r.checks, rate,
			rate/float64(r.checkers), m.checkerCPUPerCheck, m.natsCPUPerCheck, m.machineCores)
		if r.perSecond > 0 {
			// The aggregate stays at replicas × limit: within 15% of it
			// (token-bucket start and the measuring window).
			want := r.perSecond * float64(r.checkers)
			if rate > want*1.15 || rate < want*0.85 {
				t.Errorf("%d checkers limited to %g/s each: %.1f checks/s, want about %.0f", r.checkers, r.perSecond, rate, want)
			}
		} else if r.checkers > 1 && rate < base {
			t.Errorf("%d checkers: %.1f checks/s, less than one checker's %.1f", r.checkers, rate, base)
		}
	}
	fmt.Fprintf(&table, "load average at end %s\n", bench.LoadAvg())
	t.Logf("\n%s", table.String())
	fmt.Print(table.String())
}

// scalingFigures are the measurements of one run, over the window from
// 10% to 90% of the lookups.
type scalingFigures struct {
	rate               float64 // checks/s
	checkerCPUPerCheck float64 // CPU ms of the checker processes per check
	natsCPUPerCheck    float64 // CPU ms of the three nats-servers per check
	machineCores       float64 // busy cores of the whole machine (other work included)
}

// measureCheckers enqueues r.checks checks in a fresh namespace, starts
// r.checkers checker processes and measures the steady state.
func (p *pipeline) measureCheckers(t *testing.T, i int, r scalingRun, concurrency int) scalingFigures {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	prefix := fmt.Sprintf("%s-s%d", randomPrefix(), i)
	topo := broker.Topology{Namespace: schemas.Namespace{Prefix: prefix}, Replicas: 3, Logger: slog.New(slog.DiscardHandler)}.WithDefaults()
	if err := topo.Ensure(ctx, p.js); err != nil {
		t.Fatalf("ensure topology %s: %v", prefix, err)
	}
	now := time.Now()
	var acks []jetstream.PubAckFuture
	for n := range r.checks {
		domain := fmt.Sprintf("scale-%d-%05d.com", i, n)
		ev, err := schemas.NewEvent("domainguard/test", "domains.check", domain, now,
			schemas.CheckRequest{Domain: domain, Reason: schemas.CheckSchedule, RequestedAt: now})
		if err != nil {
			t.Fatal(err)
		}
		body, err := ev.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		msg := &nats.Msg{Subject: topo.Namespace.CheckSubject(domain), Data: body, Header: nats.Header{}}
		msg.Header.Set(schemas.HeaderMsgID, ev.ID)
		msg.Header.Set("Content-Type", broker.ContentTypeCloudEvent)
		f, err := p.js.PublishMsgAsync(msg)
		if err != nil {
			t.Fatalf("enqueue %s: %v", domain, err)
		}
		acks = append(acks, f)
	}
	for _, f := range acks {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			t.Fatalf("enqueue: %v", err)
		case <-ctx.Done():
			t.Fatal("enqueue: no ack")
		}
	}

	env := []string{
		"DOMAINGUARD_SUBJECT_PREFIX=" + prefix,
		"DOMAINGUARD_CHECK_CONCURRENCY=" + strconv.Itoa(concurrency),
		"DOMAINGUARD_LOOKUPS_PER_SECOND=100000",
	}
	if r.perSecond > 0 {
		env[2] = "DOMAINGUARD_LOOKUPS_PER_SECOND=" + strconv.FormatFloat(r.perSecond, 'g', -1, 64)
	}
	var procs []*testbin.Process
	for c := range r.checkers {
		procs = append(procs, p.start(fmt.Sprintf("scale%d-checker-%d", i, c+1), "checker", env...))
	}

	var checkerPIDs, natsPIDs []int
	for _, proc := range procs {
		checkerPIDs = append(checkerPIDs, proc.Pid())
	}
	for _, n := range p.nats.nodes {
		natsPIDs = append(natsPIDs, n.pid())
	}
	start := p.fake.TotalLookups()
	lo, hi := start+r.checks/10, start+r.checks*9/10
	var tLo, tHi time.Time
	var cpuLo, cpuHi cpuSample
	var checkersLo, checkersHi, natsLo, natsHi time.Duration
	for tHi.IsZero() {
		n := p.fake.TotalLookups()
		if tLo.IsZero() && n >= lo {
			tLo, cpuLo = time.Now(), readCPU()
			checkersLo, natsLo = processCPU(checkerPIDs), processCPU(natsPIDs)
		}
		if n >= hi {
			tHi, cpuHi = time.Now(), readCPU()
			checkersHi, natsHi = processCPU(checkerPIDs), processCPU(natsPIDs)
		}
		if ctx.Err() != nil {
			t.Fatalf("%d checkers: %d of %d lookups within 5m", r.checkers, n-start, r.checks)
		}
		time.Sleep(10 * time.Millisecond)
	}
	window := float64(hi - lo)
	m := scalingFigures{
		rate:               window / tHi.Sub(tLo).Seconds(),
		checkerCPUPerCheck: float64((checkersHi - checkersLo).Milliseconds()) / window,
		natsCPUPerCheck:    float64((natsHi - natsLo).Milliseconds()) / window,
		machineCores:       cpuHi.coresSince(cpuLo),
	}

	// Drain: every check acknowledged, then the checkers stop cleanly.
	p.waitFor(time.Minute, "checks acknowledged", func() (bool, string) {
		ci, err := p.js.Consumer(ctx, topo.Namespace.Stream(schemas.StreamDomainChecks), broker.ConsumerChecker)
		if err != nil {
			return false, err.Error()
		}
		info, err := ci.Info(ctx)
		if err != nil {
			return false, err.Error()
		}
		return info.NumPending == 0 && info.NumAckPending == 0, fmt.Sprintf("%d pending, %d ack pending", info.NumPending, info.NumAckPending)
	})
	for _, proc := range procs {
		if err := proc.Stop(30 * time.Second); err != nil {
			t.Errorf("%s: %v", proc.Name, err)
		}
	}
	return m
}

// processCPU sums the user and system CPU time of the processes.
func processCPU(pids []int) time.Duration {
	var ticks uint64
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// Fields after the command name (which may hold spaces): state is
		// field 3, utime and stime are fields 14 and 15.
		_, rest, ok := strings.Cut(string(b), ") ")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 13 {
			continue
		}
		u, _ := strconv.ParseUint(f[11], 10, 64)
		s, _ := strconv.ParseUint(f[12], 10, 64)
		ticks += u + s
	}
	return time.Duration(ticks) * time.Second / 100 // USER_HZ is 100 on Linux
}

// cpuSample is the machine's CPU time from /proc/stat, in clock ticks.
type cpuSample struct {
	busy, total uint64
	at          time.Time
}

func readCPU() cpuSample {
	s := cpuSample{at: time.Now()}
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return s
	}
	line, _, _ := strings.Cut(string(b), "\n")
	fields := strings.Fields(line)
	for i, f := range fields[1:] {
		v, _ := strconv.ParseUint(f, 10, 64)
		s.total += v
		if i != 3 && i != 4 { // idle, iowait
			s.busy += v
		}
	}
	return s
}

// coresSince is the average number of busy cores between two samples.
func (s cpuSample) coresSince(earlier cpuSample) float64 {
	if s.total <= earlier.total {
		return 0
	}
	frac := float64(s.busy-earlier.busy) / float64(s.total-earlier.total)
	cpus := 0
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "cpu") && len(l) > 3 && l[3] >= '0' && l[3] <= '9' {
				cpus++
			}
		}
	}
	return frac * float64(cpus)
}
