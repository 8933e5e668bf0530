package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/gqlauth/gqlauth/internal/gqltest"
	"github.com/gqlauth/gqlauth/internal/web"
)

// metricValue returns the value of one series of the /metrics page, or -1.
func metricValue(t *testing.T, s *testServer, series string) float64 {
	t.Helper()
	_, body := get(t, s.base+"/metrics", nil)
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`)
	m := re.FindStringSubmatch(body)
	if m == nil {
		return -1
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestMetrics(t *testing.T) {
	s := startServer(t, serverOptions{env: map[string]string{"DATABASE_TIMEOUT": "300ms"}})
	c, _ := s.signedIn("metrics@example.com")
	gqltest.ExpectOK(t, c.Do(gqltest.MeQuery, nil))
	c.MustRefresh()
	s.client().Do(gqltest.LoginMutation, map[string]any{"email": "metrics@example.com", "password": "wrong password"})
	gqltest.ExpectOK(t, c.Do(gqltest.LogoutMutation, nil))
	s.client().Do(`{ nope }`, nil)

	for series, want := range map[string]float64{
		`gqlauth_auth_events_total{event="register"}`:                                               1,
		`gqlauth_auth_events_total{event="login"}`:                                                  1,
		`gqlauth_auth_events_total{event="login_failed"}`:                                           1,
		`gqlauth_auth_events_total{event="refresh"}`:                                                1,
		`gqlauth_auth_events_total{event="logout"}`:                                                 1,
		`gqlauth_auth_events_total{event="refresh_reuse"}`:                                          0,
		`gqlauth_graphql_operations_total{operation="me",outcome="ok"}`:                             1,
		`gqlauth_graphql_operations_total{operation="login",outcome="ok"}`:                          1,
		`gqlauth_graphql_operations_total{operation="login",outcome="UNAUTHENTICATED"}`:             1,
		`gqlauth_graphql_operations_total{operation="invalid",outcome="GRAPHQL_VALIDATION_FAILED"}`: 1,
		`gqlauth_graphql_operation_duration_seconds_count{operation="me"}`:                          1,
		`gqlauth_password_hashes_in_flight`:                                                         0,
		`gqlauth_password_hashes_waiting`:                                                           0,
		`gqlauth_database_errors_total{kind="unavailable"}`:                                         0,
	} {
		if got := metricValue(t, s, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	if got := metricValue(t, s, `gqlauth_http_requests_total{code="200",route="/graphql"}`); got < 6 {
		t.Errorf("HTTP requests to /graphql = %v", got)
	}

	// A database outage is counted.
	s.db.Stop()
	gqltest.ExpectCode(t, c.Do(gqltest.MeQuery, nil), "UNAUTHENTICATED") // cookies were cleared by logout
	s.client().Bearer("x").Do(gqltest.MeQuery, nil)
	s.client().Do(gqltest.LoginMutation, map[string]any{"email": "metrics@example.com", "password": gqltest.Password})
	if got := metricValue(t, s, `gqlauth_database_errors_total{kind="unavailable"}`); got < 1 {
		t.Errorf("database errors = %v, want at least 1", got)
	}
}

func TestAccessLog(t *testing.T) {
	s := startServer(t, serverOptions{})
	c := s.client()
	c.Header.Set("X-Request-ID", "req-abc-123")
	r := c.Do(`query Profile { me { id } }`, nil)
	if r.HTTP.Header.Get("X-Request-ID") != "req-abc-123" {
		t.Fatalf("X-Request-ID = %q", r.HTTP.Header.Get("X-Request-ID"))
	}
	if !s.logged("msg=request", "request_id=req-abc-123", "operation=Profile", "status=200", "duration_ms=") {
		t.Fatalf("no access line with id, operation, status and duration:\n%s", s.logs.String())
	}
	c.Do(`{ me { id } }`, nil)
	if !s.logged("msg=request", "operation=me", "status=200") {
		t.Fatal("an anonymous operation is not named by its fields")
	}
}

func TestJSONLogs(t *testing.T) {
	var buf bytes.Buffer
	log := web.NewLogger(&buf, "json", slog.LevelWarn)
	log.Info("hidden")
	ctx := context.Background()
	h := web.RequestID(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { ctx = r.Context() }))
	req, _ := http.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("X-Request-ID", "json-1")
	h.ServeHTTP(discardWriter{}, req)
	log.WarnContext(ctx, "shown", "event", "x")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("lines = %q, want only the warning", lines)
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatal(err)
	}
	if rec["msg"] != "shown" || rec["request_id"] != "json-1" || rec["level"] != "WARN" {
		t.Fatalf("record = %v", rec)
	}
}

type discardWriter struct{}

func (discardWriter) Header() http.Header         { return http.Header{} }
func (discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (discardWriter) WriteHeader(int)             {}

// TestMetricsAddr moves /metrics off the public listener.
func TestMetricsAddr(t *testing.T) {
	s := startServer(t, serverOptions{env: map[string]string{"METRICS_ADDR": "127.0.0.1:0"}})
	if resp, _ := get(t, s.base+"/metrics", nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("/metrics on the public listener: %d, want 404", resp.StatusCode)
	}
	resp, body := get(t, "http://"+s.MetricsAddr()+"/metrics", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "gqlauth_auth_events_total") {
		t.Fatalf("/metrics on METRICS_ADDR: %d", resp.StatusCode)
	}
}

// TestNoSecretsInLogs runs every operation and checks that no password or
// token reaches the log, while the security events do.
func TestNoSecretsInLogs(t *testing.T) {
	s := startServer(t, serverOptions{})
	c, p := s.signedIn("quiet@example.com")
	rt := c.Cookie(web.CookieRefresh)
	p2 := c.MustRefresh()
	gqltest.ExpectOK(t, c.Do(gqltest.MeQuery, nil))
	c.Do(gqltest.LoginMutation, map[string]any{"email": "quiet@example.com", "password": "wrong password 123"})
	gqltest.ExpectOK(t, c.Do(gqltest.LogoutMutation, nil))
	logs := s.logs.String()
	for _, secret := range []string{gqltest.Password, "wrong password 123", p.AccessToken, rt, p2.AccessToken, c.Cookie(web.CookieRefresh)} {
		if secret != "" && strings.Contains(logs, secret) {
			t.Fatalf("the log contains a secret (%.12s…)", secret)
		}
	}
	for _, event := range []string{"event=register", "event=login", "event=login_failed", "event=refresh", "event=logout"} {
		if !s.logged(event, "request_id=") {
			t.Errorf("no %s line with a request id", event)
		}
	}
}
