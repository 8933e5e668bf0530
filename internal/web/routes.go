package web

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// WriteJSONError writes a GraphQL-shaped error body with the given status,
// for request errors answered before GraphQL execution.
func WriteJSONError(w http.ResponseWriter, status int, code, message string) {
	type ext struct {
		Code string `json:"code"`
	}
	type gqlErr struct {
		Message    string `json:"message"`
		Extensions ext    `json:"extensions"`
	}
	body := struct {
		Errors []gqlErr `json:"errors"`
	}{Errors: []gqlErr{{Message: message, Extensions: ext{Code: code}}}}
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
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
