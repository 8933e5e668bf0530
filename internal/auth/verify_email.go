package auth

import (
	"context"
	"log/slog"
)

// VerifyEmail spends a verification token and marks its address verified.
// A token is bound to the address it was sent to: after a change of
// address it is void.
//
// Errors: ErrBadEmailToken (CodeBadUserInput on token) for an invalid,
// expired, spent or void token.
func (s *Service) VerifyEmail(ctx context.Context, raw string) error {
	t, err := s.emailToken(ctx, raw, TokenVerify)
	if err != nil {
		return err
	}
	if _, err := s.boundUser(ctx, t); err != nil {
		return err
	}
	wctx, cancel := s.detached(ctx)
	defer cancel()
	if err := s.spend(wctx, t); err != nil {
		return err
	}
	now := s.now().UTC().Truncate(1e6)
	_, err = s.accounts.UpdateUser(wctx, t.UserID, func(u *User) error {
		if err := bound(u, t); err != nil {
			return err
		}
		u.Verified, u.UpdatedAt = true, now
		return nil
	})
	if err != nil {
		if ErrorCode(err) == CodeBadUserInput {
			return err
		}
		s.unspendEmailToken(wctx, t)
		return s.storeErr("verifying user", err)
	}
	s.event(ctx, slog.LevelInfo, "e-mail verified", EventEmailVerified, "user_id", t.UserID)
	return nil
}
