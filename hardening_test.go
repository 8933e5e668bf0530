package main

// The findings of the security review (issue 9), each shown over real HTTP
// against the real server. The unit tests beside the code prove the same
// at their own depth (see the README's failure table).

import (
	"context"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gqlauth/gqlauth/internal/authtest"
	"github.com/gqlauth/gqlauth/internal/gqltest"
	"github.com/gqlauth/gqlauth/internal/smtptest"
	"github.com/gqlauth/gqlauth/internal/web"
)

// TestSessionOutsideTheWindow (finding 1): an attacker who once knew the
// password holds the oldest of 50 sessions; the owner's 51st sign-in stops
// before revoking it. Today's listing and revoke-all look only at the
// newest 50 numbers, so the attacker's session survived changePassword
// and logoutAll. resetPassword revokes by the same path.
func TestSessionOutsideTheWindow(t *testing.T) {
	for _, action := range []string{"changePassword", "logoutAll", "resetPassword"} {
		t.Run(action, func(t *testing.T) {
			smtp := smtptest.Start(t, smtptest.Options{})
			s := startServer(t, serverOptions{env: mailEnv(smtp, nil)})
			email := gqltest.UniqueEmail(t, "window")
			owner := s.client()
			u := owner.MustRegister(email)
			attacker := s.client()
			attacker.MustLogin(email) // session 1
			for range 49 {            // sessions 2…50
				owner = s.client()
				owner.MustLogin(email)
			}
			if err := s.records().LeaveSignInHalfDone(context.Background(), u.ID); err != nil { // sign-in 51 did not revoke session 1
				t.Fatal(err)
			}
			gqltest.ExpectOK(t, attacker.Do(gqltest.MeQuery, nil))
			if n := len(owner.Sessions()); n != 51 {
				t.Fatalf("sessions lists %d, want all 51 live ones", n)
			}
			switch action {
			case "changePassword":
				gqltest.ExpectOK(t, owner.Do(gqltest.ChangePasswordMutation, map[string]any{"c": gqltest.Password, "n": gqltest.NewPassword}))
				gqltest.ExpectOK(t, owner.Do(gqltest.MeQuery, nil))
			case "logoutAll":
				gqltest.ExpectOK(t, owner.Do(gqltest.LogoutAllMutation, nil))
			case "resetPassword":
				gqltest.ExpectOK(t, s.client().Do(requestResetMutation, map[string]any{"e": email}))
				_, tok := linkIn(t, smtp.Wait(t, 1, 15*time.Second)[0])
				gqltest.ExpectOK(t, s.client().Do(resetMutation, map[string]any{"t": tok, "p": gqltest.NewPassword}))
				gqltest.ExpectCode(t, owner.Do(gqltest.MeQuery, nil), "UNAUTHENTICATED")
			}
			gqltest.ExpectCode(t, attacker.Do(gqltest.MeQuery, nil), "UNAUTHENTICATED")
			gqltest.ExpectCode(t, attacker.Do(gqltest.RefreshMutation, nil), "UNAUTHENTICATED")
			if n := s.liveSessions(u.ID); action == "changePassword" && n != 1 || action != "changePassword" && n != 0 {
				t.Fatalf("%d live sessions after %s", n, action)
			}
		})
	}
}

// TestNoStoreOnEveryGraphQLAnswer (finding 9): every answer of /graphql,
// whichever layer writes it, carries Cache-Control: no-store and nosniff.
func TestNoStoreOnEveryGraphQLAnswer(t *testing.T) {
	s := startServer(t, serverOptions{env: map[string]string{"MAX_BODY_BYTES": "2048"}})
	_, p := s.signedIn(gqltest.UniqueEmail(t, "cache"))
	bearer := http.Header{"Authorization": {"Bearer " + p.AccessToken}}
	cross := http.Header{"Origin": {"https://evil.example"}, "Sec-Fetch-Site": {"cross-site"}}
	for _, tc := range []struct {
		name, method, path, contentType, body string
		header                                http.Header
		status                                int
	}{
		{"POST200", http.MethodPost, "/graphql", "application/json", `{"query":"{ me { email } }"}`, bearer, 200},
		{"GET200", http.MethodGet, "/graphql?query=%7Bme%7Bemail%7D%7D", "", "", bearer, 200},
		{"NotJSON400", http.MethodPost, "/graphql", "application/json", `{`, nil, 400},
		{"MutationOverGET406", http.MethodGet, "/graphql?query=mutation%7Blogout%7D", "", "", nil, 406},
		{"TooLarge413", http.MethodPost, "/graphql", "application/json", `{"query":"` + strings.Repeat(" ", 4096) + `{ me { id } }"}`, nil, 413},
		{"Validation422", http.MethodPost, "/graphql", "application/json", `{"query":"{ nope }"}`, nil, 422},
		{"CrossOrigin403", http.MethodPost, "/graphql", "application/json", `{"query":"{ me { id } }"}`, cross, 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, s.base+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			for k, v := range tc.header {
				req.Header[k] = v
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if cc, ns := resp.Header.Get("Cache-Control"), resp.Header.Get("X-Content-Type-Options"); cc != "no-store" || ns != "nosniff" {
				t.Fatalf("Cache-Control %q, X-Content-Type-Options %q", cc, ns)
			}
		})
	}
}

// TestProductionDefaults (finding 8): in production /metrics is only on
// METRICS_ADDR, and the image defaults to production.
func TestProductionDefaults(t *testing.T) {
	t.Run("MetricsOffThePublicListener", func(t *testing.T) {
		s := startServer(t, serverOptions{env: map[string]string{"APP_ENV": "production", "BCRYPT_COST": "10"}})
		if resp, _ := get(t, s.base+"/metrics", nil); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("GET /metrics in production = %d, want 404", resp.StatusCode)
		}
		// No EMAIL_HOST in production is warned about (that no link is
		// logged there is TestDevelopmentMailbox's).
		if !s.logged("EMAIL_HOST is not set", "delivered to nobody") {
			t.Fatalf("no warning about the development mailbox in production:\n%s", s.logs.String())
		}
	})
	t.Run("MetricsOnMetricsAddr", func(t *testing.T) {
		s := startServer(t, serverOptions{env: map[string]string{"APP_ENV": "production", "BCRYPT_COST": "10", "METRICS_ADDR": "127.0.0.1:0"}})
		if resp, body := get(t, "http://"+s.MetricsAddr()+"/metrics", nil); resp.StatusCode != 200 || !strings.Contains(body, "gqlauth_auth_events_total") {
			t.Fatalf("GET METRICS_ADDR/metrics = %d", resp.StatusCode)
		}
		if resp, _ := get(t, s.base+"/metrics", nil); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("GET /metrics = %d, want 404", resp.StatusCode)
		}
	})
	t.Run("ImageDefaultsToProduction", func(t *testing.T) {
		b, err := os.ReadFile("Dockerfile")
		if err != nil {
			t.Fatal(err)
		}
		final := string(b[strings.LastIndex(string(b), "\nFROM "):])
		if !strings.Contains(final, "APP_ENV=production") {
			t.Fatal("the image's final stage does not set APP_ENV=production")
		}
	})
}

// TestRevocationOutlivesLoweredLifetime (finding 6): a session signed in
// under SESSION_MAX_LIFETIME=720h and logged out after a restart with 1h
// stays revoked after the sweep, while its refresh token still verifies.
func TestRevocationOutlivesLoweredLifetime(t *testing.T) {
	dir := t.TempDir()
	clk := &authtest.Clock{}
	env := map[string]string{"DATA_DIR": dir, "REFRESH_TOKEN_EXPIRES_IN": "24h"}
	first := startServer(t, serverOptions{clock: clk, env: env})
	c, _ := first.signedIn(gqltest.UniqueEmail(t, "lifetime"))
	kept := c.Clone() // the thief's copy of the cookies
	if err := first.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	env["SESSION_MAX_LIFETIME"] = "1h"
	second := startServer(t, serverOptions{clock: clk, env: env})
	c, kept = c.WithBase(second.base), kept.WithBase(second.base)
	gqltest.ExpectOK(t, c.Do(gqltest.LogoutMutation, nil))
	clk.Advance(3 * time.Hour)
	if _, err := second.records().Store.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	gqltest.ExpectCode(t, kept.Do(gqltest.RefreshMutation, nil), "UNAUTHENTICATED")
	if kept.Cookie(web.CookieRefresh) != "" {
		t.Fatal("the refused refresh left its cookie")
	}
}
