package auth

import (
	"context"
	"time"
)

// RefreshToken is the stored form of an issued refresh token: only the hash
// of the token is kept.
type RefreshToken struct {
	Hash             string
	SessionID        string
	UserID           string
	IssuedAt         time.Time
	ExpiresAt        time.Time
	SessionExpiresAt time.Time
}

// Spend is the outcome of presenting a refresh token for rotation.
type Spend struct {
	// First is true for the caller that spent the token.
	First bool
	// FirstSpentAt is when it was first spent (zero when that is no longer
	// known: the record was swept long after).
	FirstSpentAt time.Time
	// Withdrawn is true when the token was withdrawn before anyone spent
	// it: the answer that carried it was not delivered.
	Withdrawn bool
}

// The storage the service needs, one role interface per kind of record:
// each use case uses the few it needs, and a new feature declares its own
// (and its file in the Mongo adapter). Every implementation must keep the
// contract's consistency rules without relying on atomic conditional
// updates (FerretDB applies an update by rewriting the whole document, so
// two concurrent compare-and-set updates can both win): every decision that
// must hold under concurrency is an insert that a unique index accepts
// exactly once, and the hot paths read by _id. Each method says which of
// the errors below it returns; storage outages are ErrUnavailable.

// UserStore keeps the users, found by id and by normalised e-mail.
type UserStore interface {
	// CreateUser inserts u, assigning u.ID. It returns ErrEmailTaken when the
	// e-mail is already registered, also under concurrent registration.
	CreateUser(ctx context.Context, u *User) error
	// UserByID returns the user or ErrNotFound.
	UserByID(ctx context.Context, id string) (*User, error)
	// UserByEmail returns the user with that normalised e-mail or ErrNotFound.
	UserByEmail(ctx context.Context, email string) (*User, error)
	// SetPassword replaces the user's password hash.
	SetPassword(ctx context.Context, userID, hash string, at time.Time) error
}

// SessionStore keeps sessions and their revocations (insert-only: nothing
// can undo a revocation), and caps each user at MaxSessionsPerUser live
// sessions.
type SessionStore interface {
	// CreateSession inserts s, assigning s.ID, and revokes the user's
	// oldest sessions beyond the per-user cap (MaxSessionsPerUser). It
	// returns the ids it revoked. When the session was inserted but the cap
	// could not be applied it returns an error with s.ID set, so that the
	// caller can revoke the session it will not hand out; the store applies
	// the cap later (at the next sign-in, or in its sweep) either way.
	CreateSession(ctx context.Context, s *Session) (revoked []string, err error)
	// SessionByID returns a session (revoked or not) or ErrNotFound.
	SessionByID(ctx context.Context, id string) (*Session, error)
	// LiveSessions returns every session of the user that is neither
	// revoked nor past its lifetime, newest first, however the sign-ins
	// that made them ended.
	LiveSessions(ctx context.Context, userID string) ([]*Session, error)
	// TouchSession records that the session was used (a refresh). It is
	// bookkeeping that may lag: the store may write it later, at most once
	// a minute per session (so LastUsedAt is at most a minute stale, and a
	// crash may lose that minute), off the caller's path.
	TouchSession(ctx context.Context, sessionID string, at time.Time) error
	// SessionRevoked reports whether the session has been revoked.
	SessionRevoked(ctx context.Context, sessionID string) (bool, error)
	// RevokeSession marks the session revoked, for as long as any of its
	// tokens could verify (its own expiry, not today's configuration). It
	// returns false when it was already revoked.
	RevokeSession(ctx context.Context, sessionID, userID, reason string, at time.Time) (bool, error)
	// RevokeUserSessions revokes every live session of the user but keep
	// ("" for none), as LiveSessions finds them, and returns the ids it
	// revoked.
	RevokeUserSessions(ctx context.Context, userID, keep, reason string, at time.Time) ([]string, error)
}

// RefreshTokenStore keeps the refresh tokens issued (only their hashes) and
// the record of each spend, which a unique insert decides.
type RefreshTokenStore interface {
	// SaveRefreshToken stores an issued refresh token's hash.
	SaveRefreshToken(ctx context.Context, t *RefreshToken) error
	// RefreshTokenByHash returns the stored token or ErrNotFound.
	RefreshTokenByHash(ctx context.Context, hash string) (*RefreshToken, error)
	// SpendRefreshToken records that the token was presented for rotation.
	// Of concurrent callers exactly one gets First; every later caller is
	// told when it was first spent, or that it was withdrawn.
	SpendRefreshToken(ctx context.Context, t *RefreshToken, at time.Time) (Spend, error)
	// WithdrawRefreshToken marks a token issued to a client that never
	// received it, unless it was spent first: the two decide by one unique
	// insert. It returns whether it withdrew the token.
	WithdrawRefreshToken(ctx context.Context, t *RefreshToken, at time.Time) (bool, error)
	// UnspendRefreshToken removes the spend record of a token whose
	// replacement could not be issued.
	UnspendRefreshToken(ctx context.Context, hash string) error
}

// AttemptStore keeps each e-mail's numbered login-attempt records (the
// login throttle); each number is taken by one insert.
type AttemptStore interface {
	// LoginAttempts returns the e-mail's latest login-attempt record (Seq 0
	// when there is none).
	LoginAttempts(ctx context.Context, email string) (LoginAttempts, error)
	// AppendLoginAttempts stores next (whose Seq is the current record's
	// plus one) as the e-mail's latest record. When another caller stored a
	// record with that Seq first, it stores nothing and returns that record
	// with taken=true, for the caller to decide again.
	AppendLoginAttempts(ctx context.Context, email string, next LoginAttempts, at time.Time) (current LoginAttempts, taken bool, err error)
}

// Store is every role at once, as one database adapter provides them.
type Store interface {
	UserStore
	SessionStore
	RefreshTokenStore
	AttemptStore
	EmailTokenStore
	AccountStore
}

// The kinds of e-mail token.
const (
	TokenVerify = "verify"
	TokenReset  = "reset"
	TokenChange = "change"
)

// EmailToken is the stored form of a link's token: only its hash is kept,
// with what it is bound to: its user, the address it was sent for, and the
// password generation it was sent under.
type EmailToken struct {
	Hash        string
	Kind        string
	UserID      string
	Email       string // the account's address when the link was sent
	NewEmail    string // change of address: the address to change to
	PasswordGen int64
	CreatedAt   time.Time
	ExpiresAt   time.Time
}

// EmailTokenStore keeps the tokens of the links in e-mails (only their
// hashes) and the record of each use, which a unique insert decides.
type EmailTokenStore interface {
	// SaveEmailToken stores a token. For TokenChange it also makes it the
	// user's latest change of address, which voids the earlier ones.
	SaveEmailToken(ctx context.Context, t *EmailToken) error
	// EmailTokenByHash returns the token or ErrNotFound.
	EmailTokenByHash(ctx context.Context, hash string) (*EmailToken, error)
	// LatestEmailChange returns the hash of the user's latest change of
	// address token, or "" when there is none.
	LatestEmailChange(ctx context.Context, userID string) (string, error)
	// SpendEmailToken records the token's use; of concurrent callers
	// exactly one gets true.
	SpendEmailToken(ctx context.Context, t *EmailToken, at time.Time) (bool, error)
	// UnspendEmailToken removes the use record of a token whose effect
	// could not be completed, so that the link stays usable.
	UnspendEmailToken(ctx context.Context, hash string) error
}

// AccountStore changes what a user is: its document, and its claim of an
// address.
type AccountStore interface {
	// UpdateUser applies change to the user's current document and stores
	// it; concurrent updates of one user are all applied, one after the
	// other (change may run more than once). It returns the stored user,
	// ErrNotFound, or change's error.
	UpdateUser(ctx context.Context, userID string, change func(*User) error) (*User, error)
	// ClaimEmail claims an address for the user (idempotent for the same
	// user); ErrEmailTaken when another user holds it.
	ClaimEmail(ctx context.Context, userID, email string) error
	// ReleaseEmail gives up the user's claim of an address.
	ReleaseEmail(ctx context.Context, userID, email string) error
}
