package gqltest

import (
	"sync"
	"testing"

	"github.com/gqlauth/gqlauth/internal/web"
)

// ExpectOneRegistration registers one e-mail n times at once, spread over
// the servers at bases: exactly one succeeds and the rest get CONFLICT.
func ExpectOneRegistration(t *testing.T, bases []string, email string, n int) {
	t.Helper()
	codes := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		base := bases[i%len(bases)]
		wg.Go(func() { codes[i] = New(t, base).Do(RegisterMutation, RegisterInput(email)).Code() })
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

// RaceRefreshAndLogout signs in on the server at base1, then refreshes on
// base2 while logging out on base1, at once: whatever the order, the
// session ends revoked and no token the refresh returned works, on either
// server.
func RaceRefreshAndLogout(t *testing.T, base1, base2, email string) {
	t.Helper()
	c := New(t, base1)
	c.MustLogin(email)
	refresher, logouter := c.Clone().WithBase(base2), c.Clone()
	var refreshed, loggedOut *Response
	var wg sync.WaitGroup
	wg.Go(func() { refreshed = refresher.Do(RefreshMutation, nil) })
	wg.Go(func() { loggedOut = logouter.Do(LogoutMutation, nil) })
	wg.Wait()
	ExpectOK(t, loggedOut)
	if refreshed.Code() == "" {
		if refresher.Cookie(web.CookieRefresh) == "" {
			t.Fatal("a successful refresh set no cookie")
		}
		var p AuthPayload
		refreshed.Decode(t, "refresh", &p)
		for _, base := range []string{base1, base2} {
			ExpectCode(t, New(t, base).Bearer(p.AccessToken).Do(MeQuery, nil), "UNAUTHENTICATED")
		}
		ExpectCode(t, refresher.WithBase(base1).Do(RefreshMutation, nil), "UNAUTHENTICATED")
	} else {
		ExpectCode(t, refreshed, "UNAUTHENTICATED")
	}
	ExpectCode(t, c.Do(MeQuery, nil), "UNAUTHENTICATED")
	ExpectCode(t, c.Do(RefreshMutation, nil), "UNAUTHENTICATED")
}
