package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/domainguard/domainguard/internal/broker"
	"github.com/domainguard/domainguard/internal/testbin"
	"github.com/domainguard/domainguard/internal/testdb"
)

// A second shell finds the embedded NATS server of `run` through
// DATA_DIR/nats.url, with NATS_URL unset; the file goes when `run` stops.
func TestSecondShellFindsRunsNATS(t *testing.T) {
	dbURL := testdb.NewEmpty(t)
	dataDir := t.TempDir()
	env := []string{"DOMAINGUARD_DATA_DIR=" + dataDir, "DOMAINGUARD_METRICS_ADDR=off"}
	p := testbin.Start(t, testbin.Options{Name: "run", Env: append(env, "DATABASE_URL="+dbURL)}, "run")
	file := filepath.Join(dataDir, "nats.url")
	deadline := time.Now().Add(60 * time.Second)
	var url []byte
	for {
		var err error
		if url, err = os.ReadFile(file); err == nil && len(url) > 0 && strings.Contains(p.Output(), `"msg":"consuming"`) {
			break
		}
		if time.Now().After(deadline) || p.Exited() {
			t.Fatalf("run did not write %s and start consuming:\n%s", file, p.Output())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.HasPrefix(string(url), "nats://127.0.0.1:") {
		t.Fatalf("%s holds %q, want the embedded server's loopback URL", file, url)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := testbin.Run(ctx, t, env, "dlq", "list")
	if err != nil {
		t.Fatalf("dlq list in a second shell: %v\n%s", err, out)
	}
	if !strings.Contains(out, strings.TrimSpace(string(url))) {
		t.Errorf("dlq list did not connect to %s:\n%s", url, out)
	}
	if err := p.Stop(60 * time.Second); err != nil {
		t.Fatalf("run did not stop cleanly: %v", err)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Errorf("%s still exists after run stopped (err %v)", file, err)
	}
}

// A one-shot command gives up on an unreachable NATS within about 10s and
// says which URL it tried and how to set it.
func TestOneShotNATSUnreachableFailsFast(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "nats://127.0.0.1:" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close() // nothing listens there now
	testbin.Path(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := time.Now()
	out, err := testbin.Run(ctx, t, []string{"NATS_URL=" + url, "DOMAINGUARD_METRICS_ADDR=off"}, "dlq", "list")
	took := time.Since(start)
	if err == nil {
		t.Fatalf("dlq list succeeded without a NATS server:\n%s", out)
	}
	if took > 20*time.Second {
		t.Errorf("dlq list took %s to give up, want about 10s", took)
	}
	for _, want := range []string{url, "NATS_URL", "domainguard run"} {
		if !strings.Contains(out, want) {
			t.Errorf("the error does not mention %q:\n%s", want, out)
		}
	}
}

// Without NATS_URL and without a `run` in the data dir, commands try the
// default address but never create streams there: the server may belong to
// something else.
func TestUnnamedServerGetsNoTopology(t *testing.T) {
	srv, err := broker.StartEmbedded(context.Background(), broker.EmbeddedOptions{StoreDir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	old := defaultNATSURL
	defaultNATSURL = srv.URL()
	t.Cleanup(func() { defaultNATSURL = old })

	env := map[string]string{"DOMAINGUARD_DATA_DIR": t.TempDir(), "DOMAINGUARD_METRICS_ADDR": "off"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"dlq", "list"}, "do not exist"},
		{[]string{"topology"}, "refusing to create the topology"},
	} {
		// Safe for concurrent use: the NATS client's callbacks log from
		// their own goroutine.
		var stderr testbin.OutputBuffer
		code := runMain(context.Background(), invocation{args: tc.args, stdout: io.Discard, stderr: &stderr,
			getenv: func(k string) string { return env[k] }})
		if code == 0 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr:\n%s\nwant a failure mentioning %q", tc.args, code, stderr.String(), tc.want)
		}
	}
	js := connectJS(t, srv.URL())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	names := js.StreamNames(ctx)
	var got []string
	for n := range names.Name() {
		got = append(got, n)
	}
	if len(got) > 0 {
		t.Errorf("streams %v were created on a server nobody named", got)
	}
}

// connectJS connects to a test's private NATS server without
// authentication, closing the connection at cleanup.
func connectJS(t *testing.T, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}
