package checker

import (
	"context"
	"testing"
	"time"

	"github.com/domainguard/domainguard/internal/broker"
	"github.com/domainguard/domainguard/internal/testnats"
	"github.com/domainguard/domainguard/internal/testwait"
	"github.com/domainguard/domainguard/schemas"
)

// TestSurvivesServerRestart restarts an embedded server (same store, same
// port) under a running worker: checks published after the restart are
// still handled.
func TestSurvivesServerRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	log := testnats.Logger(t)
	srv, err := broker.StartEmbedded(ctx, broker.EmbeddedOptions{StoreDir: dir, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	port := srv.Port()
	t.Cleanup(func() { srv.Shutdown() })
	nc, js, err := broker.Connect(ctx, broker.ConnectOptions{URL: srv.URL(), Name: "restart test", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	topo := broker.Topology{Logger: log}.WithDefaults()
	if err := topo.Ensure(ctx, js); err != nil {
		t.Fatal(err)
	}
	e := env{js: js, nc: nc, topo: topo}
	p := &fakeProvider{}
	startWorker(t, e.baseConfig(t, p))

	e.publishCheck(t, "before.com", nil)
	e.waitEvents(t, 1, 0)

	srv.Shutdown()
	srv, err = broker.StartEmbedded(ctx, broker.EmbeddedOptions{StoreDir: dir, Port: port, Logger: log})
	if err != nil {
		t.Fatalf("restart on port %d: %v", port, err)
	}
	testwait.For(t, 20*time.Second, "reconnect", nc.IsConnected)

	e.publishCheck(t, "after.com", nil)
	e.waitEvents(t, 2, 200*time.Millisecond)
	if p.allCalls()["after.com"] != 1 {
		t.Errorf("after.com looked up %d times", p.allCalls()["after.com"])
	}
	if n := e.streamCount(t, schemas.StreamDomainChecks); n != 0 {
		t.Errorf("%d checks left", n)
	}
}
