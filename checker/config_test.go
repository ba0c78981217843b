package checker

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/domainguard/domainguard/internal/broker"
	"github.com/domainguard/domainguard/internal/testnats"
	"github.com/domainguard/domainguard/lifecycle"
)

func TestConfigDefaultsAndValidate(t *testing.T) {
	t.Parallel()
	js, _, _ := testnats.Shared(t)
	p := &fakeProvider{}
	d := Config{JS: js, Provider: p}.WithDefaults()
	if d.LookupsPerSecond != 5 || d.Burst != 1 || d.Concurrency != 8 || d.MaxAttempts != 4 ||
		d.MaxElapsed != 2*time.Minute || d.Source != "domainguard/checker" || d.Registerer == nil ||
		d.ProgressEvery != 30*time.Second || d.FetchWait != 5*time.Second {
		t.Errorf("defaults = %+v", d)
	}
	if err := d.Validate(); err != nil {
		t.Errorf("defaults invalid: %v", err)
	}
	tests := []struct {
		name   string
		adjust func(*Config)
		want   string
	}{
		{"no JS", func(c *Config) { c.JS = nil }, "JS is required"},
		{"no provider", func(c *Config) { c.Provider = nil }, "Provider is required"},
		{"negative rate", func(c *Config) { c.LookupsPerSecond = -1 }, "lookups per second"},
		{"negative burst", func(c *Config) { c.Burst = -1 }, "burst"},
		{"negative concurrency", func(c *Config) { c.Concurrency = -2 }, "concurrency"},
		{"negative attempts", func(c *Config) { c.MaxAttempts = -1 }, "max attempts"},
		{"progress not under ack wait", func(c *Config) {
			c.Topology = broker.Topology{CheckAckWait: 2 * time.Second}
			c.ProgressEvery = 3 * time.Second
		}, "shorter than the ack wait"},
		{"bad topology", func(c *Config) { c.Topology = broker.Topology{Replicas: 9} }, "replicas"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{JS: js, Provider: p}
			tc.adjust(&c)
			_, err := NewWorker(c)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("NewWorker error = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
	short := Config{JS: js, Provider: p, Topology: broker.Topology{CheckAckWait: 3 * time.Second}}.WithDefaults()
	if short.ProgressEvery != time.Second {
		t.Errorf("progress interval for a 3s ack wait = %s, want 1s", short.ProgressEvery)
	}
}

func TestCheckOnce(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 5, 5, 0, 0, 0, 0, time.UTC)
	p := &fakeProvider{answer: func(_ context.Context, domain string, _ int) (lifecycle.Observation, error) {
		switch domain {
		case "broken.com":
			return lifecycle.Observation{}, &LookupError{Provider: "fake", Domain: domain, Temporary: true, Err: errors.New("timeout")}
		case "bare.com":
			return lifecycle.Observation{Phase: lifecycle.PhaseActive}, nil // provider left the rest empty
		}
		return observation(domain, lifecycle.PhaseActive), nil
	}}
	obs, err := CheckOnce(context.Background(), p, "Mail.Example.COM.", nil, now)
	if err != nil {
		t.Fatal(err)
	}
	if obs.Domain != "example.com" || p.allCalls()["example.com"] != 1 {
		t.Errorf("looked up %v, observation for %q; want the registrable domain example.com", p.allCalls(), obs.Domain)
	}
	obs, err = CheckOnce(context.Background(), p, "bare.com", nil, now)
	if err != nil || obs.Domain != "bare.com" || obs.Evidence.Provider != "fake" || !obs.Evidence.ObservedAt.Equal(now) {
		t.Errorf("bare answer = %+v, %v", obs, err)
	}
	if _, err := CheckOnce(context.Background(), p, "broken.com", nil, now); err == nil || IsPermanent(err) {
		t.Errorf("temporary failure = %v", err)
	}
	for _, bad := range []string{"", "co.uk", "a..b", "foo>.com"} {
		if _, err := CheckOnce(context.Background(), p, bad, nil, now); err == nil {
			t.Errorf("CheckOnce(%q) succeeded", bad)
		}
	}
	if n := len(p.allCalls()); n != 3 {
		t.Errorf("%d domains looked up, want 3 (invalid names never reach the provider)", n)
	}
}

func TestRateLimitersPause(t *testing.T) {
	t.Parallel()
	var paused []string
	r := newRateLimiters(1000, 10, time.Second, func(key string, _ time.Time) { paused = append(paused, key) })
	r.pause("host", 300*time.Millisecond)
	waited, err := r.wait(context.Background(), "host")
	if err != nil || waited < 250*time.Millisecond {
		t.Errorf("wait after a 300ms pause: %s, %v", waited, err)
	}
	if waited, _ := r.wait(context.Background(), "other"); waited > 100*time.Millisecond {
		t.Errorf("an unpaused key waited %s", waited)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r.pause("other", 500*time.Millisecond)
	if _, err := r.wait(ctx, "other"); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled wait = %v", err)
	}
	// A pause longer than a worker may wait in place (a day, capped at
	// MaxRetryAfter) is not waited for: the check is handed back.
	start := time.Now()
	r.pause("host", 24*time.Hour)
	_, err = r.wait(context.Background(), "host")
	var pe *pausedError
	if !errors.As(err, &pe) || pe.Remaining > MaxRetryAfter || pe.Remaining < MaxRetryAfter-time.Minute || time.Since(start) > 100*time.Millisecond {
		t.Errorf("wait on a server paused for a day: %v after %s; want a *pausedError of at most %s at once", err, time.Since(start), MaxRetryAfter)
	}
	if len(paused) != 3 {
		t.Errorf("onPause called for %v, want host, other, host", paused)
	}
}
