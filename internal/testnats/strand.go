package testnats

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/domainguard/domainguard/internal/broker"
	"github.com/domainguard/domainguard/schemas"
)

// StrandChecks leaves every check now in DOMAIN_CHECKS below the checker
// consumer's ack floor, never delivered: the state a nats-server crash
// leaves when the store loses the removal of acknowledged checks but keeps
// the consumer's ack floor (issue 14 item 4, seen with 2.9.10). A real
// crash does so only now and then, so it is built here, deterministically:
// the consumer is narrowed to a decoy subject, the decoy check published,
// delivered and acknowledged (the floor moves past everything skipped), and
// the consumer's own configuration restored. Nothing else may consume
// meanwhile (stop the checker), and the consumer must hold no
// unacknowledged check. It returns the ack floor's stream sequence.
func StrandChecks(ctx context.Context, t testing.TB, js jetstream.JetStream, topo broker.Topology) uint64 {
	t.Helper()
	stream := topo.Namespace.Stream(schemas.StreamDomainChecks)
	cons, err := js.Consumer(ctx, stream, broker.ConsumerChecker)
	if err != nil {
		t.Fatalf("testnats: strand checks: consumer: %v", err)
	}
	cfg := cons.CachedInfo().Config
	narrowed := cfg
	decoy := topo.Namespace.CheckSubject("strand-decoy.invalid")
	narrowed.FilterSubject = decoy
	if _, err := js.UpdateConsumer(ctx, stream, narrowed); err != nil {
		t.Fatalf("testnats: strand checks: narrow the consumer: %v", err)
	}
	ack, err := js.Publish(ctx, decoy, []byte(`{}`))
	if err != nil {
		t.Fatalf("testnats: strand checks: publish the decoy: %v", err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatalf("testnats: strand checks: fetch the decoy: %v", err)
	}
	fetched := 0
	for m := range batch.Messages() {
		fetched++
		if err := m.DoubleAck(ctx); err != nil {
			t.Fatalf("testnats: strand checks: ack the decoy: %v", err)
		}
	}
	if fetched != 1 {
		t.Fatalf("testnats: strand checks: fetched %d decoys, want 1 (is a checker consuming?): %v", fetched, batch.Error())
	}
	if _, err := js.UpdateConsumer(ctx, stream, cfg); err != nil {
		t.Fatalf("testnats: strand checks: restore the consumer: %v", err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatalf("testnats: strand checks: consumer info: %v", err)
	}
	if info.AckFloor.Stream < ack.Sequence || info.NumPending != 0 || info.NumAckPending != 0 {
		t.Fatalf("testnats: strand checks: ack floor %d (want at least the decoy's %d), pending %d, ack pending %d (want 0)",
			info.AckFloor.Stream, ack.Sequence, info.NumPending, info.NumAckPending)
	}
	return info.AckFloor.Stream
}
