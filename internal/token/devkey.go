package token

import (
	"crypto"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

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
