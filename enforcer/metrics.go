package enforcer

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Results of handling one DOMAIN_EVENTS changed message, the values of the
// result label of domainguard_enforcer_events_total.
const (
	ResultApplied   = "applied"   // decision applied (or held) for a new observation
	ResultStale     = "stale"     // recorded, not applied: older than the applied one
	ResultDuplicate = "duplicate" // message id already processed
	ResultInvalid   = "invalid"   // dead-lettered
	ResultUnknown   = "unknown"   // phase unknown: nothing to do
)

type metrics struct {
	events      *prometheus.CounterVec
	unverified  *prometheus.CounterVec
	wouldBe     *prometheus.CounterVec
	holdsOpen   prometheus.Gauge
	holdAge     prometheus.Gauge
	dlqMessages prometheus.Gauge
	// streamMsgs and streamMaxMsgs are each stream's messages and message
	// limit (DomainguardStreamNearLimit).
	streamMsgs, streamMaxMsgs *prometheus.GaugeVec
	breakerOpen               prometheus.Gauge
	outboxLag                 prometheus.Gauge
	published                 prometheus.Counter
	heartbeats                *prometheus.CounterVec
	clockSkew                 prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "domainguard_enforcer_events_total",
			Help: "Changed events handled by the enforcer, by result (applied, stale, duplicate, invalid, unknown).",
		}, []string{"result"}),
		unverified: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "domainguard_enforcer_emails_unverified_total",
			Help: "Email addresses unverified, by reason.",
		}, []string{"reason"}),
		wouldBe: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "domainguard_enforcer_dry_run_unverified_total",
			Help: "Email addresses a dry run would have unverified, by reason.",
		}, []string{"reason"}),
		holdsOpen: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "domainguard_enforcer_holds_open",
			Help: "Holds waiting for an operator (pending).",
		}),
		holdAge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "domainguard_enforcer_hold_oldest_age_seconds",
			Help: "Age of the oldest hold waiting for an operator (0 when none).",
		}),
		dlqMessages: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "domainguard_dlq_messages",
			Help: "Messages in the DLQ stream (dead letters of every role), read by the enforcer's relay.",
		}),
		streamMsgs: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "domainguard_stream_messages",
			Help: "Messages in each domainguard stream, read by the enforcer's relay.",
		}, []string{"stream"}),
		streamMaxMsgs: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "domainguard_stream_max_messages",
			Help: "Message limit (MaxMsgs) of each domainguard stream; a full ACCOUNTS, DOMAIN_CHECKS, DOMAIN_EVENTS or AUDIT refuses new messages, a full DLQ drops its oldest.",
		}, []string{"stream"}),
		breakerOpen: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "domainguard_enforcer_breaker_open",
			Help: "1 while the global breaker pauses enforcement.",
		}),
		outboxLag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "domainguard_enforcer_outbox_lag_seconds",
			Help: "Age of the oldest unpublished outbox row (0 when empty).",
		}),
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "domainguard_enforcer_outbox_published_total",
			Help: "Audit events published from the outbox.",
		}),
		heartbeats: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "domainguard_enforcer_heartbeats_total",
			Help: "Heartbeats (domains.checked) handled, by result (checked, failed, stale, invalid).",
		}, []string{"result"}),
		clockSkew: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "domainguard_enforcer_observation_clock_skew_seconds",
			Help: "observed_at of the last observation minus the enforcer's clock (positive: the checker's clock is ahead); more than 300 s ahead is refused.",
		}),
	}
	var err error
	register(reg, &m.events, &err)
	register(reg, &m.unverified, &err)
	register(reg, &m.wouldBe, &err)
	register(reg, &m.holdsOpen, &err)
	register(reg, &m.holdAge, &err)
	register(reg, &m.dlqMessages, &err)
	register(reg, &m.streamMsgs, &err)
	register(reg, &m.streamMaxMsgs, &err)
	register(reg, &m.breakerOpen, &err)
	register(reg, &m.outboxLag, &err)
	register(reg, &m.published, &err)
	register(reg, &m.heartbeats, &err)
	register(reg, &m.clockSkew, &err)
	if err != nil {
		return nil, fmt.Errorf("enforcer metrics: %w", err)
	}
	return m, nil
}

// register registers *c, or replaces it with the collector already
// registered under its name (a Store and a Relay built separately in one
// process share the registry).
func register[C prometheus.Collector](reg prometheus.Registerer, c *C, errp *error) {
	if *errp != nil {
		return
	}
	if err := reg.Register(*c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				*c = existing
				return
			}
		}
		*errp = err
	}
}
