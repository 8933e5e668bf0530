//go:build noembedded

package main

import (
	"context"
	"errors"
)

// embeddedDB is absent from this build (the noembedded tag).
type embeddedDB interface {
	URI() string
	Dir() string
	Stop()
}

// errNoEmbedded is returned when DATABASE_URL is unset in a build without
// the embedded database.
var errNoEmbedded = errors.New("DATABASE_URL: required: this build has no embedded database (built with -tags noembedded)")

func startEmbedded(string, bool) (embeddedDB, error) { return nil, errNoEmbedded }

func prepareEmbedded(context.Context, embeddedDB, string) error { return errNoEmbedded }
