package auth

import (
	"context"
	"errors"
	"fmt"

	"github.com/gqlauth/gqlauth/internal/token"
)

// Authenticate checks an access token and returns its user and session.
//
// Errors: CodeUnauthenticated for no token, an invalid or expired one, a
// revoked session or a deleted user; CodeForbidden for an unverified account.
func (s *Service) Authenticate(ctx context.Context, accessToken string) (*Identity, error) {
	if accessToken == "" {
		return nil, ErrNotLoggedIn
	}
	claims, err := s.tokens.Verify(token.Access, accessToken)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	u, err := s.liveUser(ctx, claims)
	if err != nil {
		return nil, err
	}
	return &Identity{User: u, SessionID: claims.SessionID}, nil
}

// liveUser checks that the claims' session is not revoked and returns its
// user, which must exist and be verified.
func (s *Service) liveUser(ctx context.Context, c token.Claims) (*User, error) {
	// The two look-ups are independent: run them at once (this is the path
	// of every authenticated request).
	var (
		u       *User
		userErr error
		done    = make(chan struct{})
	)
	go func() {
		defer close(done)
		defer func() { // not gqlgen's goroutine: its recovery does not reach here
			if p := recover(); p != nil {
				userErr = fmt.Errorf("finding user: panic: %v", p)
			}
		}()
		u, userErr = s.users.UserByID(ctx, c.Subject)
	}()
	revoked, err := s.sessions.SessionRevoked(ctx, c.SessionID)
	<-done
	if err != nil {
		return nil, s.storeErr("checking session", err)
	}
	if revoked {
		return nil, fmt.Errorf("%w: session revoked", ErrInvalidToken)
	}
	err = userErr
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, ErrUserGone
	case err != nil:
		return nil, s.storeErr("finding user", err)
	case !u.Verified:
		return nil, ErrNotVerified
	}
	return u, nil
}
