// Package web holds the HTTP pieces around the GraphQL handler: the
// per-request state that carries cookies between the request and the
// resolvers, request ids, logging, CORS and cross-origin protection, and the
// REST routes (health, readiness, JWKS).
package web

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
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

// Request is what the auth layer reads from an HTTP request and writes back
// to its response. The Auth middleware puts it on the context; resolvers get
// it with FromContext.
type Request struct {
	// AccessToken comes from "Authorization: Bearer" or else the
	// access_token cookie.
	AccessToken string
	// RefreshToken comes from the refresh_token cookie.
	RefreshToken string
	ClientIP     string
	UserAgent    string

	w       http.ResponseWriter
	cookies CookieConfig
}

type ctxKey int

const (
	requestKey ctxKey = iota
	requestIDKey
)

// FromContext returns the request state, or nil outside an HTTP request.
func FromContext(ctx context.Context) *Request {
	r, _ := ctx.Value(requestKey).(*Request)
	return r
}

// NewContext returns ctx carrying r.
func NewContext(ctx context.Context, r *Request) context.Context {
	return context.WithValue(ctx, requestKey, r)
}

// maxAge returns a token's lifetime in whole seconds, at least 1 so that a
// cookie set for a token is never a deletion.
func maxAge(issuedAt, expiresAt time.Time) int {
	s := int(expiresAt.Sub(issuedAt).Round(time.Second) / time.Second)
	return max(s, 1)
}

func (r *Request) cookie(name, value string, age int, httpOnly bool) *http.Cookie {
	return &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     "/",
		Domain:   r.cookies.Domain,
		MaxAge:   age,
		Secure:   r.cookies.Secure,
		HttpOnly: httpOnly,
		SameSite: r.cookies.SameSite,
	}
}

// SetSessionCookies sets access_token and refresh_token (HttpOnly) and
// logged_in=true (readable by scripts, with the refresh token's lifetime,
// so a page can tell that a silent refresh will work). Each Max-Age is the
// token's lifetime, from the time it was issued.
func (r *Request) SetSessionCookies(issuedAt time.Time, access string, accessExp time.Time, refresh string, refreshExp time.Time) {
	refreshAge := maxAge(issuedAt, refreshExp)
	http.SetCookie(r.w, r.cookie(CookieAccess, access, maxAge(issuedAt, accessExp), true))
	http.SetCookie(r.w, r.cookie(CookieRefresh, refresh, refreshAge, true))
	http.SetCookie(r.w, r.cookie(CookieLoggedIn, "true", refreshAge, false))
}

// ClearSessionCookies expires all three cookies.
func (r *Request) ClearSessionCookies() {
	http.SetCookie(r.w, r.cookie(CookieAccess, "", -1, true))
	http.SetCookie(r.w, r.cookie(CookieRefresh, "", -1, true))
	http.SetCookie(r.w, r.cookie(CookieLoggedIn, "", -1, false))
}

// SetRetryAfter sets the Retry-After header (whole seconds).
func (r *Request) SetRetryAfter(seconds int) {
	r.w.Header().Set("Retry-After", strconv.Itoa(seconds))
}

// Auth returns middleware that reads the tokens and client details from the
// request and puts a Request on its context.
func Auth(cookies CookieConfig) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			r := &Request{
				AccessToken:  bearerToken(req),
				RefreshToken: cookieValue(req, CookieRefresh),
				ClientIP:     clientIP(req),
				UserAgent:    req.UserAgent(),
				w:            w,
				cookies:      cookies,
			}
			if r.AccessToken == "" {
				r.AccessToken = cookieValue(req, CookieAccess)
			}
			next.ServeHTTP(w, req.WithContext(NewContext(req.Context(), r)))
		})
	}
}

// bearerToken returns the token of an "Authorization: Bearer" header.
func bearerToken(req *http.Request) string {
	h := req.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

// cookieValue returns the named cookie's value, or "" when it is missing.
func cookieValue(req *http.Request, name string) string {
	c, err := req.Cookie(name)
	if err != nil {
		return ""
	}
	return c.Value
}

// clientIP returns the peer's address.
func clientIP(req *http.Request) string {
	host, _, err := net.SplitHostPort(req.RemoteAddr)
	if err != nil {
		return req.RemoteAddr
	}
	return host
}
