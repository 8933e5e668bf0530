package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/joho/godotenv"
)

// FromEnvironment loads the configuration from the environment, backed by
// the .env file at dotenv when there is one (the environment wins).
func FromEnvironment(dotenv string) (Config, error) {
	lookup, err := EnvLookup(dotenv)
	if err != nil {
		return Config{}, err
	}
	return Load(lookup)
}

// EnvLookup returns the environment, backed by the .env file at path when
// there is one; the environment wins. A file that does not parse is
// reported by its line, never quoted: it holds secrets.
func EnvLookup(path string) (Lookup, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return os.LookupEnv, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	dotenv, err := godotenv.UnmarshalBytes(data)
	if err != nil {
		// godotenv's message quotes the rest of the file, secrets included:
		// name the line instead.
		return nil, fmt.Errorf("%s: line %d is not NAME=value", path, badDotEnvLine(data))
	}
	return Chain(os.LookupEnv, MapLookup(dotenv)), nil
}

// badDotEnvLine returns the number of the first line that does not parse on
// its own (a best guess when values span lines).
func badDotEnvLine(data []byte) int {
	for i, line := range strings.Split(string(data), "\n") {
		if _, err := godotenv.Unmarshal(line); err != nil {
			return i + 1
		}
	}
	return 1
}
