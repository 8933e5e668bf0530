package token_test

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gqlauth/gqlauth/internal/token"
)

func refreshClaims(now time.Time) token.Claims {
	return token.Claims{Subject: "6560c0ffee0000000000beef", SessionID: "6560c0ffee0000000000beef.3", IssuedAt: now, ExpiresAt: now.Add(time.Hour), SessionExpiresAt: now.Add(720 * time.Hour)}
}

func TestMACRefreshRoundTrip(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	k := newKey(t, token.RS256)
	m := newManager(t, k, func() time.Time { return now })
	tok, err := m.SignRefresh(refreshClaims(now))
	if err != nil {
		t.Fatal(err)
	}
	if !token.IsMACRefresh(tok) || len(tok) > 400 {
		t.Fatalf("token %q (%d bytes)", tok, len(tok))
	}
	c, err := m.VerifyRefresh(tok)
	want := refreshClaims(now)
	if err != nil || c.Subject != want.Subject || c.SessionID != want.SessionID || !c.ExpiresAt.Equal(want.ExpiresAt) || !c.SessionExpiresAt.Equal(want.SessionExpiresAt) || c.ID == "" {
		t.Fatalf("VerifyRefresh = %+v, %v", c, err)
	}
	again, _ := m.SignRefresh(refreshClaims(now))
	if again == tok {
		t.Fatal("two tokens of the same claims are equal: no random part")
	}
	// Another instance with the same signing key accepts it.
	twin := newManager(t, k, func() time.Time { return now })
	if _, err := twin.VerifyRefresh(tok); err != nil {
		t.Fatalf("an instance with the same key refused it: %v", err)
	}
}

// TestMACRefreshRefuses is the table of MAC-format refresh tokens that must
// not verify.
func TestMACRefreshRefuses(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	clock := func() time.Time { return now }
	k := newKey(t, token.EdDSA)
	m := newManager(t, k, clock)
	good, err := m.SignRefresh(refreshClaims(now))
	if err != nil {
		t.Fatal(err)
	}
	body, mac := strings.TrimPrefix(good[:strings.LastIndexByte(good, '.')], "rt2."), good[strings.LastIndexByte(good, '.')+1:]
	payload, _ := base64.RawURLEncoding.DecodeString(body)
	tampered := strings.Replace(string(payload), `"sub":"6560c0ffee0000000000beef"`, `"sub":"000000000000000000000000"`, 1)
	other, _ := newManager(t, newKey(t, token.EdDSA), clock).SignRefresh(refreshClaims(now))
	expired, _ := m.SignRefresh(token.Claims{Subject: "u", SessionID: "u.1", IssuedAt: now.Add(-2 * time.Hour), ExpiresAt: now.Add(-time.Hour), SessionExpiresAt: now.Add(time.Hour)})
	future, _ := m.SignRefresh(token.Claims{Subject: "u", SessionID: "u.1", IssuedAt: now.Add(time.Hour), ExpiresAt: now.Add(2 * time.Hour), SessionExpiresAt: now.Add(3 * time.Hour)})
	jwt, _ := m.Sign(token.Refresh, validClaims())
	for name, tok := range map[string]string{
		"Empty":            "",
		"PrefixOnly":       "rt2.",
		"NoMAC":            "rt2." + body,
		"TamperedPayload":  "rt2." + base64.RawURLEncoding.EncodeToString([]byte(tampered)) + "." + mac,
		"TamperedMAC":      "rt2." + body + "." + strings.Repeat("A", len(mac)),
		"EmptyMAC":         "rt2." + body + ".",
		"PaddedBase64":     "rt2." + body + "=." + mac,
		"OtherServersKey":  other,
		"Expired":          expired,
		"NotYetValid":      future,
		"JWTRefreshToken":  jwt,
		"TooLong":          good + strings.Repeat("A", token.MaxTokenBytes),
		"UnknownField":     "rt2." + base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(payload), "{", `{"admin":true,`, 1))) + "." + mac,
		"WhitespaceAround": " " + good,
		// Another spelling of the same token would be another spend record.
		"TrailingNewline": good + "\n",
		"BrokenMACLine":   "rt2." + body + "." + mac[:10] + "\r\n" + mac[10:],
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := m.VerifyRefresh(tok); !errors.Is(err, token.ErrInvalid) {
				t.Fatalf("VerifyRefresh = %v, want ErrInvalid", err)
			}
		})
	}
	t.Run("NotAnAccessToken", func(t *testing.T) {
		if _, err := m.Verify(token.Access, good); !errors.Is(err, token.ErrInvalid) {
			t.Fatalf("a refresh token verified as an access token: %v", err)
		}
	})
	t.Run("OKControl", func(t *testing.T) {
		if _, err := m.VerifyRefresh(good); err != nil {
			t.Fatal(err)
		}
	})
}

// TestMACRefreshAcrossRotation: a token MAC'd under the old signing key is
// accepted after a rotation that keeps the old private key
// (JWT_PREVIOUS_PRIVATE_KEYS), and refused when only its public key is
// kept.
func TestMACRefreshAcrossRotation(t *testing.T) {
	now := time.Now()
	oldKey, newKeyPair := newKey(t, token.RS256), newKey(t, token.ES256)
	tok, err := newManager(t, oldKey, nil).SignRefresh(refreshClaims(now))
	if err != nil {
		t.Fatal(err)
	}
	withPrivate, err := token.NewManager(issuer, newKeyPair, []*token.Key{oldKey}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := withPrivate.VerifyRefresh(tok); err != nil {
		t.Fatalf("refused with the old private key kept: %v", err)
	}
	publicOnly := &token.Key{ID: oldKey.ID, Alg: oldKey.Alg, Public: oldKey.Public}
	withPublic, err := token.NewManager(issuer, newKeyPair, []*token.Key{publicOnly}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := withPublic.VerifyRefresh(tok); !errors.Is(err, token.ErrInvalid) {
		t.Fatalf("accepted with only the old public key: %v", err)
	}
}

// TestDeriveKeys: a key per purpose, the same on every instance with the
// signing key, then one per kept previous private key; the refresh-token
// MAC key is nobody else's.
func TestDeriveKeys(t *testing.T) {
	oldKey, cur := newKey(t, token.EdDSA), newKey(t, token.EdDSA)
	publicOnly := &token.Key{ID: "pub", Alg: token.EdDSA, Public: newKey(t, token.EdDSA).Public}
	m, err := token.NewManager(issuer, cur, []*token.Key{oldKey, publicOnly}, nil)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := m.DeriveKeys("gqlauth test purpose")
	if err != nil || len(keys) != 2 || len(keys[0]) != 32 || string(keys[0]) == string(keys[1]) {
		t.Fatalf("DeriveKeys = %d keys, %v", len(keys), err)
	}
	twin, _ := newManager(t, cur, nil).DeriveKeys("gqlauth test purpose")
	formerly, _ := newManager(t, oldKey, nil).DeriveKeys("gqlauth test purpose")
	other, _ := m.DeriveKeys("gqlauth another purpose")
	if string(twin[0]) != string(keys[0]) || string(formerly[0]) != string(keys[1]) || string(other[0]) == string(keys[0]) {
		t.Fatal("keys differ between instances, or are shared between purposes")
	}
	for _, info := range []string{"gqlauth refresh token MAC v2", "test purpose", ""} {
		if _, err := m.DeriveKeys(info); err == nil {
			t.Errorf("DeriveKeys(%q) accepted", info)
		}
	}
}
