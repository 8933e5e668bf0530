// Package auth is the domain of the authentication server: users, sessions,
// the errors clients see, and the use cases that the GraphQL layer calls,
// one file each (register.go, login.go, refresh.go, …).
//
// It declares the storage it needs as role interfaces (store.go), one per
// kind of record, and knows nothing about MongoDB, HTTP or GraphQL.
package auth

import "time"

// Role is a user's role.
type Role string

// The roles a user can have.
const (
	RoleUser  Role = "USER"
	RoleAdmin Role = "ADMIN"
)

// User is a registered account. PasswordHash is never exposed: the GraphQL
// schema has no field for it.
type User struct {
	ID           string // ObjectID as 24 hex characters; never changes
	Name         string
	Email        string // normalised: trimmed and lower-cased
	Photo        string
	Role         Role
	Verified     bool
	PasswordHash string
	// PasswordGen counts the password's changes: a reset link is valid only
	// for the generation it was sent for.
	PasswordGen int64
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Session is a signed-in device: created at login, extended by refresh, and
// ended by logout, by reuse of a spent refresh token, by the per-user cap, or
// by its absolute lifetime (ExpiresAt).
type Session struct {
	ID         string
	UserID     string
	CreatedAt  time.Time
	LastUsedAt time.Time // sign-in or the latest refresh
	ExpiresAt  time.Time // absolute cap: CreatedAt + SESSION_MAX_LIFETIME
	UserAgent  string
	IP         string
}

// SessionInfo is a session as its user sees it.
type SessionInfo struct {
	ID         string
	CreatedAt  time.Time
	LastUsedAt time.Time
	UserAgent  string
	IP         string
	// Current is true for the session of the request's own access token.
	Current bool
}
