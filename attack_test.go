package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/gqlauth/gqlauth/internal/gqltest"
	"github.com/gqlauth/gqlauth/internal/web"
)

// TestAttacksOnTheServer is the part of the attack table that needs the
// whole server: the middleware in front of /graphql (cross-origin
// protection) and the HTTP server's own limits. The GraphQL layer's table
// is graph.TestAttacks, the verifier's token.TestVerifyRefuses, the
// throttle's and the hasher's auth.TestLoginThrottle and
// auth.TestHashingBounds.
func TestAttacksOnTheServer(t *testing.T) {
	s := startServer(t, serverOptions{env: map[string]string{"RATE_LIMIT_IP_PER_MINUTE": "0"}})
	_, p := s.signedIn("victim@example.com")
	const meBody = `{"query":"{ me { id } }"}`
	registerBody := `{"query":"mutation { register(input: {name: \"X\", email: \"csrf@example.com\", password: \"password123\", passwordConfirm: \"password123\"}) { id } }"}`
	raw := func(method, body string, header http.Header) func(t *testing.T) gqltest.Outcome {
		return func(t *testing.T) gqltest.Outcome {
			return gqltest.Raw(t, s.base, method, "/graphql", "application/json", body, header)
		}
	}
	crossSite := func(h http.Header) http.Header {
		h.Set("Origin", "https://evil.example")
		h.Set("Sec-Fetch-Site", "cross-site")
		return h
	}
	forbidden := gqltest.Outcome{Status: 403, Code: "FORBIDDEN"}
	gqltest.RunAttacks(t, s.records().Snapshot, []gqltest.Attack{
		{Name: "CrossSiteRegister", Send: raw(http.MethodPost, registerBody, crossSite(http.Header{})), Want: forbidden},
		{Name: "CrossOriginWithoutFetchMetadata", Send: raw(http.MethodPost, registerBody, http.Header{"Origin": {"https://evil.example"}}), Want: forbidden},
		{Name: "CrossOriginLogout", Send: raw(http.MethodPost, `{"query":"mutation { logout }"}`, crossSite(gqltest.CookieHeader(web.CookieAccess, p.AccessToken))), Want: forbidden},
		{Name: "TrustedOriginPasses", Send: raw(http.MethodPost, meBody, http.Header{"Origin": {"http://localhost:3000"}, "Sec-Fetch-Site": {"same-site"}}), Want: gqltest.Unauthenticated},
		{Name: "HeaderOverLimit", Send: raw(http.MethodPost, meBody, http.Header{"X-Padding": {strings.Repeat("h", 100<<10)}}), Want: gqltest.Outcome{Status: 431}},
	})
	// The victim's session survived every attack.
	gqltest.ExpectOK(t, s.client().Bearer(p.AccessToken).Do(gqltest.MeQuery, nil))
}

// TestAttackProductionSurface checks that production exposes neither
// introspection, the playground, nor the metrics on the public listener.
func TestAttackProductionSurface(t *testing.T) {
	s := startServer(t, serverOptions{env: map[string]string{"APP_ENV": "production", "BCRYPT_COST": "10"}})
	get := func(path string) func(t *testing.T) gqltest.Outcome {
		return func(t *testing.T) gqltest.Outcome { return gqltest.Raw(t, s.base, http.MethodGet, path, "", "", nil) }
	}
	gql := func(query string) func(t *testing.T) gqltest.Outcome {
		return func(t *testing.T) gqltest.Outcome { return gqltest.OutcomeOf(s.client().Do(query, nil)) }
	}
	gqltest.RunAttacks(t, s.records().Snapshot, []gqltest.Attack{
		{Name: "Introspection", Send: gql(`{ __schema { types { name } } }`), Want: gqltest.Validation},
		{Name: "TypeIntrospection", Send: gql(`{ __type(name: "User") { fields { name } } }`), Want: gqltest.Validation},
		{Name: "Playground", Send: get("/"), Want: gqltest.Outcome{Status: 404}},
		{Name: "MetricsOnThePublicListener", Send: get("/metrics"), Want: gqltest.Outcome{Status: 404}},
	})
}
