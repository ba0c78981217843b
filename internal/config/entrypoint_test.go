package config

import (
	"strings"
	"testing"
)

// An explicitly empty or zero flag takes the default, like an unset
// variable: the commands never see an empty data directory or database URL.
func TestLoadDefaultsExplicitlyEmptyFlags(t *testing.T) {
	c, _, err := Load([]string{"--data-dir=", "--database-url=", "--provider=", "--log-level=",
		"--lookups-per-second=0", "--max-unverify-per-domain=0", "--stream-replicas=0"}, envOf(nil), quietFlags())
	if err != nil {
		t.Fatal(err)
	}
	def := Defaults()
	for _, f := range []struct {
		name      string
		got, want any
	}{
		{"data dir", c.DataDir, def.DataDir},
		{"database url", c.DatabaseURL, def.DatabaseURL},
		{"provider", c.Provider, def.Provider},
		{"log level", c.LogLevel, def.LogLevel},
		{"lookups per second", c.LookupsPerSecond, def.LookupsPerSecond},
		{"max unverify per domain", c.MaxUnverifyPerDomain, def.MaxUnverifyPerDomain},
		{"stream replicas", c.StreamReplicas, def.StreamReplicas},
	} {
		if f.got != f.want {
			t.Errorf("%s = %v, want the default %v", f.name, f.got, f.want)
		}
	}
	if !c.DatabaseURLSet {
		t.Error("--database-url= given: DatabaseURLSet is false")
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

// Every check Validate makes fires for some value that Load accepts, the
// way the commands call them (loadConfig: Load, then Validate).
func TestValidateFiresThroughLoad(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		args []string
		want string // in the error; it names the variable
	}{
		{env: map[string]string{"DATABASE_URL": "mysql://db/x"}, want: "DATABASE_URL"},
		{env: map[string]string{"NATS_URL": "nats://"}, want: "NATS_URL"},
		{env: map[string]string{"NATS_URL": "http://a:4222"}, want: "NATS_URL"},
		{env: map[string]string{"NATS_CREDS": "/x.creds", "NATS_USER": "u"}, want: "NATS_CREDS"},
		{env: map[string]string{"NATS_PASSWORD": "p"}, want: "NATS_PASSWORD"},
		{env: map[string]string{"DOMAINGUARD_SUBJECT_PREFIX": "a.>"}, want: "DOMAINGUARD_SUBJECT_PREFIX"},
		{env: map[string]string{"DOMAINGUARD_DNS_RESOLVER": "resolver"}, want: "DOMAINGUARD_DNS_RESOLVER"},
		{env: map[string]string{"DOMAINGUARD_DNS_QUERIES_PER_SECOND": "-1"}, want: "DOMAINGUARD_DNS_QUERIES_PER_SECOND"},
		{env: map[string]string{"DOMAINGUARD_UNDELEGATED_CONFIRM": "-1h"}, want: "DOMAINGUARD_UNDELEGATED_CONFIRM"},
		{env: map[string]string{"DOMAINGUARD_STREAM_REPLICAS": "-1"}, want: "DOMAINGUARD_STREAM_REPLICAS"},
		{args: []string{"--stream-replicas=6"}, want: "DOMAINGUARD_STREAM_REPLICAS"},
		{env: map[string]string{"DOMAINGUARD_PROVIDER": "whois"}, want: "DOMAINGUARD_PROVIDER"},
		{env: map[string]string{"DOMAINGUARD_PROVIDER": "fastly"}, want: "FASTLY_API_KEY"},
		{env: map[string]string{"DOMAINGUARD_PROVIDER": "domainr"}, want: "DOMAINR_RAPIDAPI_KEY"},
		{env: map[string]string{"RDAP_BOOTSTRAP_URL": "ftp://x/dns.json"}, want: "RDAP_BOOTSTRAP_URL"},
		{env: map[string]string{"FASTLY_API_URL": "file:///x"}, want: "FASTLY_API_URL"},
		{env: map[string]string{"DOMAINR_API_URL": "api.domainr.com"}, want: "DOMAINR_API_URL"},
		{env: map[string]string{"DOMAINGUARD_LOOKUPS_PER_SECOND": "-0.5"}, want: "DOMAINGUARD_LOOKUPS_PER_SECOND"},
		{env: map[string]string{"DOMAINGUARD_DAILY_LOOKUP_BUDGET": "-5"}, want: "DOMAINGUARD_DAILY_LOOKUP_BUDGET"},
		{env: map[string]string{"DOMAINGUARD_CHECK_CONCURRENCY": "1001"}, want: "DOMAINGUARD_CHECK_CONCURRENCY"},
		{env: map[string]string{"DOMAINGUARD_RECHECK_INTERVAL": "30m"}, want: "DOMAINGUARD_RECHECK_INTERVAL"},
		{env: map[string]string{"DOMAINGUARD_RECHECK_INTERVAL": "721h"}, want: "DOMAINGUARD_RECHECK_INTERVAL"},
		{env: map[string]string{"DOMAINGUARD_SWEEP_INTERVAL": "500ms"}, want: "DOMAINGUARD_SWEEP_INTERVAL"},
		{env: map[string]string{"DOMAINGUARD_CHECK_ACK_WAIT": "999ms"}, want: "DOMAINGUARD_CHECK_ACK_WAIT"},
		{env: map[string]string{"DOMAINGUARD_EVENT_ACK_WAIT": "2h"}, want: "DOMAINGUARD_EVENT_ACK_WAIT"},
		{env: map[string]string{"DOMAINGUARD_MAX_UNVERIFY_PER_DOMAIN": "-1"}, want: "DOMAINGUARD_MAX_UNVERIFY_PER_DOMAIN"},
		{env: map[string]string{"DOMAINGUARD_BREAKER_PCT": "-1"}, want: "DOMAINGUARD_BREAKER_PCT"},
		{env: map[string]string{"DOMAINGUARD_BREAKER_PCT": "101"}, want: "DOMAINGUARD_BREAKER_PCT"},
		{env: map[string]string{"DOMAINGUARD_BREAKER_MIN_DOMAINS": "-3"}, want: "DOMAINGUARD_BREAKER_MIN_DOMAINS"},
		{env: map[string]string{"DOMAINGUARD_PROTECTED_DOMAINS": "ok.example,a b.example"}, want: "DOMAINGUARD_PROTECTED_DOMAINS"},
		{env: map[string]string{"DOMAINGUARD_METRICS_ADDR": "9090"}, want: "DOMAINGUARD_METRICS_ADDR"},
		{env: map[string]string{"DOMAINGUARD_LOG_LEVEL": "loud"}, want: "DOMAINGUARD_LOG_LEVEL"},
		{env: map[string]string{"DOMAINGUARD_LOG_FORMAT": "xml"}, want: "DOMAINGUARD_LOG_FORMAT"},
	} {
		c, _, err := Load(tc.args, envOf(tc.env), quietFlags())
		if err != nil {
			t.Errorf("%v %v: Load: %v", tc.env, tc.args, err)
			continue
		}
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want+":") {
			t.Errorf("%v %v: Validate = %v, want an error naming %s", tc.env, tc.args, err, tc.want)
		}
	}
}
