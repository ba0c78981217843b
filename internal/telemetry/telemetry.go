// Package telemetry serves a process's Prometheus metrics and its health
// and readiness on one HTTP listener: /metrics, /healthz (200 while the
// process runs) and /readyz (200 when the ready check passes, 503 with the
// error otherwise).
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/domainguard/domainguard/internal/httpserve"
)

// readyTimeout bounds one readiness check.
const readyTimeout = 5 * time.Second

// NewRegistry returns a registry for one process with the Go runtime and
// process collectors registered.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// Server is a running metrics and health endpoint.
type Server struct {
	s *httpserve.Server
}

// Serve listens on addr and serves /metrics from reg, /healthz and /readyz
// until ctx ends. ready may be nil (always ready). addr "" means no
// server: Serve returns a nil *Server and no error (its methods accept
// nil). A ":0" port picks a free one; Addr tells which.
func Serve(ctx context.Context, addr string, reg *prometheus.Registry, ready func(context.Context) error, logger *slog.Logger) (*Server, error) {
	if addr == "" {
		return nil, nil
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if reg == nil {
		return nil, errors.New("telemetry: nil registry")
	}
	hs, err := httpserve.Start(ctx, addr, Handler(reg, ready, logger), logger)
	if err != nil {
		return nil, fmt.Errorf("telemetry: %w", err)
	}
	logger.Info("metrics server listening", "addr", hs.Addr())
	return &Server{s: hs}, nil
}

// Addr is the address the server listens on ("" for a nil Server).
func (s *Server) Addr() string {
	if s == nil {
		return ""
	}
	return s.s.Addr()
}

// Done is closed once the server has stopped after its context ended
// (a nil Server's is closed already).
func (s *Server) Done() <-chan struct{} {
	if s == nil {
		c := make(chan struct{})
		close(c)
		return c
	}
	return s.s.Done()
}

// Handler returns the mux Serve uses, for embedding in another server.
func Handler(reg *prometheus.Registry, ready func(context.Context) error, logger *slog.Logger) http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		Registry:          reg,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		EnableOpenMetrics: true,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if ready != nil {
			ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
			defer cancel()
			if err := ready(ctx); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				_, _ = fmt.Fprintf(w, "not ready: %v\n", err)
				return
			}
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	return mux
}

// MetricNames returns the sorted names of the metric families g gathers
// (metrics with labels appear once they have a child).
func MetricNames(g prometheus.Gatherer) ([]string, error) {
	families, err := g.Gather()
	if err != nil {
		return nil, fmt.Errorf("telemetry: gather: %w", err)
	}
	names := make([]string, 0, len(families))
	for _, f := range families {
		names = append(names, f.GetName())
	}
	sort.Strings(names)
	return names, nil
}
