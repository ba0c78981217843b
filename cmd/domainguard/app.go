package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/domainguard/domainguard/internal/broker"
	"github.com/domainguard/domainguard/internal/buildinfo"
	"github.com/domainguard/domainguard/internal/config"
	"github.com/domainguard/domainguard/internal/postgres"
	"github.com/domainguard/domainguard/internal/redact"
	"github.com/domainguard/domainguard/internal/telemetry"
	"github.com/domainguard/domainguard/schemas"
)

// needs says which connections a command wants from openApp.
type needs struct {
	db   bool // a PostgreSQL pool
	nats bool // a NATS connection with the topology ensured
	// embedded lets the command start an embedded NATS server and a private
	// PostgreSQL cluster when nothing is configured (only `run`).
	embedded bool
	// migrate applies the embedded migrations (and creates the database).
	migrate bool
	// metrics serves /metrics, /healthz and /readyz.
	metrics bool
	// metricsOptional lets the command run without its metrics server
	// when the default address is taken: the console and the API, which
	// the quick start runs beside `run` on one machine. A role must not:
	// its health check would probe the other process.
	metricsOptional bool
	// serve marks a long-running command (a role): it waits for NATS as
	// long as it takes (an orchestrator may start it first). Other
	// commands give up after natsConnectTimeout.
	serve bool
	// createTopology marks the `topology` command: it creates the streams
	// and consumers, and refuses to on a server nobody named.
	createTopology bool
	// streams, when set, limits the topology check to these (unprefixed)
	// streams and never creates anything: for clients of one stream, such
	// as the reference notifier on AUDIT.
	streams []string
}

// natsConnectTimeout bounds how long a one-shot command waits for NATS.
const natsConnectTimeout = 10 * time.Second

// natsURLFile is the file under the data dir where `run` writes the URL of
// its embedded NATS server, so other commands find it when NATS_URL is unset.
const natsURLFile = "nats.url"

// app holds what a command wired up; close releases it in reverse order.
type app struct {
	cfg  config.Config
	log  *slog.Logger
	pool *pgxpool.Pool
	nc   *nats.Conn
	js   jetstream.JetStream
	topo broker.Topology
	reg  *prometheus.Registry

	// ctx is openApp's context, cancelled with the denial as its cause
	// when the NATS server denies this user a publish or subscribe: a
	// denied request would otherwise wait for its timeout. Roles run
	// under it, so a wrong permission stops the process at once.
	ctx    context.Context
	cancel context.CancelCauseFunc

	closers []func()
}

// errNATSDenied marks the cause of app.ctx when NATS denied a publish or
// subscribe.
var errNATSDenied = errors.New("nats denied a publish or subscribe")

// loadConfig parses the configuration flags (plus the command's own, already
// defined on fs) and returns the config, the remaining arguments and a logger.
func loadConfig(inv invocation, fs *flag.FlagSet) (config.Config, []string, *slog.Logger, error) {
	fs.SetOutput(inv.stderr)
	own := map[string]bool{} // the command's own flags, defined before the settings
	fs.VisitAll(func(f *flag.Flag) { own[f.Name] = true })
	fs.Usage = func() { printCommandHelp(fs.Output(), fs, own) }
	cfg, rest, err := config.Load(flagsFirst(inv.args, fs), inv.getenv, fs)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, nil, nil, err
		}
		return cfg, nil, nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, nil, nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	log := cfg.Logger(inv.stderr)
	// One logger everywhere: whatever logs through slog.Default() or the
	// standard log package (libraries, a part not handed a logger) writes
	// the same format to the same place.
	slog.SetDefault(log)
	return cfg, rest, log, nil
}

// flagsFirst moves flags ahead of positional arguments, so that
// `domainguard dlq list --json` works like `domainguard dlq --json list`
// (the flag package stops at the first positional argument). fs holds the
// command's own flags; the configuration flags are learnt from a scratch
// Load. Everything after "--" stays positional.
func flagsFirst(args []string, fs *flag.FlagSet) []string {
	scratch := flag.NewFlagSet("scratch", flag.ContinueOnError)
	scratch.SetOutput(io.Discard)
	_, _, _ = config.Load(nil, nil, scratch)
	lookup := func(name string) *flag.Flag {
		if f := fs.Lookup(name); f != nil {
			return f
		}
		return scratch.Lookup(name)
	}
	var flags, positional []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			positional = append(positional, args[i:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			positional = append(positional, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		f := lookup(name)
		if f == nil {
			continue // unknown: let the parser report it
		}
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
			continue
		}
		if i+1 < len(args) {
			i++
			flags = append(flags, args[i])
		}
	}
	if len(positional) > 0 && positional[0] != "--" {
		positional = append([]string{"--"}, positional...)
	}
	return append(flags, positional...)
}

func openApp(ctx context.Context, cfg config.Config, log *slog.Logger, n needs) (_ *app, err error) {
	a := &app{cfg: cfg, log: log, reg: telemetry.NewRegistry()}
	if err := buildinfo.Register(a.reg, buildinfo.Get()); err != nil {
		return nil, err
	}
	a.ctx, a.cancel = context.WithCancelCause(ctx)
	a.closers = append(a.closers, func() { a.cancel(nil) })
	defer func() {
		if err != nil {
			a.close()
		}
	}()
	a.topo = topologyConfig(cfg, log)
	if err := a.topo.Validate(); err != nil {
		return nil, err
	}
	if n.db {
		if err := a.openDB(ctx, n); err != nil {
			return nil, err
		}
	}
	if n.nats {
		if err := a.openNATS(a.ctx, n); err != nil {
			if cause := a.denied(); cause != nil {
				return nil, cause
			}
			return nil, err
		}
	}
	if n.metrics && cfg.MetricsAddr != "" {
		srv, err := telemetry.Serve(ctx, cfg.MetricsAddr, a.reg, a.ready, log)
		switch {
		case err == nil:
			log.Info("serving metrics and health", "addr", srv.Addr())
		case errors.Is(err, syscall.EADDRINUSE) && n.metricsOptional && !cfg.MetricsAddrSet:
			// The default address is taken, most likely by `run` on
			// this machine (the README's quick start): nobody asked for
			// this console's or API's metrics, so it is not worth failing.
			log.Warn("metrics and health not served: the default address is in use; set DOMAINGUARD_METRICS_ADDR to serve them",
				"addr", cfg.MetricsAddr, "error", err)
		default:
			return nil, fmt.Errorf("metrics server: %w", err)
		}
	}
	return a, nil
}

func (a *app) openDB(ctx context.Context, n needs) error {
	dbURL := a.cfg.DatabaseURL
	// Nothing answers at the default address: a private cluster under the
	// data dir gives a newcomer a working pipeline from one command (`run`
	// creates it; the other commands use the one `run` created).
	_, statErr := os.Stat(filepath.Join(a.cfg.DataDir, "postgres"))
	if (n.embedded || statErr == nil) && !a.cfg.DatabaseURLSet && !reachable(dbURL) {
		a.log.Info("no PostgreSQL at the default address; using a private cluster", "data_dir", a.cfg.DataDir)
		priv, err := postgres.StartPrivate(ctx, a.cfg.DataDir, a.log)
		if err != nil {
			return fmt.Errorf("%w\nset DATABASE_URL to a PostgreSQL server, or install PostgreSQL's server programs (Debian: apt install postgresql) so domainguard can start a private one", err)
		}
		a.closers = append(a.closers, func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := priv.Stop(ctx); err != nil {
				a.log.Warn("stop private postgres", "error", err)
			}
		})
		dbURL = priv.URL
	}
	if n.migrate {
		created, err := postgres.EnsureDatabase(ctx, dbURL)
		if err != nil {
			return err
		}
		if created {
			a.log.Info("created database", "url", redact.ConnString(dbURL))
		}
	}
	pool, err := postgres.Open(ctx, dbURL)
	if err != nil {
		return err
	}
	a.pool = pool
	a.closers = append(a.closers, pool.Close)
	if n.migrate {
		applied, err := postgres.Migrate(ctx, pool, schemas.Migrations)
		if err != nil {
			return err
		}
		a.log.Info("database migrated", "applied", applied)
	}
	return nil
}

func (a *app) openNATS(ctx context.Context, n needs) error {
	natsURL, named, err := a.natsURL(ctx, n)
	if err != nil {
		return err
	}
	inbox := ""
	if a.cfg.NATSUser != "" {
		// deploy/nats gives each role user its own inbox prefix, so one
		// role cannot read another's replies.
		inbox = "_INBOX_" + a.cfg.NATSUser
	}
	connectCtx := ctx
	if !n.serve {
		var cancel context.CancelFunc
		connectCtx, cancel = context.WithTimeout(ctx, natsConnectTimeout)
		defer cancel()
	}
	nc, js, err := broker.Connect(connectCtx, broker.ConnectOptions{
		URL: natsURL, Name: "domainguard", User: a.cfg.NATSUser, Password: a.cfg.NATSPassword,
		CredsFile: a.cfg.NATSCreds, InboxPrefix: inbox, Logger: a.log,
		OnPermissionDenied: func(err error) {
			a.cancel(fmt.Errorf("%w: %v (NATS user %q; see deploy/nats/auth.conf)", errNATSDenied, err, a.cfg.NATSUser))
		},
	})
	if err != nil {
		if ctx.Err() == nil && connectCtx.Err() != nil {
			return fmt.Errorf("no NATS server answered at %s within %s (%v)\n%s", redact.List(natsURL), natsConnectTimeout, err, natsHint)
		}
		return err
	}
	a.nc, a.js = nc, js
	// Drain so in-flight publishes and acks complete before the socket closes.
	a.closers = append(a.closers, func() {
		if err := nc.Drain(); err != nil {
			nc.Close()
		}
	})
	ctxEnsure, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	switch {
	case n.createTopology && !named:
		return fmt.Errorf("refusing to create the topology on %s, which nobody named: set NATS_URL (--nats-url) to the server to create it on", redact.List(natsURL))
	case len(n.streams) > 0:
		a.topo.VerifyOnly = true
		if err := a.topo.Verify(ctxEnsure, js, n.streams...); err != nil {
			return fmt.Errorf("jetstream topology: %w", err)
		}
		return nil
	case n.createTopology:
	case !named:
		// Never create streams on a server the user did not name (it may
		// belong to something else): only look.
		a.topo.VerifyOnly = true
	case !a.cfg.ManageTopology && !n.embedded:
		// Least privilege: the topology is the operator's (`domainguard
		// topology`); this user may only look, here and in the roles.
		a.topo.VerifyOnly = true
	}
	if err := a.topo.Prepare(ctxEnsure, js); err != nil {
		return fmt.Errorf("jetstream topology on %s: %w", redact.List(natsURL), err)
	}
	return nil
}

// natsHint says how a command finds NATS when the one it tried is not there.
const natsHint = "start one with `domainguard run` in another shell (it writes DOMAINGUARD_DATA_DIR/nats.url, which the other commands read from the same directory), or set NATS_URL (--nats-url) to your server"

// natsURL picks the NATS server: NATS_URL when set; else the embedded
// server `run` starts (and announces in DATA_DIR/nats.url); else the URL a
// running `run` wrote there; else the default local address. named reports
// whether the user chose the server (only then may the topology be created).
func (a *app) natsURL(ctx context.Context, n needs) (url string, named bool, err error) {
	if a.cfg.NATSURL != "" {
		return a.cfg.NATSURL, true, nil
	}
	file := filepath.Join(a.cfg.DataDir, natsURLFile)
	if n.embedded {
		dir := filepath.Join(a.cfg.DataDir, "nats")
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return "", false, fmt.Errorf("embedded nats: %w", err)
		}
		srv, err := broker.StartEmbedded(ctx, broker.EmbeddedOptions{StoreDir: dir, Logger: a.log})
		if err != nil {
			return "", false, err
		}
		a.closers = append(a.closers, srv.Shutdown)
		url := srv.URL()
		if err := os.WriteFile(file, []byte(url+"\n"), 0o644); err != nil {
			return "", false, fmt.Errorf("embedded nats: write %s: %w", file, err)
		}
		a.closers = append(a.closers, func() { _ = os.Remove(file) })
		a.log.Info("embedded NATS JetStream server started; other commands run from this directory find it in "+file,
			"url", url, "store_dir", dir, "url_file", file)
		return url, true, nil
	}
	if b, err := os.ReadFile(file); err == nil {
		if url := strings.TrimSpace(string(b)); url != "" {
			a.log.Debug("using the NATS server `run` announced", "url", url, "url_file", file)
			return url, true, nil
		}
	}
	return defaultNATSURL, false, nil
}

// defaultNATSURL is tried when nothing names a server (a variable so tests
// can point it at a private server).
var defaultNATSURL = nats.DefaultURL

// denied returns the NATS permission denial that ended a.ctx, or nil.
func (a *app) denied() error {
	if cause := context.Cause(a.ctx); errors.Is(cause, errNATSDenied) {
		return cause
	}
	return nil
}

// ready is the /readyz check: the connections the command uses answer.
func (a *app) ready(ctx context.Context) error {
	if a.pool != nil {
		if err := a.pool.Ping(ctx); err != nil {
			return fmt.Errorf("postgres: %w", err)
		}
	}
	if a.nc != nil && !a.nc.IsConnected() {
		return fmt.Errorf("nats: %s", a.nc.Status())
	}
	return nil
}

func (a *app) close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
	a.closers = nil
}

// reachable reports whether a TCP server answers at the host of a
// PostgreSQL URL (a unix-socket URL counts as reachable: the user chose it).
func reachable(dbURL string) bool {
	u, err := url.Parse(dbURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return true
	}
	host := u.Hostname()
	if host == "" || strings.HasPrefix(host, "/") {
		return true
	}
	port := u.Port()
	if port == "" {
		port = "5432"
	}
	c, err := net.DialTimeout("tcp", net.JoinHostPort(host, port), 2*time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}
