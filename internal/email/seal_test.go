package email_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/gqlauth/gqlauth/internal/email"
)

func sealer(t *testing.T, keys ...byte) *email.Sealer {
	t.Helper()
	var ks [][]byte
	for _, k := range keys {
		ks = append(ks, bytes.Repeat([]byte{k}, 32))
	}
	s, err := email.NewSealer(ks)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSealedLinks: what the outbox stores holds no usable link, opens back
// to the link under the same or a kept earlier key, and does not open under
// another key, for another e-mail, altered, or unsealed.
func TestSealedLinks(t *testing.T) {
	m := message()
	s := sealer(t, 1)
	sealed, err := s.Seal(m)
	if err != nil {
		t.Fatal(err)
	}
	// '#', '=' and '.' are outside base64url: a sealed link cannot hold
	// them by chance.
	if sealed.Link == m.Link || strings.Contains(sealed.Link, "#token=") || strings.Contains(sealed.Link, "app.example") {
		t.Fatalf("sealed link %q shows the link", sealed.Link)
	}
	if again, _ := s.Seal(m); again.Link == sealed.Link {
		t.Fatal("two seals of one link are equal: the nonce is not random")
	}
	if twice, _ := s.Seal(sealed); twice.Link != sealed.Link {
		t.Fatal("a sealed link was sealed again")
	}
	for name, opener := range map[string]*email.Sealer{"same key": s, "kept earlier key": sealer(t, 2, 1)} {
		got, err := opener.Open(sealed)
		if err != nil || got.Link != m.Link {
			t.Fatalf("%s: %q, %v", name, got.Link, err)
		}
	}
	moved := sealed
	moved.ID = "another-mail"
	redirected := sealed
	redirected.To = "attacker@example.com"
	otherKind := sealed
	otherKind.Kind = email.KindChangeConfirm
	altered := sealed
	altered.Link = altered.Link[:len(altered.Link)-2] + map[bool]string{true: "AA", false: "BB"}[strings.HasSuffix(altered.Link, "BB")]
	cut := sealed
	cut.Link = "sealed1.AAAA"
	cases := map[string]struct {
		s *email.Sealer
		m email.Message
	}{
		"another key":     {sealer(t, 3), sealed},
		"another e-mail":  {s, moved},
		"another address": {s, redirected},
		"another kind":    {s, otherKind},
		"altered":         {s, altered},
		"cut short":       {s, cut},
		"stored unsealed": {s, m},
		"no sealer":       {nil, sealed},
	}
	for name, c := range cases {
		if _, err := c.s.Open(c.m); !errors.Is(err, email.ErrUnreadable) {
			t.Errorf("%s: %v, want ErrUnreadable", name, err)
		}
	}
	if _, err := (*email.Sealer)(nil).Seal(m); err == nil {
		t.Error("a nil sealer stored a link unsealed")
	}
	notice := email.Message{ID: "n", Kind: email.KindChangeNotice}
	if got, err := (*email.Sealer)(nil).Seal(notice); err != nil || got.Link != "" {
		t.Errorf("a message without a link: %v", err)
	}
	if _, err := email.NewSealer(nil); err == nil {
		t.Error("a sealer without keys")
	}
	if _, err := email.NewSealer([][]byte{make([]byte, 16)}); err == nil {
		t.Error("a 16-byte key was taken")
	}
}
