package token_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/gqlauth/gqlauth/internal/token"
)

const issuer = "http://localhost:8000"

func newKey(t testing.TB, alg string) *token.Key {
	t.Helper()
	priv, err := token.GenerateKey(alg)
	if err != nil {
		t.Fatal(err)
	}
	k, err := token.NewKey(alg, priv, nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newManager(t testing.TB, k *token.Key, now func() time.Time) *token.Manager {
	t.Helper()
	m, err := token.NewManager(issuer, k, nil, now)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func validClaims() token.Claims {
	now := time.Now()
	return token.Claims{Subject: "6560c0ffee0000000000beef", SessionID: "6560c0ffee0000000000beef.1", IssuedAt: now, ExpiresAt: now.Add(15 * time.Minute)}
}

func TestRoundTripEachAlgorithm(t *testing.T) {
	for _, alg := range []string{token.RS256, token.ES256, token.EdDSA} {
		t.Run(alg, func(t *testing.T) {
			k := newKey(t, alg)
			m := newManager(t, k, nil)
			c := validClaims()
			s, err := m.Sign(token.Access, c)
			if err != nil {
				t.Fatal(err)
			}
			got, err := m.Verify(token.Access, s)
			if err != nil {
				t.Fatal(err)
			}
			if got.Subject != c.Subject || got.SessionID != c.SessionID || got.ID == "" {
				t.Fatalf("claims = %+v", got)
			}
			header := decodeSegment(t, s, 0)
			if header["alg"] != alg || header["kid"] != k.ID || header["typ"] != "at+jwt" {
				t.Fatalf("header = %v", header)
			}
			payload := decodeSegment(t, s, 1)
			for _, claim := range []string{"sub", "sid", "jti", "iat", "nbf", "exp", "iss"} {
				if _, ok := payload[claim]; !ok {
					t.Errorf("claim %s missing from %v", claim, payload)
				}
			}
		})
	}
}

func decodeSegment(t testing.TB, tok string, i int) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[i])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func encodeSegment(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

// TestVerifyRefuses is the table of tokens that must not verify as access
// tokens.
func TestVerifyRefuses(t *testing.T) {
	k := newKey(t, token.RS256)
	m := newManager(t, k, nil)
	good, err := m.Sign(token.Access, validClaims())
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, ".")
	pubPEM, err := token.EncodePublicKeyPEM(k.Public)
	if err != nil {
		t.Fatal(err)
	}

	// signRaw signs arbitrary claims and headers with the real key.
	signRaw := func(method jwt.SigningMethod, key any, claims jwt.MapClaims, header map[string]any) string {
		tok := jwt.NewWithClaims(method, claims)
		tok.Header["kid"] = k.ID
		tok.Header["typ"] = "at+jwt"
		for h, v := range header {
			tok.Header[h] = v
		}
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	now := time.Now()
	claims := func(edit func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{
			"iss": issuer, "sub": "u", "sid": "u.1", "jti": "j",
			"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		}
		if edit != nil {
			edit(c)
		}
		return c
	}
	other := newKey(t, token.RS256)
	otherManager := newManager(t, other, nil)
	otherSigned, _ := otherManager.Sign(token.Access, validClaims())
	otherParts := strings.Split(otherSigned, ".")
	refresh, _ := m.Sign(token.Refresh, validClaims())
	wrongIssuer, _ := token.NewManager("https://evil.example", k, nil, nil)
	wrongIss, _ := wrongIssuer.Sign(token.Access, validClaims())
	expired, _ := m.Sign(token.Access, token.Claims{Subject: "u", SessionID: "u.1", IssuedAt: now.Add(-time.Hour), ExpiresAt: now.Add(-time.Minute)})
	future, _ := m.Sign(token.Access, token.Claims{Subject: "u", SessionID: "u.1", IssuedAt: now.Add(time.Hour), ExpiresAt: now.Add(2 * time.Hour)})
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tampered := decodeSegment(t, good, 1)
	tampered["sub"] = "someone-else"

	cases := map[string]string{
		"Empty":               "",
		"Garbage":             "not a token",
		"TwoSegments":         parts[0] + "." + parts[1],
		"FourSegments":        good + ".x",
		"AlgNone":             encodeSegment(map[string]any{"alg": "none", "typ": "at+jwt", "kid": k.ID}) + "." + parts[1] + ".",
		"AlgNoneNoSignature":  encodeSegment(map[string]any{"alg": "none", "typ": "at+jwt", "kid": k.ID}) + "." + parts[1],
		"HS256WithPublicKey":  signRaw(jwt.SigningMethodHS256, pubPEM, claims(nil), nil),
		"ES256SameKid":        signRaw(jwt.SigningMethodES256, ecKey, claims(nil), nil),
		"TamperedClaims":      parts[0] + "." + encodeSegment(tampered) + "." + parts[2],
		"TamperedSignature":   parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2])),
		"OtherKeyOtherKid":    otherSigned,
		"OtherKeySameKid":     parts[0] + "." + otherParts[1] + "." + otherParts[2],
		"UnknownKid":          signRaw(jwt.SigningMethodRS256, k.Private, claims(nil), map[string]any{"kid": "unknown"}),
		"NoKid":               signRaw(jwt.SigningMethodRS256, k.Private, claims(nil), map[string]any{"kid": nil}),
		"JKUHeader":           signRaw(jwt.SigningMethodRS256, k.Private, claims(nil), map[string]any{"jku": "https://evil.example/jwks.json"}),
		"X5UHeader":           signRaw(jwt.SigningMethodRS256, k.Private, claims(nil), map[string]any{"x5u": "https://evil.example/cert.pem"}),
		"JWKHeader":           signRaw(jwt.SigningMethodRS256, k.Private, claims(nil), map[string]any{"jwk": map[string]any{"kty": "RSA"}}),
		"RefreshAsAccess":     refresh,
		"NoTyp":               signRaw(jwt.SigningMethodRS256, k.Private, claims(nil), map[string]any{"typ": nil}),
		"TypJWT":              signRaw(jwt.SigningMethodRS256, k.Private, claims(nil), map[string]any{"typ": "JWT"}),
		"WrongIssuer":         wrongIss,
		"NoIssuer":            signRaw(jwt.SigningMethodRS256, k.Private, claims(func(c jwt.MapClaims) { delete(c, "iss") }), nil),
		"Expired":             expired,
		"NoExp":               signRaw(jwt.SigningMethodRS256, k.Private, claims(func(c jwt.MapClaims) { delete(c, "exp") }), nil),
		"NotYetValid":         future,
		"IatInFuture":         signRaw(jwt.SigningMethodRS256, k.Private, claims(func(c jwt.MapClaims) { c["iat"] = now.Add(time.Hour).Unix() }), nil),
		"NoSid":               signRaw(jwt.SigningMethodRS256, k.Private, claims(func(c jwt.MapClaims) { delete(c, "sid") }), nil),
		"NoSub":               signRaw(jwt.SigningMethodRS256, k.Private, claims(func(c jwt.MapClaims) { delete(c, "sub") }), nil),
		"NoJti":               signRaw(jwt.SigningMethodRS256, k.Private, claims(func(c jwt.MapClaims) { delete(c, "jti") }), nil),
		"PaddedBase64":        parts[0] + "=." + parts[1] + "." + parts[2],
		"StdBase64Alphabet":   strings.NewReplacer("-", "+", "_", "/").Replace(parts[0]) + "." + parts[1] + "." + parts[2] + "+",
		"TooLong":             good + strings.Repeat("A", token.MaxTokenBytes),
		"ExpAsString":         signRaw(jwt.SigningMethodRS256, k.Private, claims(func(c jwt.MapClaims) { c["exp"] = "tomorrow" }), nil),
		"WhitespaceAround":    " " + good,
		"SignatureOfOtherAlg": parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(make([]byte, 64)),
	}
	for name, tok := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := m.Verify(token.Access, tok); !errors.Is(err, token.ErrInvalid) {
				t.Fatalf("Verify = %v, want ErrInvalid", err)
			}
		})
	}
	t.Run("AccessAsRefresh", func(t *testing.T) {
		if _, err := m.Verify(token.Refresh, good); !errors.Is(err, token.ErrInvalid) {
			t.Fatalf("Verify = %v, want ErrInvalid", err)
		}
	})
	t.Run("OKControl", func(t *testing.T) {
		if _, err := m.Verify(token.Access, good); err != nil {
			t.Fatalf("the unmodified token must verify: %v", err)
		}
	})
}

func TestPreviousKeysVerifyAndPublish(t *testing.T) {
	old := newKey(t, token.RS256)
	oldManager := newManager(t, old, nil)
	tok, _ := oldManager.Sign(token.Access, validClaims())

	cur := newKey(t, token.RS256)
	verifyOnly := &token.Key{ID: old.ID, Alg: old.Alg, Public: old.Public}
	m, err := token.NewManager(issuer, cur, []*token.Key{verifyOnly}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Verify(token.Access, tok); err != nil {
		t.Fatalf("token of the previous key: %v", err)
	}
	var set struct{ Keys []map[string]string }
	if err := json.Unmarshal(m.JWKS(), &set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 2 || set.Keys[0]["kid"] != cur.ID || set.Keys[1]["kid"] != old.ID {
		t.Fatalf("JWKS = %s", m.JWKS())
	}
}

// TestThumbprintRFC7638 checks the key id against the RFC's own example.
func TestThumbprintRFC7638(t *testing.T) {
	n, err := base64.RawURLEncoding.DecodeString("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw")
	if err != nil {
		t.Fatal(err)
	}
	kid, err := token.Thumbprint(&rsa.PublicKey{N: new(big.Int).SetBytes(n), E: 65537})
	if err != nil {
		t.Fatal(err)
	}
	if want := "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"; kid != want {
		t.Fatalf("thumbprint = %s, want %s", kid, want)
	}
}

func TestNewKeyRefuses(t *testing.T) {
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	check := func(name string, err error, want string) {
		t.Run(name, func(t *testing.T) {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("NewKey error = %v, want one mentioning %q", err, want)
			}
		})
	}
	_, err = token.NewKey(token.RS256, small, nil)
	check("RSATooSmall", err, "2048")
	_, err = token.NewKey(token.RS256, ec, nil)
	check("ECKeyWithRS256", err, "ES256")
	_, err = token.NewKey(token.ES256, rsaKey, nil)
	check("RSAKeyWithES256", err, "RS256")
	_, err = token.NewKey(token.ES256, p384, nil)
	check("P384WithES256", err, "P-256")
	_, err = token.NewKey(token.RS256, ed, nil)
	check("Ed25519WithRS256", err, "EdDSA")
	_, err = token.NewKey(token.RS256, rsaKey, &small.PublicKey)
	check("MismatchedPublicKey", err, "does not belong")
}

func TestDevKeyIsKeptWithMode0600(t *testing.T) {
	dir := t.TempDir()
	k1, path, created, err := token.LoadOrCreateDevKey(dir, token.RS256)
	if err != nil || !created {
		t.Fatalf("first call: created=%v err=%v", created, err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode = %v, want 0600", st.Mode().Perm())
	}
	k2, _, created, err := token.LoadOrCreateDevKey(dir, token.RS256)
	if err != nil || created {
		t.Fatalf("second call: created=%v err=%v", created, err)
	}
	if !k1.Public().(*rsa.PublicKey).Equal(k2.Public()) {
		t.Fatal("the second call returned another key")
	}
}

// TestVerifyCacheStillChecksTime verifies a token, then moves the clock past
// its expiry: the remembered signature does not keep it valid.
func TestVerifyCacheStillChecksTime(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	m := newManager(t, newKey(t, token.ES256), clock)
	s, err := m.Sign(token.Access, token.Claims{Subject: "u", SessionID: "u.1", IssuedAt: now, ExpiresAt: now.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second time from the cache
		if _, err := m.Verify(token.Access, s); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.Verify(token.Refresh, s); !errors.Is(err, token.ErrInvalid) {
		t.Fatalf("an access token verified as a refresh token from the cache: %v", err)
	}
	now = now.Add(2 * time.Minute)
	if _, err := m.Verify(token.Access, s); !errors.Is(err, token.ErrInvalid) {
		t.Fatalf("an expired token verified from the cache: %v", err)
	}
}

// TestUnknownKindRefused: a Kind that is not one of the constants has no
// typ of its own, and neither signs nor verifies (it must not share the
// access token's).
func TestUnknownKindRefused(t *testing.T) {
	m := newManager(t, newKey(t, token.EdDSA), nil)
	unknown := token.Kind(99)
	if unknown.Typ() != "" {
		t.Fatalf("Kind(99).Typ() = %q", unknown.Typ())
	}
	if _, err := m.Sign(unknown, token.Claims{Subject: "u", SessionID: "s", IssuedAt: time.Now(), ExpiresAt: time.Now().Add(time.Minute)}); err == nil {
		t.Fatal("signed a token of an unknown kind")
	}
	access, err := m.Sign(token.Access, token.Claims{Subject: "u", SessionID: "s", IssuedAt: time.Now(), ExpiresAt: time.Now().Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Verify(unknown, access); !errors.Is(err, token.ErrInvalid) {
		t.Fatalf("an access token verified as an unknown kind: %v", err)
	}
}
