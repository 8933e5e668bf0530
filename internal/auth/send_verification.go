package auth

import (
	"context"

	"github.com/gqlauth/gqlauth/internal/email"
)

// SendVerificationEmail sends a verification e-mail when the address is
// registered and not verified. It answers the same, after the same store
// writes (the limit record and the queued request), for any well-formed
// address: the delivery worker looks the user up (PrepareEmail).
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
	// The user's look-up and the link are the delivery worker's
	// (PrepareEmail): the same write, for any address.
	s.queue(ctx, email.Message{Kind: email.KindVerify, To: addr, Deferred: true})
	return nil
}
