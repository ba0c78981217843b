package console

import (
	"context"
	"crypto/rand"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/domainguard/domainguard/enforcer"
	"github.com/domainguard/domainguard/internal/broker"
	"github.com/domainguard/domainguard/internal/clock"
	"github.com/domainguard/domainguard/internal/coverage"
	"github.com/domainguard/domainguard/internal/httpserve"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// ContentSecurityPolicy is sent with every answer: no scripts at all, styles
// and images from the console itself only, forms post only to it, and no
// framing.
const ContentSecurityPolicy = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// Config wires the console. Pool and Store are required; so are Users
// unless InsecureLocal.
type Config struct {
	// Addr is where the console will listen; InsecureLocal needs a
	// loopback address.
	Addr string
	// Users may log in (DOMAINGUARD_CONSOLE_USERS).
	Users map[string]User
	// InsecureLocal skips authentication: everyone is the operator
	// "local". Only allowed on a loopback Addr.
	InsecureLocal bool
	// Pool is the database (read queries).
	Pool *pgxpool.Pool
	// Store applies holds and resumes the breaker (the CLI's code).
	Store *enforcer.Store
	// JS reads and replays the DLQ; nil: the DLQ page says so.
	JS jetstream.JetStream
	// Topology names the streams. Default: unprefixed.
	Topology broker.Topology
	// Enqueue asks for a check of a watched domain now (the producer's
	// EnqueueManual); nil: no check-now button.
	Enqueue func(ctx context.Context, domain string) (pending bool, err error)
	// Coverage describes the configured providers for the overview's
	// coverage (internal/coverage, as the `coverage` command); nil: the
	// overview says coverage is not configured.
	Coverage *coverage.Sources
	// DailyBudget is DOMAINGUARD_DAILY_LOOKUP_BUDGET, shown against the
	// lookups of the last 24 hours (0: unlimited).
	DailyBudget int
	// Logger. Default slog.Default().
	Logger *slog.Logger
	// Registerer receives the per-route metrics. Default: none.
	Registerer prometheus.Registerer
	// Clock. Default clock.System.
	Clock clock.Clock
	// SessionKey signs cookies and CSRF tokens. Default: 32 random bytes
	// (sessions end when the process restarts).
	SessionKey []byte
	// SessionTTL is how long a login lasts. Default 12h.
	SessionTTL time.Duration
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
	if len(c.SessionKey) == 0 {
		c.SessionKey = make([]byte, 32)
		_, _ = rand.Read(c.SessionKey)
	}
	if c.SessionTTL == 0 {
		c.SessionTTL = 12 * time.Hour
	}
	return c
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	switch {
	case c.Pool == nil:
		return errors.New("console: Pool is required")
	case c.Store == nil:
		return errors.New("console: Store is required")
	case c.InsecureLocal && !httpserve.IsLoopback(c.Addr):
		return fmt.Errorf("console: --insecure-local needs a loopback address, not %q", c.Addr)
	case !c.InsecureLocal && len(c.Users) == 0:
		return errors.New("console: no users: set DOMAINGUARD_CONSOLE_USERS to a users file (domainguard console adduser NAME ROLE), or use --insecure-local on a loopback address")
	case len(c.SessionKey) < 32:
		return errors.New("console: SessionKey needs at least 32 bytes")
	}
	return nil
}

// Console serves the operator console.
type Console struct {
	cfg     Config
	log     *slog.Logger
	sign    signer
	limiter *loginLimiter
	pages   map[string]*template.Template
	handler http.Handler
}

// New checks cfg and builds the console.
func New(cfg Config) (*Console, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Console{cfg: cfg, log: cfg.Logger.With("component", "console"), sign: signer{key: cfg.SessionKey}, limiter: newLoginLimiter()}
	var err error
	if c.pages, err = parsePages(); err != nil {
		return nil, err
	}
	routes, err := httpserve.NewRoutes(cfg.Registerer, "console")
	if err != nil {
		return nil, err
	}
	static, _ := fs.Sub(staticFS, "static")
	mux := http.NewServeMux()
	routes.Handle(mux, "GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	routes.Handle(mux, "GET /login", http.HandlerFunc(c.loginPage))
	routes.Handle(mux, "POST /login", http.HandlerFunc(c.login))
	routes.Handle(mux, "POST /logout", c.authed(c.logout))
	routes.Handle(mux, "GET /{$}", c.authed(c.overview))
	routes.Handle(mux, "GET /holds", c.authed(c.holds))
	routes.Handle(mux, "POST /holds/{id}/{decision}", c.operator(c.decideHold))
	routes.Handle(mux, "GET /search", c.authed(c.search))
	routes.Handle(mux, "POST /check", c.operator(c.checkNow))
	routes.Handle(mux, "GET /audit", c.authed(c.audit))
	routes.Handle(mux, "GET /breaker", c.authed(c.breaker))
	routes.Handle(mux, "POST /breaker/resume", c.operator(c.resume))
	routes.Handle(mux, "GET /dlq", c.authed(c.dlq))
	routes.Handle(mux, "POST /dlq/replay", c.operator(c.replay))
	routes.Handle(mux, "/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.fail(w, r, nil, http.StatusNotFound, "No such page.")
	}))
	c.handler = securityHeaders(mux)
	return c, nil
}

// Handler is the console's http.Handler.
func (c *Console) Handler() http.Handler { return c.handler }

// Start serves the console on cfg.Addr until ctx ends.
func (c *Console) Start(ctx context.Context) (*httpserve.Server, error) {
	s, err := httpserve.Start(ctx, c.cfg.Addr, c.handler, c.log)
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	if c.cfg.InsecureLocal {
		c.log.Warn("console listening WITHOUT authentication (--insecure-local, loopback only)", "url", "http://"+s.Addr()+"/")
	} else {
		c.log.Info("console listening", "url", "http://"+s.Addr()+"/", "users", len(c.cfg.Users))
	}
	return s, nil
}

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		if !strings.HasPrefix(r.URL.Path, "/static/") {
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

// viewer is the signed-in user of a request and the session's CSRF token.
type viewer struct {
	User User
	CSRF string
}

type viewerKey struct{}

func current(r *http.Request) viewer {
	v, _ := r.Context().Value(viewerKey{}).(viewer)
	return v
}

// authed requires a session (or InsecureLocal) and checks the CSRF token of
// every POST.
func (c *Console) authed(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var v viewer
		if c.cfg.InsecureLocal {
			v = viewer{User: User{Name: "local", Role: RoleOperator}, CSRF: c.sign.csrf("local", "local")}
			if r.Method == http.MethodPost && !c.sign.checkCSRF("local", "local", r.PostFormValue("csrf")) {
				c.fail(w, r, nil, http.StatusForbidden, "The form expired or did not come from this console; reload the page and try again.")
				return
			}
		} else {
			ck, err := r.Cookie(sessionCookie)
			var ss session
			ok := err == nil
			if ok {
				ss, ok = c.sign.decode(ck.Value, c.cfg.Clock.Now())
			}
			u, known := c.cfg.Users[ss.User]
			if !ok || !known {
				if r.Method == http.MethodGet {
					http.Redirect(w, r, "/login", http.StatusSeeOther)
					return
				}
				c.fail(w, r, nil, http.StatusUnauthorized, "Please log in.")
				return
			}
			v = viewer{User: u, CSRF: c.sign.csrf("session", ss.ID)}
			if r.Method == http.MethodPost && !c.sign.checkCSRF("session", ss.ID, r.PostFormValue("csrf")) {
				c.fail(w, r, &v, http.StatusForbidden, "The form expired or did not come from this console; reload the page and try again.")
				return
			}
		}
		h(w, r.WithContext(context.WithValue(r.Context(), viewerKey{}, v)))
	})
}

// operator is authed plus the operator role.
func (c *Console) operator(h http.HandlerFunc) http.Handler {
	return c.authed(func(w http.ResponseWriter, r *http.Request) {
		v := current(r)
		if !v.User.CanAct() {
			c.log.Warn("console: refused a change to a viewer", "user", v.User.Name, "path", r.URL.Path)
			c.fail(w, r, &v, http.StatusForbidden, "Only operators can do this; you are signed in as a viewer.")
			return
		}
		h(w, r)
	})
}

// clientAddr is the rate-limiting key of the client.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
