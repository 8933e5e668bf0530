package graph

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"

	"github.com/gqlauth/gqlauth/internal/auth"
	"github.com/gqlauth/gqlauth/internal/authtest"
	"github.com/gqlauth/gqlauth/internal/mongostore"
	"github.com/gqlauth/gqlauth/internal/web"
)

// testOptions are the handler's options as the server sets them by default.
func testOptions(svc *auth.Service) Options {
	return Options{
		Resolver:        &Resolver{Auth: svc},
		Logger:          slog.New(slog.DiscardHandler),
		Cookies:         web.CookieConfig{SameSite: http.SameSiteLaxMode},
		MaxBodyBytes:    64 << 10,
		ComplexityLimit: 200,
		DepthLimit:      20,
		Introspection:   true,
	}
}

// countingStore is the real store, counting the reads that authenticate a
// request.
type countingStore struct {
	auth.Store
	users, revocations atomic.Int64
}

func (c *countingStore) UserByID(ctx context.Context, id string) (*auth.User, error) {
	c.users.Add(1)
	return c.Store.UserByID(ctx, id)
}

func (c *countingStore) SessionRevoked(ctx context.Context, id string) (bool, error) {
	c.revocations.Add(1)
	return c.Store.SessionRevoked(ctx, id)
}

// postJSON posts a GraphQL request and decodes the answer.
func postJSON(t *testing.T, h http.Handler, query, bearer string) map[string]any {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query})
	req := httptest.NewRequest(http.MethodPost, "/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var out map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("%d: %s", rec.Code, rec.Body)
	}
	return out
}

// TestIdentityOncePerRequest (finding 3 of the security review): whatever
// the number of fields that need the signed-in user, a request
// authenticates once: two database reads, not two per alias.
func TestIdentityOncePerRequest(t *testing.T) {
	counter := &countingStore{}
	env := authtest.New(t, authtest.Options{Store: func(s *mongostore.Store) auth.Store { counter.Store = s; return counter }})
	_, tokens := env.SignedIn(t, "aliases@example.com")
	h := NewHandler(testOptions(env.Service))

	var hundred strings.Builder
	hundred.WriteString("{")
	for i := range 100 {
		fmt.Fprintf(&hundred, " a%d: me { id }", i)
	}
	hundred.WriteString(" }")
	for _, tc := range []struct{ name, query string }{
		{"HundredAliases", hundred.String()},
		{"MeAndSessions", "{ me { id } sessions { id } again: me { email } }"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			counter.users.Store(0)
			counter.revocations.Store(0)
			out := postJSON(t, h, tc.query, tokens.Access)
			if out["errors"] != nil {
				t.Fatalf("errors: %v", out["errors"])
			}
			if data, _ := out["data"].(map[string]any); tc.name == "HundredAliases" && len(data) != 100 {
				t.Fatalf("%d fields answered, want 100", len(data))
			}
			if u, r := counter.users.Load(), counter.revocations.Load(); u != 1 || r != 1 {
				t.Fatalf("%d user reads and %d revocation reads, want 1 of each", u, r)
			}
		})
	}
}

// TestRefreshAnswerUndelivered (finding 5 of the security review): a client
// whose connection closes after its refresh ran and before the answer was
// written keeps a working old token, and its retry after the grace window
// is not taken for reuse.
func TestRefreshAnswerUndelivered(t *testing.T) {
	env := authtest.New(t, authtest.Options{})
	_, tokens := env.SignedIn(t, "undelivered@example.com")
	srv := newServer(testOptions(env.Service))
	resolved := make(chan struct{}, 1)
	srv.AroundResponses(func(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
		resp := next(ctx)
		if graphql.GetOperationContext(ctx).OperationName == "Gone" {
			resolved <- struct{}{} // the refresh ran; now the client goes away
			<-ctx.Done()
		}
		return resp
	})
	ts := httptest.NewUnstartedServer(web.Auth(web.CookieConfig{}, nil)(srv))
	closed := make(chan struct{}, 4)
	ts.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateClosed {
			closed <- struct{}{} // after its handler returned
		}
	}
	ts.Start()
	defer ts.Close()

	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	body := `{"operationName":"Gone","query":"mutation Gone { refresh { accessToken } }"}`
	fmt.Fprintf(conn, "POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nCookie: %s=%s\r\nContent-Length: %d\r\n\r\n%s",
		web.CookieRefresh, tokens.Refresh, len(body), body)
	select {
	case <-resolved:
	case <-time.After(10 * time.Second):
		t.Fatal("the refresh did not run")
	}
	conn.Close()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not finish the request")
	}

	// Retry with the old token, after the grace window.
	env.Clock.Advance(time.Minute)
	req, _ := http.NewRequest(http.MethodPost, ts.URL+"/graphql", strings.NewReader(`{"query":"mutation { refresh { accessToken } }"}`))
	req.Header.Set("Content-Type", "application/json")
	req.AddCookie(&http.Cookie{Name: web.CookieRefresh, Value: tokens.Refresh})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if bytes.Contains(answer, []byte(`"errors"`)) {
		t.Fatalf("the old token was refused after the undelivered answer: %s", answer)
	}
	if env.Events.Has(auth.EventRefreshReuse) {
		t.Fatal("the retry was reported as reuse")
	}
}

// TestRefreshHalfClosedConnectionCannotFork: a client that closes only its
// half of the connection makes the server believe the answer undelivered,
// yet reads it. Undoing must not leave it two live refresh tokens of one
// session (the old, made usable again, and the new): the new one is
// withdrawn first.
func TestRefreshHalfClosedConnectionCannotFork(t *testing.T) {
	env := authtest.New(t, authtest.Options{})
	_, tokens := env.SignedIn(t, "halfclose@example.com")
	srv := newServer(testOptions(env.Service))
	resolved := make(chan struct{}, 1)
	srv.AroundResponses(func(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
		resp := next(ctx)
		if graphql.GetOperationContext(ctx).OperationName == "Half" {
			resolved <- struct{}{}
			<-ctx.Done()
		}
		return resp
	})
	ts := httptest.NewServer(web.Auth(web.CookieConfig{}, nil)(srv))
	defer ts.Close()

	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"operationName":"Half","query":"mutation Half { refresh { accessToken } }"}`
	fmt.Fprintf(conn, "POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nCookie: %s=%s\r\nContent-Length: %d\r\n\r\n%s",
		web.CookieRefresh, tokens.Refresh, len(body), body)
	<-resolved
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	var received string
	for _, c := range resp.Cookies() {
		if c.Name == web.CookieRefresh {
			received = c.Value
		}
	}
	resp.Body.Close()
	if received == "" {
		t.Fatal("the half-closed client received no new refresh token")
	}

	env.Clock.Advance(time.Minute)
	refresh := func(tok string) bool {
		_, _, err := env.Service.Refresh(context.Background(), tok)
		return err == nil
	}
	newWorks := refresh(received)
	oldWorks := refresh(tokens.Refresh)
	if newWorks && oldWorks {
		t.Fatal("both the old and the new refresh token worked: the session forked")
	}
	if !newWorks && !oldWorks {
		t.Fatal("neither token works")
	}
}
