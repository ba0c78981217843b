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
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/domainguard/domainguard/internal/broker"
	"github.com/domainguard/domainguard/internal/config"
	"github.com/domainguard/domainguard/internal/postgres"
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
}

// app holds what a command wired up; close releases it in reverse order.
type app struct {
	cfg  config.Config
	log  *slog.Logger
	pool *pgxpool.Pool
	nc   *nats.Conn
	js   jetstream.JetStream
	topo broker.Topology
	reg  *prometheus.Registry

	closers []func()
}

// loadConfig parses the configuration flags (plus the command's own, already
// defined on fs) and returns the config, the remaining arguments and a logger.
func loadConfig(inv invocation, fs *flag.FlagSet) (config.Config, []string, *slog.Logger, error) {
	fs.SetOutput(inv.stderr)
	cfg, rest, err := config.Load(flagsFirst(inv.args, fs), inv.getenv, fs)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, nil, nil, err
		}
		return cfg, nil, nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return cfg, nil, nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	return cfg, rest, cfg.Logger(inv.stderr), nil
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
	defer func() {
		if err != nil {
			a.close()
		}
	}()
	a.topo = broker.Topology{
		Namespace:    schemas.Namespace{Prefix: cfg.SubjectPrefix},
		Replicas:     cfg.StreamReplicas,
		CheckAckWait: cfg.CheckAckWait,
		EventAckWait: cfg.EventAckWait,
	}.WithDefaults()
	if err := a.topo.Validate(); err != nil {
		return nil, err
	}
	if n.db {
		if err := a.openDB(ctx, n); err != nil {
			return nil, err
		}
	}
	if n.nats {
		if err := a.openNATS(ctx, n); err != nil {
			return nil, err
		}
	}
	if n.metrics && cfg.MetricsAddr != "" {
		srv, err := telemetry.Serve(ctx, cfg.MetricsAddr, a.reg, a.ready, log)
		if err != nil {
			return nil, fmt.Errorf("metrics server: %w", err)
		}
		log.Info("serving metrics and health", "addr", srv.Addr())
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
			a.log.Info("created database", "url", postgres.Redact(dbURL))
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
	natsURL := a.cfg.NATSURL
	if natsURL == "" {
		if !n.embedded {
			natsURL = nats.DefaultURL
		} else {
			dir := filepath.Join(a.cfg.DataDir, "nats")
			if err := os.MkdirAll(dir, 0o750); err != nil {
				return fmt.Errorf("embedded nats: %w", err)
			}
			srv, err := broker.StartEmbedded(ctx, broker.EmbeddedOptions{StoreDir: dir, Logger: a.log})
			if err != nil {
				return err
			}
			a.closers = append(a.closers, srv.Shutdown)
			natsURL = srv.URL()
			a.log.Info("embedded NATS JetStream server started; other roles and tools can use it", "url", natsURL, "store_dir", dir)
		}
	}
	inbox := ""
	if a.cfg.NATSUser != "" {
		// deploy/nats gives each role user its own inbox prefix, so one
		// role cannot read another's replies.
		inbox = "_INBOX_" + a.cfg.NATSUser
	}
	nc, js, err := broker.Connect(ctx, broker.ConnectOptions{
		URL: natsURL, Name: "domainguard", User: a.cfg.NATSUser, Password: a.cfg.NATSPassword,
		CredsFile: a.cfg.NATSCreds, InboxPrefix: inbox, Logger: a.log,
	})
	if err != nil {
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
	if !a.cfg.ManageTopology && !n.embedded {
		// Least privilege: the topology is the operator's (`domainguard
		// topology`); this user may only look.
		if err := a.topo.Verify(ctxEnsure, js); err != nil {
			return fmt.Errorf("jetstream topology: %w", err)
		}
		return nil
	}
	if err := a.topo.Ensure(ctxEnsure, js); err != nil {
		return fmt.Errorf("jetstream topology: %w", err)
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
