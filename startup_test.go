package main

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gqlauth/gqlauth/internal/config"
	"github.com/gqlauth/gqlauth/internal/embedded"
	"github.com/gqlauth/gqlauth/internal/gqltest"
	"github.com/gqlauth/gqlauth/internal/web"
)

// freePort returns a loopback port that nothing listens on.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// runMain runs a Main with the given environment on top of the test
// defaults and returns Run's error.
func runMain(t *testing.T, env map[string]string) (*Main, error) {
	t.Helper()
	base := map[string]string{
		"APP_ENV": "test", "HOST": "127.0.0.1", "PORT": "0", "DATA_DIR": t.TempDir(), "BCRYPT_COST": "4",
		"JWT_PRIVATE_KEY": testKeys.priv, "JWT_PUBLIC_KEY": testKeys.pub,
	}
	for k, v := range env {
		base[k] = v
	}
	cfg, err := config.Load(config.MapLookup(base))
	if err != nil {
		t.Fatal(err)
	}
	m := NewMain(cfg, web.NewLogger(&syncBuffer{}, "text", slog.LevelInfo))
	err = m.Run(context.Background())
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	return m, err
}

// TestStartWithDatabaseDown starts against a port where nothing listens:
// the server serves, is not ready, and becomes ready by itself once a
// database appears there.
func TestStartWithDatabaseDown(t *testing.T) {
	addr := freePort(t)
	start := time.Now()
	m, err := runMain(t, map[string]string{"DATABASE_URL": "mongodb://" + addr + "/late", "DATABASE_TIMEOUT": "300ms"})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("start-up took %v", d)
	}
	base := "http://" + m.Addr()
	if resp, _ := get(t, base+"/healthz", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz = %d", resp.StatusCode)
	}
	if resp, _ := get(t, base+"/readyz", nil); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/readyz = %d, want 503", resp.StatusCode)
	}
	r := gqltest.New(t, base).Do(gqltest.RegisterMutation, gqltest.RegisterInput("early@example.com"))
	gqltest.ExpectCode(t, r, "INTERNAL_SERVER_ERROR")

	db, err := embedded.Start(embedded.Options{Dir: t.TempDir(), Addr: addr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Stop)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, _ := get(t, base+"/readyz", nil)
		if resp.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("not ready 30 s after the database appeared")
		}
		time.Sleep(100 * time.Millisecond)
	}
	gqltest.ExpectOK(t, gqltest.New(t, base).Do(gqltest.RegisterMutation, gqltest.RegisterInput("late@example.com")))
}

// TestStartWithNonMongoPeer points DATABASE_URL at an HTTP server: start-up
// stops with an error naming DATABASE_URL, and does not hang.
func TestStartWithNonMongoPeer(t *testing.T) {
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "not mongo", http.StatusBadRequest)
	}))
	defer web.Close()
	start := time.Now()
	_, err := runMain(t, map[string]string{"DATABASE_URL": "mongodb://" + web.Listener.Addr().String() + "/x", "DATABASE_TIMEOUT": "500ms"})
	if err == nil || !strings.HasPrefix(err.Error(), "DATABASE_URL: ") {
		t.Fatalf("Run error = %v, want one naming DATABASE_URL", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("took %v", d)
	}
	if !strings.Contains(err.Error(), "not a MongoDB server") {
		t.Fatalf("error = %v", err)
	}
	t.Log(err)
}

// TestStartWithRefusedCredentials sends credentials to the embedded
// FerretDB, which has no authentication: start-up stops with an error
// naming DATABASE_URL.
func TestStartWithRefusedCredentials(t *testing.T) {
	db, err := embedded.Start(embedded.Options{Dir: t.TempDir(), Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Stop()
	addr := strings.TrimSuffix(strings.TrimPrefix(db.URI(), "mongodb://"), "/")
	_, err = runMain(t, map[string]string{"DATABASE_URL": "mongodb://admin:s3cretpw@" + addr + "/x?authSource=admin", "DATABASE_TIMEOUT": "500ms"})
	if err == nil || !strings.HasPrefix(err.Error(), "DATABASE_URL: ") {
		t.Fatalf("Run error = %v, want one naming DATABASE_URL", err)
	}
	if strings.Contains(err.Error(), "s3cretpw") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("the error shows the password: %v", err)
	}
	t.Log(err)
}
