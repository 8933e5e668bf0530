package mongostore

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// ScanLiveSessions returns the ids of the user's live sessions by reading
// the whole sessions collection: an independent check of LiveSessions.
func ScanLiveSessions(ctx context.Context, s *Store, userID string) ([]string, error) {
	uid, err := bson.ObjectIDFromHex(userID)
	if err != nil {
		return nil, err
	}
	cur, err := s.sessions.Find(ctx, bson.D{{Key: "user_id", Value: uid}})
	if err != nil {
		return nil, err
	}
	var docs []sessionDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, err
	}
	var ids []string
	for _, d := range docs {
		if !d.ExpiresAt.After(time.Now()) {
			continue
		}
		revoked, err := s.SessionRevoked(ctx, d.ID)
		if err != nil {
			return nil, err
		}
		if !revoked {
			ids = append(ids, d.ID)
		}
	}
	return ids, nil
}
