package enforcer

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/domainguard/domainguard/internal/broker"
	"github.com/domainguard/domainguard/internal/testnats"
	"github.com/domainguard/domainguard/schemas"
)

// The relay's gauges feed two alerts: a hold waiting more than a day, and a
// growing DLQ.
func TestRelayGaugesHoldAgeAndDLQDepth(t *testing.T) {
	f := newFixture(t, nil)
	js, _, topo := testnats.Shared(t)
	for range 3 {
		if _, err := js.Publish(f.ctx, topo.Namespace.DeadLetterSubject(schemas.StreamAccounts), []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	f.exec(`INSERT INTO holds (id, domain, cause, reason, phase, observation, addresses, created_at)
VALUES (gen_random_uuid(), 'big.com', 'cap', 'domain_expired', 'expired', '{}', '[]', now() - interval '25 hours')`)
	r, err := NewRelay(Config{Pool: f.pool, JS: js, Topology: topo, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.RefreshGauges(f.ctx); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(r.metrics.dlqMessages); got != 3 {
		t.Errorf("dlq messages = %v, want 3", got)
	}
	// Each stream's depth and limit, for DomainguardStreamNearLimit.
	if got := testutil.ToFloat64(r.metrics.streamMsgs.WithLabelValues(schemas.StreamDLQ)); got != 3 {
		t.Errorf("DLQ stream messages = %v, want 3", got)
	}
	if got := testutil.ToFloat64(r.metrics.streamMaxMsgs.WithLabelValues(schemas.StreamAccounts)); got != float64(broker.DefaultAccountsMaxMsgs) {
		t.Errorf("ACCOUNTS limit = %v, want %d", got, broker.DefaultAccountsMaxMsgs)
	}
	if got := testutil.ToFloat64(r.metrics.holdAge); got < (25 * time.Hour).Seconds() {
		t.Errorf("oldest hold age = %v s, want at least 25 h", got)
	}
}
