package auth

import (
	"errors"
	"fmt"

	"golang.org/x/crypto/bcrypt"
)

// Hasher hashes and checks passwords with bcrypt at a fixed cost.
//
// An unknown e-mail at login is checked against a dummy hash of the same
// cost, so that it takes as long as a wrong password.
type Hasher struct {
	cost  int
	dummy []byte
}

// NewHasher returns a Hasher for the given bcrypt cost. It computes one hash
// up front (the dummy used for unknown e-mails).
func NewHasher(cost int) (*Hasher, error) {
	if cost < bcrypt.MinCost || cost > bcrypt.MaxCost {
		return nil, fmt.Errorf("bcrypt cost %d out of range", cost)
	}
	dummy, err := bcrypt.GenerateFromPassword([]byte("dummy password for unknown e-mails"), cost)
	if err != nil {
		return nil, fmt.Errorf("computing dummy hash: %w", err)
	}
	return &Hasher{cost: cost, dummy: dummy}, nil
}

// Hash returns the bcrypt hash of password. The caller has checked that the
// password is at most 72 bytes.
func (h *Hasher) Hash(password string) (string, error) {
	b, err := bcrypt.GenerateFromPassword([]byte(password), h.cost)
	if err != nil {
		return "", fmt.Errorf("hashing password: %w", err)
	}
	return string(b), nil
}

// Check reports whether password matches hash. An empty hash (unknown user)
// is checked against the dummy hash and never matches.
func (h *Hasher) Check(hash, password string) (bool, error) {
	if hash == "" {
		_ = bcrypt.CompareHashAndPassword(h.dummy, []byte(password))
		return false, nil
	}
	err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(password))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, bcrypt.ErrMismatchedHashAndPassword):
		return false, nil
	default:
		return false, fmt.Errorf("checking password: %w", err)
	}
}
