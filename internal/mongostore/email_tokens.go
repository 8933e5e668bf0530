package mongostore

import (
	"context"
	"errors"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/gqlauth/gqlauth/internal/auth"
)

// emailTokenDoc is a link's token: _id is the SHA-256 of the token, so the
// mutation that spends it reads it by _id.
type emailTokenDoc struct {
	Hash        string        `bson:"_id"`
	Kind        string        `bson:"kind"`
	UserID      bson.ObjectID `bson:"user_id"`
	Email       string        `bson:"email"`
	NewEmail    string        `bson:"new_email,omitempty"`
	PasswordGen int64         `bson:"password_gen"`
	CreatedAt   time.Time     `bson:"created_at"`
	ExpiresAt   time.Time     `bson:"expires_at"`
}

// latestChangeDoc points at a user's latest change-of-address token
// (_id "change <user id>"); a newer request replaces it.
type latestChangeDoc struct {
	ID        string    `bson:"_id"`
	Hash      string    `bson:"hash"`
	ExpiresAt time.Time `bson:"expires_at"`
}

// emailTokenUseDoc records that a token was used: _id is the token's hash,
// so of concurrent uses one insert wins.
type emailTokenUseDoc struct {
	Hash      string    `bson:"_id"`
	At        time.Time `bson:"at"`
	ExpiresAt time.Time `bson:"expires_at"`
}

func latestChangeID(userID string) string { return "change " + userID }

// SaveEmailToken stores the token (and, for a change of address, makes it
// the user's latest).
func (s *Store) SaveEmailToken(ctx context.Context, t *auth.EmailToken) error {
	uid, err := bson.ObjectIDFromHex(t.UserID)
	if err != nil {
		return auth.ErrNotFound
	}
	d := emailTokenDoc{Hash: t.Hash, Kind: t.Kind, UserID: uid, Email: t.Email, NewEmail: t.NewEmail,
		PasswordGen: t.PasswordGen, CreatedAt: t.CreatedAt.UTC(), ExpiresAt: t.ExpiresAt.UTC()}
	if _, err := s.emailTokens.InsertOne(ctx, d); err != nil {
		return mapErr(err)
	}
	if t.Kind != auth.TokenChange {
		return nil
	}
	// Of two concurrent requests, the later write wins: one link stays.
	latest := latestChangeDoc{ID: latestChangeID(t.UserID), Hash: t.Hash, ExpiresAt: t.ExpiresAt.UTC()}
	_, err = s.emailTokens.ReplaceOne(ctx, byID(latest.ID), latest, options.Replace().SetUpsert(true))
	if isDuplicate(err) { // a concurrent upsert inserted it first
		_, err = s.emailTokens.ReplaceOne(ctx, byID(latest.ID), latest)
	}
	return mapErr(err)
}

// EmailTokenByHash returns the token, or auth.ErrNotFound.
func (s *Store) EmailTokenByHash(ctx context.Context, hash string) (*auth.EmailToken, error) {
	var d emailTokenDoc
	if err := decode(s.emailTokens.FindOne(ctx, byID(hash)), &d); err != nil {
		return nil, mapErr(err)
	}
	if d.Kind == "" {
		return nil, auth.ErrNotFound // a latest-change pointer, not a token
	}
	return &auth.EmailToken{Hash: d.Hash, Kind: d.Kind, UserID: d.UserID.Hex(), Email: d.Email, NewEmail: d.NewEmail,
		PasswordGen: d.PasswordGen, CreatedAt: d.CreatedAt, ExpiresAt: d.ExpiresAt}, nil
}

// LatestEmailChange returns the hash of the user's latest change-of-address
// token, or "".
func (s *Store) LatestEmailChange(ctx context.Context, userID string) (string, error) {
	var d latestChangeDoc
	err := decode(s.emailTokens.FindOne(ctx, byID(latestChangeID(userID))), &d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return "", nil
	}
	if err != nil {
		return "", mapErr(err)
	}
	return d.Hash, nil
}

// SpendEmailToken inserts the token's use record; only one insert wins.
func (s *Store) SpendEmailToken(ctx context.Context, t *auth.EmailToken, at time.Time) (bool, error) {
	return insertFirst(ctx, s.emailTokenUses, emailTokenUseDoc{Hash: t.Hash, At: at.UTC(), ExpiresAt: t.ExpiresAt.UTC()})
}

// UnspendEmailToken deletes the token's use record.
func (s *Store) UnspendEmailToken(ctx context.Context, hash string) error {
	_, err := s.emailTokenUses.DeleteOne(ctx, byID(hash))
	return mapErr(err)
}
