package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gqlauth/gqlauth/internal/authtest"
	"github.com/gqlauth/gqlauth/internal/config"
	"github.com/gqlauth/gqlauth/internal/embedded"
	"github.com/gqlauth/gqlauth/internal/gqltest"
	"github.com/gqlauth/gqlauth/internal/mongostore"
	"github.com/gqlauth/gqlauth/internal/storetest"
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

// long marks a test of the long suites (the soak, the crash and fault
// suites, the built binary's processes): `go test -short` skips it, for the
// edit-test loop; CI and the README's test command run everything.
func long(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("a long suite: run without -short (CI does)")
	}
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

// testServer is a running Main on a loopback port.
type testServer struct {
	*Main
	tb       testing.TB
	base     string
	logs     *syncBuffer
	attached *storetest.DB
}

// serverOptions configure startServer. Env entries override the test
// defaults; an empty value unsets a variable.
type serverOptions struct {
	env   map[string]string
	clock *authtest.Clock
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

func (s *testServer) client() *gqltest.Client { return gqltest.New(s.tb, s.base) }

// signedIn registers a fresh user and logs the client in.
func (s *testServer) signedIn(email string) (*gqltest.Client, gqltest.AuthPayload) {
	s.tb.Helper()
	c := s.client()
	c.MustRegister(email)
	return c, c.MustLogin(email)
}

// records returns a view of the server's database (the embedded one, or the
// one at DATABASE_URL), for states the API cannot reach and for checking
// what was stored.
func (s *testServer) records() *storetest.DB {
	s.tb.Helper()
	if s.attached == nil {
		uri := s.Config.DatabaseURL
		if s.Config.Embedded() {
			var err error
			if uri, err = embedded.Locate(filepath.Join(s.Config.DataDir, "db")); err != nil {
				s.tb.Fatal(err)
			}
		}
		s.attached = storetest.Attach(s.tb, mongostore.Options{URI: uri, Database: s.Config.DatabaseName, Now: s.Now})
	}
	return s.attached
}

// liveSessions counts the user's live sessions by reading the whole
// sessions collection, independently of the store's own listing.
func (s *testServer) liveSessions(userID string) int {
	s.tb.Helper()
	ids, err := s.records().LiveSessionsByScan(context.Background(), userID)
	if err != nil {
		s.tb.Fatal(err)
	}
	return len(ids)
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
