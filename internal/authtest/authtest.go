// Package authtest builds the auth service for tests as the server builds
// it: on the real embedded database (storetest), with real keys, a bcrypt
// hasher at the lowest cost, and a clock the test moves.
package authtest

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gqlauth/gqlauth/internal/auth"
	"github.com/gqlauth/gqlauth/internal/email"
	"github.com/gqlauth/gqlauth/internal/mongostore"
	"github.com/gqlauth/gqlauth/internal/password"
	"github.com/gqlauth/gqlauth/internal/storetest"
	"github.com/gqlauth/gqlauth/internal/token"
)

// Password is the password SignedIn registers users with.
const Password = "correct horse battery"

// Clock is a clock a test moves forward.
type Clock struct {
	mu     sync.Mutex
	offset time.Duration
}

// Now returns the time, moved by Advance.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// Events records the security events the service reports.
type Events struct {
	mu   sync.Mutex
	seen []auth.Event
}

// AuthEvent implements auth.Observer.
func (e *Events) AuthEvent(event auth.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.seen = append(e.seen, event)
}

// DatabaseError implements auth.Observer.
func (*Events) DatabaseError(bool) {}

// EmailDropped implements auth.Observer: a dropped e-mail is recorded as
// the event "email_dropped:<reason>".
func (e *Events) EmailDropped(reason string) { e.AuthEvent(auth.Event("email_dropped:" + reason)) }

// Has reports whether the event was reported.
func (e *Events) Has(event auth.Event) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Contains(e.seen, event)
}

// Env is a service on a real database.
type Env struct {
	Service *auth.Service
	Tokens  *token.Manager
	Store   *mongostore.Store
	// DB views the database (what was written, fixtures).
	DB     *storetest.DB
	Clock  *Clock
	Events *Events
	// Mail queues the service's e-mails in the store's outbox (no worker
	// delivers them: Queued reads them).
	Mail   *email.Queue
	Sealer *email.Sealer

	mu       sync.Mutex
	prepared map[string]*email.Entry
}

// Queued returns the e-mails waiting in the outbox, the deferred ones
// prepared as the delivery worker prepares them (each once), without those
// it would skip.
func (e *Env) Queued(tb testing.TB) []email.Entry {
	tb.Helper()
	entries, err := e.Store.DueEntries(context.Background(), e.Clock.Now().Add(time.Second))
	if err != nil {
		tb.Fatal(err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.prepared == nil {
		e.prepared = map[string]*email.Entry{}
	}
	var out []email.Entry
	for _, x := range entries {
		if x.Message, err = e.Sealer.Open(x.Message); err != nil {
			tb.Fatalf("an e-mail in the outbox: %v", err)
		}
		if x.Deferred {
			p, seen := e.prepared[x.Key]
			if !seen {
				m, ok, err := e.Service.PrepareEmail(context.Background(), x.Message, x.FirstQueuedAt)
				if err != nil {
					tb.Fatal(err)
				}
				if ok {
					x.Message = m
					p = &x
				}
				e.prepared[x.Key] = p
			}
			if p == nil {
				continue
			}
			x = *p
		}
		out = append(out, x)
	}
	return out
}

// Options change New's defaults.
type Options struct {
	// Store wraps the real store (nil: the store itself), e.g. to count
	// calls or to cancel the request at a chosen point.
	Store func(*mongostore.Store) auth.Store
	// Config edits the service's configuration.
	Config func(*auth.Config)
	// On reuses another Env's database, keys and clock (a restart with
	// other settings).
	On *Env
	// Hashing sets the password hasher's cost, concurrency and queue
	// (default 4, 2, 64: the server's default queue).
	Hashing [3]int
}

// New builds the service on a fresh embedded database (or o.On's).
func New(tb testing.TB, o Options) *Env {
	tb.Helper()
	e := &Env{Clock: &Clock{}, Events: &Events{}}
	if o.On != nil {
		e.Clock, e.Store, e.DB, e.Tokens = o.On.Clock, o.On.Store, o.On.DB, o.On.Tokens
	} else {
		e.DB = storetest.OpenDB(tb, mongostore.Options{Now: e.Clock.Now})
		e.Store = e.DB.Store
		e.Tokens = NewTokens(tb, e.Clock.Now)
	}
	var store auth.Store = e.Store
	if o.Store != nil {
		store = o.Store(e.Store)
	}
	if o.Hashing == [3]int{} {
		o.Hashing = [3]int{4, 2, 64}
	}
	hasher, err := password.NewHasher(o.Hashing[0], o.Hashing[1], o.Hashing[2])
	if err != nil {
		tb.Fatal(err)
	}
	cfg := auth.Config{
		AccessTokenTTL:     15 * time.Minute,
		RefreshTokenTTL:    time.Hour,
		RefreshReuseGrace:  5 * time.Second,
		SessionMaxLifetime: 720 * time.Hour,
		LoginThrottle:      auth.DefaultLoginThrottle(5),
		DatabaseTimeout:    5 * time.Second,
		Email: auth.EmailConfig{
			LinkBase: "http://app.test", VerifyTTL: 24 * time.Hour, ResetTTL: time.Hour,
		},
	}
	if o.Config != nil {
		o.Config(&cfg)
	}
	keys, err := e.Tokens.DeriveKeys(email.LinkKeyInfo)
	if err != nil {
		tb.Fatal(err)
	}
	if e.Sealer, err = email.NewSealer(keys); err != nil {
		tb.Fatal(err)
	}
	e.Mail = &email.Queue{Store: e.Store, Sealer: e.Sealer, Now: e.Clock.Now}
	e.Service, err = auth.New(auth.Deps{
		Users: store, Sessions: store, RefreshTokens: store, Attempts: store,
		EmailTokens: store, Accounts: store, Mailer: e.Mail,
		Tokens: e.Tokens, Passwords: hasher, Config: cfg,
		Clock: e.Clock.Now, Observer: e.Events,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

// NewTokens returns a token manager with a fresh Ed25519 key (fast to
// generate) and the issuer "http://test".
func NewTokens(tb testing.TB, now func() time.Time) *token.Manager {
	tb.Helper()
	priv, err := token.GenerateKey(token.EdDSA)
	if err != nil {
		tb.Fatal(err)
	}
	key, err := token.NewKey(token.EdDSA, priv, nil)
	if err != nil {
		tb.Fatal(err)
	}
	m, err := token.NewManager("http://test", key, nil, now)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// SignedIn registers a user with Password and signs in.
func (e *Env) SignedIn(tb testing.TB, email string) (*auth.User, *auth.Tokens) {
	tb.Helper()
	ctx := context.Background()
	if _, err := e.Service.Register(ctx, auth.RegisterInput{Name: "Ann", Email: email, Password: Password, PasswordConfirm: Password}); err != nil {
		tb.Fatal(err)
	}
	u, tokens, err := e.Service.Login(ctx, email, Password, auth.Client{IP: "127.0.0.1"})
	if err != nil {
		tb.Fatal(err)
	}
	return u, tokens
}
