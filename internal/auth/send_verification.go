package auth

import (
	"context"
	"errors"

	"github.com/gqlauth/gqlauth/internal/email"
)

// SendVerificationEmail sends a verification e-mail when the address is
// registered and not verified. It answers the same, after the same store
// work (the limit record), for any well-formed address: the user's look-up
// and the e-mail happen after the answer.
//
// Errors: CodeBadUserInput naming email; CodeRateLimited.
func (s *Service) SendVerificationEmail(ctx context.Context, addr string) error {
	addr = NormalizeEmail(addr)
	if err := ValidateEmail(addr); err != nil {
		return err
	}
	if err := s.takeEmailSlot(ctx, addressLimit(TokenVerify, addr), false); err != nil {
		return err
	}
	s.afterAnswer(ctx, "sending a verification e-mail", func(ctx context.Context) error {
		u, err := s.users.UserByEmail(ctx, addr)
		if errors.Is(err, ErrNotFound) || (err == nil && u.Verified) {
			return nil
		}
		if err != nil {
			return err
		}
		return s.sendLink(ctx, email.KindVerify, TokenVerify, u, addr, "", s.cfg.Email.VerifyTTL)
	})
	return nil
}
