// Package web holds the HTTP pieces around the GraphQL handler: the
// per-request state that carries cookies between the request and the
// resolvers, request ids, logging, CORS and cross-origin protection, and the
// REST routes (health, readiness, JWKS).
package web

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"

	"github.com/gqlauth/gqlauth/internal/auth"
)

// Request is what the auth layer reads from an HTTP request and writes back
// to its response. The Auth middleware puts it on the context; resolvers get
// it with FromContext.
type Request struct {
	ClientIP  string
	UserAgent string

	accessToken  string
	refreshToken string
	// duplicate cookies make the token ambiguous (cookie tossing from a
	// sibling subdomain): refused rather than guessed.
	accessDup, refreshDup bool

	w       http.ResponseWriter
	cookies Cookies

	idMu sync.Mutex
	id   *identityCall

	undoMu sync.Mutex
	undo   []func()
}

// identityCall is the one resolution of a request's identity: the first
// field that needs it resolves it, the others wait for that.
type identityCall struct {
	done chan struct{}
	id   *auth.Identity
	err  error
}

// Identity returns who the request's access token speaks for, resolving it
// with resolve at most once per request however many fields ask (GraphQL
// runs query fields at once, and aliases can repeat a field a hundred
// times): the first caller resolves, concurrent callers wait for its
// answer. SignedOut and ForgetIdentity end the memo (mutation fields run in
// order, so a later field sees the change).
func (r *Request) Identity(resolve func() (*auth.Identity, error)) (*auth.Identity, error) {
	r.idMu.Lock()
	if c := r.id; c != nil {
		r.idMu.Unlock()
		<-c.done
		return c.id, c.err
	}
	c := &identityCall{done: make(chan struct{})}
	r.id = c
	r.idMu.Unlock()
	defer close(c.done)
	defer func() {
		if p := recover(); p != nil {
			c.err = fmt.Errorf("resolving the identity: panic: %v", p)
			panic(p)
		}
	}()
	c.id, c.err = resolve()
	return c.id, c.err
}

// SignedOut records that the request's session was revoked by one of its
// fields (logout, logoutAll, revoking the current session): later fields
// of the operation are signed out, without asking the database.
func (r *Request) SignedOut() {
	c := &identityCall{done: make(chan struct{}), err: auth.ErrNotLoggedIn}
	close(c.done)
	r.idMu.Lock()
	r.id = c
	r.idMu.Unlock()
}

// ForgetIdentity drops the memo after a field that changed the user (a new
// password): the next field that asks resolves the identity again.
func (r *Request) ForgetIdentity() {
	r.idMu.Lock()
	r.id = nil
	r.idMu.Unlock()
}

// OnUndelivered registers f to run when the answer to this request cannot
// be delivered (the client went away before it was written): what a
// resolver changed for a client that will never learn of it is undone.
func (r *Request) OnUndelivered(f func()) {
	r.undoMu.Lock()
	defer r.undoMu.Unlock()
	r.undo = append(r.undo, f)
}

// Undelivered runs, once, what OnUndelivered registered. The transport
// calls it when writing the answer failed or the client had gone.
func (r *Request) Undelivered() {
	r.undoMu.Lock()
	undo := r.undo
	r.undo = nil
	r.undoMu.Unlock()
	for _, f := range undo {
		f()
	}
}

// AccessToken returns the access token from "Authorization: Bearer", or
// else the access_token cookie ("" when there is none). Two access_token
// cookies are refused.
func (r *Request) AccessToken() (string, error) {
	if r.accessDup {
		return "", fmt.Errorf("%w: duplicate %s cookies", auth.ErrInvalidToken, CookieAccess)
	}
	return r.accessToken, nil
}

// RefreshToken returns the refresh_token cookie ("" when there is none).
// Two refresh_token cookies are refused.
func (r *Request) RefreshToken() (string, error) {
	if r.refreshDup {
		return "", fmt.Errorf("%w: duplicate %s cookies", auth.ErrRefreshTokenInvalid, CookieRefresh)
	}
	return r.refreshToken, nil
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

// SetSessionCookies sets the session cookies (see Cookies.SetSession).
func (r *Request) SetSessionCookies(s Session) { r.cookies.SetSession(r.w, s) }

// ClearSessionCookies expires the session cookies.
func (r *Request) ClearSessionCookies() { r.cookies.ClearSession(r.w) }

// SetRetryAfter sets the Retry-After header (whole seconds).
func (r *Request) SetRetryAfter(seconds int) {
	r.w.Header().Set("Retry-After", strconv.Itoa(seconds))
}

// Auth returns middleware that reads the tokens and client details from the
// request and puts a Request on its context. The client IP is the peer's,
// or, when the peer is a trusted proxy, taken from X-Forwarded-For.
func Auth(cookies CookieConfig, trustedProxies []netip.Prefix) func(http.Handler) http.Handler {
	writer := NewCookies(cookies)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			r := &Request{
				ClientIP:  ClientIP(req, trustedProxies),
				UserAgent: req.UserAgent(),
				w:         w,
				cookies:   writer,
			}
			for _, c := range req.Cookies() {
				switch c.Name {
				case CookieAccess:
					r.accessDup = r.accessDup || r.accessToken != ""
					r.accessToken = c.Value
				case CookieRefresh:
					r.refreshDup = r.refreshDup || r.refreshToken != ""
					r.refreshToken = c.Value
				}
			}
			if bearer := bearerToken(req); bearer != "" {
				r.accessToken, r.accessDup = bearer, false
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

// ClientIP returns the client's address: the peer's, unless the peer is a
// trusted proxy, in which case X-Forwarded-For is read from the right,
// skipping trusted proxies, and the first other address is the client.
// Entries may carry a port or brackets ("203.0.113.7:5678",
// "[2001:db8::1]:443"); empty entries are skipped; at an entry that is not
// an address, the last good hop is taken.
func ClientIP(req *http.Request, trusted []netip.Prefix) string {
	peer := peerAddr(req)
	if !peer.IsValid() {
		return req.RemoteAddr
	}
	if !isTrusted(peer, trusted) {
		return peer.String()
	}
	hops := req.Header.Values("X-Forwarded-For")
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		parts := strings.Split(hops[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			entry := strings.TrimSpace(parts[j])
			if entry == "" {
				continue
			}
			a, ok := parseHop(entry)
			if !ok {
				return client.String()
			}
			client = a
			if !isTrusted(client, trusted) {
				return client.String()
			}
		}
	}
	return client.String()
}

// parseHop reads one X-Forwarded-For entry: an address, with or without a
// port, IPv6 with or without brackets.
func parseHop(s string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return normalizeAddr(ap.Addr()), true
	}
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
	if err != nil {
		return netip.Addr{}, false
	}
	return normalizeAddr(a), true
}

// normalizeAddr drops an IPv6 zone and unmaps IPv4-mapped addresses, so that
// prefixes match.
func normalizeAddr(a netip.Addr) netip.Addr { return a.Unmap().WithZone("") }

func peerAddr(req *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(req.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return normalizeAddr(ap.Addr())
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
