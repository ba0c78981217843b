package rdap

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/domainguard/domainguard/internal/fakerdap"
	"github.com/domainguard/domainguard/lifecycle"
)

// Air-gapped: a bootstrap seeded as a file (file:///path) is read from
// disk, never fetched, and lookups go to the servers it lists.
func TestSeededBootstrapFile(t *testing.T) {
	srv := fakerdap.New(t)
	srv.Set("lapsed.com", fakerdap.Answer{Phase: lifecycle.PhasePendingDelete})
	c, err := New(Config{BootstrapURL: fakerdap.WriteBootstrapFile(t, srv.URL(), "com"), HTTPClient: srv.Client(), CacheDir: t.TempDir()})
	if err != nil {
		t.Fatalf("New with a file:// bootstrap: %v", err)
	}
	obs, err := c.Lookup(context.Background(), "lapsed.com", nil)
	if err != nil {
		t.Fatalf("lookup through the seeded bootstrap: %v", err)
	}
	if obs.Phase != lifecycle.PhasePendingDelete {
		t.Errorf("phase %s, want pending_delete", obs.Phase)
	}
	if srv.BootstrapFetches() != 0 {
		t.Errorf("the bootstrap was fetched %d times over HTTP", srv.BootstrapFetches())
	}

	if _, err := New(Config{BootstrapURL: "file://"}); err == nil || !strings.Contains(err.Error(), "no file path") {
		t.Errorf("file:// without a path: %v", err)
	}
	missing, err := New(Config{BootstrapURL: "file://" + filepath.Join(t.TempDir(), "absent.json"), CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := missing.Lookup(context.Background(), "lapsed.com", nil); err == nil || !strings.Contains(err.Error(), "absent.json") {
		t.Errorf("missing seeded file: %v, want an error naming it", err)
	}
}
