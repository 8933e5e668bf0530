package auth

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// ErrPasswordChangedSessionsRemain tells the client that the new password
// is in place but signing out the other sessions failed, so that it can
// retry with logoutAll.
var ErrPasswordChangedSessionsRemain = Errorf(CodeInternal, "Password changed, but signing out the other devices failed; retry with logoutAll")

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
	if err := s.checkPassword(ctx, u, current); err != nil {
		return err
	}
	hash, err := s.passwords.Hash(ctx, next)
	if err != nil {
		return hashErr(err)
	}
	// The password first, then the sessions: a sign-in with the old password
	// racing this either creates its session before the list below is read
	// (and is revoked with the others), or finds the new hash when it checks
	// again after creating its session (Login), and revokes it itself.
	wctx, cancel := s.detached(ctx)
	defer cancel()
	if err := s.users.SetPassword(wctx, u.ID, hash, s.now().UTC().Truncate(time.Millisecond)); err != nil {
		return s.storeErr("setting password", err)
	}
	n, err := s.revokeAll(wctx, u.ID, id.SessionID, ReasonPasswordChange)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrPasswordChangedSessionsRemain, err)
	}
	s.event(ctx, slog.LevelInfo, "password changed", EventPasswordChanged, "user_id", u.ID, "sessions_revoked", n)
	return nil
}
