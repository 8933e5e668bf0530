package auth

import (
	"context"
	"log/slog"

	"github.com/gqlauth/gqlauth/internal/token"
)

// Logout revokes the session of the access token, and that of the refresh
// token if it is another one. It succeeds when there is nothing to revoke.
func (s *Service) Logout(ctx context.Context, accessToken, refreshToken string) error {
	type target struct{ sid, uid string }
	var targets []target
	if c, err := s.tokens.Verify(token.Access, accessToken); err == nil {
		targets = append(targets, target{c.SessionID, c.Subject})
	}
	if c, err := s.tokens.VerifyAnyRefresh(refreshToken); err == nil {
		if len(targets) == 0 || targets[0].sid != c.SessionID {
			targets = append(targets, target{c.SessionID, c.Subject})
		}
	}
	now := s.now().UTC()
	wctx, cancel := s.detached(ctx)
	defer cancel()
	for _, t := range targets {
		if err := s.revoke(wctx, t.sid, t.uid, ReasonLogout, now); err != nil {
			return err
		}
		s.event(ctx, slog.LevelInfo, "logout", EventLogout, "user_id", t.uid, "session_id", t.sid)
	}
	return nil
}
