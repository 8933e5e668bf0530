package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/gqlauth/gqlauth/internal/auth"
	"github.com/gqlauth/gqlauth/internal/config"
	"github.com/gqlauth/gqlauth/internal/mongostore"
	"github.com/gqlauth/gqlauth/internal/web"
)

// testKeys are the base64 PEMs of one RSA key shared by the tests (RSA
// generation is slow); tests that need generated keys unset them.
var testKeys struct{ priv, pub string }

func TestMain(m *testing.M) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		log.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		log.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		log.Fatal(err)
	}
	testKeys.priv = base64.StdEncoding.EncodeToString(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	testKeys.pub = base64.StdEncoding.EncodeToString(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}))
	os.Exit(m.Run())
}

// syncBuffer collects log output from concurrent requests.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// clock is a settable clock shared by a test and its servers.
type clock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// testServer is a running Main on a loopback port.
type testServer struct {
	*Main
	tb   testing.TB
	base string
	logs *syncBuffer
}

// serverOptions configure startServer. Env entries override the test
// defaults; an empty value unsets a variable.
type serverOptions struct {
	env   map[string]string
	clock *clock
}

// startServer runs the real server (embedded database, real HTTP) with test
// defaults: a temporary DATA_DIR, bcrypt cost 4, the shared test key.
func startServer(tb testing.TB, o serverOptions) *testServer {
	tb.Helper()
	env := map[string]string{
		"APP_ENV":         "test",
		"HOST":            "127.0.0.1",
		"PORT":            "0",
		"DATA_DIR":        tb.TempDir(),
		"BCRYPT_COST":     "4",
		"JWT_PRIVATE_KEY": testKeys.priv,
		"JWT_PUBLIC_KEY":  testKeys.pub,
	}
	for k, v := range o.env {
		if v == "" {
			delete(env, k)
		} else {
			env[k] = v
		}
	}
	cfg, err := config.Load(config.MapLookup(env))
	if err != nil {
		tb.Fatal(err)
	}
	logs := &syncBuffer{}
	logger := slog.New(web.ContextHandler{Handler: slog.NewTextHandler(logs, &slog.HandlerOptions{Level: cfg.LogLevel})})
	m := NewMain(cfg, logger)
	if o.clock != nil {
		m.Now = o.clock.Now
	}
	if err := m.Run(context.Background()); err != nil {
		tb.Fatal(err)
	}
	s := &testServer{Main: m, tb: tb, base: "http://" + m.Addr(), logs: logs}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := m.Close(ctx); err != nil {
			tb.Errorf("closing server: %v", err)
		}
		if tb.Failed() {
			tb.Logf("server log:\n%s", logs.String())
		}
	})
	return s
}

// client is a browser-like HTTP client with a cookie jar.
type client struct {
	tb     testing.TB
	base   string
	http   *http.Client
	jar    *cookiejar.Jar
	header http.Header
}

func (s *testServer) client() *client { return newClient(s.tb, s.base) }

func newClient(tb testing.TB, base string) *client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		tb.Fatal(err)
	}
	return &client{tb: tb, base: base, http: &http.Client{Jar: jar, Timeout: 30 * time.Second}, jar: jar, header: http.Header{}}
}

// withBase returns a client of another server that shares this client's
// cookies (two instances behind one hostname).
func (c *client) withBase(base string) *client {
	other := *c
	other.base = base
	return &other
}

// gqlError is one GraphQL error.
type gqlError struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path"`
	Extensions map[string]any `json:"extensions"`
}

// gqlResponse is a GraphQL response with its HTTP response.
type gqlResponse struct {
	Data   map[string]json.RawMessage `json:"data"`
	Errors []gqlError                 `json:"errors"`
	HTTP   *http.Response             `json:"-"`
	Body   string                     `json:"-"`
}

// code returns the first error's extensions.code, or "" without errors.
func (r *gqlResponse) code() string {
	if len(r.Errors) == 0 {
		return ""
	}
	code, _ := r.Errors[0].Extensions["code"].(string)
	return code
}

// decode unmarshals a field of data.
func (r *gqlResponse) decode(tb testing.TB, field string, v any) {
	tb.Helper()
	raw, ok := r.Data[field]
	if !ok || string(raw) == "null" {
		tb.Fatalf("no data for %s: %s", field, r.Body)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		tb.Fatal(err)
	}
}

// post sends a raw request to /graphql.
func (c *client) post(contentType string, body io.Reader) *http.Response {
	c.tb.Helper()
	req, err := http.NewRequest(http.MethodPost, c.base+"/graphql", body)
	if err != nil {
		c.tb.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	for k, v := range c.header {
		req.Header[k] = v
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.tb.Fatal(err)
	}
	return resp
}

// do runs a GraphQL operation over POST.
func (c *client) do(query string, vars map[string]any) *gqlResponse {
	c.tb.Helper()
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		c.tb.Fatal(err)
	}
	return readGQL(c.tb, c.post("application/json", bytes.NewReader(body)))
}

func readGQL(tb testing.TB, resp *http.Response) *gqlResponse {
	tb.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	r := &gqlResponse{HTTP: resp, Body: string(b)}
	if err := json.Unmarshal(b, r); err != nil {
		tb.Fatalf("response is not JSON (%d): %s", resp.StatusCode, b)
	}
	return r
}

// cookie returns the jar's value of a cookie for the server, or "".
func (c *client) cookie(name string) string {
	u, _ := url.Parse(c.base)
	for _, ck := range c.jar.Cookies(u) {
		if ck.Name == name {
			return ck.Value
		}
	}
	return ""
}

// setCookie puts a cookie in the jar, as a browser holding it would send it.
func (c *client) setCookie(name, value string) {
	u, _ := url.Parse(c.base)
	c.jar.SetCookies(u, []*http.Cookie{{Name: name, Value: value, Path: "/"}})
}

// clone returns a client with a copy of this client's cookies.
func (c *client) clone() *client {
	other := newClient(c.tb, c.base)
	for _, name := range []string{web.CookieAccess, web.CookieRefresh, web.CookieLoggedIn} {
		if v := c.cookie(name); v != "" {
			other.setCookie(name, v)
		}
	}
	return other
}

// bearer returns a client without cookies that sends the access token in
// the Authorization header.
func (c *client) bearer(token string) *client {
	other := newClient(c.tb, c.base)
	other.header.Set("Authorization", "Bearer "+token)
	return other
}

const (
	registerMutation = `mutation($input: RegisterInput!) { register(input: $input) { id name email photo role verified createdAt updatedAt } }`
	loginMutation    = `mutation($email: String!, $password: String!) { login(input: {email: $email, password: $password}) { accessToken accessTokenExpiresAt user { id email } } }`
	refreshMutation  = `mutation { refresh { accessToken accessTokenExpiresAt user { id email } } }`
	logoutMutation   = `mutation { logout }`
	meQuery          = `query { me { id name email photo role verified createdAt updatedAt } }`
	testPassword     = "correct horse battery"
)

// userJSON is the User type as clients see it.
type userJSON struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Email     string    `json:"email"`
	Photo     string    `json:"photo"`
	Role      string    `json:"role"`
	Verified  bool      `json:"verified"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// authPayload is AuthPayload as clients see it.
type authPayload struct {
	AccessToken          string    `json:"accessToken"`
	AccessTokenExpiresAt time.Time `json:"accessTokenExpiresAt"`
	User                 userJSON  `json:"user"`
}

func registerInput(email string) map[string]any {
	return map[string]any{"input": map[string]any{
		"name": "Ann", "email": email, "password": testPassword, "passwordConfirm": testPassword,
	}}
}

// mustRegister registers a user and returns it.
func (c *client) mustRegister(email string) userJSON {
	c.tb.Helper()
	r := c.do(registerMutation, registerInput(email))
	var u userJSON
	r.decode(c.tb, "register", &u)
	return u
}

// login runs login with the test password.
func (c *client) login(email string) *gqlResponse {
	c.tb.Helper()
	return c.do(loginMutation, map[string]any{"email": email, "password": testPassword})
}

// mustLogin logs in and returns the payload; the jar keeps the cookies.
func (c *client) mustLogin(email string) authPayload {
	c.tb.Helper()
	r := c.login(email)
	var p authPayload
	r.decode(c.tb, "login", &p)
	return p
}

// mustRefresh refreshes with the jar's refresh token.
func (c *client) mustRefresh() authPayload {
	c.tb.Helper()
	r := c.do(refreshMutation, nil)
	var p authPayload
	r.decode(c.tb, "refresh", &p)
	return p
}

// signedIn registers a fresh user and logs the client in.
func (s *testServer) signedIn(email string) (*client, authPayload) {
	s.tb.Helper()
	c := s.client()
	c.mustRegister(email)
	return c, c.mustLogin(email)
}

// createUser stores a user directly (for states the API cannot reach, such
// as unverified), with the test password.
func (s *testServer) createUser(email string, verified bool) *auth.User {
	s.tb.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(testPassword), 4)
	if err != nil {
		s.tb.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	u := &auth.User{Name: "Unverified", Email: email, Role: auth.RoleUser, Verified: verified, PasswordHash: string(hash), CreatedAt: now, UpdatedAt: now}
	if err := s.Store().CreateUser(context.Background(), u); err != nil {
		s.tb.Fatal(err)
	}
	return u
}

// liveSessions counts the user's live sessions by reading the whole
// sessions collection, independently of the store's own listing.
func (s *testServer) liveSessions(userID string) int {
	s.tb.Helper()
	ids, err := scanLiveSessions(context.Background(), s.Store(), userID)
	if err != nil {
		s.tb.Fatal(err)
	}
	return len(ids)
}

// expectCode fails unless the response's first error has the code.
func expectCode(tb testing.TB, r *gqlResponse, code string) {
	tb.Helper()
	if r.code() != code {
		tb.Fatalf("code = %q, want %q; response %d: %s", r.code(), code, r.HTTP.StatusCode, r.Body)
	}
}

// expectOK fails if the response has errors.
func expectOK(tb testing.TB, r *gqlResponse) {
	tb.Helper()
	if len(r.Errors) > 0 || r.HTTP.StatusCode != http.StatusOK {
		tb.Fatalf("response %d: %s", r.HTTP.StatusCode, r.Body)
	}
}

// uniqueEmail returns an e-mail unique within the test.
func uniqueEmail(tb testing.TB, prefix string) string {
	return fmt.Sprintf("%s-%s@example.com", prefix, strings.ToLower(strings.NewReplacer("/", "-", " ", "-").Replace(tb.Name())))
}

// logged reports whether one line of the server's log contains every part.
func (s *testServer) logged(parts ...string) bool {
	for line := range strings.Lines(s.logs.String()) {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			return true
		}
	}
	return false
}

// expectOneRegistration registers one e-mail n times at once, spread over
// the servers: exactly one succeeds and the rest get CONFLICT.
func expectOneRegistration(t *testing.T, servers []*testServer, email string, n int) {
	t.Helper()
	codes := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		s := servers[i%len(servers)]
		wg.Go(func() { codes[i] = s.client().do(registerMutation, registerInput(email)).code() })
	}
	wg.Wait()
	count := map[string]int{}
	for _, c := range codes {
		count[c]++
	}
	if count[""] != 1 || count["CONFLICT"] != n-1 {
		t.Fatalf("codes = %v, want 1 success and %d CONFLICT", count, n-1)
	}
}

// scanLiveSessions reads the whole sessions collection for the user's
// sessions, and each one's revocation: the tests' independent view.
func scanLiveSessions(ctx context.Context, store *mongostore.Store, userID string) ([]string, error) {
	uid, err := bson.ObjectIDFromHex(userID)
	if err != nil {
		return nil, err
	}
	db := store.Database()
	cur, err := db.Collection(mongostore.CollSessions).Find(ctx, bson.D{{Key: "user_id", Value: uid}})
	if err != nil {
		return nil, err
	}
	var docs []struct {
		ID        string    `bson:"_id"`
		ExpiresAt time.Time `bson:"expires_at"`
	}
	if err := cur.All(ctx, &docs); err != nil {
		return nil, err
	}
	var ids []string
	for _, d := range docs {
		if !d.ExpiresAt.After(time.Now()) {
			continue
		}
		n, err := db.Collection(mongostore.CollRevocations).CountDocuments(ctx, bson.D{{Key: "_id", Value: d.ID}})
		if err != nil {
			return nil, err
		}
		if n == 0 {
			ids = append(ids, d.ID)
		}
	}
	return ids, nil
}
