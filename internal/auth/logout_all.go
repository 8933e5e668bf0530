package auth

import (
	"context"
	"log/slog"
)

// LogoutAll revokes every live session of the user, the current one first.
func (s *Service) LogoutAll(ctx context.Context, id *Identity) error {
	wctx, cancel := s.detached(ctx)
	defer cancel()
	if err := s.revoke(wctx, id.SessionID, id.User.ID, ReasonLogoutAll, s.now().UTC()); err != nil {
		return err
	}
	n, err := s.revokeAll(wctx, id.User.ID, "", ReasonLogoutAll)
	if err != nil {
		return err
	}
	s.event(ctx, slog.LevelInfo, "all sessions revoked", EventLogoutAll, "user_id", id.User.ID, "sessions", n)
	return nil
}

// revokeAll revokes every live session of the user except keep, wherever
// the sign-ins that made them ended, and returns how many it revoked.
func (s *Service) revokeAll(ctx context.Context, userID, keep, reason string) (int, error) {
	revoked, err := s.sessions.RevokeUserSessions(ctx, userID, keep, reason, s.now().UTC())
	if err != nil {
		return len(revoked), s.storeErr("revoking sessions", err)
	}
	return len(revoked), nil
}
