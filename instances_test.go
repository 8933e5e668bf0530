package main

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/gqlauth/gqlauth/internal/authtest"
	"github.com/gqlauth/gqlauth/internal/embedded"
	"github.com/gqlauth/gqlauth/internal/gqltest"
)

// startPair starts one FerretDB listener and two server instances that share
// it through DATABASE_URL, as two replicas behind a load balancer would.
func startPair(t *testing.T, clk *authtest.Clock) (a, b *testServer) {
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
	clk := &authtest.Clock{}
	a, b := startPair(t, clk)

	t.Run("ConcurrentRegistration", func(t *testing.T) {
		gqltest.ExpectOneRegistration(t, []string{a.base, b.base}, "pair@example.com", 20)
	})

	t.Run("AccessAndRotationAcrossInstances", func(t *testing.T) {
		ca := a.client()
		ca.MustRegister("across@example.com")
		p := ca.MustLogin("across@example.com")
		cb := ca.WithBase(b.base)
		gqltest.ExpectOK(t, cb.Bearer(p.AccessToken).Do(gqltest.MeQuery, nil))
		stolen := ca.Clone()
		p2 := cb.MustRefresh() // rotate on B
		clk.Advance(6 * time.Second)
		// The spent token replayed on A, outside the grace window: the
		// session is revoked on both instances.
		gqltest.ExpectCode(t, stolen.Do(gqltest.RefreshMutation, nil), "UNAUTHENTICATED")
		gqltest.ExpectCode(t, ca.Bearer(p2.AccessToken).Do(gqltest.MeQuery, nil), "UNAUTHENTICATED")
		gqltest.ExpectCode(t, cb.Bearer(p2.AccessToken).Do(gqltest.MeQuery, nil), "UNAUTHENTICATED")
		gqltest.ExpectCode(t, cb.Do(gqltest.RefreshMutation, nil), "UNAUTHENTICATED")
	})

	t.Run("LogoutOnOneRevokesOnOther", func(t *testing.T) {
		ca := a.client()
		ca.MustRegister("logout-pair@example.com")
		p := ca.MustLogin("logout-pair@example.com")
		kept := ca.Clone().WithBase(b.base)
		gqltest.ExpectOK(t, ca.WithBase(b.base).Do(gqltest.LogoutMutation, nil))
		gqltest.ExpectCode(t, a.client().Bearer(p.AccessToken).Do(gqltest.MeQuery, nil), "UNAUTHENTICATED")
		gqltest.ExpectCode(t, kept.WithBase(a.base).Do(gqltest.RefreshMutation, nil), "UNAUTHENTICATED")
	})

	t.Run("ConcurrentRefreshAcrossInstances", func(t *testing.T) {
		ca := a.client()
		ca.MustRegister("tabs-pair@example.com")
		p := ca.MustLogin("tabs-pair@example.com")
		const n = 10
		tabs := make([]*gqltest.Client, n)
		for i := range tabs {
			tabs[i] = ca.Clone()
			if i%2 == 1 {
				tabs[i] = tabs[i].WithBase(b.base)
			}
		}
		results := make([]*gqltest.Response, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { results[i] = tabs[i].Do(gqltest.RefreshMutation, nil) })
		}
		wg.Wait()
		for _, r := range results {
			gqltest.ExpectOK(t, r)
		}
		if got := a.liveSessions(p.User.ID); got != 1 {
			t.Fatalf("live sessions = %d, want 1", got)
		}
		for _, tab := range tabs {
			gqltest.ExpectOK(t, tab.Do(gqltest.MeQuery, nil))
		}
		for _, s := range []*testServer{a, b} {
			if s.logged("event=refresh_reuse", p.User.ID) {
				t.Fatal("concurrent tabs triggered reuse detection")
			}
		}
	})

	t.Run("ThrottleAcrossInstances", func(t *testing.T) {
		wrong := func(s *testServer) string {
			return throttleOutcome(s.client().Do(gqltest.LoginMutation, map[string]any{"email": "shared-target@example.com", "password": "wrong password"}))
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
		a.client().MustRegister("race-pair@example.com")
		for range 10 {
			gqltest.RaceRefreshAndLogout(t, a.base, b.base, "race-pair@example.com")
		}
	})
}

// throttleOutcome names a login's outcome, telling the e-mail throttle
// (retryAfter of at least 29 s) from a busy hasher (1 s).
func throttleOutcome(r *gqltest.Response) string {
	if r.Code() == "RATE_LIMITED" {
		if ra, _ := r.Errors[0].Extensions["retryAfter"].(float64); ra >= 29 {
			return "throttled"
		}
		return "busy"
	}
	return r.Code()
}
