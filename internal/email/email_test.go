package email_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gqlauth/gqlauth/internal/email"
	"github.com/gqlauth/gqlauth/internal/smtptest"
)

func message() email.Message {
	return email.Message{ID: "0123abcd", Kind: email.KindReset, To: "ann@example.com", Name: "Ann", Email: "ann@example.com",
		Link: email.Link("https://app.example", email.KindReset, "tok"), ExpiresIn: time.Hour}
}

func templates(t *testing.T, dir string) *email.Templates {
	t.Helper()
	tpl, err := email.LoadTemplates(dir)
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

// TestSMTPModes sends through a real SMTP server in each TLS mode, with
// AUTH, and checks what a wrong authority, a wrong password and a server
// that is down give.
func TestSMTPModes(t *testing.T) {
	ctx := context.Background()
	for _, mode := range []string{"starttls", "tls"} {
		t.Run(mode, func(t *testing.T) {
			srv := smtptest.Start(t, smtptest.Options{Implicit: mode == "tls", RequireAuth: true})
			cfg := email.SMTPConfig{Host: "127.0.0.1", Port: srv.Port, Username: smtptest.Username, Password: smtptest.Password, TLS: mode, CAFile: srv.CAFile, Timeout: 5 * time.Second}
			s, err := email.NewSMTP(cfg, "Acme <no-reply@acme.example>", templates(t, ""))
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Send(ctx, message()); err != nil {
				t.Fatal(err)
			}
			m := srv.Wait(t, 1, 5*time.Second)[0]
			if !m.TLS || m.AuthWas != smtptest.Username || m.Type != "multipart/alternative" || !strings.Contains(m.Text, "https://app.example/reset-password#token=tok") ||
				m.Header.Get("Message-Id") != "<0123abcd@acme.example>" {
				t.Fatalf("delivered: TLS %v AUTH %q type %s id %s\n%s", m.TLS, m.AuthWas, m.Type, m.Header.Get("Message-Id"), m.Text)
			}

			wrongCA := cfg
			wrongCA.CAFile = ""
			s2, _ := email.NewSMTP(wrongCA, "no-reply@acme.example", templates(t, ""))
			if err := s2.Send(ctx, message()); err == nil || email.IsPermanent(err) {
				t.Fatalf("an untrusted certificate: %v, want a temporary failure", err)
			}
			wrongPassword := cfg
			wrongPassword.Password = "not the password"
			s3, _ := email.NewSMTP(wrongPassword, "no-reply@acme.example", templates(t, ""))
			err = s3.Send(ctx, message())
			if err == nil || email.IsPermanent(err) || strings.Contains(err.Error(), "not the password") {
				t.Fatalf("refused credentials: %v, want a temporary failure (the operator fixes them) without the password", err)
			}
			srv.Refuse(550)
			if err := s.Send(ctx, message()); !email.IsPermanent(err) {
				t.Fatalf("a 550: %v, want permanent", err)
			}
			srv.Refuse(451)
			if err := s.Send(ctx, message()); err == nil || email.IsPermanent(err) {
				t.Fatalf("a 451: %v, want temporary", err)
			}
			srv.Stop()
			if err := s.Send(ctx, message()); err == nil || email.IsPermanent(err) {
				t.Fatalf("a server that is down: %v, want temporary", err)
			}
			if len(srv.Messages()) != 1 {
				t.Fatalf("%d delivered", len(srv.Messages()))
			}
		})
	}
}

// TestTLSRequired: EMAIL_TLS=starttls does not fall back to clear text
// against a server that offers no STARTTLS (nor send the credentials), and
// does not take an implicit-TLS port for one; EMAIL_TLS=none sends in clear
// only when asked.
func TestTLSRequired(t *testing.T) {
	ctx := context.Background()
	plain := smtptest.Start(t, smtptest.Options{Plain: true})
	implicit := smtptest.Start(t, smtptest.Options{Implicit: true})
	for name, c := range map[string]struct {
		srv  *smtptest.Server
		user string
	}{
		"no STARTTLS offered":            {plain, ""},
		"no STARTTLS offered, with AUTH": {plain, smtptest.Username},
		"implicit-TLS port, with AUTH":   {implicit, smtptest.Username},
	} {
		srv := c.srv
		s, err := email.NewSMTP(email.SMTPConfig{Host: "127.0.0.1", Port: srv.Port, Username: c.user, Password: smtptest.Password,
			TLS: "starttls", CAFile: srv.CAFile, Timeout: 2 * time.Second}, "no-reply@acme.example", templates(t, ""))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Send(ctx, message()); err == nil {
			t.Fatalf("%s: %v, want a failed send", name, err)
		}
		if n, a := len(srv.Messages()), srv.Auths(); n != 0 || a != 0 {
			t.Fatalf("%s: %d delivered, %d AUTH: sent without TLS", name, n, a)
		}
	}
	s, err := email.NewSMTP(email.SMTPConfig{Host: "127.0.0.1", Port: plain.Port, TLS: "none", Timeout: 2 * time.Second}, "no-reply@acme.example", templates(t, ""))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(ctx, message()); err != nil {
		t.Fatalf("EMAIL_TLS=none: %v", err)
	}
	if m := plain.Wait(t, 1, 5*time.Second)[0]; m.TLS || m.Type != "multipart/alternative" {
		t.Fatalf("EMAIL_TLS=none: TLS %v, type %s", m.TLS, m.Type)
	}
}

// TestTemplatesReplaced: a file in EMAIL_TEMPLATES_DIR replaces the
// built-in one of its name; a broken one stops start-up.
func TestTemplatesReplaced(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "reset_password.subject.txt"), []byte("Acme: reset for {{.Name}}\r\nBcc: x@example.com"), 0o600); err != nil {
		t.Fatal(err)
	}
	tpl := templates(t, dir)
	r, err := tpl.Render(message())
	if err != nil || r.Subject != "Acme: reset for Ann Bcc: x@example.com" || !strings.Contains(r.Text, "reset the password") {
		t.Fatalf("subject %q (one line), text from the built-in: %v", r.Subject, err)
	}
	if len(tpl.Overridden) != 1 {
		t.Fatalf("overridden %v", tpl.Overridden)
	}
	if err := os.WriteFile(filepath.Join(dir, "verify_email.html"), []byte("<p>{{.Nmae}}</p>"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := email.LoadTemplates(dir); err == nil || !strings.Contains(err.Error(), "verify_email.html") {
		t.Fatalf("a template naming a missing field: %v", err)
	}
}
