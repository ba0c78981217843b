package config

import (
	"flag"
	"strings"
	"testing"
	"time"
)

func TestAckWaits(t *testing.T) {
	env := map[string]string{"DOMAINGUARD_CHECK_ACK_WAIT": "10s", "DOMAINGUARD_EVENT_ACK_WAIT": "5s"}
	cfg, _, err := Load(nil, func(k string) string { return env[k] }, flag.NewFlagSet("t", flag.ContinueOnError))
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.WithDefaults()
	if cfg.CheckAckWait != 10*time.Second || cfg.EventAckWait != 5*time.Second {
		t.Fatalf("ack waits %s/%s, want 10s/5s", cfg.CheckAckWait, cfg.EventAckWait)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	def := Config{}.WithDefaults()
	if def.CheckAckWait != 2*time.Minute || def.EventAckWait != time.Minute {
		t.Fatalf("default ack waits %s/%s, want 2m/1m (broker.Topology's)", def.CheckAckWait, def.EventAckWait)
	}
	bad := def
	bad.CheckAckWait = 999 * time.Millisecond // broker.MinAckWait is 1s
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "DOMAINGUARD_CHECK_ACK_WAIT") {
		t.Fatalf("999ms check ack wait: %v, want an error naming DOMAINGUARD_CHECK_ACK_WAIT", err)
	}
}
