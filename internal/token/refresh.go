package token

import (
	"bytes"
	"crypto"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Refresh token formats the server issues (REFRESH_TOKEN_FORMAT).
const (
	// FormatMAC is the default: a token the server alone checks, with a MAC
	// (HMAC-SHA256) under a key derived from its signing key. Checking it
	// costs microseconds and no database read; it carries what the server
	// needs (user, session, lifetimes).
	FormatMAC = "mac"
	// FormatJWT is the format of releases before: a JWT of kind Refresh,
	// signed like an access token, with a stored record. Kept for rolling
	// upgrades: instances of the earlier release know only this one.
	FormatJWT = "jwt"
)

// macPrefix begins every MAC-format refresh token.
const macPrefix = "rt2."

// macInfo is the HKDF info of the refresh-token MAC key: a key of its own,
// never the signing key itself.
const macInfo = "gqlauth refresh token MAC v2"

// IsMACRefresh reports whether a refresh token is of the MAC format (else
// it is a JWT of an earlier release, or garbage).
func IsMACRefresh(s string) bool { return strings.HasPrefix(s, macPrefix) }

// macPayload is what a MAC-format refresh token carries.
type macPayload struct {
	Key              string `json:"k"`   // the MAC key's id
	Subject          string `json:"sub"` // user id
	SessionID        string `json:"sid"`
	ID               string `json:"jti"` // 128 random bits: every token differs
	IssuedAt         int64  `json:"iat"`
	ExpiresAt        int64  `json:"exp"`
	SessionExpiresAt int64  `json:"sexp"`
}

// macKey is a refresh-token MAC key and its id.
type macKey struct {
	id  string
	key []byte
}

// deriveMACKey derives the refresh-token MAC key from a private key: every
// instance with the same signing key derives the same MAC key, and nobody
// without the private key can.
func deriveMACKey(priv crypto.Signer) (macKey, error) {
	key, err := deriveKey(priv, macInfo)
	if err != nil {
		return macKey{}, fmt.Errorf("deriving the refresh-token key: %w", err)
	}
	id := sha256.Sum256(append([]byte("key id\x00"), key...))
	return macKey{id: b64(id[:6]), key: key}, nil
}

// deriveKey derives a 256-bit key for one purpose (info) from a private
// key: HKDF-SHA256 over its PKCS #8 encoding.
func deriveKey(priv crypto.Signer, info string) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	return hkdf.Key(sha256.New, der, nil, info, 32)
}

// DeriveKeys returns a 256-bit key for a purpose of the caller's, derived
// from the signing key (info names the purpose and gives each its own key),
// followed by the same derived from each previous private key
// (JWT_PREVIOUS_PRIVATE_KEYS): what was sealed before a rotation that kept
// the old private key can still be opened. The first key is the one to
// seal with.
func (m *Manager) DeriveKeys(info string) ([][]byte, error) {
	if !strings.HasPrefix(info, "gqlauth ") || info == macInfo {
		return nil, fmt.Errorf("key purpose %q: must begin with \"gqlauth \" and be the caller's own", info)
	}
	var keys [][]byte
	for _, k := range m.privates {
		key, err := deriveKey(k.Private, info)
		if err != nil {
			return nil, fmt.Errorf("deriving a key for %s: %w", info, err)
		}
		keys = append(keys, key)
	}
	return keys, nil
}

func (k macKey) mac(msg string) []byte {
	h := hmac.New(sha256.New, k.key)
	h.Write([]byte(msg))
	return h.Sum(nil)
}

// SignRefresh returns a MAC-format refresh token for the claims (ID is
// generated when empty).
func (m *Manager) SignRefresh(c Claims) (string, error) {
	if c.ID == "" {
		c.ID = NewID()
	}
	body, err := json.Marshal(macPayload{
		Key: m.macKey.id, Subject: c.Subject, SessionID: c.SessionID, ID: c.ID,
		IssuedAt: c.IssuedAt.Unix(), ExpiresAt: c.ExpiresAt.Unix(), SessionExpiresAt: c.SessionExpiresAt.Unix(),
	})
	if err != nil {
		return "", fmt.Errorf("signing refresh token: %w", err)
	}
	signed := macPrefix + b64(body)
	return signed + "." + b64(m.macKey.mac(signed)), nil
}

// VerifyAnyRefresh checks a refresh token of either format (a MAC-format
// one, or a JWT of kind Refresh) as far as the token alone tells: a JWT's
// stored record is the caller's to check.
func (m *Manager) VerifyAnyRefresh(s string) (Claims, error) {
	if IsMACRefresh(s) {
		return m.VerifyRefresh(s)
	}
	return m.Verify(Refresh, s)
}

// VerifyRefresh checks a MAC-format refresh token: its length, its exact
// encoding, a MAC under a key the server knows (its signing key's, or a
// previous private key's), and its times (with Leeway), and returns its
// claims. Every failure wraps ErrInvalid.
func (m *Manager) VerifyRefresh(s string) (Claims, error) {
	if len(s) > MaxTokenBytes {
		return Claims{}, fmt.Errorf("%w: token longer than %d bytes", ErrInvalid, MaxTokenBytes)
	}
	if !IsMACRefresh(s) {
		return Claims{}, fmt.Errorf("%w: not a refresh token of this format", ErrInvalid)
	}
	// One spelling per token: the spend is keyed by the token's hash, and
	// Go's base64 decoder skips line breaks, so a token with one added would
	// otherwise verify as a different, unspent token.
	if strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.')
	}) >= 0 {
		return Claims{}, fmt.Errorf("%w: not base64url", ErrInvalid)
	}
	dot := strings.LastIndexByte(s, '.')
	if dot < len(macPrefix) {
		return Claims{}, fmt.Errorf("%w: no MAC", ErrInvalid)
	}
	signed, tag := s[:dot], s[dot+1:]
	body, err := base64.RawURLEncoding.Strict().DecodeString(signed[len(macPrefix):])
	if err != nil {
		return Claims{}, fmt.Errorf("%w: malformed payload", ErrInvalid)
	}
	sum, err := base64.RawURLEncoding.Strict().DecodeString(tag)
	if err != nil {
		return Claims{}, fmt.Errorf("%w: malformed MAC", ErrInvalid)
	}
	var p macPayload
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil || dec.More() {
		return Claims{}, fmt.Errorf("%w: malformed payload", ErrInvalid)
	}
	key, ok := m.macKeys[p.Key]
	if !ok {
		return Claims{}, fmt.Errorf("%w: unknown key", ErrInvalid)
	}
	if !hmac.Equal(sum, key.mac(signed)) {
		return Claims{}, fmt.Errorf("%w: bad MAC", ErrInvalid)
	}
	if p.Subject == "" || p.SessionID == "" || p.ID == "" || p.IssuedAt == 0 || p.ExpiresAt == 0 || p.SessionExpiresAt == 0 {
		return Claims{}, fmt.Errorf("%w: missing claims", ErrInvalid)
	}
	c := Claims{
		Subject: p.Subject, SessionID: p.SessionID, ID: p.ID,
		IssuedAt: time.Unix(p.IssuedAt, 0), ExpiresAt: time.Unix(p.ExpiresAt, 0), SessionExpiresAt: time.Unix(p.SessionExpiresAt, 0),
	}
	now := m.now()
	switch {
	case !now.Before(c.ExpiresAt.Add(Leeway)):
		return Claims{}, fmt.Errorf("%w: token is expired", ErrInvalid)
	case now.Add(Leeway).Before(c.IssuedAt):
		return Claims{}, fmt.Errorf("%w: token is not valid yet", ErrInvalid)
	}
	return c, nil
}
