// Package gqltest is a browser-like GraphQL client for tests: real HTTP, a
// cookie jar that keeps what the server sets, and the operations of the
// API, so that tests read as what a frontend does.
package gqltest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gqlauth/gqlauth/internal/web"
)

// The API's operations, as a frontend sends them.
const (
	RegisterMutation       = `mutation($input: RegisterInput!) { register(input: $input) { id name email photo role verified createdAt updatedAt } }`
	LoginMutation          = `mutation($email: String!, $password: String!) { login(input: {email: $email, password: $password}) { accessToken accessTokenExpiresAt user { id email } } }`
	RefreshMutation        = `mutation { refresh { accessToken accessTokenExpiresAt user { id email } } }`
	LogoutMutation         = `mutation { logout }`
	MeQuery                = `query { me { id name email photo role verified createdAt updatedAt } }`
	SessionsQuery          = `query { sessions { id createdAt lastUsedAt userAgent ip current } }`
	RevokeSessionMutation  = `mutation($id: ID!) { revokeSession(id: $id) }`
	LogoutAllMutation      = `mutation { logoutAll }`
	ChangePasswordMutation = `mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) }`
)

// Passwords the helpers use.
const (
	Password    = "correct horse battery"
	NewPassword = "a brand new passphrase"
)

// User is the User type as clients see it.
type User struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Email     string    `json:"email"`
	Photo     string    `json:"photo"`
	Role      string    `json:"role"`
	Verified  bool      `json:"verified"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// AuthPayload is AuthPayload as clients see it.
type AuthPayload struct {
	AccessToken          string    `json:"accessToken"`
	AccessTokenExpiresAt time.Time `json:"accessTokenExpiresAt"`
	User                 User      `json:"user"`
}

// Session is the Session type as clients see it.
type Session struct {
	ID         string    `json:"id"`
	CreatedAt  time.Time `json:"createdAt"`
	LastUsedAt time.Time `json:"lastUsedAt"`
	UserAgent  string    `json:"userAgent"`
	IP         string    `json:"ip"`
	Current    bool      `json:"current"`
}

// RegisterInput returns register's variables for the e-mail, with Password.
func RegisterInput(email string) map[string]any {
	return map[string]any{"input": map[string]any{
		"name": "Ann", "email": email, "password": Password, "passwordConfirm": Password,
	}}
}

// UniqueEmail returns an e-mail unique within the test.
func UniqueEmail(tb testing.TB, prefix string) string {
	return fmt.Sprintf("%s-%s@example.com", prefix, strings.ToLower(strings.NewReplacer("/", "-", " ", "-").Replace(tb.Name())))
}

// Client is a browser-like HTTP client of a server's /graphql, with a
// cookie jar.
type Client struct {
	TB     testing.TB
	Base   string // the server's base URL
	HTTP   *http.Client
	Jar    *cookiejar.Jar
	Header http.Header // sent with every request
}

// New returns a client of the server at base.
func New(tb testing.TB, base string) *Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		tb.Fatal(err)
	}
	return &Client{TB: tb, Base: base, HTTP: &http.Client{Jar: jar, Timeout: 30 * time.Second}, Jar: jar, Header: http.Header{}}
}

// WithBase returns a client of another server that shares this client's
// cookies (two instances behind one hostname).
func (c *Client) WithBase(base string) *Client {
	other := *c
	other.Base = base
	return &other
}

// Error is one GraphQL error.
type Error struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path"`
	Extensions map[string]any `json:"extensions"`
}

// Response is a GraphQL response with its HTTP response.
type Response struct {
	Data   map[string]json.RawMessage `json:"data"`
	Errors []Error                    `json:"errors"`
	HTTP   *http.Response             `json:"-"`
	Body   string                     `json:"-"`
}

// Code returns the first error's extensions.code, or "" without errors.
func (r *Response) Code() string {
	if len(r.Errors) == 0 {
		return ""
	}
	code, _ := r.Errors[0].Extensions["code"].(string)
	return code
}

// Decode unmarshals a field of data.
func (r *Response) Decode(tb testing.TB, field string, v any) {
	tb.Helper()
	raw, ok := r.Data[field]
	if !ok || string(raw) == "null" {
		tb.Fatalf("no data for %s: %s", field, r.Body)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		tb.Fatal(err)
	}
}

// Post sends a raw request to /graphql.
func (c *Client) Post(contentType string, body io.Reader) *http.Response {
	c.TB.Helper()
	req, err := http.NewRequest(http.MethodPost, c.Base+"/graphql", body)
	if err != nil {
		c.TB.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	for k, v := range c.Header {
		req.Header[k] = v
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		c.TB.Fatal(err)
	}
	return resp
}

// Do runs a GraphQL operation over POST.
func (c *Client) Do(query string, vars map[string]any) *Response {
	c.TB.Helper()
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		c.TB.Fatal(err)
	}
	return ReadResponse(c.TB, c.Post("application/json", bytes.NewReader(body)))
}

// ReadResponse reads and decodes an HTTP response of /graphql.
func ReadResponse(tb testing.TB, resp *http.Response) *Response {
	tb.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	r := &Response{HTTP: resp, Body: string(b)}
	if err := json.Unmarshal(b, r); err != nil {
		tb.Fatalf("response is not JSON (%d): %s", resp.StatusCode, b)
	}
	return r
}

// Cookie returns the jar's value of a cookie for the server, or "".
func (c *Client) Cookie(name string) string {
	u, _ := url.Parse(c.Base)
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == name {
			return ck.Value
		}
	}
	return ""
}

// SetCookie puts a cookie in the jar, as a browser holding it would send it.
func (c *Client) SetCookie(name, value string) {
	u, _ := url.Parse(c.Base)
	c.Jar.SetCookies(u, []*http.Cookie{{Name: name, Value: value, Path: "/"}})
}

// Clone returns a client with a copy of this client's session cookies.
func (c *Client) Clone() *Client {
	other := New(c.TB, c.Base)
	for _, name := range []string{web.CookieAccess, web.CookieRefresh, web.CookieLoggedIn} {
		if v := c.Cookie(name); v != "" {
			other.SetCookie(name, v)
		}
	}
	return other
}

// Bearer returns a client without cookies that sends the access token in
// the Authorization header.
func (c *Client) Bearer(token string) *Client {
	other := New(c.TB, c.Base)
	other.Header.Set("Authorization", "Bearer "+token)
	return other
}

// MustRegister registers a user with Password and returns it.
func (c *Client) MustRegister(email string) User {
	c.TB.Helper()
	var u User
	c.Do(RegisterMutation, RegisterInput(email)).Decode(c.TB, "register", &u)
	return u
}

// Login runs login with Password.
func (c *Client) Login(email string) *Response {
	c.TB.Helper()
	return c.Do(LoginMutation, map[string]any{"email": email, "password": Password})
}

// MustLogin logs in and returns the payload; the jar keeps the cookies.
func (c *Client) MustLogin(email string) AuthPayload {
	c.TB.Helper()
	var p AuthPayload
	c.Login(email).Decode(c.TB, "login", &p)
	return p
}

// MustRefresh refreshes with the jar's refresh token.
func (c *Client) MustRefresh() AuthPayload {
	c.TB.Helper()
	var p AuthPayload
	c.Do(RefreshMutation, nil).Decode(c.TB, "refresh", &p)
	return p
}

// Sessions lists the signed-in user's sessions.
func (c *Client) Sessions() []Session {
	c.TB.Helper()
	var out []Session
	c.Do(SessionsQuery, nil).Decode(c.TB, "sessions", &out)
	return out
}

// ExpectCode fails unless the response's first error has the code.
func ExpectCode(tb testing.TB, r *Response, code string) {
	tb.Helper()
	if r.Code() != code {
		tb.Fatalf("code = %q, want %q; response %d: %s", r.Code(), code, r.HTTP.StatusCode, r.Body)
	}
}

// ExpectOK fails if the response has errors or is not a 200.
func ExpectOK(tb testing.TB, r *Response) {
	tb.Helper()
	if len(r.Errors) > 0 || r.HTTP.StatusCode != http.StatusOK {
		tb.Fatalf("response %d: %s", r.HTTP.StatusCode, r.Body)
	}
}

// PostJSON runs a GraphQL operation on the server at base with hc,
// returning errors instead of failing the test: for goroutines, and for
// servers that may be gone (a killed process).
func PostJSON(hc *http.Client, base, query string, vars map[string]any, header http.Header) (*http.Response, *Response, error) {
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, err := http.NewRequest(http.MethodPost, base+"/graphql", bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp, nil, fmt.Errorf("reading the body: %w", err)
	}
	r := &Response{HTTP: resp, Body: string(b)}
	if err := json.Unmarshal(b, r); err != nil {
		return resp, nil, fmt.Errorf("body is not JSON: %w: %q", err, b)
	}
	return resp, r, nil
}

// JWTPart decodes segment i of a JWT (0 the header, 1 the claims) without
// verifying anything: what a test reads of a token the server issued.
func JWTPart(tb testing.TB, jwt string, i int) map[string]any {
	tb.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) <= i {
		tb.Fatalf("a JWT without segment %d", i)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		tb.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		tb.Fatal(err)
	}
	return m
}
