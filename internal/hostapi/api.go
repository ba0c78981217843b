package hostapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/domainguard/domainguard/internal/broker"
	"github.com/domainguard/domainguard/internal/clock"
	"github.com/domainguard/domainguard/internal/httpserve"
	"github.com/domainguard/domainguard/schemas"
)

// Config wires the API. Pool, JS and Tokens are required.
type Config struct {
	// Tokens are the accepted bearer tokens (DOMAINGUARD_API_TOKENS); at
	// least one.
	Tokens []Token
	// Pool answers address lookups.
	Pool *pgxpool.Pool
	// JS publishes intake events to ACCOUNTS (all the API does with NATS).
	JS jetstream.Publisher
	// Topology names the streams and subjects. Default: unprefixed.
	Topology broker.Topology
	// Logger. Default slog.Default().
	Logger *slog.Logger
	// Registerer receives the per-route metrics. Default: none.
	Registerer prometheus.Registerer
	// Clock tells the time (the future check of verified_at). Default
	// clock.System.
	Clock clock.Clock
	// MaxBodyBytes bounds a request body. Default schemas.MaxMessageBytes,
	// the most the intake consumer accepts.
	MaxBodyBytes int64
}

// WithDefaults fills the unset fields.
func (c Config) WithDefaults() Config {
	c.Topology = c.Topology.WithDefaults()
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Clock == nil {
		c.Clock = clock.System{}
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = schemas.MaxMessageBytes
	}
	return c
}

// Validate reports the first missing piece.
func (c Config) Validate() error {
	switch {
	case c.Pool == nil:
		return errors.New("hostapi: Pool is required")
	case c.JS == nil:
		return errors.New("hostapi: JS is required")
	case len(c.Tokens) == 0:
		return errors.New("hostapi: no tokens: set DOMAINGUARD_API_TOKENS to name:token pairs")
	case c.MaxBodyBytes < 1 || c.MaxBodyBytes > schemas.MaxMessageBytes:
		return fmt.Errorf("hostapi: MaxBodyBytes %d is not between 1 and %d", c.MaxBodyBytes, schemas.MaxMessageBytes)
	}
	return nil
}

// API serves the host API.
type API struct {
	cfg     Config
	log     *slog.Logger
	handler http.Handler
}

// New checks cfg and builds the routes.
func New(cfg Config) (*API, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	routes, err := httpserve.NewRoutes(cfg.Registerer, "api")
	if err != nil {
		return nil, err
	}
	a := &API{cfg: cfg, log: cfg.Logger.With("component", "hostapi")}
	mux := http.NewServeMux()
	for _, rt := range a.routes() {
		h := rt.handler
		if rt.auth {
			h = a.auth(h)
		}
		routes.Handle(mux, rt.pattern, h)
	}
	routes.Handle(mux, "/", http.HandlerFunc(a.notFound))
	a.handler = mux
	return a, nil
}

// route is one endpoint; the OpenAPI drift test walks the same list.
type route struct {
	pattern string // "METHOD /path"
	auth    bool
	handler http.Handler
}

func (a *API) routes() []route {
	return []route{
		{"POST /v1/events", true, http.HandlerFunc(a.postEvent)},
		{"GET /v1/addresses/{email}", true, http.HandlerFunc(a.getAddress)},
		{"GET /v1/openapi.json", false, http.HandlerFunc(serveOpenAPI)},
	}
}

// notFound answers what no route matched: 405 for a known path with
// another method, else 404.
func (a *API) notFound(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, rt := range a.routes() {
		method, path, _ := strings.Cut(rt.pattern, " ")
		if prefix, ok := strings.CutSuffix(path, "{email}"); ok {
			if rest, ok := strings.CutPrefix(r.URL.Path, prefix); ok && rest != "" && !strings.Contains(rest, "/") {
				allow = append(allow, method)
			}
		} else if path == r.URL.Path {
			allow = append(allow, method)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", r.Method+" is not allowed on "+r.URL.Path+"; use "+strings.Join(allow, ", "))
		return
	}
	writeError(w, http.StatusNotFound, "not_found", "no such endpoint: "+r.Method+" "+r.URL.Path+" (see /v1/openapi.json)")
}

// Handler is the API's http.Handler.
func (a *API) Handler() http.Handler { return a.handler }

// Start serves the API on addr until ctx ends.
func (a *API) Start(ctx context.Context, addr string) (*httpserve.Server, error) {
	s, err := httpserve.Start(ctx, addr, a.handler, a.log)
	if err != nil {
		return nil, fmt.Errorf("host api: %w", err)
	}
	a.log.Info("host API listening", "addr", s.Addr(), "tokens", len(a.cfg.Tokens))
	return s, nil
}

type clientKey struct{}

// client is the name of the token the request authenticated with.
func client(r *http.Request) string {
	name, _ := r.Context().Value(clientKey{}).(string)
	return name
}

// auth requires "Authorization: Bearer <token>" with a configured token.
func (a *API) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Get("Authorization")
		scheme, token, ok := strings.Cut(h, " ")
		if h == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="domainguard"`)
			writeError(w, http.StatusUnauthorized, "missing_token", "send Authorization: Bearer <token> (a token from DOMAINGUARD_API_TOKENS)")
			return
		}
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			w.Header().Set("WWW-Authenticate", `Bearer realm="domainguard"`)
			writeError(w, http.StatusUnauthorized, "missing_token", "the Authorization header must use the Bearer scheme")
			return
		}
		name, ok := match(a.cfg.Tokens, strings.TrimSpace(token))
		if !ok {
			a.log.Warn("host API: request with an unknown token", "remote", r.RemoteAddr, "path", r.URL.Path)
			w.Header().Set("WWW-Authenticate", `Bearer realm="domainguard", error="invalid_token"`)
			writeError(w, http.StatusUnauthorized, "invalid_token", "the bearer token is not one of DOMAINGUARD_API_TOKENS")
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), clientKey{}, name)))
	})
}

// Error is the body of every 4xx and 5xx answer.
type Error struct {
	// Error is a stable machine-readable code, e.g. "invalid_json".
	Error string `json:"error"`
	// Message says what was wrong, for people.
	Message string `json:"message"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, errCode, msg string) {
	writeJSON(w, code, Error{Error: errCode, Message: msg})
}
