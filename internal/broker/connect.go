package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/domainguard/domainguard/internal/redact"
)

// ConnectOptions says where and how to connect.
type ConnectOptions struct {
	// URL of the server(s), comma separated. Default nats.DefaultURL
	// (nats://127.0.0.1:4222).
	URL string
	// Name is the client connection name shown in server monitoring.
	// Default "domainguard".
	Name string
	// User and Password for user/password authentication (optional).
	User, Password string
	// CredsFile is a JWT credentials file (optional).
	CredsFile string
	// InboxPrefix is the subject prefix of reply inboxes. Default "_INBOX".
	// With per-user inbox permissions use "_INBOX_<user>".
	InboxPrefix string
	// Logger receives connection events. Default slog.Default().
	Logger *slog.Logger
	// OnPermissionDenied, when set, is called (from the connection's
	// callback goroutine) with every permissions violation the server
	// reports; the error names the denied subject. The server answers a
	// denied request with nothing, so without this a denied JetStream API
	// call shows only as a timeout. Optional.
	OnPermissionDenied func(error)
}

// reconnectWait is the pause between reconnect attempts (nats.go adds
// jitter).
const reconnectWait = 500 * time.Millisecond

// Connect connects to NATS and returns the connection and a JetStream
// handle. It retries the initial connection until it succeeds or ctx ends,
// reconnects forever afterwards, and logs disconnects, reconnects and
// asynchronous errors. Permission violations are logged at error level:
// without that handler a denied publish or subscribe shows only as a
// timeout. Close the connection (or Drain it) when done.
func Connect(ctx context.Context, o ConnectOptions) (*nats.Conn, jetstream.JetStream, error) {
	if o.URL == "" {
		o.URL = nats.DefaultURL
	}
	if o.Name == "" {
		o.Name = "domainguard"
	}
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	opts := []nats.Option{
		nats.Name(o.Name),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(reconnectWait),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "error", err)
			} else {
				log.Info("nats disconnected")
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("nats reconnected", "url", redact.URL(nc.ConnectedUrl()))
		}),
		nats.ConnectHandler(func(nc *nats.Conn) {
			log.Info("nats connected", "url", redact.URL(nc.ConnectedUrl()))
		}),
		nats.ClosedHandler(func(nc *nats.Conn) {
			log.Debug("nats connection closed")
		}),
		nats.ErrorHandler(func(nc *nats.Conn, sub *nats.Subscription, err error) {
			attrs := []any{"error", err}
			if sub != nil {
				attrs = append(attrs, "subject", sub.Subject)
			}
			switch {
			case errors.Is(err, nats.ErrPermissionViolation):
				log.Error("nats permissions violation: the server denied a publish or subscribe; check the user's permissions", attrs...)
				if o.OnPermissionDenied != nil {
					o.OnPermissionDenied(err)
				}
			case errors.Is(err, nats.ErrAuthorization), errors.Is(err, nats.ErrAuthExpired), errors.Is(err, nats.ErrAuthRevoked):
				log.Error("nats authorization error", attrs...)
			case errors.Is(err, nats.ErrSlowConsumer):
				log.Warn("nats slow consumer: messages dropped", attrs...)
			default:
				log.Error("nats asynchronous error", attrs...)
			}
		}),
	}
	if o.User != "" {
		opts = append(opts, nats.UserInfo(o.User, o.Password))
	}
	if o.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(o.CredsFile))
	}
	if o.InboxPrefix != "" {
		opts = append(opts, nats.CustomInboxPrefix(o.InboxPrefix))
	}
	nc, err := nats.Connect(o.URL, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to nats %s: %w", redact.List(o.URL), err)
	}
	if err := waitConnected(ctx, nc, log.With("url", redact.List(o.URL))); err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("connect to nats %s: %w", redact.List(o.URL), err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("jetstream on %s: %w", redact.URL(nc.ConnectedUrl()), err)
	}
	return nc, js, nil
}

// waitConnected waits until the (retrying) initial connection succeeds.
func waitConnected(ctx context.Context, nc *nats.Conn, log *slog.Logger) error {
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	warned := time.Now()
	for !nc.IsConnected() {
		if nc.IsClosed() {
			return nats.ErrConnectionClosed
		}
		if time.Since(warned) > 10*time.Second {
			if err := nc.LastError(); err != nil {
				log.Warn("still waiting for nats", "error", err)
			} else {
				log.Warn("still waiting for nats: no answer yet")
			}
			warned = time.Now()
		}
		select {
		case <-ctx.Done():
			if err := nc.LastError(); err != nil {
				return fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
			}
			return ctx.Err()
		case <-tick.C:
		}
	}
	return nil
}
