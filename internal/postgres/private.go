package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// PrivateUser is the superuser (and database) name of a private cluster.
const PrivateUser = "domainguard"

// maxSocketPath is the longest unix socket path the kernel accepts
// (sun_path is 108 bytes including the terminating NUL).
const maxSocketPath = 107

// Private is a PostgreSQL cluster that domainguard runs itself for `run`
// without DATABASE_URL: data under <dataDir>/postgres, listening only on a
// unix socket in <dataDir>/pgsocket (no TCP port), trust authentication.
// It is kept between runs.
type Private struct {
	Dir       string // cluster data directory, <dataDir>/postgres
	SocketDir string // unix socket directory, <dataDir>/pgsocket
	LogFile   string // server log, <dataDir>/postgres.log
	URL       string // postgres:///domainguard?host=<SocketDir>&user=domainguard
	// Started is true when StartPrivate started the server; false when it
	// found it already running (another process's, or left by a crash) and
	// only connected. Stop stops the server only when Started is true.
	Started bool

	binDir string
	runAs  *syscall.Credential
	logger *slog.Logger
}

// ErrNoServerBinaries is returned (wrapped) by FindServerBinaries and
// StartPrivate when initdb/pg_ctl cannot be found.
var ErrNoServerBinaries = errors.New("PostgreSQL server programs (initdb, pg_ctl, postgres) not found")

// FindServerBinaries returns the directory holding initdb, pg_ctl and
// postgres: the directory of initdb on PATH (symlinks resolved), else the
// highest-versioned /usr/lib/postgresql/*/bin.
func FindServerBinaries() (binDir string, err error) {
	return findServerBinaries(os.Getenv("PATH"), "/usr/lib/postgresql")
}

func findServerBinaries(pathEnv, versionsRoot string) (string, error) {
	var candidates []string
	for _, dir := range filepath.SplitList(pathEnv) {
		if dir == "" {
			continue
		}
		initdb := filepath.Join(dir, "initdb")
		if isExecutable(initdb) {
			if real, err := filepath.EvalSymlinks(initdb); err == nil {
				candidates = append(candidates, filepath.Dir(real))
			}
			candidates = append(candidates, dir)
		}
	}
	candidates = append(candidates, versionDirs(versionsRoot)...)
	for _, dir := range candidates {
		if hasServerBinaries(dir) {
			return dir, nil
		}
	}
	return "", fmt.Errorf("%w on PATH or in %s/*/bin: install the PostgreSQL server (Debian/Ubuntu: apt-get install postgresql; Alpine: apk add postgresql) or set DATABASE_URL to an existing server", ErrNoServerBinaries, versionsRoot)
}

// versionDirs lists <root>/<version>/bin, highest version first.
func versionDirs(root string) []string {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil
	}
	type v struct {
		parts []int
		dir   string
	}
	var vs []v
	for _, e := range entries {
		var parts []int
		ok := true
		for _, p := range strings.Split(e.Name(), ".") {
			n, err := strconv.Atoi(p)
			if err != nil {
				ok = false
				break
			}
			parts = append(parts, n)
		}
		if ok {
			vs = append(vs, v{parts, filepath.Join(root, e.Name(), "bin")})
		}
	}
	sort.Slice(vs, func(i, j int) bool {
		a, b := vs[i].parts, vs[j].parts
		for k := 0; k < len(a) && k < len(b); k++ {
			if a[k] != b[k] {
				return a[k] > b[k]
			}
		}
		return len(a) > len(b)
	})
	out := make([]string, len(vs))
	for i := range vs {
		out[i] = vs[i].dir
	}
	return out
}

func hasServerBinaries(dir string) bool {
	for _, name := range []string{"initdb", "pg_ctl", "postgres"} {
		if !isExecutable(filepath.Join(dir, name)) {
			return false
		}
	}
	return true
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0
}

// StartPrivate starts (creating it on first use) the private cluster under
// dataDir and returns it once it accepts connections and its "domainguard"
// database exists. A server already running on that data directory is
// reused. PostgreSQL refuses to run as root, so when the process is root the
// server programs run as the "postgres" OS user, which then owns
// <dataDir>/postgres and must be able to reach dataDir.
func StartPrivate(ctx context.Context, dataDir string, logger *slog.Logger) (*Private, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	binDir, err := FindServerBinaries()
	if err != nil {
		return nil, fmt.Errorf("postgres: private cluster: %w", err)
	}
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		return nil, fmt.Errorf("postgres: private cluster: data dir %s: %w", dataDir, err)
	}
	p := &Private{
		Dir:       filepath.Join(abs, "postgres"),
		SocketDir: filepath.Join(abs, "pgsocket"),
		LogFile:   filepath.Join(abs, "postgres.log"),
		binDir:    binDir,
		logger:    logger,
	}
	if n := len(filepath.Join(p.SocketDir, ".s.PGSQL.5432")); n > maxSocketPath {
		return nil, fmt.Errorf("postgres: private cluster: socket path under %s is %d bytes, longer than the %d the OS allows; use a shorter DOMAINGUARD_DATA_DIR or set DATABASE_URL", p.SocketDir, n, maxSocketPath)
	}
	if strings.ContainsAny(p.SocketDir, "'\\\n") {
		return nil, fmt.Errorf("postgres: private cluster: data dir %q contains a quote, backslash or newline; use another DOMAINGUARD_DATA_DIR", abs)
	}
	q := url.Values{"host": {p.SocketDir}, "user": {PrivateUser}}
	p.URL = "postgres:///" + PrivateUser + "?" + q.Encode()

	if err := p.prepareDirs(abs); err != nil {
		return nil, fmt.Errorf("postgres: private cluster: %w", err)
	}
	if err := p.initIfMissing(ctx); err != nil {
		return nil, fmt.Errorf("postgres: private cluster: %w", err)
	}
	running, err := p.running(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres: private cluster: %w", err)
	}
	if running {
		logger.Info("reusing running private postgres", "dir", p.Dir, "socket_dir", p.SocketDir)
	} else {
		if err := p.start(ctx); err != nil {
			return nil, fmt.Errorf("postgres: private cluster: %w", err)
		}
		p.Started = true
		logger.Info("started private postgres", "dir", p.Dir, "socket_dir", p.SocketDir, "log", p.LogFile)
	}
	if _, err := EnsureDatabase(ctx, p.URL, WithMaxWait(10*time.Second)); err != nil {
		if p.Started {
			_ = p.Stop(context.WithoutCancel(ctx))
		}
		return nil, fmt.Errorf("postgres: private cluster: %w", err)
	}
	return p, nil
}

// prepareDirs creates the data, socket and log paths and, when running as
// root, hands them to the postgres OS user.
func (p *Private) prepareDirs(dataDir string) error {
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	if err := os.MkdirAll(p.SocketDir, 0o700); err != nil {
		return fmt.Errorf("create socket dir: %w", err)
	}
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return fmt.Errorf("running as root, PostgreSQL must run as another user, but there is no \"postgres\" OS user (%v); create one or set DATABASE_URL", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	p.runAs = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}

	// The data dir is ours: let the postgres user traverse it (o+x, no
	// listing), then check that it can reach it at all.
	if st, err := os.Stat(dataDir); err == nil && st.Mode().Perm()&0o001 == 0 {
		if err := os.Chmod(dataDir, st.Mode().Perm()|0o001); err != nil {
			return fmt.Errorf("make %s traversable for the postgres user: %w", dataDir, err)
		}
	}
	if blocked := firstUntraversable(dataDir, uint32(uid), uint32(gid)); blocked != "" {
		return fmt.Errorf("the postgres OS user cannot reach %s: directory %s is not searchable by it (chmod o+x %s, use another DOMAINGUARD_DATA_DIR, or set DATABASE_URL)", dataDir, blocked, blocked)
	}
	if err := os.MkdirAll(p.Dir, 0o700); err != nil {
		return fmt.Errorf("create cluster dir: %w", err)
	}
	for _, path := range []string{p.Dir, p.SocketDir} {
		if err := os.Chown(path, uid, gid); err != nil {
			return fmt.Errorf("chown %s to postgres: %w", path, err)
		}
	}
	f, err := os.OpenFile(p.LogFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o640)
	if err != nil {
		return fmt.Errorf("create log file: %w", err)
	}
	f.Close()
	if err := os.Chown(p.LogFile, uid, gid); err != nil {
		return fmt.Errorf("chown %s to postgres: %w", p.LogFile, err)
	}
	return nil
}

// firstUntraversable returns the first directory from / down to dir that
// uid/gid may not search, or "" when all are searchable.
func firstUntraversable(dir string, uid, gid uint32) string {
	var chain []string
	for d := dir; ; d = filepath.Dir(d) {
		chain = append(chain, d)
		if d == filepath.Dir(d) {
			break
		}
	}
	for i := len(chain) - 1; i >= 0; i-- {
		st, err := os.Stat(chain[i])
		if err != nil {
			return chain[i]
		}
		sys, ok := st.Sys().(*syscall.Stat_t)
		if !ok {
			continue
		}
		perm := st.Mode().Perm()
		var allowed bool
		switch {
		case sys.Uid == uid:
			allowed = perm&0o100 != 0
		case sys.Gid == gid:
			allowed = perm&0o010 != 0
		default:
			allowed = perm&0o001 != 0
		}
		if !allowed {
			return chain[i]
		}
	}
	return ""
}

func (p *Private) initIfMissing(ctx context.Context) error {
	if _, err := os.Stat(filepath.Join(p.Dir, "PG_VERSION")); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("inspect %s: %w", p.Dir, err)
	}
	p.logger.Info("initialising private postgres cluster", "dir", p.Dir)
	_, err := p.run(ctx, "initdb",
		"-D", p.Dir,
		"--auth=trust",
		"--username="+PrivateUser,
		"--encoding=UTF8",
		"--locale=C",
	)
	if err != nil {
		return fmt.Errorf("initdb %s: %w", p.Dir, err)
	}
	return nil
}

func (p *Private) running(ctx context.Context) (bool, error) {
	// pg_ctl status: exit 0 running, 3 not running, 4 no data dir.
	out, err := p.run(ctx, "pg_ctl", "status", "-D", p.Dir)
	if err == nil {
		return true, nil
	}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) && exitErr.ExitCode() == 3 {
		return false, nil
	}
	return false, fmt.Errorf("pg_ctl status: %w (%s)", err, strings.TrimSpace(out))
}

func (p *Private) start(ctx context.Context) error {
	opts := fmt.Sprintf("-c listen_addresses='' -c unix_socket_directories='%s'", p.SocketDir)
	_, err := p.run(ctx, "pg_ctl", "start",
		"-D", p.Dir,
		"-l", p.LogFile,
		"-w", "-t", "60",
		"-o", opts,
	)
	if err != nil {
		tail := logTail(p.LogFile, 2048)
		return fmt.Errorf("pg_ctl start: %w; server log %s ends:\n%s", err, p.LogFile, tail)
	}
	return nil
}

// Stop shuts the server down (fast mode: open sessions are ended) if this
// Private started it; otherwise it does nothing.
func (p *Private) Stop(ctx context.Context) error {
	if p == nil || !p.Started {
		return nil
	}
	if _, err := p.run(ctx, "pg_ctl", "stop", "-D", p.Dir, "-m", "fast", "-w", "-t", "60"); err != nil {
		return fmt.Errorf("postgres: stop private cluster %s: %w", p.Dir, err)
	}
	p.Started = false
	p.logger.Info("stopped private postgres", "dir", p.Dir)
	return nil
}

// run executes a server program from binDir (as the postgres user when
// root) and returns its combined output; a failure's error includes it.
func (p *Private) run(ctx context.Context, program string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(p.binDir, program), args...)
	cmd.Dir = "/"
	cmd.Env = append(os.Environ(), "LC_ALL=C", "LANG=C")
	if p.runAs != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.runAs}
	}
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("%s: %w: %s", program, err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

func logTail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return "(unreadable: " + err.Error() + ")"
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "(unreadable: " + err.Error() + ")"
	}
	off := st.Size() - n
	if off < 0 {
		off = 0
	}
	buf := make([]byte, st.Size()-off)
	_, _ = f.ReadAt(buf, off)
	return string(buf)
}
