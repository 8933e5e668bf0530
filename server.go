// Command gqlauth is a GraphQL authentication server: register, login,
// refresh, logout and me, with RS256 (or ES256, EdDSA) access and refresh
// tokens in HttpOnly cookies, server-side sessions, and MongoDB storage (an
// embedded FerretDB by default).
//
// This file wires the packages under internal/ and graph/ together and does
// nothing else; main.go turns signals into a cancel and calls Run and Close
// on Main, which tests reuse. docs/architecture.md says what each package
// owns.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/gqlauth/gqlauth/graph"
	"github.com/gqlauth/gqlauth/internal/auth"
	"github.com/gqlauth/gqlauth/internal/config"
	"github.com/gqlauth/gqlauth/internal/email"
	"github.com/gqlauth/gqlauth/internal/embedded"
	"github.com/gqlauth/gqlauth/internal/metrics"
	"github.com/gqlauth/gqlauth/internal/mongostore"
	"github.com/gqlauth/gqlauth/internal/password"
	"github.com/gqlauth/gqlauth/internal/token"
	"github.com/gqlauth/gqlauth/internal/web"
)

// Main is the running server.
type Main struct {
	Config config.Config
	Logger *slog.Logger
	// Now is the clock; nil means time.Now. Tests set it.
	Now func() time.Time

	db      *embedded.DB
	store   *mongostore.Store
	tokens  *token.Manager
	metrics *metrics.Metrics
	mail    *email.Service
	service *auth.Service
	handler http.Handler

	ln          net.Listener
	server      *http.Server
	metricsAddr string
	serveErr    chan error

	sides     context.Context    // the side listeners serve until Close
	stopSides context.CancelFunc // stops them
	wg        sync.WaitGroup

	closeOnce sync.Once
	closeErr  error
}

// NewMain returns a Main for the configuration.
func NewMain(cfg config.Config, logger *slog.Logger) *Main {
	return &Main{Config: cfg, Logger: logger, serveErr: make(chan error, 1)}
}

// Run opens the database and keys, builds the handler, and starts serving on
// Config.Addr(). It returns once the server listens.
func (m *Main) Run(ctx context.Context) (err error) {
	if m.Now == nil {
		m.Now = time.Now
	}
	m.sides, m.stopSides = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			_ = m.Close(context.Background())
		}
	}()
	if err := m.openStore(ctx); err != nil {
		return err
	}
	if err := m.openTokens(); err != nil {
		return err
	}
	hasher, err := password.NewHasher(m.Config.BcryptCost, m.Config.BcryptConcurrency, m.Config.BcryptQueue)
	if err != nil {
		return err
	}
	m.metrics = metrics.New(hasher)
	if err := m.startMail(); err != nil {
		return err
	}
	service, err := auth.New(auth.Deps{
		Users: m.store, Sessions: m.store, RefreshTokens: m.store, Attempts: m.store,
		EmailTokens: m.store, Accounts: m.store, Mailer: m.mail,
		Tokens: m.tokens, Passwords: hasher,
		Config: m.Config.Auth(),
		Clock:  m.Now, Logger: m.Logger, Observer: m.metrics,
	})
	if err != nil {
		return err
	}
	m.service = service
	m.mail.Run(service.PrepareEmail)
	if m.handler, err = m.buildHandler(service); err != nil {
		return err
	}
	return m.serve()
}

// openStore starts the embedded database when DATABASE_URL is unset, and
// connects the store (see mongostore.Connect).
func (m *Main) openStore(ctx context.Context) error {
	cfg := m.Config
	o := mongostore.Options{
		URI: cfg.DatabaseURL, Database: cfg.DatabaseName, Timeout: cfg.DatabaseTimeout,
		Logger: m.Logger, Now: m.Now, WaitWhenDown: true,
	}
	where := "DATABASE_URL"
	if cfg.Embedded() {
		db, err := embedded.ForServer(cfg.DataDir, cfg.Production(), m.Logger)
		if err != nil {
			return err
		}
		m.db, where = db, "embedded database"
		o.URI, o.WaitWhenDown, o.Prepare = db.URI(), false, db.Prepare(cfg.DatabaseName)
	}
	store, err := mongostore.Connect(ctx, o)
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	m.store = store
	return nil
}

// startMail starts the e-mail delivery: SMTP at EMAIL_HOST, or the
// development mailbox under DATA_DIR/mail.
func (m *Main) startMail() (err error) {
	e := m.Config.Email
	m.mail, err = email.New(email.Options{
		SMTP: email.SMTPConfig{Host: e.Host, Port: e.Port, Username: e.Username, Password: e.Password, TLS: e.TLS, CAFile: e.CAFile},
		From: e.From, TemplatesDir: e.TemplatesDir, MailboxDir: filepath.Join(m.Config.DataDir, "mail"),
		Production: m.Config.Production(), LinkBase: e.LinkBase, OwnBase: m.Config.LocalURL(),
		Store: m.store, Keys: m.tokens, Observer: m.metrics, Log: m.Logger, Now: m.Now,
	})
	return err
}

// openTokens uses the configured key, or outside production a development
// key kept under DATA_DIR.
func (m *Main) openTokens() (err error) {
	var dev *token.DevKey
	m.tokens, dev, err = token.ManagerFor(m.Config.JWTIssuer, m.Config.SigningKey, m.Config.PreviousKeys, m.Config.DataDir, m.Config.JWTAlgorithm, m.Now)
	if dev != nil {
		verb := map[bool]string{true: "generated a", false: "using the"}[dev.Created]
		m.Logger.Info(verb+" development signing key; for real keys set JWT_PRIVATE_KEY and JWT_PUBLIC_KEY (base64 of PEM, see README)",
			"path", dev.Path, "alg", m.Config.JWTAlgorithm, "kid", m.tokens.SigningKeyID())
	}
	return err
}

// buildHandler assembles the route table and the middleware around it.
func (m *Main) buildHandler(service *auth.Service) (http.Handler, error) {
	cfg := m.Config
	gql := graph.NewHandler(graph.Options{
		Resolver:        &graph.Resolver{Auth: service},
		Logger:          m.Logger,
		Cookies:         web.CookieConfig{Secure: cfg.CookieSecure, Domain: cfg.CookieDomain, SameSite: cfg.CookieSameSite},
		TrustedProxies:  cfg.TrustedProxies,
		MaxBodyBytes:    cfg.MaxBodyBytes,
		ComplexityLimit: cfg.ComplexityLimit,
		DepthLimit:      cfg.DepthLimit,
		Introspection:   cfg.Introspection,
		RateLimiter:     web.NewRateLimiter(cfg.RateLimitIPPerMinute, m.Now),
		Observe:         m.metrics.Operation,
	})
	routes := web.Routes{
		{Pattern: "GET /graphql", Handler: gql},
		{Pattern: "POST /graphql", Handler: gql},
		{Pattern: "GET /api/healthchecker", Handler: http.HandlerFunc(web.HealthChecker)},
		{Pattern: "GET /healthz", Handler: http.HandlerFunc(web.Healthz)},
		{Pattern: "GET /readyz", Handler: web.Readyz(m.store.Ready)},
		{Pattern: "GET /.well-known/jwks.json", Handler: web.JWKS(m.tokens.JWKS())},
	}
	routes = append(routes, web.LinkPages()...) // GET /verify-email, /reset-password, /confirm-email, /static/
	if cfg.Playground {
		routes = append(routes, web.Route{Pattern: "GET /{$}", Handler: web.Playground("GraphQL playground", "/graphql")})
	}
	if cfg.MetricsAddr == "" && !cfg.Production() {
		// In production the metrics are served only on METRICS_ADDR: they
		// tell an attacker how the throttles fare.
		routes = append(routes, web.Route{Pattern: "GET /metrics", Handler: m.metrics.Handler()})
	}
	crossOrigin, err := web.CrossOrigin(cfg.ClientOrigins)
	if err != nil {
		return nil, fmt.Errorf("CLIENT_ORIGIN: %w", err)
	}
	var h http.Handler = routes.Mux()
	h = crossOrigin(h)
	h = web.CORS(cfg.ClientOrigins)(h)
	h = web.NoStore(h)
	h = web.AccessLog(m.Logger, routes, m.metrics.Request)(h)
	return web.RequestID(h), nil
}

// serve listens on Config.Addr() and on the side listeners (profiles,
// metrics) that are configured.
func (m *Main) serve() (err error) {
	if m.ln, err = net.Listen("tcp", m.Config.Addr()); err != nil {
		return fmt.Errorf("listening on %s: %w (set PORT to another port)", m.Config.Addr(), err)
	}
	m.server = web.NewServer(m.handler, m.Logger)
	go func() {
		if err := m.server.Serve(m.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.serveErr <- err
		}
	}()
	for _, side := range []struct {
		name, addr string
		handler    http.Handler
		bound      *string
	}{
		{"DEBUG_PPROF_ADDR", m.Config.PprofAddr, web.Profiles(), new(string)},
		{"METRICS_ADDR", m.Config.MetricsAddr, m.metrics.Handler(), &m.metricsAddr},
	} {
		if side.addr == "" {
			continue
		}
		if *side.bound, err = web.ServeSide(m.sides, &m.wg, side.name, side.addr, side.handler, m.Logger); err != nil {
			return err
		}
		m.Logger.Warn("serving a side listener; keep it off the public network", "name", side.name, "addr", *side.bound)
	}
	m.Logger.Info("listening", "addr", m.ln.Addr().String(), "graphql", "/graphql", "playground", m.Config.Playground)
	return nil
}

// Handler returns the server's HTTP handler.
func (m *Main) Handler() http.Handler { return m.handler }

// Addr returns the address the server listens on.
func (m *Main) Addr() string { return m.ln.Addr().String() }

// MetricsAddr returns the address of the METRICS_ADDR listener, or "".
func (m *Main) MetricsAddr() string { return m.metricsAddr }

// URL returns the server's base URL on loopback (with "localhost", so that
// browsers treat it as the same site as a frontend on another port).
func (m *Main) URL() string {
	_, port, _ := net.SplitHostPort(m.Addr())
	return "http://localhost:" + port
}

// ServeErr reports a failure of the HTTP server after Run returned.
func (m *Main) ServeErr() <-chan error { return m.serveErr }

// Close stops accepting connections, waits for in-flight requests until ctx
// ends, then stops the side listeners, closes the store (and its background
// work) and stops the embedded database. Calls after the first return the
// first's result.
func (m *Main) Close(ctx context.Context) error {
	m.closeOnce.Do(func() { m.closeErr = m.close(ctx) })
	return m.closeErr
}

func (m *Main) close(ctx context.Context) error {
	var errs []error
	if m.server != nil {
		if err := m.server.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("shutting down HTTP server: %w", err))
		}
	}
	if m.stopSides != nil {
		m.stopSides()
	}
	m.wg.Wait()
	if m.mail != nil {
		m.mail.Stop()
	}
	if m.store != nil {
		if err := m.store.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("closing store: %w", err))
		}
	}
	if m.db != nil {
		m.db.Stop()
	}
	return errors.Join(errs...)
}
