package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/gqlauth/gqlauth/internal/mongostore"
	"github.com/gqlauth/gqlauth/internal/token"
	"github.com/gqlauth/gqlauth/internal/web"
)

func TestRegister(t *testing.T) {
	s := startServer(t, serverOptions{})
	c := s.client()

	t.Run("OK", func(t *testing.T) {
		r := c.do(registerMutation, map[string]any{"input": map[string]any{
			"name": "  Ann  ", "email": "  Ann@Example.COM ", "password": testPassword, "passwordConfirm": testPassword,
		}})
		expectOK(t, r)
		var u userJSON
		r.decode(t, "register", &u)
		if len(u.ID) != 24 || u.Name != "Ann" || u.Email != "ann@example.com" || u.Photo != "" || u.Role != "USER" || !u.Verified || u.CreatedAt.IsZero() {
			t.Fatalf("user = %+v", u)
		}
		if c.cookie(web.CookieAccess) != "" {
			t.Fatal("register must not sign in")
		}
		// The stored password is a bcrypt hash, and the API never shows it.
		if strings.Contains(r.Body, "password") || strings.Contains(r.Body, "$2a$") {
			t.Fatalf("response leaks the password: %s", r.Body)
		}
		var doc bson.M
		if err := s.Store().Database().Collection(mongostore.CollUsers).FindOne(context.Background(), bson.M{"email": "ann@example.com"}).Decode(&doc); err != nil {
			t.Fatal(err)
		}
		if h, _ := doc["password"].(string); !strings.HasPrefix(h, "$2a$04$") {
			t.Fatalf("stored password = %q, want a cost-4 bcrypt hash", h)
		}
	})

	t.Run("ErrConflict", func(t *testing.T) {
		r := c.do(registerMutation, registerInput("ANN@example.com"))
		expectCode(t, r, "CONFLICT")
		if r.HTTP.StatusCode != http.StatusOK || r.Errors[0].Message != "Account already exist" {
			t.Fatalf("response %d: %s", r.HTTP.StatusCode, r.Body)
		}
	})

	long := strings.Repeat("x", 73)
	euro25 := strings.Repeat("€", 25) // 25 characters, 75 bytes
	cases := []struct {
		name  string
		input map[string]any
		field string
	}{
		{"ErrEmail", map[string]any{"name": "A", "email": "not an email", "password": testPassword, "passwordConfirm": testPassword}, "email"},
		{"ErrEmailDisplayName", map[string]any{"name": "A", "email": "Ann <a@example.com>", "password": testPassword, "passwordConfirm": testPassword}, "email"},
		{"ErrPasswordShort", map[string]any{"name": "A", "email": "short@example.com", "password": "1234567", "passwordConfirm": "1234567"}, "password"},
		{"ErrPasswordLong", map[string]any{"name": "A", "email": "long@example.com", "password": long, "passwordConfirm": long}, "password"},
		{"ErrPasswordBytesNotChars", map[string]any{"name": "A", "email": "euro@example.com", "password": euro25, "passwordConfirm": euro25}, "password"},
		{"ErrPasswordsDiffer", map[string]any{"name": "A", "email": "differ@example.com", "password": testPassword, "passwordConfirm": testPassword + "!"}, "passwordConfirm"},
		{"ErrNameEmpty", map[string]any{"name": "   ", "email": "noname@example.com", "password": testPassword, "passwordConfirm": testPassword}, "name"},
		{"ErrNameLong", map[string]any{"name": strings.Repeat("n", 101), "email": "longname@example.com", "password": testPassword, "passwordConfirm": testPassword}, "name"},
		{"ErrPhoto", map[string]any{"name": "A", "email": "photo@example.com", "password": testPassword, "passwordConfirm": testPassword, "photo": "ftp://example.com/a.png"}, "photo"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := c.do(registerMutation, map[string]any{"input": tc.input})
			expectCode(t, r, "BAD_USER_INPUT")
			if got := r.Errors[0].Extensions["field"]; got != tc.field {
				t.Fatalf("field = %v, want %s", got, tc.field)
			}
			// Nothing was written.
			if n, _ := s.Store().Database().Collection(mongostore.CollUserEmails).CountDocuments(context.Background(), bson.M{"_id": tc.input["email"]}); n != 0 {
				t.Fatalf("a refused registration claimed its e-mail")
			}
		})
	}

	t.Run("OKPhoto", func(t *testing.T) {
		r := c.do(registerMutation, map[string]any{"input": map[string]any{
			"name": "P", "email": "withphoto@example.com", "password": testPassword, "passwordConfirm": testPassword, "photo": "https://example.com/p.png",
		}})
		var u userJSON
		r.decode(t, "register", &u)
		if u.Photo != "https://example.com/p.png" {
			t.Fatalf("photo = %q", u.Photo)
		}
	})
}

// TestRegisterConcurrent sends 20 registrations of one e-mail at once:
// exactly one user, 19 CONFLICT, no internal error.
func TestRegisterConcurrent(t *testing.T) {
	s := startServer(t, serverOptions{})
	expectOneRegistration(t, []*testServer{s}, "Race@Example.com", 20)
	users, err := s.Store().Database().Collection(mongostore.CollUsers).CountDocuments(context.Background(), bson.M{"email": "race@example.com"})
	if err != nil || users != 1 {
		t.Fatalf("users = %d (%v), want 1", users, err)
	}
}

func TestLogin(t *testing.T) {
	s := startServer(t, serverOptions{})
	c := s.client()
	u := c.mustRegister("login@example.com")

	t.Run("OK", func(t *testing.T) {
		c := s.client()
		r := c.do(loginMutation, map[string]any{"email": "  LOGIN@example.com", "password": testPassword})
		expectOK(t, r)
		var p authPayload
		r.decode(t, "login", &p)
		if p.User.ID != u.ID || p.AccessToken == "" {
			t.Fatalf("payload = %+v", p)
		}
		if p.AccessToken != c.cookie(web.CookieAccess) || c.cookie(web.CookieRefresh) == "" || c.cookie(web.CookieLoggedIn) != "true" {
			t.Fatal("login did not set the three cookies")
		}
		claims, err := s.Tokens().Verify(token.Access, p.AccessToken)
		if err != nil {
			t.Fatal(err)
		}
		if !claims.ExpiresAt.Equal(p.AccessTokenExpiresAt) {
			t.Fatalf("accessTokenExpiresAt %v != exp %v", p.AccessTokenExpiresAt, claims.ExpiresAt)
		}
	})

	// An unknown e-mail and a wrong password look the same.
	var messages []string
	for _, tc := range []struct{ name, email, password string }{
		{"ErrWrongPassword", "login@example.com", "wrong password"},
		{"ErrUnknownEmail", "nobody@example.com", testPassword},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := s.client()
			r := c.do(loginMutation, map[string]any{"email": tc.email, "password": tc.password})
			expectCode(t, r, "UNAUTHENTICATED")
			messages = append(messages, r.Errors[0].Message)
			if c.cookie(web.CookieAccess) != "" {
				t.Fatal("a failed login set cookies")
			}
		})
	}
	if len(messages) != 2 || messages[0] != messages[1] || messages[0] != "Incorrect email or password" {
		t.Fatalf("messages = %q, want the same for both", messages)
	}

	t.Run("ErrBadEmail", func(t *testing.T) {
		r := c.do(loginMutation, map[string]any{"email": "nope", "password": testPassword})
		expectCode(t, r, "BAD_USER_INPUT")
	})
	t.Run("ErrPasswordOver72Bytes", func(t *testing.T) {
		// bcrypt would ignore the bytes after 72: refuse before comparing.
		r := c.do(loginMutation, map[string]any{"email": "login@example.com", "password": testPassword + strings.Repeat("x", 72)})
		expectCode(t, r, "BAD_USER_INPUT")
		if r.Errors[0].Extensions["field"] != "password" {
			t.Fatalf("field = %v", r.Errors[0].Extensions["field"])
		}
	})
	t.Run("OKLongUserAgentTruncated", func(t *testing.T) {
		c := s.client()
		c.header.Set("User-Agent", strings.Repeat("é", 5000))
		var p authPayload
		c.login("login@example.com").decode(t, "login", &p)
		claims, err := s.Tokens().Verify(token.Access, p.AccessToken)
		if err != nil {
			t.Fatal(err)
		}
		sess, err := s.Store().SessionByID(context.Background(), claims.SessionID)
		if err != nil {
			t.Fatal(err)
		}
		if len(sess.UserAgent) > 512 || !utf8.ValidString(sess.UserAgent) || sess.UserAgent == "" {
			t.Fatalf("stored User-Agent: %d bytes, valid UTF-8 %v", len(sess.UserAgent), utf8.ValidString(sess.UserAgent))
		}
	})
	t.Run("ErrUnverified", func(t *testing.T) {
		s.createUser("unverified@example.com", false)
		r := s.client().login("unverified@example.com")
		expectCode(t, r, "FORBIDDEN")
		if r.Errors[0].Message != "Please verify your account" {
			t.Fatalf("message = %q", r.Errors[0].Message)
		}
	})
}

// TestCookies checks every cookie attribute of login, refresh and logout,
// with the defaults and with each attribute configured.
func TestCookies(t *testing.T) {
	check := func(t *testing.T, s *testServer, secure bool, domain string, sameSite http.SameSite) {
		c := s.client()
		c.mustRegister("cookies@example.com")
		r := c.login("cookies@example.com")
		expectOK(t, r)
		byName := map[string]*http.Cookie{}
		for _, ck := range r.HTTP.Cookies() {
			byName[ck.Name] = ck
		}
		want := []struct {
			name     string
			httpOnly bool
			maxAge   int
		}{
			{web.CookieAccess, true, 15 * 60},
			{web.CookieRefresh, true, 60 * 60},
			{web.CookieLoggedIn, false, 60 * 60},
		}
		for _, w := range want {
			ck := byName[w.name]
			if ck == nil {
				t.Fatalf("login did not set %s", w.name)
			}
			if ck.HttpOnly != w.httpOnly || ck.Path != "/" || ck.Secure != secure || ck.Domain != domain || ck.SameSite != sameSite {
				t.Errorf("%s attributes: HttpOnly=%v Path=%q Secure=%v Domain=%q SameSite=%v", w.name, ck.HttpOnly, ck.Path, ck.Secure, ck.Domain, ck.SameSite)
			}
			if ck.MaxAge != w.maxAge {
				t.Errorf("%s Max-Age = %d, want %d", w.name, ck.MaxAge, w.maxAge)
			}
		}
		if byName[web.CookieLoggedIn].Value != "true" {
			t.Errorf("logged_in = %q", byName[web.CookieLoggedIn].Value)
		}

		// The cookie jar drops Secure cookies over plain HTTP and cookies
		// for another domain: hand the refresh token over explicitly.
		rc := s.client()
		rc.setCookie(web.CookieRefresh, byName[web.CookieRefresh].Value)
		r = rc.do(refreshMutation, nil)
		expectOK(t, r)
		if len(r.HTTP.Cookies()) != 3 {
			t.Fatalf("refresh set %d cookies, want 3", len(r.HTTP.Cookies()))
		}
		for _, ck := range r.HTTP.Cookies() {
			if ck.Secure != secure || ck.Domain != domain || ck.SameSite != sameSite || ck.MaxAge <= 0 {
				t.Errorf("refresh %s attributes wrong: %+v", ck.Name, ck)
			}
		}

		r = rc.do(logoutMutation, nil)
		expectOK(t, r)
		expired := map[string]bool{}
		for _, ck := range r.HTTP.Cookies() {
			if ck.MaxAge < 0 && ck.Value == "" && ck.Path == "/" && ck.Domain == domain {
				expired[ck.Name] = true
			}
		}
		if !expired[web.CookieAccess] || !expired[web.CookieRefresh] || !expired[web.CookieLoggedIn] {
			t.Fatalf("logout expired %v, want all three: %v", expired, r.HTTP.Header["Set-Cookie"])
		}
	}
	t.Run("Defaults", func(t *testing.T) {
		check(t, startServer(t, serverOptions{}), false, "", http.SameSiteLaxMode)
	})
	t.Run("Configured", func(t *testing.T) {
		s := startServer(t, serverOptions{env: map[string]string{
			"COOKIE_SECURE": "true", "COOKIE_DOMAIN": "example.test", "COOKIE_SAMESITE": "Strict",
		}})
		check(t, s, true, "example.test", http.SameSiteStrictMode)
	})
	t.Run("SameSiteNone", func(t *testing.T) {
		s := startServer(t, serverOptions{env: map[string]string{"COOKIE_SECURE": "true", "COOKIE_SAMESITE": "None"}})
		check(t, s, true, "", http.SameSiteNoneMode)
	})
}

func TestMe(t *testing.T) {
	s := startServer(t, serverOptions{})
	c, p := s.signedIn("me@example.com")

	t.Run("OKCookie", func(t *testing.T) {
		r := c.do(meQuery, nil)
		expectOK(t, r)
		var u userJSON
		r.decode(t, "me", &u)
		if u.ID != p.User.ID || u.Email != "me@example.com" {
			t.Fatalf("me = %+v", u)
		}
	})
	t.Run("OKBearer", func(t *testing.T) {
		r := c.bearer(p.AccessToken).do(meQuery, nil)
		expectOK(t, r)
	})
	t.Run("OKGet", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, s.base+"/graphql?query="+strings.ReplaceAll(meQuery, " ", "+"), nil)
		req.Header.Set("Authorization", "Bearer "+p.AccessToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		expectOK(t, readGQL(t, resp))
	})
	t.Run("ErrNoToken", func(t *testing.T) {
		r := s.client().do(meQuery, nil)
		expectCode(t, r, "UNAUTHENTICATED")
		if r.Errors[0].Message != "You are not logged in" || r.HTTP.StatusCode != http.StatusOK {
			t.Fatalf("response %d: %s", r.HTTP.StatusCode, r.Body)
		}
	})
	t.Run("ErrGarbageToken", func(t *testing.T) {
		expectCode(t, c.bearer("garbage").do(meQuery, nil), "UNAUTHENTICATED")
	})
	t.Run("ErrExpired", func(t *testing.T) {
		past := time.Now().Add(-time.Hour)
		tok, err := s.Tokens().Sign(token.Access, token.Claims{Subject: p.User.ID, SessionID: mongostore.SessionID(p.User.ID, 1), IssuedAt: past, ExpiresAt: past.Add(15 * time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		r := c.bearer(tok).do(meQuery, nil)
		expectCode(t, r, "UNAUTHENTICATED")
		if r.Errors[0].Message != "Token is invalid or has expired" {
			t.Fatalf("message = %q", r.Errors[0].Message)
		}
	})
	t.Run("ErrNotVerified", func(t *testing.T) {
		c, p := s.signedIn("later-unverified@example.com")
		setVerified(t, s, p.User.ID, false)
		expectCode(t, c.do(meQuery, nil), "FORBIDDEN")
		expectCode(t, c.do(refreshMutation, nil), "FORBIDDEN")
	})
	t.Run("ErrUserGone", func(t *testing.T) {
		c, p := s.signedIn("gone@example.com")
		oid, _ := bson.ObjectIDFromHex(p.User.ID)
		if _, err := s.Store().Database().Collection(mongostore.CollUsers).DeleteOne(context.Background(), bson.M{"_id": oid}); err != nil {
			t.Fatal(err)
		}
		r := c.do(meQuery, nil)
		expectCode(t, r, "UNAUTHENTICATED")
		if r.Errors[0].Message != "User no longer exist" {
			t.Fatalf("message = %q", r.Errors[0].Message)
		}
		expectCode(t, c.do(refreshMutation, nil), "UNAUTHENTICATED")
	})
}

func setVerified(t *testing.T, s *testServer, userID string, verified bool) {
	t.Helper()
	oid, _ := bson.ObjectIDFromHex(userID)
	_, err := s.Store().Database().Collection(mongostore.CollUsers).UpdateOne(context.Background(), bson.M{"_id": oid}, bson.M{"$set": bson.M{"verified": verified}})
	if err != nil {
		t.Fatal(err)
	}
}

// TestTokenConfusion presents each kind of token where the other is
// expected.
func TestTokenConfusion(t *testing.T) {
	s := startServer(t, serverOptions{})
	c, p := s.signedIn("confused@example.com")
	refreshTok := c.cookie(web.CookieRefresh)

	t.Run("ErrRefreshTokenAsBearer", func(t *testing.T) {
		expectCode(t, c.bearer(refreshTok).do(meQuery, nil), "UNAUTHENTICATED")
	})
	t.Run("ErrRefreshTokenAsAccessCookie", func(t *testing.T) {
		other := s.client()
		other.setCookie(web.CookieAccess, refreshTok)
		expectCode(t, other.do(meQuery, nil), "UNAUTHENTICATED")
	})
	t.Run("ErrAccessTokenAsRefreshCookie", func(t *testing.T) {
		other := s.client()
		other.setCookie(web.CookieRefresh, p.AccessToken)
		expectCode(t, other.do(refreshMutation, nil), "UNAUTHENTICATED")
	})
	t.Run("OKControl", func(t *testing.T) {
		expectOK(t, c.bearer(p.AccessToken).do(meQuery, nil))
	})
}

// TestForgedTokens presents tokens the server did not sign, or that were
// changed after signing.
func TestForgedTokens(t *testing.T) {
	s := startServer(t, serverOptions{})
	c, p := s.signedIn("forged@example.com")
	parts := strings.Split(p.AccessToken, ".")
	pubPEM, err := base64.StdEncoding.DecodeString(testKeys.pub)
	if err != nil {
		t.Fatal(err)
	}
	hs256 := forgeHS256(t, pubPEM, s.Tokens().SigningKeyID(), p.User.ID, mongostore.SessionID(p.User.ID, 1))
	claims := decodeJWTPart(t, parts[1])
	claims["sub"] = "000000000000000000000000"
	tampered := parts[0] + "." + encodeJWTPart(claims) + "." + parts[2]
	header := decodeJWTPart(t, parts[0])
	header["alg"] = "none"
	algNone := encodeJWTPart(header) + "." + parts[1] + "."

	for name, tok := range map[string]string{
		"ErrAlgNone":            algNone,
		"ErrHS256WithPublicKey": hs256,
		"ErrTamperedClaims":     tampered,
	} {
		t.Run(name, func(t *testing.T) {
			expectCode(t, c.bearer(tok).do(meQuery, nil), "UNAUTHENTICATED")
			rc := s.client()
			rc.setCookie(web.CookieRefresh, tok)
			expectCode(t, rc.do(refreshMutation, nil), "UNAUTHENTICATED")
		})
	}
	t.Run("ErrRefreshNotIssuedByServer", func(t *testing.T) {
		// Correctly signed, but never issued: no stored hash.
		now := time.Now()
		tok, err := s.Tokens().Sign(token.Refresh, token.Claims{Subject: p.User.ID, SessionID: mongostore.SessionID(p.User.ID, 1), IssuedAt: now, ExpiresAt: now.Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		rc := s.client()
		rc.setCookie(web.CookieRefresh, tok)
		expectCode(t, rc.do(refreshMutation, nil), "UNAUTHENTICATED")
	})
}

func TestRefresh(t *testing.T) {
	clk := &clock{}
	s := startServer(t, serverOptions{clock: clk})

	t.Run("ErrNoCookie", func(t *testing.T) {
		r := s.client().do(refreshMutation, nil)
		expectCode(t, r, "UNAUTHENTICATED")
		if r.Errors[0].Message != "Please provide refresh token" {
			t.Fatalf("message = %q", r.Errors[0].Message)
		}
	})

	t.Run("OKRotates", func(t *testing.T) {
		c, p := s.signedIn("rotate@example.com")
		rt1 := c.cookie(web.CookieRefresh)
		clk.Advance(time.Second) // new iat, so the new tokens differ
		p2 := c.mustRefresh()
		rt2 := c.cookie(web.CookieRefresh)
		if rt2 == rt1 || p2.AccessToken == p.AccessToken || p2.User.ID != p.User.ID {
			t.Fatal("refresh did not issue new tokens")
		}
		if c.cookie(web.CookieAccess) != p2.AccessToken {
			t.Fatal("refresh did not set the access cookie")
		}
		expectOK(t, c.bearer(p2.AccessToken).do(meQuery, nil))
		// Still the same session: one live session.
		if n := s.liveSessions(p.User.ID); n != 1 {
			t.Fatalf("live sessions = %d, want 1", n)
		}
	})

	t.Run("OKGraceWindow", func(t *testing.T) {
		c, p := s.signedIn("grace@example.com")
		other := c.clone() // a second tab with the same cookies
		c.mustRefresh()
		clk.Advance(4 * time.Second) // inside the 5 s default
		p2 := other.mustRefresh()
		if other.cookie(web.CookieRefresh) == c.cookie(web.CookieRefresh) {
			t.Fatal("the grace caller must get its own refresh token")
		}
		// Both tabs stay signed in, each token usable once.
		expectOK(t, other.bearer(p2.AccessToken).do(meQuery, nil))
		c.mustRefresh()
		other.mustRefresh()
		if n := s.liveSessions(p.User.ID); n != 1 {
			t.Fatalf("live sessions = %d, want 1", n)
		}
	})

	t.Run("ErrReuseRevokesSession", func(t *testing.T) {
		c, p := s.signedIn("reuse@example.com")
		stolen := c.clone()
		p2 := c.mustRefresh()
		clk.Advance(6 * time.Second) // outside the grace window
		r := stolen.do(refreshMutation, nil)
		expectCode(t, r, "UNAUTHENTICATED")
		// The whole session is revoked: the legitimate tokens too.
		expectCode(t, c.bearer(p2.AccessToken).do(meQuery, nil), "UNAUTHENTICATED")
		expectCode(t, c.do(refreshMutation, nil), "UNAUTHENTICATED")
		if n := s.liveSessions(p.User.ID); n != 0 {
			t.Fatalf("live sessions = %d, want 0", n)
		}
		if !s.logged("event=refresh_reuse", p.User.ID) {
			t.Fatal("reuse was not logged as a security event")
		}
		// A failed refresh clears the cookies, so the page knows.
		if stolen.cookie(web.CookieLoggedIn) != "" {
			t.Fatal("logged_in survived a refused refresh")
		}
	})

	t.Run("ErrSpentTokenAfterGraceOnceMore", func(t *testing.T) {
		// Inside the window every caller gets a token; outside, the same
		// spent token revokes.
		c, _ := s.signedIn("twice@example.com")
		tab2, tab3 := c.clone(), c.clone()
		c.mustRefresh()
		tab2.mustRefresh()
		clk.Advance(11 * time.Second)
		expectCode(t, tab3.do(refreshMutation, nil), "UNAUTHENTICATED")
		expectCode(t, tab2.do(meQuery, nil), "UNAUTHENTICATED")
	})

	// Last: it moves the shared clock past every token's expiry.
	t.Run("ErrExpiredWithinClockLeeway", func(t *testing.T) {
		c, _ := s.signedIn("leeway@example.com")
		// Verification tolerates 5 s of skew; the stored expiry does not.
		clk.Advance(60*time.Minute + 2*time.Second)
		expectCode(t, c.do(refreshMutation, nil), "UNAUTHENTICATED")
	})
}

// TestRefreshConcurrent sends 10 refreshes with one token at once: all
// succeed, and one session stays live.
func TestRefreshConcurrent(t *testing.T) {
	s := startServer(t, serverOptions{})
	c, p := s.signedIn("tabs@example.com")
	const n = 10
	tabs := make([]*client, n)
	for i := range tabs {
		tabs[i] = c.clone()
	}
	results := make([]*gqlResponse, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { results[i] = tabs[i].do(refreshMutation, nil) })
	}
	wg.Wait()
	seen := map[string]bool{}
	for i, r := range results {
		expectOK(t, r)
		rt := tabs[i].cookie(web.CookieRefresh)
		if seen[rt] {
			t.Fatalf("two callers got the same refresh token")
		}
		seen[rt] = true
	}
	if got := s.liveSessions(p.User.ID); got != 1 {
		t.Fatalf("live sessions = %d, want 1", got)
	}
	// Every returned token works once.
	for _, tab := range tabs {
		tab.mustRefresh()
		expectOK(t, tab.do(meQuery, nil))
	}
	if s.logged("event=refresh_reuse") {
		t.Fatal("concurrent tabs triggered reuse detection")
	}
}

// TestRefreshRacingLogout races a refresh against a logout of the same
// session: whatever order they land in, the session ends revoked and no
// token the refresh returned works.
func TestRefreshRacingLogout(t *testing.T) {
	s := startServer(t, serverOptions{})
	s.client().mustRegister("racer@example.com")
	for range 10 {
		raceRefreshAndLogout(t, s, s, "racer@example.com")
	}
}

// raceRefreshAndLogout signs in on s1, then refreshes on s2 while logging
// out on s1, at once: whatever the order, the session ends revoked and no
// token the refresh returned works, on either instance.
func raceRefreshAndLogout(t *testing.T, s1, s2 *testServer, email string) {
	t.Helper()
	c := s1.client()
	c.mustLogin(email)
	refresher, logouter := c.clone().withBase(s2.base), c.clone()
	var refreshed, loggedOut *gqlResponse
	var wg sync.WaitGroup
	wg.Go(func() { refreshed = refresher.do(refreshMutation, nil) })
	wg.Go(func() { loggedOut = logouter.do(logoutMutation, nil) })
	wg.Wait()
	expectOK(t, loggedOut)
	if refreshed.code() == "" {
		if refresher.cookie(web.CookieRefresh) == "" {
			t.Fatal("a successful refresh set no cookie")
		}
		var p authPayload
		refreshed.decode(t, "refresh", &p)
		for _, s := range []*testServer{s1, s2} {
			expectCode(t, s.client().bearer(p.AccessToken).do(meQuery, nil), "UNAUTHENTICATED")
		}
		expectCode(t, refresher.withBase(s1.base).do(refreshMutation, nil), "UNAUTHENTICATED")
	} else {
		expectCode(t, refreshed, "UNAUTHENTICATED")
	}
	expectCode(t, c.do(meQuery, nil), "UNAUTHENTICATED")
	expectCode(t, c.do(refreshMutation, nil), "UNAUTHENTICATED")
}

func TestLogout(t *testing.T) {
	s := startServer(t, serverOptions{})

	t.Run("OKRevokesBothTokens", func(t *testing.T) {
		c, p := s.signedIn("logout@example.com")
		kept := c.clone() // an attacker's copy of the cookies
		r := c.do(logoutMutation, nil)
		expectOK(t, r)
		if string(r.Data["logout"]) != "true" {
			t.Fatalf("logout = %s", r.Data["logout"])
		}
		if c.cookie(web.CookieAccess) != "" || c.cookie(web.CookieRefresh) != "" || c.cookie(web.CookieLoggedIn) != "" {
			t.Fatal("logout did not clear the cookies")
		}
		expectCode(t, kept.do(meQuery, nil), "UNAUTHENTICATED")
		expectCode(t, kept.bearer(p.AccessToken).do(meQuery, nil), "UNAUTHENTICATED")
		expectCode(t, kept.do(refreshMutation, nil), "UNAUTHENTICATED")
	})
	t.Run("OKBearerOnly", func(t *testing.T) {
		c, p := s.signedIn("bearer-logout@example.com")
		expectOK(t, c.bearer(p.AccessToken).do(logoutMutation, nil))
		expectCode(t, c.do(refreshMutation, nil), "UNAUTHENTICATED")
	})
	t.Run("OKRefreshCookieOnly", func(t *testing.T) {
		c, p := s.signedIn("refresh-logout@example.com")
		only := s.client()
		only.setCookie(web.CookieRefresh, c.cookie(web.CookieRefresh))
		expectOK(t, only.do(logoutMutation, nil))
		expectCode(t, c.bearer(p.AccessToken).do(meQuery, nil), "UNAUTHENTICATED")
	})
	t.Run("OKIdempotentSignedOut", func(t *testing.T) {
		r := s.client().do(logoutMutation, nil)
		expectOK(t, r)
		if string(r.Data["logout"]) != "true" {
			t.Fatalf("logout = %s", r.Data["logout"])
		}
		r = s.client().bearer("garbage").do(logoutMutation, nil)
		expectOK(t, r)
	})
	t.Run("OKOtherSessionsUnaffected", func(t *testing.T) {
		c1, _ := s.signedIn("two-devices@example.com")
		c2 := s.client()
		c2.mustLogin("two-devices@example.com")
		expectOK(t, c1.do(logoutMutation, nil))
		expectOK(t, c2.do(meQuery, nil))
	})
	if !s.logged("event=logout") {
		t.Fatal("logout was not logged as a security event")
	}
}

// TestSessionCap signs one user in 51 times: the 51st revokes the first.
func TestSessionCap(t *testing.T) {
	s := startServer(t, serverOptions{})
	first, p := s.signedIn("cap@example.com")
	for range 49 {
		s.client().mustLogin("cap@example.com")
	}
	expectOK(t, first.do(meQuery, nil))
	s.client().mustLogin("cap@example.com")
	expectCode(t, first.do(meQuery, nil), "UNAUTHENTICATED")
	expectCode(t, first.do(refreshMutation, nil), "UNAUTHENTICATED")
	if n := s.liveSessions(p.User.ID); n != 50 {
		t.Fatalf("live sessions = %d, want 50", n)
	}
}

// forgeHS256 signs access-token claims with HS256, using the server's public
// key as the HMAC secret: the classic algorithm-confusion attack.
func forgeHS256(t *testing.T, secret []byte, kid, sub, sid string) string {
	t.Helper()
	now := time.Now()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"iss": "http://localhost:8000", "sub": sub, "sid": sid, "jti": "forged",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	})
	tok.Header["kid"] = kid
	tok.Header["typ"] = "at+jwt"
	s, err := tok.SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func decodeJWTPart(t *testing.T, part string) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(part)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func encodeJWTPart(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

// TestNoSecretsInLogs runs every operation and checks that no password or
// token reaches the log, while the security events do.
func TestNoSecretsInLogs(t *testing.T) {
	s := startServer(t, serverOptions{})
	c, p := s.signedIn("quiet@example.com")
	rt := c.cookie(web.CookieRefresh)
	p2 := c.mustRefresh()
	expectOK(t, c.do(meQuery, nil))
	c.do(loginMutation, map[string]any{"email": "quiet@example.com", "password": "wrong password 123"})
	expectOK(t, c.do(logoutMutation, nil))
	logs := s.logs.String()
	for _, secret := range []string{testPassword, "wrong password 123", p.AccessToken, rt, p2.AccessToken, c.cookie(web.CookieRefresh)} {
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
