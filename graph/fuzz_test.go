package graph

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gqlauth/gqlauth/internal/auth"
	"github.com/gqlauth/gqlauth/internal/authtest"
)

// FuzzGraphQLBody posts arbitrary bodies to /graphql on the real handler and
// embedded database: never a 5xx, always a JSON answer with an allowed
// status, and a malformed body is never echoed back.
func FuzzGraphQLBody(f *testing.F) {
	for _, seed := range []string{
		`{"query":"{ me { id } }"}`,
		`{"query":"mutation { logout }"}`,
		`{"query":"mutation($e: String!, $p: String!) { login(input: {email: $e, password: $p}) { accessToken } }","variables":{"e":"a@example.com","p":"password123"}}`,
		`{"query":"mutation { register(input: {name: \"F\", email: \"fuzz@example.com\", password: \"password123\", passwordConfirm: \"password123\"}) { id } }"}`,
		`[{"query":"{ me { id } }"}]`,
		`{"query": "`,
		`{"query":{"$ne":null}}`,
		`{"query":"{ me { id } }","variables":[1,2]}`,
		`{"query":"{ me { id } }","operationName":7}`,
		`{"query":"{ __schema { types { name } } }"}`,
		`null`, `""`, `{}`, "\x00\xff",
	} {
		f.Add([]byte(seed))
	}
	env := authtest.New(f, authtest.Options{Config: func(c *auth.Config) { c.LoginThrottle = auth.DefaultLoginThrottle(0) }})
	h := NewHandler(testOptions(env.Service))
	allowed := map[int]bool{200: true, 400: true, 406: true, 413: true, 422: true}
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/graphql", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if !allowed[rec.Code] {
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body.String())
		}
		var resp struct {
			Errors []struct {
				Extensions map[string]any `json:"extensions"`
			} `json:"errors"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
			t.Fatalf("answer is not JSON (%v): %q", err, rec.Body.String())
		}
		if rec.Code == http.StatusBadRequest && len(body) >= 8 && bytes.Contains(rec.Body.Bytes(), body) {
			t.Fatalf("the body was echoed: %q", rec.Body.String())
		}
		for _, e := range resp.Errors {
			if e.Extensions["code"] == "INTERNAL_SERVER_ERROR" {
				t.Fatalf("internal error for %q: %s", body, rec.Body.String())
			}
		}
	})
}
