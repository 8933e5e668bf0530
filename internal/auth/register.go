package auth

import (
	"context"
	"log/slog"
	"time"
)

// Register validates the input and creates a user with role USER, verified
// (there is no e-mail step yet). It does not sign in.
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
		Verified:     true,
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
	return u, nil
}
