package token_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gqlauth/gqlauth/internal/token"
)

// FuzzVerify feeds arbitrary strings to the verifier: it must never panic,
// must refuse everything but tokens it signed, and must wrap ErrInvalid.
func FuzzVerify(f *testing.F) {
	k := newKey(f, token.ES256) // fast to generate; the parsing is the same
	m := newManager(f, k, nil)
	now := time.Now()
	signed := map[string]bool{}
	for _, kind := range []token.Kind{token.Access, token.Refresh} {
		s, err := m.Sign(kind, token.Claims{Subject: "u", SessionID: "u.1", IssuedAt: now, ExpiresAt: now.Add(time.Hour)})
		if err != nil {
			f.Fatal(err)
		}
		signed[s] = true
		f.Add(s)
		parts := strings.Split(s, ".")
		f.Add(parts[0] + "." + parts[1] + ".")
		f.Add(parts[0] + "=." + parts[1] + "." + parts[2])
	}
	for _, seed := range []string{"", ".", "..", "a.b.c", "eyJhbGciOiJub25lIn0.e30.", strings.Repeat("A", 5000)} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, kind := range []token.Kind{token.Access, token.Refresh} {
			c, err := m.Verify(kind, s)
			if err == nil {
				if !signed[s] {
					t.Fatalf("accepted a token it did not sign: %q", s)
				}
				if c.Subject != "u" || c.SessionID != "u.1" {
					t.Fatalf("claims %+v", c)
				}
				continue
			}
			if !errors.Is(err, token.ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
		}
	})
}
