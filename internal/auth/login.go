package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
)

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
	u, err := s.users.UserByEmail(ctx, email)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, nil, s.storeErr("finding user", err)
	}
	slot, err := s.passwords.Slot(ctx)
	if err != nil {
		return nil, nil, hashErr(err)
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
		s.event(ctx, slog.LevelInfo, "login failed", EventLoginFailed, "known_email", u != nil)
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
	revoked, err := s.sessions.CreateSession(wctx, sess)
	if err != nil {
		if sess.ID != "" {
			s.revokeQuietly(wctx, sess.ID, u.ID, ReasonSignInFailed)
		}
		return nil, nil, s.storeErr("creating session", err)
	}
	for _, id := range revoked {
		s.event(ctx, slog.LevelInfo, "session revoked", EventSessionRevoked, "reason", ReasonSessionLimit, "user_id", u.ID, "session_id", id)
	}
	// A password change may have landed between the check and the session:
	// its sign-out of other sessions could then have missed this one.
	// Check again, now that the session exists.
	if again, err := s.users.UserByID(wctx, u.ID); err != nil || again.PasswordHash != u.PasswordHash {
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
	s.event(ctx, slog.LevelInfo, "login succeeded", EventLogin, "user_id", u.ID, "session_id", sess.ID)
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
