package auth

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"time"
	"unicode/utf8"

	"github.com/gqlauth/gqlauth/internal/token"
)

// MaxSessionsPerUser is how many live sessions a user keeps; signing in
// again revokes the oldest.
const MaxSessionsPerUser = 50

// Revocation reasons, recorded with the revocation and logged.
const (
	ReasonLogout       = "logout"
	ReasonReuse        = "refresh_token_reuse"
	ReasonSessionLimit = "session_limit"
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
}

// Service implements the use cases. Resolvers call it and do nothing else
// but move cookies.
type Service struct {
	store  Store
	tokens *token.Manager
	hasher *Hasher
	cfg    Config
	now    func() time.Time
	log    *slog.Logger
	obs    Observer
}

// Observer is told of security events and database failures (for metrics).
type Observer interface {
	// AuthEvent counts an event: login, login_failed, login_throttled,
	// refresh, refresh_reuse, logout, logout_all, register,
	// password_changed, session_revoked.
	AuthEvent(event string)
	// DatabaseError counts a failed database call; unavailable is true when
	// the database could not be reached in time.
	DatabaseError(unavailable bool)
}

type noObserver struct{}

func (noObserver) AuthEvent(string)   {}
func (noObserver) DatabaseError(bool) {}

// NewService returns a Service. now may be nil (time.Now), obs may be nil.
func NewService(store Store, tokens *token.Manager, hasher *Hasher, cfg Config, now func() time.Time, log *slog.Logger, obs Observer) *Service {
	if now == nil {
		now = time.Now
	}
	if obs == nil {
		obs = noObserver{}
	}
	return &Service{store: store, tokens: tokens, hasher: hasher, cfg: cfg, now: now, log: log, obs: obs}
}

// event logs a security event as a structured line (with the request id,
// which the logger takes from ctx) and counts it.
func (s *Service) event(ctx context.Context, level slog.Level, msg, event string, attrs ...any) {
	s.obs.AuthEvent(event)
	s.log.Log(ctx, level, msg, append([]any{"event", event}, attrs...)...)
}

// Client describes the device signing in, kept with its session.
type Client struct {
	IP        string
	UserAgent string
}

// Tokens are the tokens issued at login and refresh.
type Tokens struct {
	IssuedAt         time.Time
	Access           string
	AccessExpiresAt  time.Time
	Refresh          string
	RefreshExpiresAt time.Time

	undo func()
}

// Undo reverts what issuing the tokens changed, for a client that never
// received them (its connection closed before the answer was written): a
// login's session is revoked, and a refresh's spent token is usable again,
// so that the client's next refresh with it is not taken for reuse. It runs
// under its own bounded context and logs a failure.
func (t *Tokens) Undo() {
	if t != nil && t.undo != nil {
		t.undo()
		t.undo = nil
	}
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

// Identity is who an access token speaks for.
type Identity struct {
	User      *User
	SessionID string
}

// HashToken returns the form in which a refresh token is stored: SHA-256,
// base64url. The token itself is never stored.
func HashToken(t string) string {
	sum := sha256.Sum256([]byte(t))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// storeErr turns a store failure into what a client may see, and counts
// it: an outage becomes ErrServiceUnavailable (the cause stays in the chain
// for the log); anything else stays internal.
func (s *Service) storeErr(op string, err error) error {
	unavailable := errors.Is(err, ErrUnavailable)
	s.obs.DatabaseError(unavailable)
	if unavailable {
		return fmt.Errorf("%s: %w: %w", op, ErrServiceUnavailable, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// Register validates the input and creates a user with role USER, verified
// (there is no e-mail step yet). It does not sign in.
//
// Errors: CodeBadUserInput (naming the field), CodeConflict when the e-mail
// is registered, also under concurrent registration.
func (s *Service) Register(ctx context.Context, in RegisterInput) (*User, error) {
	if err := in.Validate(); err != nil {
		return nil, err
	}
	hash, err := s.hasher.Hash(ctx, in.Password)
	if err != nil {
		return nil, err
	}
	now := s.now().UTC().Truncate(time.Millisecond) // what the database keeps
	u := &User{
		Name:         in.Name,
		Email:        in.Email,
		Photo:        in.Photo,
		Role:         RoleUser,
		Verified:     true,
		PasswordHash: hash,
		CreatedAt:    now,
		UpdatedAt:    now,
	}
	wctx, cancel := s.detached(ctx)
	defer cancel()
	if err := s.store.CreateUser(wctx, u); err != nil {
		if ErrorCode(err) == CodeConflict {
			return nil, err
		}
		return nil, s.storeErr("creating user", err)
	}
	s.event(ctx, slog.LevelInfo, "user registered", "register", "user_id", u.ID)
	return u, nil
}

// Login checks the credentials and starts a session.
//
// Errors: CodeBadUserInput for a malformed e-mail or a password outside
// 8–72 bytes; CodeUnauthenticated with one message for an unknown e-mail and
// a wrong password (both cost one bcrypt compare); CodeRateLimited while the
// e-mail is throttled or too many passwords are being hashed; CodeForbidden
// for an unverified account.
func (s *Service) Login(ctx context.Context, email, password string, client Client) (*User, *Tokens, error) {
	email = NormalizeEmail(email)
	if err := ValidateEmail(email); err != nil {
		return nil, nil, err
	}
	if err := ValidatePassword(passwordFieldName, password); err != nil {
		return nil, nil, err
	}
	// A throttled e-mail is answered at once, without waiting for a slot.
	attempts, err := s.throttleCheck(ctx, email)
	if err != nil {
		return nil, nil, err
	}
	u, err := s.store.UserByEmail(ctx, email)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, nil, s.storeErr("finding user", err)
	}
	slot, err := s.hasher.Slot(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer slot.Release()
	// Count the attempt before comparing, so that concurrent guesses cannot
	// all pass the check before any of them is counted.
	if attempts, err = s.countAttempt(ctx, email, attempts); err != nil {
		return nil, nil, err
	}
	hash := ""
	if u != nil {
		hash = u.PasswordHash
	}
	ok, err := slot.Check(hash, password)
	if err != nil {
		return nil, nil, err
	}
	if !ok || u == nil {
		s.event(ctx, slog.LevelInfo, "login failed", "login_failed", "known_email", u != nil)
		return nil, nil, ErrInvalidCredentials
	}
	// From here on the sign-in writes; it finishes them even if the client
	// goes away, so that nothing is left half done.
	wctx, cancel := s.detached(ctx)
	defer cancel()
	if err := s.resetAttempts(wctx, email, attempts); err != nil {
		return nil, nil, err
	}
	if !u.Verified {
		return nil, nil, ErrNotVerified
	}

	now := s.now().UTC()
	sess := &Session{
		UserID:    u.ID,
		CreatedAt: now,
		ExpiresAt: now.Add(s.cfg.SessionMaxLifetime),
		UserAgent: truncateUTF8(client.UserAgent, MaxUserAgentBytes),
		IP:        client.IP,
	}
	revoked, err := s.store.CreateSession(wctx, sess)
	if err != nil {
		if sess.ID != "" {
			s.revokeQuietly(wctx, sess.ID, u.ID, ReasonSignInFailed)
		}
		return nil, nil, s.storeErr("creating session", err)
	}
	for _, id := range revoked {
		s.event(ctx, slog.LevelInfo, "session revoked", "session_revoked", "reason", ReasonSessionLimit, "user_id", u.ID, "session_id", id)
	}
	// A password change may have landed between the check and the session:
	// its sign-out of other sessions could then have missed this one.
	// Check again, now that the session exists.
	if again, err := s.store.UserByID(wctx, u.ID); err != nil || again.PasswordHash != u.PasswordHash {
		if rerr := s.revoke(wctx, sess.ID, u.ID, ReasonPasswordChange, now); rerr != nil {
			return nil, nil, rerr
		}
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, nil, s.storeErr("checking user", err)
		}
		return nil, nil, ErrInvalidCredentials
	}
	tokens, err := s.issue(wctx, u.ID, sess.ID, sess.ExpiresAt, now)
	if err != nil {
		s.revokeQuietly(wctx, sess.ID, u.ID, ReasonSignInFailed)
		return nil, nil, err
	}
	undoCtx := context.WithoutCancel(ctx)
	tokens.undo = func() { s.revokeQuietly(undoCtx, sess.ID, u.ID, ReasonUndelivered) }
	if ctx.Err() != nil {
		tokens.Undo() // the client is gone: nobody holds these tokens
		return nil, nil, fmt.Errorf("login: %w", ctx.Err())
	}
	s.event(ctx, slog.LevelInfo, "login succeeded", "login", "user_id", u.ID, "session_id", sess.ID)
	return u, tokens, nil
}

// revokeQuietly revokes a session that the caller is abandoning (a sign-in
// that failed half-way, or whose answer was never delivered), under a
// bounded context of its own (the caller's may be what ran out), and logs a
// failure instead of returning it.
func (s *Service) revokeQuietly(ctx context.Context, sid, uid, reason string) {
	ctx, cancel := s.detached(ctx)
	defer cancel()
	if err := s.revoke(ctx, sid, uid, reason, s.now().UTC()); err != nil {
		s.log.WarnContext(ctx, "could not revoke an abandoned session", "session_id", sid, "reason", reason, "err", err.Error())
	}
}

// throttled returns the RATE_LIMITED error for a throttle delay, and logs it.
func (s *Service) throttled(ctx context.Context, d time.Duration) error {
	secs := RetryAfterSeconds(d)
	s.event(ctx, slog.LevelInfo, "login throttled", "login_throttled", "retry_after", secs)
	return &Error{Code: CodeRateLimited, Message: "Too many failed attempts; try again later", RetryAfter: secs}
}

// throttleCheck reads the e-mail's attempts and refuses a throttled e-mail.
func (s *Service) throttleCheck(ctx context.Context, email string) (LoginAttempts, error) {
	if !s.cfg.LoginThrottle.Enabled() {
		return LoginAttempts{}, nil
	}
	attempts, err := s.store.LoginAttempts(ctx, email)
	if err != nil {
		return LoginAttempts{}, s.storeErr("reading login attempts", err)
	}
	if d := s.cfg.LoginThrottle.Delay(attempts, s.now()); d > 0 {
		return LoginAttempts{}, s.throttled(ctx, d)
	}
	return attempts, nil
}

// countAttempt appends an attempt to the e-mail's record unless it is
// throttled. Each record number is taken by one insert, so concurrent
// attempts are each counted, and each sees the ones before it.
func (s *Service) countAttempt(ctx context.Context, email string, cur LoginAttempts) (LoginAttempts, error) {
	p := s.cfg.LoginThrottle
	if !p.Enabled() {
		return cur, nil
	}
	for range maxAppendTries {
		now := s.now()
		if d := p.Delay(cur, now); d > 0 {
			return cur, s.throttled(ctx, d)
		}
		next := p.Fail(cur, now)
		next.Seq = cur.Seq + 1
		taken, isTaken, err := s.store.AppendLoginAttempts(ctx, email, next, now)
		if err != nil {
			return cur, s.storeErr("counting login attempt", err)
		}
		if !isTaken {
			return next, nil
		}
		cur = taken
	}
	return cur, errors.New("counting login attempt: too much contention")
}

// resetAttempts records a success, which clears the e-mail's failures.
func (s *Service) resetAttempts(ctx context.Context, email string, cur LoginAttempts) error {
	if !s.cfg.LoginThrottle.Enabled() {
		return nil
	}
	for range maxAppendTries {
		taken, isTaken, err := s.store.AppendLoginAttempts(ctx, email, LoginAttempts{Seq: cur.Seq + 1}, s.now())
		if err != nil {
			return s.storeErr("resetting login attempts", err)
		}
		if !isTaken {
			return nil
		}
		cur = taken
	}
	return errors.New("resetting login attempts: too much contention")
}

// maxAppendTries bounds the retries of an attempt record under contention.
const maxAppendTries = 100

// Refresh spends a refresh token and issues a new pair for the same session.
//
// A token is spent by the first caller. A later caller inside the grace
// window (concurrent tabs) gets its own new pair; one outside it has
// presented a stolen or replayed token, and the whole session is revoked.
//
// Errors: CodeUnauthenticated for a missing, invalid, expired, unknown or
// replayed token, a revoked session or a deleted user; CodeForbidden for an
// unverified account.
func (s *Service) Refresh(ctx context.Context, refreshToken string) (*User, *Tokens, error) {
	if refreshToken == "" {
		return nil, nil, ErrMissingRefreshToken
	}
	claims, err := s.tokens.Verify(token.Refresh, refreshToken)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrRefreshTokenInvalid, err)
	}
	rec, err := s.store.RefreshTokenByHash(ctx, HashToken(refreshToken))
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, nil, fmt.Errorf("%w: token not issued by this server", ErrRefreshTokenInvalid)
	case err != nil:
		return nil, nil, s.storeErr("finding refresh token", err)
	case rec.SessionID != claims.SessionID || rec.UserID != claims.Subject:
		return nil, nil, fmt.Errorf("%w: token does not match its record", ErrRefreshTokenInvalid)
	case !s.now().Before(rec.ExpiresAt):
		// Verification tolerates clock skew; the record's expiry does not.
		return nil, nil, fmt.Errorf("%w: token expired", ErrRefreshTokenInvalid)
	}
	u, err := s.liveUser(ctx, claims)
	if err != nil {
		return nil, nil, err
	}

	// From the spend on, the refresh writes under its own context: a client
	// that goes away must not leave its token spent and unreplaced.
	wctx, cancel := s.detached(ctx)
	defer cancel()
	now := s.now().UTC()
	spend, err := s.store.SpendRefreshToken(wctx, rec, now)
	if err != nil {
		return nil, nil, s.storeErr("spending refresh token", err)
	}
	first := spend.First
	if spend.Withdrawn {
		// Issued in an answer that was never delivered, and withdrawn: its
		// predecessor was made usable again instead. Whoever holds it
		// received an answer the server believes lost; refuse it without
		// taking it for theft.
		s.log.InfoContext(ctx, "withdrawn refresh token presented", "user_id", rec.UserID, "session_id", rec.SessionID)
		return nil, nil, fmt.Errorf("%w: withdrawn token presented", ErrRefreshTokenInvalid)
	}
	if !first && now.Sub(spend.FirstSpentAt) > s.cfg.RefreshReuseGrace {
		if err := s.revoke(wctx, rec.SessionID, rec.UserID, ReasonReuse, now); err != nil {
			return nil, nil, err
		}
		s.event(ctx, slog.LevelWarn, "refresh token reuse detected; session revoked", "refresh_reuse", "user_id", rec.UserID, "session_id", rec.SessionID, "first_spent_at", spend.FirstSpentAt)
		return nil, nil, fmt.Errorf("%w: spent token presented again", ErrRefreshTokenInvalid)
	}
	tokens, err := s.issue(wctx, u.ID, rec.SessionID, rec.SessionExpiresAt, now)
	if err != nil {
		if first {
			s.unspend(context.WithoutCancel(ctx), rec.Hash)
		}
		return nil, nil, err
	}
	if terr := s.store.TouchSession(wctx, rec.SessionID, now); terr != nil {
		s.log.WarnContext(ctx, "session last-used time not updated", "err", terr.Error())
	}
	if first {
		// The client keeps its old token until it receives the new one.
		// When it cannot (its answer is not delivered), the new token is
		// withdrawn and the old one made usable again, so that its retry
		// after the grace window is not taken for reuse. The withdrawal
		// comes first and is decided by a unique insert against the new
		// token's spend: if the answer reached the client after all (it
		// closed only its half of the connection), and it spent the new
		// token, the old one stays spent, so no client ever holds two live
		// tokens of one session.
		issued := &RefreshToken{Hash: HashToken(tokens.Refresh), SessionID: rec.SessionID, UserID: rec.UserID, ExpiresAt: tokens.RefreshExpiresAt}
		undoCtx := context.WithoutCancel(ctx)
		tokens.undo = func() {
			ctx, cancel := s.detached(undoCtx)
			defer cancel()
			withdrawn, err := s.store.WithdrawRefreshToken(ctx, issued, s.now().UTC())
			if err != nil {
				s.log.WarnContext(ctx, "could not withdraw a refresh token whose answer was not delivered", "err", err.Error())
				return
			}
			if withdrawn {
				s.unspend(undoCtx, rec.Hash)
			}
		}
	}
	if ctx.Err() != nil {
		tokens.Undo() // the client is gone: it keeps its old token
		return nil, nil, fmt.Errorf("refresh: %w", ctx.Err())
	}
	s.event(ctx, slog.LevelInfo, "session refreshed", "refresh", "user_id", u.ID, "session_id", rec.SessionID, "grace", !first)
	return u, tokens, nil
}

// unspend makes a spent refresh token usable again (its replacement never
// reached the client), under its own bounded context.
func (s *Service) unspend(ctx context.Context, hash string) {
	ctx, cancel := s.detached(ctx)
	defer cancel()
	if err := s.store.UnspendRefreshToken(ctx, hash); err != nil {
		s.log.WarnContext(ctx, "could not un-spend a refresh token whose replacement was not delivered", "err", err.Error())
	}
}

// Logout revokes the session of the access token, and that of the refresh
// token if it is another one. It succeeds when there is nothing to revoke.
func (s *Service) Logout(ctx context.Context, accessToken, refreshToken string) error {
	type target struct{ sid, uid string }
	var targets []target
	if c, err := s.tokens.Verify(token.Access, accessToken); err == nil {
		targets = append(targets, target{c.SessionID, c.Subject})
	}
	if c, err := s.tokens.Verify(token.Refresh, refreshToken); err == nil {
		if len(targets) == 0 || targets[0].sid != c.SessionID {
			targets = append(targets, target{c.SessionID, c.Subject})
		}
	}
	now := s.now().UTC()
	wctx, cancel := s.detached(ctx)
	defer cancel()
	for _, t := range targets {
		if err := s.revoke(wctx, t.sid, t.uid, ReasonLogout, now); err != nil {
			return err
		}
		s.event(ctx, slog.LevelInfo, "logout", "logout", "user_id", t.uid, "session_id", t.sid)
	}
	return nil
}

// Authenticate checks an access token and returns its user and session.
//
// Errors: CodeUnauthenticated for no token, an invalid or expired one, a
// revoked session or a deleted user; CodeForbidden for an unverified account.
func (s *Service) Authenticate(ctx context.Context, accessToken string) (*Identity, error) {
	if accessToken == "" {
		return nil, ErrNotLoggedIn
	}
	claims, err := s.tokens.Verify(token.Access, accessToken)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	u, err := s.liveUser(ctx, claims)
	if err != nil {
		return nil, err
	}
	return &Identity{User: u, SessionID: claims.SessionID}, nil
}

// liveUser checks that the claims' session is not revoked and returns its
// user, which must exist and be verified.
func (s *Service) liveUser(ctx context.Context, c token.Claims) (*User, error) {
	// The two look-ups are independent: run them at once (this is the path
	// of every authenticated request).
	var (
		u       *User
		userErr error
		done    = make(chan struct{})
	)
	go func() {
		defer close(done)
		defer func() { // not gqlgen's goroutine: its recovery does not reach here
			if p := recover(); p != nil {
				userErr = fmt.Errorf("finding user: panic: %v", p)
			}
		}()
		u, userErr = s.store.UserByID(ctx, c.Subject)
	}()
	revoked, err := s.store.SessionRevoked(ctx, c.SessionID)
	<-done
	if err != nil {
		return nil, s.storeErr("checking session", err)
	}
	if revoked {
		return nil, fmt.Errorf("%w: session revoked", ErrInvalidToken)
	}
	err = userErr
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, ErrUserGone
	case err != nil:
		return nil, s.storeErr("finding user", err)
	case !u.Verified:
		return nil, ErrNotVerified
	}
	return u, nil
}

// revoke records the session's revocation. The store keeps it for as long
// as any of the session's tokens could verify: until the session's own
// expiry, whatever the configuration says today.
func (s *Service) revoke(ctx context.Context, sid, uid, reason string, now time.Time) error {
	if _, err := s.store.RevokeSession(ctx, sid, uid, reason, now); err != nil {
		return s.storeErr("revoking session", err)
	}
	return nil
}

// issue signs an access and a refresh token for the session, neither
// outliving the session's absolute lifetime, and stores the refresh token's
// hash before returning it, so no token a client receives is unknown.
func (s *Service) issue(ctx context.Context, uid, sid string, sessionExpiresAt, now time.Time) (*Tokens, error) {
	now = now.Truncate(time.Second) // JWT times are whole seconds
	accessExp := minTime(now.Add(s.cfg.AccessTokenTTL), sessionExpiresAt)
	refreshExp := minTime(now.Add(s.cfg.RefreshTokenTTL), sessionExpiresAt)
	if !refreshExp.After(now) {
		return nil, fmt.Errorf("%w: session reached its maximum lifetime", ErrRefreshTokenInvalid)
	}
	access, err := s.tokens.Sign(token.Access, token.Claims{Subject: uid, SessionID: sid, IssuedAt: now, ExpiresAt: accessExp})
	if err != nil {
		return nil, err
	}
	refresh, err := s.tokens.Sign(token.Refresh, token.Claims{Subject: uid, SessionID: sid, IssuedAt: now, ExpiresAt: refreshExp})
	if err != nil {
		return nil, err
	}
	rec := &RefreshToken{
		Hash:             HashToken(refresh),
		SessionID:        sid,
		UserID:           uid,
		IssuedAt:         now,
		ExpiresAt:        refreshExp,
		SessionExpiresAt: sessionExpiresAt,
	}
	if err := s.store.SaveRefreshToken(ctx, rec); err != nil {
		return nil, s.storeErr("saving refresh token", err)
	}
	return &Tokens{IssuedAt: now, Access: access, AccessExpiresAt: accessExp, Refresh: refresh, RefreshExpiresAt: refreshExp}, nil
}

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

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
