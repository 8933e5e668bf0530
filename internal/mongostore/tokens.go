package mongostore

import (
	"context"
	"errors"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/gqlauth/gqlauth/internal/auth"
)

// tokenDoc is an issued refresh token; only its hash is stored.
type tokenDoc struct {
	Hash             string        `bson:"_id"`
	SessionID        string        `bson:"session_id"`
	UserID           bson.ObjectID `bson:"user_id"`
	IssuedAt         time.Time     `bson:"issued_at"`
	ExpiresAt        time.Time     `bson:"expires_at"`
	SessionExpiresAt time.Time     `bson:"session_expires_at"`
}

// useDoc records that a refresh token was spent, or withdrawn before anyone
// spent it. Its _id is the token's hash, so exactly one insert per token
// succeeds: the spend and the withdrawal decide against each other.
type useDoc struct {
	Hash      string    `bson:"_id"`
	SessionID string    `bson:"session_id"`
	SpentAt   time.Time `bson:"spent_at"`
	ExpiresAt time.Time `bson:"expires_at"`
	// Withdrawn marks a token whose answer was never delivered.
	Withdrawn bool `bson:"withdrawn,omitempty"`
}

// useRecordMargin is how much longer a use record is kept than its token.
const useRecordMargin = 5 * time.Minute

// SaveRefreshToken stores an issued refresh token's hash.
func (s *Store) SaveRefreshToken(ctx context.Context, t *auth.RefreshToken) error {
	uid, err := bson.ObjectIDFromHex(t.UserID)
	if err != nil {
		return errors.New("saving refresh token: bad user id")
	}
	_, err = s.tokens.InsertOne(ctx, tokenDoc{
		Hash:             t.Hash,
		SessionID:        t.SessionID,
		UserID:           uid,
		IssuedAt:         t.IssuedAt,
		ExpiresAt:        t.ExpiresAt,
		SessionExpiresAt: t.SessionExpiresAt,
	})
	return mapErr(err)
}

// RefreshTokenByHash returns the stored token, or auth.ErrNotFound.
func (s *Store) RefreshTokenByHash(ctx context.Context, hash string) (*auth.RefreshToken, error) {
	var d tokenDoc
	if err := decode(s.tokens.FindOne(ctx, byID(hash)), &d); err != nil {
		return nil, mapErr(err)
	}
	return &auth.RefreshToken{
		Hash:             d.Hash,
		SessionID:        d.SessionID,
		UserID:           d.UserID.Hex(),
		IssuedAt:         d.IssuedAt,
		ExpiresAt:        d.ExpiresAt,
		SessionExpiresAt: d.SessionExpiresAt,
	}, nil
}

// SpendRefreshToken inserts the token's use record. The first caller's
// insert succeeds; every later one hits the _id index and is told when the
// token was first spent, or that it was withdrawn.
func (s *Store) SpendRefreshToken(ctx context.Context, t *auth.RefreshToken, at time.Time) (auth.Spend, error) {
	inserted, err := s.insertUse(ctx, t, at, false)
	if err != nil || inserted {
		return auth.Spend{First: inserted, FirstSpentAt: at}, err
	}
	var d useDoc
	if err := decode(s.uses.FindOne(ctx, byID(t.Hash)), &d); err != nil {
		if errors.Is(err, mongo.ErrNoDocuments) {
			// Swept after the token expired: it was spent long ago.
			return auth.Spend{}, nil
		}
		return auth.Spend{}, mapErr(err)
	}
	return auth.Spend{FirstSpentAt: d.SpentAt, Withdrawn: d.Withdrawn}, nil
}

// WithdrawRefreshToken inserts a withdrawn use record for a token that was
// issued but whose answer was not delivered. It returns false when the
// token was spent first (so it was delivered after all).
func (s *Store) WithdrawRefreshToken(ctx context.Context, t *auth.RefreshToken, at time.Time) (bool, error) {
	return s.insertUse(ctx, t, at, true)
}

// insertUse inserts the token's use record; false means one exists.
func (s *Store) insertUse(ctx context.Context, t *auth.RefreshToken, at time.Time, withdrawn bool) (bool, error) {
	// The use record must outlive the token record (and the clock skew that
	// verification tolerates), or a spent token could look unspent.
	return insertFirst(ctx, s.uses, useDoc{Hash: t.Hash, SessionID: t.SessionID, SpentAt: at, ExpiresAt: t.ExpiresAt.Add(useRecordMargin), Withdrawn: withdrawn})
}

// UnspendRefreshToken deletes the token's use record.
func (s *Store) UnspendRefreshToken(ctx context.Context, hash string) error {
	_, err := s.uses.DeleteOne(ctx, byID(hash))
	return mapErr(err)
}
