package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
	"unicode/utf8"

	"github.com/gqlauth/gqlauth/internal/password"
	"github.com/gqlauth/gqlauth/internal/token"
)

// MaxSessionsPerUser is how many live sessions a user keeps; signing in
// again revokes the oldest.
const MaxSessionsPerUser = 50

// Revocation reasons, recorded with the revocation and logged.
const (
	ReasonLogout         = "logout"
	ReasonReuse          = "refresh_token_reuse"
	ReasonSessionLimit   = "session_limit"
	ReasonRevoked        = "revoked_by_user"
	ReasonLogoutAll      = "logout_all"
	ReasonPasswordChange = "password_changed"
	ReasonPasswordReset  = "password_reset"
	// ReasonSignInFailed: the sign-in made the session but failed after.
	ReasonSignInFailed = "sign_in_failed"
	// ReasonUndelivered: the client went away before receiving the tokens.
	ReasonUndelivered = "undelivered"
)

// Config holds the service's lifetimes and login throttle.
type Config struct {
	AccessTokenTTL     time.Duration
	RefreshTokenTTL    time.Duration
	RefreshReuseGrace  time.Duration
	SessionMaxLifetime time.Duration
	LoginThrottle      LoginThrottle
	// DatabaseTimeout bounds the writes that complete a state change,
	// which run on after the client has gone (see detached); 0 means 5s.
	DatabaseTimeout time.Duration
	// RefreshTokenFormat is the format of the refresh tokens issued
	// (token.FormatMAC, the default, or token.FormatJWT); both are
	// accepted either way.
	RefreshTokenFormat string
	Email              EmailConfig
}

// Deps are what the service is built from: the stores of each role (one
// Mongo store serves them all; a feature adds the role it needs), the token
// signer, the password hasher, the configuration, and the clock, log and
// observer.
type Deps struct {
	Users         UserStore
	Sessions      SessionStore
	RefreshTokens RefreshTokenStore
	Attempts      AttemptStore
	EmailTokens   EmailTokenStore
	Accounts      AccountStore
	// Mailer queues the account e-mails.
	Mailer Mailer

	Tokens    *token.Manager
	Passwords *password.Hasher
	Config    Config

	// Clock is the time source; nil means time.Now.
	Clock func() time.Time
	// Logger receives security events and failures; nil discards them.
	Logger *slog.Logger
	// Observer counts events and database failures; nil counts nothing.
	Observer Observer
}

// Service implements the use cases, one file each. Resolvers call it and do
// nothing else but move cookies.
type Service struct {
	users         UserStore
	sessions      SessionStore
	refreshTokens RefreshTokenStore
	attempts      AttemptStore
	emailTokens   EmailTokenStore
	accounts      AccountStore
	mailer        Mailer
	tokens        *token.Manager
	passwords     *password.Hasher
	cfg           Config
	now           func() time.Time
	log           *slog.Logger
	observer      Observer
}

// Observer is told of security events and database failures (for metrics).
type Observer interface {
	// AuthEvent counts a security event (see Events).
	AuthEvent(event Event)
	// DatabaseError counts a failed database call; unavailable is true when
	// the database could not be reached in time.
	DatabaseError(unavailable bool)
	// EmailDropped counts an e-mail given up before the mailer had it
	// ("not_queued": its link's token could not be saved).
	EmailDropped(reason string)
}

type noObserver struct{}

func (noObserver) AuthEvent(Event)     {}
func (noObserver) DatabaseError(bool)  {}
func (noObserver) EmailDropped(string) {}

// New returns the service. Every store, Tokens and Passwords are required.
func New(d Deps) (*Service, error) {
	if d.Users == nil || d.Sessions == nil || d.RefreshTokens == nil || d.Attempts == nil || d.EmailTokens == nil ||
		d.Accounts == nil || d.Mailer == nil || d.Tokens == nil || d.Passwords == nil {
		return nil, errors.New("auth: a store, the mailer, the token manager or the password hasher is missing")
	}
	if d.Clock == nil {
		d.Clock = time.Now
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Observer == nil {
		d.Observer = noObserver{}
	}
	return &Service{
		users: d.Users, sessions: d.Sessions, refreshTokens: d.RefreshTokens, attempts: d.Attempts,
		emailTokens: d.EmailTokens, accounts: d.Accounts, mailer: d.Mailer,
		tokens: d.Tokens, passwords: d.Passwords, cfg: d.Config,
		now: d.Clock, log: d.Logger, observer: d.Observer,
	}, nil
}

// event logs a security event as a structured line (with the request id,
// which the logger takes from ctx) and counts it.
func (s *Service) event(ctx context.Context, level slog.Level, msg string, event Event, attrs ...any) {
	s.observer.AuthEvent(event)
	s.log.Log(ctx, level, msg, append([]any{"event", string(event)}, attrs...)...)
}

// Client describes the device signing in, kept with its session.
type Client struct {
	IP        string
	UserAgent string
}

// Identity is who an access token speaks for.
type Identity struct {
	User      *User
	SessionID string
}

// detached returns the context for the writes that complete a state change:
// it keeps ctx's values (the request id, for logs) but not its
// cancellation, so that a client that goes away half-way cannot leave the
// change half done, and it is bounded by DatabaseTimeout.
func (s *Service) detached(ctx context.Context) (context.Context, context.CancelFunc) {
	d := s.cfg.DatabaseTimeout
	if d <= 0 {
		d = 5 * time.Second
	}
	return context.WithTimeout(context.WithoutCancel(ctx), d)
}

// storeErr turns a store failure into what a client may see, and counts
// it: an outage becomes ErrServiceUnavailable (the cause stays in the chain
// for the log); anything else stays internal.
func (s *Service) storeErr(op string, err error) error {
	unavailable := errors.Is(err, ErrUnavailable)
	s.observer.DatabaseError(unavailable)
	if unavailable {
		return fmt.Errorf("%s: %w: %w", op, ErrServiceUnavailable, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// hashErr turns the hasher's refusal into what a client may see.
func hashErr(err error) error {
	if errors.Is(err, password.ErrBusy) {
		return fmt.Errorf("%w: %w", ErrBusy, err)
	}
	return err
}

// ErrBusy is returned when too many passwords are being hashed: beyond the
// queue, or after waiting password.MaxWait for a slot.
var ErrBusy = &Error{Code: CodeRateLimited, Message: "Too many requests; please retry shortly", RetryAfter: 1}

// MaxUserAgentBytes bounds the User-Agent kept with a session.
const MaxUserAgentBytes = 512

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
