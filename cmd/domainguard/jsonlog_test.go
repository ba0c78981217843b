package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/domainguard/domainguard/internal/fakerdap"
	"github.com/domainguard/domainguard/internal/testbin"
	"github.com/domainguard/domainguard/internal/testdb"
	"github.com/domainguard/domainguard/schemas"
)

// Under bad input (events that are dead-lettered), every line `run` writes
// is one JSON object: dead-letter warnings, topology warnings and the
// embedded server's log go through the one configured logger.
func TestRunLogIsJSONUnderBadInput(t *testing.T) {
	rdap := fakerdap.New(t)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := rdap.WriteCACert(caFile); err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	p := testbin.Start(t, testbin.Options{Name: "run", Env: []string{
		"DATABASE_URL=" + testdb.NewEmpty(t), "DOMAINGUARD_DATA_DIR=" + dataDir, "DOMAINGUARD_METRICS_ADDR=off",
		"DOMAINGUARD_PROVIDER=rdap", "RDAP_BOOTSTRAP_URL=" + rdap.BootstrapURL(), "SSL_CERT_FILE=" + caFile,
	}}, "run")
	deadline := time.Now().Add(60 * time.Second)
	for strings.Count(p.Output(), `"msg":"consuming"`) < 3 {
		if time.Now().After(deadline) || p.Exited() {
			t.Fatalf("run did not start consuming:\n%s", p.Output())
		}
		time.Sleep(100 * time.Millisecond)
	}
	url, err := os.ReadFile(filepath.Join(dataDir, "nats.url"))
	if err != nil {
		t.Fatal(err)
	}
	js := connectJS(t, strings.TrimSpace(string(url)))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bad := []struct{ subject, body string }{
		{schemas.SubjectEmailVerified, `{"user_id":"u1","email":`},
		{schemas.SubjectEmailVerified, `{"user_id":"u1","email":"not-an-address","verified_at":"2024-01-02T03:04:05Z"}`},
		{schemas.SubjectEmailVerified, `{"user_id":"u1","email":"x@co.uk","verified_at":"2024-01-02T03:04:05Z"}`},
		{schemas.SubjectChangedPrefix + "example.com", `{"domain":"other.com"}`},
	}
	for _, b := range bad {
		if _, err := js.Publish(ctx, b.subject, []byte(b.body)); err != nil {
			t.Fatalf("publish %s: %v", b.subject, err)
		}
	}
	for {
		s, err := js.Stream(ctx, schemas.StreamDLQ)
		if err != nil {
			t.Fatal(err)
		}
		if s.CachedInfo().State.Msgs >= uint64(len(bad)) {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("only %d of %d bad events dead-lettered", s.CachedInfo().State.Msgs, len(bad))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := p.Stop(60 * time.Second); err != nil {
		t.Fatalf("run did not stop cleanly: %v", err)
	}
	out := p.Output()
	if !strings.Contains(out, "message dead-lettered") {
		t.Errorf("no dead-letter warning in the log")
	}
	for i, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		var obj map[string]any
		if err := json.Unmarshal([]byte(line), &obj); err != nil {
			t.Errorf("line %d is not JSON: %q", i+1, line)
			continue
		}
		if dup := duplicateKey(line); dup != "" {
			t.Errorf("line %d has the key %q twice: %s", i+1, dup, line)
		}
	}
}

// duplicateKey returns a top-level key that occurs twice in the JSON object
// line, or "".
func duplicateKey(line string) string {
	dec := json.NewDecoder(strings.NewReader(line))
	if _, err := dec.Token(); err != nil { // {
		return ""
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		key, _ := tok.(string)
		if seen[key] {
			return key
		}
		seen[key] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return ""
		}
	}
	return ""
}
