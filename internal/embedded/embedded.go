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
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

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
	// Dir holds the SQLite files (one per database) and, by default, the
	// listener's Unix socket. It is created with mode 0700.
	Dir string
	// Addr is a TCP listen address (e.g. "127.0.0.1:0"). Empty means a Unix
	// socket in Dir, which only this user can reach: FerretDB has no
	// authentication, and a TCP port on loopback is open to every local
	// process. When Dir's path is too long for a socket, a free loopback
	// port is used.
	Addr string
	// Logger receives FerretDB's own logs; nil discards them.
	Logger *slog.Logger
	// Durable makes every commit wait for the disk (SQLite
	// synchronous=FULL); see Start.
	Durable bool
}

// SocketName is the Unix socket's name in Dir.
const SocketName = "mongodb.sock"

// maxSocketPath is the longest socket path every Unix accepts (sun_path is
// 104 bytes on the BSDs, 108 on Linux, including the final NUL).
const maxSocketPath = 103

// ErrInUse means another process serves the directory's database.
var ErrInUse = errors.New("the embedded database directory is in use by another process")

// Start starts FerretDB and returns once it accepts connections.
func Start(o Options) (*DB, error) {
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("embedded database directory: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating embedded database directory: %w", err)
	}
	listener := ferretdb.ListenerConfig{TCP: o.Addr}
	socket := filepath.Join(dir, SocketName)
	if o.Addr == "" {
		if len(socket) <= maxSocketPath {
			if err := clearStaleSocket(socket); err != nil {
				return nil, err
			}
			listener = ferretdb.ListenerConfig{Unix: socket}
		} else {
			listener = ferretdb.ListenerConfig{TCP: "127.0.0.1:0"}
		}
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
		return nil, fmt.Errorf("starting embedded database: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	db := &DB{dir: dir, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(db.done)
		_ = f.Run(ctx) // returns nil when ctx is cancelled
	}()
	if listener.Unix != "" {
		// The driver wants the socket path percent-encoded as the host.
		db.uri = "mongodb://" + url.PathEscape(socket) + "/"
	} else {
		// The listener exists once New returns, so this does not block.
		db.uri = f.MongoDBURI()
	}
	return db, nil
}

// clearStaleSocket removes a socket file left by a process that is gone, and
// refuses to start when a live process still answers on it.
func clearStaleSocket(path string) error {
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if conn, err := net.DialTimeout("unix", path, time.Second); err == nil {
		conn.Close()
		return fmt.Errorf("%w (%s)", ErrInUse, filepath.Dir(path))
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("removing stale socket: %w", err)
	}
	return nil
}

// URI returns the MongoDB URI of the listener (no database in the path): a
// percent-encoded Unix socket path, or a loopback TCP address.
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
