package web

import (
	"net/http"
	"time"
)

// Cookie names.
const (
	CookieAccess   = "access_token"
	CookieRefresh  = "refresh_token"
	CookieLoggedIn = "logged_in"
)

// CookieConfig holds the attributes every cookie gets.
type CookieConfig struct {
	Secure   bool
	Domain   string
	SameSite http.SameSite
}

// Cookies writes the session cookies with the configured attributes. Any
// handler can use it: /graphql through Request, and plain HTTP handlers
// (an OAuth callback, say) directly.
type Cookies struct{ cfg CookieConfig }

// NewCookies returns the cookie writer for the attributes.
func NewCookies(cfg CookieConfig) Cookies { return Cookies{cfg: cfg} }

// Session are the tokens the session cookies carry.
type Session struct {
	IssuedAt         time.Time
	Access           string
	AccessExpiresAt  time.Time
	Refresh          string
	RefreshExpiresAt time.Time
}

// SetSession sets access_token and refresh_token (HttpOnly) and
// logged_in=true (readable by scripts, with the refresh token's lifetime,
// so a page can tell that a silent refresh will work). Each Max-Age is the
// token's lifetime, from the time it was issued.
func (c Cookies) SetSession(w http.ResponseWriter, s Session) {
	refreshAge := maxAge(s.IssuedAt, s.RefreshExpiresAt)
	http.SetCookie(w, c.cookie(CookieAccess, s.Access, maxAge(s.IssuedAt, s.AccessExpiresAt), true))
	http.SetCookie(w, c.cookie(CookieRefresh, s.Refresh, refreshAge, true))
	http.SetCookie(w, c.cookie(CookieLoggedIn, "true", refreshAge, false))
}

// ClearSession expires all three cookies.
func (c Cookies) ClearSession(w http.ResponseWriter) {
	http.SetCookie(w, c.cookie(CookieAccess, "", -1, true))
	http.SetCookie(w, c.cookie(CookieRefresh, "", -1, true))
	http.SetCookie(w, c.cookie(CookieLoggedIn, "", -1, false))
}

func (c Cookies) cookie(name, value string, age int, httpOnly bool) *http.Cookie {
	return &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     "/",
		Domain:   c.cfg.Domain,
		MaxAge:   age,
		Secure:   c.cfg.Secure,
		HttpOnly: httpOnly,
		SameSite: c.cfg.SameSite,
	}
}

// maxAge returns a token's lifetime in whole seconds, at least 1 so that a
// cookie set for a token is never a deletion.
func maxAge(issuedAt, expiresAt time.Time) int {
	s := int(expiresAt.Sub(issuedAt).Round(time.Second) / time.Second)
	return max(s, 1)
}
