// Package httpserve runs the HTTP servers of the operator console and the
// host API: it serves a handler until the context ends, and measures every
// route (request count by status code, latency histogram) in Prometheus.
package httpserve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Server is a running HTTP server.
type Server struct {
	addr string
	srv  *http.Server
	done chan struct{}
}

// Start listens on addr and serves h until ctx ends, then shuts down
// gracefully (5 s). A ":0" port picks a free one; Addr tells which.
func Start(ctx context.Context, addr string, h http.Handler, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	s := &Server{
		addr: l.Addr().String(),
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      60 * time.Second,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    64 << 10,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		},
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server stopped", "addr", s.addr, "error", err)
		}
	}()
	go func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.srv.Shutdown(shutdownCtx); err != nil {
			_ = s.srv.Close()
		}
	}()
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.addr }

// Done is closed once the server has stopped.
func (s *Server) Done() <-chan struct{} { return s.done }

// IsLoopback reports whether addr (host:port) names only loopback
// interfaces: 127.0.0.0/8, ::1 or localhost. An empty host (all
// interfaces) is not loopback.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Routes measures the routes of one server: domainguard_http_requests_total
// {server, route, code} and domainguard_http_request_duration_seconds
// {server, route}.
type Routes struct {
	server   string
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewRoutes registers the route metrics of server ("console", "api") in reg.
// Several servers may share one registry.
func NewRoutes(reg prometheus.Registerer, server string) (*Routes, error) {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "domainguard_http_requests_total",
		Help: "HTTP requests served, by server, route and status code.",
	}, []string{"server", "route", "code"})
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "domainguard_http_request_duration_seconds",
		Help:    "HTTP request latency, by server and route.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"server", "route"})
	var err error
	if requests, err = register(reg, requests); err != nil {
		return nil, err
	}
	if duration, err = register(reg, duration); err != nil {
		return nil, err
	}
	return &Routes{server: server, requests: requests, duration: duration}, nil
}

// register registers c, or returns the collector already registered under
// the same description (another server in the process).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if reg == nil {
		return c, nil
	}
	if err := reg.Register(c); err != nil {
		var already prometheus.AlreadyRegisteredError
		if errors.As(err, &already) {
			if existing, ok := already.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, fmt.Errorf("register http metrics: %w", err)
	}
	return c, nil
}

// Handle registers h on mux under pattern, measured under the route label
// pattern.
func (r *Routes) Handle(mux *http.ServeMux, pattern string, h http.Handler) {
	mux.Handle(pattern, r.Wrap(pattern, h))
}

// Wrap measures h under the route label route.
func (r *Routes) Wrap(route string, h http.Handler) http.Handler {
	obs := r.duration.WithLabelValues(r.server, route)
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		h.ServeHTTP(sw, req)
		obs.Observe(time.Since(start).Seconds())
		r.requests.WithLabelValues(r.server, route, strconv.Itoa(sw.code)).Inc()
	})
}

type statusWriter struct {
	http.ResponseWriter
	code  int
	wrote bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.code, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
