// Command gqlauth is a GraphQL authentication server: register, login,
// refresh, logout and me, with RS256 (or ES256, EdDSA) access and refresh
// tokens in HttpOnly cookies, server-side sessions, and MongoDB storage (an
// embedded FerretDB by default).
//
// It wires the packages under internal/ and graph/ together and nothing
// else: main turns signals into a cancel and calls Run and Close on Main,
// which tests reuse.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/99designs/gqlgen/graphql/playground"
	"github.com/joho/godotenv"

	"github.com/gqlauth/gqlauth/graph"
	"github.com/gqlauth/gqlauth/internal/auth"
	"github.com/gqlauth/gqlauth/internal/config"
	"github.com/gqlauth/gqlauth/internal/metrics"
	"github.com/gqlauth/gqlauth/internal/mongostore"
	"github.com/gqlauth/gqlauth/internal/token"
	"github.com/gqlauth/gqlauth/internal/web"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "healthcheck" {
		os.Exit(healthcheck())
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, stop, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// run loads the configuration, starts the server, waits for a signal or a
// server failure, and shuts down within SHUTDOWN_TIMEOUT.
func run(ctx context.Context, stop context.CancelFunc, logOut io.Writer) error {
	lookup, err := envLookup(".env")
	if err != nil {
		return err
	}
	cfg, err := config.Load(lookup)
	if err != nil {
		return err
	}
	defer reserveProcsForHashing(cfg.BcryptConcurrency)()
	if _, set := os.LookupEnv("GOGC"); !set {
		// The embedded database allocates a lot per query; collecting half
		// as often bought about a quarter more `me` throughput for a few
		// MiB of memory (BENCHMARKS.md). GOGC overrides it.
		debug.SetGCPercent(200)
	}
	m := NewMain(cfg, newLogger(logOut, cfg.LogFormat, cfg.LogLevel))
	if err := m.Run(ctx); err != nil {
		return err
	}
	var serveErr error
	select {
	case <-ctx.Done():
		stop() // a second signal now ends the process at once
		m.Logger.Info("shutting down", "timeout", cfg.ShutdownTimeout.String())
	case serveErr = <-m.ServeErr():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	return errors.Join(serveErr, m.Close(shutdownCtx))
}

// healthcheck asks the local server's /readyz; images without a shell or
// curl use it as their health check ("gqlauth healthcheck"). It reads PORT
// and HOST as the server does, .env included.
func healthcheck() int {
	host, port := "127.0.0.1", "8000"
	if lookup, err := envLookup(".env"); err == nil {
		if p, ok := lookup("PORT"); ok && strings.TrimSpace(p) != "" {
			port = strings.TrimSpace(p)
		}
		if h, ok := lookup("HOST"); ok && h != "" && h != "0.0.0.0" && h != "::" {
			host = h
		}
	}
	client := &http.Client{Timeout: 3 * time.Second}
	resp, err := client.Get("http://" + net.JoinHostPort(host, port) + "/readyz")
	if err != nil {
		fmt.Fprintln(os.Stderr, "healthcheck:", err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(os.Stderr, "healthcheck: /readyz answered", resp.Status)
		return 1
	}
	return 0
}

// reserveProcsForHashing raises GOMAXPROCS by the number of hashing slots.
// Password hashing runs on low-priority threads (see auth.Hasher); with
// scheduler places of their own, a login flood cannot occupy the places
// other requests need, and the OS gives the CPU to those requests first.
// (Setting GOMAXPROCS stops the runtime from following later changes of a
// container's CPU limit; the value read here already follows the limit at
// start.) It returns a function that restores the previous setting.
func reserveProcsForHashing(slots int) (restore func()) {
	prev := runtime.GOMAXPROCS(0)
	runtime.GOMAXPROCS(prev + slots)
	return func() { runtime.GOMAXPROCS(prev) }
}

// envLookup returns the environment, backed by the .env file at path when
// there is one; the environment wins.
func envLookup(path string) (config.Lookup, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return os.LookupEnv, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	dotenv, err := godotenv.UnmarshalBytes(data)
	if err != nil {
		// godotenv's message quotes the rest of the file, secrets included:
		// name the line instead.
		return nil, fmt.Errorf("%s: line %d is not NAME=value", path, badDotEnvLine(data))
	}
	return config.Chain(os.LookupEnv, config.MapLookup(dotenv)), nil
}

// badDotEnvLine returns the number of the first line that does not parse on
// its own (a best guess when values span lines).
func badDotEnvLine(data []byte) int {
	for i, line := range strings.Split(string(data), "\n") {
		if _, err := godotenv.Unmarshal(line); err != nil {
			return i + 1
		}
	}
	return 1
}

// newLogger returns the server's logger: text or JSON lines from level up,
// each with the request id when there is one.
func newLogger(w io.Writer, format string, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if format == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(web.ContextHandler{Handler: h})
}

// Main is the running server.
type Main struct {
	Config config.Config
	Logger *slog.Logger
	// Now is the clock; nil means time.Now. Tests set it.
	Now func() time.Time

	db      embeddedDB
	store   *mongostore.Store
	tokens  *token.Manager
	metrics *metrics.Metrics
	handler http.Handler

	ln          net.Listener
	server      *http.Server
	metricsAddr string
	serveErr    chan error
	ready       atomic.Bool

	bg     context.Context    // background work runs until Close
	cancel context.CancelFunc // stops background work
	wg     sync.WaitGroup

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
	bg, cancel := context.WithCancel(context.Background())
	m.bg, m.cancel = bg, cancel
	defer func() {
		if err != nil {
			_ = m.Close(context.Background())
		}
	}()

	if err := m.openStore(ctx, bg); err != nil {
		return err
	}
	if err := m.openTokens(); err != nil {
		return err
	}
	hasher, err := auth.NewHasher(m.Config.BcryptCost, m.Config.BcryptConcurrency, m.Config.BcryptQueue)
	if err != nil {
		return err
	}
	m.metrics = metrics.New(
		func() float64 { return float64(hasher.InFlight()) },
		func() float64 { return float64(hasher.Waiting()) },
	)
	service := auth.NewService(m.store, m.tokens, hasher, auth.Config{
		AccessTokenTTL:     m.Config.AccessTokenTTL,
		RefreshTokenTTL:    m.Config.RefreshTokenTTL,
		RefreshReuseGrace:  m.Config.RefreshReuseGrace,
		SessionMaxLifetime: m.Config.SessionMaxLifetime,
		LoginThrottle:      auth.DefaultLoginThrottle(m.Config.LoginFailuresPerAccount),
		DatabaseTimeout:    m.Config.DatabaseTimeout,
	}, m.Now, m.Logger, m.metrics)
	if m.handler, err = m.buildHandler(service); err != nil {
		return err
	}

	m.ln, err = net.Listen("tcp", m.Config.Addr())
	if err != nil {
		return fmt.Errorf("listening on %s: %w (set PORT to another port)", m.Config.Addr(), err)
	}
	m.server = &http.Server{
		Handler:           m.handler,
		ReadHeaderTimeout: 5 * time.Second, // mitigates Slowloris
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(m.Logger.Handler(), slog.LevelWarn),
	}
	go func() {
		if err := m.server.Serve(m.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.serveErr <- err
		}
	}()
	if m.Config.PprofAddr != "" {
		m.startPprof()
	}
	if m.Config.MetricsAddr != "" {
		if err := m.startMetrics(); err != nil {
			return err
		}
	}
	m.Logger.Info("listening", "addr", m.ln.Addr().String(), "graphql", "/graphql", "playground", m.Config.Playground)
	return nil
}

// startMetrics serves /metrics on METRICS_ADDR, a listener of its own.
func (m *Main) startMetrics() error {
	ln, err := net.Listen("tcp", m.Config.MetricsAddr)
	if err != nil {
		return fmt.Errorf("METRICS_ADDR: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.metrics.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	m.metricsAddr = ln.Addr().String()
	m.Logger.Info("serving metrics", "addr", m.metricsAddr)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.Logger.Error("metrics server failed", "err", err.Error())
		}
	}()
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		<-m.bg.Done()
		_ = srv.Close()
	}()
	return nil
}

// startPprof serves the runtime profiles on the (loopback) DEBUG_PPROF_ADDR.
func (m *Main) startPprof() {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Addr: m.Config.PprofAddr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	m.Logger.Warn("serving profiles (DEBUG_PPROF_ADDR)", "addr", m.Config.PprofAddr)
	go func() {
		if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.Logger.Error("profile server failed", "err", err.Error())
		}
	}()
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		<-m.bg.Done()
		_ = srv.Close()
	}()
}

// openStore starts the embedded database when DATABASE_URL is unset, opens
// the store, and prepares the schema. A database that is down is waited for
// in the background; one that answers wrongly stops start-up.
func (m *Main) openStore(ctx, bg context.Context) error {
	uri := m.Config.DatabaseURL
	if m.Config.Embedded() {
		dir := filepath.Join(m.Config.DataDir, "db")
		db, err := startEmbedded(dir, m.Config.Production())
		if err != nil {
			return err
		}
		m.db = db
		uri = db.URI()
		m.Logger.Info("using the embedded database (FerretDB over SQLite); set DATABASE_URL to use MongoDB, e.g. DATABASE_URL=mongodb://admin:password123@localhost:6000/fastapi?authSource=admin",
			"dir", db.Dir())
		if m.Config.Production() {
			m.Logger.Warn("APP_ENV=production without DATABASE_URL: the embedded database is a single process's files; use MongoDB in production")
		}
	}
	store, err := mongostore.Open(mongostore.Options{
		URI:      uri,
		Database: m.Config.DatabaseName,
		Timeout:  m.Config.DatabaseTimeout,
		Logger:   m.Logger,
		Now:      m.Now,
	})
	if err != nil {
		return fmt.Errorf("DATABASE_URL: %w", err)
	}
	m.store = store

	err = m.prepareDatabase(ctx)
	if err != nil && m.db != nil {
		return fmt.Errorf("embedded database: %w", err)
	}
	var probeErr error
	if err != nil {
		// The driver reports a peer that is not MongoDB as a timeout or as a
		// garbled reply, depending on what the peer does: ask it directly.
		probeErr = mongostore.ProbeWire(ctx, uri, m.Config.DatabaseTimeout)
	}
	switch {
	case err == nil:
	case probeErr != nil:
		return fmt.Errorf("DATABASE_URL: not a MongoDB server: %s", oneLine(probeErr))
	case !mongostore.IsDown(err):
		return fmt.Errorf("DATABASE_URL: the database refused us (check the address, user and password): %s", oneLine(err))
	default:
		m.Logger.Warn("database is not reachable yet; serving, not ready, and retrying", "err", err.Error())
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.retryPrepare(bg)
		}()
	}

	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.store.RunSweeper(bg, mongostore.SweepFirst, mongostore.SweepInterval)
	}()
	return nil
}

// prepareDatabase pings the database and creates the schema; then the
// server is ready.
func (m *Main) prepareDatabase(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*m.Config.DatabaseTimeout)
	defer cancel()
	if err := m.store.Ping(ctx); err != nil {
		return err
	}
	if err := m.store.EnsureSchema(ctx); err != nil {
		return err
	}
	if m.db != nil {
		if err := prepareEmbedded(ctx, m.db, m.Config.DatabaseName); err != nil {
			return err
		}
	}
	m.ready.Store(true)
	return nil
}

// oneLine flattens an error message (the driver's can span lines), so that
// a start-up failure is one line.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

// retryPrepare retries prepareDatabase with capped exponential backoff until
// it succeeds or ctx ends.
func (m *Main) retryPrepare(ctx context.Context) {
	delay := 500 * time.Millisecond
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		err := m.prepareDatabase(ctx)
		if err == nil {
			m.Logger.Info("database is reachable; ready")
			return
		}
		m.Logger.Warn("database still not ready", "err", err.Error(), "retry_in", delay.String())
		delay = min(2*delay, 30*time.Second)
	}
}

// openTokens loads the configured key, or outside production generates a
// development key once and keeps it under DATA_DIR.
func (m *Main) openTokens() error {
	key := m.Config.SigningKey
	if key == nil {
		priv, path, created, err := token.LoadOrCreateDevKey(m.Config.DataDir, m.Config.JWTAlgorithm)
		if err != nil {
			return fmt.Errorf("JWT_PRIVATE_KEY not set, and the development key failed: %w", err)
		}
		if key, err = token.NewKey(m.Config.JWTAlgorithm, priv, nil); err != nil {
			return fmt.Errorf("development key %s: %w", path, err)
		}
		verb := "using the"
		if created {
			verb = "generated a"
		}
		m.Logger.Info(verb+" development signing key; for real keys set JWT_PRIVATE_KEY and JWT_PUBLIC_KEY (base64 of PEM, see README)",
			"path", path, "alg", key.Alg, "kid", key.ID)
	}
	tokens, err := token.NewManager(m.Config.JWTIssuer, key, m.Config.PreviousKeys, m.Now)
	if err != nil {
		return err
	}
	m.tokens = tokens
	return nil
}

// buildHandler assembles the routes and the middleware around them.
func (m *Main) buildHandler(service *auth.Service) (http.Handler, error) {
	gql := graph.NewHandler(graph.Options{
		Resolver: &graph.Resolver{Auth: service},
		Logger:   m.Logger,
		Cookies: web.CookieConfig{
			Secure:   m.Config.CookieSecure,
			Domain:   m.Config.CookieDomain,
			SameSite: m.Config.CookieSameSite,
		},
		TrustedProxies:  m.Config.TrustedProxies,
		MaxBodyBytes:    m.Config.MaxBodyBytes,
		ComplexityLimit: m.Config.ComplexityLimit,
		DepthLimit:      m.Config.DepthLimit,
		Introspection:   m.Config.Introspection,
		RateLimiter:     web.NewRateLimiter(m.Config.RateLimitIPPerMinute, m.Now),
		Observe:         m.metrics.Operation,
	})
	mux := http.NewServeMux()
	mux.Handle("GET /graphql", gql)
	mux.Handle("POST /graphql", gql)
	if m.Config.Playground {
		mux.Handle("GET /{$}", playground.Handler("GraphQL playground", "/graphql"))
	}
	mux.HandleFunc("GET /api/healthchecker", web.HealthChecker)
	mux.HandleFunc("GET /healthz", web.Healthz)
	mux.HandleFunc("GET /readyz", web.Readyz(m.readiness))
	mux.HandleFunc("GET /.well-known/jwks.json", web.JWKS(m.tokens.JWKS()))
	if m.Config.MetricsAddr == "" && !m.Config.Production() {
		// In production the metrics are served only on METRICS_ADDR: they
		// tell an attacker how the throttles fare.
		mux.Handle("GET /metrics", m.metrics.Handler())
	}

	crossOrigin, err := web.CrossOrigin(m.Config.ClientOrigins)
	if err != nil {
		return nil, fmt.Errorf("CLIENT_ORIGIN: %w", err)
	}
	var h http.Handler = mux
	h = crossOrigin(h)
	h = web.CORS(m.Config.ClientOrigins)(h)
	h = web.NoStore(h)
	h = web.AccessLog(m.Logger, m.metrics.Request)(h)
	h = web.RequestID(h)
	return h, nil
}

// readiness is ready when the schema is prepared and the database answers.
func (m *Main) readiness(ctx context.Context) error {
	if !m.ready.Load() {
		return errors.New("database not prepared")
	}
	return m.store.Ping(ctx)
}

// Handler returns the server's HTTP handler.
func (m *Main) Handler() http.Handler { return m.handler }

// Addr returns the address the server listens on.
func (m *Main) Addr() string { return m.ln.Addr().String() }

// URL returns the server's base URL on loopback (with "localhost", so that
// browsers treat it as the same site as a frontend on another port).
func (m *Main) URL() string {
	_, port, _ := net.SplitHostPort(m.Addr())
	return "http://localhost:" + port
}

// ServeErr reports a failure of the HTTP server after Run returned.
func (m *Main) ServeErr() <-chan error { return m.serveErr }

// Store returns the store, for tests.
func (m *Main) Store() *mongostore.Store { return m.store }

// Tokens returns the token manager, for tests.
func (m *Main) Tokens() *token.Manager { return m.tokens }

// Close stops accepting connections, waits for in-flight requests until ctx
// ends, then stops background work and closes the store and the embedded
// database. Calls after the first return the first's result.
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
	if m.cancel != nil {
		m.cancel()
	}
	m.wg.Wait()
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
