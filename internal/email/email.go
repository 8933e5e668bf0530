// Package email renders and delivers the account e-mails (verification,
// password reset, change of address): templates built into the binary and
// replaceable from a directory, an SMTP sender, and the development mailbox
// that writes .eml files when no SMTP server is configured.
//
// It knows nothing of the store: the outbox (in the Mongo adapter) keeps
// Messages, and the delivery worker (outbox.go) hands each to a Sender.
package email

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Kind names an e-mail: its templates are <kind>.subject.txt, <kind>.txt
// and <kind>.html.
type Kind string

// The e-mails the server sends.
const (
	KindVerify        Kind = "verify_email"
	KindReset         Kind = "reset_password"
	KindChangeConfirm Kind = "confirm_email_change" // to the new address
	KindChangeNotice  Kind = "email_change_notice"  // to the current address
)

// Kinds lists every kind.
var Kinds = []Kind{KindVerify, KindReset, KindChangeConfirm, KindChangeNotice}

// Path is the page a kind's link opens, under the link base (the
// frontend's, or this server's own pages); "" for a kind without a link.
func (k Kind) Path() string {
	switch k {
	case KindVerify:
		return "/verify-email"
	case KindReset:
		return "/reset-password"
	case KindChangeConfirm:
		return "/confirm-email"
	}
	return ""
}

// Message is one e-mail: who it is for and what the templates need. Link
// holds a token in clear (that is what is sent), so a Message is never
// logged whole, and the outbox keeps its link sealed (Sealer).
type Message struct {
	// ID identifies the e-mail across retries (its Message-ID header).
	ID   string
	Kind Kind
	// To is the recipient's normalised address; Name the user's name.
	To   string
	Name string
	// Email is the account's current address and NewEmail the address it
	// is changing to (change of address only).
	Email    string
	NewEmail string
	// Link is the full link, token included ("" for the notice); in the
	// outbox, sealed.
	Link string
	// ExpiresIn is how long the link stays valid, for the text.
	ExpiresIn time.Duration
	// Deferred: only Kind and To are known; the worker has the message
	// prepared (the user looked up, the link made) before sending it, or
	// skips it for an address that gets none.
	Deferred bool
}

// Link returns the link for a token: base + the kind's path + #token=…
// (the fragment stays out of server logs and Referer headers).
func Link(base string, k Kind, token string) string {
	return strings.TrimRight(base, "/") + k.Path() + "#token=" + token
}

// Sender delivers one rendered e-mail.
type Sender interface {
	// Send delivers m. It returns a *PermanentError when the server refused
	// it for good (SMTP 5xx); any other error is worth a retry.
	Send(ctx context.Context, m Message) error
}

// PermanentError is a refusal that retrying will not change.
type PermanentError struct {
	Code int // the SMTP reply code
	Err  error
}

func (e *PermanentError) Error() string {
	return fmt.Sprintf("refused for good (SMTP %d): %v", e.Code, e.Err)
}

func (e *PermanentError) Unwrap() error { return e.Err }

// IsPermanent reports whether err is a PermanentError.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}

// MessageError is a temporary refusal of one message by a server that
// answers (an SMTP 4xx to its sender, recipient or content, but 421): worth
// a retry of that message, and no sign that the others would fail.
type MessageError struct {
	Code int // the SMTP reply code
	Err  error
}

func (e *MessageError) Error() string {
	return fmt.Sprintf("refused for now (SMTP %d): %v", e.Code, e.Err)
}

func (e *MessageError) Unwrap() error { return e.Err }

// serverFailing reports whether a send error means the server itself
// fails (it cannot be reached, TLS or AUTH fails, it closes with 421), as
// opposed to a refusal of one message.
func serverFailing(err error) bool {
	var m *MessageError
	return err != nil && !IsPermanent(err) && !errors.As(err, &m)
}

// humanDuration writes d for a reader: "24 hours", "1 hour", "30 minutes".
func humanDuration(d time.Duration) string {
	plural := func(n int64, unit string) string {
		if n == 1 {
			return "1 " + unit
		}
		return fmt.Sprintf("%d %ss", n, unit)
	}
	switch {
	case d >= 48*time.Hour && d%(24*time.Hour) == 0:
		return plural(int64(d/(24*time.Hour)), "day")
	case d >= time.Hour && d%time.Hour == 0:
		return plural(int64(d/time.Hour), "hour")
	case d >= time.Minute:
		return plural(int64(d/time.Minute), "minute")
	default:
		return plural(int64(d/time.Second), "second")
	}
}
