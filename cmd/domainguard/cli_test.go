package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/domainguard/domainguard/internal/broker"
	"github.com/domainguard/domainguard/internal/testbin"
	"github.com/domainguard/domainguard/internal/testdb"
	"github.com/domainguard/domainguard/internal/testnats"
)

// `import` reports what it read, imported and rejected, and exits 1 when
// any row was bad (the good rows are in).
func TestImportBadRowsExitNonZero(t *testing.T) {
	testbin.Path(t) // build before the timeouts below start
	pool, dbURL := testdb.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	file := filepath.Join(t.TempDir(), "users.csv")
	if err := os.WriteFile(file, []byte("user_id,email,verified_at\nu1,ada@example.org,2025-01-02T03:04:05Z\nu2,not-an-address,2025-01-02T03:04:05Z\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := testbin.Run(ctx, t, []string{"DATABASE_URL=" + dbURL, "DOMAINGUARD_METRICS_ADDR=off"}, "import", file)
	if err == nil {
		t.Fatalf("import with a bad row exited 0:\n%s", out)
	}
	if !strings.Contains(out, "imported 1, bad 1") || !strings.Contains(out, "read 2 rows") {
		t.Errorf("import summary does not say read 2, imported 1, bad 1:\n%s", out)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM emails`).Scan(&n); err != nil || n != 1 {
		t.Errorf("emails holds %d rows (%v), want the good one", n, err)
	}
}

// Empty lists print [] in JSON, not null; sweep's progress says "sweep:"
// once; a bogus --status is a usage error (exit 2) before any connection.
func TestOperatorOutputShapes(t *testing.T) {
	testbin.Path(t) // build before the timeouts below start
	pool, dbURL := testdb.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// The streams under a prefix of the test's own, deleted at cleanup;
	// file storage, as the binary's topology has.
	_, _, topo := testnats.SharedWith(t, func(tp *broker.Topology) { tp.Storage = jetstream.FileStorage })
	env := []string{"DATABASE_URL=" + dbURL, "DOMAINGUARD_METRICS_ADDR=off",
		"NATS_URL=" + testnats.URL(), "DOMAINGUARD_SUBJECT_PREFIX=" + topo.Namespace.Prefix}
	if _, err := pool.Exec(ctx, `INSERT INTO domains (name, next_check_at) VALUES ('due.example', now() - interval '1 minute')`); err != nil {
		t.Fatal(err)
	}
	out, err := testbin.Run(ctx, t, env, "holds", "list", "--json")
	if err != nil || strings.TrimSpace(stdoutJSON(out)) != "[]" {
		t.Errorf("holds list --json with no holds: %v\n%s", err, out)
	}
	out, err = testbin.Run(ctx, t, env, "sweep")
	if err != nil {
		t.Fatalf("sweep: %v\n%s", err, out)
	}
	if !strings.Contains(out, "sweep: ") || strings.Contains(out, "sweep: sweep:") {
		t.Errorf("sweep progress repeats its prefix:\n%s", out)
	}
	var stderr strings.Builder
	code := runMain(ctx, invocation{args: []string{"holds", "list", "--status", "bogus"}, stdout: &stderr, stderr: &stderr,
		getenv: func(string) string { return "" }})
	if code != 2 || !strings.Contains(stderr.String(), "bogus") {
		t.Errorf("holds list --status bogus: exit %d, %s; want 2 naming the value", code, stderr.String())
	}
}
