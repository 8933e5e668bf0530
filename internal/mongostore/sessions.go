package mongostore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/gqlauth/gqlauth/internal/auth"
)

// Session numbering. A user's n-th sign-in creates the session
// "<user id>.<n>"; the _id index gives each number to one session. The
// per-user counter document holds two hints:
//
//   - seq, the latest number handed out: CreateSession probes past it when
//     it lags (FerretDB loses concurrent increments), and look-ups probe
//     past it for sessions it missed;
//   - low, a floor: every number at or below it is closed, that is its
//     session is revoked or past its lifetime, or it holds a placeholder so
//     that no session can ever take it. Only sessions above low can be
//     live, so listing and revoking every session of a user reads the
//     numbers low+1 … newest by _id.
//
// A completed sign-in n closes every number in (low, n-cap] and then moves
// low up to n-cap, so a user keeps at most cap live sessions. A sign-in that
// stops half-way (a crash, a database timeout) leaves low where it was: its
// stray sessions stay above the floor, where listing and revoke-all still
// find them, until the next sign-in or the sweep closes them. Losing an
// update of low (FerretDB's updates are not atomic) only leaves the floor
// lower, which costs reads, never correctness: low is written only after the
// numbers below it were closed, and no session is ever inserted at or below
// it (a placeholder or session swept from below the floor leaves a hole
// that nothing fills).
//
// Counters written by an earlier release have no floor. Until the store
// migrates them (at start, in the background: migrateFloors), such a user
// is treated as that release did: only the cap's newest numbers are
// considered, and the floor is not written.

// Bounds of the numbering's look-ups.
const (
	// maxSeqProbes bounds how far CreateSession looks past a stale counter.
	maxSeqProbes = 1000
	// maxSeqGap is how many missing numbers in a row end the search for
	// the newest session: a sign-in that took a number and stopped before
	// inserting leaves a gap, and a lost increment can put the counter
	// below it. It exceeds the sign-ins of one user that can be under way
	// at once on an instance (bcrypt slots) several times over.
	maxSeqGap = 16
	// maxScanNumbers bounds how many numbers one listing reads below the
	// newest; the floor is normally about cap below it.
	maxScanNumbers = 1000
	// placeholderTTL is how long a placeholder keeps its number from
	// sessions. A sign-in inserts its session within a few database
	// timeouts of taking its number; a much older number is never taken.
	placeholderTTL = time.Hour
	// revocationMargin is how much longer a revocation is kept than its
	// session's own lifetime: more than the clock skew that token
	// verification tolerates (token.Leeway).
	revocationMargin = 5 * time.Minute
)

type sessionDoc struct {
	ID         string        `bson:"_id"` // "<user id>.<n>"
	UserID     bson.ObjectID `bson:"user_id"`
	Seq        int64         `bson:"seq"`
	CreatedAt  time.Time     `bson:"created_at"`
	LastUsedAt time.Time     `bson:"last_used_at"`
	ExpiresAt  time.Time     `bson:"expires_at"`
	UserAgent  string        `bson:"user_agent"`
	IP         string        `bson:"ip"`
	// Placeholder marks a number closed before any session took it.
	Placeholder bool `bson:"placeholder,omitempty"`
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

// counterDoc holds a user's numbering hints (see above). Low is nil in
// counters written before the floor existed; such a user's floor is found
// once by a query (legacyFloor).
type counterDoc struct {
	UserID string `bson:"_id"`
	Seq    int64  `bson:"seq"`
	Low    *int64 `bson:"low,omitempty"`
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
// the counter lags. It then closes the numbers that fall out of the
// per-user cap, so that the user keeps at most SessionsPerUser live
// sessions, the oldest revoked first.
//
// Returns the ids of sessions it revoked. When the session was inserted but
// the cap could not be applied, it returns the error with sess.ID set: the
// caller revokes the session it cannot hand out, and the next sign-in or
// the sweep applies the cap.
func (s *Store) CreateSession(ctx context.Context, sess *auth.Session) ([]string, error) {
	uid, err := bson.ObjectIDFromHex(sess.UserID)
	if err != nil {
		return nil, fmt.Errorf("creating session: bad user id %q", sess.UserID)
	}
	c, err := s.nextSeq(ctx, sess.UserID)
	if err != nil {
		return nil, err
	}
	floor, err := s.floor(ctx, c)
	if err != nil {
		return nil, err
	}
	// Never at or below the floor, whatever a lagging counter says.
	seq, err := s.insertSession(ctx, sess, uid, max(c.Seq, floor+1))
	if err != nil {
		return nil, err
	}
	if seq != c.Seq {
		// The counter lagged (lost increments): move it up so that the next
		// sign-in does not probe again. Losing this update is harmless too.
		_, _ = s.counters.UpdateOne(ctx, byID(sess.UserID), bson.D{{Key: "$max", Value: bson.D{{Key: "seq", Value: seq}}}})
	}
	revoked, err := s.applyCap(ctx, sess.UserID, uid, floor, c.Low != nil, seq, sess.CreatedAt)
	if err != nil {
		return nil, fmt.Errorf("applying the session cap: %w", err)
	}
	return revoked, nil
}

// insertSession inserts the session with the first free number from seq on
// (a taken or closed number is skipped), sets sess.ID and returns the
// number.
func (s *Store) insertSession(ctx context.Context, sess *auth.Session, uid bson.ObjectID, seq int64) (int64, error) {
	doc := sessionDoc{
		UserID:     uid,
		CreatedAt:  sess.CreatedAt,
		LastUsedAt: sess.CreatedAt,
		ExpiresAt:  sess.ExpiresAt,
		UserAgent:  sess.UserAgent,
		IP:         sess.IP,
	}
	var err error
	for n := seq; n < seq+maxSeqProbes; n++ {
		doc.ID, doc.Seq = SessionID(sess.UserID, n), n
		_, err = s.sessions.InsertOne(ctx, doc)
		if err == nil {
			sess.ID = doc.ID
			return n, nil
		}
		if !isDuplicate(err) {
			break
		}
	}
	return 0, mapErr(err)
}

// applyCap closes every number in (floor, newest-cap] and, when the
// counter has a floor of its own (write), raises it to newest-cap.
func (s *Store) applyCap(ctx context.Context, userID string, uid bson.ObjectID, floor int64, write bool, newest int64, at time.Time) ([]string, error) {
	top := newest - int64(s.perUser)
	var revoked []string
	for n := floor + 1; n <= top; n++ {
		id, err := s.closeNumber(ctx, userID, uid, n, at)
		if err != nil {
			return revoked, err
		}
		if id != "" {
			revoked = append(revoked, id)
		}
	}
	if write && top > floor {
		if _, err := s.counters.UpdateOne(ctx, byID(userID), bson.D{{Key: "$max", Value: bson.D{{Key: "low", Value: top}}}}); err != nil {
			return revoked, mapErr(err)
		}
	}
	return revoked, nil
}

// closeNumber makes sure the user's n-th session cannot be live: it revokes
// the session, or, when no session has the number, inserts a placeholder
// that keeps every future session from taking it. It returns the id of the
// session it revoked, or "".
func (s *Store) closeNumber(ctx context.Context, userID string, uid bson.ObjectID, n int64, at time.Time) (string, error) {
	id := SessionID(userID, n)
	for range 2 {
		var d sessionDoc
		err := decode(s.sessions.FindOne(ctx, byID(id)), &d)
		switch {
		case err == nil:
			if d.Placeholder || !d.ExpiresAt.After(at) {
				return "", nil
			}
			inserted, err := s.insertRevocation(ctx, id, uid, auth.ReasonSessionLimit, at, d.ExpiresAt)
			if err != nil || !inserted {
				return "", err
			}
			return id, nil
		case !errors.Is(err, mongo.ErrNoDocuments):
			return "", mapErr(err)
		}
		_, err = s.sessions.InsertOne(ctx, sessionDoc{
			ID: id, UserID: uid, Seq: n, CreatedAt: at, LastUsedAt: at,
			ExpiresAt: at.Add(placeholderTTL), Placeholder: true,
		})
		if err == nil {
			return "", nil
		}
		if !isDuplicate(err) {
			return "", mapErr(err)
		}
		// A late sign-in took the number just now: revoke its session.
	}
	return "", fmt.Errorf("closing session number %d: too much contention", n)
}

// floor returns the user's floor. A counter from an earlier release, not
// migrated yet (migrateFloors), gets that release's view: the numbers the
// cap kept, below the newest.
func (s *Store) floor(ctx context.Context, c counterDoc) (int64, error) {
	if c.Low != nil {
		return *c.Low, nil
	}
	newest, err := s.newestNumber(ctx, c.UserID, c.Seq)
	if err != nil {
		return 0, err
	}
	return max(newest-int64(s.perUser)-1, 0), nil
}

// sessionNumbersOnly projects what migrateFloors reads of a session.
var sessionNumbersOnly = options.Find().SetProjection(bson.D{
	{Key: "_id", Value: 1}, {Key: "user_id", Value: 1}, {Key: "seq", Value: 1},
	{Key: "expires_at", Value: 1}, {Key: "placeholder", Value: 1},
})

// migrateFloors gives the counters of an earlier release, which kept no
// floor, theirs. That release revoked the session the cap numbers back at
// each sign-in, so a sign-in that stopped half-way left a live session
// below the cap: those are revoked now, and the floor is set at the cap.
// Numbers below it without a session were taken long ago and are closed.
// It reads the sessions collection twice, streaming (the newest number of
// each user, then the strays), and goes on past a user it cannot migrate.
// It returns how many counters it migrated.
func (s *Store) migrateFloors(ctx context.Context) (int, error) {
	cur, err := s.counters.Find(ctx, bson.D{{Key: "low", Value: bson.D{{Key: "$exists", Value: false}}}})
	if err != nil {
		return 0, mapErr(err)
	}
	newest := map[bson.ObjectID]int64{}
	var counters []counterDoc
	if err := cur.All(ctx, &counters); err != nil {
		return 0, mapErr(err)
	}
	if len(counters) == 0 {
		return 0, nil
	}
	for _, c := range counters {
		if uid, err := bson.ObjectIDFromHex(c.UserID); err == nil {
			newest[uid] = c.Seq
		}
	}
	scan := func(each func(d *sessionDoc) error) error {
		cur, err := s.sessions.Find(ctx, bson.D{}, sessionNumbersOnly)
		if err != nil {
			return mapErr(err)
		}
		defer cur.Close(ctx)
		for cur.Next(ctx) {
			var d sessionDoc
			if err := bson.Unmarshal(cur.Current, &d); err != nil {
				return err
			}
			if _, legacy := newest[d.UserID]; legacy {
				if err := each(&d); err != nil {
					return err
				}
			}
		}
		return mapErr(cur.Err())
	}
	if err := scan(func(d *sessionDoc) error { newest[d.UserID] = max(newest[d.UserID], d.Seq); return nil }); err != nil {
		return 0, err
	}
	now := s.now().UTC()
	failed := map[bson.ObjectID]bool{}
	var errs []error
	err = scan(func(d *sessionDoc) error {
		top := newest[d.UserID] - int64(s.perUser)
		if d.Seq > top || d.Placeholder || !d.ExpiresAt.After(now) {
			return nil
		}
		if _, err := s.insertRevocation(ctx, d.ID, d.UserID, auth.ReasonSessionLimit, now, d.ExpiresAt); err != nil {
			failed[d.UserID] = true
			errs = append(errs, err)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	migrated := 0
	for uid, n := range newest {
		if failed[uid] {
			continue
		}
		if _, err := s.counters.UpdateOne(ctx, byID(uid.Hex()), bson.D{{Key: "$max", Value: bson.D{{Key: "low", Value: max(n-int64(s.perUser), 0)}}}}); err != nil {
			errs = append(errs, mapErr(err))
			continue
		}
		migrated++
	}
	return migrated, errors.Join(errs...)
}

// nextSeq increments the user's sign-in counter and returns it as updated.
// A new counter starts with the floor at 0.
func (s *Store) nextSeq(ctx context.Context, userID string) (counterDoc, error) {
	opts := options.FindOneAndUpdate().SetUpsert(true).SetReturnDocument(options.After)
	update := bson.D{
		{Key: "$inc", Value: bson.D{{Key: "seq", Value: int64(1)}}},
		{Key: "$setOnInsert", Value: bson.D{{Key: "low", Value: int64(0)}}},
	}
	var c counterDoc
	err := decode(s.counters.FindOneAndUpdate(ctx, byID(userID), update, opts), &c)
	if isDuplicate(err) {
		// Two first sign-ins raced to create the counter; it exists now.
		err = decode(s.counters.FindOneAndUpdate(ctx, byID(userID), update, opts), &c)
	}
	if err != nil {
		return counterDoc{}, mapErr(err)
	}
	return c, nil
}

// newestNumber returns the highest session number in use, probing past the
// counter's hint and over short gaps.
func (s *Store) newestNumber(ctx context.Context, userID string, hint int64) (int64, error) {
	newest := hint
	for n, gap := hint+1, 0; gap < maxSeqGap && n <= hint+maxSeqProbes; n++ {
		ok, err := s.exists(ctx, s.sessions, SessionID(userID, n))
		if err != nil {
			return 0, err
		}
		if ok {
			newest, gap = n, 0
		} else {
			gap++
		}
	}
	return newest, nil
}

// SessionRevoked reports whether a revocation of the session is recorded.
func (s *Store) SessionRevoked(ctx context.Context, sessionID string) (bool, error) {
	return s.exists(ctx, s.revocations, sessionID)
}

// RevokeSession records the revocation, kept until the session's own
// expiry (it reads the session to learn it). It is an insert, so no
// concurrent write can undo it; it returns false when the session was
// already revoked.
func (s *Store) RevokeSession(ctx context.Context, sessionID, userID, reason string, at time.Time) (bool, error) {
	uid, err := bson.ObjectIDFromHex(userID)
	if err != nil {
		return false, fmt.Errorf("revoking session: bad user id %q", userID)
	}
	expires := at // a session that is gone has no token that still verifies
	var d sessionDoc
	switch err := decode(s.sessions.FindOne(ctx, byID(sessionID)), &d); {
	case err == nil:
		expires = d.ExpiresAt
	case !errors.Is(err, mongo.ErrNoDocuments):
		return false, mapErr(err)
	}
	return s.insertRevocation(ctx, sessionID, uid, reason, at, expires)
}

// insertRevocation inserts a revocation kept until the session's expiry
// plus revocationMargin. It returns false when one was already recorded.
func (s *Store) insertRevocation(ctx context.Context, sessionID string, uid bson.ObjectID, reason string, at, sessionExpiresAt time.Time) (bool, error) {
	return insertFirst(ctx, s.revocations, revocationDoc{
		SessionID: sessionID,
		UserID:    uid,
		Reason:    reason,
		RevokedAt: at,
		ExpiresAt: maxTime(sessionExpiresAt, at).Add(revocationMargin),
	})
}

// SessionByID returns a session, or auth.ErrNotFound.
func (s *Store) SessionByID(ctx context.Context, id string) (*auth.Session, error) {
	var d sessionDoc
	if err := decode(s.sessions.FindOne(ctx, byID(id)), &d); err != nil {
		return nil, mapErr(err)
	}
	if d.Placeholder {
		return nil, auth.ErrNotFound
	}
	return d.toAuth(), nil
}

// TouchSession records that the session was used at at. The write is
// behind the caller, off the path that answers a refresh: at most once a
// minute per session, within about a second of being due (touchInterval),
// so last_used_at is at most a minute stale, and a crash may lose that
// minute. It is an update, but nothing else updates session documents
// (revocations are inserts of their own), so a lost update only loses a
// timestamp.
func (s *Store) TouchSession(_ context.Context, sessionID string, at time.Time) error {
	s.touches.note(sessionID, at)
	return nil
}

// How often touches are written: each session at most once a minute,
// checked every second.
const (
	touchEvery    = time.Minute
	touchInterval = time.Second
	// maxTouches bounds the sessions whose touches are remembered; beyond
	// it a touch is dropped (it is bookkeeping).
	maxTouches = 100_000
)

// touches is the write-behind of TouchSession.
type touches struct {
	mu      sync.Mutex
	pending map[string]time.Time // latest use not written yet
	written map[string]time.Time // when each session was last written
}

func (t *touches) note(sid string, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.pending == nil {
		t.pending, t.written = map[string]time.Time{}, map[string]time.Time{}
	}
	if len(t.pending) >= maxTouches {
		return
	}
	if at.After(t.pending[sid]) {
		t.pending[sid] = at
	}
}

// due takes the touches to write now: a session's latest use once a minute
// has passed since its last write (all of them when flushing), and forgets
// sessions written more than a minute before now. The minute is counted on
// the clock, not between uses: a use that came soon after a write, and no
// other after it, is written a minute later, not kept waiting for the next.
func (t *touches) due(now time.Time, flush bool) map[string]time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[string]time.Time{}
	for sid, at := range t.pending {
		if last, ok := t.written[sid]; flush || !ok || now.Sub(last) >= touchEvery {
			out[sid] = at
			t.written[sid] = now
			delete(t.pending, sid)
		}
	}
	for sid, last := range t.written {
		if _, waiting := t.pending[sid]; !waiting && now.Sub(last) > touchEvery {
			delete(t.written, sid)
		}
	}
	return out
}

// writeTouches writes the due touches; a failure is logged and the touch
// dropped (it is bookkeeping).
func (s *Store) writeTouches(ctx context.Context, flush bool) {
	for sid, at := range s.touches.due(s.now(), flush) {
		wctx, cancel := context.WithTimeout(ctx, s.timeout)
		_, err := s.sessions.UpdateOne(wctx, byID(sid), bson.D{{Key: "$max", Value: bson.D{{Key: "last_used_at", Value: at.UTC()}}}})
		cancel()
		if err != nil {
			s.log.DebugContext(ctx, "session last-used time not written", "session_id", sid, "err", err.Error())
		}
	}
}

// runTouches writes touches every touchInterval until ctx ends, then
// writes what is left.
func (s *Store) runTouches(ctx context.Context) {
	tick := time.NewTicker(touchInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			// Closing: write what is left, within one database timeout.
			flush, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeout)
			s.writeTouches(flush, true)
			cancel()
			return
		case <-tick.C:
			s.writeTouches(ctx, false)
		}
	}
}

// LiveSessions returns the user's sessions that are neither revoked nor past
// their lifetime, newest first. It reaches them by _id: the numbers above
// the user's floor, up to the newest (see the numbering above).
func (s *Store) LiveSessions(ctx context.Context, userID string) ([]*auth.Session, error) {
	return s.liveSessions(ctx, userID, s.now().UTC())
}

func (s *Store) liveSessions(ctx context.Context, userID string, now time.Time) ([]*auth.Session, error) {
	if _, err := bson.ObjectIDFromHex(userID); err != nil {
		return nil, auth.ErrNotFound
	}
	var c counterDoc
	switch err := decode(s.counters.FindOne(ctx, byID(userID)), &c); {
	case errors.Is(err, mongo.ErrNoDocuments):
		return nil, nil
	case err != nil:
		return nil, mapErr(err)
	}
	c.UserID = userID
	floor, err := s.floor(ctx, c)
	if err != nil {
		return nil, err
	}
	newest, err := s.newestNumber(ctx, userID, c.Seq)
	if err != nil {
		return nil, err
	}
	var live []*auth.Session
	for n := newest; n > floor && n > newest-maxScanNumbers; n-- {
		var d sessionDoc
		err := decode(s.sessions.FindOne(ctx, byID(SessionID(userID, n))), &d)
		if errors.Is(err, mongo.ErrNoDocuments) {
			continue // swept, or a number an interrupted sign-in never used
		}
		if err != nil {
			return nil, mapErr(err)
		}
		if d.Placeholder || !d.ExpiresAt.After(now) {
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

// RevokeUserSessions revokes every live session of the user except keep
// ("" keeps none), wherever its number lies above the floor, and returns
// the ids it revoked. Each revocation is kept until its session's expiry.
func (s *Store) RevokeUserSessions(ctx context.Context, userID, keep, reason string, at time.Time) ([]string, error) {
	uid, err := bson.ObjectIDFromHex(userID)
	if err != nil {
		return nil, auth.ErrNotFound
	}
	live, err := s.liveSessions(ctx, userID, at)
	if err != nil {
		return nil, err
	}
	var revoked []string
	for _, l := range live {
		if l.ID == keep {
			continue
		}
		inserted, err := s.insertRevocation(ctx, l.ID, uid, reason, at, l.ExpiresAt)
		if err != nil {
			return revoked, err
		}
		if inserted {
			revoked = append(revoked, l.ID)
		}
	}
	return revoked, nil
}

// repairCaps applies the session cap of every user whose floor lags more
// than the cap behind the newest number: what a sign-in that stopped
// half-way left (a lagging counter can hide such a user until it signs in
// again, which applies the cap itself). It reads the counters collection
// once, and migrates counters from an earlier release first.
func (s *Store) repairCaps(ctx context.Context) (int, error) {
	if _, err := s.migrateFloors(ctx); err != nil {
		s.log.WarnContext(ctx, "some session counters were not migrated; the next sweep retries", "err", err.Error())
	}
	cur, err := s.counters.Find(ctx, bson.D{{Key: "low", Value: bson.D{{Key: "$exists", Value: true}}}})
	if err != nil {
		return 0, mapErr(err)
	}
	defer cur.Close(ctx)
	now := s.now().UTC()
	repaired := 0
	var errs []error
	for cur.Next(ctx) {
		var c counterDoc
		if err := bson.Unmarshal(cur.Current, &c); err != nil {
			return repaired, err
		}
		if c.Low == nil || c.Seq-*c.Low <= int64(s.perUser) {
			continue
		}
		uid, err := bson.ObjectIDFromHex(c.UserID)
		if err != nil {
			continue
		}
		newest, err := s.newestNumber(ctx, c.UserID, c.Seq)
		if err == nil {
			var revoked []string
			revoked, err = s.applyCap(ctx, c.UserID, uid, *c.Low, true, newest, now)
			if len(revoked) > 0 {
				s.log.InfoContext(ctx, "sweep applied the session cap left by an interrupted sign-in", "user_id", c.UserID, "revoked", len(revoked))
			}
		}
		if err != nil {
			errs = append(errs, err) // the others are repaired all the same
			continue
		}
		repaired++
	}
	if err := cur.Err(); err != nil {
		errs = append(errs, mapErr(err))
	}
	return repaired, errors.Join(errs...)
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
