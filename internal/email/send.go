package email

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	mail "github.com/wneessen/go-mail"
)

// SMTPConfig is how to reach the SMTP server.
type SMTPConfig struct {
	Host string
	Port int
	// Username and Password enable AUTH (both or neither).
	Username, Password string
	// TLS is "starttls" (required), "tls" (implicit) or "none".
	TLS string
	// CAFile, when set, is a PEM file of the authorities to trust instead
	// of the system's.
	CAFile string
	// Timeout bounds connecting and each command; 0 means 30s.
	Timeout time.Duration
}

// SMTP sends e-mails through an SMTP server, one connection per e-mail (the
// outbox sends few, and a connection kept open would only go stale).
type SMTP struct {
	cfg       SMTPConfig
	tls       *tls.Config
	from      string
	templates *Templates
}

// NewSMTP checks the configuration (the CA file is read now, so that a bad
// one stops start-up) and returns the sender.
func NewSMTP(cfg SMTPConfig, from string, t *Templates) (*SMTP, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	tc := &tls.Config{ServerName: cfg.Host, MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("EMAIL_TLS_CA_FILE: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.New("EMAIL_TLS_CA_FILE: no PEM certificate in the file")
		}
		tc.RootCAs = pool
	}
	return &SMTP{cfg: cfg, tls: tc, from: from, templates: t}, nil
}

func (s *SMTP) client() (*mail.Client, error) {
	opts := []mail.Option{
		mail.WithPort(s.cfg.Port),
		mail.WithTimeout(s.cfg.Timeout),
		mail.WithTLSConfig(s.tls),
	}
	switch s.cfg.TLS {
	case "tls":
		opts = append(opts, mail.WithSSL())
	case "none":
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
	default:
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
	}
	if s.cfg.Username != "" {
		auth := mail.SMTPAuthAutoDiscover
		if s.cfg.TLS == "none" {
			// The operator allowed clear text (a local relay): PLAIN without
			// TLS, which the discovered mechanisms would refuse.
			auth = mail.SMTPAuthPlainNoEnc
		}
		opts = append(opts, mail.WithSMTPAuth(auth), mail.WithUsername(s.cfg.Username), mail.WithPassword(s.cfg.Password))
	}
	return mail.NewClient(s.cfg.Host, opts...)
}

// Send delivers m. A refusal with an SMTP 5xx code is a *PermanentError; a
// 4xx to this message (but 421) is a *MessageError.
// Errors never carry the password or the link.
func (s *SMTP) Send(ctx context.Context, m Message) error {
	msg, err := build(s.templates, s.from, m)
	if err != nil {
		return &PermanentError{Err: err}
	}
	c, err := s.client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*s.cfg.Timeout)
	defer cancel()
	err = c.DialAndSendWithContext(ctx, msg)
	if err == nil {
		return nil
	}
	var se *mail.SendError
	if errors.As(err, &se) {
		if code := se.ErrorCode(); code >= 500 && code < 600 {
			return &PermanentError{Code: code, Err: fmt.Errorf("SMTP %d (%s)", code, se.EnhancedStatusCode())}
		}
		if code := se.ErrorCode(); code == 421 {
			return fmt.Errorf("SMTP %d (%s): the server is closing", code, se.EnhancedStatusCode())
		} else if code != 0 {
			return &MessageError{Code: code, Err: fmt.Errorf("SMTP %d (%s)", code, se.EnhancedStatusCode())}
		}
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return fmt.Errorf("SMTP server %s: %w", s.cfg.Host, ne)
	}
	return fmt.Errorf("SMTP: %s", redact(err.Error(), s.cfg.Password))
}

// redact removes a secret from a library's message, should it ever be there.
func redact(msg, secret string) string {
	if secret == "" {
		return msg
	}
	return strings.ReplaceAll(msg, secret, "[redacted]")
}

// build renders m into a multipart/alternative message: plain text first,
// HTML as the alternative. The recipient header carries the address alone
// (never the user's name), and go-mail encodes the subject, so nothing a
// user typed can start a header of its own.
func build(t *Templates, from string, m Message) (*mail.Msg, error) {
	r, err := t.Render(m)
	if err != nil {
		return nil, err
	}
	msg := mail.NewMsg()
	if err := msg.From(from); err != nil {
		return nil, fmt.Errorf("EMAIL_FROM: %w", err)
	}
	if strings.ContainsAny(m.To, "\r\n") {
		return nil, errors.New("recipient has a line break")
	}
	if err := msg.To(m.To); err != nil {
		return nil, fmt.Errorf("recipient: %w", err)
	}
	msg.Subject(r.Subject)
	msg.SetDate()
	if m.ID != "" {
		msg.SetMessageIDWithValue(m.ID + "@" + domainOf(from))
	} else {
		msg.SetMessageID()
	}
	msg.SetGenHeader(mail.Header("Auto-Submitted"), "auto-generated")
	msg.SetBodyString(mail.TypeTextPlain, r.Text)
	msg.AddAlternativeString(mail.TypeTextHTML, r.HTML)
	return msg, nil
}

// domainOf returns the domain of the From address, for Message-IDs.
func domainOf(from string) string {
	if i := strings.LastIndexByte(from, '@'); i >= 0 {
		return strings.Trim(from[i+1:], "> ")
	}
	return "localhost"
}

// Mailbox is the development mailbox: each e-mail is written to dir as an
// .eml file (0600, in a 0700 directory) and, when LogLinks is set (outside
// production), its link is logged together with the same link on this
// server's own page, for a newcomer who runs no frontend.
type Mailbox struct {
	Dir       string
	From      string
	Templates *Templates
	Log       *slog.Logger
	LogLinks  bool
	// LinkBase is the configured base of links; OwnBase this server's URL.
	LinkBase, OwnBase string
}

// Send writes m to the mailbox.
func (b *Mailbox) Send(ctx context.Context, m Message) error {
	msg, err := build(b.Templates, b.From, m)
	if err != nil {
		return &PermanentError{Err: err}
	}
	if err := os.MkdirAll(b.Dir, 0o700); err != nil {
		return err
	}
	name := time.Now().UTC().Format("20060102T150405.000Z") + "-" + string(m.Kind) + "-" + safeName(m.ID) + ".eml"
	path := filepath.Join(b.Dir, name)
	f, err := os.OpenFile(path+".tmp", os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, werr := msg.WriteTo(f)
	if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
		os.Remove(path + ".tmp")
		return err
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		return err
	}
	attrs := []any{"kind", string(m.Kind), "file", path}
	if b.LogLinks && m.Link != "" {
		own := b.OwnBase + strings.TrimPrefix(m.Link, b.LinkBase)
		attrs = append(attrs, "to", m.To, "link", m.Link)
		if own != m.Link {
			attrs = append(attrs, "link_on_this_server", own)
		}
	}
	b.Log.InfoContext(ctx, "e-mail written to the development mailbox", attrs...)
	return nil
}

func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '_'
	}, s)
}
