package auth_test

import (
	"context"
	"testing"

	"github.com/gqlauth/gqlauth/internal/auth"
	"github.com/gqlauth/gqlauth/internal/authtest"
)

// device signs the user in once more and returns that session's identity
// and tokens.
func device(t *testing.T, f *authtest.Env, email string) (*auth.Identity, *auth.Tokens) {
	t.Helper()
	_, tokens, err := f.Service.Login(context.Background(), email, authtest.Password, auth.Client{IP: "192.0.2.1", UserAgent: "test"})
	if err != nil {
		t.Fatal(err)
	}
	id, err := f.Service.Authenticate(context.Background(), tokens.Access)
	if err != nil {
		t.Fatal(err)
	}
	return id, tokens
}

// signedOut fails unless both tokens of the session are refused.
func signedOut(t *testing.T, f *authtest.Env, tokens *auth.Tokens, what string) {
	t.Helper()
	if _, err := f.Service.Authenticate(context.Background(), tokens.Access); auth.ErrorCode(err) != auth.CodeUnauthenticated {
		t.Fatalf("%s: its access token: %v", what, err)
	}
	if _, _, err := f.Service.Refresh(context.Background(), tokens.Refresh); auth.ErrorCode(err) != auth.CodeUnauthenticated {
		t.Fatalf("%s: its refresh token: %v", what, err)
	}
}

// TestSessionsUseCases: sessions lists the user's live sessions and marks
// the caller's; revokeSession ends one of them and tells nothing of other
// users' sessions; logoutAll ends every one.
func TestSessionsUseCases(t *testing.T) {
	f := authtest.New(t, authtest.Options{})
	ctx := context.Background()
	_, first := f.SignedIn(t, "owner@example.com")
	me, mine := device(t, f, "owner@example.com")
	other, otherTokens := device(t, f, "owner@example.com")
	f.SignedIn(t, "stranger@example.com")
	stranger, _ := device(t, f, "stranger@example.com")

	list, err := f.Service.Sessions(ctx, me)
	if err != nil || len(list) != 3 {
		t.Fatalf("sessions = %d, %v; want 3", len(list), err)
	}
	current := 0
	for _, s := range list {
		if s.Current {
			current++
			if s.ID != me.SessionID {
				t.Fatalf("the current session is %s, want %s", s.ID, me.SessionID)
			}
		}
	}
	if current != 1 {
		t.Fatalf("%d sessions marked current", current)
	}

	if ok, err := f.Service.RevokeSession(ctx, stranger, other.SessionID); ok || err != nil {
		t.Fatalf("another user's session: %v, %v; want false and no error", ok, err)
	}
	if ok, err := f.Service.RevokeSession(ctx, me, "not-a-session"); ok || err != nil {
		t.Fatalf("an unknown session: %v, %v", ok, err)
	}
	if ok, err := f.Service.RevokeSession(ctx, me, other.SessionID); !ok || err != nil {
		t.Fatalf("revoking the user's other session: %v, %v", ok, err)
	}
	signedOut(t, f, otherTokens, "the revoked session")
	if ok, _ := f.Service.RevokeSession(ctx, me, other.SessionID); ok {
		t.Fatal("a session revoked twice")
	}
	if !f.Events.Has(auth.EventSessionRevoked) {
		t.Fatal("no session_revoked event")
	}
	if list, _ := f.Service.Sessions(ctx, me); len(list) != 2 {
		t.Fatalf("%d sessions listed after a revocation, want 2", len(list))
	}

	if err := f.Service.LogoutAll(ctx, me); err != nil {
		t.Fatal(err)
	}
	signedOut(t, f, mine, "the caller's session after logoutAll")
	signedOut(t, f, first, "the first session after logoutAll")
	if list, err := f.Service.Sessions(ctx, stranger); err != nil || len(list) != 2 {
		t.Fatalf("the other user's sessions after logoutAll: %d, %v; want 2", len(list), err)
	}
}

// TestChangePasswordUseCase: the current password is checked (counted by
// the login throttle), the new one validated; on success the caller's
// session stays, every other one ends, and only the new password signs in.
func TestChangePasswordUseCase(t *testing.T) {
	f := authtest.New(t, authtest.Options{})
	ctx := context.Background()
	f.SignedIn(t, "changer@example.com")
	me, mine := device(t, f, "changer@example.com")
	_, others := device(t, f, "changer@example.com")

	wantCode(t, f.Service.ChangePassword(ctx, me, "wrong password", "a new password"), auth.CodeBadUserInput, "currentPassword")
	wantCode(t, f.Service.ChangePassword(ctx, me, authtest.Password, "short"), auth.CodeBadUserInput, "newPassword")
	wantCode(t, f.Service.ChangePassword(ctx, me, authtest.Password, string(make([]byte, 73))), auth.CodeBadUserInput, "newPassword")
	if err := f.Service.ChangePassword(ctx, me, authtest.Password, "a new password"); err != nil {
		t.Fatal(err)
	}
	signedOut(t, f, others, "another session")
	if _, err := f.Service.Authenticate(ctx, mine.Access); err != nil {
		t.Fatalf("the caller's own session: %v", err)
	}
	if _, _, err := f.Service.Login(ctx, "changer@example.com", authtest.Password, auth.Client{}); auth.ErrorCode(err) != auth.CodeUnauthenticated {
		t.Fatalf("the old password: %v", err)
	}
	if _, _, err := f.Service.Login(ctx, "changer@example.com", "a new password", auth.Client{}); err != nil {
		t.Fatalf("the new password: %v", err)
	}
	if !f.Events.Has(auth.EventPasswordChanged) {
		t.Fatal("no password_changed event")
	}
}
