package auth

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// throttled returns the RATE_LIMITED error for a throttle delay, and logs it.
func (s *Service) throttled(ctx context.Context, d time.Duration) error {
	secs := RetryAfterSeconds(d)
	s.event(ctx, slog.LevelInfo, "login throttled", EventLoginThrottled, "retry_after", secs)
	return &Error{Code: CodeRateLimited, Message: "Too many failed attempts; try again later", RetryAfter: secs}
}

// throttleCheck reads the e-mail's attempts and refuses a throttled e-mail.
func (s *Service) throttleCheck(ctx context.Context, email string) (LoginAttempts, error) {
	if !s.cfg.LoginThrottle.Enabled() {
		return LoginAttempts{}, nil
	}
	attempts, err := s.attempts.LoginAttempts(ctx, email)
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
		taken, isTaken, err := s.attempts.AppendLoginAttempts(ctx, email, next, now)
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
		taken, isTaken, err := s.attempts.AppendLoginAttempts(ctx, email, LoginAttempts{Seq: cur.Seq + 1}, s.now())
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

// checkPassword checks a signed-in user's current password as a login
// does: counted by the e-mail's throttle, refused while it is throttled.
func (s *Service) checkPassword(ctx context.Context, u *User, current string) error {
	if len(current) > MaxPasswordBytes || current == "" {
		return InputError("currentPassword", "Current password is incorrect")
	}
	addr := NormalizeEmail(u.Email) // the login throttle's key
	attempts, err := s.throttleCheck(ctx, addr)
	if err != nil {
		return err
	}
	slot, err := s.passwords.Slot(ctx)
	if err != nil {
		return hashErr(err)
	}
	defer slot.Release()
	if attempts, err = s.countAttempt(ctx, addr, attempts); err != nil {
		return err
	}
	ok, err := slot.Check(u.PasswordHash, current)
	if err != nil {
		return err
	}
	if !ok {
		s.event(ctx, slog.LevelInfo, "password check failed", EventLoginFailed, "user_id", u.ID)
		return InputError("currentPassword", "Current password is incorrect")
	}
	return s.resetAttempts(ctx, addr, attempts)
}
