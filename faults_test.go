package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gqlauth/gqlauth/internal/authtest"
	"github.com/gqlauth/gqlauth/internal/embedded"
	"github.com/gqlauth/gqlauth/internal/gqltest"
	"github.com/gqlauth/gqlauth/internal/storetest"
)

// loadResult is one request of a load test.
type loadResult struct {
	at      time.Time
	took    time.Duration
	status  int
	code    string
	message string
	err     error
}

// runMeLoad sends `me` with each token in a closed loop until stop is
// closed, and returns every outcome.
func runMeLoad(t *testing.T, base string, tokens []string, stop <-chan struct{}) []loadResult {
	t.Helper()
	var mu sync.Mutex
	var out []loadResult
	var wg sync.WaitGroup
	for _, tok := range tokens {
		wg.Go(func() {
			hc := &http.Client{Timeout: 15 * time.Second}
			for {
				select {
				case <-stop:
					return
				default:
				}
				r := loadResult{at: time.Now()}
				req, _ := http.NewRequest(http.MethodPost, base+"/graphql", strings.NewReader(`{"query":"{ me { id } }"}`))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+tok)
				resp, err := hc.Do(req)
				if err == nil {
					g := readGQLQuiet(resp)
					r.status, r.code = resp.StatusCode, g.Code()
					if len(g.Errors) > 0 {
						r.message = g.Errors[0].Message
					}
				}
				r.err, r.took = err, time.Since(r.at)
				mu.Lock()
				out = append(out, r)
				mu.Unlock()
				if err != nil {
					time.Sleep(10 * time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	return out
}

// readGQLQuiet reads a GraphQL response without failing the test (for
// goroutines other than the test's).
func readGQLQuiet(resp *http.Response) *gqltest.Response {
	defer resp.Body.Close()
	r := &gqltest.Response{HTTP: resp}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return r
	}
	r.Body = string(b)
	_ = json.Unmarshal(b, r)
	return r
}

// TestDatabaseOutageUnderLoad stops the database under load and starts it
// again on the same port: requests fail fast with a clear error, /readyz
// answers 503, nothing hangs, and the server recovers without a restart.
func TestDatabaseOutageUnderLoad(t *testing.T) {
	long(t)
	const dbTimeout = 500 * time.Millisecond
	dir := t.TempDir()
	db, err := embedded.Start(embedded.Options{Dir: dir, Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimSuffix(strings.TrimPrefix(db.URI(), "mongodb://"), "/")
	s := startServer(t, serverOptions{env: map[string]string{
		"DATABASE_URL": db.URI(), "DATABASE_TIMEOUT": dbTimeout.String(), "RATE_LIMIT_IP_PER_MINUTE": "0",
	}})
	var tokens []string
	for i := range 8 {
		_, p := s.signedIn(fmt.Sprintf("outage%d@example.com", i))
		tokens = append(tokens, p.AccessToken)
	}

	stop := make(chan struct{})
	results := make(chan []loadResult, 1)
	go func() { results <- runMeLoad(t, s.base, tokens, stop) }()

	time.Sleep(time.Second)
	stopped := time.Now()
	db.Stop()
	down := time.Now()
	time.Sleep(2 * time.Second)
	if resp, _ := get(t, s.base+"/readyz", nil); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz during the outage = %d, want 503", resp.StatusCode)
	}
	if resp, _ := get(t, s.base+"/healthz", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz during the outage = %d, want 200", resp.StatusCode)
	}

	restarted := time.Now()
	db2, err := embedded.Start(embedded.Options{Dir: dir, Addr: addr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db2.Stop)
	// The server recovers by itself: wait for successful answers.
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := s.client().Bearer(tokens[0]).Do(gqltest.MeQuery, nil)
		if r.Code() == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not recovered 30 s after the database came back: %s", r.Body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	recovered := time.Now()
	time.Sleep(500 * time.Millisecond)
	close(stop)
	all := <-results
	if resp, _ := get(t, s.base+"/readyz", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("/readyz after recovery = %d, want 200", resp.StatusCode)
	}

	var before, during, after, slow, wrong int
	report := func(format string, args ...any) {
		if wrong++; wrong <= 5 {
			t.Errorf(format, args...)
		}
	}
	for _, r := range all {
		switch {
		case r.err != nil:
			t.Fatalf("a request failed at the HTTP level (the server must answer): %v", r.err)
		case r.status >= 500:
			t.Fatalf("a %d answer: the outage must be a GraphQL error, not a 5xx", r.status)
		}
		switch {
		// Answered before the database stopped (one in flight as it
		// stopped may well get the outage's answer).
		case r.at.Add(r.took).Before(stopped):
			before++
			if r.code != "" {
				report("before the outage: %s %q", r.code, r.message)
			}
		// Requests that began less than a second before the restart may
		// well be answered by the restarted database.
		case r.at.After(down) && r.at.Before(restarted.Add(-time.Second)):
			during++
			if r.code != "INTERNAL_SERVER_ERROR" || !strings.Contains(strings.ToLower(r.message), "unavailable") {
				report("during the outage: %q %q, want INTERNAL_SERVER_ERROR saying unavailable", r.code, r.message)
			}
			// Fail fast: about twice the database timeout (a generous margin).
			if r.took > 2*dbTimeout+time.Second {
				slow++
			}
		case r.at.After(recovered):
			after++
			if r.code != "" {
				report("after recovery: %s %q", r.code, r.message)
			}
		}
	}
	if wrong > 0 {
		t.Fatalf("%d requests with the wrong answer", wrong)
	}
	if before == 0 || during == 0 || after == 0 {
		t.Fatalf("requests before/during/after the outage: %d/%d/%d", before, during, after)
	}
	if slow > 0 {
		t.Errorf("%d of %d requests during the outage took longer than %v", slow, during, 2*dbTimeout+time.Second)
	}
	t.Logf("requests: %d before, %d during (all INTERNAL_SERVER_ERROR), %d after; recovered %v after the restart",
		before, during, after, recovered.Sub(restarted).Round(time.Millisecond))
}

// TestSweepRemovesExpired shows the sweep with a short session lifetime:
// expired sessions, revocation records, spent and issued refresh-token
// records and login-attempt records are deleted; live ones stay.
func TestSweepRemovesExpired(t *testing.T) {
	clk := &authtest.Clock{}
	s := startServer(t, serverOptions{clock: clk, env: map[string]string{
		"SESSION_MAX_LIFETIME": "2m", "REFRESH_TOKEN_EXPIRES_IN": "2m", "ACCESS_TOKEN_EXPIRES_IN": "1m", "RATE_LIMIT_IP_PER_MINUTE": "0",
	}})
	old, _ := s.signedIn("old@example.com")
	old.MustRefresh()
	gqltest.ExpectOK(t, old.Do(gqltest.LogoutMutation, nil))
	other := s.client()
	other.MustLogin("old@example.com")
	s.client().Do(gqltest.LoginMutation, map[string]any{"email": "old@example.com", "password": "wrong password"})

	ctx := context.Background()
	count := func(group []string) int64 {
		n, err := s.records().Count(ctx, group)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	groups := map[string][]string{
		"sessions": storetest.Sessions, "revocations": storetest.Revocations,
		"spends": storetest.Spends, "attempts": storetest.Attempts,
	}
	for name, g := range groups {
		if count(g) == 0 {
			t.Fatalf("no %s before the sweep: the test proves nothing", name)
		}
	}
	// Nothing has expired yet: the sweep keeps everything.
	if n, err := s.records().Store.Sweep(ctx); err != nil || n != 0 {
		t.Fatalf("early sweep deleted %d (%v)", n, err)
	}

	clk.Advance(3 * time.Hour)
	fresh, _ := s.signedIn("fresh@example.com") // created after the jump: must survive
	n, err := s.records().Store.Sweep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("swept %d documents", n)
	for _, name := range []string{"revocations", "spends"} {
		if got := count(groups[name]); got != 0 {
			t.Errorf("%s: %d left", name, got)
		}
	}
	// The fresh sign-in's records remain: its session and its attempt
	// records (the attempt, the success that reset it, and their head).
	// (Refresh tokens of the earlier release's format have records too:
	// TestUpgradeKeepsRefreshTokens sweeps them.)
	for name, want := range map[string]int64{"sessions": 1, "attempts": 3} {
		if got := count(groups[name]); got != want {
			t.Errorf("%s: %d left, want the fresh sign-in's %d", name, got, want)
		}
	}
	gqltest.ExpectOK(t, fresh.Do(gqltest.MeQuery, nil))
	fresh.MustRefresh()
}

// TestCloseLeavesNoGoroutines is a guard for the soak test's leak check: Close
// returns every goroutine the server started.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	before := stableGoroutines()
	s := startServer(t, serverOptions{})
	s.signedIn("leak@example.com")
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	http.DefaultClient.CloseIdleConnections()
	if after := stableGoroutines(); after > before+5 {
		t.Fatalf("goroutines: %d before, %d after Close", before, after)
	}
}
