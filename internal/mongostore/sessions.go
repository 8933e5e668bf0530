package mongostore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/gqlauth/gqlauth/internal/auth"
)

// maxSeqProbes bounds how far CreateSession looks past a stale counter.
const maxSeqProbes = 1000

type sessionDoc struct {
	ID         string        `bson:"_id"` // "<user id>.<n>"
	UserID     bson.ObjectID `bson:"user_id"`
	Seq        int64         `bson:"seq"`
	CreatedAt  time.Time     `bson:"created_at"`
	LastUsedAt time.Time     `bson:"last_used_at"`
	ExpiresAt  time.Time     `bson:"expires_at"`
	UserAgent  string        `bson:"user_agent"`
	IP         string        `bson:"ip"`
}

func (d *sessionDoc) toAuth() *auth.Session {
	last := d.LastUsedAt
	if last.IsZero() {
		last = d.CreatedAt
	}
	return &auth.Session{
		ID:         d.ID,
		UserID:     d.UserID.Hex(),
		CreatedAt:  d.CreatedAt,
		LastUsedAt: last,
		ExpiresAt:  d.ExpiresAt,
		UserAgent:  d.UserAgent,
		IP:         d.IP,
	}
}

// counterDoc counts a user's sign-ins. It is a hint: on FerretDB concurrent
// increments can be lost, and CreateSession then probes past it.
type counterDoc struct {
	UserID string `bson:"_id"`
	Seq    int64  `bson:"seq"`
}

type revocationDoc struct {
	SessionID string        `bson:"_id"`
	UserID    bson.ObjectID `bson:"user_id"`
	Reason    string        `bson:"reason"`
	RevokedAt time.Time     `bson:"revoked_at"`
	ExpiresAt time.Time     `bson:"expires_at"`
}

// SessionID returns the id of a user's n-th session.
func SessionID(userID string, n int64) string {
	return userID + "." + strconv.FormatInt(n, 10)
}

// CreateSession numbers the session after the user's previous sign-ins and
// inserts it; the _id index makes each number go to one session even when
// the counter lags. The session maxPerUser numbers back is then revoked, so
// a user keeps at most maxPerUser live sessions, the oldest revoked first.
//
// Returns the ids of sessions it revoked.
func (s *Store) CreateSession(ctx context.Context, sess *auth.Session, maxPerUser int) ([]string, error) {
	uid, err := bson.ObjectIDFromHex(sess.UserID)
	if err != nil {
		return nil, fmt.Errorf("creating session: bad user id %q", sess.UserID)
	}
	seq, err := s.nextSeq(ctx, sess.UserID)
	if err != nil {
		return nil, err
	}
	doc := sessionDoc{
		UserID:     uid,
		CreatedAt:  sess.CreatedAt,
		LastUsedAt: sess.CreatedAt,
		ExpiresAt:  sess.ExpiresAt,
		UserAgent:  sess.UserAgent,
		IP:         sess.IP,
	}
	start := seq
	for ; seq < start+maxSeqProbes; seq++ {
		doc.ID, doc.Seq = SessionID(sess.UserID, seq), seq
		_, err = s.sessions.InsertOne(ctx, doc)
		if err == nil || !isDuplicate(err) {
			break
		}
	}
	if err != nil {
		return nil, mapErr(err)
	}
	if seq != start {
		// The counter lagged (lost increments): move it up so that the next
		// sign-in does not probe again. Losing this update is harmless too.
		_, _ = s.counters.UpdateOne(ctx, byID(sess.UserID), bson.D{{Key: "$max", Value: bson.D{{Key: "seq", Value: seq}}}})
	}
	sess.ID = doc.ID

	if seq <= int64(maxPerUser) {
		return nil, nil
	}
	oldest := SessionID(sess.UserID, seq-int64(maxPerUser))
	inserted, err := s.revoke(ctx, oldest, uid, auth.ReasonSessionLimit, sess.CreatedAt, sess.ExpiresAt)
	if err != nil {
		return nil, err
	}
	if !inserted {
		return nil, nil
	}
	return []string{oldest}, nil
}

// nextSeq increments the user's sign-in counter and returns its new value.
func (s *Store) nextSeq(ctx context.Context, userID string) (int64, error) {
	opts := options.FindOneAndUpdate().SetUpsert(true).SetReturnDocument(options.After)
	inc := bson.D{{Key: "$inc", Value: bson.D{{Key: "seq", Value: int64(1)}}}}
	var c counterDoc
	err := s.counters.FindOneAndUpdate(ctx, byID(userID), inc, opts).Decode(&c)
	if isDuplicate(err) {
		// Two first sign-ins raced to create the counter; it exists now.
		err = s.counters.FindOneAndUpdate(ctx, byID(userID), inc, opts).Decode(&c)
	}
	if err != nil {
		return 0, mapErr(err)
	}
	return c.Seq, nil
}

// SessionRevoked reports whether a revocation of the session is recorded.
func (s *Store) SessionRevoked(ctx context.Context, sessionID string) (bool, error) {
	return s.exists(ctx, s.revocations, sessionID)
}

// RevokeSession records the revocation. It is an insert, so no concurrent
// write can undo it; revoking twice keeps the first record.
func (s *Store) RevokeSession(ctx context.Context, sessionID, userID, reason string, at, keepUntil time.Time) error {
	uid, err := bson.ObjectIDFromHex(userID)
	if err != nil {
		return fmt.Errorf("revoking session: bad user id %q", userID)
	}
	_, err = s.revoke(ctx, sessionID, uid, reason, at, keepUntil)
	return err
}

func (s *Store) revoke(ctx context.Context, sessionID string, uid bson.ObjectID, reason string, at, keepUntil time.Time) (bool, error) {
	_, err := s.revocations.InsertOne(ctx, revocationDoc{
		SessionID: sessionID,
		UserID:    uid,
		Reason:    reason,
		RevokedAt: at,
		ExpiresAt: keepUntil,
	})
	switch {
	case err == nil:
		return true, nil
	case isDuplicate(err):
		return false, nil
	default:
		return false, mapErr(err)
	}
}

// SessionByID returns a session, or auth.ErrNotFound.
func (s *Store) SessionByID(ctx context.Context, id string) (*auth.Session, error) {
	var d sessionDoc
	if err := s.sessions.FindOne(ctx, byID(id)).Decode(&d); err != nil {
		return nil, mapErr(err)
	}
	return d.toAuth(), nil
}

// TouchSession moves the session's last_used_at forward. It is an update,
// but nothing else updates session documents (revocations are inserts of
// their own), so a lost update only loses a timestamp.
func (s *Store) TouchSession(ctx context.Context, sessionID string, at time.Time) error {
	_, err := s.sessions.UpdateOne(ctx, byID(sessionID), bson.D{{Key: "$max", Value: bson.D{{Key: "last_used_at", Value: at}}}})
	return mapErr(err)
}

// LiveSessions returns the user's sessions that are neither revoked nor past
// their lifetime, newest first. It reaches them by _id: the user's sign-in
// counter gives the newest number n (probing past it when it lags), and only
// sessions n-maxPerUser+1 … n can be live, since each sign-in revokes the
// one maxPerUser numbers before it.
func (s *Store) LiveSessions(ctx context.Context, userID string, maxPerUser int) ([]*auth.Session, error) {
	if _, err := bson.ObjectIDFromHex(userID); err != nil {
		return nil, auth.ErrNotFound
	}
	var c counterDoc
	switch err := s.counters.FindOne(ctx, byID(userID)).Decode(&c); {
	case errors.Is(err, mongo.ErrNoDocuments):
		return nil, nil
	case err != nil:
		return nil, mapErr(err)
	}
	// The counter is a hint: look past it for sessions it missed.
	newest := c.Seq
	for range maxSeqProbes {
		ok, err := s.exists(ctx, s.sessions, SessionID(userID, newest+1))
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		newest++
	}
	now := s.now().UTC()
	var live []*auth.Session
	for n := newest; n >= 1 && n > newest-int64(maxPerUser); n-- {
		var d sessionDoc
		err := s.sessions.FindOne(ctx, byID(SessionID(userID, n))).Decode(&d)
		if errors.Is(err, mongo.ErrNoDocuments) {
			continue // swept, or a number a crashed sign-in never used
		}
		if err != nil {
			return nil, mapErr(err)
		}
		if !d.ExpiresAt.After(now) {
			continue
		}
		revoked, err := s.SessionRevoked(ctx, d.ID)
		if err != nil {
			return nil, err
		}
		if !revoked {
			live = append(live, d.toAuth())
		}
	}
	return live, nil
}
