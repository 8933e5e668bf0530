package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// ErrPasswordChangedSessionsRemain tells the client that the new password
// is in place but signing out the other sessions failed, so that it can
// retry with logoutAll.
var ErrPasswordChangedSessionsRemain = Errorf(CodeInternal, "Password changed, but signing out the other devices failed; retry with logoutAll")

// Revocation reasons of the sessions API.
const (
	ReasonRevoked        = "revoked_by_user"
	ReasonLogoutAll      = "logout_all"
	ReasonPasswordChange = "password_changed"
)

// Sessions returns the signed-in user's live sessions, newest first, with
// the current one marked.
func (s *Service) Sessions(ctx context.Context, id *Identity) ([]SessionInfo, error) {
	live, err := s.store.LiveSessions(ctx, id.User.ID)
	if err != nil {
		return nil, s.storeErr("listing sessions", err)
	}
	out := make([]SessionInfo, 0, len(live))
	for _, l := range live {
		out = append(out, SessionInfo{
			ID:         l.ID,
			CreatedAt:  l.CreatedAt,
			LastUsedAt: l.LastUsedAt,
			UserAgent:  l.UserAgent,
			IP:         l.IP,
			Current:    l.ID == id.SessionID,
		})
	}
	return out, nil
}

// RevokeSession revokes one of the user's live sessions. It returns false
// (and no error) when sessionID is not one of them, so that it tells nothing
// about other users' sessions.
func (s *Service) RevokeSession(ctx context.Context, id *Identity, sessionID string) (bool, error) {
	sess, err := s.store.SessionByID(ctx, sessionID)
	switch {
	case errors.Is(err, ErrNotFound):
		return false, nil
	case err != nil:
		return false, s.storeErr("finding session", err)
	case sess.UserID != id.User.ID || !sess.ExpiresAt.After(s.now()):
		return false, nil
	}
	wctx, cancel := s.detached(ctx)
	defer cancel()
	revoked, err := s.store.RevokeSession(wctx, sessionID, id.User.ID, ReasonRevoked, s.now().UTC())
	if err != nil {
		return false, s.storeErr("revoking session", err)
	}
	if !revoked {
		return false, nil // revoked before: not one of the live sessions
	}
	s.event(ctx, slog.LevelInfo, "session revoked", "session_revoked", "reason", ReasonRevoked, "user_id", id.User.ID, "session_id", sessionID)
	return true, nil
}

// LogoutAll revokes every live session of the user, the current one first.
func (s *Service) LogoutAll(ctx context.Context, id *Identity) error {
	wctx, cancel := s.detached(ctx)
	defer cancel()
	if err := s.revoke(wctx, id.SessionID, id.User.ID, ReasonLogoutAll, s.now().UTC()); err != nil {
		return err
	}
	n, err := s.revokeAll(wctx, id.User.ID, "", ReasonLogoutAll)
	if err != nil {
		return err
	}
	s.event(ctx, slog.LevelInfo, "all sessions revoked", "logout_all", "user_id", id.User.ID, "sessions", n)
	return nil
}

// revokeAll revokes every live session of the user except keep, wherever
// the sign-ins that made them ended, and returns how many it revoked.
func (s *Service) revokeAll(ctx context.Context, userID, keep, reason string) (int, error) {
	revoked, err := s.store.RevokeUserSessions(ctx, userID, keep, reason, s.now().UTC())
	if err != nil {
		return len(revoked), s.storeErr("revoking sessions", err)
	}
	return len(revoked), nil
}

// ChangePassword checks the current password (counted by the login
// throttle, like a login), sets the new one, and revokes every other session
// of the user.
//
// Errors: CodeBadUserInput naming currentPassword (wrong, or over 72 bytes)
// or newPassword (outside 8–72 bytes); CodeRateLimited while the e-mail is
// throttled or the hasher is busy.
func (s *Service) ChangePassword(ctx context.Context, id *Identity, current, next string) error {
	if len(current) > MaxPasswordBytes || current == "" {
		return InputError("currentPassword", "Current password is incorrect")
	}
	if err := ValidatePassword("newPassword", next); err != nil {
		return err
	}
	u := id.User
	email := NormalizeEmail(u.Email) // the login throttle's key
	attempts, err := s.throttleCheck(ctx, email)
	if err != nil {
		return err
	}
	slot, err := s.hasher.Slot(ctx)
	if err != nil {
		return err
	}
	defer slot.Release()
	if attempts, err = s.countAttempt(ctx, email, attempts); err != nil {
		return err
	}
	ok, err := slot.Check(u.PasswordHash, current)
	if err != nil {
		return err
	}
	if !ok {
		s.event(ctx, slog.LevelInfo, "password change refused", "login_failed", "user_id", u.ID)
		return InputError("currentPassword", "Current password is incorrect")
	}
	if err := s.resetAttempts(ctx, email, attempts); err != nil {
		return err
	}
	hash, err := s.hasher.Hash(ctx, next)
	if err != nil {
		return err
	}
	// The password first, then the sessions: a sign-in with the old password
	// racing this either creates its session before the list below is read
	// (and is revoked with the others), or finds the new hash when it checks
	// again after creating its session (Login), and revokes it itself.
	wctx, cancel := s.detached(ctx)
	defer cancel()
	if err := s.store.SetPassword(wctx, u.ID, hash, s.now().UTC().Truncate(time.Millisecond)); err != nil {
		return s.storeErr("setting password", err)
	}
	n, err := s.revokeAll(wctx, u.ID, id.SessionID, ReasonPasswordChange)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrPasswordChangedSessionsRemain, err)
	}
	s.event(ctx, slog.LevelInfo, "password changed", "password_changed", "user_id", u.ID, "sessions_revoked", n)
	return nil
}
