package token

import (
	"crypto"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// DevKey describes a development key: where it is kept, and whether it
// was generated now.
type DevKey struct {
	Path    string
	Created bool
}

// ManagerFor returns the manager that signs with key, or, when key is nil
// (no key configured: development only), with the development key for alg
// kept under dir, which it generates on first use; dev then describes that
// key, for the log.
func ManagerFor(issuer string, key *Key, previous []*Key, dir, alg string, now func() time.Time) (m *Manager, dev *DevKey, err error) {
	if key == nil {
		dev = &DevKey{}
		if key, dev.Path, dev.Created, err = DevelopmentKey(dir, alg); err != nil {
			return nil, nil, fmt.Errorf("JWT_PRIVATE_KEY not set, and the development key failed: %w", err)
		}
	}
	m, err = NewManager(issuer, key, previous, now)
	return m, dev, err
}

// DevelopmentKey returns the development signing key for alg kept under
// dir, generating it (mode 0600) on first use, so that tokens survive
// restarts without configured keys. created reports whether it was made
// now; path is where it is kept.
func DevelopmentKey(dir, alg string) (key *Key, path string, created bool, err error) {
	priv, path, created, err := LoadOrCreateDevKey(dir, alg)
	if err != nil {
		return nil, path, false, err
	}
	if key, err = NewKey(alg, priv, nil); err != nil {
		return nil, path, false, fmt.Errorf("development key %s: %w", path, err)
	}
	return key, path, created, nil
}

// DevKeyPath returns where the generated development key for alg is kept.
func DevKeyPath(dir, alg string) string {
	return filepath.Join(dir, "dev-jwt-"+alg+".pem")
}

// LoadOrCreateDevKey reads the development private key for alg under dir, or
// generates one and writes it there with mode 0600, so that tokens survive
// restarts. created reports whether a new key was written.
func LoadOrCreateDevKey(dir, alg string) (key crypto.Signer, path string, created bool, err error) {
	path = DevKeyPath(dir, alg)
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		key, err = ParsePrivateKeyPEM(data)
		if err != nil {
			return nil, path, false, fmt.Errorf("development key %s: %w (delete it to generate a new one)", path, err)
		}
		return key, path, false, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, path, false, fmt.Errorf("reading development key: %w", err)
	}

	key, err = GenerateKey(alg)
	if err != nil {
		return nil, path, false, err
	}
	pemBytes, err := EncodePrivateKeyPEM(key)
	if err != nil {
		return nil, path, false, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, path, false, fmt.Errorf("creating %s: %w", dir, err)
	}
	// Write to a temporary file and link it into place, so that a crash never leaves a
	// half-written key, and two processes starting at once agree on one key.
	tmp, err := os.CreateTemp(dir, ".dev-jwt-*.tmp")
	if err != nil {
		return nil, path, false, fmt.Errorf("writing development key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, path, false, fmt.Errorf("writing development key: %w", err)
	}
	if _, err := tmp.Write(pemBytes); err != nil {
		tmp.Close()
		return nil, path, false, fmt.Errorf("writing development key: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, path, false, fmt.Errorf("writing development key: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, path, false, fmt.Errorf("writing development key: %w", err)
	}
	// os.Link fails if another process won the race; then use its key.
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return LoadOrCreateDevKey(dir, alg)
		}
		return nil, path, false, fmt.Errorf("writing development key: %w", err)
	}
	return key, path, true, nil
}
