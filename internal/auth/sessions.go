package auth

import "context"

// Sessions returns the signed-in user's live sessions, newest first, with
// the current one marked.
func (s *Service) Sessions(ctx context.Context, id *Identity) ([]SessionInfo, error) {
	live, err := s.sessions.LiveSessions(ctx, id.User.ID)
	if err != nil {
		return nil, s.storeErr("listing sessions", err)
	}
	out := make([]SessionInfo, 0, len(live))
	for _, l := range live {
		out = append(out, SessionInfo{
			ID:         l.ID,
			CreatedAt:  l.CreatedAt,
			LastUsedAt: l.LastUsedAt,
			UserAgent:  l.UserAgent,
			IP:         l.IP,
			Current:    l.ID == id.SessionID,
		})
	}
	return out, nil
}
