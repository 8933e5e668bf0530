package auth_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gqlauth/gqlauth/internal/auth"
	"github.com/gqlauth/gqlauth/internal/authtest"
)

var client = auth.Client{IP: "127.0.0.1", UserAgent: "test"}

// authErr returns err's client error, failing when there is none.
func authErr(t *testing.T, err error) *auth.Error {
	t.Helper()
	var e *auth.Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v, want a client error", err)
	}
	return e
}

// expectCode fails unless err carries the code.
func expectCode(t *testing.T, err error, code string) *auth.Error {
	t.Helper()
	e := authErr(t, err)
	if e.Code != code {
		t.Fatalf("code = %s (%v), want %s", e.Code, err, code)
	}
	return e
}

func TestLogin(t *testing.T) {
	env := authtest.New(t, authtest.Options{})
	ctx := context.Background()
	u, _ := env.SignedIn(t, "login@example.com")

	t.Run("OK", func(t *testing.T) {
		got, tokens, err := env.Service.Login(ctx, "  LOGIN@example.com ", authtest.Password, client)
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != u.ID || tokens.Access == "" || tokens.Refresh == "" || !tokens.AccessExpiresAt.After(tokens.IssuedAt) {
			t.Fatalf("login = %+v, %+v", got, tokens)
		}
	})
	for _, tc := range []struct {
		name, email, password, code, field string
	}{
		{"ErrWrongPassword", "login@example.com", "not the password", auth.CodeUnauthenticated, ""},
		{"ErrUnknownEmail", "nobody@example.com", authtest.Password, auth.CodeUnauthenticated, ""},
		{"ErrMalformedEmail", "not an e-mail", authtest.Password, auth.CodeBadUserInput, "email"},
		{"ErrPasswordOver72Bytes", "login@example.com", authtest.Password + strings.Repeat("!", 60), auth.CodeBadUserInput, "password"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := env.Service.Login(ctx, tc.email, tc.password, client)
			e := expectCode(t, err, tc.code)
			if e.Field != tc.field {
				t.Fatalf("field = %q, want %q", e.Field, tc.field)
			}
		})
	}
	t.Run("SameAnswerForUnknownAndWrong", func(t *testing.T) {
		_, _, wrong := env.Service.Login(ctx, "login@example.com", "not the password", client)
		_, _, unknown := env.Service.Login(ctx, "nobody-else@example.com", "not the password", client)
		if authErr(t, wrong).Message != authErr(t, unknown).Message {
			t.Fatalf("messages differ: %v / %v", wrong, unknown)
		}
	})
}

// TestLoginThrottle is the per-e-mail throttle through the use case: the
// fifth failure in 15 minutes throttles for 30 s, doubling; while throttled
// nothing is checked or counted; unknown e-mails alike; a success resets.
func TestLoginThrottle(t *testing.T) {
	env := authtest.New(t, authtest.Options{})
	ctx := context.Background()
	env.SignedIn(t, "target@example.com")
	wrong := func(email string) error {
		_, _, err := env.Service.Login(ctx, email, "wrong password", client)
		return err
	}
	right := func(email string) error {
		_, _, err := env.Service.Login(ctx, email, authtest.Password, client)
		return err
	}
	expectThrottled := func(t *testing.T, err error, lo, hi int) {
		t.Helper()
		e := expectCode(t, err, auth.CodeRateLimited)
		if e.RetryAfter < lo || e.RetryAfter > hi {
			t.Fatalf("retryAfter %d, want %d..%d", e.RetryAfter, lo, hi)
		}
	}

	for _, email := range []string{"target@example.com", "unknown-target@example.com"} {
		t.Run(email, func(t *testing.T) {
			for range 5 {
				expectCode(t, wrong(email), auth.CodeUnauthenticated)
			}
			expectThrottled(t, wrong(email), 29, 30)
			// The right password is not even checked now, and nothing is
			// written.
			before := env.DB.Snapshot(t)
			expectThrottled(t, right(email), 29, 30)
			if after := env.DB.Snapshot(t); fmt.Sprint(after) != fmt.Sprint(before) {
				t.Fatalf("a throttled login wrote: %v -> %v", before, after)
			}
			// Case and spaces do not escape the throttle.
			expectThrottled(t, wrong("  "+strings.ToUpper(email)), 29, 30)
			// Throttled attempts were not counted: after 30 s, one more
			// failure gives 60 s, not more.
			env.Clock.Advance(31 * time.Second)
			expectCode(t, wrong(email), auth.CodeUnauthenticated)
			expectThrottled(t, wrong(email), 59, 60)
			env.Clock.Advance(61 * time.Second)
			expectCode(t, wrong(email), auth.CodeUnauthenticated)
			expectThrottled(t, wrong(email), 119, 120)
			env.Clock.Advance(31 * time.Minute) // a quiet window after the delay ends the streak
		})
	}
	t.Run("OtherEmailsUnaffected", func(t *testing.T) {
		for range 5 {
			_ = wrong("target@example.com")
		}
		expectCode(t, wrong("target@example.com"), auth.CodeRateLimited)
		expectCode(t, wrong("bystander@example.com"), auth.CodeUnauthenticated)
		env.Clock.Advance(31 * time.Minute)
	})
	t.Run("SuccessResets", func(t *testing.T) {
		for range 4 {
			expectCode(t, wrong("target@example.com"), auth.CodeUnauthenticated)
		}
		if err := right("target@example.com"); err != nil {
			t.Fatal(err)
		}
		for range 4 {
			expectCode(t, wrong("target@example.com"), auth.CodeUnauthenticated)
		}
		env.Clock.Advance(31 * time.Minute)
	})
	t.Run("ConcurrentGuessesCountedExactly", func(t *testing.T) {
		const n = 20
		outcomes := make([]string, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				var e *auth.Error
				switch err := wrong("target@example.com"); {
				case errors.As(err, &e) && e.Code == auth.CodeRateLimited && e.RetryAfter >= 29:
					outcomes[i] = "throttled"
				case errors.As(err, &e):
					outcomes[i] = e.Code
				default:
					outcomes[i] = fmt.Sprint(err)
				}
			})
		}
		wg.Wait()
		count := map[string]int{}
		for _, o := range outcomes {
			count[o]++
		}
		if count[auth.CodeUnauthenticated] != 5 || count["throttled"] != n-5 {
			t.Fatalf("outcomes = %v, want exactly 5 checked and %d throttled", count, n-5)
		}
		env.Clock.Advance(31 * time.Minute)
	})
	t.Run("CapHoldsWhenWaitedOut", func(t *testing.T) {
		email := "patient@example.com"
		for range 5 {
			expectCode(t, wrong(email), auth.CodeUnauthenticated)
		}
		for _, delay := range []int{30, 60, 120, 240, 480} {
			env.Clock.Advance(time.Duration(delay)*time.Second + time.Second)
			expectCode(t, wrong(email), auth.CodeUnauthenticated)
		}
		expectThrottled(t, wrong(email), 899, 900)
		for range 3 { // each guess after waiting the delay out keeps it there
			env.Clock.Advance(901 * time.Second)
			expectCode(t, wrong(email), auth.CodeUnauthenticated)
			expectThrottled(t, wrong(email), 899, 900)
		}
	})
	if !env.Events.Has(auth.EventLoginThrottled) {
		t.Fatal("throttling was not reported as a security event")
	}
}

// TestLoginEqualTime: an unknown e-mail costs a bcrypt compare at the
// configured cost, like a wrong password (a generous bound, a factor of 5:
// the failure it guards against is a difference of fifty times and more,
// and the hashes run at low priority, so a busy machine, other test
// packages included, can slow a few of them by several times).
func TestLoginEqualTime(t *testing.T) {
	env := authtest.New(t, authtest.Options{Hashing: [3]int{10, 2, 16}, Config: func(c *auth.Config) { c.LoginThrottle = auth.DefaultLoginThrottle(0) }})
	env.SignedIn(t, "timing@example.com")
	median := func(email string) time.Duration {
		var ds []time.Duration
		for range 7 {
			start := time.Now()
			_, _, err := env.Service.Login(context.Background(), email, "wrong password", client)
			expectCode(t, err, auth.CodeUnauthenticated)
			ds = append(ds, time.Since(start))
		}
		slices.Sort(ds)
		return ds[len(ds)/2]
	}
	known, unknown := median("timing@example.com"), median("nobody-timing@example.com")
	t.Logf("median login: known e-mail %v, unknown %v", known, unknown)
	if unknown < known/5 || known < unknown/5 {
		t.Fatalf("known %v vs unknown %v: an unknown e-mail must cost a compare too", known, unknown)
	}
}

// TestHashingBounds: beyond the hasher's queue a fast RATE_LIMITED, and
// concurrent registrations through one slot still decided.
func TestHashingBounds(t *testing.T) {
	t.Run("QueueFullAnswersFast", func(t *testing.T) {
		env := authtest.New(t, authtest.Options{Hashing: [3]int{12, 1, 0}})
		const n = 6
		codes := make([]string, n)
		took := make([]time.Duration, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				start := time.Now()
				_, _, err := env.Service.Login(context.Background(), fmt.Sprintf("flood%d@example.com", i), "wrong password", client)
				codes[i], took[i] = authErr(t, err).Code, time.Since(start)
			})
		}
		wg.Wait()
		limited := 0
		for i, c := range codes {
			switch c {
			case auth.CodeRateLimited:
				limited++
				if took[i] > 2*time.Second {
					t.Errorf("a refused login took %v", took[i])
				}
			case auth.CodeUnauthenticated:
			default:
				t.Errorf("unexpected code %q", c)
			}
		}
		if limited == 0 {
			t.Fatalf("codes = %v: with one slot and no queue, concurrent logins must be refused", codes)
		}
	})
	t.Run("ConcurrentRegistrationsDecided", func(t *testing.T) {
		env := authtest.New(t, authtest.Options{Hashing: [3]int{4, 1, 64}})
		expectOneRegistration(t, env, "queued@example.com", 20)
	})
}

// expectOneRegistration registers one e-mail n times at once: exactly one
// succeeds and the rest get CONFLICT, and one user is stored.
func expectOneRegistration(t *testing.T, env *authtest.Env, email string, n int) {
	t.Helper()
	codes := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, err := env.Service.Register(context.Background(), auth.RegisterInput{Name: "Ann", Email: email, Password: authtest.Password, PasswordConfirm: authtest.Password})
			if err != nil {
				codes[i] = auth.ErrorCode(err)
			}
		})
	}
	wg.Wait()
	count := map[string]int{}
	for _, c := range codes {
		count[c]++
	}
	if count[""] != 1 || count[auth.CodeConflict] != n-1 {
		t.Fatalf("codes = %v, want 1 success and %d CONFLICT", count, n-1)
	}
	users, err := env.DB.UsersByEmail(context.Background(), auth.NormalizeEmail(email))
	if err != nil || len(users) != 1 {
		t.Fatalf("%d users stored (%v), want 1", len(users), err)
	}
}

// TestRegister covers the use case's answers and what it stores.
func TestRegister(t *testing.T) {
	env := authtest.New(t, authtest.Options{})
	ctx := context.Background()
	t.Run("OK", func(t *testing.T) {
		u, err := env.Service.Register(ctx, auth.RegisterInput{Name: "  Ann ", Email: " Ann@Example.COM", Password: authtest.Password, PasswordConfirm: authtest.Password})
		if err != nil {
			t.Fatal(err)
		}
		if len(u.ID) != 24 || u.Name != "Ann" || u.Email != "ann@example.com" || u.Role != auth.RoleUser || !u.Verified {
			t.Fatalf("user = %+v", u)
		}
		stored, err := env.DB.UsersByEmail(ctx, "ann@example.com")
		if err != nil || len(stored) != 1 {
			t.Fatalf("stored = %v, %v", stored, err)
		}
		if h, _ := stored[0]["password"].(string); !strings.HasPrefix(h, "$2a$04$") {
			t.Fatalf("stored password = %q, want a cost-4 bcrypt hash", h)
		}
	})
	t.Run("ErrConflict", func(t *testing.T) {
		_, err := env.Service.Register(ctx, auth.RegisterInput{Name: "A", Email: "ANN@example.com", Password: authtest.Password, PasswordConfirm: authtest.Password})
		expectCode(t, err, auth.CodeConflict)
	})
	t.Run("ErrInputWritesNothing", func(t *testing.T) {
		before := env.DB.Snapshot(t)
		_, err := env.Service.Register(ctx, auth.RegisterInput{Name: "A", Email: "short@example.com", Password: "1234567", PasswordConfirm: "1234567"})
		if e := expectCode(t, err, auth.CodeBadUserInput); e.Field != "password" {
			t.Fatalf("field = %q", e.Field)
		}
		if claimed, _ := env.DB.EmailClaimed(ctx, "short@example.com"); claimed || fmt.Sprint(env.DB.Snapshot(t)) != fmt.Sprint(before) {
			t.Fatal("a refused registration wrote")
		}
	})
	t.Run("ConcurrentOneUser", func(t *testing.T) {
		expectOneRegistration(t, env, "Race@Example.com", 20)
	})
}
