//go:build !noembedded

package main

import (
	"context"

	"github.com/gqlauth/gqlauth/internal/embedded"
)

// embeddedDB is the in-process database used when DATABASE_URL is unset.
// Builds with the noembedded tag leave it (and FerretDB) out.
type embeddedDB interface {
	URI() string
	Dir() string
	Stop()
}

// startEmbedded starts FerretDB over SQLite in dir; durable makes every
// commit wait for the disk (production).
func startEmbedded(dir string, durable bool) (embeddedDB, error) {
	return embedded.Start(embedded.Options{Dir: dir, Durable: durable})
}

// prepareEmbedded makes the embedded database's _id look-ups use an index.
func prepareEmbedded(ctx context.Context, db embeddedDB, database string) error {
	return embedded.IndexIDLookups(ctx, db.Dir(), database)
}
