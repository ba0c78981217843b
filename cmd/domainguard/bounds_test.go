package main

import (
	"flag"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/domainguard/domainguard/internal/config"
)

// TestBoundsAgreeAcrossLayers: for every setting both internal/config and
// a role check, a value just outside the bound is refused by config.Load +
// Validate (naming the variable) AND by the role's own Validate on the
// configuration the binary builds (roleconfig.go), and the value just
// inside is accepted by both. A bound stated twice that drifts apart (as
// DOMAINGUARD_CHECK_ACK_WAIT did: 3s–1h in config, ≥1s in the topology)
// fails here.
func TestBoundsAgreeAcrossLayers(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	appOf := func(cfg config.Config) *app {
		return &app{cfg: cfg, topo: topologyConfig(cfg, log), log: log, reg: prometheus.NewRegistry()}
	}
	type roleCheck func(config.Config) error
	topology := func(c config.Config) error { return topologyConfig(c, log).Validate() }
	producerRole := func(c config.Config) error { return appOf(c).producerConfig().WithDefaults().Validate() }
	checkerRole := func(c config.Config) error { return appOf(c).checkerConfig(nil).WithDefaults().Validate() }
	enforcerRole := func(c config.Config) error { return appOf(c).enforcerConfig().WithDefaults().Validate() }
	rdapRole := func(c config.Config) error { return rdapConfig(c, log).WithDefaults().Validate() }
	dnsRole := func(c config.Config) error { return dnsEvidenceConfig(c, log, nil).WithDefaults().Validate() }

	for _, tc := range []struct {
		env       string
		bad, good string
		role      roleCheck
		// setBad puts the bad value into a Config when Load itself refuses
		// it (a list parsed while loading).
		setBad func(*config.Config)
	}{
		{env: "DOMAINGUARD_STREAM_REPLICAS", bad: "6", good: "5", role: topology},
		{env: "DOMAINGUARD_SUBJECT_PREFIX", bad: "a/b", good: "a-b.c_1", role: topology},
		{env: "DOMAINGUARD_SUBJECT_PREFIX", bad: "a.>", good: "a.b", role: topology},
		{env: "DOMAINGUARD_CHECK_ACK_WAIT", bad: "61m", good: "1s", role: topology},
		{env: "DOMAINGUARD_CHECK_ACK_WAIT", bad: "999ms", good: "1h", role: topology},
		{env: "DOMAINGUARD_EVENT_ACK_WAIT", bad: "61m", good: "1s", role: topology},
		{env: "DOMAINGUARD_EVENT_ACK_WAIT", bad: "999ms", good: "1h", role: topology},
		{env: "DOMAINGUARD_SWEEP_INTERVAL", bad: "999ms", good: "1s", role: producerRole},
		{env: "DOMAINGUARD_DAILY_LOOKUP_BUDGET", bad: "-1", good: "1", role: producerRole},
		{env: "DOMAINGUARD_LOOKUPS_PER_SECOND", bad: "-0.5", good: "0.5", role: checkerRole},
		{env: "DOMAINGUARD_CHECK_CONCURRENCY", bad: "1001", good: "1000", role: checkerRole},
		{env: "DOMAINGUARD_CHECK_CONCURRENCY", bad: "-1", good: "1", role: checkerRole},
		{env: "DOMAINGUARD_BREAKER_PCT", bad: "100.5", good: "100", role: enforcerRole},
		{env: "DOMAINGUARD_BREAKER_PCT", bad: "-1", good: "0.5", role: enforcerRole},
		{env: "DOMAINGUARD_PROTECTED_DOMAINS", bad: "a>b.example", good: "a-b.example", role: enforcerRole},
		{env: "DOMAINGUARD_PROTECTED_DOMAINS", bad: "mail/example.com", good: "mail.example.com", role: enforcerRole},
		{env: "DOMAINGUARD_BREAKER_MIN_DOMAINS", bad: "-1", good: "1", role: enforcerRole},
		{env: "DOMAINGUARD_RECHECK_INTERVAL", bad: "59m", good: "1h", role: enforcerRole},
		{env: "DOMAINGUARD_RECHECK_INTERVAL", bad: "721h", good: "720h", role: enforcerRole},
		{env: "DOMAINGUARD_DNS_RESOLVER", bad: "127.0.0.1:domain", good: "127.0.0.1:53", role: dnsRole},
		{env: "DOMAINGUARD_DNS_RESOLVER", bad: "127.0.0.1:65536", good: "127.0.0.1:65535", role: dnsRole},
		{env: "RDAP_BOOTSTRAP_URL", bad: "file://", good: "file:///var/lib/dns.json", role: rdapRole},
		{env: "RDAP_BOOTSTRAP_URL", bad: "ftp://example.org/dns.json", good: "http://example.org/dns.json", role: rdapRole},
		{env: "DOMAINGUARD_RDAP_OVERRIDES", bad: "de=https:///rdap", good: "de=https://rdap.example/", role: rdapRole,
			setBad: func(c *config.Config) { c.RDAPOverrides = map[string]string{"de": "https:///rdap"} }},
		{env: "DOMAINGUARD_RDAP_CANARIES", bad: "de=nic.com", good: "de=nic.de", role: rdapRole,
			setBad: func(c *config.Config) { c.RDAPCanaries = map[string]string{"de": "nic.com"} }},
		{env: "DOMAINGUARD_UNDELEGATED_CONFIRM", bad: "-1s", good: "1s", role: dnsRole},
		{env: "DOMAINGUARD_DNS_QUERIES_PER_SECOND", bad: "-1", good: "0.5", role: dnsRole},
		{env: "DOMAINGUARD_DNS_TLD_SERVERS", bad: "eu=127.0.0.1:0", good: "eu=127.0.0.1:1", role: dnsRole,
			setBad: func(c *config.Config) { c.DNSTLDServers = map[string][]string{"eu": {"127.0.0.1:0"}} }},
	} {
		t.Run(tc.env+"="+tc.bad, func(t *testing.T) {
			load := func(v string) (config.Config, error) {
				env := map[string]string{}
				if v != "" {
					env[tc.env] = v
				}
				fs := flag.NewFlagSet("t", flag.ContinueOnError)
				fs.SetOutput(io.Discard)
				cfg, _, err := config.Load(nil, func(k string) string { return env[k] }, fs)
				if err != nil {
					return cfg, err
				}
				cfg = cfg.WithDefaults()
				return cfg, cfg.Validate()
			}
			base, err := load("")
			if err != nil {
				t.Fatalf("defaults: %v", err)
			}
			// The role's errors for the defaults (a missing pool, JetStream,
			// provider): the bad value must add one, the good value none.
			baseRole := errText(tc.role(base))

			good, err := load(tc.good)
			if err != nil {
				t.Errorf("config refuses %s=%s: %v", tc.env, tc.good, err)
			} else if got := errText(tc.role(good)); got != baseRole {
				t.Errorf("role refuses %s=%s: %s", tc.env, tc.good, got)
			}

			bad, err := load(tc.bad)
			if err == nil || !strings.Contains(err.Error(), tc.env) {
				t.Errorf("config: %s=%s gave %v, want an error naming %s", tc.env, tc.bad, err, tc.env)
			}
			if tc.setBad != nil {
				bad = base
				tc.setBad(&bad)
			}
			if got := errText(tc.role(bad)); got == baseRole {
				t.Errorf("role accepts %s=%s", tc.env, tc.bad)
			}
		})
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
