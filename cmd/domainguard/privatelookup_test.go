package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
	if err == nil {
		t.Fatalf("check of a domain whose bootstrap server is on 127.0.0.1 succeeded:\n%s", out)
	}
	for _, want := range []string{"refusing to connect", "loopback", "DOMAINGUARD_ALLOW_PRIVATE_LOOKUPS=true"} {
		if !strings.Contains(out, want) {
			t.Errorf("output does not say %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "RDAP_BOOTSTRAP_URL=file://") {
		t.Errorf("a refusal is not an offline machine, but the offline hint was printed:\n%s", out)
	}
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
