package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gqlauth/gqlauth/internal/embedded"
	"github.com/gqlauth/gqlauth/internal/gqltest"
	"github.com/gqlauth/gqlauth/internal/mongostore"
	"github.com/gqlauth/gqlauth/internal/storetest"
)

// process is the server binary running on a data folder.
type process struct {
	cmd  *exec.Cmd
	base string
	done chan error
}

func startProcess(t *testing.T, bin, dataDir string, env ...string) *process {
	t.Helper()
	cmd := command(t, bin, append([]string{
		"HOST=127.0.0.1", "PORT=0", "DATA_DIR=" + dataDir, "BCRYPT_COST=4",
		"RATE_LIMIT_IP_PER_MINUTE=0", "JWT_PRIVATE_KEY=" + testKeys.priv,
	}, env...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, done: make(chan error, 1)}
	p.base = "http://" + waitForListening(t, stderr)
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // only if still running
		<-p.done
	})
	return p
}

func cookieOf(resp *http.Response, name string) string {
	for _, c := range resp.Cookies() {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// TestCrashSafety kills the server (SIGKILL) during a storm of
// registrations and logins, restarts it on the same data, and checks that
// every user document is whole, no e-mail exists twice, every session
// belongs to an existing user, and every refresh token that was answered
// to a client still works.
func TestCrashSafety(t *testing.T) {
	bin := buildBinary(t)
	dataDir := filepath.Join(t.TempDir(), "data")
	p := startProcess(t, bin, dataDir)

	type answered struct{ email, refresh string }
	var mu sync.Mutex
	var registered []string
	var logins []answered
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			hc := &http.Client{Timeout: 5 * time.Second}
			for n := 0; ; n++ {
				email := fmt.Sprintf("storm-%d-%d@example.com", i, n)
				_, g, err := gqltest.PostJSON(hc, p.base, gqltest.RegisterMutation, gqltest.RegisterInput(email), nil)
				if err != nil {
					return // the server is gone
				}
				if g.Code() != "" {
					continue
				}
				mu.Lock()
				registered = append(registered, email)
				mu.Unlock()
				resp, g, err := gqltest.PostJSON(hc, p.base, gqltest.LoginMutation, map[string]any{"email": email, "password": gqltest.Password}, nil)
				if err != nil {
					return
				}
				if g.Code() == "" {
					mu.Lock()
					logins = append(logins, answered{email, cookieOf(resp, "refresh_token")})
					mu.Unlock()
				}
			}
		})
	}
	time.Sleep(1500 * time.Millisecond)
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	<-p.done
	p.done <- nil // for the cleanup
	t.Logf("answered before the kill: %d registrations, %d logins", len(registered), len(logins))
	if len(registered) < 20 || len(logins) < 20 {
		t.Fatalf("the storm was too small to prove anything: %d registrations, %d logins", len(registered), len(logins))
	}

	p2 := startProcess(t, bin, dataDir)
	hc := &http.Client{Timeout: 10 * time.Second}
	// Every answered refresh token still works (each is used once here).
	for _, l := range logins {
		_, g, err := gqltest.PostJSON(hc, p2.base, gqltest.RefreshMutation, nil, http.Header{"Cookie": {"refresh_token=" + l.refresh}})
		if err != nil || g.Code() != "" {
			t.Fatalf("the refresh token answered to %s was lost: %v %v", l.email, err, g)
		}
	}
	// Every answered registration can sign in.
	for _, email := range registered {
		_, g, err := gqltest.PostJSON(hc, p2.base, gqltest.LoginMutation, map[string]any{"email": email, "password": gqltest.Password}, nil)
		if err != nil || g.Code() != "" {
			t.Fatalf("the user %s was lost: %v %v", email, err, g)
		}
	}

	// The documents themselves, read through the running server's database.
	ctx := context.Background()
	uri, err := embedded.Locate(filepath.Join(dataDir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	db := storetest.Attach(t, mongostore.Options{URI: uri, Database: "fastapi"})
	users, sessions, err := db.CheckIntegrity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("after the restart: %d users (all whole, e-mails unique), %d sessions (all with a user)", users, sessions)
}

// TestGracefulShutdownUnderLoad sends SIGTERM while 32 clients are busy:
// every request the server accepted gets a complete answer, requests in
// flight at the signal finish, and the process exits 0 within the
// shutdown timeout.
func TestGracefulShutdownUnderLoad(t *testing.T) {
	bin := buildBinary(t)
	p := startProcess(t, bin, filepath.Join(t.TempDir(), "data"), "BCRYPT_COST=12", "SHUTDOWN_TIMEOUT=10s")
	hc := &http.Client{Timeout: 15 * time.Second}
	_, _, err := gqltest.PostJSON(hc, p.base, gqltest.RegisterMutation, gqltest.RegisterInput("busy@example.com"), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, g, err := gqltest.PostJSON(hc, p.base, gqltest.LoginMutation, map[string]any{"email": "busy@example.com", "password": gqltest.Password}, nil)
	if err != nil || g.Code() != "" {
		t.Fatalf("login: %v %v", err, g)
	}
	bearer := http.Header{"Authorization": {"Bearer " + cookieOf(resp, "access_token")}}

	// A request sent this long before the signal was surely read by the
	// server, even under the race detector on a loaded machine (until the
	// server has read it, its connection counts as idle, and Shutdown may
	// close it: the client then sees a reset, which is no lost answer).
	// Logins at bcrypt cost 12, two at a time for eight clients, are still
	// in flight that long.
	const inFlight = 300 * time.Millisecond
	var signalled time.Time
	var mu sync.Mutex
	var completedAfter, refused int
	var bad []string
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Go(func() {
			c := &http.Client{Timeout: 15 * time.Second}
			for {
				start := time.Now()
				var err error
				var g *gqltest.Response
				var resp *http.Response
				if i%4 == 0 { // a slower request: a login (bcrypt at cost 12)
					resp, g, err = gqltest.PostJSON(c, p.base, gqltest.LoginMutation, map[string]any{"email": "busy@example.com", "password": gqltest.Password}, nil)
				} else {
					resp, g, err = gqltest.PostJSON(c, p.base, gqltest.MeQuery, nil, bearer)
				}
				end := time.Now()
				mu.Lock()
				sig := signalled
				switch {
				case err != nil && resp == nil && !sig.IsZero() && start.Before(sig.Add(-inFlight)):
					// Sent well before the signal: the server had it, and a
					// graceful shutdown must answer it.
					bad = append(bad, fmt.Sprintf("a request in flight at the signal got no answer: %v", err))
					mu.Unlock()
					return
				case err != nil && resp == nil:
					// Not accepted: the listener was closed, or an idle
					// connection was closed as the request went out.
					refused++
					mu.Unlock()
					return
				case err != nil:
					bad = append(bad, fmt.Sprintf("an answer was cut: %v", err))
				case resp.StatusCode != http.StatusOK || (g.Code() != "" && g.Code() != "RATE_LIMITED"):
					// (RATE_LIMITED is a complete answer: the hashing queue
					// was full, on a busy machine.)
					bad = append(bad, fmt.Sprintf("an answer failed: %d %s", resp.StatusCode, g.Body))
				case !sig.IsZero() && start.Before(sig.Add(-inFlight)) && end.After(sig):
					completedAfter++ // well in flight at the signal, and answered
				}
				mu.Unlock()
			}
		})
	}
	time.Sleep(time.Second)
	mu.Lock()
	signalled = time.Now()
	mu.Unlock()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var exitErr error
	select {
	case exitErr = <-p.done:
	case <-time.After(15 * time.Second):
		t.Fatal("no exit within SHUTDOWN_TIMEOUT (10 s) and a margin")
	}
	p.done <- exitErr // for the cleanup
	exitedAfter := time.Since(signalled)
	wg.Wait()
	if exitErr != nil {
		var ee *exec.ExitError
		if errors.As(exitErr, &ee) {
			t.Fatalf("exit status %d after SIGTERM, want 0", ee.ExitCode())
		}
		t.Fatal(exitErr)
	}
	if len(bad) > 0 {
		t.Fatalf("%d bad answers, e.g. %s", len(bad), bad[0])
	}
	if completedAfter == 0 {
		t.Fatal("no request in flight at the signal was completed")
	}
	t.Logf("exit 0 after %v; %d requests in flight at SIGTERM completed; %d clients refused afterwards",
		exitedAfter.Round(time.Millisecond), completedAfter, refused)
}
