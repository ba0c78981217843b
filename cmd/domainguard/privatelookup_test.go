package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/domainguard/domainguard/internal/fakedns"
	"github.com/domainguard/domainguard/internal/fakerdap"
	"github.com/domainguard/domainguard/internal/testbin"
)

// Through the binary: a bootstrap entry on 127.0.0.1 is refused unless
// DOMAINGUARD_ALLOW_PRIVATE_LOOKUPS=true; the same server named in
// DOMAINGUARD_RDAP_OVERRIDES is reached.
func TestPrivateLookupsRefusedByTheBinary(t *testing.T) {
	rdap := fakerdap.New(t)
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := rdap.WriteCACert(ca); err != nil {
		t.Fatal(err)
	}
	// A seeded bootstrap (not served by the fake, whose own address the
	// operator would have named) listing the fake for .com.
	bootstrap := fakerdap.WriteBootstrapFile(t, rdap.URL(), "com")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	env := []string{"RDAP_BOOTSTRAP_URL=" + bootstrap, "SSL_CERT_FILE=" + ca, "DOMAINGUARD_PROVIDER=rdap",
		"DOMAINGUARD_DATA_DIR=" + t.TempDir(), "DOMAINGUARD_METRICS_ADDR=off"}

	out, err := testbin.Run(ctx, t, append(env, "DOMAINGUARD_ALLOW_PRIVATE_LOOKUPS=false"), "check", "internal.com")
	assertRefused(t, out, err, "refusing to connect")
	if n := rdap.Lookups("internal.com"); n != 0 {
		t.Fatalf("%d requests reached the refused server", n)
	}

	out, err = testbin.Run(ctx, t, append(env, "DOMAINGUARD_ALLOW_PRIVATE_LOOKUPS=true"), "check", "internal.com")
	if err != nil || !strings.Contains(out, "active") {
		t.Fatalf("check with private lookups allowed: %v\n%s", err, out)
	}
	out, err = testbin.Run(ctx, t, append(env, "DOMAINGUARD_ALLOW_PRIVATE_LOOKUPS=false", "DOMAINGUARD_RDAP_OVERRIDES=com="+rdap.URL()),
		"check", "internal.com")
	if err != nil || !strings.Contains(out, "active") {
		t.Fatalf("check with the server named in DOMAINGUARD_RDAP_OVERRIDES: %v\n%s", err, out)
	}
	if n := rdap.Lookups("internal.com"); n != 2 {
		t.Errorf("%d requests reached the server, want 2 (allowed, then named)", n)
	}
}

// Through the binary: DNS evidence for a name under a private suffix
// (alice.github.io, checked by the DNS alone) meets a referral to
// github.io whose glue is 127.0.0.1. With the switch off the client never
// queries it and check reports the refusal, never "not delegated". (The
// switch on would send the query to 127.0.0.1:53, the machine's own port:
// the dnsevidence tests cover that half with fake servers.)
func TestDNSGlueAtPrivateAddressRefusedByTheBinary(t *testing.T) {
	dns := fakedns.Start(t)
	dns.Cut("github.io", map[string][]string{"ns1.github.io": {"127.0.0.1"}})
	rdap := fakerdap.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	env := []string{"RDAP_BOOTSTRAP_URL=" + fakerdap.WriteBootstrapFile(t, rdap.URL(), "com"), "DOMAINGUARD_PROVIDER=auto",
		"DOMAINGUARD_DNS_EVIDENCE=true", "DOMAINGUARD_DNS_RESOLVER=" + dns.Addr(), "DOMAINGUARD_DNS_TLD_SERVERS=*=" + dns.Addr(),
		"DOMAINGUARD_DATA_DIR=" + t.TempDir(), "DOMAINGUARD_METRICS_ADDR=off", "DOMAINGUARD_ALLOW_PRIVATE_LOOKUPS=false"}
	out, err := testbin.Run(ctx, t, env, "check", "alice.github.io")
	assertRefused(t, out, err, "refusing to connect to 127.0.0.1:53")
	if dns.Queries("alice.github.io") == 0 {
		t.Errorf("the TLD server was never asked:\n%s", out)
	}
}

// assertRefused fails unless check failed with a refusal of a loopback
// address that says what was refused (want) and names the switch, without
// the offline hint (a refusal is not an offline machine).
func assertRefused(t *testing.T, out string, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("check of a domain whose server is on 127.0.0.1 succeeded:\n%s", out)
	}
	for _, w := range []string{want, "loopback", "DOMAINGUARD_ALLOW_PRIVATE_LOOKUPS=true"} {
		if !strings.Contains(out, w) {
			t.Errorf("output does not say %q:\n%s", w, out)
		}
	}
	if strings.Contains(out, "RDAP_BOOTSTRAP_URL=file://") {
		t.Errorf("the offline hint was printed:\n%s", out)
	}
}
