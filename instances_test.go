package main

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/gqlauth/gqlauth/internal/embedded"
)

// startPair starts one FerretDB listener and two server instances that share
// it through DATABASE_URL, as two replicas behind a load balancer would.
func startPair(t *testing.T, clk *clock) (a, b *testServer) {
	t.Helper()
	// A TCP listener, as between hosts.
	db, err := embedded.Start(embedded.Options{Dir: t.TempDir(), Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Stop)
	env := map[string]string{"DATABASE_URL": db.URI(), "MONGO_INITDB_DATABASE": "shared"}
	a = startServer(t, serverOptions{env: env, clock: clk})
	b = startServer(t, serverOptions{env: env, clock: clk})
	if err := embedded.IndexIDLookups(context.Background(), db.Dir(), "shared"); err != nil {
		t.Fatal(err)
	}
	return a, b
}

// TestTwoInstances proves that registration, rotation, reuse detection and
// revocation hold across two instances on one FerretDB, whose conditional
// updates are not atomic.
func TestTwoInstances(t *testing.T) {
	clk := &clock{}
	a, b := startPair(t, clk)

	t.Run("ConcurrentRegistration", func(t *testing.T) {
		expectOneRegistration(t, []*testServer{a, b}, "pair@example.com", 20)
	})

	t.Run("AccessAndRotationAcrossInstances", func(t *testing.T) {
		ca := a.client()
		ca.mustRegister("across@example.com")
		p := ca.mustLogin("across@example.com")
		cb := ca.withBase(b.base)
		expectOK(t, cb.bearer(p.AccessToken).do(meQuery, nil))
		stolen := ca.clone()
		p2 := cb.mustRefresh() // rotate on B
		clk.Advance(6 * time.Second)
		// The spent token replayed on A, outside the grace window: the
		// session is revoked on both instances.
		expectCode(t, stolen.do(refreshMutation, nil), "UNAUTHENTICATED")
		expectCode(t, ca.bearer(p2.AccessToken).do(meQuery, nil), "UNAUTHENTICATED")
		expectCode(t, cb.bearer(p2.AccessToken).do(meQuery, nil), "UNAUTHENTICATED")
		expectCode(t, cb.do(refreshMutation, nil), "UNAUTHENTICATED")
	})

	t.Run("LogoutOnOneRevokesOnOther", func(t *testing.T) {
		ca := a.client()
		ca.mustRegister("logout-pair@example.com")
		p := ca.mustLogin("logout-pair@example.com")
		kept := ca.clone().withBase(b.base)
		expectOK(t, ca.withBase(b.base).do(logoutMutation, nil))
		expectCode(t, a.client().bearer(p.AccessToken).do(meQuery, nil), "UNAUTHENTICATED")
		expectCode(t, kept.withBase(a.base).do(refreshMutation, nil), "UNAUTHENTICATED")
	})

	t.Run("ConcurrentRefreshAcrossInstances", func(t *testing.T) {
		ca := a.client()
		ca.mustRegister("tabs-pair@example.com")
		p := ca.mustLogin("tabs-pair@example.com")
		const n = 10
		tabs := make([]*client, n)
		for i := range tabs {
			tabs[i] = ca.clone()
			if i%2 == 1 {
				tabs[i] = tabs[i].withBase(b.base)
			}
		}
		results := make([]*gqlResponse, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { results[i] = tabs[i].do(refreshMutation, nil) })
		}
		wg.Wait()
		for _, r := range results {
			expectOK(t, r)
		}
		if got := a.liveSessions(p.User.ID); got != 1 {
			t.Fatalf("live sessions = %d, want 1", got)
		}
		for _, tab := range tabs {
			expectOK(t, tab.do(meQuery, nil))
		}
		for _, s := range []*testServer{a, b} {
			if s.logged("event=refresh_reuse", p.User.ID) {
				t.Fatal("concurrent tabs triggered reuse detection")
			}
		}
	})

	t.Run("ThrottleAcrossInstances", func(t *testing.T) {
		wrong := func(s *testServer) string {
			return throttleOutcome(s.client().do(loginMutation, map[string]any{"email": "shared-target@example.com", "password": "wrong password"}))
		}
		const n = 20
		codes := make([]string, n)
		var wg sync.WaitGroup
		for i := range n {
			s := a
			if i%2 == 1 {
				s = b
			}
			wg.Go(func() { codes[i] = wrong(s) })
		}
		wg.Wait()
		count := map[string]int{}
		for _, c := range codes {
			count[c]++
		}
		if count["UNAUTHENTICATED"] != 5 || count["throttled"] != n-5 {
			t.Fatalf("codes = %v, want exactly 5 checked and %d throttled across both instances", count, n-5)
		}
		if wrong(a) != "throttled" || wrong(b) != "throttled" {
			t.Fatal("the throttle does not hold on both instances")
		}
	})

	t.Run("RefreshRacingLogoutAcrossInstances", func(t *testing.T) {
		a.client().mustRegister("race-pair@example.com")
		for range 10 {
			raceRefreshAndLogout(t, a, b, "race-pair@example.com")
		}
	})
}
