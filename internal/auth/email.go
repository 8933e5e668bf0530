package auth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/gqlauth/gqlauth/internal/email"
)

// EmailConfig is the account e-mails' configuration.
type EmailConfig struct {
	// VerificationRequired: register creates unverified users and sends
	// them a verification e-mail.
	VerificationRequired bool
	// LinkBase is the base URL of the links (no trailing slash).
	LinkBase  string
	VerifyTTL time.Duration
	ResetTTL  time.Duration
}

// Mailer queues an e-mail for the background sender; it never waits for
// SMTP.
type Mailer interface {
	Queue(ctx context.Context, m email.Message) error
}

// ErrBadEmailToken is the one answer for a link's token that is invalid,
// expired, spent or void.
var ErrBadEmailToken = InputError("token", "The link is invalid or has expired; ask for a new one")

// E-mail limits: for each kind and address, at most one in any
// EmailMinInterval and EmailPerHour in any hour; and a user asks for at most
// ChangesPerUserPerHour changes of address in an hour (each to another
// address), so that one account cannot write to many inboxes.
const (
	EmailMinInterval      = time.Minute
	EmailPerHour          = 5
	ChangesPerUserPerHour = 10
)

// emailLimit is a limit on e-mails of one kind to one address (or from one
// user).
type emailLimit struct {
	kind, who   string
	minInterval time.Duration
	perHour     int
}

func addressLimit(kind, addr string) emailLimit {
	return emailLimit{kind: kind, who: addr, minInterval: EmailMinInterval, perHour: EmailPerHour}
}

// emailLimitKey is the key of an address's (or user's) e-mail limit in the
// attempt records: "mail:<kind>:<address>" cannot collide with a login
// e-mail (a local part with a colon would be quoted).
func emailLimitKey(kind, who string) string { return "mail:" + kind + ":" + who }

// takeEmailSlot counts one e-mail of kind for who against the limits, in
// the store (so the limits hold across instances; each record number is
// taken by one insert, so concurrent requests are each counted). It returns
// RATE_LIMITED, with the seconds until the next is allowed, when the limit
// is reached; force counts the e-mail even then (the one register sends).
func (s *Service) takeEmailSlot(ctx context.Context, l emailLimit, force bool) error {
	key := emailLimitKey(l.kind, l.who)
	cur, err := s.attempts.LoginAttempts(ctx, key)
	if err != nil {
		return s.storeErr("reading e-mail limits", err)
	}
	for range maxAppendTries {
		now := s.now().UTC()
		var recent []time.Time
		for _, t := range cur.Failures {
			if now.Sub(t) < time.Hour {
				recent = append(recent, t)
			}
		}
		var wait time.Duration
		if n := len(recent); n > 0 {
			wait = l.minInterval - now.Sub(recent[n-1])
			if n >= l.perHour {
				wait = max(wait, time.Hour-now.Sub(recent[n-l.perHour]))
			}
		}
		if wait > 0 && !force {
			secs := RetryAfterSeconds(wait)
			s.event(ctx, slog.LevelInfo, "e-mail limited", EventEmailLimited, "kind", l.kind, "retry_after", secs)
			return &Error{Code: CodeRateLimited, Message: "Too many e-mails asked for; try again later", RetryAfter: secs}
		}
		if len(recent) >= l.perHour {
			recent = recent[len(recent)-l.perHour+1:]
		}
		next := LoginAttempts{Seq: cur.Seq + 1, Failures: append(recent, now)}
		taken, isTaken, err := s.attempts.AppendLoginAttempts(ctx, key, next, now)
		if err != nil {
			return s.storeErr("counting e-mail", err)
		}
		if !isTaken {
			return nil
		}
		cur = taken
	}
	return errors.New("counting e-mail: too much contention")
}

// newEmailToken makes a link's token (256 random bits) and stores its hash.
func (s *Service) newEmailToken(ctx context.Context, kind string, u *User, newEmail string, ttl time.Duration) (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	raw := base64.RawURLEncoding.EncodeToString(b[:])
	now := s.now().UTC().Truncate(time.Millisecond)
	t := &EmailToken{Hash: HashToken(raw), Kind: kind, UserID: u.ID, Email: NormalizeEmail(u.Email), NewEmail: newEmail,
		PasswordGen: u.PasswordGen, CreatedAt: now, ExpiresAt: now.Add(ttl)}
	if err := s.emailTokens.SaveEmailToken(ctx, t); err != nil {
		return "", s.storeErr("saving e-mail token", err)
	}
	return raw, nil
}

// queue hands an e-mail to the mailer, under a detached context (the
// answer says it is queued); a failure is logged and counted, and the
// caller's answer does not change.
func (s *Service) queue(ctx context.Context, m email.Message) {
	ctx, cancel := s.detached(ctx)
	defer cancel()
	if err := s.mailer.Queue(ctx, m); err != nil {
		s.log.WarnContext(ctx, "e-mail not queued", "kind", string(m.Kind), "err", err.Error())
	}
}

// sendLink makes a token for u and queues the e-mail of kind with its link.
func (s *Service) sendLink(ctx context.Context, k email.Kind, tokenKind string, u *User, to, newEmail string, ttl time.Duration) error {
	raw, err := s.newEmailToken(ctx, tokenKind, u, newEmail, ttl)
	if err != nil {
		s.observer.EmailDropped("not_queued")
		return err
	}
	s.queue(ctx, email.Message{Kind: k, To: to, Name: u.Name, Email: NormalizeEmail(u.Email), NewEmail: newEmail,
		Link: email.Link(s.cfg.Email.LinkBase, k, raw), ExpiresIn: ttl})
	return nil
}

// PrepareEmail completes, for the delivery worker, an e-mail that
// sendVerificationEmail or requestPasswordReset queued with only its kind
// and address: it looks the user up and, when the address is registered
// (and, for verification, not verified), makes the link's token (its
// lifetime counted from queuedAt, the request). It returns false for an
// address that gets no e-mail. Doing this in the worker is what makes
// those two requests write the same records, in the same time, for a
// registered and an unknown address, and still lose nothing to a crash
// once answered.
func (s *Service) PrepareEmail(ctx context.Context, m email.Message, queuedAt time.Time) (email.Message, bool, error) {
	u, err := s.users.UserByEmail(ctx, m.To)
	switch {
	case errors.Is(err, ErrNotFound):
		return m, false, nil
	case err != nil:
		return m, false, err
	}
	kind, ttl := TokenReset, s.cfg.Email.ResetTTL
	switch m.Kind {
	case email.KindVerify:
		if u.Verified {
			return m, false, nil
		}
		kind, ttl = TokenVerify, s.cfg.Email.VerifyTTL
	case email.KindReset:
	default:
		return m, false, fmt.Errorf("prepare e-mail: kind %q is never deferred", m.Kind)
	}
	ttl -= max(0, s.now().Sub(queuedAt))
	if ttl <= 0 {
		return m, false, nil // the link would be born expired
	}
	raw, err := s.newEmailToken(ctx, kind, u, "", ttl)
	if err != nil {
		return m, false, err
	}
	m.Deferred = false
	m.Name, m.Email, m.ExpiresIn = u.Name, NormalizeEmail(u.Email), ttl
	m.Link = email.Link(s.cfg.Email.LinkBase, m.Kind, raw)
	return m, true, nil
}

// emailToken reads a link's token and checks its kind and expiry.
func (s *Service) emailToken(ctx context.Context, raw, kind string) (*EmailToken, error) {
	if raw == "" || len(raw) > 256 {
		return nil, ErrBadEmailToken
	}
	t, err := s.emailTokens.EmailTokenByHash(ctx, HashToken(raw))
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, ErrBadEmailToken
	case err != nil:
		return nil, s.storeErr("reading e-mail token", err)
	case t.Kind != kind || !s.now().Before(t.ExpiresAt):
		return nil, ErrBadEmailToken
	}
	return t, nil
}

// boundUser returns the token's user when the token is still bound to it:
// the same address, and (for reset and change links) the same password.
func (s *Service) boundUser(ctx context.Context, t *EmailToken) (*User, error) {
	u, err := s.users.UserByID(ctx, t.UserID)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, ErrBadEmailToken
	case err != nil:
		return nil, s.storeErr("finding user", err)
	}
	if err := bound(u, t); err != nil {
		return nil, err
	}
	return u, nil
}

func bound(u *User, t *EmailToken) error {
	if NormalizeEmail(u.Email) != t.Email || (t.Kind != TokenVerify && u.PasswordGen != t.PasswordGen) {
		return ErrBadEmailToken
	}
	return nil
}

// spend spends the token; a concurrent use that won makes this one invalid.
func (s *Service) spend(ctx context.Context, t *EmailToken) error {
	first, err := s.emailTokens.SpendEmailToken(ctx, t, s.now().UTC())
	if err != nil {
		return s.storeErr("spending e-mail token", err)
	}
	if !first {
		return ErrBadEmailToken
	}
	return nil
}

// unspend gives a token back when its effect failed.
func (s *Service) unspendEmailToken(ctx context.Context, t *EmailToken) {
	if err := s.emailTokens.UnspendEmailToken(ctx, t.Hash); err != nil {
		s.log.WarnContext(ctx, "could not give back an e-mail token", "err", err.Error())
	}
}
