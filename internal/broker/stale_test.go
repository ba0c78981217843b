package broker_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/domainguard/domainguard/internal/broker"
	"github.com/domainguard/domainguard/internal/testnats"
	"github.com/domainguard/domainguard/schemas"
)

// TestReplaceStaleCheckBelowAckFloor: a check left below the checker's ack
// floor (what a nats-server crash leaves) is replaced at once, however
// young, and counted as stranded until then; a check the consumer will
// still deliver, or holds unacknowledged, is never replaced.
func TestReplaceStaleCheckBelowAckFloor(t *testing.T) {
	for _, srv := range servers {
		t.Run(srv.name, func(t *testing.T) {
			js, _, topo := srv.setup(t, nil)
			ctx := testContext(t)
			subj := topo.Namespace.CheckSubject("zombie.com")
			check := func(n string) *nats.Msg { return &nats.Msg{Subject: subj, Data: []byte(`{"n":` + n + `}`)} }
			// staleAfter is far away: only the ack floor may make a check stale.
			replace := func(msg *nats.Msg) bool {
				t.Helper()
				if _, err := js.PublishMsg(ctx, msg); !broker.IsAlreadyPending(err) {
					t.Fatalf("publish %s: %v, want already pending", msg.Data, err)
				}
				ok, err := topo.ReplaceStaleCheck(ctx, js, msg, time.Hour, time.Now())
				if err != nil {
					t.Fatalf("ReplaceStaleCheck: %v", err)
				}
				return ok
			}
			stranded := func() int64 {
				t.Helper()
				n, err := topo.StrandedChecks(ctx, js)
				if err != nil {
					t.Fatalf("StrandedChecks: %v", err)
				}
				return n
			}

			zombie, err := js.PublishMsg(ctx, check("1"))
			if err != nil {
				t.Fatal(err)
			}
			// Not yet delivered: a backlog, never stale.
			if replace(check("2")) {
				t.Fatal("a check the consumer has yet to deliver was replaced")
			}
			if floor := testnats.StrandChecks(ctx, t, js, topo); floor < zombie.Sequence {
				t.Fatalf("ack floor %d, want at least %d", floor, zombie.Sequence)
			}
			if n := stranded(); n != 1 {
				t.Errorf("StrandedChecks = %d with one check below the ack floor, want 1", n)
			}
			if !replace(check("3")) {
				t.Fatal("a check below the consumer's ack floor was not replaced")
			}
			if n := stranded(); n != 0 {
				t.Errorf("StrandedChecks = %d after the replacement, want 0", n)
			}
			if n := testnats.StreamMsgs(t, js, topo.Namespace.Stream(schemas.StreamDomainChecks)); n != 1 {
				t.Errorf("DOMAIN_CHECKS holds %d messages, want the replacement only", n)
			}
			c, err := js.Consumer(ctx, topo.Namespace.Stream(schemas.StreamDomainChecks), broker.ConsumerChecker)
			if err != nil {
				t.Fatal(err)
			}
			m := fetchOne(t, c)
			if string(m.Data()) != `{"n":3}` {
				t.Fatalf("the checker got %s, want the replacement", m.Data())
			}
			// Delivered, unacknowledged and young: the checker is on it.
			if replace(check("4")) {
				t.Fatal("a check the checker holds unacknowledged was replaced")
			}
			if err := m.DoubleAck(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := js.PublishMsg(ctx, check("5")); err != nil {
				t.Fatalf("publish after the replacement was acknowledged: %v", err)
			}
		})
	}
}
