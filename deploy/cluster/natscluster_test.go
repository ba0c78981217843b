package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/domainguard/domainguard/internal/testbin"
)

// natsServerBin is the nats-server the cluster runs (Debian's 2.9.10 here
// and in CI); NATS_SERVER_BIN overrides it.
func natsServerBin(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("NATS_SERVER_BIN"); p != "" {
		return p
	}
	for _, p := range []string{"/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("nats-server"); err == nil {
		return p
	}
	t.Fatal("nats-server not found (set NATS_SERVER_BIN)")
	return ""
}

// operatorUser is the deploy/nats/auth.conf user every process of the test
// connects as: it may use any subject, which the test's unique subject
// prefix needs (the role users' grants are for the default namespace; the
// deploy package's test checks those).
const operatorUser, operatorPassword = "operator", "pw-operator"

// natsPasswordEnv gives every auth.conf user a password, so the file loads.
var natsPasswordEnv = []string{
	"NATS_PRODUCER_PASSWORD=pw-producer",
	"NATS_CHECKER_PASSWORD=pw-checker",
	"NATS_ENFORCER_PASSWORD=pw-enforcer",
	"NATS_HOST_APP_PASSWORD=pw-host-app",
	"NATS_NOTIFIER_PASSWORD=pw-notifier",
	"NATS_OPERATOR_PASSWORD=" + operatorPassword,
}

// natsNode is one nats-server process of the cluster.
type natsNode struct {
	name       string
	clientPort int
	routePort  int
	confPath   string
	storeDir   string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	log  *testbin.OutputBuffer
}

// natsCluster is a 3-node JetStream cluster on loopback.
type natsCluster struct {
	t     *testing.T
	bin   string
	nodes []*natsNode
}

// repoFile returns the path of a file relative to the repository root.
func repoFile(rel string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", rel)
}

// freePorts returns n distinct free loopback ports (listen on :0, close).
// Another process could take one before the server binds it; startNode
// reports that clearly.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("free port: %v", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// clusterConfig adapts deploy/nats/cluster.conf to one local node: loopback
// ports, its own store directory, routes to the three local nodes, no
// monitoring port. Every line it rewrites must exist, so a change of the
// deployment file that this adaptation no longer matches fails the test
// instead of silently testing something else.
func clusterConfig(deployConf string, clientPort, routePort int, storeDir string, routePorts []int) (string, error) {
	routes := make([]string, len(routePorts))
	for i, p := range routePorts {
		routes[i] = fmt.Sprintf("    nats://127.0.0.1:%d", p)
	}
	rewrites := []struct {
		name string
		re   *regexp.Regexp
		repl string
	}{
		{"client listen", regexp.MustCompile(`(?m)^listen:.*$`), fmt.Sprintf("listen: 127.0.0.1:%d", clientPort)},
		{"monitoring port", regexp.MustCompile(`(?m)^http:.*$`), "# http: (not needed by the test)"},
		{"store dir", regexp.MustCompile(`(?m)^(\s*)store_dir:.*$`), fmt.Sprintf("${1}store_dir: %q", storeDir)},
		{"file store limit", regexp.MustCompile(`(?m)^(\s*)max_file_store:.*$`), "${1}max_file_store: 2GB"},
		{"memory store limit", regexp.MustCompile(`(?m)^(\s*)max_memory_store:.*$`), "${1}max_memory_store: 256MB"},
		{"route listen", regexp.MustCompile(`(?m)^(\s*)listen:\s*0\.0\.0\.0:6222.*$`), fmt.Sprintf("${1}listen: 127.0.0.1:%d", routePort)},
		{"routes", regexp.MustCompile(`(?s)routes:\s*\[[^\]]*\]`), "routes: [\n" + strings.Join(routes, "\n") + "\n  ]"},
	}
	conf := deployConf
	for _, r := range rewrites {
		if !r.re.MatchString(conf) {
			return "", fmt.Errorf("deploy/nats/cluster.conf: no %s line to adapt (pattern %s)", r.name, r.re)
		}
		conf = r.re.ReplaceAllString(conf, r.repl)
	}
	if !strings.Contains(conf, "include ./auth.conf") {
		return "", errors.New("deploy/nats/cluster.conf no longer includes ./auth.conf")
	}
	return conf, nil
}

// startNATSCluster starts three nats-server processes from
// deploy/nats/cluster.conf and waits until JetStream has a meta leader.
func startNATSCluster(t *testing.T) *natsCluster {
	t.Helper()
	deployConf, err := os.ReadFile(repoFile("deploy/nats/cluster.conf"))
	if err != nil {
		t.Fatalf("read cluster config: %v", err)
	}
	auth, err := os.ReadFile(repoFile("deploy/nats/auth.conf"))
	if err != nil {
		t.Fatalf("read auth config: %v", err)
	}
	c := &natsCluster{t: t, bin: natsServerBin(t)}
	ports := freePorts(t, 6)
	routePorts := ports[3:]
	for i := range 3 {
		dir := t.TempDir()
		n := &natsNode{
			name:       fmt.Sprintf("n%d", i+1),
			clientPort: ports[i],
			routePort:  routePorts[i],
			confPath:   filepath.Join(dir, "cluster.conf"),
			storeDir:   filepath.Join(dir, "jetstream"),
		}
		conf, err := clusterConfig(string(deployConf), n.clientPort, n.routePort, n.storeDir, routePorts)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(n.confPath, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "auth.conf"), auth, 0o600); err != nil {
			t.Fatal(err)
		}
		c.nodes = append(c.nodes, n)
	}
	t.Cleanup(func() {
		for _, n := range c.nodes {
			n.kill()
			if t.Failed() {
				t.Logf("--- nats-server %s (last 4 KiB) ---\n%s", n.name, testbin.Tail(n.output(), 4<<10))
			}
		}
	})
	for _, n := range c.nodes {
		c.start(n)
	}
	for _, n := range c.nodes {
		c.waitReady(n, 30*time.Second)
	}
	c.waitJetStream(60 * time.Second)
	return c
}

func (c *natsCluster) start(n *natsNode) {
	c.t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	cmd := exec.Command(c.bin, "-c", n.confPath)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "SERVER_NAME=" + n.name}, natsPasswordEnv...)
	n.log = &testbin.OutputBuffer{}
	cmd.Stdout, cmd.Stderr = n.log, n.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("start nats-server %s: %v", n.name, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	n.cmd, n.done = cmd, done
}

// waitReady waits until the node accepts client connections.
func (c *natsCluster) waitReady(n *natsNode, timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if nc, err := nats.Connect(n.url(), nats.UserInfo(operatorUser, operatorPassword), nats.Timeout(time.Second)); err == nil {
			nc.Close()
			return
		}
		n.mu.Lock()
		done := n.done
		n.mu.Unlock()
		select {
		case <-done:
			c.t.Fatalf("nats-server %s exited:\n%s", n.name, testbin.Tail(n.output(), 4<<10))
		case <-time.After(100 * time.Millisecond):
		}
	}
	c.t.Fatalf("nats-server %s not ready within %s:\n%s", n.name, timeout, testbin.Tail(n.output(), 4<<10))
}

// waitJetStream waits until the cluster answers JetStream account info
// (a meta leader is elected).
func (c *natsCluster) waitJetStream(timeout time.Duration) {
	c.t.Helper()
	nc, js := c.connect()
	defer nc.Close()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err = js.AccountInfo(ctx)
		cancel()
		if err == nil {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	c.t.Fatalf("jetstream cluster not ready within %s: %v", timeout, err)
}

// URL is the comma-separated client URL list of all three nodes.
func (c *natsCluster) URL() string {
	urls := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		urls[i] = n.url()
	}
	return strings.Join(urls, ",")
}

// connect opens a test connection (as the operator) to any node.
func (c *natsCluster) connect() (*nats.Conn, jetstream.JetStream) {
	c.t.Helper()
	nc, err := nats.Connect(c.URL(), nats.UserInfo(operatorUser, operatorPassword),
		nats.MaxReconnects(-1), nats.ReconnectWait(200*time.Millisecond), nats.RetryOnFailedConnect(true))
	if err != nil {
		c.t.Fatalf("connect to cluster: %v", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		c.t.Fatalf("jetstream: %v", err)
	}
	return nc, js
}

// node returns the node with the server name.
func (c *natsCluster) node(name string) *natsNode {
	for _, n := range c.nodes {
		if n.name == name {
			return n
		}
	}
	return nil
}

// kill SIGKILLs a node (a crash: no lame duck, no clean leader handoff).
func (c *natsCluster) kill(n *natsNode) { n.kill() }

// restart starts a killed node again on the same ports and store.
func (c *natsCluster) restart(n *natsNode) {
	c.t.Helper()
	c.start(n)
	c.waitReady(n, 30*time.Second)
}

func (n *natsNode) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.clientPort) }

func (n *natsNode) kill() {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-done:
		return
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

// pid is the OS process id of the running server.
func (n *natsNode) pid() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return 0
	}
	return n.cmd.Process.Pid
}

func (n *natsNode) output() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.log == nil {
		return ""
	}
	return n.log.String()
}

// streamLeader returns the server name that leads the stream. Each call
// is bounded to 2s: a request sent just before the node it went to died
// gets no answer.
func streamLeader(ctx context.Context, js jetstream.JetStream, stream string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return "", err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return "", err
	}
	if info.Cluster == nil {
		return "", fmt.Errorf("stream %s has no cluster info", stream)
	}
	return info.Cluster.Leader, nil
}

// waitCurrentReplicas waits until the stream's leader sees want current
// followers (a restarted node has caught up).
func waitCurrentReplicas(ctx context.Context, t *testing.T, js jetstream.JetStream, stream string, want int) {
	t.Helper()
	var last string
	for {
		callCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		s, err := js.Stream(callCtx, stream)
		if err == nil {
			var info *jetstream.StreamInfo
			info, err = s.Info(callCtx)
			if err == nil && info.Cluster != nil {
				current := 0
				for _, r := range info.Cluster.Replicas {
					if r.Current && !r.Offline {
						current++
					}
				}
				if current >= want && info.Cluster.Leader != "" {
					cancel()
					return
				}
				last = fmt.Sprintf("leader %q, replicas %+v", info.Cluster.Leader, info.Cluster.Replicas)
			}
		}
		cancel()
		if err != nil {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			t.Fatalf("stream %s: %d current replicas not reached: %s", stream, want, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
