// Package mongostore implements auth.Store on MongoDB through the official
// Go driver. The same code runs against a real MongoDB and against the
// embedded FerretDB.
//
// The design follows two properties of FerretDB that MongoDB does not share:
// conditional updates are not atomic (two compare-and-set updates can both
// win, concurrent $inc are lost), and only a filter that is exactly
// {_id: value} is pushed down to SQLite. So every decision that must hold
// under concurrency is an insert that the _id (or another unique) index
// accepts once, and every hot path reaches its documents by _id alone:
//
//   - users are found by e-mail through user_emails, whose _id is the e-mail;
//   - a session's id is "<user id>.<n>" with n counting the user's sign-ins,
//     so the oldest of more than 50 is found without a query;
//   - revocation is an insert into session_revocations (_id = session id),
//     which nothing can overwrite;
//   - refresh tokens are stored as hashes (_id = hash), and spending one is an
//     insert into refresh_token_uses (_id = hash) that only one caller wins;
//   - login attempts per e-mail are numbered records (_id = "<e-mail> <n>"),
//     each number taken by one insert, so the throttle counts every attempt.
//
// The only updates are hints (the per-user sign-in counter, the copy of an
// e-mail's latest attempt record) whose loss is detected and repaired by the
// unique inserts and look-ups that follow them.
package mongostore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"

	"github.com/gqlauth/gqlauth/internal/auth"
	"github.com/gqlauth/gqlauth/internal/email"
)

// Collection names: the schema that this package and its test helper
// (storetest) keep, and nothing else knows.
const (
	CollUsers       = "users"
	CollUserEmails  = "user_emails"
	CollSessions    = "sessions"
	CollCounters    = "session_counters"
	CollRevocations = "session_revocations"
	CollTokens      = "refresh_tokens"
	CollTokenUses   = "refresh_token_uses"
	CollAttempts    = "login_attempts"
	CollAttemptHead = "login_attempt_heads"
	CollMigrations  = "schema_migrations"

	CollEmailTokens    = "email_tokens"
	CollEmailTokenUses = "email_token_uses"
	CollUserWrites     = "user_writes"
	CollOutbox         = "email_outbox"
	CollOutboxMarks    = "email_outbox_marks"
	CollOutboxClaims   = "email_outbox_claims"
	CollOutboxDone     = "email_outbox_outcomes"
)

// Collections lists every collection the store uses.
var Collections = []string{CollUsers, CollUserEmails, CollSessions, CollCounters, CollRevocations, CollTokens, CollTokenUses, CollAttempts, CollAttemptHead, CollMigrations,
	CollEmailTokens, CollEmailTokenUses, CollUserWrites, CollOutbox, CollOutboxMarks, CollOutboxClaims, CollOutboxDone}

// orphanClaimAge is how old an e-mail claim whose user does not exist must
// be before a new registration may take it over. Registration writes the
// claim and then the user within one database timeout, so an older claim
// without its user is left over from a crash.
const orphanClaimAge = time.Minute

// Store is the MongoDB implementation of auth.Store.
type Store struct {
	client *mongo.Client
	db     *mongo.Database
	log    *slog.Logger
	now    func() time.Time
	// perUser is the per-user cap of live sessions.
	perUser int
	// outboxMax bounds the outbox's waiting e-mails.
	outboxMax int
	timeout   time.Duration

	prepareHook func(context.Context) error
	touches     touches
	ready       atomic.Bool
	bg          context.Context // background work (sweep, retries) runs until Close
	stop        context.CancelFunc
	wg          sync.WaitGroup

	users, emails, sessions, counters, revocations, tokens, uses *mongo.Collection
	attempts, attemptHeads                                       *mongo.Collection
	emailTokens, emailTokenUses, userWrites                      *mongo.Collection
	outbox, outboxMarks, outboxClaims, outboxDone                *mongo.Collection
	outboxMem                                                    outboxState
}

var _ auth.Store = (*Store)(nil)

// Options configures Open.
type Options struct {
	URI      string
	Database string
	// Timeout bounds every database call.
	Timeout time.Duration
	Logger  *slog.Logger
	// Now is the clock, for tests; nil means time.Now.
	Now func() time.Time
	// SessionsPerUser caps a user's live sessions (the oldest are revoked
	// first); 0 means auth.MaxSessionsPerUser.
	SessionsPerUser int
	// OutboxMax bounds the e-mails waiting in the outbox; 0 means
	// email.MaxPending.
	OutboxMax int
	// Prepare, when set, runs once the schema exists, before the store is
	// ready (Connect): the embedded database's _id index fix.
	Prepare func(context.Context) error
	// WaitWhenDown makes Connect wait, in the background, for a database
	// that does not answer yet, instead of failing.
	WaitWhenDown bool
}

// Open creates a client for the URI. It does not wait for the database: the
// driver connects lazily, and Ping tells whether it answers.
func Open(o Options) (*Store, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.SessionsPerUser <= 0 {
		o.SessionsPerUser = auth.MaxSessionsPerUser
	}
	if o.OutboxMax <= 0 {
		o.OutboxMax = email.MaxPending
	}
	opts := options.Client().
		ApplyURI(o.URI).
		SetTimeout(o.Timeout).
		SetServerSelectionTimeout(o.Timeout).
		SetConnectTimeout(o.Timeout).
		// Connections opened for a burst are closed after a minute idle.
		SetMaxConnIdleTime(time.Minute).
		SetAppName("gqlauth")
	client, err := mongo.Connect(opts)
	if err != nil {
		return nil, fmt.Errorf("connecting to database: %w", err)
	}
	db := client.Database(o.Database)
	bg, stop := context.WithCancel(context.Background())
	s := &Store{
		timeout:      o.Timeout,
		prepareHook:  o.Prepare,
		bg:           bg,
		stop:         stop,
		client:       client,
		db:           db,
		log:          o.Logger,
		now:          o.Now,
		perUser:      o.SessionsPerUser,
		outboxMax:    o.OutboxMax,
		users:        db.Collection(CollUsers),
		emails:       db.Collection(CollUserEmails),
		sessions:     db.Collection(CollSessions),
		counters:     db.Collection(CollCounters),
		revocations:  db.Collection(CollRevocations),
		tokens:       db.Collection(CollTokens),
		uses:         db.Collection(CollTokenUses),
		attempts:     db.Collection(CollAttempts),
		attemptHeads: db.Collection(CollAttemptHead),

		emailTokens:    db.Collection(CollEmailTokens),
		emailTokenUses: db.Collection(CollEmailTokenUses),
		userWrites:     db.Collection(CollUserWrites),
		outbox:         db.Collection(CollOutbox),
		outboxMarks:    db.Collection(CollOutboxMarks),
		outboxClaims:   db.Collection(CollOutboxClaims),
		outboxDone:     db.Collection(CollOutboxDone),
		outboxMem:      outboxState{marked: map[int64]bool{}, nextK: map[int64]int{}},
	}
	s.background(s.runTouches)
	return s, nil
}

// Close stops the background work (sweep, retries, the write-behind of
// session touches, which it flushes), waits for it, and disconnects the
// client.
func (s *Store) Close(ctx context.Context) error {
	s.stop()
	s.wg.Wait()
	return s.client.Disconnect(ctx)
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	return mapErr(s.client.Ping(ctx, readpref.Primary()))
}

// isDuplicate reports whether err is a unique-index violation. It is the one
// place that recognises the driver's duplicate-key error.
func isDuplicate(err error) bool {
	return mongo.IsDuplicateKeyError(err) || isSQLiteUnique(err)
}

// isSQLiteUnique reports FerretDB's answer to an update that breaks a
// unique index on its SQLite backend: an InternalError (code 1) carrying
// SQLite's "UNIQUE constraint failed", where MongoDB answers 11000 (FerretDB
// 1.24 answers inserts with 11000, but not replacements).
func isSQLiteUnique(err error) bool {
	var ce mongo.CommandError
	return errors.As(err, &ce) && ce.Code == 1 && strings.Contains(ce.Message, "UNIQUE constraint failed")
}

// insertFirst inserts doc and reports whether this insert was the first:
// false when a document with its _id exists (the unique-insert decision
// that the store's concurrency rests on).
func insertFirst(ctx context.Context, c *mongo.Collection, doc any) (bool, error) {
	_, err := c.InsertOne(ctx, doc)
	switch {
	case err == nil:
		return true, nil
	case isDuplicate(err):
		return false, nil
	default:
		return false, mapErr(err)
	}
}

// isUnavailable reports whether err means the database could not be reached
// or did not answer in time.
func isUnavailable(err error) bool {
	// A pool cleared after another operation's network error is the same
	// outage, seen by the operations that were waiting for a connection.
	var cleared driver.RetryablePoolError
	return mongo.IsTimeout(err) ||
		mongo.IsNetworkError(err) ||
		errors.Is(err, mongo.ErrClientDisconnected) ||
		errors.As(err, &topology.ServerSelectionError{}) ||
		(errors.As(err, &cleared) && cleared.Retryable())
}

// mapErr maps driver errors to the domain's: no document is auth.ErrNotFound,
// an outage wraps auth.ErrUnavailable; anything else is returned as is.
func mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, mongo.ErrNoDocuments):
		return auth.ErrNotFound
	case isUnavailable(err):
		return fmt.Errorf("%w: %w", auth.ErrUnavailable, err)
	default:
		return err
	}
}

// byID returns the filter {_id: id}: the only filter FerretDB answers
// without reading the whole collection.
func byID(id any) bson.D { return bson.D{{Key: "_id", Value: id}} }

// decode decodes the document a FindOne or FindOneAndUpdate answered, as
// SingleResult.Decode does (mongo.ErrNoDocuments when there is none) but
// without the 4 KiB reader the driver allocates for every call: it is a
// tenth of what a refresh allocates. bson.Unmarshal reads the bytes in hand,
// with the same default registry (the client sets no other).
func decode(r *mongo.SingleResult, v any) error {
	raw, err := r.Raw()
	if err != nil {
		return err
	}
	return bson.Unmarshal(raw, v)
}

// IsDown reports whether a Ping error means the database is not reachable
// yet (connection refused, a timeout, a name that does not resolve), as
// opposed to a peer that answers but is not MongoDB or refuses our
// credentials. A server that is down is waited for; the others are
// configuration errors.
func IsDown(err error) bool {
	var sel topology.ServerSelectionError
	if !errors.As(err, &sel) {
		return isUnavailable(err) && !isProtocolError(err)
	}
	for _, srv := range sel.Desc.Servers {
		if srv.LastError != nil && !isUnreachable(srv.LastError) {
			return false
		}
	}
	return true
}

// isUnreachable reports whether a connection error is a failure to reach the
// peer at all.
func isUnreachable(err error) bool {
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		return true
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return true
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, syscall.ECONNREFUSED) || mongo.IsTimeout(err)
}

// isProtocolError reports whether err came from a peer that answered
// something other than the MongoDB wire protocol, or refused authentication.
func isProtocolError(err error) bool {
	var ce mongo.CommandError
	return errors.As(err, &ce) && ce.Code == codeAuthenticationFailed
}

// codeAuthenticationFailed is MongoDB's error code for refused credentials.
const codeAuthenticationFailed = 18
