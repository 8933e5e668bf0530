package auth

import (
	"context"
	"log/slog"
	"time"

	"github.com/gqlauth/gqlauth/internal/email"
)

// Register validates the input and creates a user with role USER. It does
// not sign in. The user is verified, unless verification is required: it is
// then created unverified and its verification e-mail is queued (which
// counts against the address's limit; a failure to queue is logged, and
// sendVerificationEmail recovers).
//
// Errors: CodeBadUserInput (naming the field), CodeConflict when the e-mail
// is registered, also under concurrent registration.
func (s *Service) Register(ctx context.Context, in RegisterInput) (*User, error) {
	if err := in.Validate(); err != nil {
		return nil, err
	}
	hash, err := s.passwords.Hash(ctx, in.Password)
	if err != nil {
		return nil, hashErr(err)
	}
	now := s.now().UTC().Truncate(time.Millisecond) // what the database keeps
	u := &User{
		Name:         in.Name,
		Email:        in.Email,
		Photo:        in.Photo,
		Role:         RoleUser,
		Verified:     !s.cfg.Email.VerificationRequired,
		PasswordHash: hash,
		CreatedAt:    now,
		UpdatedAt:    now,
	}
	wctx, cancel := s.detached(ctx)
	defer cancel()
	if err := s.users.CreateUser(wctx, u); err != nil {
		if ErrorCode(err) == CodeConflict {
			return nil, err
		}
		return nil, s.storeErr("creating user", err)
	}
	s.event(ctx, slog.LevelInfo, "user registered", EventRegister, "user_id", u.ID)
	if !u.Verified {
		if err := s.takeEmailSlot(wctx, addressLimit(TokenVerify, u.Email), true); err != nil {
			s.log.WarnContext(ctx, "verification e-mail not counted", "err", err.Error())
		}
		if err := s.sendLink(wctx, email.KindVerify, TokenVerify, u, u.Email, "", s.cfg.Email.VerifyTTL); err != nil {
			s.log.WarnContext(ctx, "verification e-mail not queued", "user_id", u.ID, "err", err.Error())
		}
	}
	return u, nil
}
