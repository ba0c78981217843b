package producer

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the producer's Prometheus metrics (listed in the package doc).
type metrics struct {
	intakeAccepted     prometheus.Counter
	intakeDuplicates   prometheus.Counter
	intakeIgnored      prometheus.Counter
	intakeDeadLettered prometheus.Counter
	intakeErrors       prometheus.Counter
	signupChecks       prometheus.Counter

	domainsDue      prometheus.Gauge
	domainsOverdue  prometheus.Gauge
	enqueued        prometheus.Counter
	alreadyPending  prometheus.Counter
	publishFailures prometheus.Counter
	budgetLeft      prometheus.Gauge
	sweepDuration   prometheus.Histogram
	sweeps          prometheus.Counter
	sweepsSkipped   prometheus.Counter
	lastSweep       prometheus.Gauge
	staleReplaced   prometheus.Counter
	strandedChecks  prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns, sub = "domainguard", "producer"
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: name, Help: help})
	}
	gauge := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: name, Help: help})
	}
	m := &metrics{
		intakeAccepted:     counter("intake_accepted_total", "Host account events applied."),
		intakeDuplicates:   counter("intake_duplicates_total", "Redeliveries of host events already applied (changed nothing)."),
		intakeIgnored:      counter("intake_ignored_total", "Messages on accounts subjects the producer does not handle (acknowledged)."),
		intakeDeadLettered: counter("intake_dead_lettered_total", "Malformed host events sent to the dead-letter stream."),
		intakeErrors:       counter("intake_errors_total", "Host events that failed transiently and were left for redelivery."),
		signupChecks:       counter("signup_checks_total", "Signup checks enqueued for domains seen for the first time."),
		domainsDue:         gauge("domains_due", "Domains due for a check at the start of the last sweep."),
		domainsOverdue:     gauge("domains_overdue", "Domains whose next check is more than 24 hours overdue."),
		enqueued:           counter("enqueued_total", "Checks enqueued by sweeps."),
		alreadyPending:     counter("already_pending_total", "Sweep publishes refused because a check for the domain was still pending."),
		publishFailures:    counter("publish_failures_total", "Sweep publishes that failed; the domain stays due."),
		budgetLeft:         gauge("budget_left", "Lookups left in the rolling 24-hour budget (-1: unlimited)."),
		sweepDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub,
			Name: "sweep_duration_seconds", Help: "Duration of sweeps.",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 10)}),
		sweeps:         counter("sweeps_total", "Sweeps run by this process."),
		sweepsSkipped:  counter("sweeps_skipped_total", "Sweeps skipped because another replica held the sweep lock."),
		lastSweep:      gauge("last_sweep_timestamp_seconds", "Unix time at which this process's last sweep ended."),
		staleReplaced:  counter("stale_checks_replaced_total", "Pending checks found stale (below the checker's ack floor, or older than the lease and every delivery) and replaced by a fresh one."),
		strandedChecks: gauge("stranded_checks", "Messages in DOMAIN_CHECKS that the checker neither will deliver nor holds unacknowledged (stream messages - pending - ack pending), at the last sweep."),
	}
	for _, c := range []prometheus.Collector{
		m.intakeAccepted, m.intakeDuplicates, m.intakeIgnored, m.intakeDeadLettered, m.intakeErrors, m.signupChecks,
		m.domainsDue, m.domainsOverdue, m.enqueued, m.alreadyPending, m.publishFailures, m.budgetLeft,
		m.sweepDuration, m.sweeps, m.sweepsSkipped, m.lastSweep, m.staleReplaced, m.strandedChecks,
	} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register producer metrics: %w", err)
		}
	}
	return m, nil
}
