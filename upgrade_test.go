package main

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gqlauth/gqlauth/internal/authtest"
	"github.com/gqlauth/gqlauth/internal/gqltest"
	"github.com/gqlauth/gqlauth/internal/storetest"
	"github.com/gqlauth/gqlauth/internal/token"
	"github.com/gqlauth/gqlauth/internal/web"
)

// upgradeFixture is testdata/upgrade/v1.json: a database and the tokens
// the release before the MAC-format refresh tokens made (see its README).
type upgradeFixture struct {
	MadeAt         time.Time                    `json:"made_at"`
	PrivateKey     string                       `json:"jwt_private_key"`
	PublicKey      string                       `json:"jwt_public_key"`
	Email          string                       `json:"email"`
	RefreshToken   string                       `json:"refresh_token"`
	AccessToken    string                       `json:"access_token"`
	RotatedRefresh string                       `json:"rotated_refresh"`
	Collections    map[string][]json.RawMessage `json:"collections"`
}

// startOnFixture starts a server on the fixture's database and keys, its
// clock a minute after the fixture was made.
func startOnFixture(t *testing.T, env map[string]string) (*testServer, upgradeFixture, *authtest.Clock) {
	t.Helper()
	b, err := os.ReadFile("testdata/upgrade/v1.json")
	if err != nil {
		t.Fatal(err)
	}
	var f upgradeFixture
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	clk := &authtest.Clock{}
	clk.Advance(f.MadeAt.Add(time.Minute).Sub(time.Now()))
	if env == nil {
		env = map[string]string{}
	}
	env["JWT_PRIVATE_KEY"], env["JWT_PUBLIC_KEY"] = f.PrivateKey, f.PublicKey
	s := startServer(t, serverOptions{clock: clk, env: env})
	if err := s.records().Import(context.Background(), f.Collections); err != nil {
		t.Fatal(err)
	}
	return s, f, clk
}

// TestUpgradeKeepsRefreshTokens: refresh tokens and sessions made by the
// release before keep working after the upgrade (issue 11); each refresh
// answers a MAC-format token, and reuse of an old token is still caught.
func TestUpgradeKeepsRefreshTokens(t *testing.T) {
	s, f, clk := startOnFixture(t, nil)
	c := s.client()
	gqltest.ExpectOK(t, c.Bearer(f.AccessToken).Do(gqltest.MeQuery, nil))

	c.SetCookie(web.CookieRefresh, f.RefreshToken)
	c.MustRefresh()
	if tok := c.Cookie(web.CookieRefresh); !strings.HasPrefix(tok, "rt2.") {
		t.Fatalf("the upgraded refresh answered %.20q…, not the MAC format", tok)
	}
	c.MustRefresh() // and the MAC-format token works in turn
	gqltest.ExpectOK(t, c.Do(gqltest.MeQuery, nil))

	other := s.client() // the fixture's other session, refreshed once before
	other.SetCookie(web.CookieRefresh, f.RotatedRefresh)
	other.MustRefresh()

	// The first old token, presented again after the grace window, is a
	// reuse: its session is revoked, as before the upgrade.
	clk.Advance(time.Minute)
	replay := s.client()
	replay.SetCookie(web.CookieRefresh, f.RefreshToken)
	gqltest.ExpectCode(t, replay.Do(gqltest.RefreshMutation, nil), "UNAUTHENTICATED")
	gqltest.ExpectCode(t, c.Do(gqltest.MeQuery, nil), "UNAUTHENTICATED")
	gqltest.ExpectOK(t, other.Do(gqltest.MeQuery, nil))

	// The old records expire and are swept like the rest (the MAC format
	// stores none).
	clk.Advance(3 * time.Hour)
	if _, err := s.records().Store.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n, err := s.records().Count(context.Background(), storetest.RefreshTokens); err != nil || n != 0 {
		t.Fatalf("%d refresh-token records left after their expiry and a sweep (%v)", n, err)
	}
}

// TestRollingUpgradeFormat: with REFRESH_TOKEN_FORMAT=jwt (every instance
// runs the new release, some not yet), the server issues refresh tokens in
// the earlier release's format (a JWT with a stored record, which that
// release can spend) and still takes the MAC format.
func TestRollingUpgradeFormat(t *testing.T) {
	s, f, _ := startOnFixture(t, map[string]string{"REFRESH_TOKEN_FORMAT": "jwt"})
	c := s.client()
	c.SetCookie(web.CookieRefresh, f.RefreshToken)
	c.MustRefresh()
	tok := c.Cookie(web.CookieRefresh)
	if h := gqltest.JWTPart(t, tok, 0); h["typ"] != "rt+jwt" || strings.HasPrefix(tok, "rt2.") {
		t.Fatalf("REFRESH_TOKEN_FORMAT=jwt issued %.20q…, not the earlier release's format", tok)
	}
	before, err := s.records().Count(context.Background(), storetest.RefreshTokens)
	if err != nil || before == 0 {
		t.Fatalf("no stored record for the JWT refresh token (%v)", err)
	}
	c.MustRefresh()
	if after, _ := s.records().Count(context.Background(), storetest.RefreshTokens); after != before+1 {
		t.Fatalf("refresh-token records %d after another refresh, want %d", after, before+1)
	}

	// A MAC-format token (issued by an instance already switched to it)
	// is still taken, and answered in the earlier format.
	claims := gqltest.JWTPart(t, c.Cookie(web.CookieRefresh), 1)
	now := s.Now()
	mac, err := s.tokens.SignRefresh(token.Claims{
		Subject: claims["sub"].(string), SessionID: claims["sid"].(string),
		IssuedAt: now, ExpiresAt: now.Add(time.Hour), SessionExpiresAt: now.Add(24 * time.Hour),
	})
	if err != nil || !strings.HasPrefix(mac, "rt2.") {
		t.Fatalf("signing a MAC token: %q %v", mac, err)
	}
	m := s.client()
	m.SetCookie(web.CookieRefresh, mac)
	m.MustRefresh()
	if tok := m.Cookie(web.CookieRefresh); strings.HasPrefix(tok, "rt2.") {
		t.Fatalf("REFRESH_TOKEN_FORMAT=jwt answered a MAC token %.20q…", tok)
	}
}
