package auth_test

import (
	"context"
	"testing"
	"time"

	"github.com/gqlauth/gqlauth/internal/auth"
	"github.com/gqlauth/gqlauth/internal/authtest"
	"github.com/gqlauth/gqlauth/internal/email"
	"github.com/gqlauth/gqlauth/internal/mongostore"
)

// goneAfter is the real store, with the client going away (the request's
// context cancelled) right after one of its calls returns.
type goneAfter struct {
	auth.Store
	call   string
	cancel context.CancelFunc
}

func (g *goneAfter) SpendRefreshToken(ctx context.Context, t *auth.RefreshToken, at time.Time) (auth.Spend, error) {
	spend, err := g.Store.SpendRefreshToken(ctx, t, at)
	if g.call == "SpendRefreshToken" {
		g.cancel()
	}
	return spend, err
}

func (g *goneAfter) CreateSession(ctx context.Context, s *auth.Session) ([]string, error) {
	revoked, err := g.Store.CreateSession(ctx, s)
	if g.call == "CreateSession" {
		g.cancel()
	}
	return revoked, err
}

func (g *goneAfter) RevokeSession(ctx context.Context, sid, uid, reason string, at time.Time) (bool, error) {
	ok, err := g.Store.RevokeSession(ctx, sid, uid, reason, at)
	if g.call == "RevokeSession" {
		g.cancel()
	}
	return ok, err
}

func (g *goneAfter) SetPassword(ctx context.Context, uid, hash string, at time.Time) error {
	err := g.Store.SetPassword(ctx, uid, hash, at)
	if g.call == "SetPassword" {
		g.cancel()
	}
	return err
}

func (g *goneAfter) UpdateUser(ctx context.Context, uid string, change func(*auth.User) error) (*auth.User, error) {
	u, err := g.Store.UpdateUser(ctx, uid, change)
	if g.call == "UpdateUser" {
		g.cancel()
	}
	return u, err
}

func (g *goneAfter) CreateUser(ctx context.Context, u *auth.User) error {
	err := g.Store.CreateUser(ctx, u)
	if g.call == "CreateUser" {
		g.cancel()
	}
	return err
}

// TestChangesFinishWhenTheClientGoes: a client that goes away once a
// change has begun (its first write done) does not leave it half done:
// logoutAll still revokes every session, changePassword still signs the
// other sessions out, resetPassword still revokes every session, and
// register with verification required still queues the link.
func TestChangesFinishWhenTheClientGoes(t *testing.T) {
	gone := &goneAfter{}
	f := authtest.New(t, authtest.Options{
		Store:  func(s *mongostore.Store) auth.Store { gone.Store = s; return gone },
		Config: func(c *auth.Config) { c.Email.VerificationRequired = true },
	})
	bg := context.Background()
	user := func(addr string) {
		t.Helper()
		if _, err := f.Service.Register(bg, auth.RegisterInput{Name: "G", Email: addr, Password: authtest.Password, PasswordConfirm: authtest.Password}); err != nil {
			t.Fatal(err)
		}
		if err := f.Service.VerifyEmail(bg, tokenOf(t, f, email.KindVerify, addr)); err != nil {
			t.Fatal(err)
		}
	}
	leave := func(call string) context.Context {
		ctx, cancel := context.WithCancel(bg)
		gone.call, gone.cancel = call, cancel
		t.Cleanup(func() { gone.call = "" })
		return ctx
	}

	t.Run("LogoutAll", func(t *testing.T) {
		user("all@example.com")
		me, _ := device(t, f, "all@example.com")
		_, other := device(t, f, "all@example.com")
		_ = f.Service.LogoutAll(leave("RevokeSession"), me)
		gone.call = ""
		signedOut(t, f, other, "another session after logoutAll")
	})
	t.Run("ChangePassword", func(t *testing.T) {
		user("change@example.com")
		me, _ := device(t, f, "change@example.com")
		_, other := device(t, f, "change@example.com")
		_ = f.Service.ChangePassword(leave("SetPassword"), me, authtest.Password, "a new password")
		gone.call = ""
		signedOut(t, f, other, "another session after changePassword")
	})
	t.Run("ResetPassword", func(t *testing.T) {
		user("reset@example.com")
		_, other := device(t, f, "reset@example.com")
		if err := f.Service.RequestPasswordReset(bg, "reset@example.com"); err != nil {
			t.Fatal(err)
		}
		_ = f.Service.ResetPassword(leave("UpdateUser"), tokenOf(t, f, email.KindReset, "reset@example.com"), "a new password")
		gone.call = ""
		signedOut(t, f, other, "a session after resetPassword")
	})
	t.Run("Register", func(t *testing.T) {
		_, _ = f.Service.Register(leave("CreateUser"), auth.RegisterInput{Name: "G", Email: "late@example.com", Password: authtest.Password, PasswordConfirm: authtest.Password})
		gone.call = ""
		tokenOf(t, f, email.KindVerify, "late@example.com") // fails when none was queued
	})
}

// TestRefreshClientGoneAfterSpend: a client that disconnects after its
// refresh token was spent, and before it received the new one, refreshes
// with its old token later, outside the grace window, without being taken
// for a thief (finding 5 of the security review).
func TestRefreshClientGoneAfterSpend(t *testing.T) {
	gone := &goneAfter{}
	f := authtest.New(t, authtest.Options{Store: func(s *mongostore.Store) auth.Store { gone.Store = s; return gone }})
	_, tokens := f.SignedIn(t, "gone@example.com")

	ctx, cancel := context.WithCancel(context.Background())
	gone.call, gone.cancel = "SpendRefreshToken", cancel
	if _, _, err := f.Service.Refresh(ctx, tokens.Refresh); err == nil {
		t.Fatal("the refresh of a client that went away succeeded")
	}
	gone.call = ""
	f.Clock.Advance(time.Minute) // well past the grace window
	if _, _, err := f.Service.Refresh(context.Background(), tokens.Refresh); err != nil {
		t.Fatalf("the old token was refused afterwards: %v", err)
	}
	if f.Events.Has(auth.EventRefreshReuse) {
		t.Fatal("the retry was reported as reuse")
	}
}

// TestRefreshUndeliveredUndo: Undo (the transport calls it when the answer
// could not be written) makes the old token usable again.
func TestRefreshUndeliveredUndo(t *testing.T) {
	f := authtest.New(t, authtest.Options{})
	_, tokens := f.SignedIn(t, "undo@example.com")
	_, fresh, err := f.Service.Refresh(context.Background(), tokens.Refresh)
	if err != nil {
		t.Fatal(err)
	}
	fresh.Undo()
	f.Clock.Advance(time.Minute)
	if _, _, err := f.Service.Refresh(context.Background(), tokens.Refresh); err != nil {
		t.Fatalf("the old token was refused after the undo: %v", err)
	}
	if f.Events.Has(auth.EventRefreshReuse) {
		t.Fatal("reported as reuse")
	}
}

// TestLoginClientGoneAfterSession: a sign-in whose client went away once
// its session existed leaves no live session behind.
func TestLoginClientGoneAfterSession(t *testing.T) {
	gone := &goneAfter{}
	f := authtest.New(t, authtest.Options{Store: func(s *mongostore.Store) auth.Store { gone.Store = s; return gone }})
	u, _ := f.SignedIn(t, "gone-login@example.com")

	ctx, cancel := context.WithCancel(context.Background())
	gone.call, gone.cancel = "CreateSession", cancel
	if _, _, err := f.Service.Login(ctx, "gone-login@example.com", authtest.Password, auth.Client{}); err == nil {
		t.Fatal("the sign-in of a client that went away succeeded")
	}
	live, err := f.Store.LiveSessions(context.Background(), u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(live) != 1 {
		t.Fatalf("%d live sessions, want only the first sign-in's", len(live))
	}
}

// TestRevocationKeptUntilSessionExpiry: a session made under a long
// SESSION_MAX_LIFETIME and revoked after the setting was lowered stays
// revoked for its whole life, however the sweep runs (finding 6 of the
// security review).
func TestRevocationKeptUntilSessionExpiry(t *testing.T) {
	long := authtest.New(t, authtest.Options{}) // SESSION_MAX_LIFETIME=720h
	u, tokens := long.SignedIn(t, "lowered@example.com")
	live, err := long.Store.LiveSessions(context.Background(), u.ID)
	if err != nil || len(live) != 1 {
		t.Fatalf("live sessions %v, %v", live, err)
	}
	// Restarted on the same data with SESSION_MAX_LIFETIME=1h.
	short := authtest.New(t, authtest.Options{On: long, Config: func(c *auth.Config) { c.SessionMaxLifetime = time.Hour }})
	if err := short.Service.Logout(context.Background(), tokens.Access, ""); err != nil {
		t.Fatal(err)
	}
	short.Clock.Advance(3 * time.Hour)
	if _, err := short.Store.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	revoked, err := short.Store.SessionRevoked(context.Background(), live[0].ID)
	if err != nil || !revoked {
		t.Fatalf("the revocation of a session that lives until %v was swept after 3 h (%v)", live[0].ExpiresAt, err)
	}
}
