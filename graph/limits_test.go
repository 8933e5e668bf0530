package graph

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql/errcode"

	"github.com/gqlauth/gqlauth/internal/auth"
	"github.com/gqlauth/gqlauth/internal/authtest"
	"github.com/gqlauth/gqlauth/internal/gqltest"
	"github.com/gqlauth/gqlauth/internal/web"
)

// TestIPLimit covers the per-IP limit on login, register, refresh,
// changePassword and the e-mail mutations, and X-Forwarded-For only from
// trusted proxies.
func TestIPLimit(t *testing.T) {
	t.Run("LimitsSignInsNotMe", func(t *testing.T) {
		s := newTestServer(t, authtest.Options{}, func(o *Options) { o.RateLimiter = web.NewRateLimiter(3, nil) })
		c := s.client(t)
		c.MustRegister("ip@example.com") // 1
		c.MustLogin("ip@example.com")    // 2
		c.MustRefresh()                  // 3
		before := s.env.DB.Snapshot(t)
		r := c.Login("ip@example.com")
		gqltest.ExpectCode(t, r, "RATE_LIMITED")
		if r.HTTP.Header.Get("Retry-After") == "" || r.Errors[0].Extensions["retryAfter"] == nil {
			t.Fatalf("no Retry-After: %v %s", r.HTTP.Header, r.Body)
		}
		gqltest.ExpectCode(t, c.Do(gqltest.RegisterMutation, gqltest.RegisterInput("ip2@example.com")), "RATE_LIMITED")
		gqltest.ExpectCode(t, c.Do(gqltest.RefreshMutation, nil), "RATE_LIMITED")
		gqltest.ExpectCode(t, c.Do(gqltest.ChangePasswordMutation, map[string]any{"c": gqltest.Password, "n": gqltest.NewPassword}), "RATE_LIMITED")
		// The e-mail mutations too: each would write a limit record, a
		// token or an e-mail.
		for _, q := range []string{
			`mutation { sendVerificationEmail(email: "ip@example.com") }`,
			`mutation { verifyEmail(token: "x") }`,
			`mutation { requestPasswordReset(email: "ip@example.com") }`,
			`mutation { resetPassword(token: "x", newPassword: "a new password of length") }`,
			`mutation { requestEmailChange(newEmail: "ip3@example.com", currentPassword: "` + gqltest.Password + `") }`,
			`mutation { confirmEmailChange(token: "x") }`,
		} {
			gqltest.ExpectCode(t, c.Do(q, nil), "RATE_LIMITED")
		}
		if after := s.env.DB.Snapshot(t); len(after) != len(before) || !mapsEqual(before, after) {
			t.Fatalf("limited requests wrote: %v -> %v", before, after)
		}
		for range 10 {
			gqltest.ExpectOK(t, c.Do(gqltest.MeQuery, nil))
		}
		// X-Forwarded-For from an untrusted peer is ignored.
		c.Header.Set("X-Forwarded-For", "203.0.113.7")
		gqltest.ExpectCode(t, c.Login("ip@example.com"), "RATE_LIMITED")
	})
	t.Run("TrustedProxy", func(t *testing.T) {
		s := newTestServer(t, authtest.Options{}, func(o *Options) {
			o.RateLimiter = web.NewRateLimiter(1, nil)
			o.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
		})
		s.client(t).MustRegister("proxied@example.com") // 127.0.0.1's one call
		a := s.client(t)
		a.Header.Set("X-Forwarded-For", "203.0.113.7")
		gqltest.ExpectOK(t, a.Login("proxied@example.com"))
		gqltest.ExpectCode(t, a.Login("proxied@example.com"), "RATE_LIMITED")
		// The client is the rightmost untrusted hop: a spoofed left part
		// does not buy a new budget.
		a.Header.Set("X-Forwarded-For", "198.51.100.99, 203.0.113.7")
		gqltest.ExpectCode(t, a.Login("proxied@example.com"), "RATE_LIMITED")
		b := s.client(t)
		b.Header.Set("X-Forwarded-For", "203.0.113.8")
		gqltest.ExpectOK(t, b.Login("proxied@example.com"))
	})
}

func mapsEqual(a, b map[string]int64) bool {
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestRules is the table of the validation rules this server adds to
// gqlparser's, and of the labels that name operations in metrics and logs.
func TestRules(t *testing.T) {
	s := newTestServer(t, authtest.Options{}, nil)
	for _, tc := range []struct {
		name, query, code, message string
	}{
		{"OneSignIn", `mutation { login(input: {email: "a@example.com", password: "password1"}) { accessToken } }`, "UNAUTHENTICATED", ""},
		{"TwoSignIns", `mutation { login(input: {email: "a@example.com", password: "password1"}) { accessToken } register(input: {name: "A", email: "a@example.com", password: "password1", passwordConfirm: "password1"}) { id } }`, "GRAPHQL_VALIDATION_FAILED", "At most one login"},
		{"SessionsTwiceThroughFragments", `{ ...A ...B } fragment A on Query { a: sessions { id } } fragment B on Query { b: sessions { id } }`, "GRAPHQL_VALIDATION_FAILED", "At most one sessions"},
		{"SameFragmentTwiceIsOnce", `{ ...A ...A } fragment A on Query { sessions { id } }`, "UNAUTHENTICATED", ""},
		{"LogoutAllTwice", `mutation { a: logoutAll b: logoutAll }`, "GRAPHQL_VALIDATION_FAILED", "At most one logoutAll"},
		{"IntrospectionOn", `{ __schema { queryType { name } } }`, "", ""},
		{"TypenameAlways", `{ __typename }`, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := s.client(t).Do(tc.query, nil)
			if r.Code() != tc.code || (tc.message != "" && !strings.Contains(r.Errors[0].Message, tc.message)) {
				t.Fatalf("got %q %s, want %q %q", r.Code(), r.Body, tc.code, tc.message)
			}
		})
	}
	t.Run("IntrospectionOff", func(t *testing.T) {
		off := newTestServer(t, authtest.Options{}, func(o *Options) { o.Introspection = false })
		for _, q := range []string{`{ __schema { queryType { name } } }`, `{ __type(name: "User") { name } }`} {
			gqltest.ExpectCode(t, off.client(t).Do(q, nil), "GRAPHQL_VALIDATION_FAILED")
		}
		gqltest.ExpectOK(t, off.client(t).Do(`{ __typename }`, nil))
	})
}

// TestOperationLabels: metrics name operations by their root fields (a
// bounded set), the access log by the client's name when it is plain.
func TestOperationLabels(t *testing.T) {
	var seen []string
	s := newTestServer(t, authtest.Options{}, func(o *Options) {
		o.Observe = func(op, outcome string, _ time.Duration) { seen = append(seen, op+" "+outcome) }
	})
	for _, q := range []string{
		`{ me { id } }`,
		`query Profile { me { id } sessions { id } }`,
		`{ ... on Query { me { id } } }`,
		`{ nope }`,
		`mutation { logout }`,
	} {
		s.client(t).Do(q, nil)
	}
	gqltest.Raw(t, s.base, "GET", "/graphql?query=mutation%7Blogout%7D", "", "", nil)
	want := []string{"me UNAUTHENTICATED", "me+sessions UNAUTHENTICATED", "me UNAUTHENTICATED", "invalid GRAPHQL_VALIDATION_FAILED", "logout ok", "logout BAD_REQUEST"}
	if strings.Join(seen, ", ") != strings.Join(want, ", ") {
		t.Fatalf("observed %q, want %q", seen, want)
	}
	for _, tc := range []struct{ client, label, want string }{
		{"Profile", "me", "Profile"},
		{"", "me", "me"},
		{"has space", "me", "me"},
		{strings.Repeat("x", 65), "me", "me"},
	} {
		if got := logName(tc.client, tc.label); got != tc.want {
			t.Errorf("logName(%q, %q) = %q, want %q", tc.client, tc.label, got, tc.want)
		}
	}
}

// TestCodesMatchGqlgen: the code table's gqlgen codes are gqlgen's own.
func TestCodesMatchGqlgen(t *testing.T) {
	for ours, theirs := range map[string]string{
		auth.CodeParseFailed:      errcode.ParseFailed,
		auth.CodeValidationFailed: errcode.ValidationFailed,
	} {
		if ours != theirs {
			t.Errorf("%q is gqlgen's %q", ours, theirs)
		}
	}
}
