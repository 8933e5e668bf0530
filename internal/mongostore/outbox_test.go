package mongostore_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/gqlauth/gqlauth/internal/email"
	"github.com/gqlauth/gqlauth/internal/mongostore"
	"github.com/gqlauth/gqlauth/internal/storetest"
)

// twoOutboxes opens two stores (two instances) on one fresh database, with
// the outbox bounded to max.
func twoOutboxes(t *testing.T, max int) (a, b *mongostore.Store) {
	t.Helper()
	db := storetest.OpenDB(t, mongostore.Options{OutboxMax: max})
	other := storetest.Attach(t, mongostore.Options{URI: db.Embedded.URI(), Database: storetest.Database, OutboxMax: max})
	return db.Store, other.Store
}

func queue(t *testing.T, s *mongostore.Store, at time.Time, to string) error {
	t.Helper()
	return s.Enqueue(context.Background(), email.Entry{
		Message: email.Message{ID: email.NewID(), Kind: email.KindChangeNotice, To: to},
		Attempt: 1, FirstQueuedAt: at, Due: at,
	})
}

// deliverAll claims and finishes every entry due at now, as a worker does.
func deliverAll(t *testing.T, s *mongostore.Store, now time.Time) int {
	t.Helper()
	ctx := context.Background()
	entries, err := s.DueEntries(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if ok, err := s.ClaimEntry(ctx, e, now); err != nil || !ok {
			t.Fatalf("claim %s: %v %v", e.Key, ok, err)
		}
		if err := s.FinishEntry(ctx, e, email.OutcomeSent, now); err != nil {
			t.Fatal(err)
		}
	}
	return len(entries)
}

// TestOutboxBound: the outbox refuses new e-mails at its bound. An
// instance counts what it queued itself at once and what the others queued
// at the next count (at most outboxCountEvery later); once the waiting
// e-mails are delivered, every instance takes new ones again (an instance
// forgets what it queued before a newer count, whoever took it).
func TestOutboxBound(t *testing.T) {
	a, b := twoOutboxes(t, 3)
	ctx := context.Background()
	now := time.Now()
	for i := range 3 {
		if err := queue(t, a, now, "x@example.com"); err != nil {
			t.Fatalf("e-mail %d: %v", i+1, err)
		}
	}
	if err := queue(t, a, now, "x@example.com"); !errors.Is(err, email.ErrOutboxFull) {
		t.Fatalf("a 4th e-mail on the instance that queued 3: %v, want ErrOutboxFull", err)
	}
	// The other instance has not seen a count yet: the bound is approximate
	// by what it queued since.
	if err := queue(t, b, now, "x@example.com"); err != nil {
		t.Fatal(err)
	}
	if pending, _, err := a.OutboxStats(ctx, now); err != nil || pending != 4 {
		t.Fatalf("count: %d, %v", pending, err)
	}
	for name, s := range map[string]*mongostore.Store{"counting": a, "other": b} {
		if err := queue(t, s, now, "x@example.com"); !errors.Is(err, email.ErrOutboxFull) {
			t.Fatalf("the %s instance after the count: %v, want ErrOutboxFull", name, err)
		}
	}
	if n := deliverAll(t, a, now.Add(time.Second)); n != 4 {
		t.Fatalf("%d delivered, want 4", n)
	}
	later := now.Add(11 * time.Second)
	if pending, _, err := a.OutboxStats(ctx, later); err != nil || pending != 0 {
		t.Fatalf("count after delivery: %d, %v", pending, err)
	}
	for i, s := range []*mongostore.Store{b, b, b} {
		if err := queue(t, s, later, "x@example.com"); err != nil {
			t.Fatalf("e-mail %d after the outbox emptied: %v", i+1, err)
		}
	}
}

// TestOutboxClaimsOnce: two instances reading the outbox at once each claim
// an attempt only once between them; a claim whose holder records no
// outcome is taken over after the lease; a resolved attempt is not due
// again.
func TestOutboxClaimsOnce(t *testing.T) {
	a, b := twoOutboxes(t, 0)
	ctx := context.Background()
	now := time.Now()
	const n = 10
	for range n {
		if err := queue(t, a, now, "y@example.com"); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	claimed := map[string]int{}
	var wg sync.WaitGroup
	for _, s := range []*mongostore.Store{a, b, a, b} {
		wg.Go(func() {
			entries, err := s.DueEntries(ctx, now.Add(time.Second))
			if err != nil {
				t.Error(err)
				return
			}
			for _, e := range entries {
				if ok, err := s.ClaimEntry(ctx, e, now.Add(time.Second)); err != nil {
					t.Error(err)
				} else if ok {
					mu.Lock()
					claimed[e.ID]++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if len(claimed) != n {
		t.Fatalf("%d e-mails claimed, want %d", len(claimed), n)
	}
	for id, c := range claimed {
		if c != 1 {
			t.Fatalf("e-mail %s claimed %d times", id, c)
		}
	}
	// Nobody recorded an outcome: within the lease nobody else claims;
	// after it, one instance takes each attempt over.
	within := now.Add(email.Lease - time.Second)
	entries, err := b.DueEntries(ctx, within)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if ok, _ := b.ClaimEntry(ctx, e, within); ok {
			t.Fatalf("claimed %s within the holder's lease", e.ID)
		}
	}
	after := now.Add(email.Lease + 2*time.Second)
	if got := deliverAll(t, b, after); got != n {
		t.Fatalf("%d taken over after the lease, want %d", got, n)
	}
	if entries, err := a.DueEntries(ctx, after.Add(time.Second)); err != nil || len(entries) != 0 {
		t.Fatalf("%d entries still due after their outcomes, %v", len(entries), err)
	}
}

// TestOutboxSweepKeepsABucketWhole: a retry near its give-up time and a new
// e-mail share a bucket; after an outage of the workers longer than the
// retry's remaining life, the sweep at start must not remove the first
// entry of the bucket and so hide the new e-mail behind the gap.
func TestOutboxSweepKeepsABucketWhole(t *testing.T) {
	start := time.Now()
	clk := &struct {
		sync.Mutex
		t time.Time
	}{t: start}
	now := func() time.Time { clk.Lock(); defer clk.Unlock(); return clk.t }
	db := storetest.OpenDB(t, mongostore.Options{Now: now})
	s := db.Store
	ctx := context.Background()
	old := email.Entry{Message: email.Message{ID: email.NewID(), Kind: email.KindChangeNotice, To: "old@example.com"},
		Attempt: 30, FirstQueuedAt: start.Add(-email.GiveUpAfter + time.Hour), Due: start}
	fresh := email.Entry{Message: email.Message{ID: email.NewID(), Kind: email.KindChangeNotice, To: "new@example.com"},
		Attempt: 1, FirstQueuedAt: start, Due: start}
	for _, e := range []email.Entry{old, fresh} {
		if err := s.Enqueue(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	clk.Lock()
	clk.t = start.Add(4 * time.Hour)
	clk.Unlock()
	if _, err := s.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	entries, err := s.DueEntries(ctx, now())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, e := range entries {
		got[e.To] = true
	}
	if !got["new@example.com"] {
		t.Fatalf("the new e-mail is lost behind a swept entry: due %v", got)
	}
}

// TestOutboxPassesOverABadDocument: a document in the outbox that does not
// decode as an entry (a hand edit, another version) neither stops the
// outbox nor hides the entries after it in its bucket.
func TestOutboxPassesOverABadDocument(t *testing.T) {
	s, _ := mustOpenStore(t)
	ctx := context.Background()
	now := time.Now()
	if err := queue(t, s, now, "before@example.com"); err != nil {
		t.Fatal(err)
	}
	if err := mongostore.PlantOutboxDocument(ctx, s, now, 1, bson.D{{Key: "attempt", Value: "not a number"}}); err != nil {
		t.Fatal(err)
	}
	if err := queue(t, s, now, "after@example.com"); err != nil {
		t.Fatal(err)
	}
	entries, err := s.DueEntries(ctx, now.Add(time.Second))
	if err != nil {
		t.Fatalf("the outbox stopped at a bad document: %v", err)
	}
	got := map[string]bool{}
	for _, e := range entries {
		got[e.To] = true
	}
	if len(entries) != 2 || !got["before@example.com"] || !got["after@example.com"] {
		t.Fatalf("due %v, want the two entries around the bad document", got)
	}
}

// TestOutboxAttemptWhoseClaimsAllLapse: an attempt claimed a hundred times,
// each holder lapsing (crashed, stalled), is resolved as dropped instead of
// being claimed, and failing, for ever.
func TestOutboxAttemptWhoseClaimsAllLapse(t *testing.T) {
	s, _ := mustOpenStore(t)
	ctx := context.Background()
	now := time.Now()
	if err := queue(t, s, now, "poison@example.com"); err != nil {
		t.Fatal(err)
	}
	entries, err := s.DueEntries(ctx, now)
	if err != nil || len(entries) != 1 {
		t.Fatalf("%d due, %v", len(entries), err)
	}
	if ok, err := s.ClaimEntry(ctx, entries[0], now); !ok || err != nil {
		t.Fatalf("the first claim: %v %v", ok, err)
	}
	at := now.Add(email.Lease + time.Second)
	if ok, err := s.ClaimEntry(ctx, entries[0], at); !ok || err != nil {
		t.Fatalf("a claim after the first lapsed: %v %v", ok, err)
	}
	// 98 more holders lapsed after those two.
	at = at.Add(email.Lease + time.Second)
	if err := mongostore.PlantLapsedClaims(ctx, s, entries[0], 100, at); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.ClaimEntry(ctx, entries[0], at); ok || err != nil {
		t.Fatalf("the 101st claim: %v %v, want refused and the attempt resolved", ok, err)
	}
	if due, err := s.DueEntries(ctx, at); err != nil || len(due) != 0 {
		t.Fatalf("%d still due, %v", len(due), err)
	}
}
