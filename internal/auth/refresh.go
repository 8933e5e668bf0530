package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/gqlauth/gqlauth/internal/token"
)

// Refresh spends a refresh token and issues a new pair for the same session.
// On its usual path it reads the session's revocation and the user (at
// once, by _id), writes one record (the spend, which a unique insert
// decides) and signs one token (the access token): a MAC-format refresh
// token carries what the check needs, and the session's last-used time is
// written behind (at most once a minute).
//
// A token is spent by the first caller. A later caller inside the grace
// window (concurrent tabs) gets its own new pair; one outside it has
// presented a stolen or replayed token, and the whole session is revoked.
//
// Errors: CodeUnauthenticated for a missing, invalid, expired, unknown or
// replayed token, a revoked session or a deleted user; CodeForbidden for an
// unverified account.
func (s *Service) Refresh(ctx context.Context, refreshToken string) (*User, *Tokens, error) {
	if refreshToken == "" {
		return nil, nil, ErrMissingRefreshToken
	}
	rec, claims, err := s.presented(ctx, refreshToken)
	if err != nil {
		return nil, nil, err
	}
	if !s.now().Before(rec.ExpiresAt) {
		// Verification tolerates clock skew; the token's expiry does not.
		return nil, nil, fmt.Errorf("%w: token expired", ErrRefreshTokenInvalid)
	}
	u, err := s.liveUser(ctx, claims)
	if err != nil {
		return nil, nil, err
	}

	// From the spend on, the refresh writes under its own context: a client
	// that goes away must not leave its token spent and unreplaced.
	wctx, cancel := s.detached(ctx)
	defer cancel()
	now := s.now().UTC()
	spend, err := s.refreshTokens.SpendRefreshToken(wctx, rec, now)
	if err != nil {
		return nil, nil, s.storeErr("spending refresh token", err)
	}
	first := spend.First
	if spend.Withdrawn {
		// Issued in an answer that was never delivered, and withdrawn: its
		// predecessor was made usable again instead. Whoever holds it
		// received an answer the server believes lost; refuse it without
		// taking it for theft.
		s.log.InfoContext(ctx, "withdrawn refresh token presented", "user_id", rec.UserID, "session_id", rec.SessionID)
		return nil, nil, fmt.Errorf("%w: withdrawn token presented", ErrRefreshTokenInvalid)
	}
	if !first && now.Sub(spend.FirstSpentAt) > s.cfg.RefreshReuseGrace {
		if err := s.revoke(wctx, rec.SessionID, rec.UserID, ReasonReuse, now); err != nil {
			return nil, nil, err
		}
		s.event(ctx, slog.LevelWarn, "refresh token reuse detected; session revoked", EventRefreshReuse, "user_id", rec.UserID, "session_id", rec.SessionID, "first_spent_at", spend.FirstSpentAt)
		return nil, nil, fmt.Errorf("%w: spent token presented again", ErrRefreshTokenInvalid)
	}
	tokens, err := s.issue(wctx, u.ID, rec.SessionID, rec.SessionExpiresAt, now)
	if err != nil {
		if first {
			s.unspend(context.WithoutCancel(ctx), rec.Hash)
		}
		return nil, nil, err
	}
	if terr := s.sessions.TouchSession(wctx, rec.SessionID, now); terr != nil {
		s.log.WarnContext(ctx, "session last-used time not updated", "err", terr.Error())
	}
	if first {
		// The client keeps its old token until it receives the new one.
		// When it cannot (its answer is not delivered), the new token is
		// withdrawn and the old one made usable again, so that its retry
		// after the grace window is not taken for reuse. The withdrawal
		// comes first and is decided by a unique insert against the new
		// token's spend: if the answer reached the client after all (it
		// closed only its half of the connection), and it spent the new
		// token, the old one stays spent, so no client ever holds two live
		// tokens of one session.
		issued := &RefreshToken{Hash: HashToken(tokens.Refresh), SessionID: rec.SessionID, UserID: rec.UserID, ExpiresAt: tokens.RefreshExpiresAt}
		undoCtx := context.WithoutCancel(ctx)
		tokens.undo = func() {
			ctx, cancel := s.detached(undoCtx)
			defer cancel()
			withdrawn, err := s.refreshTokens.WithdrawRefreshToken(ctx, issued, s.now().UTC())
			if err != nil {
				s.log.WarnContext(ctx, "could not withdraw a refresh token whose answer was not delivered", "err", err.Error())
				return
			}
			if withdrawn {
				s.unspend(undoCtx, rec.Hash)
			}
		}
	}
	if ctx.Err() != nil {
		tokens.Undo() // the client is gone: it keeps its old token
		return nil, nil, fmt.Errorf("refresh: %w", ctx.Err())
	}
	s.event(ctx, slog.LevelInfo, "session refreshed", EventRefresh, "user_id", u.ID, "session_id", rec.SessionID, "grace", !first)
	return u, tokens, nil
}

// presented checks a presented refresh token and returns its record (what
// the spend needs) and claims. A MAC-format token carries them; a JWT of an
// earlier release has its record stored, which is read.
func (s *Service) presented(ctx context.Context, refreshToken string) (*RefreshToken, token.Claims, error) {
	hash := HashToken(refreshToken)
	if token.IsMACRefresh(refreshToken) {
		c, err := s.tokens.VerifyRefresh(refreshToken)
		if err != nil {
			return nil, c, fmt.Errorf("%w: %w", ErrRefreshTokenInvalid, err)
		}
		return &RefreshToken{Hash: hash, SessionID: c.SessionID, UserID: c.Subject, IssuedAt: c.IssuedAt, ExpiresAt: c.ExpiresAt, SessionExpiresAt: c.SessionExpiresAt}, c, nil
	}
	c, err := s.tokens.Verify(token.Refresh, refreshToken)
	if err != nil {
		return nil, c, fmt.Errorf("%w: %w", ErrRefreshTokenInvalid, err)
	}
	rec, err := s.refreshTokens.RefreshTokenByHash(ctx, hash)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, c, fmt.Errorf("%w: token not issued by this server", ErrRefreshTokenInvalid)
	case err != nil:
		return nil, c, s.storeErr("finding refresh token", err)
	case rec.SessionID != c.SessionID || rec.UserID != c.Subject:
		return nil, c, fmt.Errorf("%w: token does not match its record", ErrRefreshTokenInvalid)
	}
	return rec, c, nil
}

// unspend makes a spent refresh token usable again (its replacement never
// reached the client), under its own bounded context.
func (s *Service) unspend(ctx context.Context, hash string) {
	ctx, cancel := s.detached(ctx)
	defer cancel()
	if err := s.refreshTokens.UnspendRefreshToken(ctx, hash); err != nil {
		s.log.WarnContext(ctx, "could not un-spend a refresh token whose replacement was not delivered", "err", err.Error())
	}
}
