package auth_test

import (
	"context"
	"testing"
	"time"

	"github.com/gqlauth/gqlauth/internal/auth"
	"github.com/gqlauth/gqlauth/internal/authtest"
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
