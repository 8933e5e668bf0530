package mongostore

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/gqlauth/gqlauth/internal/auth"
)

// Server error codes the schema set-up tolerates.
const (
	codeNamespaceExists = 48
	codeNotImplemented  = 238
)

// expiringCollections hold documents with an expires_at after which they are
// no longer needed: a TTL index removes them where the server has TTL
// indexes, and Sweep does everywhere.
var expiringCollections = []string{CollSessions, CollRevocations, CollTokens, CollTokenUses, CollAttempts, CollAttemptHead,
	CollEmailTokens, CollEmailTokenUses, CollUserWrites, CollOutbox, CollOutboxMarks, CollOutboxClaims, CollOutboxDone}

// EnsureSchema creates the collections and indexes. It is idempotent and
// safe to run from several instances at once.
func (s *Store) EnsureSchema(ctx context.Context) error {
	for _, name := range Collections {
		err := s.db.CreateCollection(ctx, name)
		var ce mongo.CommandError
		if err != nil && !(errors.As(err, &ce) && ce.Code == codeNamespaceExists) {
			return fmt.Errorf("creating collection %s: %w", name, mapErr(err))
		}
	}
	_, err := s.users.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys:    bson.D{{Key: "email", Value: 1}},
		Options: options.Index().SetUnique(true).SetName("email_unique"),
	})
	if err != nil {
		return fmt.Errorf("creating users.email index: %w", mapErr(err))
	}
	_, err = s.sessions.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys:    bson.D{{Key: "user_id", Value: 1}},
		Options: options.Index().SetName("user_id"),
	})
	if err != nil {
		return fmt.Errorf("creating sessions.user_id index: %w", mapErr(err))
	}
	ttl := true
	for _, name := range expiringCollections {
		_, err := s.db.Collection(name).Indexes().CreateOne(ctx, mongo.IndexModel{
			Keys:    bson.D{{Key: "expires_at", Value: 1}},
			Options: options.Index().SetExpireAfterSeconds(0).SetName("expires_at_ttl"),
		})
		var ce mongo.CommandError
		switch {
		case err == nil:
		case errors.As(err, &ce) && ce.Code == codeNotImplemented:
			ttl = false
		default:
			return fmt.Errorf("creating %s TTL index: %w", name, mapErr(err))
		}
	}
	if !ttl {
		s.log.DebugContext(ctx, "the database has no TTL indexes; the periodic sweep removes expired documents")
	}
	return s.adoptUsersWithoutClaims(ctx)
}

// migrationDoc records, in CollMigrations, a one-time migration that
// finished; its _id names it.
type migrationDoc struct {
	ID     string    `bson:"_id"`
	DoneAt time.Time `bson:"done_at"`
}

// migrationEmailClaims is the migration adoptUsersWithoutClaims runs.
const migrationEmailClaims = "user_email_claims"

// adoptUsersWithoutClaims gives every user without an e-mail claim one, so
// that users created by the tutorial's server (which had no user_emails
// collection) can sign in. It runs until it has finished once on the
// database (a record in CollMigrations says so; this server claims every
// address it stores) and reads both collections a batch at a time, holding
// only the claimed addresses.
func (s *Store) adoptUsersWithoutClaims(ctx context.Context) error {
	migrations := s.db.Collection(CollMigrations)
	switch err := migrations.FindOne(ctx, byID(migrationEmailClaims)).Err(); {
	case err == nil:
		return nil
	case !errors.Is(err, mongo.ErrNoDocuments):
		return fmt.Errorf("reading the migrations: %w", mapErr(err))
	}
	idsOnly := options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}})
	cur, err := s.emails.Find(ctx, bson.D{}, idsOnly)
	if err != nil {
		return fmt.Errorf("listing e-mail claims: %w", mapErr(err))
	}
	claimed := map[string]struct{}{}
	for cur.Next(ctx) {
		if email, ok := cur.Current.Lookup("_id").StringValueOK(); ok {
			claimed[email] = struct{}{}
		}
	}
	if err := errors.Join(cur.Err(), cur.Close(ctx)); err != nil {
		return fmt.Errorf("listing e-mail claims: %w", mapErr(err))
	}
	cur, err = s.users.Find(ctx, bson.D{}, options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}, {Key: "email", Value: 1}}))
	if err != nil {
		return fmt.Errorf("listing users: %w", mapErr(err))
	}
	defer cur.Close(ctx)
	adopted := 0
	for cur.Next(ctx) {
		var u userDoc
		if err := bson.Unmarshal(cur.Current, &u); err != nil {
			return fmt.Errorf("listing users: %w", err)
		}
		email := auth.NormalizeEmail(u.Email)
		if _, ok := claimed[email]; ok || email == "" {
			continue
		}
		_, err := s.emails.InsertOne(ctx, emailDoc{Email: email, UserID: u.ID, CreatedAt: s.now().UTC()})
		if err != nil && !isDuplicate(err) {
			return fmt.Errorf("claiming the e-mail of user %s: %w", u.ID.Hex(), mapErr(err))
		}
		adopted++
	}
	if err := cur.Err(); err != nil {
		return fmt.Errorf("listing users: %w", mapErr(err))
	}
	if adopted > 0 {
		s.log.InfoContext(ctx, "users without an e-mail claim adopted", "count", adopted)
	}
	_, err = migrations.InsertOne(ctx, migrationDoc{ID: migrationEmailClaims, DoneAt: s.now().UTC()})
	if err != nil && !isDuplicate(err) {
		return fmt.Errorf("recording the e-mail claims migration: %w", mapErr(err))
	}
	return nil
}

// SweepInterval is how often RunSweeper runs Sweep, and SweepFirst how long
// after start it runs the first time.
const (
	SweepInterval = 10 * time.Minute
	SweepFirst    = time.Minute
)

// Sweep deletes documents past their expires_at: sessions past their
// lifetime, revocation records no token can need any more, and expired
// refresh tokens and their use records. It returns how many it deleted.
// It then applies the session cap that sign-ins which stopped half-way
// left undone (see the session numbering in sessions.go).
func (s *Store) Sweep(ctx context.Context) (int64, error) {
	now := s.now().UTC()
	var total int64
	for _, name := range expiringCollections {
		res, err := s.db.Collection(name).DeleteMany(ctx, bson.D{{Key: "expires_at", Value: bson.D{{Key: "$lt", Value: now}}}})
		if err != nil {
			return total, fmt.Errorf("sweeping %s: %w", name, mapErr(err))
		}
		total += res.DeletedCount
	}
	if _, err := s.repairCaps(ctx); err != nil {
		return total, fmt.Errorf("applying session caps: %w", err)
	}
	return total, nil
}

// SweepTimeout bounds one sweep. On FerretDB a sweep reads whole
// collections, which takes longer than a request's database timeout.
const SweepTimeout = 5 * time.Minute

// RunSweeper runs Sweep after first (so that it does not compete with
// start-up traffic) and then every interval until ctx ends, logging
// failures. A first sweep soon after start matters: a server restarted more
// often than the interval would otherwise never sweep.
func (s *Store) RunSweeper(ctx context.Context, first, interval time.Duration) {
	// Session counters from an earlier release get their floor at once, not
	// at the first sweep (see sessions.go).
	mctx, cancel := context.WithTimeout(ctx, SweepTimeout)
	n, err := s.migrateFloors(mctx)
	cancel()
	if err != nil {
		s.log.WarnContext(ctx, "migrating session counters failed; the sweep retries", "err", err.Error())
	} else if n > 0 {
		s.log.InfoContext(ctx, "session counters from an earlier release migrated", "counters", n)
	}
	wait := time.NewTimer(first)
	defer wait.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-wait.C:
		}
		start := time.Now()
		sweepCtx, cancel := context.WithTimeout(ctx, SweepTimeout)
		n, err := s.Sweep(sweepCtx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			s.log.WarnContext(ctx, "sweep failed", "err", err.Error())
		default:
			s.log.DebugContext(ctx, "sweep done", "deleted", n, "took", time.Since(start).String())
		}
		// On FerretDB a sweep reads whole collections into memory; give that
		// memory back now rather than keep the process at its peak.
		debug.FreeOSMemory()
		wait.Reset(interval)
	}
}
