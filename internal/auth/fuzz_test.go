package auth_test

import (
	"net/mail"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/gqlauth/gqlauth/internal/auth"
)

// FuzzEmail checks e-mail normalisation and validation on arbitrary input:
// normalising is idempotent, and an accepted address keeps every rule.
func FuzzEmail(f *testing.F) {
	for _, seed := range []string{
		"ann@example.com", " Ann@Example.COM ", "a@b", "Ann <ann@example.com>", "\"a b\"@example.com",
		"ann@[127.0.0.1]", "ann@example.com\n", "ann@ex\xffample.com", "ÄNN@EXAMPLE.COM", "a@b@c",
		"ann+tag@sub.example.co.uk", "(comment)ann@example.com", "=?utf-8?q?ann?=@example.com",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		n := auth.NormalizeEmail(in)
		if auth.NormalizeEmail(n) != n {
			t.Fatalf("normalising %q twice changed it: %q", in, n)
		}
		err := auth.ValidateEmail(n)
		if err != nil {
			e, ok := err.(*auth.Error)
			if !ok || e.Code != auth.CodeBadUserInput || e.Field != "email" {
				t.Fatalf("error %#v", err)
			}
			return
		}
		if len(n) > auth.MaxEmailBytes || !utf8.ValidString(n) || n != strings.TrimSpace(n) {
			t.Fatalf("accepted %q", n)
		}
		for _, r := range n {
			if unicode.IsSpace(r) || unicode.IsControl(r) {
				t.Fatalf("accepted %q with a space or control character", n)
			}
		}
		addr, perr := mail.ParseAddress(n)
		if perr != nil || addr.Name != "" || addr.Address != n {
			t.Fatalf("accepted %q, which net/mail reads as %v, %v", n, addr, perr)
		}
	})
}
