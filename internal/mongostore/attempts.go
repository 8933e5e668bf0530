package mongostore

import (
	"context"
	"errors"
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/gqlauth/gqlauth/internal/auth"
)

// attemptRetention is how long attempt records are kept: longer than the
// throttle's window plus its longest delay, after which they decide nothing.
const attemptRetention = time.Hour

// attemptDoc is one record of an e-mail's login attempts. Records are
// numbered per e-mail; the _id index lets one insert take each number, so
// concurrent attempts are all counted, in an order every instance agrees on.
type attemptDoc struct {
	ID        string      `bson:"_id"` // "<e-mail> <seq>" (e-mails have no spaces)
	Email     string      `bson:"email"`
	Seq       int64       `bson:"seq"`
	Failures  []time.Time `bson:"failures"`
	Level     int         `bson:"level"`
	At        time.Time   `bson:"at"`
	ExpiresAt time.Time   `bson:"expires_at"`
}

// attemptHeadDoc is a copy of an e-mail's latest record, so that reading the
// state takes one look-up. It is a hint: concurrent writers may leave an
// older copy, and LoginAttempts then finds the newer records after it.
type attemptHeadDoc struct {
	Email     string      `bson:"_id"`
	Seq       int64       `bson:"seq"`
	Failures  []time.Time `bson:"failures"`
	Level     int         `bson:"level"`
	ExpiresAt time.Time   `bson:"expires_at"`
}

func attemptID(email string, seq int64) string {
	return email + " " + strconv.FormatInt(seq, 10)
}

func (d *attemptDoc) toAuth() auth.LoginAttempts {
	return auth.LoginAttempts{Seq: d.Seq, Failures: d.Failures, Level: d.Level}
}

// LoginAttempts returns the e-mail's latest attempt record: the head copy,
// then any records written after it.
func (s *Store) LoginAttempts(ctx context.Context, email string) (auth.LoginAttempts, error) {
	var cur auth.LoginAttempts
	var head attemptHeadDoc
	switch err := decode(s.attemptHeads.FindOne(ctx, byID(email)), &head); {
	case err == nil:
		cur = auth.LoginAttempts{Seq: head.Seq, Failures: head.Failures, Level: head.Level}
	case !errors.Is(err, mongo.ErrNoDocuments):
		return cur, mapErr(err)
	}
	for range maxSeqProbes {
		var d attemptDoc
		err := decode(s.attempts.FindOne(ctx, byID(attemptID(email, cur.Seq+1))), &d)
		if errors.Is(err, mongo.ErrNoDocuments) {
			return cur, nil
		}
		if err != nil {
			return cur, mapErr(err)
		}
		cur = d.toAuth()
	}
	return cur, errors.New("login attempts: too many records after the head")
}

// AppendLoginAttempts inserts next as record next.Seq. When that number is
// taken, it returns the record that took it.
func (s *Store) AppendLoginAttempts(ctx context.Context, email string, next auth.LoginAttempts, at time.Time) (auth.LoginAttempts, bool, error) {
	doc := attemptDoc{
		ID:        attemptID(email, next.Seq),
		Email:     email,
		Seq:       next.Seq,
		Failures:  next.Failures,
		Level:     next.Level,
		At:        at,
		ExpiresAt: at.Add(attemptRetention),
	}
	_, err := s.attempts.InsertOne(ctx, doc)
	if err == nil {
		head := attemptHeadDoc{Email: email, Seq: next.Seq, Failures: next.Failures, Level: next.Level, ExpiresAt: at.Add(2 * attemptRetention)}
		// A lost or failed head update only costs the next reader a look-up.
		if _, err := s.attemptHeads.ReplaceOne(ctx, byID(email), head, options.Replace().SetUpsert(true)); err != nil && !isDuplicate(err) {
			s.log.DebugContext(ctx, "login attempt head not updated", "err", err.Error())
		}
		return next, false, nil
	}
	if !isDuplicate(err) {
		return auth.LoginAttempts{}, false, mapErr(err)
	}
	var taken attemptDoc
	if err := decode(s.attempts.FindOne(ctx, byID(doc.ID)), &taken); err != nil {
		if errors.Is(err, mongo.ErrNoDocuments) {
			return auth.LoginAttempts{Seq: next.Seq}, true, nil // swept meanwhile
		}
		return auth.LoginAttempts{}, false, mapErr(err)
	}
	return taken.toAuth(), true, nil
}
