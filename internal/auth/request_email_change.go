package auth

import (
	"context"
	"errors"
	"log/slog"

	"github.com/gqlauth/gqlauth/internal/email"
)

// RequestEmailChange checks the current password (counted by the login
// throttle, like a login), then sends a confirmation link to the new
// address and, at once, a notice to the current one. A newer request voids
// the older link. It is limited per new address and per user.
//
// Errors: CodeBadUserInput naming currentPassword (wrong) or newEmail
// (malformed, or the current address); CodeConflict when the new address
// is registered; CodeRateLimited.
func (s *Service) RequestEmailChange(ctx context.Context, id *Identity, newEmail, current string) error {
	newEmail = NormalizeEmail(newEmail)
	if err := ValidateEmail(newEmail); err != nil {
		msg := "Please provide a valid email address"
		var e *Error
		if errors.As(err, &e) {
			msg = e.Message
		}
		return InputError("newEmail", msg)
	}
	u := id.User
	if newEmail == NormalizeEmail(u.Email) {
		return InputError("newEmail", "That is already your e-mail address")
	}
	if err := s.checkPassword(ctx, u, current); err != nil {
		return err
	}
	switch _, err := s.users.UserByEmail(ctx, newEmail); {
	case err == nil:
		return ErrEmailTaken
	case !errors.Is(err, ErrNotFound):
		return s.storeErr("finding user", err)
	}
	if err := s.takeEmailSlot(ctx, addressLimit(TokenChange, newEmail), false); err != nil {
		return err
	}
	if err := s.takeEmailSlot(ctx, emailLimit{kind: "change-by", who: u.ID, perHour: ChangesPerUserPerHour}, false); err != nil {
		return err
	}
	wctx, cancel := s.detached(ctx)
	defer cancel()
	if err := s.sendLink(wctx, email.KindChangeConfirm, TokenChange, u, newEmail, newEmail, s.cfg.Email.ResetTTL); err != nil {
		return err
	}
	s.queue(wctx, email.Message{Kind: email.KindChangeNotice, To: NormalizeEmail(u.Email), Name: u.Name,
		Email: NormalizeEmail(u.Email), NewEmail: newEmail})
	s.event(ctx, slog.LevelInfo, "e-mail change requested", EventEmailChangeRequested, "user_id", u.ID)
	return nil
}
