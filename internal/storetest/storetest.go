// Package storetest is the Mongo adapter's test helper: it starts a real
// MongoDB-wire server (an embedded FerretDB in a temporary directory),
// opens the store on it as the server does, and gives tests and tools what
// the store's production API does not: a view of the database's documents,
// fixtures for states the API cannot reach (a sign-in that stopped
// half-way), and bulk seeding.
//
// It and mongostore are the only packages that know collection names and
// document fields; tests name groups of records (Attempts, Registration)
// instead.
package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/gqlauth/gqlauth/internal/auth"
	"github.com/gqlauth/gqlauth/internal/embedded"
	"github.com/gqlauth/gqlauth/internal/mongostore"
)

// Database is the database name tests use.
const Database = "test"

// Groups of records, as the collections that hold them: what a request may
// write (a test compares Snapshots before and after).
var (
	// Attempts are the login throttle's records, written by every counted
	// login attempt.
	Attempts = []string{mongostore.CollAttempts, mongostore.CollAttemptHead}
	// Registration is a user and the claim of its e-mail.
	Registration = []string{mongostore.CollUsers, mongostore.CollUserEmails}
	// SignIn is what a sign-in writes besides Attempts: its session, the
	// user's session counter, its refresh token.
	SignIn = []string{mongostore.CollSessions, mongostore.CollCounters, mongostore.CollTokens}
	// Revocations are revocation records.
	Revocations = []string{mongostore.CollRevocations}
	// Spends are the records of spent refresh tokens.
	Spends = []string{mongostore.CollTokenUses}
	// Users are user documents; Sessions, session documents;
	// RefreshTokens, the issued refresh tokens' records.
	Users         = []string{mongostore.CollUsers}
	Sessions      = []string{mongostore.CollSessions}
	RefreshTokens = []string{mongostore.CollTokens}
	// Mail is what queueing an e-mail writes besides its limit record
	// (Attempts): the link's token and the outbox entry.
	Mail = []string{mongostore.CollEmailTokens, mongostore.CollOutbox}
	// EmailTokenUses are the records of spent e-mail tokens.
	EmailTokenUses = []string{mongostore.CollEmailTokenUses}
)

// Open starts an embedded FerretDB and opens a store on it with o (URI and
// Database are filled in; Timeout defaults to 5 s). Both are closed when
// the test ends.
func Open(tb testing.TB, o mongostore.Options) *mongostore.Store {
	tb.Helper()
	return OpenDB(tb, o).Store
}

// OpenDB is Open with a view of the database.
func OpenDB(tb testing.TB, o mongostore.Options) *DB {
	tb.Helper()
	edb, err := embedded.Start(embedded.Options{Dir: tb.TempDir()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(edb.Stop)
	o.URI, o.Database = edb.URI(), Database
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Second
	}
	o.Prepare = edb.Prepare(Database)
	s, err := mongostore.Connect(context.Background(), o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close(context.Background()) })
	db, err := attach(s, o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = db.client.Disconnect(context.Background()) })
	db.Embedded = edb
	return db
}

// Attach connects to the database of a running server at o.URI (see
// embedded.Locate for the embedded one), with a store of its own made with
// o (its clock, say, for Sweep). Closed when the test ends.
func Attach(tb testing.TB, o mongostore.Options) *DB {
	tb.Helper()
	db, err := Connect(o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = db.Close(context.Background()) })
	return db
}

// Connect is Attach for tools (the benchmark's seeding); Close it.
func Connect(o mongostore.Options) (*DB, error) {
	if o.Timeout == 0 {
		o.Timeout = 30 * time.Second
	}
	s, err := mongostore.Open(o)
	if err != nil {
		return nil, err
	}
	db, err := attach(s, o)
	if err != nil {
		_ = s.Close(context.Background())
		return nil, err
	}
	db.owned = true
	return db, nil
}

func attach(s *mongostore.Store, o mongostore.Options) (*DB, error) {
	client, err := mongo.Connect(options.Client().ApplyURI(o.URI).SetTimeout(o.Timeout))
	if err != nil {
		return nil, err
	}
	return &DB{Store: s, client: client, db: client.Database(o.Database)}, nil
}

// DB is a store with a view of its database.
type DB struct {
	// Store is a store on the database, for its own methods (Sweep, say).
	Store *mongostore.Store
	// Embedded is the embedded database OpenDB started (nil for Attach).
	Embedded *embedded.DB

	client *mongo.Client
	db     *mongo.Database
	owned  bool
}

// Close disconnects (Attach and OpenDB do it when the test ends).
func (d *DB) Close(ctx context.Context) error {
	err := d.client.Disconnect(ctx)
	if d.owned {
		err = d.Store.Close(ctx)
	}
	return err
}

// Snapshot counts the documents of every collection that requests write
// (not the outbox's marks: its worker keeps its cursor and count there in
// the background).
func (d *DB) Snapshot(tb testing.TB) map[string]int64 {
	tb.Helper()
	counts := map[string]int64{}
	for _, name := range mongostore.Collections {
		if name == mongostore.CollOutboxMarks {
			continue
		}
		n, err := d.db.Collection(name).CountDocuments(context.Background(), bson.D{})
		if err != nil {
			tb.Fatal(err)
		}
		counts[name] = n
	}
	return counts
}

// Count returns how many records of a group (Attempts, …) there are.
func (d *DB) Count(ctx context.Context, group []string) (int64, error) {
	var total int64
	for _, name := range group {
		n, err := d.db.Collection(name).CountDocuments(ctx, bson.D{})
		if err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}

// User is a user as stored, every field as the document has it.
type User = bson.M

// UsersByEmail returns the stored users with the e-mail (exactly as
// stored).
func (d *DB) UsersByEmail(ctx context.Context, email string) ([]User, error) {
	return d.find(ctx, mongostore.CollUsers, bson.D{{Key: "email", Value: email}})
}

// Users returns every stored user.
func (d *DB) Users(ctx context.Context) ([]User, error) {
	return d.find(ctx, mongostore.CollUsers, bson.D{})
}

// Sessions returns every session document (placeholders included) as
// {id, user id}.
func (d *DB) Sessions(ctx context.Context) ([]SessionRecord, error) {
	cur, err := d.db.Collection(mongostore.CollSessions).Find(ctx, bson.D{})
	if err != nil {
		return nil, err
	}
	var out []SessionRecord
	err = cur.All(ctx, &out)
	return out, err
}

// SessionRecord is a session document's identity.
type SessionRecord struct {
	ID          string        `bson:"_id"`
	UserID      bson.ObjectID `bson:"user_id"`
	ExpiresAt   time.Time     `bson:"expires_at"`
	Placeholder bool          `bson:"placeholder"`
}

// EmailClaimed reports whether the e-mail's claim exists.
func (d *DB) EmailClaimed(ctx context.Context, email string) (bool, error) {
	n, err := d.db.Collection(mongostore.CollUserEmails).CountDocuments(ctx, bson.D{{Key: "_id", Value: email}})
	return n > 0, err
}

func (d *DB) find(ctx context.Context, coll string, filter bson.D) ([]bson.M, error) {
	cur, err := d.db.Collection(coll).Find(ctx, filter)
	if err != nil {
		return nil, err
	}
	var out []bson.M
	err = cur.All(ctx, &out)
	return out, err
}

// LiveSessionsByScan returns the ids of the user's live sessions by reading
// the whole sessions collection and each one's revocation: an independent
// check of the store's listing.
func (d *DB) LiveSessionsByScan(ctx context.Context, userID string) ([]string, error) {
	uid, err := bson.ObjectIDFromHex(userID)
	if err != nil {
		return nil, err
	}
	cur, err := d.db.Collection(mongostore.CollSessions).Find(ctx, bson.D{{Key: "user_id", Value: uid}})
	if err != nil {
		return nil, err
	}
	var docs []SessionRecord
	if err := cur.All(ctx, &docs); err != nil {
		return nil, err
	}
	var ids []string
	for _, s := range docs {
		if s.Placeholder || !s.ExpiresAt.After(time.Now()) {
			continue
		}
		n, err := d.db.Collection(mongostore.CollRevocations).CountDocuments(ctx, bson.D{{Key: "_id", Value: s.ID}})
		if err != nil {
			return nil, err
		}
		if n == 0 {
			ids = append(ids, s.ID)
		}
	}
	return ids, nil
}

// SessionID returns the id of the user's n-th session (the numbering is
// the store's; see mongostore.SessionID).
func SessionID(userID string, n int64) string { return mongostore.SessionID(userID, n) }

// LeaveSignInHalfDone leaves what a sign-in that stopped after inserting
// its session and before applying the session cap leaves (the client
// dropped its connection, or the database timed out): the user's next
// session number used, the oldest session not revoked, the floor not moved.
func (d *DB) LeaveSignInHalfDone(ctx context.Context, userID string) error {
	var c struct {
		Seq int64 `bson:"seq"`
	}
	err := d.db.Collection(mongostore.CollCounters).FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: userID}},
		bson.D{{Key: "$inc", Value: bson.D{{Key: "seq", Value: int64(1)}}}},
		options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&c)
	if err != nil {
		return err
	}
	uid, err := bson.ObjectIDFromHex(userID)
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	_, err = d.db.Collection(mongostore.CollSessions).InsertOne(ctx, bson.D{
		{Key: "_id", Value: SessionID(userID, c.Seq)}, {Key: "user_id", Value: uid}, {Key: "seq", Value: c.Seq},
		{Key: "created_at", Value: now}, {Key: "last_used_at", Value: now}, {Key: "expires_at", Value: now.Add(time.Hour)},
	})
	return err
}

// ImportUsers inserts users with their e-mail claims in bulk, assigning
// their ids: for seeding many users (the benchmark); registration goes
// through the store.
func (d *DB) ImportUsers(ctx context.Context, users []*auth.User) error {
	userDocs := make([]any, len(users))
	claimDocs := make([]any, len(users))
	for i, u := range users {
		id := bson.NewObjectID()
		u.ID = id.Hex()
		userDocs[i] = bson.D{
			{Key: "_id", Value: id}, {Key: "name", Value: u.Name}, {Key: "email", Value: u.Email},
			{Key: "photo", Value: u.Photo}, {Key: "role", Value: string(u.Role)}, {Key: "verified", Value: u.Verified},
			{Key: "password", Value: u.PasswordHash}, {Key: "created_at", Value: u.CreatedAt}, {Key: "updated_at", Value: u.UpdatedAt},
		}
		claimDocs[i] = bson.D{{Key: "_id", Value: u.Email}, {Key: "user_id", Value: id}, {Key: "created_at", Value: u.CreatedAt}}
	}
	opts := options.InsertMany().SetOrdered(false)
	if _, err := d.db.Collection(mongostore.CollUserEmails).InsertMany(ctx, claimDocs, opts); err != nil {
		return fmt.Errorf("importing e-mail claims: %w", err)
	}
	if _, err := d.db.Collection(mongostore.CollUsers).InsertMany(ctx, userDocs, opts); err != nil {
		return fmt.Errorf("importing users: %w", err)
	}
	return nil
}

// ImportSessions inserts, for each user, perUser sessions numbered 1 to
// perUser (template gives their times and client), and sets the users'
// session counters to perUser.
func (d *DB) ImportSessions(ctx context.Context, userIDs []string, perUser int, template auth.Session) error {
	const batch = 5000
	var docs []any
	flush := func() error {
		if len(docs) == 0 {
			return nil
		}
		_, err := d.db.Collection(mongostore.CollSessions).InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
		docs = docs[:0]
		return err
	}
	counters := make([]any, 0, len(userIDs))
	for _, id := range userIDs {
		oid, err := bson.ObjectIDFromHex(id)
		if err != nil {
			return fmt.Errorf("importing sessions: bad user id %q", id)
		}
		for n := int64(1); n <= int64(perUser); n++ {
			docs = append(docs, bson.D{
				{Key: "_id", Value: SessionID(id, n)}, {Key: "user_id", Value: oid}, {Key: "seq", Value: n},
				{Key: "created_at", Value: template.CreatedAt}, {Key: "last_used_at", Value: template.CreatedAt},
				{Key: "expires_at", Value: template.ExpiresAt}, {Key: "user_agent", Value: template.UserAgent}, {Key: "ip", Value: template.IP},
			})
			if len(docs) == batch {
				if err := flush(); err != nil {
					return fmt.Errorf("importing sessions: %w", err)
				}
			}
		}
		counters = append(counters, bson.D{{Key: "_id", Value: id}, {Key: "seq", Value: int64(perUser)}, {Key: "low", Value: int64(0)}})
	}
	if err := flush(); err != nil {
		return fmt.Errorf("importing sessions: %w", err)
	}
	if _, err := d.db.Collection(mongostore.CollCounters).InsertMany(ctx, counters, options.InsertMany().SetOrdered(false)); err != nil {
		return fmt.Errorf("importing session counters: %w", err)
	}
	return nil
}

// Summary counts users, sessions and refresh tokens, for a tool's report.
func (d *DB) Summary(ctx context.Context) (string, error) {
	var parts []string
	for _, c := range []string{mongostore.CollUsers, mongostore.CollSessions, mongostore.CollTokens} {
		n, err := d.db.Collection(c).EstimatedDocumentCount(ctx)
		if err != nil {
			return "", err
		}
		parts = append(parts, fmt.Sprintf("%s %d", c, n))
	}
	return strings.Join(parts, ", "), nil
}

// SetVerified sets a user's verified flag, as no request can.
func (d *DB) SetVerified(ctx context.Context, userID string, verified bool) error {
	oid, err := bson.ObjectIDFromHex(userID)
	if err != nil {
		return err
	}
	_, err = d.db.Collection(mongostore.CollUsers).UpdateOne(ctx, bson.D{{Key: "_id", Value: oid}}, bson.D{{Key: "$set", Value: bson.D{{Key: "verified", Value: verified}}}})
	return err
}

// DeleteUser deletes a user's document (an administrator's doing), leaving
// its sessions and e-mail claim.
func (d *DB) DeleteUser(ctx context.Context, userID string) error {
	oid, err := bson.ObjectIDFromHex(userID)
	if err != nil {
		return err
	}
	_, err = d.db.Collection(mongostore.CollUsers).DeleteOne(ctx, bson.D{{Key: "_id", Value: oid}})
	return err
}

// CheckIntegrity checks what a crash must not leave: every user document
// whole (each field, a bcrypt hash for the password), no e-mail twice, and
// every session (placeholders aside) belonging to a user. It returns how
// many users and sessions it checked.
func (d *DB) CheckIntegrity(ctx context.Context) (users, sessions int, err error) {
	us, err := d.Users(ctx)
	if err != nil {
		return 0, 0, err
	}
	ids := map[bson.ObjectID]bool{}
	emails := map[string]int{}
	for _, u := range us {
		for _, field := range []string{"name", "email", "password", "role", "photo", "verified", "created_at", "updated_at"} {
			if _, ok := u[field]; !ok {
				return 0, 0, fmt.Errorf("a user document lacks %s: %v", field, u)
			}
		}
		if h, _ := u["password"].(string); !strings.HasPrefix(h, "$2a$") {
			return 0, 0, fmt.Errorf("a user's password is not a bcrypt hash: %v", u["_id"])
		}
		id, _ := u["_id"].(bson.ObjectID)
		email, _ := u["email"].(string)
		ids[id] = true
		if emails[email]++; emails[email] > 1 {
			return 0, 0, fmt.Errorf("%s is stored twice", email)
		}
	}
	ss, err := d.Sessions(ctx)
	if err != nil {
		return 0, 0, err
	}
	for _, s := range ss {
		if !s.Placeholder && !ids[s.UserID] {
			return 0, 0, fmt.Errorf("session %s belongs to no user", s.ID)
		}
	}
	return len(us), len(ss), nil
}

// Export returns every document of every collection as canonical extended
// JSON, by collection: a fixture of the database as a release left it
// (see Import).
func (d *DB) Export(ctx context.Context) (map[string][]json.RawMessage, error) {
	out := map[string][]json.RawMessage{}
	for _, name := range mongostore.Collections {
		cur, err := d.db.Collection(name).Find(ctx, bson.D{})
		if err != nil {
			return nil, err
		}
		var docs []bson.Raw
		if err := cur.All(ctx, &docs); err != nil {
			return nil, err
		}
		for _, doc := range docs {
			j, err := bson.MarshalExtJSON(doc, true, false)
			if err != nil {
				return nil, err
			}
			out[name] = append(out[name], j)
		}
	}
	return out, nil
}

// Import inserts documents that Export returned.
func (d *DB) Import(ctx context.Context, docs map[string][]json.RawMessage) error {
	for name, list := range docs {
		batch := make([]any, 0, len(list))
		for _, j := range list {
			var doc bson.D
			if err := bson.UnmarshalExtJSON(j, true, &doc); err != nil {
				return fmt.Errorf("importing %s: %w", name, err)
			}
			batch = append(batch, doc)
		}
		if len(batch) == 0 {
			continue
		}
		if _, err := d.db.Collection(name).InsertMany(ctx, batch); err != nil {
			return fmt.Errorf("importing %s: %w", name, err)
		}
	}
	return nil
}
