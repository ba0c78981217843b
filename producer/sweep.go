package producer

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/domainguard/domainguard/internal/broker"
	"github.com/domainguard/domainguard/lifecycle"
	"github.com/domainguard/domainguard/schemas"
)

// SweepLockKey is the PostgreSQL advisory lock (per database) that lets one
// sweep run at a time across replicas.
const SweepLockKey int64 = 0x64670001_73776570 // "dg" 1 "swep"

// OverdueAfter is how late a check must be for the overdue gauge.
const OverdueAfter = 24 * time.Hour

// SweepProgress is reported after every page of a sweep.
type SweepProgress struct {
	Due            int64  // due domains when the sweep started
	Enqueued       int64  // checks published so far
	AlreadyPending int64  // domains with a check already pending (counted as done)
	Failed         int64  // publishes that failed (those domains stay due)
	Pass           string // "never checked", "urgent", "routine"
	Elapsed        time.Duration
}

// String renders a one-line progress report.
func (p SweepProgress) String() string {
	done := p.Enqueued + p.AlreadyPending + p.Failed
	var b strings.Builder
	fmt.Fprintf(&b, "sweep: %d/%d due domains (%d enqueued, %d already pending, %d failed)",
		done, p.Due, p.Enqueued, p.AlreadyPending, p.Failed)
	if p.Elapsed > 0 {
		rate := float64(done) / p.Elapsed.Seconds()
		fmt.Fprintf(&b, ", %.0f/s", rate)
		if rate > 0 && done < p.Due {
			fmt.Fprintf(&b, " ETA %s", time.Duration(float64(p.Due-done)/rate*float64(time.Second)).Round(time.Second))
		}
	}
	if p.Pass != "" {
		fmt.Fprintf(&b, " [%s]", p.Pass)
	}
	return b.String()
}

// SweepResult sums up one sweep.
type SweepResult struct {
	// Skipped is set when another replica held the sweep lock; only Due and
	// Overdue are filled then.
	Skipped        bool
	Due            int64 // due domains when the sweep started
	Overdue        int64 // of which more than OverdueAfter late
	Enqueued       int64
	AlreadyPending int64
	Failed         int64
	// BudgetLeft is what remains of the rolling-day budget after the sweep
	// (-1: unlimited); BudgetExhausted says the sweep stopped because of it.
	BudgetLeft      int64
	BudgetExhausted bool
	Duration        time.Duration
}

// RunSweeper sweeps at once and then every SweepInterval until ctx ends. A
// failed sweep is logged and retried at the next tick; nothing is lost,
// since whatever was not leased is still due. Beside the first sweep it
// rekeys addresses stored under an older key (runRekey, again every hour,
// one pass at a time) and brings the private-suffix names up to date
// (startPrivateNames) — the sweep reads domains, not address keys, so
// neither holds it up — and it returns only once those are over too.
func (p *Producer) RunSweeper(ctx context.Context) error {
	timer := time.NewTimer(0)
	defer timer.Stop()
	var lastPrune time.Time
	var wg sync.WaitGroup
	defer wg.Wait()
	var rekeying atomic.Bool
	rekey := func(first bool) {
		if rekeying.CompareAndSwap(false, true) {
			wg.Go(func() {
				defer rekeying.Store(false)
				p.runRekey(ctx, first)
			})
		}
	}
	rekey(true)
	wg.Go(func() { p.startPrivateNames(ctx) })
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		res, err := p.Sweep(ctx, nil)
		if ctx.Err() == nil {
			p.countStranded(ctx)
		}
		if ctx.Err() == nil && time.Since(lastPrune) >= time.Hour {
			if err := p.pruneIntake(ctx); err != nil && ctx.Err() == nil {
				p.log.Warn("prune", "error", err)
			}
			if !lastPrune.IsZero() {
				rekey(false)
			}
			lastPrune = time.Now()
		}
		switch {
		case err != nil && ctx.Err() == nil:
			p.log.Error("sweep failed", "error", err)
		case err == nil && !res.Skipped && (res.Enqueued > 0 || res.Failed > 0 || res.BudgetExhausted):
			p.log.Info("sweep done", "due", res.Due, "enqueued", res.Enqueued, "already_pending", res.AlreadyPending,
				"failed", res.Failed, "budget_left", res.BudgetLeft, "budget_exhausted", res.BudgetExhausted,
				"duration", res.Duration)
		}
		timer.Reset(p.cfg.SweepInterval)
	}
}

// dueDomain is one row of a sweep page.
type dueDomain struct {
	name     string
	phase    string
	evidence []byte
	// free: the check costs no registry lookup (the domain's evidence
	// comes from the DNS alone, it is a name under a private suffix that
	// only the DNS can check, or no source covers it), so it does not
	// count against DOMAINGUARD_DAILY_LOOKUP_BUDGET (DESIGN.md §8).
	free bool
}

// Sweep enqueues every due domain once, in urgency order and within the
// budget, unless another replica is sweeping (then it returns Skipped). It
// stops early, after the page in flight, when ctx ends. progress may be nil.
//
// Its steps: count the due domains (countDue), take the sweep lock
// (tryLock), read what is left of the budget (budgetUsed), then run the
// publish pipeline (sweepRun.run: read pages, publish, await acks, lease)
// and record the result (finish).
func (p *Producer) Sweep(ctx context.Context, progress func(SweepProgress)) (SweepResult, error) {
	r := &sweepRun{p: p, progress: progress, start: time.Now(), now: p.cfg.Clock.Now(),
		res: SweepResult{BudgetLeft: -1}}
	if err := r.countDue(ctx); err != nil {
		return r.res, err
	}
	conn, locked, err := tryLock(ctx, p.cfg.Pool)
	if err != nil {
		return r.res, fmt.Errorf("sweep: %w", err)
	}
	if !locked {
		p.m.sweepsSkipped.Inc()
		r.res.Skipped = true
		return r.res, nil
	}
	defer unlock(ctx, conn, p)
	p.m.sweeps.Inc()

	r.leftAtStart = -1 // unlimited
	if p.cfg.DailyBudget > 0 {
		used, err := budgetUsed(ctx, conn, r.now)
		if err != nil {
			return r.res, fmt.Errorf("sweep: %w", err)
		}
		r.leftAtStart = max(int64(p.cfg.DailyBudget)-used, 0)
	}
	err = r.run(ctx, conn)
	return r.finish(ctx, err)
}

// sweepRun is one sweep's state, shared by its steps.
type sweepRun struct {
	p           *Producer
	progress    func(SweepProgress)
	start, now  time.Time
	leftAtStart int64 // budget left when the sweep started; -1: unlimited
	// res and paidEnqueued are written by the collector goroutine while
	// the pipeline runs, and read by the others only after a flush
	// (counted) or the end.
	res          SweepResult
	paidEnqueued int64 // new checks that use the budget (not free ones)
}

// countDue counts the due and overdue domains (res and the gauges).
func (r *sweepRun) countDue(ctx context.Context) error {
	if err := r.p.cfg.Pool.QueryRow(ctx, `
		SELECT count(*), count(*) FILTER (WHERE next_check_at < $2) FROM domains WHERE next_check_at <= $1`,
		r.now, r.now.Add(-OverdueAfter)).Scan(&r.res.Due, &r.res.Overdue); err != nil {
		return fmt.Errorf("sweep: count due domains: %w", err)
	}
	r.p.m.domainsDue.Set(float64(r.res.Due))
	r.p.m.domainsOverdue.Set(float64(r.res.Overdue))
	return nil
}

// report hands the progress so far to the progress callback.
func (r *sweepRun) report(pass string) {
	if r.progress != nil {
		r.progress(SweepProgress{Due: r.res.Due, Enqueued: r.res.Enqueued, AlreadyPending: r.res.AlreadyPending,
			Failed: r.res.Failed, Pass: pass, Elapsed: time.Since(r.start)})
	}
}

// duePageResult is one page from the page reader, or its error.
type duePageResult struct {
	pass string
	page []dueDomain
	err  error
}

// run is the publish pipeline: a page reader one page ahead (readPages),
// the publishing loop here, a collector awaiting the acks in order
// (collect) and a lease writer (writeLeases), each a goroutine, so that
// reading, publishing, awaiting and leasing overlap. It returns the first
// error of the reader or the lease writer.
func (r *sweepRun) run(ctx context.Context, conn *pgxpool.Conn) error {
	leases := make(chan leaseJob, 1)
	leaseDone := make(chan error, 1)
	go func() { leaseDone <- r.writeLeases(ctx, leases) }()

	stop := make(chan struct{})
	pages := r.readPages(ctx, conn, stop)

	inflight := make(chan sweepItem, r.p.cfg.MaxInFlight)
	collected := make(chan struct{})
	go func() {
		defer close(collected)
		r.collect(inflight, leases)
	}()

	sweepErr := r.publishPages(ctx, pages, inflight)
	close(stop)
	for range pages { // let the reader finish before the lock's connection is released
	}
	close(inflight)
	<-collected
	close(leases)
	if err := <-leaseDone; err != nil && sweepErr == nil {
		sweepErr = fmt.Errorf("sweep: %w", err)
	}
	return sweepErr
}

// writeLeases writes the leases of finished pages (on a connection of
// its own) and returns the first error.
func (r *sweepRun) writeLeases(ctx context.Context, leases <-chan leaseJob) error {
	var first error
	for j := range leases {
		if first == nil {
			first = r.p.lease(context.WithoutCancel(ctx), j, r.now)
		}
	}
	return first
}

// readPages reads the due domains (readDue) one page ahead on a goroutine
// of its own, until stop is closed. It is stopped between queries, never
// during one: cancelling a query makes pgx close the connection, and with
// it the session's sweep lock, asynchronously.
func (r *sweepRun) readPages(ctx context.Context, conn *pgxpool.Conn, stop <-chan struct{}) <-chan duePageResult {
	pages := make(chan duePageResult, 1)
	go func() {
		defer close(pages)
		err := readDue(ctx, conn, r.now, r.p.cfg.PageSize, func(pass string, page []dueDomain) bool {
			select {
			case pages <- duePageResult{pass: pass, page: page}:
				return true
			case <-stop:
				return false
			}
		})
		if err != nil {
			select {
			case pages <- duePageResult{err: err}:
			case <-stop:
			}
		}
	}()
	return pages
}

// collect awaits the publish acks in order, with at most MaxInFlight
// unacknowledged (the buffer of inflight), counts the outcomes into res
// and hands each finished page's lease to the lease writer, so a page's
// last acks never stall the next page.
func (r *sweepRun) collect(inflight <-chan sweepItem, leases chan<- leaseJob) {
	var names []string
	var outcomes []int
	var frees []bool
	for it := range inflight {
		switch {
		case it.flush != nil:
			close(it.flush)
		case it.pageEnd:
			job := r.p.leaseFor(names, outcomes, frees, r.now)
			r.res.Enqueued += job.enqueued
			r.paidEnqueued += job.paid
			r.res.AlreadyPending += job.pending
			r.res.Failed += int64(len(names)) - job.enqueued - job.pending
			if len(job.names) > 0 {
				leases <- job
			}
			r.report(it.pass)
			names, outcomes, frees = names[:0], outcomes[:0], frees[:0]
		default:
			names = append(names, it.name)
			frees = append(frees, it.free)
			outcomes = append(outcomes, r.p.await(it))
		}
	}
}

// publishPages publishes the checks of every page within the budget and
// returns the reader's error, if any (not when ctx ended).
func (r *sweepRun) publishPages(ctx context.Context, pages <-chan duePageResult, inflight chan<- sweepItem) error {
	// counted waits until the collector has counted everything published.
	counted := func() {
		done := make(chan struct{})
		inflight <- sweepItem{flush: done}
		<-done
	}
	left := r.leftAtStart
	for pr := range pages {
		if pr.err != nil {
			if ctx.Err() == nil {
				return pr.err
			}
			return nil
		}
		if ctx.Err() != nil {
			return nil
		}
		if left == 0 {
			// The estimate below counted every publish as a new check;
			// recount exactly (already-pending and failed ones do not use
			// the budget) before giving up.
			counted()
			if left = max(r.leftAtStart-r.paidEnqueued, 0); left == 0 {
				return nil
			}
		}
		page, paid := budgetCut(pr.page, left) // the rest stays due for the next sweep
		r.publishPage(page, inflight)
		inflight <- sweepItem{pageEnd: true, pass: pr.pass}
		if left > 0 {
			left = max(left-paid, 0)
		}
	}
	return nil
}

// publishPage publishes the checks of one page asynchronously and hands
// each to the collector. It is not cut short by ctx: a page is small and
// its acks come within PublishTimeout, and finishing it keeps the lease
// exact.
func (r *sweepRun) publishPage(page []dueDomain, inflight chan<- sweepItem) {
	p := r.p
	for _, d := range page {
		it := sweepItem{name: d.name, free: d.free}
		msg, err := p.checkMsg(d.name, schemas.CheckSchedule, p.previous(d), r.now)
		if err != nil {
			p.log.Error("sweep: cannot build check; the domain stays due", "domain", d.name, "error", err)
		} else if it.ack, err = p.cfg.JS.PublishMsgAsync(msg); err != nil {
			p.log.Warn("sweep: publish failed; the domain stays due", "domain", d.name, "error", err)
		}
		inflight <- it
	}
}

// finish records the budget left, the duration and the metrics of the
// sweep, and returns its result.
func (r *sweepRun) finish(ctx context.Context, sweepErr error) (SweepResult, error) {
	res := &r.res
	left := r.leftAtStart
	if r.leftAtStart >= 0 {
		left = max(r.leftAtStart-r.paidEnqueued, 0)
		if left == 0 {
			res.BudgetExhausted = res.Due > res.Enqueued+res.AlreadyPending+res.Failed
		}
	}
	res.BudgetLeft = left
	res.Duration = time.Since(r.start)
	r.p.m.budgetLeft.Set(float64(left))
	r.p.m.sweepDuration.Observe(res.Duration.Seconds())
	r.p.m.lastSweep.SetToCurrentTime()
	if sweepErr == nil && ctx.Err() != nil {
		sweepErr = fmt.Errorf("sweep interrupted: %w", ctx.Err())
	}
	return *res, sweepErr
}

// tryLock takes the sweep lock on a connection of its own (a session
// lock: it is released when the connection ends, so a dead producer never
// blocks the others).
func tryLock(ctx context.Context, pool *pgxpool.Pool) (*pgxpool.Conn, bool, error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("acquire connection for the sweep lock: %w", err)
	}
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, SweepLockKey).Scan(&ok); err != nil {
		conn.Release()
		return nil, false, fmt.Errorf("take the sweep lock: %w", err)
	}
	if !ok {
		conn.Release()
		return nil, false, nil
	}
	return conn, true, nil
}

// unlock releases the sweep lock, or closes the connection when that fails
// so that the lock does not linger in the pool.
func unlock(ctx context.Context, conn *pgxpool.Conn, p *Producer) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, SweepLockKey); err != nil {
		p.log.Warn("sweep: unlock failed; closing the connection", "error", err)
		_ = conn.Conn().Close(ctx)
	}
	conn.Release()
}

// budgetUsed sums the checks enqueued in the rolling day (hourly buckets)
// and prunes buckets nobody reads any more.
func budgetUsed(ctx context.Context, conn *pgxpool.Conn, now time.Time) (int64, error) {
	if _, err := conn.Exec(ctx, `DELETE FROM lookup_budget WHERE hour < $1`, now.Add(-7*24*time.Hour)); err != nil {
		return 0, fmt.Errorf("prune lookup budget: %w", err)
	}
	var used int64
	if err := conn.QueryRow(ctx, `SELECT COALESCE(sum(count), 0) FROM lookup_budget WHERE hour > $1`,
		now.Add(-24*time.Hour)).Scan(&used); err != nil {
		return 0, fmt.Errorf("read lookup budget: %w", err)
	}
	return used, nil
}

// readDue reads the due domains at now in the sweep's order (the passes of
// lifecycle.UrgencyRule, each in (next_check_at, name) order) and hands
// them to send a page of at most pageSize at a time, until send returns
// false or every pass is read. The keyset cursor (next_check_at, name)
// moves forward only; OFFSET is never used.
func readDue(ctx context.Context, conn *pgxpool.Conn, now time.Time, pageSize int, send func(pass string, page []dueDomain) bool) error {
	passes, err := sweepPasses(now)
	if err != nil {
		return fmt.Errorf("sweep: %w", err)
	}
	for _, pass := range passes {
		var afterAt time.Time // keyset cursor: (next_check_at, name) of the last row seen
		afterName := ""
		for {
			page, lastAt, err := duePage(ctx, conn, pass, now, afterAt, afterName, int64(pageSize))
			if err != nil {
				return fmt.Errorf("sweep %s: %w", pass.name, err)
			}
			if len(page) == 0 {
				break
			}
			afterAt, afterName = lastAt, page[len(page)-1].name
			if !send(pass.name, page) {
				return nil
			}
			if len(page) < pageSize {
				break
			}
		}
	}
	return nil
}

// freeCheckSQL is the rule for dueDomain.free, as a select expression over
// a domains row: every path that enqueues a check (sweep, check now) reads
// it from here.
const freeCheckSQL = `COALESCE(evidence->>'provider' = 'dns', false) OR unmonitored_since IS NOT NULL OR private_suffix`

// duePage reads the next page of due domains of one pass after the keyset
// cursor, and returns it with the next_check_at of its last row.
func duePage(ctx context.Context, conn *pgxpool.Conn, pass sweepPass, now, afterAt time.Time, afterName string, limit int64) ([]dueDomain, time.Time, error) {
	args := pgx.NamedArgs{"now": now, "after_at": afterAt, "after_name": afterName, "limit": limit}
	maps.Copy(args, pass.args)
	rows, err := conn.Query(ctx, `
		SELECT name, phase, evidence, next_check_at, `+freeCheckSQL+` FROM domains
		 WHERE next_check_at <= @now AND `+pass.filter+`
		   AND (next_check_at, name) > (@after_at, @after_name)
		 ORDER BY next_check_at, name
		 LIMIT @limit`, args)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("read due domains: %w", err)
	}
	page := make([]dueDomain, 0, limit)
	var at time.Time
	var d dueDomain
	_, err = pgx.ForEachRow(rows, []any{&d.name, &d.phase, &d.evidence, &at, &d.free}, func() error {
		page = append(page, d)
		d.evidence = nil
		return nil
	})
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("read due domains: %w", err)
	}
	return page, at, nil
}

// leaseJob is the lease of one page's enqueued (or already pending)
// domains, and the number of new checks to count against the budget.
type leaseJob struct {
	names             []string
	nexts             []time.Time
	enqueued, pending int64
	// paid counts the enqueued checks that are not free: the budget's.
	paid int64
}

// lease writes a leaseJob. If it fails, the checks are queued but not
// leased: the next sweep finds them still due and gets "already pending",
// so nothing is lost.
func (p *Producer) lease(ctx context.Context, j leaseJob, now time.Time) error {
	if _, err := p.cfg.Pool.Exec(ctx, leaseSQL, j.names, j.nexts, now, now.UTC().Truncate(time.Hour), j.paid); err != nil {
		return fmt.Errorf("lease %d enqueued domains: %w", len(j.names), err)
	}
	return nil
}

// budgetCut returns the checks of page the budget left allows (left < 0:
// unlimited), in page order, and how many of them use the budget: free
// checks (dueDomain.free) are always taken and never counted; paid ones
// beyond left stay due for the next sweep.
func budgetCut(page []dueDomain, left int64) ([]dueDomain, int64) {
	if left < 0 {
		var paid int64
		for _, d := range page {
			if !d.free {
				paid++
			}
		}
		return page, paid
	}
	out := make([]dueDomain, 0, len(page))
	var paid int64
	for _, d := range page {
		switch {
		case d.free:
		case paid < left:
			paid++
		default:
			continue
		}
		out = append(out, d)
	}
	return out, paid
}

// sweepItem is one entry of the sweep's publish pipeline: a published
// check (ack nil when it could not be built or published), the end of a
// page, or a flush request.
type sweepItem struct {
	name    string
	free    bool // costs no registry lookup (dueDomain.free)
	ack     jetstream.PubAckFuture
	pageEnd bool
	pass    string
	flush   chan struct{}
}

// Outcomes of one published check.
const (
	publishFailed = iota
	publishDone
	publishWasPending
)

// await waits for one check's publish ack.
func (p *Producer) await(it sweepItem) int {
	if it.ack == nil {
		return publishFailed
	}
	timer := time.NewTimer(p.cfg.PublishTimeout)
	defer timer.Stop()
	select {
	case <-it.ack.Ok():
		return publishDone
	case err := <-it.ack.Err():
		if broker.IsAlreadyPending(err) {
			if p.replaceIfStale(it.ack.Msg()) {
				return publishDone
			}
			return publishWasPending
		}
		p.log.Warn("sweep: publish failed; the domain stays due", "domain", it.name, "error", err)
	case <-timer.C:
		p.log.Warn("sweep: no publish ack in time; the domain stays due", "domain", it.name)
	}
	return publishFailed
}

// leaseFor returns the lease of a page's domains that were enqueued or
// already pending. Domains whose publish failed are not leased and stay due.
func (p *Producer) leaseFor(names []string, outcomes []int, frees []bool, now time.Time) leaseJob {
	j := leaseJob{names: make([]string, 0, len(names)), nexts: make([]time.Time, 0, len(names))}
	for i, o := range outcomes {
		switch o {
		case publishDone:
			j.enqueued++
			j.paid += int64(lookupCost(true, frees[i]))
		case publishWasPending:
			j.pending++
		default:
			continue
		}
		j.names = append(j.names, names[i])
		j.nexts = append(j.nexts, p.leaseTime(now))
	}
	p.m.enqueued.Add(float64(j.enqueued))
	p.m.alreadyPending.Add(float64(j.pending))
	p.m.publishFailures.Add(float64(int64(len(names)) - j.enqueued - j.pending))
	return j
}

// previous turns a domain row into the previous observation a check
// carries; nil for a domain never observed.
func (p *Producer) previous(d dueDomain) *lifecycle.Observation {
	phase := lifecycle.Phase(d.phase)
	if !phase.Valid() {
		p.log.Warn("sweep: domain has an invalid phase; checking it as new", "domain", d.name, "phase", d.phase)
		return nil
	}
	if len(d.evidence) == 0 || string(d.evidence) == "null" {
		if phase == lifecycle.PhaseUnknown {
			return nil
		}
		return &lifecycle.Observation{Domain: d.name, Phase: phase}
	}
	obs := &lifecycle.Observation{Domain: d.name, Phase: phase}
	if err := json.Unmarshal(d.evidence, &obs.Evidence); err != nil {
		p.log.Warn("sweep: domain evidence unreadable; sending the phase only", "domain", d.name, "error", err)
		obs.Evidence = lifecycle.Evidence{}
	}
	return obs
}
