// Package storetest opens the store on a real MongoDB-wire server for
// tests: an embedded FerretDB in a temporary directory, prepared as the
// server prepares it (schema, and the _id index fix).
package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/gqlauth/gqlauth/internal/embedded"
	"github.com/gqlauth/gqlauth/internal/mongostore"
)

// Database is the database name tests use.
const Database = "test"

// Open starts an embedded FerretDB and opens a store on it with o (URI and
// Database are filled in; Timeout defaults to 5 s). Both are closed when
// the test ends.
func Open(tb testing.TB, o mongostore.Options) *mongostore.Store {
	tb.Helper()
	s, _ := OpenDB(tb, o)
	return s
}

// OpenDB is Open that also returns the database, for tests that stop it.
func OpenDB(tb testing.TB, o mongostore.Options) (*mongostore.Store, *embedded.DB) {
	tb.Helper()
	db, err := embedded.Start(embedded.Options{Dir: tb.TempDir()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(db.Stop)
	o.URI, o.Database = db.URI(), Database
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Second
	}
	s, err := mongostore.Open(o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close(context.Background()) })
	ctx := context.Background()
	if err := s.EnsureSchema(ctx); err != nil {
		tb.Fatal(err)
	}
	if err := embedded.IndexIDLookups(ctx, db.Dir(), Database); err != nil {
		tb.Fatal(err)
	}
	return s, db
}
