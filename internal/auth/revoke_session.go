package auth

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// RevokeSession revokes one of the user's live sessions. It returns false
// (and no error) when sessionID is not one of them, so that it tells nothing
// about other users' sessions.
func (s *Service) RevokeSession(ctx context.Context, id *Identity, sessionID string) (bool, error) {
	sess, err := s.sessions.SessionByID(ctx, sessionID)
	switch {
	case errors.Is(err, ErrNotFound):
		return false, nil
	case err != nil:
		return false, s.storeErr("finding session", err)
	case sess.UserID != id.User.ID || !sess.ExpiresAt.After(s.now()):
		return false, nil
	}
	wctx, cancel := s.detached(ctx)
	defer cancel()
	revoked, err := s.sessions.RevokeSession(wctx, sessionID, id.User.ID, ReasonRevoked, s.now().UTC())
	if err != nil {
		return false, s.storeErr("revoking session", err)
	}
	if !revoked {
		return false, nil // revoked before: not one of the live sessions
	}
	s.event(ctx, slog.LevelInfo, "session revoked", EventSessionRevoked, "reason", ReasonRevoked, "user_id", id.User.ID, "session_id", sessionID)
	return true, nil
}

// revoke records the session's revocation. The store keeps it for as long
// as any of the session's tokens could verify: until the session's own
// expiry, whatever the configuration says today.
func (s *Service) revoke(ctx context.Context, sid, uid, reason string, now time.Time) error {
	if _, err := s.sessions.RevokeSession(ctx, sid, uid, reason, now); err != nil {
		return s.storeErr("revoking session", err)
	}
	return nil
}
