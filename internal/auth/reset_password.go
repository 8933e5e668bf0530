package auth

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// ErrResetSessionsRemain tells the client that the new password is in place
// but signing out every device failed: signing in and logoutAll finishes it.
var ErrResetSessionsRemain = Errorf(CodeInternal, "Password reset, but signing out the other devices failed; sign in and sign out everywhere")

// ResetPassword spends a reset token: it sets the new password, marks the
// address verified, clears the address's failed logins, voids the user's
// other reset and change-of-address links (they are bound to the password),
// and revokes every session of the user. The password is checked and
// hashed before the token is spent, so a bad password or a busy hasher
// leaves the link usable.
//
// Errors: CodeBadUserInput naming newPassword or token; CodeRateLimited when
// the hasher is busy.
func (s *Service) ResetPassword(ctx context.Context, raw, newPassword string) error {
	if err := ValidatePassword("newPassword", newPassword); err != nil {
		return err
	}
	t, err := s.emailToken(ctx, raw, TokenReset)
	if err != nil {
		return err
	}
	if _, err := s.boundUser(ctx, t); err != nil {
		return err
	}
	hash, err := s.passwords.Hash(ctx, newPassword)
	if err != nil {
		return hashErr(err)
	}
	wctx, cancel := s.detached(ctx)
	defer cancel()
	if err := s.spend(wctx, t); err != nil {
		return err
	}
	now := s.now().UTC().Truncate(time.Millisecond)
	u, err := s.accounts.UpdateUser(wctx, t.UserID, func(u *User) error {
		if err := bound(u, t); err != nil {
			return err
		}
		u.PasswordHash, u.PasswordGen, u.Verified, u.UpdatedAt = hash, u.PasswordGen+1, true, now
		return nil
	})
	if err != nil {
		if ErrorCode(err) == CodeBadUserInput {
			return err
		}
		s.unspendEmailToken(wctx, t)
		return s.storeErr("setting password", err)
	}
	addr := NormalizeEmail(u.Email)
	if attempts, err := s.attempts.LoginAttempts(wctx, addr); err == nil {
		if err := s.resetAttempts(wctx, addr, attempts); err != nil {
			s.log.WarnContext(ctx, "could not clear failed logins after a reset", "err", err.Error())
		}
	}
	n, err := s.revokeAll(wctx, u.ID, "", ReasonPasswordReset)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrResetSessionsRemain, err)
	}
	s.event(ctx, slog.LevelInfo, "password reset", EventPasswordReset, "user_id", u.ID, "sessions_revoked", n)
	return nil
}
