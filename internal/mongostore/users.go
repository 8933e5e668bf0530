package mongostore

import (
	"context"
	"errors"
	"strconv"
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
	// PasswordGen counts the password's changes (reset links are bound to
	// it); Version counts the document's updates (see updateUser).
	PasswordGen int64 `bson:"password_gen,omitempty"`
	Version     int64 `bson:"version,omitempty"`
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
		PasswordGen:  d.PasswordGen,
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

		PasswordGen: u.PasswordGen,
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
// crashed or a change of address (older than orphanClaimAge, and its user
// gone or with another address), in which case it points the claim at the
// new user.
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
	// The claim is the user's while the user has the address: a change of
	// address that stopped after claiming the new one, or before releasing
	// the old one, leaves a claim whose user has another address.
	switch u, err := s.userByObjectID(ctx, old.UserID); {
	case err == nil && auth.NormalizeEmail(u.Email) == claim.Email:
		return auth.ErrEmailTaken
	case err != nil && !errors.Is(err, auth.ErrNotFound):
		return err
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

// SetPassword replaces the user's password hash (and moves its password
// generation on, which voids its reset links).
func (s *Store) SetPassword(ctx context.Context, userID, hash string, at time.Time) error {
	_, err := s.UpdateUser(ctx, userID, func(u *auth.User) error {
		u.PasswordHash = hash
		u.PasswordGen++
		u.UpdatedAt = at
		return nil
	})
	return err
}

// userWriteDoc claims a version of a user document for one writer.
type userWriteDoc struct {
	ID        string    `bson:"_id"` // "<user id>.<version>"
	At        time.Time `bson:"at"`
	ExpiresAt time.Time `bson:"expires_at"`
}

// UpdateUser applies change to the user's current document and stores the
// result. FerretDB applies an update by rewriting the whole document, so two
// concurrent updates of different fields (a password change and a
// verification) would lose one; here each writer first claims the version
// it writes (<id>.<version+1>, a unique insert), so of concurrent writers one
// writes and the others read again and re-apply their change on top. A
// claim whose write never came (a crash between the two) is passed over
// once it is older than any write can take.
func (s *Store) UpdateUser(ctx context.Context, userID string, change func(*auth.User) error) (*auth.User, error) {
	oid, err := bson.ObjectIDFromHex(userID)
	if err != nil {
		return nil, auth.ErrNotFound
	}
	stale := max(time.Minute, 3*s.timeout)
	for wait := time.Millisecond; ; wait = min(2*wait, 50*time.Millisecond) {
		var d userDoc
		if err := decode(s.users.FindOne(ctx, byID(oid)), &d); err != nil {
			return nil, mapErr(err)
		}
		u := d.toAuth()
		if err := change(u); err != nil {
			return nil, err
		}
		next := userToDoc(u, oid)
		version, err := s.claimUserVersion(ctx, userID, d.Version+1, stale)
		if err != nil {
			return nil, err
		}
		if version == 0 { // another writer is writing: read again after it
			select {
			case <-ctx.Done():
				return nil, mapErr(ctx.Err())
			case <-time.After(wait):
			}
			continue
		}
		next.Version = version
		if _, err := s.users.ReplaceOne(ctx, byID(oid), next); err != nil {
			if isDuplicate(err) {
				// Refused: nothing was written, so the next writer may go
				// on at once rather than after stale.
				_, _ = s.userWrites.DeleteOne(context.WithoutCancel(ctx), byID(userWriteID(userID, version)))
				return nil, auth.ErrEmailTaken
			}
			// Any other error (a timeout, say) may hide a write that
			// landed: the claim stays until stale, so that no writer that
			// read the version before it overwrites it.
			return nil, mapErr(err)
		}
		return next.toAuth(), nil
	}
}

func userWriteID(userID string, v int64) string { return userID + "." + strconv.FormatInt(v, 10) }

// claimUserVersion claims version v of the user (or a later one, past
// claims older than stale whose writes never came). It returns 0 when a
// live claim is in the way.
func (s *Store) claimUserVersion(ctx context.Context, userID string, v int64, stale time.Duration) (int64, error) {
	now := s.now().UTC()
	for range maxSeqProbes {
		id := userWriteID(userID, v)
		_, err := s.userWrites.InsertOne(ctx, userWriteDoc{ID: id, At: now, ExpiresAt: now.Add(time.Hour + stale)})
		if err == nil {
			return v, nil
		}
		if !isDuplicate(err) {
			return 0, mapErr(err)
		}
		var c userWriteDoc
		switch err := decode(s.userWrites.FindOne(ctx, byID(id)), &c); {
		case errors.Is(err, mongo.ErrNoDocuments):
			continue // released meanwhile: try it again
		case err != nil:
			return 0, mapErr(err)
		case now.Sub(c.At) < stale:
			return 0, nil
		}
		v++
	}
	return 0, errors.New("user update: too many abandoned versions")
}

// ClaimEmail claims an address for a user that is changing to it: the
// claim's unique insert decides between this user and anyone registering
// the address. It is idempotent for the same user (a confirmation tried
// again) and returns auth.ErrEmailTaken when the address belongs to
// another user.
func (s *Store) ClaimEmail(ctx context.Context, userID, email string) error {
	oid, err := bson.ObjectIDFromHex(userID)
	if err != nil {
		return auth.ErrNotFound
	}
	claim := emailDoc{Email: email, UserID: oid, CreatedAt: s.now().UTC()}
	_, err = s.emails.InsertOne(ctx, claim)
	if err == nil || !isDuplicate(err) {
		return mapErr(err)
	}
	var old emailDoc
	if err := decode(s.emails.FindOne(ctx, byID(email)), &old); err != nil {
		if errors.Is(err, mongo.ErrNoDocuments) {
			return auth.ErrEmailTaken // released meanwhile; the caller may retry
		}
		return mapErr(err)
	}
	if old.UserID == oid {
		return nil
	}
	return s.takeOverOrphanClaim(ctx, claim)
}

// ReleaseEmail deletes the user's claim of an address it no longer has.
func (s *Store) ReleaseEmail(ctx context.Context, userID, email string) error {
	oid, err := bson.ObjectIDFromHex(userID)
	if err != nil {
		return auth.ErrNotFound
	}
	// The filter names the user, so a claim someone took over meanwhile
	// stays; this is a rare path, and the scan FerretDB makes of the claims
	// for it is acceptable here.
	_, err = s.emails.DeleteOne(ctx, bson.D{{Key: "_id", Value: email}, {Key: "user_id", Value: oid}})
	return mapErr(err)
}
