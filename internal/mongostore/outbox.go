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

	"github.com/gqlauth/gqlauth/internal/email"
)

// The outbox. FerretDB reads a whole collection for any filter but
// {_id: value}, so nothing here queries: every document is reached by an _id
// the reader can compute.
//
//   - An entry (one delivery attempt of one e-mail) lives in the time bucket
//     of its due time: _id "<bucket>.<k>", bucket = due Unix seconds / 5,
//     and k = 0, 1, … taken by unique insert. A bucket is read as
//     <bucket>.0, .1, … up to the first missing id.
//   - An hour marker ("h.<hour>" in the marks) is inserted before the first
//     entry of an hour, so a reader skips an empty hour with one read.
//   - A reader walks the buckets from a cursor ("cursor" in the marks): the
//     first bucket that may still hold an unresolved entry. The cursor is a
//     hint shared by the instances (a lost or late update only makes a
//     reader look at buckets again); it passes a bucket only when every
//     entry in it is resolved and the bucket closed outboxSettle ago, and a
//     writer that finds the cursor past its bucket (its clock behind the
//     reader's) queues the entry again where the reader will see it.
//   - Who makes an attempt is decided by a unique insert of a claim
//     ("<e-mail id>.<attempt>.<generation>"), valid for email.Lease; when the
//     holder does not record an outcome in time, the next generation may be
//     claimed. The outcome is one insert ("<e-mail id>.<attempt>"), which
//     resolves the attempt wherever its entry is; a retry is a new entry.
const (
	outboxBucket = 5 * time.Second
	// outboxSettle is how long after a bucket closes the reader waits
	// before passing it: longer than an insert takes to land.
	outboxSettle = 10 * time.Second
	// outboxRetention keeps an e-mail's records past its last attempt.
	outboxRetention = email.GiveUpAfter + 2*time.Hour
	bucketsPerHour  = int64(time.Hour / outboxBucket)
	maxBucketProbes = 10_000
)

type outboxDoc struct {
	ID          string    `bson:"_id"`
	MailID      string    `bson:"mail_id"`
	Kind        string    `bson:"kind"`
	To          string    `bson:"to"`
	Name        string    `bson:"name"`
	Email       string    `bson:"email"`
	NewEmail    string    `bson:"new_email,omitempty"`
	Link        string    `bson:"link,omitempty"`
	ExpiresIn   int64     `bson:"expires_in_s"`
	Deferred    bool      `bson:"deferred,omitempty"`
	Attempt     int       `bson:"attempt"`
	FirstQueued time.Time `bson:"first_queued_at"`
	Due         time.Time `bson:"due"`
	ExpiresAt   time.Time `bson:"expires_at"`
}

func (d *outboxDoc) entry() email.Entry {
	return email.Entry{
		Key: d.ID,
		Message: email.Message{ID: d.MailID, Kind: email.Kind(d.Kind), To: d.To, Name: d.Name, Email: d.Email,
			NewEmail: d.NewEmail, Link: d.Link, ExpiresIn: time.Duration(d.ExpiresIn) * time.Second, Deferred: d.Deferred},
		Attempt: d.Attempt, FirstQueuedAt: d.FirstQueued, Due: d.Due,
	}
}

// markDoc is an hour marker, the cursor or the outbox's latest count.
type markDoc struct {
	ID        string        `bson:"_id"`
	Bucket    int64         `bson:"bucket,omitempty"`
	Pending   int           `bson:"pending,omitempty"`
	Oldest    time.Duration `bson:"oldest,omitempty"`
	At        time.Time     `bson:"at"`
	ExpiresAt *time.Time    `bson:"expires_at,omitempty"`
}

type claimDoc struct {
	ID        string    `bson:"_id"`
	At        time.Time `bson:"at"`
	ExpiresAt time.Time `bson:"expires_at"`
}

type outcomeDoc struct {
	ID        string    `bson:"_id"`
	Outcome   string    `bson:"outcome"`
	At        time.Time `bson:"at"`
	ExpiresAt time.Time `bson:"expires_at"`
}

const (
	markCursor = "cursor"
	markState  = "state"
)

// outboxState is this process's memory of the outbox: the hours it has
// marked, where it last found a free number in a bucket, the cursor, and
// the e-mails it queued since the latest count.
type outboxState struct {
	mu       sync.Mutex
	marked   map[int64]bool
	nextK    map[int64]int
	cursor   int64
	sinceCnt int
	// countAt is the time of the count sinceCnt adds to: a newer count, by
	// any instance, includes what this one queued before it. Roughly: an
	// e-mail queued while that count walked past its bucket is in neither,
	// and instances' clocks differ, so the bound (MaxPending) is a soft
	// one, good to the e-mails of a few seconds.
	countAt time.Time
	bad     map[string]bool // documents that are not entries, logged once
}

// badOnce runs log the first time this process meets the bad document id.
func (o *outboxState) badOnce(id string, log func()) {
	o.mu.Lock()
	if o.bad == nil || len(o.bad) > 1000 {
		o.bad = map[string]bool{}
	}
	seen := o.bad[id]
	o.bad[id] = true
	o.mu.Unlock()
	if !seen {
		log()
	}
}

// sinceCount returns how many e-mails this process queued since the count
// m, forgetting those queued before it.
func (o *outboxState) sinceCount(m markDoc) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	if m.At.After(o.countAt) {
		o.countAt, o.sinceCnt = m.At, 0
	}
	return o.sinceCnt
}

func bucketOf(t time.Time) int64 { return t.Unix() / int64(outboxBucket/time.Second) }

func bucketStart(b int64) time.Time { return time.Unix(b*int64(outboxBucket/time.Second), 0) }

func entryID(b int64, k int) string { return strconv.FormatInt(b, 10) + "." + strconv.Itoa(k) }

func hourMark(b int64) string { return "h." + strconv.FormatInt(b/bucketsPerHour, 10) }

func attemptKey(e email.Entry) string { return e.ID + "." + strconv.Itoa(e.Attempt) }

var _ email.OutboxStore = (*Store)(nil)

// Enqueue stores e in the bucket of its due time.
func (s *Store) Enqueue(ctx context.Context, e email.Entry) error {
	if e.Attempt == 1 {
		pending, err := s.outboxCount(ctx)
		if err != nil {
			return err
		}
		if pending >= s.outboxMax {
			return email.ErrOutboxFull
		}
	}
	if err := s.insertEntry(ctx, e); err != nil {
		return err
	}
	if e.Attempt == 1 {
		s.outboxMem.mu.Lock()
		s.outboxMem.sinceCnt++
		s.outboxMem.mu.Unlock()
	}
	return nil
}

func (s *Store) insertEntry(ctx context.Context, e email.Entry) error {
	b := bucketOf(e.Due)
	if err := s.markHour(ctx, b); err != nil {
		return err
	}
	d := outboxDoc{
		MailID: e.ID, Kind: string(e.Kind), To: e.To, Name: e.Name, Email: e.Email, NewEmail: e.NewEmail, Link: e.Link,
		ExpiresIn: int64(e.ExpiresIn / time.Second), Deferred: e.Deferred, Attempt: e.Attempt, FirstQueued: e.FirstQueuedAt.UTC(), Due: e.Due.UTC(),
		// By due time, not first queueing: the entries of a bucket then
		// expire together (a bucket is read up to its first missing
		// number, so one swept before the others would hide them), and
		// only once every one of them is past GiveUpAfter. Its outcome,
		// recorded at or after Due, outlives it.
		ExpiresAt: e.Due.UTC().Add(outboxRetention),
	}
	s.outboxMem.mu.Lock()
	k := s.outboxMem.nextK[b]
	s.outboxMem.mu.Unlock()
	inserted := false
	for range maxBucketProbes {
		d.ID = entryID(b, k)
		_, err := s.outbox.InsertOne(ctx, d)
		if err == nil {
			inserted = true
			break
		}
		if !isDuplicate(err) {
			return mapErr(err)
		}
		k++
	}
	if !inserted {
		return fmt.Errorf("outbox: bucket %d holds %d entries", b, maxBucketProbes)
	}
	s.outboxMem.mu.Lock()
	if len(s.outboxMem.nextK) > 64 {
		clear(s.outboxMem.nextK)
	}
	s.outboxMem.nextK[b] = k + 1
	s.outboxMem.mu.Unlock()
	// A reader whose clock is ahead of ours may have passed this bucket
	// already: queue the attempt again where it will be seen (the outcome
	// record, keyed by the attempt, keeps it from being sent twice).
	cur, err := s.readCursor(ctx)
	if err == nil && cur > b {
		e.Due = bucketStart(cur).Add(outboxBucket)
		s.log.DebugContext(ctx, "outbox cursor already past the entry's bucket; queued again", "email_id", e.ID)
		return s.insertEntry(ctx, e)
	}
	return nil
}

// markHour inserts the hour's marker, once per hour per process.
func (s *Store) markHour(ctx context.Context, b int64) error {
	h := b / bucketsPerHour
	s.outboxMem.mu.Lock()
	done := s.outboxMem.marked[h]
	s.outboxMem.mu.Unlock()
	if done {
		return nil
	}
	exp := bucketStart((h + 1) * bucketsPerHour).Add(outboxRetention)
	_, err := s.outboxMarks.InsertOne(ctx, markDoc{ID: hourMark(b), At: s.now().UTC(), ExpiresAt: &exp})
	if err != nil && !isDuplicate(err) {
		return mapErr(err)
	}
	s.outboxMem.mu.Lock()
	if len(s.outboxMem.marked) > 64 {
		clear(s.outboxMem.marked)
	}
	s.outboxMem.marked[h] = true
	s.outboxMem.mu.Unlock()
	return nil
}

func (s *Store) readCursor(ctx context.Context) (int64, error) {
	var m markDoc
	err := decode(s.outboxMarks.FindOne(ctx, byID(markCursor)), &m)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return 0, nil
	}
	if err != nil {
		return 0, mapErr(err)
	}
	return m.Bucket, nil
}

// hourMarked reads the hour's marker.
func (s *Store) hourMarked(ctx context.Context, b int64) (bool, error) {
	return s.exists(ctx, s.outboxMarks, hourMark(b))
}

// resolved reports whether the attempt has an outcome.
func (s *Store) resolved(ctx context.Context, e email.Entry) (bool, error) {
	return s.exists(ctx, s.outboxDone, attemptKey(e))
}

// bucketEntries reads a bucket's entries: <b>.0, <b>.1, … to the first gap.
// A document that does not decode as an entry (edited by hand, written by
// another version) keeps its number but is passed over, and logged once:
// one bad document must not stop the outbox.
func (s *Store) bucketEntries(ctx context.Context, b int64) ([]email.Entry, error) {
	var out []email.Entry
	for k := range maxBucketProbes {
		id := entryID(b, k)
		raw, err := s.outbox.FindOne(ctx, byID(id)).Raw()
		if errors.Is(err, mongo.ErrNoDocuments) {
			return out, nil
		}
		if err != nil {
			return nil, mapErr(err)
		}
		var d outboxDoc
		if err := bson.Unmarshal(raw, &d); err != nil {
			s.outboxMem.badOnce(id, func() {
				s.log.ErrorContext(ctx, "an outbox document that is not an entry is passed over", "id", id, "err", err.Error())
			})
			continue
		}
		out = append(out, d.entry())
	}
	return out, nil
}

// walk visits the buckets from the cursor to last, skipping unmarked
// hours, and calls visit with each unresolved entry; it returns the first
// bucket that may still need a visit (the new cursor).
func (s *Store) walk(ctx context.Context, from, last int64, now time.Time, visit func(email.Entry)) (int64, error) {
	cursor := from
	pinned := false // an unresolved entry, or an open bucket, holds the cursor
	for b := from; b <= last; {
		if b == from || b%bucketsPerHour == 0 {
			marked, err := s.hourMarked(ctx, b)
			if err != nil {
				return cursor, err
			}
			if !marked {
				next := (b/bucketsPerHour + 1) * bucketsPerHour
				if !pinned && bucketStart(next).Add(outboxSettle).Before(now) {
					cursor = next
				} else if !pinned {
					// The current hour has no entry yet; one may come, with a
					// lagging clock, in a bucket before now.
					cursor = max(cursor, bucketOf(now.Add(-outboxSettle)))
					pinned = true
				}
				b = next
				continue
			}
		}
		entries, err := s.bucketEntries(ctx, b)
		if err != nil {
			return cursor, err
		}
		open := false
		for _, e := range entries {
			done, err := s.resolved(ctx, e)
			if err != nil {
				return cursor, err
			}
			if !done {
				open = true
				visit(e)
			}
		}
		if !open && !pinned && bucketStart(b+1).Add(outboxSettle).Before(now) {
			cursor = b + 1
		} else {
			pinned = true
		}
		b++
	}
	return cursor, nil
}

// startCursor is where a reader starts: the shared cursor, or this
// process's if it is further, or a day back on a new outbox.
func (s *Store) startCursor(ctx context.Context, now time.Time) (int64, error) {
	shared, err := s.readCursor(ctx)
	if err != nil {
		return 0, err
	}
	s.outboxMem.mu.Lock()
	defer s.outboxMem.mu.Unlock()
	c := max(shared, s.outboxMem.cursor)
	if c == 0 {
		c = bucketOf(now.Add(-outboxRetention))
	}
	return c, nil
}

// DueEntries walks the buckets from the cursor to now and returns the
// unresolved entries due, moving the cursor past the buckets it resolved.
func (s *Store) DueEntries(ctx context.Context, now time.Time) ([]email.Entry, error) {
	from, err := s.startCursor(ctx, now)
	if err != nil {
		return nil, err
	}
	var due []email.Entry
	cursor, err := s.walk(ctx, from, bucketOf(now), now, func(e email.Entry) {
		if !e.Due.After(now) {
			due = append(due, e)
		}
	})
	if cursor > from {
		s.outboxMem.mu.Lock()
		s.outboxMem.cursor = max(s.outboxMem.cursor, cursor)
		s.outboxMem.mu.Unlock()
		m := markDoc{ID: markCursor, Bucket: cursor, At: now.UTC()}
		if _, err := s.outboxMarks.ReplaceOne(ctx, byID(markCursor), m, options.Replace().SetUpsert(true)); err != nil && !isDuplicate(err) {
			s.log.DebugContext(ctx, "outbox cursor not saved", "err", err.Error())
		}
	}
	return due, err
}

// ClaimEntry inserts the attempt's claim; when a claim exists whose lease
// ran out without an outcome, it claims the next generation.
func (s *Store) ClaimEntry(ctx context.Context, e email.Entry, now time.Time) (bool, error) {
	if done, err := s.resolved(ctx, e); err != nil || done {
		return false, err
	}
	for gen := 1; gen <= 100; gen++ {
		id := attemptKey(e) + "." + strconv.Itoa(gen)
		first, err := insertFirst(ctx, s.outboxClaims, claimDoc{ID: id, At: now.UTC(), ExpiresAt: now.UTC().Add(outboxRetention)})
		if first || err != nil {
			return first, err
		}
		var c claimDoc
		if err := decode(s.outboxClaims.FindOne(ctx, byID(id)), &c); err != nil {
			if errors.Is(err, mongo.ErrNoDocuments) {
				continue
			}
			return false, mapErr(err)
		}
		if now.Sub(c.At) < email.Lease {
			return false, nil
		}
	}
	// A hundred holders lapsed on this attempt (each crashed, or stalled,
	// mid-send): resolve it as dropped rather than let it be claimed, and
	// fail, for ever.
	s.log.ErrorContext(ctx, "e-mail dropped: every claim on its attempt lapsed", "email_id", e.ID, "attempt", e.Attempt)
	return false, s.FinishEntry(ctx, e, email.OutcomeDropped, now)
}

// FinishEntry records the attempt's outcome.
func (s *Store) FinishEntry(ctx context.Context, e email.Entry, outcome string, at time.Time) error {
	_, err := insertFirst(ctx, s.outboxDone, outcomeDoc{ID: attemptKey(e), Outcome: outcome, At: at.UTC(), ExpiresAt: at.UTC().Add(outboxRetention)})
	return err
}

// outboxCount returns the outbox's latest count, as a worker took it, with
// what this process queued since.
func (s *Store) outboxCount(ctx context.Context) (int, error) {
	var m markDoc
	err := decode(s.outboxMarks.FindOne(ctx, byID(markState)), &m)
	if err != nil && !errors.Is(err, mongo.ErrNoDocuments) {
		return 0, mapErr(err)
	}
	return m.Pending + s.outboxMem.sinceCount(m), nil
}

// OutboxStats returns the outbox's latest count. The count is taken by
// walking from the cursor to MaxBackoff ahead (every retry is due within
// it), at most every outboxCountEvery; in between it is read from the
// marks, with what this process queued since.
func (s *Store) OutboxStats(ctx context.Context, now time.Time) (int, time.Duration, error) {
	var m markDoc
	err := decode(s.outboxMarks.FindOne(ctx, byID(markState)), &m)
	if err != nil && !errors.Is(err, mongo.ErrNoDocuments) {
		return 0, 0, mapErr(err)
	}
	if err == nil && now.Sub(m.At) < outboxCountEvery {
		s.outboxMem.sinceCount(m)
		return m.Pending, m.Oldest, nil
	}
	from, err := s.startCursor(ctx, now)
	if err != nil {
		return 0, 0, err
	}
	pending, oldest := 0, time.Duration(0)
	seen := map[string]bool{}
	_, err = s.walk(ctx, from, bucketOf(now.Add(email.MaxBackoff+outboxSettle)), now, func(e email.Entry) {
		if seen[e.ID] {
			return
		}
		seen[e.ID] = true
		pending++
		oldest = max(oldest, now.Sub(e.FirstQueuedAt))
	})
	if err != nil {
		return 0, 0, err
	}
	m = markDoc{ID: markState, Pending: pending, Oldest: oldest, At: now.UTC()}
	s.outboxMem.sinceCount(m)
	if _, err := s.outboxMarks.ReplaceOne(ctx, byID(markState), m, options.Replace().SetUpsert(true)); err != nil && !isDuplicate(err) {
		s.log.DebugContext(ctx, "outbox count not saved", "err", err.Error())
	}
	return pending, oldest, nil
}

// outboxCountEvery is how often the outbox is counted.
const outboxCountEvery = 10 * time.Second
