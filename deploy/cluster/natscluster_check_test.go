package cluster_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// TestNATSClusterFromDeployConfig starts the three nodes from
// deploy/nats/cluster.conf and shows they form one JetStream cluster: an R3
// stream has a leader and two current replicas, and survives its leader's
// crash.
func TestNATSClusterFromDeployConfig(t *testing.T) {
	c := startNATSCluster(t)
	nc, js := c.connect()
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "R3CHECK", Subjects: []string{"r3check.>"}, Replicas: 3}); err != nil {
		t.Fatalf("create R3 stream: %v", err)
	}
	leader, err := streamLeader(ctx, js, "R3CHECK")
	if err != nil || c.node(leader) == nil {
		t.Fatalf("leader %q: %v", leader, err)
	}
	waitCurrentReplicas(ctx, t, js, "R3CHECK", 2)
	if _, err := js.Publish(ctx, "r3check.a", []byte("1")); err != nil {
		t.Fatalf("publish: %v", err)
	}
	c.kill(c.node(leader))
	var newLeader string
	for newLeader == "" || newLeader == leader {
		if ctx.Err() != nil {
			t.Fatalf("no new leader after killing %s", leader)
		}
		newLeader, _ = streamLeader(ctx, js, "R3CHECK")
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := js.Publish(ctx, "r3check.b", []byte("2")); err != nil {
		t.Fatalf("publish after failover: %v", err)
	}
	c.restart(c.node(leader))
	waitCurrentReplicas(ctx, t, js, "R3CHECK", 2)
	s, err := js.Stream(ctx, "R3CHECK")
	if err != nil {
		t.Fatal(err)
	}
	if info, err := s.Info(ctx); err != nil || info.State.Msgs != 2 {
		t.Fatalf("stream after failover: %+v, %v; want 2 messages", info.State, err)
	}
}
