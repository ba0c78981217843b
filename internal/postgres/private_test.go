package postgres

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestFindServerBinaries(t *testing.T) {
	root := t.TempDir()
	mk := func(dir string, names ...string) {
		t.Helper()
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			if err := os.WriteFile(filepath.Join(dir, n), []byte("#!/bin/sh\n"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	versions := filepath.Join(root, "lib")
	mk(filepath.Join(versions, "9.6", "bin"), "initdb", "pg_ctl", "postgres")
	mk(filepath.Join(versions, "15", "bin"), "initdb", "pg_ctl", "postgres")
	mk(filepath.Join(versions, "16", "bin"), "initdb") // incomplete: skipped
	mk(filepath.Join(versions, "notaversion", "bin"), "initdb", "pg_ctl", "postgres")
	onPath := filepath.Join(root, "path")
	mk(onPath, "initdb", "pg_ctl", "postgres")

	for _, tc := range []struct {
		name, path, root, want string
	}{
		{"PATH first", "/nonexistent" + string(os.PathListSeparator) + onPath, versions, onPath},
		{"highest complete version", "/nonexistent", versions, filepath.Join(versions, "15", "bin")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := findServerBinaries(tc.path, tc.root)
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	_, err := findServerBinaries("/nonexistent", filepath.Join(root, "none"))
	if !errors.Is(err, ErrNoServerBinaries) || !strings.Contains(err.Error(), "DATABASE_URL") || !strings.Contains(err.Error(), "apt-get install postgresql") {
		t.Fatalf("missing binaries error = %v; want ErrNoServerBinaries telling what to install or set", err)
	}
}

func TestStartPrivateStopRestart(t *testing.T) {
	if _, err := FindServerBinaries(); err != nil {
		t.Skipf("no PostgreSQL server programs here: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dataDir := privateTempDir(t)

	p, err := StartPrivate(ctx, dataDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop(context.Background()) })
	if !p.Started {
		t.Fatal("fresh cluster not reported as started by us")
	}
	if !strings.HasPrefix(p.URL, "postgres:///domainguard?") {
		t.Fatalf("URL = %q", p.URL)
	}
	pool, err := Open(ctx, p.URL, WithMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `CREATE TABLE public.kept (v text); INSERT INTO public.kept VALUES ('first run')`); err != nil {
		t.Fatal(err)
	}
	var listen string
	if err := pool.QueryRow(ctx, `SHOW listen_addresses`).Scan(&listen); err != nil || listen != "" {
		t.Fatalf("listen_addresses = %q (%v), want socket only", listen, err)
	}
	pool.Close()

	// A second StartPrivate while it runs reuses it and will not stop it.
	again, err := StartPrivate(ctx, dataDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if again.Started {
		t.Fatal("second StartPrivate claims to have started a running cluster")
	}
	if err := again.Stop(ctx); err != nil {
		t.Fatal(err)
	}

	if err := p.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, p.URL, WithMaxWait(0)); err == nil {
		t.Fatal("connected after Stop")
	}

	p2, err := StartPrivate(ctx, dataDir, nil)
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	t.Cleanup(func() { _ = p2.Stop(context.Background()) })
	pool, err = Open(ctx, p2.URL, WithMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var v string
	if err := pool.QueryRow(ctx, `SELECT v FROM public.kept`).Scan(&v); err != nil || v != "first run" {
		t.Fatalf("data from the first run: %q, %v", v, err)
	}
}

// privateTempDir is a short temp dir (unix socket paths are limited) that
// the postgres OS user can reach when the test runs as root.
func privateTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "dgpg")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return filepath.Join(dir, "data")
}
