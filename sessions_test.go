package main

import (
	"encoding/json"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gqlauth/gqlauth/internal/web"
)

const (
	sessionsQuery      = `query { sessions { id createdAt lastUsedAt userAgent ip current } }`
	revokeMutation     = `mutation($id: ID!) { revokeSession(id: $id) }`
	logoutAllMutation  = `mutation { logoutAll }`
	changePwdMutation  = `mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) }`
	newTestPassword    = "a brand new passphrase"
	sessionsTestOrigin = "sessions@example.com"
)

type sessionJSON struct {
	ID         string    `json:"id"`
	CreatedAt  time.Time `json:"createdAt"`
	LastUsedAt time.Time `json:"lastUsedAt"`
	UserAgent  string    `json:"userAgent"`
	IP         string    `json:"ip"`
	Current    bool      `json:"current"`
}

func (c *client) sessions() []sessionJSON {
	c.tb.Helper()
	var out []sessionJSON
	c.do(sessionsQuery, nil).decode(c.tb, "sessions", &out)
	return out
}

func TestSessionsAPI(t *testing.T) {
	clk := &clock{}
	s := startServer(t, serverOptions{clock: clk, env: map[string]string{"RATE_LIMIT_IP_PER_MINUTE": "0"}})
	laptop := s.client()
	laptop.header.Set("User-Agent", "Laptop/1.0")
	laptop.mustRegister(sessionsTestOrigin)
	laptop.mustLogin(sessionsTestOrigin)
	clk.Advance(time.Second)
	phone := s.client()
	phone.header.Set("User-Agent", "Phone/2.0")
	phone.mustLogin(sessionsTestOrigin)

	t.Run("List", func(t *testing.T) {
		list := laptop.sessions()
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
		before := laptop.sessions()[1].LastUsedAt
		clk.Advance(5 * time.Second)
		for range 3 {
			expectOK(t, laptop.do(meQuery, nil))
		}
		if got := laptop.sessions()[1].LastUsedAt; !got.Equal(before) {
			t.Fatalf("me moved lastUsedAt from %v to %v", before, got)
		}
		laptop.mustRefresh()
		if got := laptop.sessions()[1].LastUsedAt; !got.After(before) {
			t.Fatalf("refresh did not move lastUsedAt (%v)", got)
		}
	})

	t.Run("RevokeAnother", func(t *testing.T) {
		list := laptop.sessions()
		r := laptop.do(revokeMutation, map[string]any{"id": list[0].ID})
		expectOK(t, r)
		if string(r.Data["revokeSession"]) != "true" {
			t.Fatalf("revokeSession = %s", r.Data["revokeSession"])
		}
		// The phone is signed out at once, access and refresh alike.
		expectCode(t, phone.do(meQuery, nil), "UNAUTHENTICATED")
		expectCode(t, phone.do(refreshMutation, nil), "UNAUTHENTICATED")
		// The laptop is not, and keeps its cookies.
		expectOK(t, laptop.do(meQuery, nil))
		if laptop.cookie(web.CookieAccess) == "" {
			t.Fatal("revoking another session cleared this one's cookies")
		}
		// Revoking it again, or an unknown id, is false.
		for _, id := range []string{list[0].ID, "nope", "6560c0ffee0000000000beef.1"} {
			r := laptop.do(revokeMutation, map[string]any{"id": id})
			expectOK(t, r)
			if string(r.Data["revokeSession"]) != "false" {
				t.Fatalf("revokeSession(%q) = %s, want false", id, r.Data["revokeSession"])
			}
		}
	})

	t.Run("CannotRevokeAnotherUsersSession", func(t *testing.T) {
		other, _ := s.signedIn("other-user@example.com")
		theirs := other.sessions()[0].ID
		r := laptop.do(revokeMutation, map[string]any{"id": theirs})
		if string(r.Data["revokeSession"]) != "false" {
			t.Fatalf("revoked another user's session: %s", r.Body)
		}
		expectOK(t, other.do(meQuery, nil))
	})

	t.Run("RevokeCurrentClearsCookies", func(t *testing.T) {
		c := s.client()
		c.mustLogin(sessionsTestOrigin)
		var mine string
		for _, l := range c.sessions() {
			if l.Current {
				mine = l.ID
			}
		}
		expectOK(t, c.do(revokeMutation, map[string]any{"id": mine}))
		if c.cookie(web.CookieAccess) != "" || c.cookie(web.CookieLoggedIn) != "" {
			t.Fatal("revoking the current session did not clear the cookies")
		}
	})

	t.Run("LogoutAll", func(t *testing.T) {
		other := s.client()
		other.mustLogin(sessionsTestOrigin)
		kept := laptop.clone()
		r := laptop.do(logoutAllMutation, nil)
		expectOK(t, r)
		if laptop.cookie(web.CookieAccess) != "" || laptop.cookie(web.CookieLoggedIn) != "" {
			t.Fatal("logoutAll did not clear the cookies")
		}
		for _, c := range []*client{kept, other} {
			expectCode(t, c.do(meQuery, nil), "UNAUTHENTICATED")
			expectCode(t, c.do(refreshMutation, nil), "UNAUTHENTICATED")
		}
		if !s.logged("event=logout_all") {
			t.Fatal("logoutAll was not logged")
		}
	})

	t.Run("Unauthenticated", func(t *testing.T) {
		anon := s.client()
		expectCode(t, anon.do(sessionsQuery, nil), "UNAUTHENTICATED")
		expectCode(t, anon.do(revokeMutation, map[string]any{"id": "x"}), "UNAUTHENTICATED")
		expectCode(t, anon.do(logoutAllMutation, nil), "UNAUTHENTICATED")
		expectCode(t, anon.do(changePwdMutation, map[string]any{"c": testPassword, "n": newTestPassword}), "UNAUTHENTICATED")
	})
}

func TestChangePassword(t *testing.T) {
	clk := &clock{}
	s := startServer(t, serverOptions{clock: clk, env: map[string]string{"RATE_LIMIT_IP_PER_MINUTE": "0"}})
	c, _ := s.signedIn("changer@example.com")
	otherDevice := s.client()
	otherDevice.mustLogin("changer@example.com")

	t.Run("ErrNewPasswordRules", func(t *testing.T) {
		r := c.do(changePwdMutation, map[string]any{"c": testPassword, "n": "short"})
		expectCode(t, r, "BAD_USER_INPUT")
		if r.Errors[0].Extensions["field"] != "newPassword" {
			t.Fatalf("field = %v", r.Errors[0].Extensions["field"])
		}
	})
	t.Run("ErrWrongCurrentIsThrottled", func(t *testing.T) {
		for range 5 {
			r := c.do(changePwdMutation, map[string]any{"c": "not my password", "n": newTestPassword})
			expectCode(t, r, "BAD_USER_INPUT")
			if r.Errors[0].Extensions["field"] != "currentPassword" {
				t.Fatalf("field = %v", r.Errors[0].Extensions["field"])
			}
		}
		// Counted like logins: now the e-mail is throttled, for login too.
		expectCode(t, c.do(changePwdMutation, map[string]any{"c": testPassword, "n": newTestPassword}), "RATE_LIMITED")
		expectCode(t, s.client().login("changer@example.com"), "RATE_LIMITED")
		clk.Advance(31 * time.Second)
	})
	t.Run("OK", func(t *testing.T) {
		r := c.do(changePwdMutation, map[string]any{"c": testPassword, "n": newTestPassword})
		expectOK(t, r)
		// Other sessions are revoked; this one stays.
		expectCode(t, otherDevice.do(meQuery, nil), "UNAUTHENTICATED")
		expectCode(t, otherDevice.do(refreshMutation, nil), "UNAUTHENTICATED")
		expectOK(t, c.do(meQuery, nil))
		c.mustRefresh()
		// The old password no longer works; the new one does.
		expectCode(t, s.client().login("changer@example.com"), "UNAUTHENTICATED")
		expectOK(t, s.client().do(loginMutation, map[string]any{"email": "changer@example.com", "password": newTestPassword}))
		if !s.logged("event=password_changed") {
			t.Fatal("the change was not logged")
		}
	})
}

// TestChangePasswordRacingLogins signs in with the old password, over and
// over, while the password changes: no session made with the old password
// survives the change.
func TestChangePasswordRacingLogins(t *testing.T) {
	s := startServer(t, serverOptions{env: map[string]string{"RATE_LIMIT_IP_PER_MINUTE": "0", "LOGIN_FAILURES_PER_ACCOUNT": "0"}})
	owner, _ := s.signedIn("racer-pw@example.com")
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
				_, r, err := post(hc, s.base, loginMutation, map[string]any{"email": "racer-pw@example.com", "password": testPassword}, nil)
				if err != nil || r.code() != "" {
					continue
				}
				var p authPayload
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
	expectOK(t, owner.do(changePwdMutation, map[string]any{"c": testPassword, "n": newTestPassword}))
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	if len(stolen) == 0 {
		t.Fatal("no login with the old password got through before the change: the race was not run")
	}
	for i, tok := range stolen {
		if r := s.client().bearer(tok).do(meQuery, nil); r.code() != "UNAUTHENTICATED" {
			t.Fatalf("session %d of %d made with the old password survived the change: %s", i+1, len(stolen), r.Body)
		}
	}
	expectOK(t, owner.do(meQuery, nil))
	t.Logf("%d sessions made with the old password, all refused after the change", len(stolen))
}
