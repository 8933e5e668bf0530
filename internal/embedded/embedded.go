// Package embedded runs FerretDB (SQLite handler) in-process, so that the
// server needs no database installed: the store reaches it through the
// official MongoDB driver over loopback, the same code path as a real
// MongoDB.
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

// DB is a running embedded FerretDB.
type DB struct {
	dir    string
	uri    string
	cancel context.CancelFunc
	done   chan struct{}
}

// Options configures Start.
type Options struct {
	// Dir holds the SQLite files (one per database). It is created.
	Dir string
	// Addr is the TCP listen address; empty means a free loopback port.
	Addr string
	// Logger receives FerretDB's own logs; nil discards them.
	Logger *slog.Logger
}

// Start starts FerretDB and returns once it accepts connections.
func Start(o Options) (*DB, error) {
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("embedded database directory: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating embedded database directory: %w", err)
	}
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: o.Addr},
		Handler:   "sqlite",
		SQLiteURL: "file:" + dir + "/",
		Logger:    logger,
	})
	if err != nil {
		return nil, fmt.Errorf("starting embedded database: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	db := &DB{dir: dir, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(db.done)
		_ = f.Run(ctx) // returns nil when ctx is cancelled
	}()
	// The listener exists once New returns, so this does not block.
	db.uri = f.MongoDBURI()
	return db, nil
}

// URI returns the MongoDB URI of the listener (no database in the path).
func (d *DB) URI() string { return d.uri }

// Dir returns the directory that holds the SQLite files.
func (d *DB) Dir() string { return d.dir }

// Stop closes the listener and all connections and waits for FerretDB to
// finish.
func (d *DB) Stop() {
	d.cancel()
	<-d.done
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
