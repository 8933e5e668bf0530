package web

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/gqlauth/gqlauth/internal/auth"
	"github.com/rs/cors"
)

// RequestIDHeader carries the request id in both directions.
const RequestIDHeader = "X-Request-ID"

// requestInfo is what the access log learns about a request while it is
// served.
type requestInfo struct {
	id        string
	operation string
}

// RequestIDFromContext returns the request's id, or "".
func RequestIDFromContext(ctx context.Context) string {
	if info, ok := ctx.Value(requestIDKey).(*requestInfo); ok {
		return info.id
	}
	return ""
}

// SetOperation names the request's GraphQL operation in its access line.
func SetOperation(ctx context.Context, name string) {
	if info, ok := ctx.Value(requestIDKey).(*requestInfo); ok {
		info.operation = name
	}
}

func operationFromContext(ctx context.Context) string {
	if info, ok := ctx.Value(requestIDKey).(*requestInfo); ok {
		return info.operation
	}
	return ""
}

// validRequestID accepts a client's id only when it is short and plain, so
// that it can be logged and echoed safely.
func validRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// RequestID honours a well-formed X-Request-ID or generates one, returns it
// in the response, and puts it on the context.
func RequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(RequestIDHeader)
		if !validRequestID(id) {
			id = newRequestID()
		}
		w.Header().Set(RequestIDHeader, id)
		ctx := context.WithValue(r.Context(), requestIDKey, &requestInfo{id: id})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// AccessLog logs one line per request (request id, GraphQL operation,
// status, duration), reports it with its route's name (Routes.Name) to
// observe when not nil, and turns a panic that escaped the handler into a
// logged 500.
func AccessLog(log *slog.Logger, routes Routes, observe func(route string, status int)) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			rec := &statusRecorder{ResponseWriter: w}
			defer func() {
				if p := recover(); p != nil {
					if p == http.ErrAbortHandler {
						panic(p)
					}
					log.ErrorContext(r.Context(), "panic serving request", "panic", p, "stack", string(debug.Stack()))
					if rec.status == 0 {
						WriteJSONError(rec, http.StatusInternalServerError, auth.CodeInternal, "Internal server error")
					}
				}
				status := rec.status
				if status == 0 {
					status = http.StatusOK // nothing written: net/http answers 200
				}
				if observe != nil {
					observe(routes.Name(r.URL.Path), status)
				}
				if !log.Enabled(r.Context(), slog.LevelInfo) {
					return
				}
				attrs := []any{
					"method", r.Method,
					"path", r.URL.Path,
					"status", status,
					"duration_ms", float64(time.Since(start).Microseconds()) / 1000,
				}
				if op := operationFromContext(r.Context()); op != "" {
					attrs = append(attrs, "operation", op)
				}
				log.InfoContext(r.Context(), "request", attrs...)
			}()
			next.ServeHTTP(rec, r)
		})
	}
}

// NoStore sets, on every response, Cache-Control: no-store (answers carry
// tokens and personal data: no shared cache may keep them) and
// X-Content-Type-Options: nosniff, before any layer below writes, so that
// every answer has them: 200s and request errors alike, the cross-origin
// 403 and the 413 included. A handler whose answer may be cached (the JWK
// Set) sets its own Cache-Control.
func NoStore(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		next.ServeHTTP(w, r)
	})
}

// CORS answers only the configured origins, with credentials.
func CORS(origins []string) func(http.Handler) http.Handler {
	c := cors.New(cors.Options{
		AllowedOrigins:   origins,
		AllowCredentials: true,
		AllowedMethods:   []string{http.MethodGet, http.MethodPost, http.MethodOptions},
		AllowedHeaders: []string{
			"Content-Type", "Authorization", RequestIDHeader,
			"Apollo-Require-Preflight", "X-Apollo-Operation-Name",
		},
		ExposedHeaders: []string{RequestIDHeader, "Retry-After"},
		MaxAge:         600,
	})
	return c.Handler
}

// CrossOrigin refuses, with 403, browser requests that Sec-Fetch-Site or
// Origin show to come from another origin, unless that origin is trusted.
// Same-origin requests (the playground) and requests without those headers
// (curl, servers) pass. Safe methods (GET, HEAD, OPTIONS) always pass.
func CrossOrigin(trusted []string) (func(http.Handler) http.Handler, error) {
	p := http.NewCrossOriginProtection()
	for _, o := range trusted {
		if err := p.AddTrustedOrigin(o); err != nil {
			return nil, err
		}
	}
	p.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		WriteJSONError(w, http.StatusForbidden, auth.CodeForbidden, "Cross-origin request refused")
	}))
	return p.Handler, nil
}

// NewLogger returns the server's logger: text or JSON lines from level up,
// each with the request id when there is one (ContextHandler).
func NewLogger(w io.Writer, format string, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if format == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(ContextHandler{Handler: h})
}

// ContextHandler is a slog.Handler that adds the request id from the
// context to every record.
type ContextHandler struct{ slog.Handler }

// Handle implements slog.Handler.
func (h ContextHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := RequestIDFromContext(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

// WithAttrs implements slog.Handler.
func (h ContextHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return ContextHandler{h.Handler.WithAttrs(attrs)}
}

// WithGroup implements slog.Handler.
func (h ContextHandler) WithGroup(name string) slog.Handler {
	return ContextHandler{h.Handler.WithGroup(name)}
}
