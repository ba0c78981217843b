package checker

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Lookup outcomes (label values of domainguard_checker_lookups_total).
const (
	outcomeOK        = "ok"
	outcomeUnknown   = "unknown"
	outcomeTemporary = "temporary_error"
	outcomePermanent = "permanent_error"
	// outcomeRefused: the dial guard refused the server's address.
	outcomeRefused = "refused"
)

// Event kinds (label values of domainguard_checker_events_published_total).
const (
	kindChanged = "changed"
	kindChecked = "checked"
	kindFailed  = "failed"
	// kindUnmonitored: no source of evidence for the TLD.
	kindUnmonitored = "unmonitored"
)

type metrics struct {
	lookups        *prometheus.CounterVec
	lookupDuration *prometheus.HistogramVec
	rateLimitWait  prometheus.Histogram
	retries        prometheus.Counter
	published      *prometheus.CounterVec
	deadLetters    prometheus.Counter
	pausedUntil    *prometheus.GaugeVec
	parked         prometheus.Counter
	releasedJumps  prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "domainguard_checker_lookups_total",
			Help: "Lookup attempts by provider and outcome (ok, unknown, temporary_error, permanent_error, refused: the server is at a non-public address the operator did not name).",
		}, []string{"provider", "outcome"}),
		lookupDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "domainguard_checker_lookup_duration_seconds",
			Help:    "Duration of one lookup attempt.",
			Buckets: []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
		}, []string{"provider"}),
		rateLimitWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "domainguard_checker_rate_limit_wait_seconds",
			Help:    "Time a lookup waited for the per-host rate limiter (and provider Retry-After pauses).",
			Buckets: []float64{0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60},
		}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "domainguard_checker_retries_total",
			Help: "In-process lookup retries after transient failures.",
		}),
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "domainguard_checker_events_published_total",
			Help: "Events published by kind (changed, checked heartbeat, failed heartbeat, unmonitored heartbeat).",
		}, []string{"kind"}),
		deadLetters: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "domainguard_checker_dead_letters_total",
			Help: "Check requests dead-lettered (invalid input or permanent lookup failure).",
		}),
		pausedUntil: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "domainguard_checker_paused_until_seconds",
			Help: "Per lookup server (RDAP host, or provider): Unix time until which its Retry-After pauses lookups (capped at 6h); in the past when not paused.",
		}, []string{"server"}),
		parked: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "domainguard_checker_checks_parked_total",
			Help: "Checks handed back to the queue with a delay because their lookup server is paused.",
		}),
		releasedJumps: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "domainguard_checker_released_without_lapse_total",
			Help: "Domains seen released straight after an active observation, with no lapse phase in between (suspicious: a registry answering 404 by mistake looks like this).",
		}),
	}
	for _, c := range []prometheus.Collector{m.lookups, m.lookupDuration, m.rateLimitWait, m.retries, m.published, m.deadLetters,
		m.pausedUntil, m.parked, m.releasedJumps} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("checker metrics: %w", err)
		}
	}
	return m, nil
}
