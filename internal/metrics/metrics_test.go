package metrics_test

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gqlauth/gqlauth/internal/auth"
	"github.com/gqlauth/gqlauth/internal/metrics"
)

type hashing struct{ inFlight, waiting int }

func (h hashing) InFlight() int { return h.inFlight }
func (h hashing) Waiting() int  { return h.waiting }

func TestMetrics(t *testing.T) {
	m := metrics.New(hashing{inFlight: 2, waiting: 7})
	m.AuthEvent(auth.EventLogin)
	m.AuthEvent(auth.EventLogin)
	m.DatabaseError(true)
	m.Operation("me", "ok", 3*time.Millisecond)
	m.Request("/graphql", 200)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, line := range []string{
		`gqlauth_auth_events_total{event="login"} 2`,
		`gqlauth_auth_events_total{event="refresh_reuse"} 0`, // every event, from the start
		`gqlauth_database_errors_total{kind="unavailable"} 1`,
		`gqlauth_database_errors_total{kind="other"} 0`,
		`gqlauth_graphql_operations_total{operation="me",outcome="ok"} 1`,
		`gqlauth_http_requests_total{code="200",route="/graphql"} 1`,
		`gqlauth_password_hashes_in_flight 2`,
		`gqlauth_password_hashes_waiting 7`,
	} {
		if !strings.Contains(string(body), line+"\n") {
			t.Errorf("no %q in the metrics", line)
		}
	}
	for _, e := range auth.Events {
		if !strings.Contains(string(body), `event="`+string(e)+`"`) {
			t.Errorf("event %s is not counted from the start", e)
		}
	}
}
