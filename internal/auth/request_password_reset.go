package auth

import (
	"context"
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
	s.event(ctx, slog.LevelInfo, "password reset requested", EventPasswordResetRequested)
	// The user's look-up and the link are the delivery worker's
	// (PrepareEmail): the same write, for any address.
	s.queue(ctx, email.Message{Kind: email.KindReset, To: addr, Deferred: true})
	return nil
}
