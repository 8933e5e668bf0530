package graph

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gqlauth/gqlauth/internal/auth"
	"github.com/gqlauth/gqlauth/internal/authtest"
	"github.com/gqlauth/gqlauth/internal/gqltest"
	"github.com/gqlauth/gqlauth/internal/storetest"
	"github.com/gqlauth/gqlauth/internal/token"
	"github.com/gqlauth/gqlauth/internal/web"
)

func TestRegister(t *testing.T) {
	s := newTestServer(t, authtest.Options{}, nil)
	c := s.client(t)

	t.Run("OK", func(t *testing.T) {
		r := c.Do(gqltest.RegisterMutation, map[string]any{"input": map[string]any{
			"name": "  Ann  ", "email": "  Ann@Example.COM ", "password": gqltest.Password, "passwordConfirm": gqltest.Password,
		}})
		gqltest.ExpectOK(t, r)
		var u gqltest.User
		r.Decode(t, "register", &u)
		if len(u.ID) != 24 || u.Name != "Ann" || u.Email != "ann@example.com" || u.Photo != "" || u.Role != "USER" || !u.Verified || u.CreatedAt.IsZero() {
			t.Fatalf("user = %+v", u)
		}
		if c.Cookie(web.CookieAccess) != "" {
			t.Fatal("register must not sign in")
		}
		// The stored password is a bcrypt hash, and the API never shows it.
		if strings.Contains(r.Body, "password") || strings.Contains(r.Body, "$2a$") {
			t.Fatalf("response leaks the password: %s", r.Body)
		}
		stored, err := s.env.DB.UsersByEmail(context.Background(), "ann@example.com")
		if err != nil || len(stored) != 1 {
			t.Fatalf("stored users = %v, %v", stored, err)
		}
		if h, _ := stored[0]["password"].(string); !strings.HasPrefix(h, "$2a$04$") {
			t.Fatalf("stored password = %q, want a cost-4 bcrypt hash", h)
		}
	})

	t.Run("ErrConflict", func(t *testing.T) {
		r := c.Do(gqltest.RegisterMutation, gqltest.RegisterInput("ANN@example.com"))
		gqltest.ExpectCode(t, r, "CONFLICT")
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
		{"ErrEmail", map[string]any{"name": "A", "email": "not an email", "password": gqltest.Password, "passwordConfirm": gqltest.Password}, "email"},
		{"ErrEmailDisplayName", map[string]any{"name": "A", "email": "Ann <a@example.com>", "password": gqltest.Password, "passwordConfirm": gqltest.Password}, "email"},
		{"ErrPasswordShort", map[string]any{"name": "A", "email": "short@example.com", "password": "1234567", "passwordConfirm": "1234567"}, "password"},
		{"ErrPasswordLong", map[string]any{"name": "A", "email": "long@example.com", "password": long, "passwordConfirm": long}, "password"},
		{"ErrPasswordBytesNotChars", map[string]any{"name": "A", "email": "euro@example.com", "password": euro25, "passwordConfirm": euro25}, "password"},
		{"ErrPasswordsDiffer", map[string]any{"name": "A", "email": "differ@example.com", "password": gqltest.Password, "passwordConfirm": gqltest.Password + "!"}, "passwordConfirm"},
		{"ErrNameEmpty", map[string]any{"name": "   ", "email": "noname@example.com", "password": gqltest.Password, "passwordConfirm": gqltest.Password}, "name"},
		{"ErrNameLong", map[string]any{"name": strings.Repeat("n", 101), "email": "longname@example.com", "password": gqltest.Password, "passwordConfirm": gqltest.Password}, "name"},
		{"ErrPhoto", map[string]any{"name": "A", "email": "photo@example.com", "password": gqltest.Password, "passwordConfirm": gqltest.Password, "photo": "ftp://example.com/a.png"}, "photo"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := c.Do(gqltest.RegisterMutation, map[string]any{"input": tc.input})
			gqltest.ExpectCode(t, r, "BAD_USER_INPUT")
			if got := r.Errors[0].Extensions["field"]; got != tc.field {
				t.Fatalf("field = %v, want %s", got, tc.field)
			}
			// Nothing was written.
			if claimed, _ := s.env.DB.EmailClaimed(context.Background(), tc.input["email"].(string)); claimed {
				t.Fatalf("a refused registration claimed its e-mail")
			}
		})
	}

	t.Run("OKPhoto", func(t *testing.T) {
		r := c.Do(gqltest.RegisterMutation, map[string]any{"input": map[string]any{
			"name": "P", "email": "withphoto@example.com", "password": gqltest.Password, "passwordConfirm": gqltest.Password, "photo": "https://example.com/p.png",
		}})
		var u gqltest.User
		r.Decode(t, "register", &u)
		if u.Photo != "https://example.com/p.png" {
			t.Fatalf("photo = %q", u.Photo)
		}
	})
}

// TestRegisterConcurrent sends 20 registrations of one e-mail at once:
// exactly one user, 19 CONFLICT, no internal error.
func TestRegisterConcurrent(t *testing.T) {
	s := newTestServer(t, authtest.Options{}, nil)
	gqltest.ExpectOneRegistration(t, []string{s.base}, "Race@Example.com", 20)
	users, err := s.env.DB.UsersByEmail(context.Background(), "race@example.com")
	if err != nil || len(users) != 1 {
		t.Fatalf("users = %d (%v), want 1", len(users), err)
	}
}

func TestLogin(t *testing.T) {
	s := newTestServer(t, authtest.Options{}, nil)
	c := s.client(t)
	u := c.MustRegister("login@example.com")

	t.Run("OK", func(t *testing.T) {
		c := s.client(t)
		r := c.Do(gqltest.LoginMutation, map[string]any{"email": "  LOGIN@example.com", "password": gqltest.Password})
		gqltest.ExpectOK(t, r)
		var p gqltest.AuthPayload
		r.Decode(t, "login", &p)
		if p.User.ID != u.ID || p.AccessToken == "" {
			t.Fatalf("payload = %+v", p)
		}
		if p.AccessToken != c.Cookie(web.CookieAccess) || c.Cookie(web.CookieRefresh) == "" || c.Cookie(web.CookieLoggedIn) != "true" {
			t.Fatal("login did not set the three cookies")
		}
		claims, err := s.env.Tokens.Verify(token.Access, p.AccessToken)
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
		{"ErrUnknownEmail", "nobody@example.com", gqltest.Password},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := s.client(t)
			r := c.Do(gqltest.LoginMutation, map[string]any{"email": tc.email, "password": tc.password})
			gqltest.ExpectCode(t, r, "UNAUTHENTICATED")
			messages = append(messages, r.Errors[0].Message)
			if c.Cookie(web.CookieAccess) != "" {
				t.Fatal("a failed login set cookies")
			}
		})
	}
	if len(messages) != 2 || messages[0] != messages[1] || messages[0] != "Incorrect email or password" {
		t.Fatalf("messages = %q, want the same for both", messages)
	}

	t.Run("ErrBadEmail", func(t *testing.T) {
		r := c.Do(gqltest.LoginMutation, map[string]any{"email": "nope", "password": gqltest.Password})
		gqltest.ExpectCode(t, r, "BAD_USER_INPUT")
	})
	t.Run("ErrPasswordOver72Bytes", func(t *testing.T) {
		// bcrypt would ignore the bytes after 72: refuse before comparing.
		r := c.Do(gqltest.LoginMutation, map[string]any{"email": "login@example.com", "password": gqltest.Password + strings.Repeat("x", 72)})
		gqltest.ExpectCode(t, r, "BAD_USER_INPUT")
		if r.Errors[0].Extensions["field"] != "password" {
			t.Fatalf("field = %v", r.Errors[0].Extensions["field"])
		}
	})
	t.Run("OKLongUserAgentTruncated", func(t *testing.T) {
		c := s.client(t)
		c.Header.Set("User-Agent", strings.Repeat("é", 5000))
		var p gqltest.AuthPayload
		c.Login("login@example.com").Decode(t, "login", &p)
		claims, err := s.env.Tokens.Verify(token.Access, p.AccessToken)
		if err != nil {
			t.Fatal(err)
		}
		sess, err := s.env.Store.SessionByID(context.Background(), claims.SessionID)
		if err != nil {
			t.Fatal(err)
		}
		if len(sess.UserAgent) > 512 || !utf8.ValidString(sess.UserAgent) || sess.UserAgent == "" {
			t.Fatalf("stored User-Agent: %d bytes, valid UTF-8 %v", len(sess.UserAgent), utf8.ValidString(sess.UserAgent))
		}
	})
	t.Run("ErrUnverified", func(t *testing.T) {
		s.createUser(t, "unverified@example.com", false)
		r := s.client(t).Login("unverified@example.com")
		gqltest.ExpectCode(t, r, "FORBIDDEN")
		if r.Errors[0].Message != "Please verify your account" {
			t.Fatalf("message = %q", r.Errors[0].Message)
		}
	})
}

// TestCookies checks every cookie attribute of login, refresh and logout,
// with the defaults and with each attribute configured.
func TestCookies(t *testing.T) {
	check := func(t *testing.T, s *testServer, secure bool, domain string, sameSite http.SameSite) {
		c := s.client(t)
		c.MustRegister("cookies@example.com")
		r := c.Login("cookies@example.com")
		gqltest.ExpectOK(t, r)
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
		rc := s.client(t)
		rc.SetCookie(web.CookieRefresh, byName[web.CookieRefresh].Value)
		r = rc.Do(gqltest.RefreshMutation, nil)
		gqltest.ExpectOK(t, r)
		if len(r.HTTP.Cookies()) != 3 {
			t.Fatalf("refresh set %d cookies, want 3", len(r.HTTP.Cookies()))
		}
		for _, ck := range r.HTTP.Cookies() {
			if ck.Secure != secure || ck.Domain != domain || ck.SameSite != sameSite || ck.MaxAge <= 0 {
				t.Errorf("refresh %s attributes wrong: %+v", ck.Name, ck)
			}
		}

		r = rc.Do(gqltest.LogoutMutation, nil)
		gqltest.ExpectOK(t, r)
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
		check(t, newTestServer(t, authtest.Options{}, nil), false, "", http.SameSiteLaxMode)
	})
	t.Run("Configured", func(t *testing.T) {
		s := newTestServer(t, authtest.Options{}, func(o *Options) {
			o.Cookies = web.CookieConfig{Secure: true, Domain: "example.test", SameSite: http.SameSiteStrictMode}
		})
		check(t, s, true, "example.test", http.SameSiteStrictMode)
	})
	t.Run("SameSiteNone", func(t *testing.T) {
		s := newTestServer(t, authtest.Options{}, func(o *Options) {
			o.Cookies = web.CookieConfig{Secure: true, SameSite: http.SameSiteNoneMode}
		})
		check(t, s, true, "", http.SameSiteNoneMode)
	})
}

func TestMe(t *testing.T) {
	s := newTestServer(t, authtest.Options{}, nil)
	c, p := s.signedIn(t, "me@example.com")

	t.Run("OKCookie", func(t *testing.T) {
		r := c.Do(gqltest.MeQuery, nil)
		gqltest.ExpectOK(t, r)
		var u gqltest.User
		r.Decode(t, "me", &u)
		if u.ID != p.User.ID || u.Email != "me@example.com" {
			t.Fatalf("me = %+v", u)
		}
	})
	t.Run("OKBearer", func(t *testing.T) {
		r := c.Bearer(p.AccessToken).Do(gqltest.MeQuery, nil)
		gqltest.ExpectOK(t, r)
	})
	t.Run("OKGet", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, s.base+"/graphql?query="+strings.ReplaceAll(gqltest.MeQuery, " ", "+"), nil)
		req.Header.Set("Authorization", "Bearer "+p.AccessToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		gqltest.ExpectOK(t, gqltest.ReadResponse(t, resp))
	})
	t.Run("ErrNoToken", func(t *testing.T) {
		r := s.client(t).Do(gqltest.MeQuery, nil)
		gqltest.ExpectCode(t, r, "UNAUTHENTICATED")
		if r.Errors[0].Message != "You are not logged in" || r.HTTP.StatusCode != http.StatusOK {
			t.Fatalf("response %d: %s", r.HTTP.StatusCode, r.Body)
		}
	})
	t.Run("ErrGarbageToken", func(t *testing.T) {
		gqltest.ExpectCode(t, c.Bearer("garbage").Do(gqltest.MeQuery, nil), "UNAUTHENTICATED")
	})
	t.Run("ErrExpired", func(t *testing.T) {
		past := time.Now().Add(-time.Hour)
		tok, err := s.env.Tokens.Sign(token.Access, token.Claims{Subject: p.User.ID, SessionID: storetest.SessionID(p.User.ID, 1), IssuedAt: past, ExpiresAt: past.Add(15 * time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		r := c.Bearer(tok).Do(gqltest.MeQuery, nil)
		gqltest.ExpectCode(t, r, "UNAUTHENTICATED")
		if r.Errors[0].Message != "Token is invalid or has expired" {
			t.Fatalf("message = %q", r.Errors[0].Message)
		}
	})
	t.Run("ErrNotVerified", func(t *testing.T) {
		c, p := s.signedIn(t, "later-unverified@example.com")
		if err := s.env.DB.SetVerified(context.Background(), p.User.ID, false); err != nil {
			t.Fatal(err)
		}
		gqltest.ExpectCode(t, c.Do(gqltest.MeQuery, nil), "FORBIDDEN")
		gqltest.ExpectCode(t, c.Do(gqltest.RefreshMutation, nil), "FORBIDDEN")
	})
	t.Run("ErrUserGone", func(t *testing.T) {
		c, p := s.signedIn(t, "gone@example.com")
		if err := s.env.DB.DeleteUser(context.Background(), p.User.ID); err != nil {
			t.Fatal(err)
		}
		r := c.Do(gqltest.MeQuery, nil)
		gqltest.ExpectCode(t, r, "UNAUTHENTICATED")
		if r.Errors[0].Message != "User no longer exist" {
			t.Fatalf("message = %q", r.Errors[0].Message)
		}
		gqltest.ExpectCode(t, c.Do(gqltest.RefreshMutation, nil), "UNAUTHENTICATED")
	})
}

// TestTokenConfusion presents each kind of token where the other is
// expected.
func TestTokenConfusion(t *testing.T) {
	s := newTestServer(t, authtest.Options{}, nil)
	c, p := s.signedIn(t, "confused@example.com")
	refreshTok := c.Cookie(web.CookieRefresh)

	t.Run("ErrRefreshTokenAsBearer", func(t *testing.T) {
		gqltest.ExpectCode(t, c.Bearer(refreshTok).Do(gqltest.MeQuery, nil), "UNAUTHENTICATED")
	})
	t.Run("ErrRefreshTokenAsAccessCookie", func(t *testing.T) {
		other := s.client(t)
		other.SetCookie(web.CookieAccess, refreshTok)
		gqltest.ExpectCode(t, other.Do(gqltest.MeQuery, nil), "UNAUTHENTICATED")
	})
	t.Run("ErrAccessTokenAsRefreshCookie", func(t *testing.T) {
		other := s.client(t)
		other.SetCookie(web.CookieRefresh, p.AccessToken)
		gqltest.ExpectCode(t, other.Do(gqltest.RefreshMutation, nil), "UNAUTHENTICATED")
	})
	t.Run("OKControl", func(t *testing.T) {
		gqltest.ExpectOK(t, c.Bearer(p.AccessToken).Do(gqltest.MeQuery, nil))
	})
}

// TestForgedTokens presents tokens the server did not sign, or that were
// changed after signing, as cookies and bearers (the verifier's whole table
// is token.TestVerifyRefuses).
func TestForgedTokens(t *testing.T) {
	s := newTestServer(t, authtest.Options{}, nil)
	c, p := s.signedIn(t, "forged@example.com")
	parts := strings.Split(p.AccessToken, ".")
	claims := gqltest.JWTPart(t, p.AccessToken, 1)
	claims["sub"] = "000000000000000000000000"
	tampered := parts[0] + "." + encodeJWTPart(claims) + "." + parts[2]
	header := gqltest.JWTPart(t, p.AccessToken, 0)
	header["alg"] = "none"
	algNone := encodeJWTPart(header) + "." + parts[1] + "."

	for name, tok := range map[string]string{
		"ErrAlgNone":        algNone,
		"ErrTamperedClaims": tampered,
	} {
		t.Run(name, func(t *testing.T) {
			gqltest.ExpectCode(t, c.Bearer(tok).Do(gqltest.MeQuery, nil), "UNAUTHENTICATED")
			rc := s.client(t)
			rc.SetCookie(web.CookieRefresh, tok)
			gqltest.ExpectCode(t, rc.Do(gqltest.RefreshMutation, nil), "UNAUTHENTICATED")
		})
	}
	t.Run("ErrRefreshNotIssuedByServer", func(t *testing.T) {
		// Correctly signed, but never issued: no stored hash.
		now := time.Now()
		tok, err := s.env.Tokens.Sign(token.Refresh, token.Claims{Subject: p.User.ID, SessionID: storetest.SessionID(p.User.ID, 1), IssuedAt: now, ExpiresAt: now.Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		rc := s.client(t)
		rc.SetCookie(web.CookieRefresh, tok)
		gqltest.ExpectCode(t, rc.Do(gqltest.RefreshMutation, nil), "UNAUTHENTICATED")
	})
}

func TestRefresh(t *testing.T) {
	s := newTestServer(t, authtest.Options{}, nil)
	clk := s.env.Clock

	t.Run("ErrNoCookie", func(t *testing.T) {
		r := s.client(t).Do(gqltest.RefreshMutation, nil)
		gqltest.ExpectCode(t, r, "UNAUTHENTICATED")
		if r.Errors[0].Message != "Please provide refresh token" {
			t.Fatalf("message = %q", r.Errors[0].Message)
		}
	})

	t.Run("OKRotates", func(t *testing.T) {
		c, p := s.signedIn(t, "rotate@example.com")
		rt1 := c.Cookie(web.CookieRefresh)
		clk.Advance(time.Second) // new iat, so the new tokens differ
		p2 := c.MustRefresh()
		rt2 := c.Cookie(web.CookieRefresh)
		if rt2 == rt1 || p2.AccessToken == p.AccessToken || p2.User.ID != p.User.ID {
			t.Fatal("refresh did not issue new tokens")
		}
		if c.Cookie(web.CookieAccess) != p2.AccessToken {
			t.Fatal("refresh did not set the access cookie")
		}
		gqltest.ExpectOK(t, c.Bearer(p2.AccessToken).Do(gqltest.MeQuery, nil))
		// Still the same session: one live session.
		if n := s.liveSessions(t, p.User.ID); n != 1 {
			t.Fatalf("live sessions = %d, want 1", n)
		}
	})

	t.Run("OKGraceWindow", func(t *testing.T) {
		c, p := s.signedIn(t, "grace@example.com")
		other := c.Clone() // a second tab with the same cookies
		c.MustRefresh()
		clk.Advance(4 * time.Second) // inside the 5 s default
		p2 := other.MustRefresh()
		if other.Cookie(web.CookieRefresh) == c.Cookie(web.CookieRefresh) {
			t.Fatal("the grace caller must get its own refresh token")
		}
		// Both tabs stay signed in, each token usable once.
		gqltest.ExpectOK(t, other.Bearer(p2.AccessToken).Do(gqltest.MeQuery, nil))
		c.MustRefresh()
		other.MustRefresh()
		if n := s.liveSessions(t, p.User.ID); n != 1 {
			t.Fatalf("live sessions = %d, want 1", n)
		}
	})

	t.Run("ErrReuseRevokesSession", func(t *testing.T) {
		c, p := s.signedIn(t, "reuse@example.com")
		stolen := c.Clone()
		p2 := c.MustRefresh()
		clk.Advance(6 * time.Second) // outside the grace window
		r := stolen.Do(gqltest.RefreshMutation, nil)
		gqltest.ExpectCode(t, r, "UNAUTHENTICATED")
		// The whole session is revoked: the legitimate tokens too.
		gqltest.ExpectCode(t, c.Bearer(p2.AccessToken).Do(gqltest.MeQuery, nil), "UNAUTHENTICATED")
		gqltest.ExpectCode(t, c.Do(gqltest.RefreshMutation, nil), "UNAUTHENTICATED")
		if n := s.liveSessions(t, p.User.ID); n != 0 {
			t.Fatalf("live sessions = %d, want 0", n)
		}
		if !s.env.Events.Has(auth.EventRefreshReuse) {
			t.Fatal("reuse was not logged as a security event")
		}
		// A failed refresh clears the cookies, so the page knows.
		if stolen.Cookie(web.CookieLoggedIn) != "" {
			t.Fatal("logged_in survived a refused refresh")
		}
	})

	t.Run("ErrSpentTokenAfterGraceOnceMore", func(t *testing.T) {
		// Inside the window every caller gets a token; outside, the same
		// spent token revokes.
		c, _ := s.signedIn(t, "twice@example.com")
		tab2, tab3 := c.Clone(), c.Clone()
		c.MustRefresh()
		tab2.MustRefresh()
		clk.Advance(11 * time.Second)
		gqltest.ExpectCode(t, tab3.Do(gqltest.RefreshMutation, nil), "UNAUTHENTICATED")
		gqltest.ExpectCode(t, tab2.Do(gqltest.MeQuery, nil), "UNAUTHENTICATED")
	})

	// Last: it moves the shared clock past every token's expiry.
	t.Run("ErrExpiredWithinClockLeeway", func(t *testing.T) {
		c, _ := s.signedIn(t, "leeway@example.com")
		// Verification tolerates 5 s of skew; the stored expiry does not.
		clk.Advance(60*time.Minute + 2*time.Second)
		gqltest.ExpectCode(t, c.Do(gqltest.RefreshMutation, nil), "UNAUTHENTICATED")
	})
}

// TestRefreshConcurrent sends 10 refreshes with one token at once: all
// succeed, and one session stays live.
func TestRefreshConcurrent(t *testing.T) {
	s := newTestServer(t, authtest.Options{}, nil)
	c, p := s.signedIn(t, "tabs@example.com")
	const n = 10
	tabs := make([]*gqltest.Client, n)
	for i := range tabs {
		tabs[i] = c.Clone()
	}
	results := make([]*gqltest.Response, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { results[i] = tabs[i].Do(gqltest.RefreshMutation, nil) })
	}
	wg.Wait()
	seen := map[string]bool{}
	for i, r := range results {
		gqltest.ExpectOK(t, r)
		rt := tabs[i].Cookie(web.CookieRefresh)
		if seen[rt] {
			t.Fatalf("two callers got the same refresh token")
		}
		seen[rt] = true
	}
	if got := s.liveSessions(t, p.User.ID); got != 1 {
		t.Fatalf("live sessions = %d, want 1", got)
	}
	// Every returned token works once.
	for _, tab := range tabs {
		tab.MustRefresh()
		gqltest.ExpectOK(t, tab.Do(gqltest.MeQuery, nil))
	}
	if s.env.Events.Has(auth.EventRefreshReuse) {
		t.Fatal("concurrent tabs triggered reuse detection")
	}
}

// TestRefreshRacingLogout races a refresh against a logout of the same
// session: whatever order they land in, the session ends revoked and no
// token the refresh returned works.
func TestRefreshRacingLogout(t *testing.T) {
	s := newTestServer(t, authtest.Options{}, nil)
	s.client(t).MustRegister("racer@example.com")
	for range 10 {
		gqltest.RaceRefreshAndLogout(t, s.base, s.base, "racer@example.com")
	}
}

func TestLogout(t *testing.T) {
	s := newTestServer(t, authtest.Options{}, nil)

	t.Run("OKRevokesBothTokens", func(t *testing.T) {
		c, p := s.signedIn(t, "logout@example.com")
		kept := c.Clone() // an attacker's copy of the cookies
		r := c.Do(gqltest.LogoutMutation, nil)
		gqltest.ExpectOK(t, r)
		if string(r.Data["logout"]) != "true" {
			t.Fatalf("logout = %s", r.Data["logout"])
		}
		if c.Cookie(web.CookieAccess) != "" || c.Cookie(web.CookieRefresh) != "" || c.Cookie(web.CookieLoggedIn) != "" {
			t.Fatal("logout did not clear the cookies")
		}
		gqltest.ExpectCode(t, kept.Do(gqltest.MeQuery, nil), "UNAUTHENTICATED")
		gqltest.ExpectCode(t, kept.Bearer(p.AccessToken).Do(gqltest.MeQuery, nil), "UNAUTHENTICATED")
		gqltest.ExpectCode(t, kept.Do(gqltest.RefreshMutation, nil), "UNAUTHENTICATED")
	})
	t.Run("OKBearerOnly", func(t *testing.T) {
		c, p := s.signedIn(t, "bearer-logout@example.com")
		gqltest.ExpectOK(t, c.Bearer(p.AccessToken).Do(gqltest.LogoutMutation, nil))
		gqltest.ExpectCode(t, c.Do(gqltest.RefreshMutation, nil), "UNAUTHENTICATED")
	})
	t.Run("OKRefreshCookieOnly", func(t *testing.T) {
		c, p := s.signedIn(t, "refresh-logout@example.com")
		only := s.client(t)
		only.SetCookie(web.CookieRefresh, c.Cookie(web.CookieRefresh))
		gqltest.ExpectOK(t, only.Do(gqltest.LogoutMutation, nil))
		gqltest.ExpectCode(t, c.Bearer(p.AccessToken).Do(gqltest.MeQuery, nil), "UNAUTHENTICATED")
	})
	t.Run("OKIdempotentSignedOut", func(t *testing.T) {
		r := s.client(t).Do(gqltest.LogoutMutation, nil)
		gqltest.ExpectOK(t, r)
		if string(r.Data["logout"]) != "true" {
			t.Fatalf("logout = %s", r.Data["logout"])
		}
		r = s.client(t).Bearer("garbage").Do(gqltest.LogoutMutation, nil)
		gqltest.ExpectOK(t, r)
	})
	t.Run("OKOtherSessionsUnaffected", func(t *testing.T) {
		c1, _ := s.signedIn(t, "two-devices@example.com")
		c2 := s.client(t)
		c2.MustLogin("two-devices@example.com")
		gqltest.ExpectOK(t, c1.Do(gqltest.LogoutMutation, nil))
		gqltest.ExpectOK(t, c2.Do(gqltest.MeQuery, nil))
	})
	if !s.env.Events.Has(auth.EventLogout) {
		t.Fatal("logout was not logged as a security event")
	}
}

// TestSessionCap signs one user in 51 times: the 51st revokes the first.
func TestSessionCap(t *testing.T) {
	s := newTestServer(t, authtest.Options{}, nil)
	first, p := s.signedIn(t, "cap@example.com")
	for range 49 {
		s.client(t).MustLogin("cap@example.com")
	}
	gqltest.ExpectOK(t, first.Do(gqltest.MeQuery, nil))
	s.client(t).MustLogin("cap@example.com")
	gqltest.ExpectCode(t, first.Do(gqltest.MeQuery, nil), "UNAUTHENTICATED")
	gqltest.ExpectCode(t, first.Do(gqltest.RefreshMutation, nil), "UNAUTHENTICATED")
	if n := s.liveSessions(t, p.User.ID); n != 50 {
		t.Fatalf("live sessions = %d, want 50", n)
	}
}
