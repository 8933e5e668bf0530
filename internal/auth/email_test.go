package auth_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gqlauth/gqlauth/internal/auth"
	"github.com/gqlauth/gqlauth/internal/authtest"
	"github.com/gqlauth/gqlauth/internal/email"
	"github.com/gqlauth/gqlauth/internal/mongostore"
	"github.com/gqlauth/gqlauth/internal/storetest"
)

// tokenOf returns the token of the newest queued e-mail of kind to addr.
func tokenOf(t *testing.T, f *authtest.Env, kind email.Kind, to string) string {
	t.Helper()
	var link string
	for _, e := range f.Queued(t) {
		if e.Kind == kind && e.To == to {
			link = e.Link
		}
	}
	_, tok, ok := strings.Cut(link, "#token=")
	if !ok || tok == "" {
		t.Fatalf("no %s e-mail to %s queued", kind, to)
	}
	return tok
}

// concurrently runs call(0)…call(n-1) at once and counts the answers by
// code ("ok" for none).
func concurrently(n int, call func(i int) error) map[string]int {
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[string]int{}
	for i := range n {
		wg.Go(func() {
			code := "ok"
			if err := call(i); err != nil {
				code = auth.ErrorCode(err)
			}
			mu.Lock()
			codes[code]++
			mu.Unlock()
		})
	}
	wg.Wait()
	return codes
}

func wantCode(t *testing.T, err error, code, field string) {
	t.Helper()
	if auth.ErrorCode(err) != code {
		t.Fatalf("got %v, want %s", err, code)
	}
	if field != "" {
		e, _ := err.(*auth.Error)
		if e == nil || e.Field != field {
			t.Fatalf("got %v, want field %s", err, field)
		}
	}
}

// TestPasswordResetFlow: the link resets once, signs every session out,
// verifies the address, and voids the other links; a bad password or an
// expired link leaves things as they were.
func TestPasswordResetFlow(t *testing.T) {
	f := authtest.New(t, authtest.Options{})
	ctx := context.Background()
	u, tokens := f.SignedIn(t, "reset@example.com")
	if err := f.Service.RequestPasswordReset(ctx, " Reset@Example.com "); err != nil {
		t.Fatal(err)
	}
	older := tokenOf(t, f, email.KindReset, "reset@example.com")
	f.Clock.Advance(61 * time.Second)
	if err := f.Service.RequestPasswordReset(ctx, "reset@example.com"); err != nil {
		t.Fatal(err)
	}
	tok := tokenOf(t, f, email.KindReset, "reset@example.com")
	if tok == older {
		t.Fatal("two requests gave one token")
	}

	wantCode(t, f.Service.ResetPassword(ctx, tok, "short"), auth.CodeBadUserInput, "newPassword")
	wantCode(t, f.Service.ResetPassword(ctx, "not-a-token", "new password 1"), auth.CodeBadUserInput, "token")
	if err := f.Service.ResetPassword(ctx, tok, "new password 1"); err != nil {
		t.Fatalf("reset after a refused password: %v", err)
	}
	wantCode(t, f.Service.ResetPassword(ctx, tok, "new password 2"), auth.CodeBadUserInput, "token")
	wantCode(t, f.Service.ResetPassword(ctx, older, "new password 3"), auth.CodeBadUserInput, "token")

	if _, err := f.Service.Authenticate(ctx, tokens.Access); auth.ErrorCode(err) != auth.CodeUnauthenticated {
		t.Fatalf("the access token of a session from before the reset: %v", err)
	}
	if _, _, err := f.Service.Refresh(ctx, tokens.Refresh); auth.ErrorCode(err) != auth.CodeUnauthenticated {
		t.Fatalf("the refresh token of a session from before the reset: %v", err)
	}
	if _, _, err := f.Service.Login(ctx, u.Email, authtest.Password, auth.Client{}); auth.ErrorCode(err) != auth.CodeUnauthenticated {
		t.Fatalf("the old password: %v", err)
	}
	if _, _, err := f.Service.Login(ctx, u.Email, "new password 1", auth.Client{}); err != nil {
		t.Fatalf("the new password: %v", err)
	}

	// Expiry, counted from the request.
	f.Clock.Advance(61 * time.Second)
	if err := f.Service.RequestPasswordReset(ctx, "reset@example.com"); err != nil {
		t.Fatal(err)
	}
	tok = tokenOf(t, f, email.KindReset, "reset@example.com")
	f.Clock.Advance(time.Hour)
	wantCode(t, f.Service.ResetPassword(ctx, tok, "new password 4"), auth.CodeBadUserInput, "token")
}

// TestResetUnverifiedAndThrottled: a reset verifies the address and clears
// the throttle of its failed logins.
func TestResetUnverifiedAndThrottled(t *testing.T) {
	f := authtest.New(t, authtest.Options{Config: func(c *auth.Config) { c.Email.VerificationRequired = true }})
	ctx := context.Background()
	in := auth.RegisterInput{Name: "Una", Email: "una@example.com", Password: authtest.Password, PasswordConfirm: authtest.Password}
	u, err := f.Service.Register(ctx, in)
	if err != nil || u.Verified {
		t.Fatalf("register: %v, verified %v", err, u != nil && u.Verified)
	}
	for range 5 {
		_, _, _ = f.Service.Login(ctx, u.Email, "wrong password", auth.Client{})
	}
	if _, _, err := f.Service.Login(ctx, u.Email, authtest.Password, auth.Client{}); auth.ErrorCode(err) != auth.CodeRateLimited {
		t.Fatalf("throttled login: %v", err)
	}
	if err := f.Service.RequestPasswordReset(ctx, u.Email); err != nil {
		t.Fatal(err)
	}
	if err := f.Service.ResetPassword(ctx, tokenOf(t, f, email.KindReset, u.Email), "brand new pass"); err != nil {
		t.Fatal(err)
	}
	got, _, err := f.Service.Login(ctx, u.Email, "brand new pass", auth.Client{})
	if err != nil || !got.Verified {
		t.Fatalf("login after reset: %v", err)
	}
}

// TestRequestsAnswerAlikeForUnknownAddresses: the same answer and the same
// store writes for a registered and an unknown address; only the e-mail is
// skipped. The limit then holds for both alike.
func TestRequestsAnswerAlikeForUnknownAddresses(t *testing.T) {
	f := authtest.New(t, authtest.Options{})
	ctx := context.Background()
	known, err := f.Service.Register(ctx, auth.RegisterInput{Name: "K", Email: "known@example.com", Password: authtest.Password, PasswordConfirm: authtest.Password})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.DB.SetVerified(ctx, known.ID, false); err != nil {
		t.Fatal(err)
	}
	for _, req := range []struct {
		name string
		do   func(string) error
	}{
		{"sendVerificationEmail", func(a string) error { return f.Service.SendVerificationEmail(ctx, a) }},
		{"requestPasswordReset", func(a string) error { return f.Service.RequestPasswordReset(ctx, a) }},
	} {
		var written [2]map[string]int64
		for i, addr := range []string{"known@example.com", "unknown@example.com"} {
			before := f.DB.Snapshot(t)
			if err := req.do(addr); err != nil {
				t.Fatalf("%s(%s): %v", req.name, addr, err)
			}
			after := f.DB.Snapshot(t)
			written[i] = map[string]int64{}
			for coll, n := range after {
				if n != before[coll] {
					written[i][coll] = n - before[coll]
				}
			}
			err := req.do(addr)
			wantCode(t, err, auth.CodeRateLimited, "")
			if e := err.(*auth.Error); e.RetryAfter < 59 || e.RetryAfter > 60 {
				t.Fatalf("%s: retryAfter %d, want 60", req.name, e.RetryAfter)
			}
		}
		if fmt.Sprint(written[0]) != fmt.Sprint(written[1]) || len(written[0]) == 0 {
			t.Fatalf("%s: records written: known %v, unknown %v", req.name, written[0], written[1])
		}
		wantCode(t, req.do("not an address"), auth.CodeBadUserInput, "email")
	}
	kinds := map[email.Kind]int{}
	for _, e := range f.Queued(t) {
		if e.To != "known@example.com" {
			t.Fatalf("an e-mail was queued to %s: %s", e.To, e.Kind)
		}
		kinds[e.Kind]++
	}
	if kinds[email.KindVerify] != 1 || kinds[email.KindReset] != 1 {
		t.Fatalf("queued %v, want one verification and one reset, to the known address", kinds)
	}
}

// TestEmailLimitPerHour: one a minute, five an hour, per kind and address.
func TestEmailLimitPerHour(t *testing.T) {
	f := authtest.New(t, authtest.Options{})
	ctx := context.Background()
	for i := range 5 {
		if err := f.Service.RequestPasswordReset(ctx, "hourly@example.com"); err != nil {
			t.Fatalf("request %d: %v", i+1, err)
		}
		f.Clock.Advance(61 * time.Second)
	}
	err := f.Service.RequestPasswordReset(ctx, "hourly@example.com")
	wantCode(t, err, auth.CodeRateLimited, "")
	// The first was 5×61 s ago: the next is allowed an hour after it.
	if e := err.(*auth.Error); e.RetryAfter < 3600-5*61-1 || e.RetryAfter > 3600-5*61+1 {
		t.Fatalf("retryAfter %d, want %d", e.RetryAfter, 3600-5*61)
	}
	if err := f.Service.SendVerificationEmail(ctx, "hourly@example.com"); err != nil {
		t.Fatalf("another kind is limited apart: %v", err)
	}
}

// TestEmailLimitAcrossInstances: 20 concurrent requests for one address,
// spread over two instances on one database, queue one e-mail; the others
// answer RATE_LIMITED (the limit is a unique insert in the store, not a
// count in either process).
func TestEmailLimitAcrossInstances(t *testing.T) {
	a := authtest.New(t, authtest.Options{})
	// The second instance: a store and a client of its own, on the same
	// database.
	other := storetest.Attach(t, mongostore.Options{URI: a.DB.Embedded.URI(), Database: storetest.Database, Now: a.Clock.Now})
	b := authtest.New(t, authtest.Options{On: a, Store: func(*mongostore.Store) auth.Store { return other.Store }})
	a.SignedIn(t, "shared@example.com")
	codes := concurrently(20, func(i int) error {
		return []*authtest.Env{a, b}[i%2].Service.RequestPasswordReset(context.Background(), "shared@example.com")
	})
	if codes["ok"] != 1 || codes[auth.CodeRateLimited] != 19 {
		t.Fatalf("answers by code: %v, want 1 accepted and 19 RATE_LIMITED", codes)
	}
	n := 0
	for _, e := range a.Queued(t) {
		if e.Kind == email.KindReset && e.To == "shared@example.com" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d reset e-mails queued, want 1", n)
	}
}

// TestVerificationRequired: register creates the user unverified and queues
// its link; login answers FORBIDDEN after the password check; the link
// verifies once.
func TestVerificationRequired(t *testing.T) {
	f := authtest.New(t, authtest.Options{Config: func(c *auth.Config) { c.Email.VerificationRequired = true }})
	ctx := context.Background()
	in := auth.RegisterInput{Name: "Vera <b>", Email: "vera@example.com", Password: authtest.Password, PasswordConfirm: authtest.Password}
	if _, err := f.Service.Register(ctx, in); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.Service.Login(ctx, in.Email, "wrong password", auth.Client{}); auth.ErrorCode(err) != auth.CodeUnauthenticated {
		t.Fatalf("wrong password of an unverified user: %v", err)
	}
	if _, _, err := f.Service.Login(ctx, in.Email, authtest.Password, auth.Client{}); auth.ErrorCode(err) != auth.CodeForbidden {
		t.Fatalf("unverified login: %v", err)
	}
	tok := tokenOf(t, f, email.KindVerify, in.Email)
	if err := f.Service.VerifyEmail(ctx, tok); err != nil {
		t.Fatal(err)
	}
	wantCode(t, f.Service.VerifyEmail(ctx, tok), auth.CodeBadUserInput, "token")
	if u, _, err := f.Service.Login(ctx, in.Email, authtest.Password, auth.Client{}); err != nil || !u.Verified {
		t.Fatalf("verified login: %v", err)
	}
}

// TestConcurrentUsesOfOneToken: of 20 concurrent uses of one link, one
// succeeds.
func TestConcurrentUsesOfOneToken(t *testing.T) {
	f := authtest.New(t, authtest.Options{Hashing: [3]int{4, 4, 64}})
	ctx := context.Background()
	f.SignedIn(t, "race@example.com")
	if err := f.Service.RequestPasswordReset(ctx, "race@example.com"); err != nil {
		t.Fatal(err)
	}
	tok := tokenOf(t, f, email.KindReset, "race@example.com")
	codes := concurrently(20, func(i int) error {
		return f.Service.ResetPassword(ctx, tok, "concurrent pass "+string(rune('a'+i)))
	})
	if codes["ok"] != 1 || codes[auth.CodeBadUserInput] != 19 {
		t.Fatalf("outcomes %v, want one ok and 19 BAD_USER_INPUT", codes)
	}
}

// TestEmailChangeFlow: the change asks for the password, notifies the old
// address at once, takes effect on the link, and voids what was sent to
// the old address; a newer request voids the older link; an address
// registered meanwhile answers CONFLICT and leaves the link usable.
func TestEmailChangeFlow(t *testing.T) {
	f := authtest.New(t, authtest.Options{})
	ctx := context.Background()
	u, tokens := f.SignedIn(t, "old@example.com")
	id, err := f.Service.Authenticate(ctx, tokens.Access)
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, f.Service.RequestEmailChange(ctx, id, "new@example.com", "wrong password"), auth.CodeBadUserInput, "currentPassword")
	wantCode(t, f.Service.RequestEmailChange(ctx, id, "OLD@example.com", authtest.Password), auth.CodeBadUserInput, "newEmail")
	wantCode(t, f.Service.RequestEmailChange(ctx, id, "bad address", authtest.Password), auth.CodeBadUserInput, "newEmail")
	if err := f.Service.RequestPasswordReset(ctx, "old@example.com"); err != nil {
		t.Fatal(err)
	}
	resetToOld := tokenOf(t, f, email.KindReset, "old@example.com")

	if err := f.Service.RequestEmailChange(ctx, id, "taken@example.com", authtest.Password); err != nil {
		t.Fatal(err)
	}
	first := tokenOf(t, f, email.KindChangeConfirm, "taken@example.com")
	notices := 0
	for _, e := range f.Queued(t) {
		if e.Kind == email.KindChangeNotice && e.To == "old@example.com" && e.NewEmail == "taken@example.com" && e.Link == "" {
			notices++
		}
	}
	if notices != 1 {
		t.Fatalf("%d notices to the current address, want 1", notices)
	}
	if err := f.Service.RequestEmailChange(ctx, id, "new@example.com", authtest.Password); err != nil {
		t.Fatal(err)
	}
	tok := tokenOf(t, f, email.KindChangeConfirm, "new@example.com")
	wantCode(t, f.Service.ConfirmEmailChange(ctx, first), auth.CodeBadUserInput, "token")

	other := auth.RegisterInput{Name: "O", Email: "new@example.com", Password: authtest.Password, PasswordConfirm: authtest.Password}
	otherUser, err := f.Service.Register(ctx, other)
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, f.Service.ConfirmEmailChange(ctx, tok), auth.CodeConflict, "")
	if err := f.DB.DeleteUser(ctx, otherUser.ID); err != nil {
		t.Fatal(err)
	}
	f.Clock.Advance(2 * time.Minute) // a claim without its user is free after a minute
	if err := f.Service.ConfirmEmailChange(ctx, tok); err != nil {
		t.Fatalf("the link after CONFLICT, the address free again: %v", err)
	}
	wantCode(t, f.Service.ConfirmEmailChange(ctx, tok), auth.CodeBadUserInput, "token")
	wantCode(t, f.Service.ResetPassword(ctx, resetToOld, "via old address"), auth.CodeBadUserInput, "token")

	if _, _, err := f.Service.Login(ctx, "new@example.com", authtest.Password, auth.Client{}); err != nil {
		t.Fatalf("login with the new address: %v", err)
	}
	if _, _, err := f.Service.Login(ctx, "old@example.com", authtest.Password, auth.Client{}); auth.ErrorCode(err) != auth.CodeUnauthenticated {
		t.Fatalf("login with the old address: %v", err)
	}
	// The old address is free.
	if _, err := f.Service.Register(ctx, auth.RegisterInput{Name: "N", Email: "old@example.com", Password: authtest.Password, PasswordConfirm: authtest.Password}); err != nil {
		t.Fatalf("registering the released address: %v", err)
	}
	if got, err := f.Store.UserByID(ctx, u.ID); err != nil || got.Email != "new@example.com" || !got.Verified {
		t.Fatalf("user after the change: %+v, %v", got, err)
	}
}

// TestConcurrentUserUpdatesAllLand: on FerretDB an update rewrites the
// whole document, so concurrent updates of one user would lose all but
// one; each claims its version, so all land.
func TestConcurrentUserUpdatesAllLand(t *testing.T) {
	f := authtest.New(t, authtest.Options{})
	u, _ := f.SignedIn(t, "updates@example.com")
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, err := f.Store.UpdateUser(context.Background(), u.ID, func(u *auth.User) error {
				u.PasswordGen++
				return nil
			}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	got, err := f.Store.UserByID(context.Background(), u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.PasswordGen != 20 {
		t.Fatalf("password generation %d after 20 concurrent increments", got.PasswordGen)
	}
}

// TestLinksExpire: a verification link is good for VerifyTTL and a
// change-of-address link for ResetTTL, counted from the request, and
// refused after, unspent (a new request gives a working one).
func TestLinksExpire(t *testing.T) {
	f := authtest.New(t, authtest.Options{Config: func(c *auth.Config) { c.Email.VerificationRequired = true }})
	ctx := context.Background()
	for _, addr := range []string{"late@example.com", "intime@example.com"} {
		in := auth.RegisterInput{Name: "L", Email: addr, Password: authtest.Password, PasswordConfirm: authtest.Password}
		if _, err := f.Service.Register(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	late, inTime := tokenOf(t, f, email.KindVerify, "late@example.com"), tokenOf(t, f, email.KindVerify, "intime@example.com")
	// The test clock runs on from the real time: a minute's margin each
	// side of the expiry, for a busy machine.
	f.Clock.Advance(24*time.Hour - time.Minute)
	if err := f.Service.VerifyEmail(ctx, inTime); err != nil {
		t.Fatalf("a verification link a minute before it expires: %v", err)
	}
	f.Clock.Advance(2 * time.Minute)
	wantCode(t, f.Service.VerifyEmail(ctx, late), auth.CodeBadUserInput, "token")
	if err := f.Service.SendVerificationEmail(ctx, "late@example.com"); err != nil {
		t.Fatal(err)
	}
	if err := f.Service.VerifyEmail(ctx, tokenOf(t, f, email.KindVerify, "late@example.com")); err != nil {
		t.Fatalf("a new verification link: %v", err)
	}

	_, tokens, err := f.Service.Login(ctx, "intime@example.com", authtest.Password, auth.Client{})
	if err != nil {
		t.Fatal(err)
	}
	id, err := f.Service.Authenticate(ctx, tokens.Access)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Service.RequestEmailChange(ctx, id, "moved@example.com", authtest.Password); err != nil {
		t.Fatal(err)
	}
	change := tokenOf(t, f, email.KindChangeConfirm, "moved@example.com")
	f.Clock.Advance(time.Hour + time.Minute)
	wantCode(t, f.Service.ConfirmEmailChange(ctx, change), auth.CodeBadUserInput, "token")
	if err := f.Service.RequestEmailChange(ctx, id, "moved@example.com", authtest.Password); err != nil {
		t.Fatal(err)
	}
	if err := f.Service.ConfirmEmailChange(ctx, tokenOf(t, f, email.KindChangeConfirm, "moved@example.com")); err != nil {
		t.Fatalf("a new change-of-address link: %v", err)
	}
}

// stopsAt is the real store, with a change of address stopping (a crash,
// a lost database) at one of its steps: the call fails without writing.
type stopsAt struct {
	auth.Store
	call string
}

func (s *stopsAt) UpdateUser(ctx context.Context, id string, change func(*auth.User) error) (*auth.User, error) {
	if s.call == "UpdateUser" {
		return nil, fmt.Errorf("stopped: %w", auth.ErrUnavailable)
	}
	return s.Store.UpdateUser(ctx, id, change)
}

func (s *stopsAt) ReleaseEmail(ctx context.Context, id, addr string) error {
	if s.call == "ReleaseEmail" {
		return fmt.Errorf("stopped: %w", auth.ErrUnavailable)
	}
	return s.Store.ReleaseEmail(ctx, id, addr)
}

// TestEmailChangeInterrupted: a change of address that stops between its
// steps leaves the user with one of the two addresses, never neither, and
// the other address free for anyone to register within a minute.
func TestEmailChangeInterrupted(t *testing.T) {
	stops := &stopsAt{}
	f := authtest.New(t, authtest.Options{Store: func(s *mongostore.Store) auth.Store { stops.Store = s; return stops }})
	ctx := context.Background()
	register := func(addr string) error {
		_, err := f.Service.Register(ctx, auth.RegisterInput{Name: "R", Email: addr, Password: authtest.Password, PasswordConfirm: authtest.Password})
		return err
	}
	canLogin := func(addr string) bool {
		_, _, err := f.Service.Login(ctx, addr, authtest.Password, auth.Client{})
		return err == nil
	}
	change := func(from, to, stopAt string) error {
		_, tokens, err := f.Service.Login(ctx, from, authtest.Password, auth.Client{})
		if err != nil {
			t.Fatal(err)
		}
		id, err := f.Service.Authenticate(ctx, tokens.Access)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Service.RequestEmailChange(ctx, id, to, authtest.Password); err != nil {
			t.Fatal(err)
		}
		stops.call = stopAt
		defer func() { stops.call = "" }()
		return f.Service.ConfirmEmailChange(ctx, tokenOf(t, f, email.KindChangeConfirm, to))
	}

	t.Run("AfterClaimingTheNewAddress", func(t *testing.T) {
		f.SignedIn(t, "stay@example.com")
		if err := change("stay@example.com", "wanted@example.com", "UpdateUser"); err == nil {
			t.Fatal("the change succeeded without its update")
		}
		if !canLogin("stay@example.com") || canLogin("wanted@example.com") {
			t.Fatal("the user does not have exactly the old address")
		}
		wantCode(t, register("wanted@example.com"), auth.CodeConflict, "")
		f.Clock.Advance(61 * time.Second)
		if err := register("wanted@example.com"); err != nil {
			t.Fatalf("the new address a minute later: %v", err)
		}
		if !canLogin("stay@example.com") {
			t.Fatal("the old address stopped working")
		}
	})
	t.Run("BeforeReleasingTheOldAddress", func(t *testing.T) {
		f.SignedIn(t, "leaving@example.com")
		if err := change("leaving@example.com", "arrived@example.com", "ReleaseEmail"); err != nil {
			t.Fatalf("the change, its release failing: %v", err)
		}
		if canLogin("leaving@example.com") || !canLogin("arrived@example.com") {
			t.Fatal("the user does not have exactly the new address")
		}
		f.Clock.Advance(61 * time.Second)
		if err := register("leaving@example.com"); err != nil {
			t.Fatalf("the old address a minute later: %v", err)
		}
		if !canLogin("arrived@example.com") {
			t.Fatal("the new address stopped working")
		}
	})
}

// tokensDown is the real store with e-mail tokens failing to save.
type tokensDown struct{ auth.Store }

func (tokensDown) SaveEmailToken(context.Context, *auth.EmailToken) error {
	return fmt.Errorf("saving: %w", auth.ErrUnavailable)
}

// TestRegisterWhenTheLinkCannotBeSaved: register succeeds once the user
// exists; a verification e-mail that could not be queued (its token not
// saved) is counted as not_queued, and nothing half made is queued.
func TestRegisterWhenTheLinkCannotBeSaved(t *testing.T) {
	down := &tokensDown{}
	f := authtest.New(t, authtest.Options{
		Store:  func(s *mongostore.Store) auth.Store { down.Store = s; return down },
		Config: func(c *auth.Config) { c.Email.VerificationRequired = true },
	})
	u, err := f.Service.Register(context.Background(), auth.RegisterInput{Name: "N", Email: "nolink@example.com", Password: authtest.Password, PasswordConfirm: authtest.Password})
	if err != nil || u.Verified {
		t.Fatalf("register: %+v, %v", u, err)
	}
	if !f.Events.Has("email_dropped:not_queued") {
		t.Fatal("the e-mail that could not be queued was not counted")
	}
	for _, e := range f.Queued(t) {
		if e.To == "nolink@example.com" {
			t.Fatalf("an e-mail was queued without its token: %+v", e.Kind)
		}
	}
}
