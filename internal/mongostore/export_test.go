package mongostore

import (
	"context"
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/gqlauth/gqlauth/internal/auth"
	"github.com/gqlauth/gqlauth/internal/email"
)

// SkipSessionNumber leaves what a sign-in that took its number and then
// stopped (a crash, a timeout) leaves: the counter moved, nothing else.
func SkipSessionNumber(ctx context.Context, s *Store, userID string) error {
	_, err := s.nextSeq(ctx, userID)
	return err
}

// CreateSessionWithoutCap leaves what a sign-in whose insert succeeded and
// whose cap failed leaves: the session with the next number, the oldest
// session not revoked and the floor not moved.
func CreateSessionWithoutCap(ctx context.Context, s *Store, sess *auth.Session) error {
	uid, err := bson.ObjectIDFromHex(sess.UserID)
	if err != nil {
		return err
	}
	c, err := s.nextSeq(ctx, sess.UserID)
	if err != nil {
		return err
	}
	_, err = s.insertSession(ctx, sess, uid, c.Seq)
	return err
}

// InsertSessionFrom inserts the session as a sign-in that took number n
// (and was slow) does.
func InsertSessionFrom(ctx context.Context, s *Store, sess *auth.Session, n int64) error {
	uid, err := bson.ObjectIDFromHex(sess.UserID)
	if err != nil {
		return err
	}
	_, err = s.insertSession(ctx, sess, uid, n)
	return err
}

// SetCounter sets the user's counter hint, as lost updates can, and
// removes its floor when legacy (a counter of an earlier release).
func SetCounter(ctx context.Context, s *Store, userID string, seq int64, legacy bool) error {
	update := bson.D{{Key: "$set", Value: bson.D{{Key: "seq", Value: seq}}}}
	if legacy {
		update = append(update, bson.E{Key: "$unset", Value: bson.D{{Key: "low", Value: ""}}})
	}
	_, err := s.counters.UpdateOne(ctx, byID(userID), update)
	return err
}

// DeleteSession deletes a session document, as the sweep does once it (or
// a placeholder) expired.
func DeleteSession(ctx context.Context, s *Store, id string) error {
	_, err := s.sessions.DeleteOne(ctx, byID(id))
	return err
}

// MigrateFloors runs the migration of counters from an earlier release.
func MigrateFloors(ctx context.Context, s *Store) (int, error) { return s.migrateFloors(ctx) }

// DB returns the store's database, for the tests of this package (which
// know its schema).
func DB(s *Store) *mongo.Database { return s.db }

// MigrationEmailClaims names the record of the e-mail claims' adoption.
const MigrationEmailClaims = migrationEmailClaims

// PlantOutboxDocument inserts a document into the outbox at the number k
// of the bucket of at, whatever its shape (what a hand edit or another
// version could leave).
func PlantOutboxDocument(ctx context.Context, s *Store, at time.Time, k int, fields bson.D) error {
	doc := append(bson.D{{Key: "_id", Value: entryID(bucketOf(at), k)}}, fields...)
	_, err := s.outbox.InsertOne(ctx, doc)
	return err
}

// PlantLapsedClaims inserts the claims of generations up to n of the
// entry's attempt that do not exist yet, with leases that ran out before at
// (what holders that crashed mid-send leave).
func PlantLapsedClaims(ctx context.Context, s *Store, e email.Entry, n int, at time.Time) error {
	old := at.Add(-email.Lease - time.Second).UTC()
	for gen := 1; gen <= n; gen++ {
		_, err := s.outboxClaims.InsertOne(ctx, claimDoc{ID: attemptKey(e) + "." + strconv.Itoa(gen), At: old, ExpiresAt: at.Add(time.Hour)})
		if err != nil && !isDuplicate(err) {
			return err
		}
	}
	return nil
}
