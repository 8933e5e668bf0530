package mongostore

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/gqlauth/gqlauth/internal/auth"
)

// ImportUsers inserts users with their e-mail claims in bulk, assigning IDs.
// It is for seeding (benchmarks, migrations of many users); registration
// goes through CreateUser.
func (s *Store) ImportUsers(ctx context.Context, users []*auth.User) error {
	userDocs := make([]any, len(users))
	claimDocs := make([]any, len(users))
	for i, u := range users {
		id := bson.NewObjectID()
		u.ID = id.Hex()
		userDocs[i] = userToDoc(u, id)
		claimDocs[i] = emailDoc{Email: u.Email, UserID: id, CreatedAt: u.CreatedAt}
	}
	opts := options.InsertMany().SetOrdered(false)
	if _, err := s.emails.InsertMany(ctx, claimDocs, opts); err != nil {
		return fmt.Errorf("importing e-mail claims: %w", mapErr(err))
	}
	if _, err := s.users.InsertMany(ctx, userDocs, opts); err != nil {
		return fmt.Errorf("importing users: %w", mapErr(err))
	}
	return nil
}

// ImportSessions inserts, for each user, `perUser` sessions numbered 1 to
// perUser (template gives their times and client), and sets the users'
// sign-in counters to perUser.
func (s *Store) ImportSessions(ctx context.Context, userIDs []string, perUser int, template auth.Session) error {
	const batch = 5000
	var docs []any
	flush := func() error {
		if len(docs) == 0 {
			return nil
		}
		_, err := s.sessions.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
		docs = docs[:0]
		return mapErr(err)
	}
	counters := make([]any, 0, len(userIDs))
	for _, id := range userIDs {
		oid, err := bson.ObjectIDFromHex(id)
		if err != nil {
			return fmt.Errorf("importing sessions: bad user id %q", id)
		}
		for n := 1; n <= perUser; n++ {
			docs = append(docs, sessionDoc{
				ID: SessionID(id, int64(n)), UserID: oid, Seq: int64(n),
				CreatedAt: template.CreatedAt, LastUsedAt: template.CreatedAt, ExpiresAt: template.ExpiresAt,
				UserAgent: template.UserAgent, IP: template.IP,
			})
			if len(docs) == batch {
				if err := flush(); err != nil {
					return fmt.Errorf("importing sessions: %w", err)
				}
			}
		}
		low := int64(0)
		counters = append(counters, counterDoc{UserID: id, Seq: int64(perUser), Low: &low})
	}
	if err := flush(); err != nil {
		return fmt.Errorf("importing sessions: %w", err)
	}
	if _, err := s.counters.InsertMany(ctx, counters, options.InsertMany().SetOrdered(false)); err != nil {
		return fmt.Errorf("importing session counters: %w", mapErr(err))
	}
	return nil
}

// Count returns the number of documents in a collection (for tools).
func (s *Store) Count(ctx context.Context, collection string) (int64, error) {
	n, err := s.db.Collection(collection).EstimatedDocumentCount(ctx)
	return n, mapErr(err)
}
