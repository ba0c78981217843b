// Package testbin builds the domainguard binary once per test process and
// runs its commands as separate OS processes, so end-to-end, deploy and
// cluster tests exercise the real binary the way compose or Kubernetes
// would: signals, exit codes, restarts.
package testbin

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// Path returns the path of a domainguard binary built from this checkout
// (with -race when the tests run with it), building it on first use.
func Path(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "domainguard-testbin-")
		if err != nil {
			buildErr = err
			return
		}
		buildPath = filepath.Join(dir, "domainguard")
		args := []string{"build", "-o", buildPath}
		if raceEnabled {
			args = append(args, "-race")
		}
		args = append(args, "github.com/domainguard/domainguard/cmd/domainguard")
		cmd := exec.Command("go", args...)
		cmd.Dir = moduleRoot()
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build domainguard: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPath
}

func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Process is one running domainguard command.
type Process struct {
	Name string
	cmd  *exec.Cmd
	log  *OutputBuffer
	done chan struct{}
	err  error
}

// Options for Start.
type Options struct {
	// Name labels the process in logs and failures (e.g. "checker-1").
	Name string
	// Env is added to a minimal environment (PATH, HOME).
	Env []string
	// Dir is the working directory; default a temp dir of the test.
	Dir string
}

// Start runs `domainguard args...`. The process is killed at test cleanup
// if it is still running, and its output is written to the test log when
// the test fails.
func Start(t testing.TB, o Options, args ...string) *Process {
	t.Helper()
	bin := Path(t)
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	if o.Name == "" {
		o.Name = strings.Join(args, " ")
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = o.Dir
	cmd.Env = append(baseEnv(), o.Env...)
	buf := &OutputBuffer{}
	cmd.Stdout, cmd.Stderr = buf, buf
	// Own process group, so a kill reaches nothing else.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", o.Name, err)
	}
	p := &Process{Name: o.Name, cmd: cmd, log: buf, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("--- output of %s (last 8 KiB) ---\n%s", p.Name, Tail(p.Output(), 8<<10))
		}
	})
	return p
}

// Run runs `domainguard args...` to completion and returns its combined
// output and error.
func Run(ctx context.Context, t testing.TB, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(ctx, Path(t), args...)
	cmd.Dir = t.TempDir()
	cmd.Env = append(baseEnv(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Pid returns the OS process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Output returns everything the process printed so far.
func (p *Process) Output() string { return p.log.String() }

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Kill sends SIGKILL (a crash) and waits for the process to end.
func (p *Process) Kill() {
	if p.Exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Stop sends SIGTERM and waits up to timeout for a clean exit, returning
// the exit error (nil for exit status 0). After the timeout it kills the
// process and reports that.
func (p *Process) Stop(timeout time.Duration) error {
	if p.Exited() {
		return p.err
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		p.Kill()
		return fmt.Errorf("%s did not exit within %s of SIGTERM", p.Name, timeout)
	}
}

// Wait waits for the process to end by itself and returns its exit error.
func (p *Process) Wait() error {
	<-p.done
	return p.err
}

// WaitOutput waits until the output contains s, the process exits, or the
// timeout passes.
func (p *Process) WaitOutput(s string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if strings.Contains(p.Output(), s) {
			return true
		}
		if p.Exited() {
			return strings.Contains(p.Output(), s)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// OutputBuffer collects a child process's output: safe for concurrent use,
// bounded (it keeps the last 4 MiB once 8 MiB have been written), for tests
// that run other processes too (nats-server, for example).
type OutputBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *OutputBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Bound memory for long runs: keep the last 4 MiB.
	if s.b.Len() > 8<<20 {
		keep := s.b.Bytes()[s.b.Len()-(4<<20):]
		var nb bytes.Buffer
		nb.Write(keep)
		s.b = nb
	}
	return s.b.Write(p)
}

// String returns what was kept.
func (s *OutputBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Tail returns the last n bytes of s.
func Tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

// noDNS is a loopback address where nothing answers DNS (the discard
// port): queries fail at once.
const noDNS = "127.0.0.1:9"

// baseEnv is the minimal environment every process starts with. Tests never
// query the machine's DNS: the resolver and every TLD's servers point at
// noDNS unless the test's own environment (which comes later and wins)
// names a fake. Lookups may reach loopback servers that only the fake
// bootstrap names (fakerdap lists 127.0.0.1 services); a test of the
// private-address guard sets DOMAINGUARD_ALLOW_PRIVATE_LOOKUPS=false.
func baseEnv() []string {
	return []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"DOMAINGUARD_DNS_RESOLVER=" + noDNS, "DOMAINGUARD_DNS_TLD_SERVERS=*=" + noDNS,
		"DOMAINGUARD_ALLOW_PRIVATE_LOOKUPS=true",
	}
}
