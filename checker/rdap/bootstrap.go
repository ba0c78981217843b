package rdap

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/domainguard/domainguard/internal/redact"
)

// Bootstrap is a parsed IANA DNS bootstrap file (RFC 9224).
type Bootstrap struct {
	// Publication is the file's publication timestamp, as written.
	Publication string
	// Services maps a TLD (lower case, no dot) to its RDAP base URL: the
	// first https URL listed, with a trailing slash. TLDs whose service
	// lists no https URL are left out.
	Services map[string]string
}

// BaseURL returns the RDAP base URL for tld, if the bootstrap has one.
func (b Bootstrap) BaseURL(tld string) (string, bool) {
	base, ok := b.Services[normalizeTLD(tld)]
	return base, ok
}

// bootstrapFile is the RFC 9224 JSON layout. Services are decoded loosely
// so that one malformed entry does not discard the whole file.
type bootstrapFile struct {
	Version     string            `json:"version"`
	Publication string            `json:"publication"`
	Services    []json.RawMessage `json:"services"`
}

// ParseBootstrap parses an IANA DNS bootstrap file. It fails when the body
// is not a bootstrap object or lists no usable service at all.
func ParseBootstrap(body []byte) (Bootstrap, error) {
	var f bootstrapFile
	if err := json.Unmarshal(body, &f); err != nil {
		return Bootstrap{}, fmt.Errorf("parse bootstrap: %w", err)
	}
	if f.Services == nil {
		return Bootstrap{}, errors.New("parse bootstrap: no services array")
	}
	b := Bootstrap{Publication: f.Publication, Services: make(map[string]string)}
	for _, raw := range f.Services {
		var entry [][]string
		if err := json.Unmarshal(raw, &entry); err != nil || len(entry) < 2 {
			continue
		}
		base := firstHTTPS(entry[1])
		if base == "" {
			continue
		}
		for _, tld := range entry[0] {
			tld = normalizeTLD(tld)
			if tld == "" {
				continue
			}
			if _, dup := b.Services[tld]; !dup {
				b.Services[tld] = base
			}
		}
	}
	if len(b.Services) == 0 {
		return Bootstrap{}, errors.New("parse bootstrap: no service with an https URL")
	}
	return b, nil
}

func firstHTTPS(urls []string) string {
	for _, u := range urls {
		u = strings.TrimSpace(u)
		if len(u) > len("https://") && strings.EqualFold(u[:len("https://")], "https://") {
			return withTrailingSlash(u)
		}
	}
	return ""
}

// bootstrapCache holds the bootstrap in memory, backed by a file in
// CacheDir, refreshed after BootstrapMaxAge. One mutex serialises loads,
// so concurrent lookups share one fetch.
type bootstrapCache struct {
	c *Client

	mu          sync.Mutex
	current     *Bootstrap
	loadedAt    time.Time // when current was fetched (or the cache file's mtime)
	lastAttempt time.Time // last failed refresh, to pace retries
}

const cacheFileName = "dns.json"

// get returns a usable bootstrap: fresh if possible, stale if a refresh
// fails, an error only when none was ever loaded.
func (bc *bootstrapCache) get(ctx context.Context) (*Bootstrap, error) {
	bc.mu.Lock()
	defer bc.mu.Unlock()
	now := bc.c.cfg.Clock.Now()
	maxAge := bc.c.cfg.BootstrapMaxAge
	if bc.current != nil && now.Sub(bc.loadedAt) < maxAge {
		return bc.current, nil
	}
	if bc.current == nil {
		if b, at, err := bc.readCache(); err == nil {
			bc.current, bc.loadedAt = b, at
			if now.Sub(at) < maxAge {
				return b, nil
			}
		} else if !errors.Is(err, os.ErrNotExist) {
			bc.c.cfg.Logger.Warn("rdap bootstrap cache unreadable", "dir", bc.c.cfg.CacheDir, "error", err)
		}
	}
	if bc.current != nil && !bc.lastAttempt.IsZero() && now.Sub(bc.lastAttempt) < bootstrapRetryDelay {
		return bc.current, nil // stale, but a refresh failed moments ago
	}
	b, body, err := bc.fetch(ctx)
	if err != nil {
		bc.lastAttempt = now
		if bc.current != nil {
			bc.c.cfg.Logger.Warn("rdap bootstrap refresh failed; using stale copy",
				"url", redact.URL(bc.c.cfg.BootstrapURL), "loaded_at", bc.loadedAt, "error", err)
			return bc.current, nil
		}
		return nil, err
	}
	bc.current, bc.loadedAt, bc.lastAttempt = b, now, time.Time{}
	bc.writeCache(body, now)
	return b, nil
}

func (bc *bootstrapCache) fetch(ctx context.Context) (*Bootstrap, []byte, error) {
	cfg := bc.c.cfg
	if path, ok := seededBootstrapPath(cfg.BootstrapURL); ok {
		body, err := readBootstrapFile(path)
		if err != nil {
			return nil, nil, fmt.Errorf("rdap bootstrap %s: %w", redact.URL(cfg.BootstrapURL), err)
		}
		b, err := ParseBootstrap(body)
		if err != nil {
			return nil, nil, fmt.Errorf("rdap bootstrap %s: %w", redact.URL(cfg.BootstrapURL), err)
		}
		return &b, body, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cfg.BootstrapURL, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("rdap bootstrap: %w", redact.Error(err))
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", cfg.UserAgent)
	resp, err := cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("rdap bootstrap: %w", redact.Error(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("rdap bootstrap %s: HTTP %d", redact.URL(cfg.BootstrapURL), resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBootstrapBytes+1))
	if err != nil {
		return nil, nil, fmt.Errorf("rdap bootstrap %s: read: %w", redact.URL(cfg.BootstrapURL), err)
	}
	if len(body) > maxBootstrapBytes {
		return nil, nil, fmt.Errorf("rdap bootstrap %s: larger than %d bytes", redact.URL(cfg.BootstrapURL), maxBootstrapBytes)
	}
	b, err := ParseBootstrap(body)
	if err != nil {
		return nil, nil, fmt.Errorf("rdap bootstrap %s: %w", redact.URL(cfg.BootstrapURL), err)
	}
	return &b, body, nil
}

// readCache loads the cached file; its modification time is when it was
// fetched (set from the client's clock on write).
func (bc *bootstrapCache) readCache() (*Bootstrap, time.Time, error) {
	dir := bc.c.cfg.CacheDir
	if dir == "" {
		return nil, time.Time{}, os.ErrNotExist
	}
	path := filepath.Join(dir, cacheFileName)
	info, err := os.Stat(path)
	if err != nil {
		return nil, time.Time{}, err
	}
	body, err := os.ReadFile(path)
	if err != nil {
		return nil, time.Time{}, err
	}
	b, err := ParseBootstrap(body)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("%s: %w", path, err)
	}
	return &b, info.ModTime(), nil
}

// writeCache stores body atomically; failures are logged, not fatal.
func (bc *bootstrapCache) writeCache(body []byte, fetchedAt time.Time) {
	dir := bc.c.cfg.CacheDir
	if dir == "" {
		return
	}
	err := func() error {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		tmp, err := os.CreateTemp(dir, cacheFileName+".*.tmp")
		if err != nil {
			return err
		}
		defer os.Remove(tmp.Name())
		if _, err := tmp.Write(body); err != nil {
			tmp.Close()
			return err
		}
		if err := tmp.Close(); err != nil {
			return err
		}
		if err := os.Chtimes(tmp.Name(), fetchedAt, fetchedAt); err != nil {
			return err
		}
		return os.Rename(tmp.Name(), filepath.Join(dir, cacheFileName))
	}()
	if err != nil {
		bc.c.cfg.Logger.Warn("rdap bootstrap cache not written", "dir", dir, "error", err)
	}
}

// loaded returns the bootstrap in memory, if any, without loading or
// refreshing it (for callers that must not block, such as RateKey).
func (bc *bootstrapCache) loaded() *Bootstrap {
	bc.mu.Lock()
	defer bc.mu.Unlock()
	return bc.current
}

// readBootstrapFile reads a seeded bootstrap file, at most
// maxBootstrapBytes.
func readBootstrapFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	body, err := io.ReadAll(io.LimitReader(f, maxBootstrapBytes+1))
	if err != nil {
		return nil, err
	}
	if len(body) > maxBootstrapBytes {
		return nil, fmt.Errorf("larger than %d bytes", maxBootstrapBytes)
	}
	return body, nil
}

// BootstrapLoaded reports whether a bootstrap is in memory, so RateKey
// answers from it (without loading anything).
func (c *Client) BootstrapLoaded() bool { return c.bootstrap.loaded() != nil }
