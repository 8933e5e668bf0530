package main

import (
	"bytes"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/gqlauth/gqlauth/internal/gqltest"
	"github.com/gqlauth/gqlauth/internal/storetest"
	"github.com/gqlauth/gqlauth/internal/token"
)

func get(t *testing.T, u string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestRoutes(t *testing.T) {
	s := startServer(t, serverOptions{})
	for _, tc := range []struct {
		path   string
		status int
		body   string
	}{
		{"/api/healthchecker", 200, `{"message":"Welcome to FastAPI with MongoDB"}`},
		{"/healthz", 200, `"ok"`},
		{"/readyz", 200, `"ready"`},
		{"/", 200, "graphiql"},
		{"/nope", 404, ""},
	} {
		t.Run(strings.Trim(tc.path, "/"), func(t *testing.T) {
			resp, body := get(t, s.base+tc.path, nil)
			if resp.StatusCode != tc.status || !strings.Contains(body, tc.body) {
				t.Fatalf("GET %s = %d %q", tc.path, resp.StatusCode, body)
			}
			if resp.Header.Get("X-Request-ID") == "" {
				t.Fatal("no X-Request-ID in the response")
			}
		})
	}
	t.Run("RequestIDHonoured", func(t *testing.T) {
		resp, _ := get(t, s.base+"/healthz", http.Header{"X-Request-Id": {"abc-123"}})
		if resp.Header.Get("X-Request-ID") != "abc-123" {
			t.Fatalf("X-Request-ID = %q", resp.Header.Get("X-Request-ID"))
		}
		resp, _ = get(t, s.base+"/healthz", http.Header{"X-Request-Id": {"bad id\twith spaces"}})
		if id := resp.Header.Get("X-Request-ID"); id == "" || strings.Contains(id, " ") {
			t.Fatalf("a malformed id was echoed: %q", id)
		}
	})
	t.Run("MethodNotAllowed", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPut, s.base+"/graphql", strings.NewReader("{}"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Fatalf("PUT /graphql = %d", resp.StatusCode)
		}
	})
}

// TestJWKS checks that the published key has the signing kid, and that it
// verifies an issued token.
func TestJWKS(t *testing.T) {
	s := startServer(t, serverOptions{})
	_, p := s.signedIn("jwks@example.com")
	resp, body := get(t, s.base+"/.well-known/jwks.json", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	var set struct {
		Keys []struct{ Kty, Kid, Alg, Use, N, E string }
	}
	if err := json.Unmarshal([]byte(body), &set); err != nil {
		t.Fatal(err)
	}
	header := gqltest.JWTPart(t, p.AccessToken, 0)
	if len(set.Keys) != 1 {
		t.Fatalf("keys = %s", body)
	}
	k := set.Keys[0]
	if k.Kid != header["kid"] || k.Alg != "RS256" || k.Use != "sig" || k.Kty != "RSA" {
		t.Fatalf("key %+v does not match token header %v", k, header)
	}
	n, _ := base64.RawURLEncoding.DecodeString(k.N)
	e, _ := base64.RawURLEncoding.DecodeString(k.E)
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	if kid, _ := token.Thumbprint(pub); kid != k.Kid {
		t.Fatalf("kid %s is not the key's thumbprint %s", k.Kid, kid)
	}
	_, err := jwt.Parse(p.AccessToken, func(*jwt.Token) (any, error) { return pub, nil }, jwt.WithValidMethods([]string{"RS256"}))
	if err != nil {
		t.Fatalf("the published key does not verify an issued token: %v", err)
	}
}

// TestHTTPRequestErrors checks the request errors answered before execution
// and the statuses the contract gives them.
func TestHTTPRequestErrors(t *testing.T) {
	s := startServer(t, serverOptions{env: map[string]string{"GRAPHQL_COMPLEXITY_LIMIT": "5"}})
	c := s.client()
	usersBefore := countUsers(t, s)

	t.Run("ErrMutationOverGET", func(t *testing.T) {
		q := url.QueryEscape(`mutation { register(input: {name: "G", email: "get@example.com", password: "password123", passwordConfirm: "password123"}) { id } }`)
		resp, body := get(t, s.base+"/graphql?query="+q, nil)
		if resp.StatusCode != http.StatusNotAcceptable {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
	})
	t.Run("ErrFormPost", func(t *testing.T) {
		form := url.Values{"query": {`mutation { register(input: {name: "F", email: "form@example.com", password: "password123", passwordConfirm: "password123"}) { id } }`}}
		resp := c.Post("application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
		r := gqltest.ReadResponse(t, resp)
		if resp.StatusCode != http.StatusBadRequest || r.Code() != "BAD_REQUEST" {
			t.Fatalf("status %d: %s", resp.StatusCode, r.Body)
		}
	})
	t.Run("ErrBody8MiB", func(t *testing.T) {
		big := `{"query":"{ me { id } }","variables":{"pad":"` + strings.Repeat("a", 8<<20) + `"}}`
		resp := c.Post("application/json", strings.NewReader(big))
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
	t.Run("ErrBody8MiBChunked", func(t *testing.T) {
		big := `{"query":"{ me { id } }","variables":{"pad":"` + strings.Repeat("a", 8<<20) + `"}}`
		// io.MultiReader hides the length, so the body is sent chunked.
		resp := c.Post("application/json", io.MultiReader(strings.NewReader(big)))
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
	t.Run("ErrMalformedJSONNotEchoed", func(t *testing.T) {
		resp := c.Post("application/json", strings.NewReader(`{"query": "secret-marker-1234`))
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode < 400 || resp.StatusCode > 499 || !bytes.Contains(b, []byte("BAD_REQUEST")) {
			t.Fatalf("status %d: %s", resp.StatusCode, b)
		}
		if bytes.Contains(b, []byte("secret-marker-1234")) {
			t.Fatalf("the body was echoed: %s", b)
		}
	})
	t.Run("ErrBatch", func(t *testing.T) {
		resp := c.Post("application/json", strings.NewReader(`[{"query":"{ me { id } }"},{"query":"{ me { id } }"}]`))
		r := gqltest.ReadResponse(t, resp)
		if resp.StatusCode != http.StatusBadRequest || r.Code() != "BAD_REQUEST" {
			t.Fatalf("status %d: %s", resp.StatusCode, r.Body)
		}
	})
	t.Run("ErrParse", func(t *testing.T) {
		r := c.Do(`{ me { id `, nil)
		if r.HTTP.StatusCode != http.StatusUnprocessableEntity || r.Code() != "GRAPHQL_PARSE_FAILED" {
			t.Fatalf("status %d: %s", r.HTTP.StatusCode, r.Body)
		}
	})
	t.Run("ErrValidation", func(t *testing.T) {
		r := c.Do(`{ me { password } }`, nil)
		if r.HTTP.StatusCode != http.StatusUnprocessableEntity || r.Code() != "GRAPHQL_VALIDATION_FAILED" {
			t.Fatalf("status %d: %s", r.HTTP.StatusCode, r.Body)
		}
	})
	t.Run("ErrVariables", func(t *testing.T) {
		r := c.Do(gqltest.RegisterMutation, map[string]any{"input": map[string]any{"name": "x"}})
		if r.HTTP.StatusCode != http.StatusUnprocessableEntity || r.Code() != "GRAPHQL_VALIDATION_FAILED" {
			t.Fatalf("status %d: %s", r.HTTP.StatusCode, r.Body)
		}
	})
	t.Run("ErrOperatorObjectAsEmail", func(t *testing.T) {
		// A Mongo operator object can never reach a query: the schema
		// types email as String.
		r := c.Do(gqltest.LoginMutation, map[string]any{"email": map[string]any{"$ne": nil}, "password": gqltest.Password})
		if r.HTTP.StatusCode != http.StatusUnprocessableEntity || r.Code() != "GRAPHQL_VALIDATION_FAILED" {
			t.Fatalf("status %d: %s", r.HTTP.StatusCode, r.Body)
		}
	})
	t.Run("ErrComplexity", func(t *testing.T) {
		r := c.Do(gqltest.MeQuery, nil) // 9 fields, limit 5
		if r.HTTP.StatusCode != http.StatusUnprocessableEntity || r.Code() != "COMPLEXITY_LIMIT_EXCEEDED" {
			t.Fatalf("status %d: %s", r.HTTP.StatusCode, r.Body)
		}
	})
	t.Run("OKWithinComplexity", func(t *testing.T) {
		r := c.Do(`{ me { id } }`, nil)
		gqltest.ExpectCode(t, r, "UNAUTHENTICATED")
		if r.HTTP.StatusCode != http.StatusOK {
			t.Fatalf("status %d", r.HTTP.StatusCode)
		}
	})
	if after := countUsers(t, s); after != usersBefore {
		t.Fatalf("refused requests created %d users", after-usersBefore)
	}
}

// TestIntrospectionAndPlayground checks both are on by default outside
// production and off in production.
func TestIntrospectionAndPlayground(t *testing.T) {
	introspect := `{ __schema { queryType { name } } }`
	t.Run("Development", func(t *testing.T) {
		s := startServer(t, serverOptions{})
		gqltest.ExpectOK(t, s.client().Do(introspect, nil))
	})
	t.Run("Production", func(t *testing.T) {
		s := startServer(t, serverOptions{env: map[string]string{"APP_ENV": "production", "BCRYPT_COST": "10"}})
		r := s.client().Do(introspect, nil)
		if len(r.Errors) == 0 {
			t.Fatalf("introspection answered in production: %s", r.Body)
		}
		resp, _ := get(t, s.base+"/", nil)
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("playground in production: %d", resp.StatusCode)
		}
	})
}

// TestCrossOrigin checks CORS and the cross-origin rule.
func TestCrossOrigin(t *testing.T) {
	s := startServer(t, serverOptions{env: map[string]string{"CLIENT_ORIGIN": "http://localhost:3000,https://app.example.com"}})
	send := func(method string, header http.Header) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, s.base+"/graphql", strings.NewReader(`{"query":"{ me { id } }"}`))
		req.Header.Set("Content-Type", "application/json")
		for k, v := range header {
			req.Header[k] = v
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	t.Run("PreflightAllowed", func(t *testing.T) {
		resp := send(http.MethodOptions, http.Header{
			"Origin": {"http://localhost:3000"}, "Access-Control-Request-Method": {"POST"}, "Access-Control-Request-Headers": {"content-type"},
		})
		if resp.Header.Get("Access-Control-Allow-Origin") != "http://localhost:3000" || resp.Header.Get("Access-Control-Allow-Credentials") != "true" {
			t.Fatalf("preflight headers: %v", resp.Header)
		}
	})
	t.Run("PreflightOtherOrigin", func(t *testing.T) {
		resp := send(http.MethodOptions, http.Header{"Origin": {"https://evil.example"}, "Access-Control-Request-Method": {"POST"}})
		if resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("CORS answered another origin: %v", resp.Header)
		}
	})
	for _, tc := range []struct {
		name   string
		header http.Header
		status int
	}{
		{"AllowedOrigin", http.Header{"Origin": {"https://app.example.com"}, "Sec-Fetch-Site": {"cross-site"}}, 200},
		{"AllowedSameSiteOrigin", http.Header{"Origin": {"http://localhost:3000"}, "Sec-Fetch-Site": {"same-site"}}, 200},
		{"ForbiddenOrigin", http.Header{"Origin": {"https://evil.example"}, "Sec-Fetch-Site": {"cross-site"}}, 403},
		{"ForbiddenOriginNoFetchMetadata", http.Header{"Origin": {"https://evil.example"}}, 403},
		{"SameOrigin", http.Header{"Sec-Fetch-Site": {"same-origin"}}, 200},
		{"NoBrowserHeaders", http.Header{}, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := send(http.MethodPost, tc.header)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if origin := tc.header.Get("Origin"); tc.status == 200 && origin != "" && resp.Header.Get("Access-Control-Allow-Origin") != origin {
				t.Fatalf("no CORS headers for %s", origin)
			}
		})
	}
}

// TestDatabaseDown stops the embedded database under a running server:
// requests fail fast with INTERNAL_SERVER_ERROR and no internals, and
// /readyz answers 503.
func TestDatabaseDown(t *testing.T) {
	s := startServer(t, serverOptions{env: map[string]string{"DATABASE_TIMEOUT": "300ms"}})
	c, _ := s.signedIn("down@example.com")
	s.db.Stop()

	start := time.Now()
	r := c.Do(gqltest.MeQuery, nil)
	elapsed := time.Since(start)
	gqltest.ExpectCode(t, r, "INTERNAL_SERVER_ERROR")
	msg := r.Errors[0].Message
	if r.HTTP.StatusCode != http.StatusOK || !strings.Contains(strings.ToLower(msg), "unavailable") {
		t.Fatalf("response %d: %s", r.HTTP.StatusCode, r.Body)
	}
	for _, leak := range []string{"127.0.0.1", "mongo", "connection", "selection", "context"} {
		if strings.Contains(strings.ToLower(r.Body), leak) {
			t.Fatalf("the error shows internals (%q): %s", leak, r.Body)
		}
	}
	if elapsed > 3*time.Second {
		t.Fatalf("took %v with a 300ms database timeout", elapsed)
	}
	requestID := r.HTTP.Header.Get("X-Request-ID")
	if !strings.Contains(s.logs.String(), "request_id="+requestID) || !strings.Contains(s.logs.String(), "request failed") {
		t.Fatal("the internal error was not logged with the request id")
	}
	resp, _ := get(t, s.base+"/readyz", nil)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/readyz = %d, want 503", resp.StatusCode)
	}
	resp, _ = get(t, s.base+"/healthz", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz = %d, want 200", resp.StatusCode)
	}
}

// TestDevelopmentKeySurvivesRestart starts without keys twice on one
// DATA_DIR: the generated key and the embedded data are kept, so a token
// from the first run works in the second.
func TestDevelopmentKeySurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"DATA_DIR": dir, "JWT_PRIVATE_KEY": "", "JWT_PUBLIC_KEY": ""}
	s1 := startServer(t, serverOptions{env: env})
	_, p := s1.signedIn("restart@example.com")
	if !strings.Contains(s1.logs.String(), "generated a development signing key") {
		t.Fatal("key generation was not logged")
	}
	if err := s1.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(token.DevKeyPath(dir, token.RS256))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "db", "fastapi.sqlite")); err != nil {
		t.Fatalf("embedded database not under DATA_DIR: %v", err)
	}

	s2 := startServer(t, serverOptions{env: env})
	gqltest.ExpectOK(t, s2.client().Bearer(p.AccessToken).Do(gqltest.MeQuery, nil))
	if strings.Contains(s2.logs.String(), "generated a development signing key") {
		t.Fatal("a second key was generated")
	}
}

func countUsers(t *testing.T, s *testServer) int64 {
	t.Helper()
	n, err := s.records().Count(t.Context(), storetest.Users)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestPlaygroundIntrospection runs the playground's own introspection query
// under the default limits: the playground must keep working.
func TestPlaygroundIntrospection(t *testing.T) {
	s := startServer(t, serverOptions{})
	q, err := os.ReadFile("testdata/introspection.graphql")
	if err != nil {
		t.Fatal(err)
	}
	r := s.client().Do(string(q), nil)
	gqltest.ExpectOK(t, r)
	if !strings.Contains(string(r.Data["__schema"]), `"AuthPayload"`) {
		t.Fatalf("schema incomplete: %.300s", r.Body)
	}
}
