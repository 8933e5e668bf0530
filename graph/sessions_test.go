package graph

import (
	"encoding/json"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gqlauth/gqlauth/internal/auth"
	"github.com/gqlauth/gqlauth/internal/authtest"
	"github.com/gqlauth/gqlauth/internal/gqltest"
	"github.com/gqlauth/gqlauth/internal/web"
)

const sessionsTestOrigin = "sessions@example.com"

func TestSessionsAPI(t *testing.T) {
	s := newTestServer(t, authtest.Options{}, nil)
	clk := s.env.Clock
	laptop := s.client(t)
	laptop.Header.Set("User-Agent", "Laptop/1.0")
	laptop.MustRegister(sessionsTestOrigin)
	laptop.MustLogin(sessionsTestOrigin)
	clk.Advance(time.Second)
	phone := s.client(t)
	phone.Header.Set("User-Agent", "Phone/2.0")
	phone.MustLogin(sessionsTestOrigin)

	t.Run("List", func(t *testing.T) {
		list := laptop.Sessions()
		if len(list) != 2 {
			t.Fatalf("sessions = %+v, want 2", list)
		}
		// Newest first; the caller's own marked current.
		if list[0].UserAgent != "Phone/2.0" || list[0].Current || list[1].UserAgent != "Laptop/1.0" || !list[1].Current {
			t.Fatalf("sessions = %+v", list)
		}
		if list[1].IP != "127.0.0.1" || list[1].CreatedAt.IsZero() || !list[1].LastUsedAt.Equal(list[1].CreatedAt) {
			t.Fatalf("session fields = %+v", list[1])
		}
	})

	t.Run("LastUsedAtOnRefreshNotOnMe", func(t *testing.T) {
		before := laptop.Sessions()[1].LastUsedAt
		clk.Advance(5 * time.Second)
		for range 3 {
			gqltest.ExpectOK(t, laptop.Do(gqltest.MeQuery, nil))
		}
		if got := laptop.Sessions()[1].LastUsedAt; !got.Equal(before) {
			t.Fatalf("me moved lastUsedAt from %v to %v", before, got)
		}
		laptop.MustRefresh()
		// Written behind the refresh, within about a second.
		deadline := time.Now().Add(5 * time.Second)
		for got := laptop.Sessions()[1].LastUsedAt; !got.After(before); got = laptop.Sessions()[1].LastUsedAt {
			if time.Now().After(deadline) {
				t.Fatalf("refresh did not move lastUsedAt (%v)", got)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})

	t.Run("RevokeAnother", func(t *testing.T) {
		list := laptop.Sessions()
		r := laptop.Do(gqltest.RevokeSessionMutation, map[string]any{"id": list[0].ID})
		gqltest.ExpectOK(t, r)
		if string(r.Data["revokeSession"]) != "true" {
			t.Fatalf("revokeSession = %s", r.Data["revokeSession"])
		}
		// The phone is signed out at once, access and refresh alike.
		gqltest.ExpectCode(t, phone.Do(gqltest.MeQuery, nil), "UNAUTHENTICATED")
		gqltest.ExpectCode(t, phone.Do(gqltest.RefreshMutation, nil), "UNAUTHENTICATED")
		// The laptop is not, and keeps its cookies.
		gqltest.ExpectOK(t, laptop.Do(gqltest.MeQuery, nil))
		if laptop.Cookie(web.CookieAccess) == "" {
			t.Fatal("revoking another session cleared this one's cookies")
		}
		// Revoking it again, or an unknown id, is false.
		for _, id := range []string{list[0].ID, "nope", "6560c0ffee0000000000beef.1"} {
			r := laptop.Do(gqltest.RevokeSessionMutation, map[string]any{"id": id})
			gqltest.ExpectOK(t, r)
			if string(r.Data["revokeSession"]) != "false" {
				t.Fatalf("revokeSession(%q) = %s, want false", id, r.Data["revokeSession"])
			}
		}
	})

	t.Run("CannotRevokeAnotherUsersSession", func(t *testing.T) {
		other, _ := s.signedIn(t, "other-user@example.com")
		theirs := other.Sessions()[0].ID
		r := laptop.Do(gqltest.RevokeSessionMutation, map[string]any{"id": theirs})
		if string(r.Data["revokeSession"]) != "false" {
			t.Fatalf("revoked another user's session: %s", r.Body)
		}
		gqltest.ExpectOK(t, other.Do(gqltest.MeQuery, nil))
	})

	t.Run("RevokeCurrentClearsCookies", func(t *testing.T) {
		c := s.client(t)
		c.MustLogin(sessionsTestOrigin)
		var mine string
		for _, l := range c.Sessions() {
			if l.Current {
				mine = l.ID
			}
		}
		gqltest.ExpectOK(t, c.Do(gqltest.RevokeSessionMutation, map[string]any{"id": mine}))
		if c.Cookie(web.CookieAccess) != "" || c.Cookie(web.CookieLoggedIn) != "" {
			t.Fatal("revoking the current session did not clear the cookies")
		}
	})

	t.Run("LogoutAll", func(t *testing.T) {
		other := s.client(t)
		other.MustLogin(sessionsTestOrigin)
		kept := laptop.Clone()
		r := laptop.Do(gqltest.LogoutAllMutation, nil)
		gqltest.ExpectOK(t, r)
		if laptop.Cookie(web.CookieAccess) != "" || laptop.Cookie(web.CookieLoggedIn) != "" {
			t.Fatal("logoutAll did not clear the cookies")
		}
		for _, c := range []*gqltest.Client{kept, other} {
			gqltest.ExpectCode(t, c.Do(gqltest.MeQuery, nil), "UNAUTHENTICATED")
			gqltest.ExpectCode(t, c.Do(gqltest.RefreshMutation, nil), "UNAUTHENTICATED")
		}
		if !s.env.Events.Has(auth.EventLogoutAll) {
			t.Fatal("logoutAll was not logged")
		}
	})

	t.Run("Unauthenticated", func(t *testing.T) {
		anon := s.client(t)
		gqltest.ExpectCode(t, anon.Do(gqltest.SessionsQuery, nil), "UNAUTHENTICATED")
		gqltest.ExpectCode(t, anon.Do(gqltest.RevokeSessionMutation, map[string]any{"id": "x"}), "UNAUTHENTICATED")
		gqltest.ExpectCode(t, anon.Do(gqltest.LogoutAllMutation, nil), "UNAUTHENTICATED")
		gqltest.ExpectCode(t, anon.Do(gqltest.ChangePasswordMutation, map[string]any{"c": gqltest.Password, "n": gqltest.NewPassword}), "UNAUTHENTICATED")
	})
}

func TestChangePassword(t *testing.T) {
	s := newTestServer(t, authtest.Options{}, nil)
	clk := s.env.Clock
	c, _ := s.signedIn(t, "changer@example.com")
	otherDevice := s.client(t)
	otherDevice.MustLogin("changer@example.com")

	t.Run("ErrNewPasswordRules", func(t *testing.T) {
		r := c.Do(gqltest.ChangePasswordMutation, map[string]any{"c": gqltest.Password, "n": "short"})
		gqltest.ExpectCode(t, r, "BAD_USER_INPUT")
		if r.Errors[0].Extensions["field"] != "newPassword" {
			t.Fatalf("field = %v", r.Errors[0].Extensions["field"])
		}
	})
	t.Run("ErrWrongCurrentIsThrottled", func(t *testing.T) {
		for range 5 {
			r := c.Do(gqltest.ChangePasswordMutation, map[string]any{"c": "not my password", "n": gqltest.NewPassword})
			gqltest.ExpectCode(t, r, "BAD_USER_INPUT")
			if r.Errors[0].Extensions["field"] != "currentPassword" {
				t.Fatalf("field = %v", r.Errors[0].Extensions["field"])
			}
		}
		// Counted like logins: now the e-mail is throttled, for login too.
		gqltest.ExpectCode(t, c.Do(gqltest.ChangePasswordMutation, map[string]any{"c": gqltest.Password, "n": gqltest.NewPassword}), "RATE_LIMITED")
		gqltest.ExpectCode(t, s.client(t).Login("changer@example.com"), "RATE_LIMITED")
		clk.Advance(31 * time.Second)
	})
	t.Run("OK", func(t *testing.T) {
		r := c.Do(gqltest.ChangePasswordMutation, map[string]any{"c": gqltest.Password, "n": gqltest.NewPassword})
		gqltest.ExpectOK(t, r)
		// Other sessions are revoked; this one stays.
		gqltest.ExpectCode(t, otherDevice.Do(gqltest.MeQuery, nil), "UNAUTHENTICATED")
		gqltest.ExpectCode(t, otherDevice.Do(gqltest.RefreshMutation, nil), "UNAUTHENTICATED")
		gqltest.ExpectOK(t, c.Do(gqltest.MeQuery, nil))
		c.MustRefresh()
		// The old password no longer works; the new one does.
		gqltest.ExpectCode(t, s.client(t).Login("changer@example.com"), "UNAUTHENTICATED")
		gqltest.ExpectOK(t, s.client(t).Do(gqltest.LoginMutation, map[string]any{"email": "changer@example.com", "password": gqltest.NewPassword}))
		if !s.env.Events.Has(auth.EventPasswordChanged) {
			t.Fatal("the change was not logged")
		}
	})
}

// TestChangePasswordRacingLogins signs in with the old password, over and
// over, while the password changes: no session made with the old password
// survives the change.
func TestChangePasswordRacingLogins(t *testing.T) {
	s := newTestServer(t, authtest.Options{Config: func(c *auth.Config) { c.LoginThrottle = auth.DefaultLoginThrottle(0) }}, nil)
	owner, _ := s.signedIn(t, "racer-pw@example.com")
	stop := make(chan struct{})
	var mu sync.Mutex
	var stolen []string
	var wg sync.WaitGroup
	// At most 40 sign-ins in all, below the 50-session cap (which would
	// otherwise revoke the owner's own session).
	var left atomic.Int32
	left.Store(40)
	for range 4 {
		wg.Go(func() {
			hc := &http.Client{Timeout: 10 * time.Second}
			for left.Add(-1) >= 0 {
				select {
				case <-stop:
					return
				default:
				}
				_, r, err := gqltest.PostJSON(hc, s.base, gqltest.LoginMutation, map[string]any{"email": "racer-pw@example.com", "password": gqltest.Password}, nil)
				if err != nil || r.Code() != "" {
					continue
				}
				var p gqltest.AuthPayload
				if err := json.Unmarshal(r.Data["login"], &p); err == nil {
					mu.Lock()
					stolen = append(stolen, p.AccessToken)
					mu.Unlock()
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	time.Sleep(100 * time.Millisecond)
	gqltest.ExpectOK(t, owner.Do(gqltest.ChangePasswordMutation, map[string]any{"c": gqltest.Password, "n": gqltest.NewPassword}))
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	if len(stolen) == 0 {
		t.Fatal("no login with the old password got through before the change: the race was not run")
	}
	for i, tok := range stolen {
		if r := s.client(t).Bearer(tok).Do(gqltest.MeQuery, nil); r.Code() != "UNAUTHENTICATED" {
			t.Fatalf("session %d of %d made with the old password survived the change: %s", i+1, len(stolen), r.Body)
		}
	}
	gqltest.ExpectOK(t, owner.Do(gqltest.MeQuery, nil))
	t.Logf("%d sessions made with the old password, all refused after the change", len(stolen))
}
