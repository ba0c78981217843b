package enforcer

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/domainguard/domainguard/internal/deadletters"
	"github.com/domainguard/domainguard/internal/testwait"
	"github.com/domainguard/domainguard/lifecycle"
	"github.com/domainguard/domainguard/schemas"
)

// clockSkew reads domainguard_enforcer_observation_clock_skew_seconds by
// its exported name, failing unless it is one unlabelled gauge.
func clockSkew(t *testing.T, g prometheus.Gatherer) float64 {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "domainguard_enforcer_observation_clock_skew_seconds" {
			continue
		}
		if f.GetType() != dto.MetricType_GAUGE || len(f.GetMetric()) != 1 || len(f.GetMetric()[0].GetLabel()) != 0 {
			t.Fatalf("clock skew metric is %s with %d series, want one unlabelled gauge", f.GetType(), len(f.GetMetric()))
		}
		return f.GetMetric()[0].GetGauge().GetValue()
	}
	t.Fatal("domainguard_enforcer_observation_clock_skew_seconds is not exported")
	return 0
}

// TestObservationClockSkew runs the enforcer (clock at t0) on observations
// stamped around lifecycle.MaxClockSkew ahead, one at a time: one more than
// MaxClockSkew ahead is dead-lettered with a reason naming its observed_at
// and how far ahead it is, and changes nothing; one exactly MaxClockSkew
// ahead is applied; the skew gauge reports each one's observed_at − now.
func TestObservationClockSkew(t *testing.T) {
	f := newFixture(t, nil)
	js, _, topo := sharedNATS(t)
	metricsReg := prometheus.NewRegistry()
	e, err := New(Config{Pool: f.pool, JS: js, Topology: topo, Clock: f.clock, Logger: quietLogger(t),
		RelayInterval: 200 * time.Millisecond, Registerer: metricsReg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	dlq, err := deadletters.Stream(ctx, js, topo.Namespace)
	if err != nil {
		t.Fatal(err)
	}
	unverified := func(domain string) int {
		return f.count(`SELECT count(*) FROM emails WHERE domain = $1 AND NOT verified`, domain)
	}

	tests := []struct {
		name      string
		domain    string
		ahead     time.Duration
		heartbeat bool // a domains.checked heartbeat, else a change to redemption
		wantDLQ   bool
		// wantReason is in the dead letter's error.
		wantReason string
	}{
		{name: "change one second past the allowed skew", domain: "ahead.com", ahead: lifecycle.MaxClockSkew + time.Second, wantDLQ: true,
			wantReason: "observed_at 2026-03-01T12:05:01Z is 5m1s in the future (more than the 5m0s clock skew allowed)"},
		{name: "heartbeat thirty days ahead", domain: "ahead.com", ahead: 30 * 24 * time.Hour, heartbeat: true, wantDLQ: true,
			wantReason: "observed_at 2026-03-31T12:00:00Z is 720h0m0s in the future (more than the 5m0s clock skew allowed)"},
		{name: "change exactly at the allowed skew", domain: "edge.com", ahead: lifecycle.MaxClockSkew},
		{name: "change behind the enforcer's clock", domain: "behind.com", ahead: -90 * time.Second},
	}
	for _, d := range []string{"ahead.com", "edge.com", "behind.com"} {
		f.addEmails(d, 2, t0.Add(-48*time.Hour))
		f.activate(d, t0.Add(-time.Hour))
	}
	letters := 0
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			at := t0.Add(tc.ahead)
			before := unverified(tc.domain)
			if tc.heartbeat {
				publishChecked(t, ctx, js, topo, schemas.DomainChecked{Domain: tc.domain, Phase: lifecycle.PhaseActive, ObservedAt: at})
			} else {
				publishChanged(t, ctx, js, topo, schemas.DomainChanged{Domain: tc.domain, PreviousPhase: lifecycle.PhaseActive,
					Phase: lifecycle.PhaseRedemption, Evidence: evidence(at, reg, "H-"+tc.domain, nil)})
			}
			if !tc.wantDLQ {
				testwait.For(t, 30*time.Second, "the redemption applied", func() bool { return unverified(tc.domain) == 2 })
			} else {
				letters++
				testwait.For(t, 30*time.Second, "the observation dead-lettered", func() bool {
					n, err := deadletters.Depth(ctx, dlq)
					return err == nil && n == uint64(letters)
				})
				list, err := deadletters.List(ctx, dlq, 100)
				if err != nil {
					t.Fatal(err)
				}
				l := list[len(list)-1].Letter
				subject := schemas.SubjectChangedPrefix + tc.domain
				if tc.heartbeat {
					subject = schemas.SubjectCheckedPrefix + tc.domain
				}
				if l.Subject != subject || l.Stream != schemas.StreamDomainEvents {
					t.Errorf("dead letter from %s %s, want %s %s", l.Stream, l.Subject, schemas.StreamDomainEvents, subject)
				}
				if !strings.Contains(l.Error, tc.wantReason) {
					t.Errorf("dead letter reason %q, want it to contain %q", l.Error, tc.wantReason)
				}
				if got := unverified(tc.domain); got != before {
					t.Errorf("%d addresses unverified after a refused observation, want %d", got, before)
				}
			}
			if got, want := clockSkew(t, metricsReg), tc.ahead.Seconds(); got != want {
				t.Errorf("clock skew gauge = %g s, want %g", got, want)
			}
		})
	}
	if n, err := deadletters.Depth(ctx, dlq); err != nil || n != uint64(letters) {
		t.Errorf("dlq holds %d letters (%v), want %d", n, err, letters)
	}
}
