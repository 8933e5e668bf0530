package mongostore

import (
	"context"
	"errors"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/gqlauth/gqlauth/internal/auth"
)

// userDoc is a user as stored. Field names follow the tutorial's documents.
type userDoc struct {
	ID        bson.ObjectID `bson:"_id"`
	Name      string        `bson:"name"`
	Email     string        `bson:"email"`
	Photo     string        `bson:"photo"`
	Role      string        `bson:"role"`
	Verified  bool          `bson:"verified"`
	Password  string        `bson:"password"`
	CreatedAt time.Time     `bson:"created_at"`
	UpdatedAt time.Time     `bson:"updated_at"`
}

func (d *userDoc) toAuth() *auth.User {
	return &auth.User{
		ID:           d.ID.Hex(),
		Name:         d.Name,
		Email:        d.Email,
		Photo:        d.Photo,
		Role:         auth.Role(strings.ToUpper(d.Role)), // the tutorial stored "user"
		Verified:     d.Verified,
		PasswordHash: d.Password,
		CreatedAt:    d.CreatedAt,
		UpdatedAt:    d.UpdatedAt,
	}
}

func userToDoc(u *auth.User, id bson.ObjectID) *userDoc {
	return &userDoc{
		ID:        id,
		Name:      u.Name,
		Email:     u.Email,
		Photo:     u.Photo,
		Role:      string(u.Role),
		Verified:  u.Verified,
		Password:  u.PasswordHash,
		CreatedAt: u.CreatedAt,
		UpdatedAt: u.UpdatedAt,
	}
}

// emailDoc claims an e-mail for a user: its _id is the normalised e-mail, so
// the _id index decides who registers it, and login finds the user by _id.
type emailDoc struct {
	Email     string        `bson:"_id"`
	UserID    bson.ObjectID `bson:"user_id"`
	CreatedAt time.Time     `bson:"created_at"`
}

// CreateUser claims the e-mail, then inserts the user. The claim's insert
// decides duplicates; the unique index on users.email backs it up.
//
// Returns auth.ErrEmailTaken (CONFLICT) when the e-mail is registered or
// being registered.
func (s *Store) CreateUser(ctx context.Context, u *auth.User) error {
	id := bson.NewObjectID()
	claim := emailDoc{Email: u.Email, UserID: id, CreatedAt: s.now().UTC()}
	if _, err := s.emails.InsertOne(ctx, claim); err != nil {
		if !isDuplicate(err) {
			return mapErr(err)
		}
		if err := s.takeOverOrphanClaim(ctx, claim); err != nil {
			return err
		}
	}
	if _, err := s.users.InsertOne(ctx, userToDoc(u, id)); err != nil {
		if isDuplicate(err) {
			return auth.ErrEmailTaken
		}
		// The claim stays: if the insert did happen despite the error, the
		// user is reachable; if not, the claim is an orphan that the next
		// registration of this e-mail takes over.
		return mapErr(err)
	}
	u.ID = id.Hex()
	return nil
}

// takeOverOrphanClaim is called when the e-mail's claim exists. It returns
// ErrEmailTaken unless the claim is left over from a registration that
// crashed (no user, older than orphanClaimAge), in which case it points the
// claim at the new user.
func (s *Store) takeOverOrphanClaim(ctx context.Context, claim emailDoc) error {
	var old emailDoc
	if err := decode(s.emails.FindOne(ctx, byID(claim.Email)), &old); err != nil {
		if errors.Is(err, mongo.ErrNoDocuments) {
			return auth.ErrEmailTaken // deleted meanwhile; the caller may retry
		}
		return mapErr(err)
	}
	if claim.CreatedAt.Sub(old.CreatedAt) < orphanClaimAge {
		return auth.ErrEmailTaken
	}
	exists, err := s.exists(ctx, s.users, old.UserID)
	if err != nil {
		return err
	}
	if exists {
		return auth.ErrEmailTaken
	}
	if _, err := s.emails.ReplaceOne(ctx, byID(claim.Email), claim); err != nil {
		return mapErr(err)
	}
	s.log.WarnContext(ctx, "took over an e-mail claim left by an unfinished registration", "user_id", claim.UserID.Hex())
	return nil
}

func (s *Store) exists(ctx context.Context, c *mongo.Collection, id any) (bool, error) {
	err := c.FindOne(ctx, byID(id), options.FindOne().SetProjection(bson.D{{Key: "_id", Value: 1}})).Err()
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, mongo.ErrNoDocuments):
		return false, nil
	default:
		return false, mapErr(err)
	}
}

// UserByID returns the user with the given hex id, or auth.ErrNotFound (also
// for an id that is not 24 hex characters).
func (s *Store) UserByID(ctx context.Context, id string) (*auth.User, error) {
	oid, err := bson.ObjectIDFromHex(id)
	if err != nil {
		return nil, auth.ErrNotFound
	}
	return s.userByObjectID(ctx, oid)
}

func (s *Store) userByObjectID(ctx context.Context, oid bson.ObjectID) (*auth.User, error) {
	var d userDoc
	if err := decode(s.users.FindOne(ctx, byID(oid)), &d); err != nil {
		return nil, mapErr(err)
	}
	return d.toAuth(), nil
}

// UserByEmail returns the user with the normalised e-mail, or
// auth.ErrNotFound. It reads the e-mail's claim and then the user, both by
// _id. Only when a claim points at a missing user (a registration that
// crashed, or two that raced to take over such a claim) does it search the
// users collection, and it then repairs the claim.
func (s *Store) UserByEmail(ctx context.Context, email string) (*auth.User, error) {
	var claim emailDoc
	if err := decode(s.emails.FindOne(ctx, byID(email)), &claim); err != nil {
		return nil, mapErr(err)
	}
	u, err := s.userByObjectID(ctx, claim.UserID)
	if err == nil && auth.NormalizeEmail(u.Email) == email {
		return u, nil
	}
	if err != nil && !errors.Is(err, auth.ErrNotFound) {
		return nil, err
	}
	var d userDoc
	if err := decode(s.users.FindOne(ctx, bson.D{{Key: "email", Value: email}}), &d); err != nil {
		return nil, mapErr(err)
	}
	claim.UserID = d.ID
	if _, err := s.emails.ReplaceOne(ctx, byID(email), claim); err != nil {
		return nil, mapErr(err)
	}
	return d.toAuth(), nil
}

// SetPassword replaces the user's password hash. Nothing else updates user
// documents, so FerretDB's non-atomic update cannot lose a concurrent change
// of another field; of two concurrent password changes, one wins whole.
func (s *Store) SetPassword(ctx context.Context, userID, hash string, at time.Time) error {
	oid, err := bson.ObjectIDFromHex(userID)
	if err != nil {
		return auth.ErrNotFound
	}
	res, err := s.users.UpdateOne(ctx, byID(oid), bson.D{{Key: "$set", Value: bson.D{{Key: "password", Value: hash}, {Key: "updated_at", Value: at}}}})
	if err != nil {
		return mapErr(err)
	}
	if res.MatchedCount == 0 {
		return auth.ErrNotFound
	}
	return nil
}
