package dnsevidence

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	queries *prometheus.CounterVec
	bad     *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		queries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "domainguard_dns_queries_total",
			Help: "DNS queries by target (parent zone server, resolver) and outcome.",
		}, []string{"target", "outcome"}),
		bad: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "domainguard_dns_bad_answers_total",
			Help: "DNS answers dropped as untrustworthy, by reason (malformed, truncated, oversized, mismatched_id, wrong_question, not_a_response).",
		}, []string{"reason"}),
	}
	var err error
	if m.queries, err = register(reg, m.queries); err != nil {
		return nil, err
	}
	if m.bad, err = register(reg, m.bad); err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c, or returns the counter already registered under
// its name: a second client in the same process (run with several roles)
// shares the first one's counters.
func register(reg prometheus.Registerer, c *prometheus.CounterVec) (*prometheus.CounterVec, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
				return existing, nil
			}
		}
		return nil, fmt.Errorf("dns evidence metrics: %w", err)
	}
	return c, nil
}

// outcome counts a well-formed answer that decided nothing.
func (m *metrics) outcome(target string, err error) {
	var na *NoAnswerError
	if errors.As(err, &na) {
		m.queries.WithLabelValues(target, na.Outcome).Inc()
		return
	}
	m.queries.WithLabelValues(target, OutcomeOtherRcode).Inc()
}

// transportFailure counts a query that got no usable answer.
func (m *metrics) transportFailure(target string, err error) {
	if reason, bad := isBad(err); bad {
		if reason != BadTruncated { // counted when the TCP retry began
			m.bad.WithLabelValues(reason).Inc()
		}
		m.queries.WithLabelValues(target, OutcomeBadAnswer).Inc()
		return
	}
	if isTimeout(err) {
		m.queries.WithLabelValues(target, OutcomeTimeout).Inc()
		return
	}
	m.queries.WithLabelValues(target, OutcomeNetworkError).Inc()
}
