package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
)

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func quietFlags() *flag.FlagSet {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

func TestLoadDefaults(t *testing.T) {
	c, rest, err := Load(nil, envOf(nil), quietFlags())
	if err != nil {
		t.Fatal(err)
	}
	if len(rest) != 0 {
		t.Fatalf("rest = %v", rest)
	}
	want := Config{
		DatabaseURL:          "postgres://localhost:5432/domainguard",
		StreamReplicas:       1,
		ManageTopology:       true,
		DataDir:              "./data",
		Provider:             "auto",
		RDAPBootstrapURL:     "https://data.iana.org/rdap/dns.json",
		FastlyAPIURL:         "https://api.fastly.com",
		DomainrAPIURL:        "https://api.domainr.com",
		LookupsPerSecond:     5,
		DailyLookupBudget:    100000,
		CheckConcurrency:     8,
		RecheckInterval:      720 * time.Hour,
		SweepInterval:        time.Minute,
		CheckAckWait:         2 * time.Minute,
		EventAckWait:         time.Minute,
		MaxUnverifyPerDomain: 50,
		BreakerPct:           5,
		BreakerMinDomains:    20,
		MetricsAddr:          "127.0.0.1:9090",
		LogLevel:             "info",
		DNSEvidence:          true,
		DNSQueriesPerSecond:  20,
		UndelegatedConfirm:   24 * time.Hour,
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("defaults:\n got %+v\nwant %+v", c, want)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	if !reflect.DeepEqual(c, Defaults()) {
		t.Fatal("Load with nothing set differs from Defaults()")
	}
}

func TestWithDefaultsKeepsSetValuesAndMeaningfulZeros(t *testing.T) {
	c := Config{LookupsPerSecond: 2, Provider: "rdap"}.WithDefaults()
	if c.LookupsPerSecond != 2 || c.Provider != "rdap" {
		t.Fatalf("WithDefaults overwrote set values: %+v", c)
	}
	if c.RecheckInterval != 720*time.Hour || c.MaxUnverifyPerDomain != 50 {
		t.Fatalf("WithDefaults left zero fields: %+v", c)
	}
	// Zero means "off"/"unlimited" for these: WithDefaults keeps them.
	if c.MetricsAddr != "" || c.DailyLookupBudget != 0 || c.NATSURL != "" {
		t.Fatalf("WithDefaults changed fields whose zero has a meaning: %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestLoadEnvThenFlagsWin(t *testing.T) {
	env := envOf(map[string]string{
		"DATABASE_URL":                       "postgres://env@db:5432/dg",
		"NATS_URL":                           "nats://nats:4222",
		"DOMAINGUARD_PROVIDER":               "RDAP",
		"DOMAINGUARD_LOOKUPS_PER_SECOND":     "2.5",
		"DOMAINGUARD_DAILY_LOOKUP_BUDGET":    "unlimited",
		"DOMAINGUARD_RECHECK_INTERVAL":       "48h",
		"DOMAINGUARD_STRICT":                 "true",
		"DOMAINGUARD_PROTECTED_DOMAINS":      " Example.COM, ,corp.example. ",
		"DOMAINGUARD_RDAP_OVERRIDES":         "NO=https://rdap.norid.no/,.de=http://127.0.0.1:1/",
		"DOMAINGUARD_RDAP_CANARIES":          "GC.CA=Canada.gc.ca., com=verisign.com",
		"DOMAINGUARD_METRICS_ADDR":           "off",
		"DOMAINGUARD_BREAKER_PCT":            "7",
		"DOMAINGUARD_SUBJECT_PREFIX":         "t1",
		"DOMAINGUARD_DNS_EVIDENCE":           "false",
		"DOMAINGUARD_DNS_RESOLVER":           "192.0.2.53:53",
		"DOMAINGUARD_DNS_TLD_SERVERS":        "EU=127.0.0.1:5353, .eu=127.0.0.1:5354,*=[::1]:53",
		"DOMAINGUARD_DNS_QUERIES_PER_SECOND": "7",
		"DOMAINGUARD_UNDELEGATED_CONFIRM":    "36h",
		"DOMAINGUARD_ALLOW_PRIVATE_LOOKUPS":  "true",
	})
	fs := quietFlags()
	own := fs.Bool("json", false, "command's own flag")
	args := []string{"--json", "--lookups-per-second=9", "--strict=false", "--recheck-interval", "24h",
		"--database-url", "postgres://flag@db/dg", "--dry-run", "example.com", "--not-a-flag"}
	c, rest, err := Load(args, env, fs)
	if err != nil {
		t.Fatal(err)
	}
	if !*own {
		t.Error("command's own flag not parsed")
	}
	if strings.Join(rest, " ") != "example.com --not-a-flag" {
		t.Errorf("rest = %q", rest)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"flag wins: lookups", c.LookupsPerSecond, 9.0},
		{"flag wins: strict", c.Strict, false},
		{"flag wins: recheck", c.RecheckInterval, 24 * time.Hour},
		{"flag wins: database", c.DatabaseURL, "postgres://flag@db/dg"},
		{"database set", c.DatabaseURLSet, true},
		{"bool flag without value", c.DryRun, true},
		{"env: nats", c.NATSURL, "nats://nats:4222"},
		{"env: provider lower-cased", c.Provider, "rdap"},
		{"env: unlimited budget", c.DailyLookupBudget, 0},
		{"env: metrics off", c.MetricsAddr, ""},
		{"env: breaker", c.BreakerPct, 7.0},
		{"env: protected", c.ProtectedDomains, []string{"example.com", "corp.example"}},
		{"env: overrides", c.RDAPOverrides, map[string]string{"no": "https://rdap.norid.no/", "de": "http://127.0.0.1:1/"}},
		{"env: canaries", c.RDAPCanaries, map[string]string{"gc.ca": "canada.gc.ca", "com": "verisign.com"}},
		{"env: prefix", c.SubjectPrefix, "t1"},
		{"env: dns evidence", c.DNSEvidence, false},
		{"env: dns resolver", c.DNSResolver, "192.0.2.53:53"},
		{"env: dns tld servers", c.DNSTLDServers, map[string][]string{"eu": {"127.0.0.1:5353", "127.0.0.1:5354"}, "*": {"[::1]:53"}}},
		{"env: dns qps", c.DNSQueriesPerSecond, 7.0},
		{"env: undelegated confirm", c.UndelegatedConfirm, 36 * time.Hour},
		{"env: allow private lookups", c.AllowPrivateLookups, true},
		{"default kept", c.MaxUnverifyPerDomain, 50},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s: got %#v, want %#v", ch.name, ch.got, ch.want)
		}
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestDatabaseURLSet(t *testing.T) {
	c, _, err := Load(nil, envOf(nil), quietFlags())
	if err != nil || c.DatabaseURLSet {
		t.Fatalf("unset: DatabaseURLSet=%v err=%v", c.DatabaseURLSet, err)
	}
	c, _, err = Load(nil, envOf(map[string]string{"DATABASE_URL": DefaultDatabaseURL}), quietFlags())
	if err != nil || !c.DatabaseURLSet {
		t.Fatalf("env equal to the default still counts as set: DatabaseURLSet=%v err=%v", c.DatabaseURLSet, err)
	}
}

func TestLoadErrorsNameTheSource(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want []string
	}{
		{"env duration", map[string]string{"DOMAINGUARD_RECHECK_INTERVAL": "30d"}, nil,
			[]string{"DOMAINGUARD_RECHECK_INTERVAL", "30d", "Go duration"}},
		{"env int and float together", map[string]string{"DOMAINGUARD_MAX_UNVERIFY_PER_DOMAIN": "many", "DOMAINGUARD_BREAKER_PCT": "x"}, nil,
			[]string{"DOMAINGUARD_MAX_UNVERIFY_PER_DOMAIN", "DOMAINGUARD_BREAKER_PCT"}},
		{"env bool", map[string]string{"DOMAINGUARD_STRICT": "yes please"}, nil,
			[]string{"DOMAINGUARD_STRICT", "true or false"}},
		{"env overrides", map[string]string{"DOMAINGUARD_RDAP_OVERRIDES": "no"}, nil,
			[]string{"DOMAINGUARD_RDAP_OVERRIDES", "tld=url"}},
		{"env dns tld servers", map[string]string{"DOMAINGUARD_DNS_TLD_SERVERS": "eu=127.0.0.1"}, nil,
			[]string{"DOMAINGUARD_DNS_TLD_SERVERS", "host:port"}},
		{"env dns tld servers port", map[string]string{"DOMAINGUARD_DNS_TLD_SERVERS": "eu=127.0.0.1:99999"}, nil,
			[]string{"DOMAINGUARD_DNS_TLD_SERVERS", "1-65535"}},
		{"flag", nil, []string{"--lookups-per-second", "fast"},
			[]string{"lookups-per-second", "want a number"}},
		{"unknown flag", nil, []string{"--bogus"}, []string{"bogus"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Load(tc.args, envOf(tc.env), quietFlags())
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestHelp(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	var out bytes.Buffer
	fs.SetOutput(&out)
	_, _, err := Load([]string{"-h"}, envOf(map[string]string{"FASTLY_API_KEY": "sekrit-key"}), fs)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("err = %v, want flag.ErrHelp", err)
	}
	for _, w := range []string{"-database-url", "env DATABASE_URL", "-breaker-pct", "-log-level"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("help lacks %q", w)
		}
	}
	if strings.Contains(out.String(), "sekrit") {
		t.Error("help shows a secret")
	}
}

func TestValidate(t *testing.T) {
	ok := Defaults()
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   string // "" means valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"provider", func(c *Config) { c.Provider = "whois" }, "DOMAINGUARD_PROVIDER"},
		{"fastly needs key", func(c *Config) { c.Provider = ProviderFastly }, "FASTLY_API_KEY"},
		{"fastly with key", func(c *Config) { c.Provider = ProviderFastly; c.FastlyAPIKey = "k" }, ""},
		{"domainr needs key", func(c *Config) { c.Provider = ProviderDomainr }, "DOMAINR_RAPIDAPI_KEY"},
		{"domainr client id", func(c *Config) { c.Provider = ProviderDomainr; c.DomainrClientID = "id" }, ""},
		{"rate", func(c *Config) { c.LookupsPerSecond = -1 }, "DOMAINGUARD_LOOKUPS_PER_SECOND"},
		{"budget", func(c *Config) { c.DailyLookupBudget = -5 }, "DOMAINGUARD_DAILY_LOOKUP_BUDGET"},
		{"recheck", func(c *Config) { c.RecheckInterval = time.Minute }, "DOMAINGUARD_RECHECK_INTERVAL"},
		{"recheck 30 days", func(c *Config) { c.RecheckInterval = 720 * time.Hour }, ""},
		// Longer than deletion → release at the fastest registry: refused.
		{"recheck above 30 days", func(c *Config) { c.RecheckInterval = 721 * time.Hour }, "redemption grace period"},
		{"breaker", func(c *Config) { c.BreakerPct = 150 }, "DOMAINGUARD_BREAKER_PCT"},
		{"breaker min", func(c *Config) { c.BreakerMinDomains = -1 }, "DOMAINGUARD_BREAKER_MIN_DOMAINS"},
		{"max unverify", func(c *Config) { c.MaxUnverifyPerDomain = -1 }, "DOMAINGUARD_MAX_UNVERIFY_PER_DOMAIN"},
		{"replicas", func(c *Config) { c.StreamReplicas = 7 }, "DOMAINGUARD_STREAM_REPLICAS"},
		{"concurrency", func(c *Config) { c.CheckConcurrency = -2 }, "DOMAINGUARD_CHECK_CONCURRENCY"},
		{"metrics addr", func(c *Config) { c.MetricsAddr = "9090" }, "DOMAINGUARD_METRICS_ADDR"},
		{"metrics any interface", func(c *Config) { c.MetricsAddr = ":9090" }, ""},
		{"log level", func(c *Config) { c.LogLevel = "loud" }, "DOMAINGUARD_LOG_LEVEL"},
		{"database scheme", func(c *Config) { c.DatabaseURL = "mysql://x/y" }, "DATABASE_URL"},
		{"database keyword form", func(c *Config) { c.DatabaseURL = "host=/tmp dbname=dg" }, ""},
		{"nats scheme", func(c *Config) { c.NATSURL = "nats://a:4222,http://b:4222" }, "NATS_URL"},
		{"nats cluster", func(c *Config) { c.NATSURL = "nats://a:4222, tls://b:4222" }, ""},
		{"nats creds and user", func(c *Config) { c.NATSCreds = "/x.creds"; c.NATSUser = "u" }, "NATS_CREDS"},
		{"nats password alone", func(c *Config) { c.NATSPassword = "p" }, "NATS_PASSWORD"},
		{"subject prefix wildcard", func(c *Config) { c.SubjectPrefix = "a.>" }, "DOMAINGUARD_SUBJECT_PREFIX"},
		{"subject prefix dotted", func(c *Config) { c.SubjectPrefix = "test-1.run_2" }, ""},
		{"bootstrap url", func(c *Config) { c.RDAPBootstrapURL = "ftp://example.org/dns.json" }, "RDAP_BOOTSTRAP_URL"},
		{"protected", func(c *Config) { c.ProtectedDomains = []string{"a b"} }, "DOMAINGUARD_PROTECTED_DOMAINS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.change(&c)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error = %v, want one naming %s", err, tc.want)
			}
		})
	}
	// All problems at once.
	c := ok
	c.LookupsPerSecond, c.LogLevel = 0, "x"
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "LOOKUPS_PER_SECOND") || !strings.Contains(err.Error(), "LOG_LEVEL") {
		t.Fatalf("error = %v, want both problems", err)
	}
}

func TestCanariesRejectNamesOutsideTheirSuffix(t *testing.T) {
	for _, v := range []string{"gc.ca=canada.ca", "com", "=x.com", "uk="} {
		if _, _, err := Load(nil, envOf(map[string]string{"DOMAINGUARD_RDAP_CANARIES": v}), quietFlags()); err == nil ||
			!strings.Contains(err.Error(), "DOMAINGUARD_RDAP_CANARIES") {
			t.Errorf("%q: error = %v", v, err)
		}
	}
}

func TestRedacted(t *testing.T) {
	c := Defaults()
	c.DatabaseURL = "postgres://dg:dbpass@db:5432/dg?sslmode=disable"
	c.NATSURL = "nats://u:natspass@a:4222,nats://b:4222"
	c.NATSPassword = "natspw"
	c.NATSUser = "natsuser"
	c.FastlyAPIKey = "fastlykey"
	c.DomainrClientID = "domainrid"
	c.DomainrRapidAPIKey = "rapidkey"
	c.RDAPBootstrapURL = "https://x:bootpass@boot.example/dns.json"
	c.RDAPOverrides = map[string]string{"com": "https://rdapuser:rdappass@rdap.example/", "net": "https://nettoken@rdap.example/"}
	r := c.Redacted()
	blob, _ := json.Marshal(r)
	for _, secret := range []string{"dbpass", "natspass", "natspw", "fastlykey", "domainrid", "rapidkey", "bootpass", "rdapuser", "rdappass", "nettoken"} {
		if strings.Contains(string(blob), secret) {
			t.Errorf("Redacted shows %q: %s", secret, blob)
		}
	}
	for env, want := range map[string]string{
		"DATABASE_URL":               "postgres://REDACTED@db:5432/dg?sslmode=disable",
		"NATS_URL":                   "nats://REDACTED@a:4222,nats://b:4222",
		"DOMAINGUARD_RDAP_OVERRIDES": "com=https://REDACTED@rdap.example/,net=https://REDACTED@rdap.example/",
		"FASTLY_API_KEY":             "REDACTED",
		"NATS_USER":                  "natsuser",
		"DOMAINGUARD_PROVIDER":       "auto",
		"DOMAINGUARD_METRICS_ADDR":   "127.0.0.1:9090",
	} {
		if r[env] != want {
			t.Errorf("Redacted()[%s] = %q, want %q", env, r[env], want)
		}
	}
	// Unset secrets show as empty, so an operator can tell them from set ones.
	if r["DOMAINR_API_URL"] != DefaultDomainrAPIURL || Defaults().Redacted()["FASTLY_API_KEY"] != "" {
		t.Error("unset secret or plain value rendered wrongly")
	}
	if len(r) != len(EnvNames()) {
		t.Errorf("Redacted has %d keys, EnvNames %d", len(r), len(EnvNames()))
	}
	for _, keyword := range []string{"host=db password=kwpass dbname=dg", "host=db password = kwpass"} {
		c.DatabaseURL = keyword
		if got := c.Redacted()["DATABASE_URL"]; strings.Contains(got, "kwpass") {
			t.Errorf("keyword form leaks: %q", got)
		}
	}
}

func TestEnvNamesAndFlagNames(t *testing.T) {
	names := EnvNames()
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] {
			t.Errorf("duplicate %s", n)
		}
		seen[n] = true
	}
	// DESIGN.md §5 names must all be read.
	for _, n := range []string{"DATABASE_URL", "NATS_URL", "DOMAINGUARD_PROVIDER", "RDAP_BOOTSTRAP_URL",
		"FASTLY_API_URL", "FASTLY_API_KEY", "DOMAINR_API_URL", "DOMAINR_CLIENT_ID", "DOMAINR_RAPIDAPI_KEY",
		"DOMAINGUARD_LOOKUPS_PER_SECOND", "DOMAINGUARD_DAILY_LOOKUP_BUDGET", "DOMAINGUARD_RECHECK_INTERVAL",
		"DOMAINGUARD_METRICS_ADDR", "DOMAINGUARD_DATA_DIR", "DOMAINGUARD_STRICT",
		"DOMAINGUARD_MAX_UNVERIFY_PER_DOMAIN", "DOMAINGUARD_BREAKER_PCT", "DOMAINGUARD_SUBJECT_PREFIX"} {
		if !seen[n] {
			t.Errorf("EnvNames lacks %s", n)
		}
	}
	for env, flagName := range map[string]string{
		"DATABASE_URL":                        "database-url",
		"DOMAINGUARD_MAX_UNVERIFY_PER_DOMAIN": "max-unverify-per-domain",
		"DOMAINGUARD_RDAP_OVERRIDES":          "rdap-overrides",
		"DOMAINR_RAPIDAPI_KEY":                "domainr-rapidapi-key",
		"NOT_READ":                            "",
	} {
		if got := FlagName(env); got != flagName {
			t.Errorf("FlagName(%s) = %q, want %q", env, got, flagName)
		}
	}
}

func TestLogger(t *testing.T) {
	var buf bytes.Buffer
	c := Defaults()
	c.LogLevel = "warn"
	l := c.Logger(&buf)
	l.Info("hidden")
	l.Warn("shown", "k", "v")
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("not one JSON record: %q (%v)", buf.String(), err)
	}
	if rec["msg"] != "shown" || rec["k"] != "v" {
		t.Fatalf("record = %v", rec)
	}
}

func TestManageTopologyCanBeTurnedOff(t *testing.T) {
	c, _, err := Load(nil, envOf(map[string]string{"DOMAINGUARD_MANAGE_TOPOLOGY": "false"}), quietFlags())
	if err != nil || c.ManageTopology {
		t.Fatalf("env false: ManageTopology=%v err=%v", c.ManageTopology, err)
	}
	c, _, err = Load([]string{"--manage-topology=false"}, envOf(nil), quietFlags())
	if err != nil || c.ManageTopology {
		t.Fatalf("flag false: ManageTopology=%v err=%v", c.ManageTopology, err)
	}
}

// DOMAINGUARD_LOG_FORMAT picks text or JSON (JSON when the log is not a
// terminal); durations are written as text in both, never as nanoseconds.
func TestLogFormat(t *testing.T) {
	for _, tc := range []struct {
		format string
		want   string
	}{
		{"", `{"time":`},
		{"json", `"took":"1.5s"`},
		{"text", `took=1.5s`},
	} {
		c, _, err := Load(nil, envOf(map[string]string{"DOMAINGUARD_LOG_FORMAT": tc.format}), quietFlags())
		if err != nil {
			t.Fatal(err)
		}
		c = c.WithDefaults()
		if err := c.Validate(); err != nil {
			t.Fatalf("%q: %v", tc.format, err)
		}
		var buf bytes.Buffer
		c.Logger(&buf).Info("done", "took", 1500*time.Millisecond)
		if !strings.Contains(buf.String(), tc.want) || strings.Contains(buf.String(), "1500000000") {
			t.Errorf("format %q: %s, want it to contain %s", tc.format, buf.String(), tc.want)
		}
	}
	c := Defaults().WithDefaults()
	c.LogFormat = "xml"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "DOMAINGUARD_LOG_FORMAT") {
		t.Errorf("log format xml: %v", err)
	}
}

// RDAP_BOOTSTRAP_URL accepts a seeded file (air-gapped installations).
func TestBootstrapURLFile(t *testing.T) {
	for v, ok := range map[string]bool{"file:///etc/domainguard/dns.json": true, "file://": false, "ftp://x/dns.json": false} {
		c := Defaults().WithDefaults()
		c.RDAPBootstrapURL = v
		if err := c.Validate(); (err == nil) != ok {
			t.Errorf("RDAP_BOOTSTRAP_URL=%s: %v, want ok=%v", v, err, ok)
		}
	}
}

// TestConfigErrorsAndLogsHideCredentials: the error for a bad override and
// a log line quoting a URL never show its credentials.
func TestConfigErrorsAndLogsHideCredentials(t *testing.T) {
	env := map[string]string{"DOMAINGUARD_RDAP_OVERRIDES": "com=ftp://ovuser:ovpass@rdap.example/"}
	_, _, err := Load(nil, func(k string) string { return env[k] }, nil)
	if err == nil || strings.Contains(err.Error(), "ovpass") || strings.Contains(err.Error(), "ovuser") {
		t.Errorf("Load error = %v; want an error without the credentials", err)
	}
	var buf strings.Builder
	log := Config{LogFormat: "json"}.Logger(&buf)
	log.Error("lookup failed at https://ovuser:ovpass@rdap.example/x",
		"error", errors.New(`Get "https://ovuser:***@rdap.example/domain/a.com": refused`),
		"url", "nats://ovuser:ovpass@nats:4222")
	if s := buf.String(); strings.Contains(s, "ovpass") || strings.Contains(s, "ovuser") || !strings.Contains(s, "REDACTED") {
		t.Errorf("log line %s shows credentials", s)
	}
}
