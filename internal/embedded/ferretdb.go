//go:build !noembedded

package embedded

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/FerretDB/FerretDB/ferretdb"
	_ "modernc.org/sqlite" // the driver FerretDB itself uses
)

// Available reports whether this build has the embedded database.
const Available = true

// newServer creates FerretDB over SQLite in dir, listening on socket (a
// Unix socket path) or else on o.Addr (TCP).
func newServer(dir, socket string, o Options) (*server, error) {
	listener := ferretdb.ListenerConfig{TCP: o.Addr}
	if socket != "" {
		listener = ferretdb.ListenerConfig{Unix: socket}
	}
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	// WAL (FerretDB's default) with synchronous=NORMAL: a commit no longer
	// waits for fsync, which more than doubled refresh throughput
	// (BENCHMARKS.md). Committed data survives a crash of the process
	// (kill -9); a crash of the OS or a power loss can lose the last
	// commits, revocations and spent-token records among them (a logout
	// could come undone). Durable keeps FULL, as production should.
	synchronous := "normal"
	if o.Durable {
		synchronous = "full"
	}
	f, err := ferretdb.New(&ferretdb.Config{
		Listener: listener,
		Handler:  "sqlite",
		// cache_size: FerretDB keeps up to 100 SQLite connections open,
		// each with its own page cache (2 MiB by default), and a sweep's
		// whole-collection reads fill them; the OS caches the file anyway,
		// so 256 KiB a connection bounds memory at no measured cost.
		SQLiteURL: "file:" + dir + "/?_pragma=synchronous(" + synchronous + ")&_pragma=cache_size(-256)",
		Logger:    logger,
	})
	if err != nil {
		return nil, err
	}
	srv := &server{run: f.Run}
	if socket == "" {
		srv.uri = f.MongoDBURI() // the listener exists once New returns
	}
	return srv, nil
}

// IndexIDLookups makes FerretDB's _id look-ups in the named database use an
// index. FerretDB answers a filter that is exactly {_id: value} with
// `WHERE _ferretdb_sjson->'$._id' = ?`, but its own unique _id index is on
// the expression `_ferretdb_sjson->"_id"`, which SQLite does not match to
// that query: every look-up, update and delete by _id reads the whole table.
// This adds, to every collection of the database, an index on the exact
// expression the query uses. It is idempotent; run it after the collections
// exist (the store's EnsureSchema creates them).
//
// Measured at 11,000 documents: find by _id 21 ms → 0.4 ms, update by _id
// 24 ms → 1.2 ms.
func IndexIDLookups(ctx context.Context, dir, database string) error {
	file := filepath.Join(dir, database+".sqlite")
	if _, err := os.Stat(file); err != nil {
		return fmt.Errorf("indexing _id look-ups: %w", err)
	}
	sdb, err := sql.Open("sqlite", "file:"+file+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return fmt.Errorf("indexing _id look-ups: %w", err)
	}
	defer sdb.Close()

	rows, err := sdb.QueryContext(ctx, `SELECT table_name FROM _ferretdb_collections`)
	if err != nil {
		return fmt.Errorf("indexing _id look-ups: listing collections: %w", err)
	}
	var tables []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			return fmt.Errorf("indexing _id look-ups: %w", err)
		}
		tables = append(tables, t)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return fmt.Errorf("indexing _id look-ups: %w", err)
	}
	for _, t := range tables {
		q := fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %s ON %s (_ferretdb_sjson->'$._id')`,
			quoteIdent(t+"_gqlauth_id_lookup"), quoteIdent(t))
		if _, err := sdb.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("indexing _id look-ups of %s: %w", t, err)
		}
	}
	return nil
}

func quoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}
