package mongostore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/gqlauth/gqlauth/internal/auth"
	"github.com/gqlauth/gqlauth/internal/embedded"
	"github.com/gqlauth/gqlauth/internal/mongostore"
	"github.com/gqlauth/gqlauth/internal/storetest"
)

// mustOpenStore opens a store on a fresh embedded database (storetest), as
// the server does.
func mustOpenStore(tb testing.TB) (*mongostore.Store, *storetest.DB) {
	tb.Helper()
	return mustOpenStoreCap(tb, 0)
}

// mustOpenStoreCap is mustOpenStore with a per-user session cap (0: the
// default).
func mustOpenStoreCap(tb testing.TB, perUser int) (*mongostore.Store, *storetest.DB) {
	tb.Helper()
	db := storetest.OpenDB(tb, mongostore.Options{SessionsPerUser: perUser})
	return db.Store, db
}

func newUser(email string) *auth.User {
	now := time.Now().UTC().Truncate(time.Millisecond)
	return &auth.User{Name: "Ann", Email: email, Role: auth.RoleUser, Verified: true, PasswordHash: "$2a$04$x", CreatedAt: now, UpdatedAt: now}
}

func mustCreateUser(tb testing.TB, s *mongostore.Store, email string) *auth.User {
	tb.Helper()
	u := newUser(email)
	if err := s.CreateUser(context.Background(), u); err != nil {
		tb.Fatal(err)
	}
	return u
}

func TestCreateUser(t *testing.T) {
	s, _ := mustOpenStore(t)
	ctx := context.Background()

	t.Run("OK", func(t *testing.T) {
		u := mustCreateUser(t, s, "ann@example.com")
		if _, err := bson.ObjectIDFromHex(u.ID); err != nil {
			t.Fatalf("ID %q is not an ObjectID: %v", u.ID, err)
		}
		byID, err := s.UserByID(ctx, u.ID)
		if err != nil || byID.Email != "ann@example.com" || byID.PasswordHash != u.PasswordHash || !byID.CreatedAt.Equal(u.CreatedAt) {
			t.Fatalf("UserByID = %+v, %v", byID, err)
		}
		byEmail, err := s.UserByEmail(ctx, "ann@example.com")
		if err != nil || byEmail.ID != u.ID {
			t.Fatalf("UserByEmail = %+v, %v", byEmail, err)
		}
	})
	t.Run("ErrDuplicate", func(t *testing.T) {
		mustCreateUser(t, s, "bob@example.com")
		err := s.CreateUser(ctx, newUser("bob@example.com"))
		if !errors.Is(err, auth.ErrEmailTaken) || auth.ErrorCode(err) != auth.CodeConflict {
			t.Fatalf("err = %v, want ErrEmailTaken", err)
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		for _, id := range []string{bson.NewObjectID().Hex(), "not-hex", ""} {
			if _, err := s.UserByID(ctx, id); !errors.Is(err, auth.ErrNotFound) {
				t.Errorf("UserByID(%q) err = %v", id, err)
			}
		}
		if _, err := s.UserByEmail(ctx, "nobody@example.com"); !errors.Is(err, auth.ErrNotFound) {
			t.Errorf("UserByEmail err = %v", err)
		}
	})
}

// TestCreateUserConcurrent registers one e-mail 20 times at once: the
// claim's _id index lets exactly one through.
func TestCreateUserConcurrent(t *testing.T) {
	s, _ := mustOpenStore(t)
	ctx := context.Background()
	const n = 20
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = s.CreateUser(ctx, newUser("race@example.com")) })
	}
	wg.Wait()
	var ok, conflict int
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, auth.ErrEmailTaken):
			conflict++
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	if ok != 1 || conflict != n-1 {
		t.Fatalf("ok=%d conflict=%d, want 1 and %d", ok, conflict, n-1)
	}
	count, err := mongostore.DB(s).Collection(mongostore.CollUsers).CountDocuments(ctx, bson.D{{Key: "email", Value: "race@example.com"}})
	if err != nil || count != 1 {
		t.Fatalf("users with the e-mail = %d (%v), want 1", count, err)
	}
}

// TestOrphanClaim covers a registration that crashed between claiming the
// e-mail and inserting the user.
func TestOrphanClaim(t *testing.T) {
	s, _ := mustOpenStore(t)
	ctx := context.Background()
	emails := mongostore.DB(s).Collection(mongostore.CollUserEmails)
	insertClaim := func(email string, age time.Duration) {
		_, err := emails.InsertOne(ctx, bson.D{
			{Key: "_id", Value: email},
			{Key: "user_id", Value: bson.NewObjectID()},
			{Key: "created_at", Value: time.Now().Add(-age)},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Run("OKOldOrphanTakenOver", func(t *testing.T) {
		insertClaim("old@example.com", 2*time.Minute)
		u := mustCreateUser(t, s, "old@example.com")
		got, err := s.UserByEmail(ctx, "old@example.com")
		if err != nil || got.ID != u.ID {
			t.Fatalf("UserByEmail = %+v, %v", got, err)
		}
	})
	t.Run("ErrYoungClaimIsInFlight", func(t *testing.T) {
		insertClaim("young@example.com", 0)
		if err := s.CreateUser(ctx, newUser("young@example.com")); !errors.Is(err, auth.ErrEmailTaken) {
			t.Fatalf("err = %v, want ErrEmailTaken", err)
		}
	})
	t.Run("OKLookupRepairsClaim", func(t *testing.T) {
		u := mustCreateUser(t, s, "repair@example.com")
		// Point the claim at a user that does not exist.
		_, err := emails.UpdateOne(ctx, bson.D{{Key: "_id", Value: "repair@example.com"}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "user_id", Value: bson.NewObjectID()}}}})
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.UserByEmail(ctx, "repair@example.com")
		if err != nil || got.ID != u.ID {
			t.Fatalf("UserByEmail = %+v, %v", got, err)
		}
		var claim struct {
			UserID bson.ObjectID `bson:"user_id"`
		}
		if err := emails.FindOne(ctx, bson.D{{Key: "_id", Value: "repair@example.com"}}).Decode(&claim); err != nil || claim.UserID.Hex() != u.ID {
			t.Fatalf("claim not repaired: %v %v", claim.UserID.Hex(), err)
		}
	})
}

func newSession(u *auth.User) *auth.Session {
	now := time.Now().UTC().Truncate(time.Millisecond)
	return &auth.Session{UserID: u.ID, CreatedAt: now, ExpiresAt: now.Add(time.Hour), UserAgent: "test", IP: "127.0.0.1"}
}

func TestCreateSessionCapsLiveSessions(t *testing.T) {
	s, db := mustOpenStoreCap(t, 3)
	ctx := context.Background()
	u := mustCreateUser(t, s, "cap@example.com")
	var ids []string
	for i := 1; i <= 5; i++ {
		sess := newSession(u)
		revoked, err := s.CreateSession(ctx, sess)
		if err != nil {
			t.Fatal(err)
		}
		if want := mongostore.SessionID(u.ID, int64(i)); sess.ID != want {
			t.Fatalf("session %d id = %s, want %s", i, sess.ID, want)
		}
		if i <= 3 && len(revoked) != 0 || i > 3 && !slices.Equal(revoked, []string{ids[i-4]}) {
			t.Fatalf("sign-in %d revoked %v", i, revoked)
		}
		ids = append(ids, sess.ID)
	}
	live, err := liveIDs(db, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(live)
	if !slices.Equal(live, ids[2:]) {
		t.Fatalf("live = %v, want %v", live, ids[2:])
	}
}

// TestCreateSessionConcurrent signs one user in 20 times at once. On
// FerretDB the counter's increments can be lost; the _id index still gives
// every session its own number.
func TestCreateSessionConcurrent(t *testing.T) {
	s, db := mustOpenStore(t)
	ctx := context.Background()
	u := mustCreateUser(t, s, "many@example.com")
	const n = 20
	ids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			sess := newSession(u)
			_, errs[i] = s.CreateSession(ctx, sess)
			ids[i] = sess.ID
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	slices.Sort(ids)
	if len(slices.Compact(slices.Clone(ids))) != n {
		t.Fatalf("session ids are not distinct: %v", ids)
	}
	live, err := liveIDs(db, u.ID)
	if err != nil || len(live) != n {
		t.Fatalf("live = %d (%v), want %d", len(live), err, n)
	}
}

// TestCreateSessionCounterBehind simulates lost increments: the counter is
// set back, and the next session still gets the next free number.
func TestCreateSessionCounterBehind(t *testing.T) {
	s, _ := mustOpenStore(t)
	ctx := context.Background()
	u := mustCreateUser(t, s, "behind@example.com")
	for range 3 {
		if _, err := s.CreateSession(ctx, newSession(u)); err != nil {
			t.Fatal(err)
		}
	}
	counters := mongostore.DB(s).Collection(mongostore.CollCounters)
	if _, err := counters.UpdateOne(ctx, bson.D{{Key: "_id", Value: u.ID}}, bson.D{{Key: "$set", Value: bson.D{{Key: "seq", Value: 1}}}}); err != nil {
		t.Fatal(err)
	}
	sess := newSession(u)
	if _, err := s.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	if want := mongostore.SessionID(u.ID, 4); sess.ID != want {
		t.Fatalf("id = %s, want %s", sess.ID, want)
	}
	next := newSession(u)
	if _, err := s.CreateSession(ctx, next); err != nil {
		t.Fatal(err)
	}
	if want := mongostore.SessionID(u.ID, 5); next.ID != want {
		t.Fatalf("after repair id = %s, want %s", next.ID, want)
	}
}

func TestRevokeSession(t *testing.T) {
	s, _ := mustOpenStore(t)
	ctx := context.Background()
	u := mustCreateUser(t, s, "rev@example.com")
	a, b := newSession(u), newSession(u)
	for _, sess := range []*auth.Session{a, b} {
		if _, err := s.CreateSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	for range 2 { // revoking twice is not an error
		if _, err := s.RevokeSession(ctx, a.ID, u.ID, auth.ReasonLogout, now); err != nil {
			t.Fatal(err)
		}
	}
	if r, err := s.SessionRevoked(ctx, a.ID); err != nil || !r {
		t.Fatalf("a revoked = %v, %v", r, err)
	}
	if r, err := s.SessionRevoked(ctx, b.ID); err != nil || r {
		t.Fatalf("b revoked = %v, %v", r, err)
	}
}

// TestSpendRefreshTokenOnce spends one token from 20 goroutines: exactly one
// is first, and all others learn the first spend's time.
func TestSpendRefreshTokenOnce(t *testing.T) {
	s, _ := mustOpenStore(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	tok := &auth.RefreshToken{Hash: auth.HashToken("a token"), SessionID: "s", UserID: bson.NewObjectID().Hex(), IssuedAt: now, ExpiresAt: now.Add(time.Hour), SessionExpiresAt: now.Add(2 * time.Hour)}
	if err := s.SaveRefreshToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	got, err := s.RefreshTokenByHash(ctx, tok.Hash)
	if err != nil || got.SessionID != "s" || got.UserID != tok.UserID || !got.SessionExpiresAt.Equal(tok.SessionExpiresAt) {
		t.Fatalf("RefreshTokenByHash = %+v, %v", got, err)
	}
	const n = 20
	firsts := make([]bool, n)
	times := make([]time.Time, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			var spend auth.Spend
			spend, errs[i] = s.SpendRefreshToken(ctx, tok, now.Add(time.Duration(i)*time.Millisecond))
			firsts[i], times[i] = spend.First, spend.FirstSpentAt
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	winner := slices.Index(firsts, true)
	if winner < 0 || slices.Index(firsts[winner+1:], true) >= 0 {
		t.Fatalf("firsts = %v, want exactly one", firsts)
	}
	for i, tm := range times {
		if !tm.Equal(times[winner]) {
			t.Fatalf("caller %d saw first spend at %v, want %v", i, tm, times[winner])
		}
	}
}

func TestSweep(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	s, _ := mustOpenStore(t)
	ctx := context.Background()
	u := mustCreateUser(t, s, "sweep@example.com")
	expired := &auth.Session{UserID: u.ID, CreatedAt: now.Add(-2 * time.Hour), ExpiresAt: now.Add(-time.Hour)}
	live := newSession(u)
	for _, sess := range []*auth.Session{expired, live} {
		if _, err := s.CreateSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.RevokeSession(ctx, expired.ID, u.ID, auth.ReasonLogout, now.Add(-2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RevokeSession(ctx, live.ID, u.ID, auth.ReasonLogout, now); err != nil {
		t.Fatal(err)
	}
	old := &auth.RefreshToken{Hash: "old", SessionID: expired.ID, UserID: u.ID, IssuedAt: now.Add(-2 * time.Hour), ExpiresAt: now.Add(-time.Hour), SessionExpiresAt: now}
	cur := &auth.RefreshToken{Hash: "cur", SessionID: live.ID, UserID: u.ID, IssuedAt: now, ExpiresAt: now.Add(time.Hour), SessionExpiresAt: now.Add(time.Hour)}
	for _, tok := range []*auth.RefreshToken{old, cur} {
		if err := s.SaveRefreshToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
		if _, err := s.SpendRefreshToken(ctx, tok, now); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.Sweep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != 4 {
		t.Fatalf("swept %d documents, want 4 (session, revocation, token, use)", n)
	}
	if _, err := s.SessionByID(ctx, expired.ID); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("expired session still there: %v", err)
	}
	if _, err := s.SessionByID(ctx, live.ID); err != nil {
		t.Errorf("live session swept: %v", err)
	}
	if r, _ := s.SessionRevoked(ctx, live.ID); !r {
		t.Error("a needed revocation was swept")
	}
	if _, err := s.RefreshTokenByHash(ctx, "old"); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("expired token still there: %v", err)
	}
	if spend, _ := s.SpendRefreshToken(ctx, cur, now); spend.First {
		t.Error("the live token's use record was swept")
	}
}

// TestUnavailable stops the database: calls fail fast with ErrUnavailable.
func TestUnavailable(t *testing.T) {
	db, err := embedded.Start(embedded.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	s, err := mongostore.Open(mongostore.Options{URI: db.URI(), Database: "test", Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	ctx := context.Background()
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	db.Stop()
	start := time.Now()
	_, err = s.UserByID(ctx, bson.NewObjectID().Hex())
	if !errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v with a 300ms timeout", d)
	}
	if !mongostore.IsDown(s.Ping(ctx)) {
		t.Fatal("a stopped database should count as down")
	}
}

func ExampleSessionID() {
	fmt.Println(mongostore.SessionID("6560c0ffee0000000000beef", 3))
	// Output: 6560c0ffee0000000000beef.3
}

// TestAdoptTutorialUsers stores a user as the tutorial's server did (no
// e-mail claim, role "user", and none of this server's migration records):
// after EnsureSchema it is found by e-mail.
func TestAdoptTutorialUsers(t *testing.T) {
	s, _ := mustOpenStore(t)
	ctx := context.Background()
	if err := mongostore.DB(s).Collection(mongostore.CollMigrations).Drop(ctx); err != nil {
		t.Fatal(err)
	}
	id := bson.NewObjectID()
	_, err := mongostore.DB(s).Collection(mongostore.CollUsers).InsertOne(ctx, bson.D{
		{Key: "_id", Value: id}, {Key: "name", Value: "Tut"}, {Key: "email", Value: "tutorial@example.com"},
		{Key: "password", Value: "$2b$12$abcdefghijklmnopqrstuu"}, {Key: "role", Value: "user"}, {Key: "verified", Value: true},
		{Key: "photo", Value: "default.png"}, {Key: "created_at", Value: time.Now()}, {Key: "updated_at", Value: time.Now()},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.UserByEmail(ctx, "tutorial@example.com"); !errors.Is(err, auth.ErrNotFound) {
		t.Fatalf("before adoption: %v", err)
	}
	for range 2 { // idempotent
		if err := s.EnsureSchema(ctx); err != nil {
			t.Fatal(err)
		}
	}
	u, err := s.UserByEmail(ctx, "tutorial@example.com")
	if err != nil || u.ID != id.Hex() || u.Role != auth.RoleUser {
		t.Fatalf("after adoption: %+v, %v", u, err)
	}
	if err := s.CreateUser(ctx, newUser("tutorial@example.com")); !errors.Is(err, auth.ErrEmailTaken) {
		t.Fatalf("registering the adopted e-mail: %v", err)
	}
	// Recorded as done: later starts do not read the users again.
	n, err := mongostore.DB(s).Collection(mongostore.CollMigrations).CountDocuments(ctx, bson.D{{Key: "_id", Value: mongostore.MigrationEmailClaims}})
	if err != nil || n != 1 {
		t.Fatalf("migration record: %d, %v", n, err)
	}
}

func TestLoginAttempts(t *testing.T) {
	s, _ := mustOpenStore(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	email := "attempts@example.com"

	cur, err := s.LoginAttempts(ctx, email)
	if err != nil || cur.Seq != 0 || len(cur.Failures) != 0 {
		t.Fatalf("empty: %+v, %v", cur, err)
	}
	first := auth.LoginAttempts{Seq: 1, Failures: []time.Time{now}}
	if _, taken, err := s.AppendLoginAttempts(ctx, email, first, now); err != nil || taken {
		t.Fatalf("append 1: taken=%v err=%v", taken, err)
	}
	// Another caller who also saw Seq 0 loses, and is shown record 1.
	other := auth.LoginAttempts{Seq: 1, Failures: []time.Time{now.Add(time.Second)}}
	got, taken, err := s.AppendLoginAttempts(ctx, email, other, now)
	if err != nil || !taken || got.Seq != 1 || len(got.Failures) != 1 || !got.Failures[0].Equal(now) {
		t.Fatalf("losing append: %+v taken=%v err=%v", got, taken, err)
	}
	second := auth.LoginAttempts{Seq: 2, Failures: []time.Time{now, now.Add(time.Second)}, Level: 1}
	if _, taken, err := s.AppendLoginAttempts(ctx, email, second, now); err != nil || taken {
		t.Fatalf("append 2: taken=%v err=%v", taken, err)
	}
	// A head copy left behind (a lost update) is caught up by look-ups.
	heads := mongostore.DB(s).Collection(mongostore.CollAttemptHead)
	if _, err := heads.UpdateOne(ctx, bson.D{{Key: "_id", Value: email}}, bson.D{{Key: "$set", Value: bson.D{{Key: "seq", Value: 0}, {Key: "failures", Value: bson.A{}}, {Key: "level", Value: 0}}}}); err != nil {
		t.Fatal(err)
	}
	cur, err = s.LoginAttempts(ctx, email)
	if err != nil || cur.Seq != 2 || cur.Level != 1 || len(cur.Failures) != 2 {
		t.Fatalf("latest: %+v, %v", cur, err)
	}
}

// liveIDs returns the live sessions a whole-collection scan finds,
// independently of LiveSessions.
func liveIDs(db *storetest.DB, userID string) ([]string, error) {
	return db.LiveSessionsByScan(context.Background(), userID)
}

// TestLiveSessionsByID checks the _id-based listing against a scan: after
// more sign-ins than the cap, with a lagging counter, and with revocations.
func TestLiveSessionsByID(t *testing.T) {
	s, db := mustOpenStoreCap(t, 5)
	ctx := context.Background()
	u := mustCreateUser(t, s, "window@example.com")
	for range 8 {
		if _, err := s.CreateSession(ctx, newSession(u)); err != nil {
			t.Fatal(err)
		}
	}
	// Revoke one of the newest, and leave the counter behind.
	now := time.Now()
	if _, err := s.RevokeSession(ctx, mongostore.SessionID(u.ID, 7), u.ID, auth.ReasonLogout, now); err != nil {
		t.Fatal(err)
	}
	if _, err := mongostore.DB(s).Collection(mongostore.CollCounters).UpdateOne(ctx, bson.D{{Key: "_id", Value: u.ID}}, bson.D{{Key: "$set", Value: bson.D{{Key: "seq", Value: 6}}}}); err != nil {
		t.Fatal(err)
	}
	live, err := s.LiveSessions(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range live {
		got = append(got, l.ID)
	}
	want, err := liveIDs(db, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(want)
	if !slices.Equal(got, []string{mongostore.SessionID(u.ID, 8), mongostore.SessionID(u.ID, 6), mongostore.SessionID(u.ID, 5), mongostore.SessionID(u.ID, 4)}) || len(want) != len(got) {
		t.Fatalf("LiveSessions = %v, scan = %v", got, want)
	}
	if none, err := s.LiveSessions(ctx, newUserID()); err != nil || len(none) != 0 {
		t.Fatalf("a user without sessions: %v, %v", none, err)
	}
}

func newUserID() string { return bson.NewObjectID().Hex() }

// liveSet returns LiveSessions' ids and the scan's, both sorted.
func liveSet(t *testing.T, s *mongostore.Store, db *storetest.DB, userID string) (listed, scanned []string) {
	t.Helper()
	live, err := s.LiveSessions(context.Background(), userID)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range live {
		listed = append(listed, l.ID)
	}
	scanned, err = liveIDs(db, userID)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(listed)
	slices.Sort(scanned)
	return listed, scanned
}

// TestInterruptedSignIns covers sign-ins that stop half-way (finding 1 of
// the security review): a number taken and never used, and a session
// inserted whose cap was never applied. No live session may escape the
// listing, revoke-all or the cap.
func TestInterruptedSignIns(t *testing.T) {
	ctx := context.Background()
	sign := func(t *testing.T, s *mongostore.Store, u *auth.User) string {
		t.Helper()
		sess := newSession(u)
		if _, err := s.CreateSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
		return sess.ID
	}

	t.Run("SkippedNumber", func(t *testing.T) {
		s, db := mustOpenStoreCap(t, 3)
		u := mustCreateUser(t, s, "skip@example.com")
		stray := sign(t, s, u) // the session sign-in 4 should have revoked
		sign(t, s, u)
		sign(t, s, u)
		if err := mongostore.SkipSessionNumber(ctx, s, u.ID); err != nil { // sign-in 4 stops
			t.Fatal(err)
		}
		for range 3 {
			sign(t, s, u)
		}
		listed, scanned := liveSet(t, s, db, u.ID)
		if !slices.Equal(listed, scanned) || len(scanned) != 3 || slices.Contains(scanned, stray) {
			t.Fatalf("listed %v, scanned %v: want the same 3, without %s", listed, scanned, stray)
		}
	})

	t.Run("CapNotApplied", func(t *testing.T) {
		s, db := mustOpenStoreCap(t, 3)
		u := mustCreateUser(t, s, "nocap@example.com")
		stray := sign(t, s, u)
		sign(t, s, u)
		sign(t, s, u)
		last := newSession(u)
		if err := mongostore.CreateSessionWithoutCap(ctx, s, last); err != nil {
			t.Fatal(err)
		}
		// Four live sessions now; the listing shows every one.
		listed, scanned := liveSet(t, s, db, u.ID)
		if !slices.Equal(listed, scanned) || len(scanned) != 4 {
			t.Fatalf("listed %v, scanned %v: want the same 4", listed, scanned)
		}
		// Revoke-all reaches the stray session too.
		revoked, err := s.RevokeUserSessions(ctx, u.ID, last.ID, auth.ReasonLogoutAll, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if len(revoked) != 3 || !slices.Contains(revoked, stray) {
			t.Fatalf("revoked %v, want the 3 others, %s among them", revoked, stray)
		}
		if listed, scanned := liveSet(t, s, db, u.ID); !slices.Equal(scanned, []string{last.ID}) || !slices.Equal(listed, scanned) {
			t.Fatalf("after revoke-all: listed %v, scanned %v, want only %s", listed, scanned, last.ID)
		}
	})

	t.Run("SweepAppliesCap", func(t *testing.T) {
		s, db := mustOpenStoreCap(t, 3)
		u := mustCreateUser(t, s, "sweepcap@example.com")
		stray := sign(t, s, u)
		sign(t, s, u)
		sign(t, s, u)
		if err := mongostore.CreateSessionWithoutCap(ctx, s, newSession(u)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		listed, scanned := liveSet(t, s, db, u.ID)
		if !slices.Equal(listed, scanned) || len(scanned) != 3 || slices.Contains(scanned, stray) {
			t.Fatalf("after the sweep: listed %v, scanned %v: want the same 3, without %s", listed, scanned, stray)
		}
	})

	t.Run("LateSignInAfterItsNumberWasClosed", func(t *testing.T) {
		// A sign-in takes number 4 and is slow; four others overtake it,
		// and the cap closes 4. When the slow one inserts, it must not
		// become a live session below the floor.
		s, db := mustOpenStoreCap(t, 3)
		u := mustCreateUser(t, s, "late@example.com")
		for range 3 {
			sign(t, s, u)
		}
		if err := mongostore.SkipSessionNumber(ctx, s, u.ID); err != nil {
			t.Fatal(err)
		}
		for range 4 {
			sign(t, s, u)
		}
		late := newSession(u)
		if err := mongostore.InsertSessionFrom(ctx, s, late, 4); err != nil {
			t.Fatal(err)
		}
		if late.ID == mongostore.SessionID(u.ID, 4) {
			t.Fatalf("the late sign-in took the closed number 4")
		}
		listed, scanned := liveSet(t, s, db, u.ID)
		if !slices.Equal(listed, scanned) || !slices.Contains(listed, late.ID) {
			t.Fatalf("listed %v, scanned %v, want both with %s", listed, scanned, late.ID)
		}
	})
}

// TestRevokeAllRacingWrites runs a revoke-all of a user with sessions left
// by interrupted sign-ins while the same user's document is written (a
// password change) and new sign-ins arrive: every session that existed
// before the revoke-all began is revoked.
func TestRevokeAllRacingWrites(t *testing.T) {
	s, db := mustOpenStoreCap(t, 10)
	ctx := context.Background()
	u := mustCreateUser(t, s, "racing@example.com")
	for i := range 30 {
		var err error
		switch {
		case i%7 == 3:
			err = mongostore.SkipSessionNumber(ctx, s, u.ID)
		case i%7 == 5 || i >= 27:
			err = mongostore.CreateSessionWithoutCap(ctx, s, newSession(u))
		default:
			_, err = s.CreateSession(ctx, newSession(u))
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	before, err := liveIDs(db, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(before) <= 10 {
		t.Fatalf("%d live sessions: the interrupted sign-ins left none beyond the cap", len(before))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for range 8 {
		wg.Go(func() {
			errs <- s.SetPassword(ctx, u.ID, "$2a$04$racing", time.Now().UTC())
		})
		wg.Go(func() {
			_, err := s.CreateSession(ctx, newSession(u))
			errs <- err
		})
	}
	wg.Go(func() {
		_, err := s.RevokeUserSessions(ctx, u.ID, "", auth.ReasonLogoutAll, time.Now())
		errs <- err
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range before {
		if revoked, err := s.SessionRevoked(ctx, id); err != nil || !revoked {
			t.Fatalf("session %s existed before the revoke-all and is not revoked (%v)", id, err)
		}
	}
	listed, scanned := liveSet(t, s, db, u.ID)
	if !slices.Equal(listed, scanned) {
		t.Fatalf("listed %v, scanned %v", listed, scanned)
	}
}

// TestWithdrawRefreshToken: a withdrawal and a spend of one token decide
// against each other; a withdrawn token is reported as such.
func TestWithdrawRefreshToken(t *testing.T) {
	s, _ := mustOpenStore(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	tok := func(name string) *auth.RefreshToken {
		return &auth.RefreshToken{Hash: auth.HashToken(name), SessionID: "s", UserID: newUserID(), ExpiresAt: now.Add(time.Hour)}
	}
	t.Run("WithdrawnThenSpent", func(t *testing.T) {
		a := tok("a")
		if ok, err := s.WithdrawRefreshToken(ctx, a, now); err != nil || !ok {
			t.Fatalf("withdraw = %v, %v", ok, err)
		}
		spend, err := s.SpendRefreshToken(ctx, a, now)
		if err != nil || spend.First || !spend.Withdrawn {
			t.Fatalf("spend after withdrawal = %+v, %v", spend, err)
		}
	})
	t.Run("SpentThenNotWithdrawn", func(t *testing.T) {
		b := tok("b")
		if spend, err := s.SpendRefreshToken(ctx, b, now); err != nil || !spend.First {
			t.Fatalf("spend = %+v, %v", spend, err)
		}
		if ok, err := s.WithdrawRefreshToken(ctx, b, now); err != nil || ok {
			t.Fatalf("withdraw after the spend = %v, %v", ok, err)
		}
	})
}

// TestNoSessionAtOrBelowTheFloor: a hole below the floor (a placeholder or
// an expired session the sweep deleted) is never filled, however far a
// lost update puts the counter back, so no live session hides below the
// floor (found by review).
func TestNoSessionAtOrBelowTheFloor(t *testing.T) {
	s, db := mustOpenStoreCap(t, 5)
	ctx := context.Background()
	u := mustCreateUser(t, s, "hole@example.com")
	for i := 1; i <= 10; i++ {
		var err error
		if i == 3 {
			err = mongostore.SkipSessionNumber(ctx, s, u.ID)
		} else {
			_, err = s.CreateSession(ctx, newSession(u))
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	// Number 3 holds a placeholder now; the sweep deletes it when it
	// expires, and the counter falls back.
	if err := mongostore.DeleteSession(ctx, s, mongostore.SessionID(u.ID, 3)); err != nil {
		t.Fatal(err)
	}
	if err := mongostore.SetCounter(ctx, s, u.ID, 2, false); err != nil {
		t.Fatal(err)
	}
	sess := newSession(u)
	if _, err := s.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	if sess.ID == mongostore.SessionID(u.ID, 3) {
		t.Fatalf("the new session took number 3, below the floor")
	}
	listed, scanned := liveSet(t, s, db, u.ID)
	if !slices.Equal(listed, scanned) || len(scanned) != 5 {
		t.Fatalf("listed %v, scanned %v: want the same 5", listed, scanned)
	}
}

// TestMigrateFloors: counters from an earlier release (no floor), one of
// them with a stray live session below the cap that the earlier release's
// interrupted sign-in left, get their floor; the stray is revoked.
func TestMigrateFloors(t *testing.T) {
	s, db := mustOpenStoreCap(t, 3)
	ctx := context.Background()
	u := mustCreateUser(t, s, "legacy@example.com")
	other := mustCreateUser(t, s, "legacy-small@example.com")
	stray := newSession(u)
	if _, err := s.CreateSession(ctx, stray); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := mongostore.CreateSessionWithoutCap(ctx, s, newSession(u)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.CreateSession(ctx, newSession(other)); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{u.ID, other.ID} {
		c := map[string]int64{u.ID: 4, other.ID: 1}[id]
		if err := mongostore.SetCounter(ctx, s, id, c, true); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := mongostore.MigrateFloors(ctx, s); err != nil || n != 2 {
		t.Fatalf("migrated %d counters (%v), want 2", n, err)
	}
	if revoked, _ := s.SessionRevoked(ctx, stray.ID); !revoked {
		t.Fatal("the stray session below the cap was not revoked")
	}
	for _, id := range []string{u.ID, other.ID} {
		listed, scanned := liveSet(t, s, db, id)
		if !slices.Equal(listed, scanned) {
			t.Fatalf("after the migration: listed %v, scanned %v", listed, scanned)
		}
	}
	if n, err := mongostore.MigrateFloors(ctx, s); err != nil || n != 0 {
		t.Fatalf("a second migration migrated %d (%v)", n, err)
	}
}

// TestUpdateUserAfterARefusedWrite: an update refused by the unique e-mail
// index (CONFLICT) leaves no claim behind, so the user's next update goes
// through at once rather than after the stale-claim wait of a minute.
func TestUpdateUserAfterARefusedWrite(t *testing.T) {
	s, _ := mustOpenStore(t)
	a, b := mustCreateUser(t, s, "first@example.com"), mustCreateUser(t, s, "second@example.com")
	_, err := s.UpdateUser(context.Background(), a.ID, func(u *auth.User) error {
		u.Email = b.Email
		return nil
	})
	if !errors.Is(err, auth.ErrEmailTaken) {
		t.Fatalf("taking another user's address: %v, want ErrEmailTaken", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := s.UpdateUser(ctx, a.ID, func(u *auth.User) error {
		u.Name = "Renamed"
		return nil
	})
	if err != nil || got.Name != "Renamed" || got.Email != a.Email {
		t.Fatalf("the next update: %+v, %v", got, err)
	}
}
