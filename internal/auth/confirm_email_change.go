package auth

import (
	"context"
	"log/slog"
	"time"
)

// ConfirmEmailChange spends a change-of-address token: it claims the new
// address (the unique claim decides against anyone registering it; CONFLICT
// then, and the link stays usable), replaces the user's address, marks it
// verified, and releases the old one. Links sent to the old address are
// void from then on (they are bound to it).
//
// A crash between the steps leaves the user with one of the two addresses:
// a claim of the new address whose user has the old one, or of the old one
// whose user has the new one, is taken over by the next registration of
// that address after a minute.
//
// Errors: ErrBadEmailToken; CodeConflict when the new address was
// registered meanwhile.
func (s *Service) ConfirmEmailChange(ctx context.Context, raw string) error {
	t, err := s.emailToken(ctx, raw, TokenChange)
	if err != nil {
		return err
	}
	latest, err := s.emailTokens.LatestEmailChange(ctx, t.UserID)
	if err != nil {
		return s.storeErr("reading e-mail change", err)
	}
	if latest != t.Hash {
		return ErrBadEmailToken // a newer request voided it
	}
	if _, err := s.boundUser(ctx, t); err != nil {
		return err
	}
	wctx, cancel := s.detached(ctx)
	defer cancel()
	if err := s.accounts.ClaimEmail(wctx, t.UserID, t.NewEmail); err != nil {
		if ErrorCode(err) == CodeConflict {
			return err
		}
		return s.storeErr("claiming e-mail", err)
	}
	if err := s.spend(wctx, t); err != nil {
		return err
	}
	now := s.now().UTC().Truncate(time.Millisecond)
	_, err = s.accounts.UpdateUser(wctx, t.UserID, func(u *User) error {
		if err := bound(u, t); err != nil {
			return err
		}
		u.Email, u.Verified, u.UpdatedAt = t.NewEmail, true, now
		return nil
	})
	if err != nil {
		if code := ErrorCode(err); code == CodeBadUserInput {
			return err
		} else if code != CodeConflict {
			err = s.storeErr("changing e-mail", err)
		}
		s.unspendEmailToken(wctx, t)
		return err
	}
	if err := s.accounts.ReleaseEmail(wctx, t.UserID, t.Email); err != nil {
		// The claim points at a user with another address: the next
		// registration of it takes it over.
		s.log.WarnContext(ctx, "could not release the old address", "user_id", t.UserID, "err", err.Error())
	}
	s.event(ctx, slog.LevelInfo, "e-mail changed", EventEmailChanged, "user_id", t.UserID)
	return nil
}
