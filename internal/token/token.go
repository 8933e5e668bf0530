package token

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Kind tells access tokens from refresh tokens. Each kind has its own header
// "typ", so neither verifies as the other.
type Kind int

// The token kinds.
const (
	Access Kind = iota + 1
	Refresh
)

// Typ returns the JWT header "typ" of the kind, and "" for a value that is
// no kind: Sign and Verify refuse it, so that a kind added later cannot
// share another's typ by default.
func (k Kind) Typ() string {
	switch k {
	case Access:
		return "at+jwt"
	case Refresh:
		return "rt+jwt"
	default:
		return ""
	}
}

// errUnknownKind is returned for a Kind that is not one of the constants.
var errUnknownKind = errors.New("unknown token kind")

// MaxTokenBytes caps the length of a token before it is parsed. Tokens the
// server signs are well under 1 KiB (RS256 is the largest).
const MaxTokenBytes = 4096

// Leeway is the clock skew tolerated for exp, nbf and iat.
const Leeway = 5 * time.Second

// ErrInvalid is returned for every token that does not verify; the reason is
// wrapped for logs and tests, never shown to clients.
var ErrInvalid = errors.New("invalid token")

// Claims are the claims of both token kinds.
type Claims struct {
	Subject   string    // user id
	SessionID string    // sid
	ID        string    // jti
	IssuedAt  time.Time // iat, also nbf
	ExpiresAt time.Time // exp
	// SessionExpiresAt is when the session ends (MAC-format refresh
	// tokens carry it; JWTs do not).
	SessionExpiresAt time.Time
}

// jwtClaims is the wire form of Claims.
type jwtClaims struct {
	jwt.RegisteredClaims
	SessionID string `json:"sid"`
}

// Manager signs tokens with one key and verifies them with any known key.
type Manager struct {
	issuer  string
	signing *Key
	method  jwt.SigningMethod
	keys    map[string]*Key // by kid
	algs    []string        // the algorithms of the known keys
	now     func() time.Time
	jwks    []byte
	cache   verified

	macKey  macKey            // refresh tokens are MAC'd with it
	macKeys map[string]macKey // and verified with it or a previous private key's
	// privates: the signing key, then the previous keys with a private
	// part (DeriveKeys).
	privates []*Key
}

// verified remembers tokens whose signature and header checked out, so that
// a token presented again (every request of a session presents the same
// access token) skips the public-key operation and the JSON parsing. Only
// what cannot change is cached: the times are checked again on every use,
// and revocation is never the token's business (the caller checks the
// session).
type verified struct {
	mu sync.Mutex
	m  map[[32]byte]verifiedEntry
}

type verifiedEntry struct {
	kind   Kind
	claims Claims
	nbf    time.Time
}

// maxVerified bounds the cache (about 200 bytes an entry).
const maxVerified = 10_000

func (v *verified) get(key [32]byte) (verifiedEntry, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	e, ok := v.m[key]
	return e, ok
}

func (v *verified) put(key [32]byte, e verifiedEntry) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.m == nil {
		v.m = make(map[[32]byte]verifiedEntry)
	}
	if len(v.m) >= maxVerified {
		for k := range v.m { // map order is random: drop about a tenth
			delete(v.m, k)
			if len(v.m) < maxVerified*9/10 {
				break
			}
		}
	}
	v.m[key] = e
}

// NewManager returns a Manager that signs with signing (which must have a
// private key) and verifies with signing and previous. A previous key given
// with its private key (JWT_PREVIOUS_PRIVATE_KEYS) also keeps the
// refresh tokens MAC'd under it valid.
func NewManager(issuer string, signing *Key, previous []*Key, now func() time.Time) (*Manager, error) {
	if signing == nil || signing.Private == nil {
		return nil, errors.New("no signing key")
	}
	if now == nil {
		now = time.Now
	}
	m := &Manager{
		issuer:  issuer,
		signing: signing,
		method:  jwt.GetSigningMethod(signing.Alg),
		keys:    map[string]*Key{signing.ID: signing},
		now:     now,
	}
	if m.method == nil {
		return nil, fmt.Errorf("unsupported algorithm %q", signing.Alg)
	}
	all := []*Key{signing}
	m.algs = []string{signing.Alg}
	for _, k := range previous {
		if _, dup := m.keys[k.ID]; dup {
			continue
		}
		m.keys[k.ID] = k
		all = append(all, k)
		if !slices.Contains(m.algs, k.Alg) {
			m.algs = append(m.algs, k.Alg)
		}
	}
	jwks, err := marshalJWKS(all)
	if err != nil {
		return nil, err
	}
	m.jwks = jwks
	if m.macKey, err = deriveMACKey(signing.Private); err != nil {
		return nil, err
	}
	m.macKeys = map[string]macKey{m.macKey.id: m.macKey}
	m.privates = []*Key{signing}
	for _, k := range previous {
		if k.Private == nil || k.ID == signing.ID {
			continue
		}
		m.privates = append(m.privates, k)
		old, err := deriveMACKey(k.Private)
		if err != nil {
			return nil, err
		}
		m.macKeys[old.id] = old
	}
	return m, nil
}

// SigningKeyID returns the kid that new tokens carry.
func (m *Manager) SigningKeyID() string { return m.signing.ID }

// JWKS returns the public keys as a JWK Set document.
func (m *Manager) JWKS() []byte { return m.jwks }

// NewID returns a random identifier (128 bits, base64url) for jti claims.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return b64(b[:])
}

// Sign returns a signed token of the given kind. IssuedAt is also used as
// nbf; ID is generated when empty.
func (m *Manager) Sign(kind Kind, c Claims) (string, error) {
	if kind.Typ() == "" {
		return "", errUnknownKind
	}
	if c.ID == "" {
		c.ID = NewID()
	}
	t := jwt.NewWithClaims(m.method, jwtClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    m.issuer,
			Subject:   c.Subject,
			ID:        c.ID,
			IssuedAt:  jwt.NewNumericDate(c.IssuedAt),
			NotBefore: jwt.NewNumericDate(c.IssuedAt),
			ExpiresAt: jwt.NewNumericDate(c.ExpiresAt),
		},
		SessionID: c.SessionID,
	})
	t.Header["typ"] = kind.Typ()
	t.Header["kid"] = m.signing.ID
	s, err := t.SignedString(m.signing.Private)
	if err != nil {
		return "", fmt.Errorf("signing token: %w", err)
	}
	return s, nil
}

// Verify checks a token of the given kind: length, exactly three strictly
// encoded segments, a known kid whose key allows the header's alg, the
// kind's typ, no key-fetching headers, iss, exp (required), nbf and iat, and
// the presence of sub, sid and jti. Every failure wraps ErrInvalid.
func (m *Manager) Verify(kind Kind, s string) (Claims, error) {
	if kind.Typ() == "" {
		return Claims{}, fmt.Errorf("%w: %w", ErrInvalid, errUnknownKind)
	}
	if len(s) > MaxTokenBytes {
		return Claims{}, fmt.Errorf("%w: token longer than %d bytes", ErrInvalid, MaxTokenBytes)
	}
	key := sha256.Sum256([]byte(s))
	if e, ok := m.cache.get(key); ok && e.kind == kind {
		now := m.now()
		switch {
		case !now.Before(e.claims.ExpiresAt.Add(Leeway)):
			return Claims{}, fmt.Errorf("%w: token is expired", ErrInvalid)
		case now.Add(Leeway).Before(e.nbf) || now.Add(Leeway).Before(e.claims.IssuedAt):
			return Claims{}, fmt.Errorf("%w: token is not valid yet", ErrInvalid)
		}
		return e.claims, nil
	}
	var c jwtClaims
	_, err := jwt.ParseWithClaims(s, &c, func(t *jwt.Token) (any, error) {
		return m.keyFor(kind, t)
	},
		jwt.WithValidMethods(m.algs), // and keyFor ties each kid to its own

		jwt.WithIssuer(m.issuer),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(Leeway),
		jwt.WithStrictDecoding(),
		jwt.WithTimeFunc(m.now),
	)
	if err != nil {
		return Claims{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if c.Subject == "" || c.SessionID == "" || c.ID == "" || c.IssuedAt == nil {
		return Claims{}, fmt.Errorf("%w: missing sub, sid, jti or iat", ErrInvalid)
	}
	claims := Claims{
		Subject:   c.Subject,
		SessionID: c.SessionID,
		ID:        c.ID,
		IssuedAt:  c.IssuedAt.Time,
		ExpiresAt: c.ExpiresAt.Time,
	}
	var nbf time.Time
	if c.NotBefore != nil {
		nbf = c.NotBefore.Time
	}
	m.cache.put(key, verifiedEntry{kind: kind, claims: claims, nbf: nbf})
	return claims, nil
}

// keyFor picks the verification key from the header: the kind's typ, no
// embedded or remote keys, a known kid, and the alg that key allows.
func (m *Manager) keyFor(kind Kind, t *jwt.Token) (any, error) {
	if typ, _ := t.Header["typ"].(string); typ != kind.Typ() {
		return nil, fmt.Errorf("typ %q is not %q", typ, kind.Typ())
	}
	for _, h := range []string{"jku", "x5u", "jwk", "x5c", "crit"} {
		if _, ok := t.Header[h]; ok {
			return nil, fmt.Errorf("header %q is not accepted", h)
		}
	}
	kid, _ := t.Header["kid"].(string)
	key, ok := m.keys[kid]
	if !ok {
		return nil, errors.New("unknown kid")
	}
	if t.Method.Alg() != key.Alg {
		return nil, fmt.Errorf("alg %q does not fit key %q", t.Method.Alg(), kid)
	}
	return key.Public, nil
}

func marshalJWKS(keys []*Key) ([]byte, error) {
	set := struct {
		Keys []jwk `json:"keys"`
	}{}
	for _, k := range keys {
		j, err := publicJWK(k.Public)
		if err != nil {
			return nil, err
		}
		j.Kid, j.Alg, j.Use = k.ID, k.Alg, "sig"
		set.Keys = append(set.Keys, j)
	}
	return json.Marshal(set)
}
