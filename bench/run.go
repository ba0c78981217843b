package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/domainguard/domainguard/internal/broker"
	"github.com/domainguard/domainguard/internal/postgres"
	"github.com/domainguard/domainguard/internal/redact"
	"github.com/domainguard/domainguard/lifecycle"
	"github.com/domainguard/domainguard/schemas"
)

// env is what the phases share: the database, the NATS connection and the
// namespaces to delete at the end.
type env struct {
	o       Options
	log     *slog.Logger
	pool    *pgxpool.Pool
	nc      *nats.Conn
	js      jetstream.JetStream
	topos   []broker.Topology
	closers []func() error
}

// Run runs the selected phases and returns their rows. It creates (and
// drops) its own database and stream namespaces; ctx bounds the whole run.
func Run(ctx context.Context, o Options) (rep Report, err error) {
	o = o.WithDefaults()
	if err := o.Validate(); err != nil {
		return rep, err
	}
	start := time.Now()
	rep.Env = machineEnv()
	rep.Env.StartedAt = start.UTC()
	rep.Env.Options = optionsJSON(o)
	e := &env{o: o, log: o.Logger}
	defer func() {
		if cerr := e.close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	if err := e.openNATS(ctx, &rep.Env); err != nil {
		return rep, err
	}
	phases := []struct {
		name string
		run  func(context.Context) ([]Row, error)
	}{{PhaseSweep, e.sweep}, {PhaseEnforcer, e.enforce}, {PhaseChecker, e.check}, {PhaseE2E, e.endToEnd}}
	for _, p := range phases {
		if !o.runs(p.name) {
			continue
		}
		e.log.Info("bench phase starting", "phase", p.name)
		// Each phase gets a database of its own (and a stream namespace of
		// its own, from topology): rows one phase leaves behind, such as
		// outbox rows its stopped relay had not yet deleted, can never be
		// relayed into, or counted by, the next phase.
		dropDB, err := e.openDB(ctx, &rep.Env)
		if err != nil {
			return rep, err
		}
		rows, err := p.run(ctx)
		if derr := dropDB(); derr != nil && err == nil {
			err = derr
		}
		if err != nil {
			return rep, fmt.Errorf("bench %s: %w", p.name, err)
		}
		for _, r := range rows {
			e.log.Info("bench figure", "name", r.Name, "figure", r.Figure, "unit", r.Unit, "baseline", r.Baseline, "ratio", r.Ratio, "met", r.Met)
		}
		rep.Rows = append(rep.Rows, rows...)
	}
	rep.Env.LoadAvgEnd = LoadAvg()
	rep.Env.Seconds = time.Since(start).Seconds()
	return rep, nil
}

func (e *env) openNATS(ctx context.Context, info *Env) error {
	url := e.o.NATSURL
	if url == "" {
		dir, err := os.MkdirTemp("", "domainguard-bench-nats-")
		if err != nil {
			return fmt.Errorf("bench: embedded nats: %w", err)
		}
		srv, err := broker.StartEmbedded(ctx, broker.EmbeddedOptions{StoreDir: dir, Logger: e.log})
		if err != nil {
			os.RemoveAll(dir)
			return fmt.Errorf("bench: %w", err)
		}
		e.onClose(func() error {
			srv.Shutdown()
			return os.RemoveAll(dir)
		})
		url = srv.URL()
		info.NATSEmbedded = true
	}
	nc, js, err := broker.Connect(ctx, broker.ConnectOptions{URL: url, Name: "domainguard bench", Logger: e.log})
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	e.nc, e.js = nc, js
	e.onClose(func() error { nc.Close(); return nil })
	info.NATSServer = nc.ConnectedServerVersion()
	return nil
}

// openDB creates, migrates and opens a fresh database as e.pool and returns
// the function that closes the pool and drops the database again (it also
// runs at the end of Run, should the phase fail before calling it).
func (e *env) openDB(ctx context.Context, info *Env) (func() error, error) {
	u, err := url.Parse(e.o.DatabaseURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, fmt.Errorf("bench: database url %s: want a postgres:// URL of the server", redact.ConnString(e.o.DatabaseURL))
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	name := "dg_bench_" + hex.EncodeToString(rnd[:])
	admin := *u
	admin.Path = "/postgres"
	adminURL := admin.String()
	db := *u
	db.Path = "/" + name
	if err := createDatabase(ctx, adminURL, name); err != nil {
		return nil, fmt.Errorf("bench: create database %s: %w", name, err)
	}
	var pool *pgxpool.Pool
	var once sync.Once
	var dropErr error
	drop := func() error {
		once.Do(func() {
			if pool != nil {
				pool.Close()
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			if err := adminExec(ctx, adminURL, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
				dropErr = fmt.Errorf("bench: drop database %s: %w", name, err)
			}
		})
		return dropErr
	}
	e.onClose(drop)
	pool, err = postgres.Open(ctx, db.String(), postgres.WithMaxConns(20))
	if err != nil {
		return drop, fmt.Errorf("bench: %w", err)
	}
	e.pool = pool
	if _, err := postgres.Migrate(ctx, pool, schemas.Migrations); err != nil {
		return drop, fmt.Errorf("bench: %w", err)
	}
	if err := pool.QueryRow(ctx, `SHOW server_version`).Scan(&info.PostgresVersion); err != nil {
		return drop, fmt.Errorf("bench: server version: %w", err)
	}
	e.log.Info("bench database ready", "database", name)
	return drop, nil
}

func createDatabase(ctx context.Context, adminURL, name string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return postgres.CreateDatabase(ctx, conn, name)
}

func adminExec(ctx context.Context, url, sql string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, sql)
	return err
}

func (e *env) onClose(f func() error) { e.closers = append(e.closers, f) }

func (e *env) close() error {
	var errs []error
	if e.js != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		for _, t := range e.topos {
			errs = append(errs, deleteStreams(ctx, e.js, t))
		}
		cancel()
	}
	for i := len(e.closers) - 1; i >= 0; i-- {
		errs = append(errs, e.closers[i]())
	}
	e.closers = nil
	return errors.Join(errs...)
}

// topology ensures a fresh namespace ("bench<hex>", file storage like
// production), deleted at the end of Run.
func (e *env) topology(ctx context.Context) (broker.Topology, error) {
	var rnd [5]byte
	_, _ = rand.Read(rnd[:])
	t := broker.Topology{Namespace: schemas.Namespace{Prefix: "bench" + hex.EncodeToString(rnd[:])}, Logger: e.log}.WithDefaults()
	e.topos = append(e.topos, t)
	if err := t.Ensure(ctx, e.js); err != nil {
		return t, fmt.Errorf("ensure topology: %w", err)
	}
	return t, nil
}

func deleteStreams(ctx context.Context, js jetstream.JetStream, t broker.Topology) error {
	var errs []error
	for _, s := range t.Streams() {
		if err := js.DeleteStream(ctx, s.Name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			errs = append(errs, fmt.Errorf("delete stream %s: %w", s.Name, err))
		}
	}
	return errors.Join(errs...)
}

// streamCount returns the messages stored in a stream of t.
func (e *env) streamCount(ctx context.Context, t broker.Topology, stream string) (uint64, error) {
	s, err := e.js.Stream(ctx, t.Namespace.Stream(stream))
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("stream %s info: %w", stream, err)
	}
	return info.State.Msgs, nil
}

// checkMsg builds a check request exactly as the producer does: a
// CloudEvent with its id as Nats-Msg-Id.
func checkMsg(ns schemas.Namespace, domain string, prev *lifecycle.Observation, now time.Time) (*nats.Msg, error) {
	req := schemas.CheckRequest{Domain: domain, Reason: schemas.CheckSchedule, RequestedAt: now, Previous: prev}
	ev, err := schemas.NewEvent("domainguard/producer", "domains.check", domain, now, req)
	if err != nil {
		return nil, err
	}
	m, err := broker.EventMessage(ns.CheckSubject(domain), ev)
	if err != nil {
		return nil, fmt.Errorf("check of %s: %w", domain, err)
	}
	return m.Msg(), nil
}

// publishAll publishes n messages made by build with at most window
// unacknowledged, and returns how long that took. Every publish must
// succeed.
func publishAll(ctx context.Context, js jetstream.JetStream, n, window int, build func(i int) (*nats.Msg, error)) (time.Duration, error) {
	pending := make([]jetstream.PubAckFuture, 0, window)
	head := 0
	await := func(f jetstream.PubAckFuture) error {
		t := time.NewTimer(30 * time.Second)
		defer t.Stop()
		select {
		case <-f.Ok():
			return nil
		case err := <-f.Err():
			return fmt.Errorf("publish %s: %w", f.Msg().Subject, err)
		case <-t.C:
			return fmt.Errorf("publish %s: no ack within 30s", f.Msg().Subject)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	start := time.Now()
	for i := range n {
		msg, err := build(i)
		if err != nil {
			return 0, err
		}
		if len(pending)-head >= window {
			if err := await(pending[head]); err != nil {
				return 0, err
			}
			pending[head] = nil
			head++
			if head > window {
				pending = append(pending[:0], pending[head:]...)
				head = 0
			}
		}
		f, err := js.PublishMsgAsync(msg)
		if err != nil {
			return 0, fmt.Errorf("publish %s: %w", msg.Subject, err)
		}
		pending = append(pending, f)
	}
	for _, f := range pending[head:] {
		if err := await(f); err != nil {
			return 0, err
		}
	}
	return time.Since(start), nil
}

// waitFor polls cond every interval until it is true, ctx ends, or
// nothing has progressed for stall (progress is cond's first result).
func waitFor(ctx context.Context, interval, stall time.Duration, cond func() (progress int64, done bool, err error)) error {
	last, lastAt := int64(-1), time.Now()
	for {
		p, done, err := cond()
		if err != nil || done {
			return err
		}
		if p != last {
			last, lastAt = p, time.Now()
		} else if time.Since(lastAt) > stall {
			return fmt.Errorf("no progress for %s (stuck at %d)", stall, p)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}
