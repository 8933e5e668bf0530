package email

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// LinkKeyInfo names the purpose of the key that seals the outbox's links
// (token.Manager.DeriveKeys).
const LinkKeyInfo = "gqlauth e-mail link seal v1"

// sealedPrefix begins every sealed link.
const sealedPrefix = "sealed1."

// ErrUnreadable: a sealed link that none of this instance's keys opens
// (sealed by an instance with other keys, or under a signing key replaced
// without keeping its private key), or a link stored unsealed. The worker
// leaves such an e-mail for another attempt, and drops it only once
// GiveUpAfter has passed.
var ErrUnreadable = errors.New("the e-mail's link cannot be opened")

// Sealer encrypts the links the outbox keeps, so that the store never holds
// a usable token (tokens are stored only as hashes; a link carries one in
// clear): AES-256-GCM under a key derived from the signing key, bound to
// the e-mail (its id, kind, recipient and new address), so a sealed link
// moved to another e-mail, or an entry whose recipient was changed in the
// database, does not open.
type Sealer struct {
	aeads []cipher.AEAD // the first seals; all open
}

// NewSealer returns a sealer for keys (32 bytes each; the first seals).
func NewSealer(keys [][]byte) (*Sealer, error) {
	if len(keys) == 0 {
		return nil, errors.New("no key to seal e-mail links with")
	}
	s := &Sealer{}
	for _, k := range keys {
		if len(k) != 32 {
			return nil, fmt.Errorf("an e-mail link key of %d bytes: want 32", len(k))
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		s.aeads = append(s.aeads, aead)
	}
	return s, nil
}

// Seal returns m with its link sealed (a message without a link, or one
// already sealed, is returned as it is). A nil Sealer seals nothing: it
// refuses a message with a link.
func (s *Sealer) Seal(m Message) (Message, error) {
	if m.Link == "" || strings.HasPrefix(m.Link, sealedPrefix) {
		return m, nil
	}
	if s == nil {
		return m, errors.New("no key to seal the e-mail's link with")
	}
	aead := s.aeads[0]
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(m.Link)+aead.Overhead())
	_, _ = rand.Read(nonce) // crypto/rand.Read never fails
	out := aead.Seal(nonce, nonce, []byte(m.Link), boundTo(m))
	m.Link = sealedPrefix + base64.RawURLEncoding.EncodeToString(out)
	return m, nil
}

// Open returns m with its link in clear; ErrUnreadable when no key opens
// it, or when it was stored unsealed.
func (s *Sealer) Open(m Message) (Message, error) {
	if m.Link == "" {
		return m, nil
	}
	enc, ok := strings.CutPrefix(m.Link, sealedPrefix)
	if !ok || s == nil {
		return m, ErrUnreadable
	}
	raw, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil {
		return m, ErrUnreadable
	}
	for _, aead := range s.aeads {
		if len(raw) < aead.NonceSize()+aead.Overhead() {
			break
		}
		nonce, ct := raw[:aead.NonceSize()], raw[aead.NonceSize():]
		if link, err := aead.Open(nil, nonce, ct, boundTo(m)); err == nil {
			m.Link = string(link)
			return m, nil
		}
	}
	return m, ErrUnreadable
}

// boundTo is the additional data a link is sealed with: what the e-mail is
// and whom it goes to, each length-prefixed.
func boundTo(m Message) []byte {
	var b []byte
	for _, f := range []string{m.ID, string(m.Kind), m.To, m.NewEmail} {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	return b
}
