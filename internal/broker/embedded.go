package broker

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// EmbeddedOptions configures the in-process JetStream server.
type EmbeddedOptions struct {
	// StoreDir holds the JetStream store. Required.
	StoreDir string
	// Host to listen on. Default "127.0.0.1" (loopback only).
	Host string
	// Port to listen on. Default -1: a free port the OS picks, so the server
	// never takes a port another server holds. Give a fixed port to restart
	// a server on the same address.
	Port int
	// Logger receives the server's log. Default slog.Default().
	Logger *slog.Logger
	// ReadyTimeout bounds the wait for the server to accept connections.
	// Default 10s.
	ReadyTimeout time.Duration
	// Configure, if set, adjusts the server options last (users and
	// permissions in tests, for example).
	Configure func(*server.Options)
}

// Embedded is a running in-process JetStream server.
type Embedded struct {
	srv *server.Server
	log *slog.Logger
}

// StartEmbedded starts a JetStream server in this process and waits until
// it accepts connections. ctx bounds the start only; stop the server with
// Shutdown.
func StartEmbedded(ctx context.Context, o EmbeddedOptions) (*Embedded, error) {
	if o.StoreDir == "" {
		return nil, fmt.Errorf("embedded nats: store dir is required")
	}
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	if o.Port == 0 {
		o.Port = server.RANDOM_PORT
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.ReadyTimeout == 0 {
		o.ReadyTimeout = 10 * time.Second
	}
	opts := &server.Options{
		ServerName: "domainguard-embedded",
		Host:       o.Host,
		Port:       o.Port,
		JetStream:  true,
		StoreDir:   o.StoreDir,
		NoSigs:     true,
		// The HTTP monitor and cluster ports stay off.
	}
	if o.Configure != nil {
		o.Configure(opts)
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	log := o.Logger.With("component", "nats-server")
	srv.SetLoggerV2(serverLog{log}, false, false, false)
	go srv.Start()

	ready := make(chan bool, 1)
	go func() { ready <- srv.ReadyForConnections(o.ReadyTimeout) }()
	select {
	case ok := <-ready:
		if !ok {
			srv.Shutdown()
			srv.WaitForShutdown()
			return nil, fmt.Errorf("embedded nats on %s: not ready within %s", net.JoinHostPort(o.Host, strconv.Itoa(o.Port)), o.ReadyTimeout)
		}
	case <-ctx.Done():
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("embedded nats: %w", ctx.Err())
	}
	e := &Embedded{srv: srv, log: o.Logger}
	o.Logger.Info("embedded nats server listening", "url", e.URL(), "store_dir", o.StoreDir)
	return e, nil
}

// URL is the client URL, e.g. nats://127.0.0.1:41231.
func (e *Embedded) URL() string { return e.srv.ClientURL() }

// Port is the port the server listens on.
func (e *Embedded) Port() int {
	if a, ok := e.srv.Addr().(*net.TCPAddr); ok {
		return a.Port
	}
	return 0
}

// Shutdown stops the server gracefully and waits until it has stopped.
func (e *Embedded) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}

// serverLog adapts slog to the server's logger. Notices (a banner of about
// twenty lines at start) go to debug; the server's "fatal" errors are logged
// at error level, it stops itself where needed.
type serverLog struct{ l *slog.Logger }

func (s serverLog) Noticef(format string, v ...any) { s.l.Debug(fmt.Sprintf(format, v...)) }
func (s serverLog) Warnf(format string, v ...any)   { s.l.Warn(fmt.Sprintf(format, v...)) }
func (s serverLog) Fatalf(format string, v ...any)  { s.l.Error(fmt.Sprintf(format, v...)) }
func (s serverLog) Errorf(format string, v ...any)  { s.l.Error(fmt.Sprintf(format, v...)) }
func (s serverLog) Debugf(format string, v ...any)  { s.l.Debug(fmt.Sprintf(format, v...)) }
func (s serverLog) Tracef(format string, v ...any)  { s.l.Debug(fmt.Sprintf(format, v...)) }
