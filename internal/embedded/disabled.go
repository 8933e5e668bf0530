//go:build noembedded

package embedded

import "context"

// Available reports whether this build has the embedded database: not
// this one (the noembedded tag leaves FerretDB and SQLite out, for
// production images that use MongoDB).
const Available = false

func newServer(string, string, Options) (*server, error) { return nil, ErrNotBuilt }

// IndexIDLookups does nothing in a build without the embedded database.
func IndexIDLookups(context.Context, string, string) error { return ErrNotBuilt }
