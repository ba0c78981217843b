// Package testnats gives tests a real JetStream server with domainguard's
// topology ensured: Shared uses the system server under a unique namespace,
// Embedded starts a fresh in-process server. Both clean up after the test.
package testnats

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/domainguard/domainguard/internal/broker"
	"github.com/domainguard/domainguard/schemas"
)

// EnvURL names the environment variable with the system server's URL.
const EnvURL = "DOMAINGUARD_TEST_NATS_URL"

// DefaultURL is the system server used when EnvURL is unset.
const DefaultURL = "nats://127.0.0.1:4222"

// setupTimeout bounds connecting and ensuring the topology.
const setupTimeout = 20 * time.Second

// Shared connects to the system server and ensures a topology under a
// unique namespace (so parallel tests and packages never see each other's
// messages), in memory storage. Its streams are deleted in Cleanup.
func Shared(t testing.TB) (jetstream.JetStream, *nats.Conn, broker.Topology) {
	return SharedWith(t, nil)
}

// SharedWith is Shared with the topology adjusted by adjust before it is
// ensured (short ack waits, for example).
func SharedWith(t testing.TB, adjust func(*broker.Topology)) (jetstream.JetStream, *nats.Conn, broker.Topology) {
	t.Helper()
	url := os.Getenv(EnvURL)
	if url == "" {
		url = DefaultURL
	}
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	nc, js, err := broker.Connect(ctx, broker.ConnectOptions{URL: url, Name: "test " + t.Name(), Logger: Logger(t)})
	if err != nil {
		t.Fatalf("testnats: connect to the system NATS server (set %s): %v", EnvURL, err)
	}
	sweepStale.Do(func() { deleteStaleStreams(ctx, js) })
	topo := broker.Topology{
		Namespace: schemas.Namespace{Prefix: UniquePrefix()},
		Storage:   jetstream.MemoryStorage,
		Logger:    Logger(t),
	}
	if adjust != nil {
		adjust(&topo)
	}
	t.Cleanup(func() {
		deleteStreams(t, js, topo)
		nc.Close()
	})
	if err := topo.Ensure(ctx, js); err != nil {
		t.Fatalf("testnats: ensure topology: %v", err)
	}
	return js, nc, topo
}

// Embedded starts a fresh JetStream server in t.TempDir() on a random
// loopback port, connects and ensures the (unprefixed, file storage)
// topology. The server is shut down in Cleanup.
func Embedded(t testing.TB) (*broker.Embedded, jetstream.JetStream, *nats.Conn, broker.Topology) {
	return EmbeddedWith(t, nil)
}

// EmbeddedWith is Embedded with the topology adjusted by adjust before it is
// ensured.
func EmbeddedWith(t testing.TB, adjust func(*broker.Topology)) (*broker.Embedded, jetstream.JetStream, *nats.Conn, broker.Topology) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	srv, err := broker.StartEmbedded(ctx, broker.EmbeddedOptions{StoreDir: t.TempDir(), Logger: Logger(t)})
	if err != nil {
		t.Fatalf("testnats: start embedded server: %v", err)
	}
	t.Cleanup(srv.Shutdown)
	nc, js, err := broker.Connect(ctx, broker.ConnectOptions{URL: srv.URL(), Name: "test " + t.Name(), Logger: Logger(t)})
	if err != nil {
		t.Fatalf("testnats: connect to embedded server: %v", err)
	}
	t.Cleanup(nc.Close) // runs before Shutdown
	topo := broker.Topology{Logger: Logger(t)}
	if adjust != nil {
		adjust(&topo)
	}
	if err := topo.Ensure(ctx, js); err != nil {
		t.Fatalf("testnats: ensure topology: %v", err)
	}
	return srv, js, nc, topo
}

// ProcessPrefix returns a fresh namespace prefix for processes a test
// starts against the system server (DOMAINGUARD_SUBJECT_PREFIX): they
// create the streams, the test deletes them when it ends, so a passing run
// leaves nothing behind on the shared server.
func ProcessPrefix(t testing.TB) string {
	t.Helper()
	prefix := UniquePrefix()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		nc, js, err := broker.Connect(ctx, broker.ConnectOptions{URL: URL(), Name: "test cleanup " + t.Name()})
		if err != nil {
			t.Errorf("testnats: connect to delete the streams of %s: %v", prefix, err)
			return
		}
		defer nc.Close()
		deleteStreams(t, js, broker.Topology{Namespace: schemas.Namespace{Prefix: prefix}})
	})
	return prefix
}

// deleteStreams deletes the streams of topo's namespace, those that exist.
func deleteStreams(t testing.TB, js jetstream.JetStream, topo broker.Topology) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, s := range topo.Streams() {
		if err := js.DeleteStream(ctx, s.Name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Errorf("testnats: delete stream %s: %v", s.Name, err)
		}
	}
}

// UniquePrefix returns a fresh namespace prefix, "t" and 12 hex digits.
func UniquePrefix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "t" + hex.EncodeToString(b[:])
}

// Logger returns a logger writing warnings and errors to the test log. It
// goes quiet when the test's cleanup ends, so goroutines that outlive the
// test (connection handlers, a server shutting down) cannot log into a
// finished test.
func Logger(t testing.TB) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct {
	t    testing.TB
	mu   sync.Mutex
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

// URL is the system server's URL (EnvURL, else DefaultURL), for tests that
// start binaries against the shared server.
func URL() string {
	if u := os.Getenv(EnvURL); u != "" {
		return u
	}
	return DefaultURL
}

var sweepStale sync.Once

// staleStream matches the streams of UniquePrefix namespaces ("T" and 12
// hex digits, upper-cased by schemas.Namespace.Stream).
var staleStream = regexp.MustCompile(`^T[0-9A-F]{12}_`)

// deleteStaleStreams removes test streams older than an hour from the shared
// server: a test process killed before its cleanup (a CI timeout, a
// developer's Ctrl-C) leaves them behind, and memory streams would pile up
// until the server restarts.
func deleteStaleStreams(ctx context.Context, js jetstream.JetStream) {
	lister := js.ListStreams(ctx)
	var stale []string
	for info := range lister.Info() {
		if staleStream.MatchString(info.Config.Name) && time.Since(info.Created) > time.Hour {
			stale = append(stale, info.Config.Name)
		}
	}
	for _, name := range stale {
		_ = js.DeleteStream(ctx, name)
	}
}

// StreamMsgs returns how many messages the stream (full name) holds.
func StreamMsgs(t testing.TB, js jetstream.JetStream, name string) uint64 {
	t.Helper()
	return StreamInfo(t, js, name).State.Msgs
}

// StreamInfo returns the stream's (full name) configuration and state as
// the server has them now.
func StreamInfo(t testing.TB, js jetstream.JetStream, name string) *jetstream.StreamInfo {
	t.Helper()
	s, err := js.Stream(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info
}
