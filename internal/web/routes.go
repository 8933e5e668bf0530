package web

import (
	"context"
	"net/http"
	"strings"
	"time"
)

// Route is one path the server serves: its ServeMux pattern ("GET
// /graphql", "GET /{$}") and its handler.
type Route struct {
	Pattern string
	Handler http.Handler
}

// Routes is a route table: the same table builds the mux and names the
// routes in metrics, so the two cannot drift apart.
type Routes []Route

// Mux returns a ServeMux that serves the table.
func (rs Routes) Mux() *http.ServeMux {
	mux := http.NewServeMux()
	for _, r := range rs {
		mux.Handle(r.Pattern, r.Handler)
	}
	return mux
}

// Name returns the name of the route that serves path, as metrics label
// it: its path ("/" for "/{$}"), or "other" for a path of no route, so that
// scanners cannot create unbounded label values.
func (rs Routes) Name(path string) string {
	for _, r := range rs {
		if routePath(r.Pattern) == path {
			return path
		}
	}
	return "other"
}

// routePath returns the path of a pattern: without its method, and "/"
// for the exact root "/{$}".
func routePath(pattern string) string {
	if _, p, ok := strings.Cut(pattern, " "); ok {
		pattern = p
	}
	return strings.TrimSuffix(pattern, "{$}")
}

// HealthChecker answers the tutorial's GET /api/healthchecker, kept for
// existing monitors.
func HealthChecker(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"message": "Welcome to FastAPI with MongoDB"})
}

// Healthz answers liveness: 200 while the process serves.
func Healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// ReadyFunc reports whether the server can serve requests (the database
// answers).
type ReadyFunc func(ctx context.Context) error

// ReadyTimeout bounds the readiness check.
const ReadyTimeout = 2 * time.Second

// Readyz answers readiness: 200 when ready answers nil within ReadyTimeout,
// else 503.
func Readyz(ready ReadyFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), ReadyTimeout)
		defer cancel()
		if err := ready(ctx); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	}
}

// JWKS serves the public keys as a JWK Set.
func JWKS(doc []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		_, _ = w.Write(doc)
	}
}
