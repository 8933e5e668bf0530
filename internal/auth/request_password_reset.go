package auth

import (
	"context"
	"errors"
	"log/slog"

	"github.com/gqlauth/gqlauth/internal/email"
)

// RequestPasswordReset sends a password-reset e-mail when the address is
// registered (verified or not: the owner of an address can always take the
// account over). Like SendVerificationEmail, its answer and store work are
// the same for any well-formed address.
//
// Errors: CodeBadUserInput naming email; CodeRateLimited.
func (s *Service) RequestPasswordReset(ctx context.Context, addr string) error {
	addr = NormalizeEmail(addr)
	if err := ValidateEmail(addr); err != nil {
		return err
	}
	if err := s.takeEmailSlot(ctx, addressLimit(TokenReset, addr), false); err != nil {
		return err
	}
	s.afterAnswer(ctx, "sending a password-reset e-mail", func(ctx context.Context) error {
		u, err := s.users.UserByEmail(ctx, addr)
		s.event(ctx, slog.LevelInfo, "password reset requested", EventPasswordResetRequested, "known_email", err == nil)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return s.sendLink(ctx, email.KindReset, TokenReset, u, addr, "", s.cfg.Email.ResetTTL)
	})
	return nil
}
