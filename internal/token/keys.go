// Package token signs and verifies the server's JWTs (access and refresh
// tokens), loads and generates signing keys, and publishes them as a JWK Set.
//
// It does no I/O beyond reading and writing a development key file.
package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
)

// Supported signing algorithms. Each fits exactly one key type.
const (
	RS256 = "RS256"
	ES256 = "ES256"
	EdDSA = "EdDSA"
)

// MinRSABits is the smallest RSA key accepted. The tutorial's sample key is
// 512 bits, which can be factored in hours on rented hardware.
const MinRSABits = 2048

// Key is a key the server knows: always a public key and a key id, and a
// private key when the server signs with it.
type Key struct {
	ID      string // RFC 7638 thumbprint of the public key
	Alg     string
	Public  crypto.PublicKey
	Private crypto.Signer // nil for verification-only keys
}

// NewKey checks that the keys fit alg (type, size, and that public matches
// private) and returns the Key with its thumbprint as id. priv may be nil
// for a verification-only key; pub may be nil when priv is given.
func NewKey(alg string, priv crypto.Signer, pub crypto.PublicKey) (*Key, error) {
	if priv != nil {
		derived := priv.Public()
		if pub == nil {
			pub = derived
		} else if !publicEqual(pub, derived) {
			return nil, errors.New("the public key does not belong to the private key")
		}
	}
	if pub == nil {
		return nil, errors.New("no key given")
	}
	if err := checkKeyFitsAlg(alg, pub); err != nil {
		return nil, err
	}
	kid, err := Thumbprint(pub)
	if err != nil {
		return nil, err
	}
	return &Key{ID: kid, Alg: alg, Public: pub, Private: priv}, nil
}

func publicEqual(a, b crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	ea, ok := a.(equaler)
	return ok && ea.Equal(b)
}

func checkKeyFitsAlg(alg string, pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if alg != RS256 {
			return fmt.Errorf("an RSA key needs JWT_ALGORITHM=RS256, not %q", alg)
		}
		if k.N.BitLen() < MinRSABits {
			return fmt.Errorf("the RSA key has %d bits; at least %d are required (a %d-bit key can be factored): generate one with `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out private.pem` (see README)",
				k.N.BitLen(), MinRSABits, k.N.BitLen())
		}
	case *ecdsa.PublicKey:
		if alg != ES256 {
			return fmt.Errorf("an EC key needs JWT_ALGORITHM=ES256, not %q", alg)
		}
		if k.Curve != elliptic.P256() {
			return errors.New("ES256 needs a P-256 key")
		}
	case ed25519.PublicKey:
		if alg != EdDSA {
			return fmt.Errorf("an Ed25519 key needs JWT_ALGORITHM=EdDSA, not %q", alg)
		}
	default:
		return fmt.Errorf("unsupported key type %T", pub)
	}
	return nil
}

// AlgForKey returns the one algorithm a public key's type allows.
func AlgForKey(pub crypto.PublicKey) (string, error) {
	switch pub.(type) {
	case *rsa.PublicKey:
		return RS256, nil
	case *ecdsa.PublicKey:
		return ES256, nil
	case ed25519.PublicKey:
		return EdDSA, nil
	default:
		return "", fmt.Errorf("unsupported key type %T", pub)
	}
}

// GenerateKey returns a new private key for alg: RSA 2048, P-256 or Ed25519.
func GenerateKey(alg string) (crypto.Signer, error) {
	switch alg {
	case RS256:
		return rsa.GenerateKey(rand.Reader, MinRSABits)
	case ES256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case EdDSA:
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		return priv, err
	default:
		return nil, fmt.Errorf("unsupported algorithm %q", alg)
	}
}

// ParsePrivateKeyPEM parses a PEM private key: PKCS #8 ("PRIVATE KEY"),
// PKCS #1 ("RSA PRIVATE KEY") or SEC 1 ("EC PRIVATE KEY").
func ParsePrivateKeyPEM(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("not a PEM block")
	}
	var (
		key any
		err error
	)
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("unexpected PEM type %q for a private key", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("parsing private key: %w", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("unsupported private key type %T", key)
	}
	return signer, nil
}

// ParsePublicKeyPEM parses a PEM public key: PKIX ("PUBLIC KEY") or PKCS #1
// ("RSA PUBLIC KEY").
func ParsePublicKeyPEM(data []byte) (crypto.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("not a PEM block")
	}
	switch block.Type {
	case "PUBLIC KEY":
		key, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parsing public key: %w", err)
		}
		return key, nil
	case "RSA PUBLIC KEY":
		key, err := x509.ParsePKCS1PublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parsing public key: %w", err)
		}
		return key, nil
	default:
		return nil, fmt.Errorf("unexpected PEM type %q for a public key", block.Type)
	}
}

// EncodePrivateKeyPEM returns the key as a PKCS #8 PEM block.
func EncodePrivateKeyPEM(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// EncodePublicKeyPEM returns the key as a PKIX PEM block.
func EncodePublicKeyPEM(key crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// jwk is the JSON form of a public key (RFC 7517). Field order does not
// matter for publication; Thumbprint builds its own canonical form.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid,omitempty"`
	Alg string `json:"alg,omitempty"`
	Use string `json:"use,omitempty"`
	Crv string `json:"crv,omitempty"`
	N   string `json:"n,omitempty"`
	E   string `json:"e,omitempty"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func publicJWK(pub crypto.PublicKey) (jwk, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return jwk{Kty: "RSA", N: b64(k.N.Bytes()), E: b64(big.NewInt(int64(k.E)).Bytes())}, nil
	case *ecdsa.PublicKey:
		raw, err := k.Bytes() // uncompressed point: 0x04 || X || Y
		if err != nil {
			return jwk{}, fmt.Errorf("encoding EC key: %w", err)
		}
		size := (len(raw) - 1) / 2
		return jwk{Kty: "EC", Crv: "P-256", X: b64(raw[1 : 1+size]), Y: b64(raw[1+size:])}, nil
	case ed25519.PublicKey:
		return jwk{Kty: "OKP", Crv: "Ed25519", X: b64(k)}, nil
	default:
		return jwk{}, fmt.Errorf("unsupported key type %T", pub)
	}
}

// Thumbprint returns the RFC 7638 SHA-256 thumbprint of a public key,
// base64url without padding. It is used as the key id (kid).
func Thumbprint(pub crypto.PublicKey) (string, error) {
	j, err := publicJWK(pub)
	if err != nil {
		return "", err
	}
	// RFC 7638: the required members only, in lexicographic order, no spaces.
	var members any
	switch j.Kty {
	case "RSA":
		members = struct {
			E   string `json:"e"`
			Kty string `json:"kty"`
			N   string `json:"n"`
		}{j.E, j.Kty, j.N}
	case "EC":
		members = struct {
			Crv string `json:"crv"`
			Kty string `json:"kty"`
			X   string `json:"x"`
			Y   string `json:"y"`
		}{j.Crv, j.Kty, j.X, j.Y}
	default:
		members = struct {
			Crv string `json:"crv"`
			Kty string `json:"kty"`
			X   string `json:"x"`
		}{j.Crv, j.Kty, j.X}
	}
	b, err := json.Marshal(members)
	if err != nil {
		return "", fmt.Errorf("thumbprint: %w", err)
	}
	sum := sha256.Sum256(b)
	return b64(sum[:]), nil
}
