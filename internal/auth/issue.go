package auth

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/gqlauth/gqlauth/internal/token"
)

// Tokens are the tokens issued at login and refresh.
type Tokens struct {
	IssuedAt         time.Time
	Access           string
	AccessExpiresAt  time.Time
	Refresh          string
	RefreshExpiresAt time.Time

	undo func()
}

// Undo reverts what issuing the tokens changed, for a client that never
// received them (its connection closed before the answer was written): a
// login's session is revoked, and a refresh's new token is withdrawn and
// its spent one made usable again, so that the client's next refresh with
// it is not taken for reuse. It runs under its own bounded context and
// logs a failure.
func (t *Tokens) Undo() {
	if t != nil && t.undo != nil {
		t.undo()
		t.undo = nil
	}
}

// issue signs an access token and makes a refresh token for the session,
// neither outliving the session's absolute lifetime. The refresh token is
// MAC-format (nothing stored), or, in the earlier release's format
// (RefreshTokenFormat "jwt", during a rolling upgrade), a JWT whose hash is
// stored before it is returned, so no token a client receives is unknown.
func (s *Service) issue(ctx context.Context, uid, sid string, sessionExpiresAt, now time.Time) (*Tokens, error) {
	now = now.Truncate(time.Second) // token times are whole seconds
	accessExp := minTime(now.Add(s.cfg.AccessTokenTTL), sessionExpiresAt)
	refreshExp := minTime(now.Add(s.cfg.RefreshTokenTTL), sessionExpiresAt)
	if !refreshExp.After(now) {
		return nil, fmt.Errorf("%w: session reached its maximum lifetime", ErrRefreshTokenInvalid)
	}
	access, err := s.tokens.Sign(token.Access, token.Claims{Subject: uid, SessionID: sid, IssuedAt: now, ExpiresAt: accessExp})
	if err != nil {
		return nil, err
	}
	claims := token.Claims{Subject: uid, SessionID: sid, IssuedAt: now, ExpiresAt: refreshExp, SessionExpiresAt: sessionExpiresAt}
	var refresh string
	if s.cfg.RefreshTokenFormat == token.FormatJWT {
		if refresh, err = s.tokens.Sign(token.Refresh, claims); err != nil {
			return nil, err
		}
		rec := &RefreshToken{Hash: HashToken(refresh), SessionID: sid, UserID: uid, IssuedAt: now, ExpiresAt: refreshExp, SessionExpiresAt: sessionExpiresAt}
		if err := s.refreshTokens.SaveRefreshToken(ctx, rec); err != nil {
			return nil, s.storeErr("saving refresh token", err)
		}
	} else if refresh, err = s.tokens.SignRefresh(claims); err != nil {
		return nil, err
	}
	return &Tokens{IssuedAt: now, Access: access, AccessExpiresAt: accessExp, Refresh: refresh, RefreshExpiresAt: refreshExp}, nil
}

// HashToken returns the form in which a refresh token is stored: SHA-256,
// base64url. The token itself is never stored.
func HashToken(t string) string {
	sum := sha256.Sum256([]byte(t))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
