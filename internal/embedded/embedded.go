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
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/FerretDB/FerretDB/ferretdb"
	_ "modernc.org/sqlite" // the driver FerretDB itself uses
)

// DB is a running embedded FerretDB.
type DB struct {
	dir       string
	uri       string
	socketDir string // the private directory of the socket, removed by Stop
	lock      *os.File
	cancel    context.CancelFunc
	done      chan struct{}
}

// Options configures Start.
type Options struct {
	// Dir holds the SQLite files (one per database) and the lock that keeps
	// a second process off them. It is created with mode 0700.
	Dir string
	// Addr is a TCP listen address (e.g. "127.0.0.1:0"), for tests that
	// need several processes on one database. Empty (the default) means a
	// Unix socket that only this user can reach: FerretDB has no
	// authentication, and a TCP port on loopback is open to every local
	// process. The server never listens on TCP unless asked.
	Addr string
	// Logger receives FerretDB's own logs; nil discards them.
	Logger *slog.Logger
	// Durable makes every commit wait for the disk (SQLite
	// synchronous=FULL); see Start.
	Durable bool
}

// Files in Dir besides the databases.
const (
	// LockName is the lock file: held (flock) while a process serves the
	// directory, released by the kernel when the process ends, even by
	// kill -9.
	LockName = "LOCK"
	// SocketFile holds the path of the Unix socket of the process serving
	// the directory, for tools that reach its database (see Locate).
	SocketFile = "socket"
	// socketName is the socket's name in its private directory.
	socketName = "mongodb.sock"
)

// maxSocketPath is the longest socket path every Unix accepts (sun_path is
// 104 bytes on the BSDs, 108 on Linux, including the final NUL).
const maxSocketPath = 103

// ErrInUse means another process serves the directory's database.
var ErrInUse = errors.New("the embedded database directory is in use by another process")

// Start starts FerretDB and returns once it accepts connections.
//
// Unless Options.Addr asks for TCP, it listens on a Unix socket (mode 0600)
// in a fresh private directory (mode 0700) under the system's temporary
// directory, whose path always fits a socket address whatever the length of
// Dir (container volume paths are often too long), and writes the socket's
// path to Dir/socket.
func Start(o Options) (*DB, error) {
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("embedded database directory: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating embedded database directory: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	clearStale(dir)
	db := &DB{dir: dir, lock: lock, done: make(chan struct{})}
	ok := false
	defer func() {
		if !ok {
			if db.cancel != nil {
				db.cancel()
				<-db.done
			}
			db.release()
		}
	}()

	listener := ferretdb.ListenerConfig{TCP: o.Addr}
	var socket string
	if o.Addr == "" {
		if db.socketDir, socket, err = privateSocket(); err != nil {
			return nil, err
		}
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
		return nil, fmt.Errorf("starting embedded database: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	db.cancel = cancel
	go func() {
		defer close(db.done)
		_ = f.Run(ctx) // returns nil when ctx is cancelled
	}()
	if socket != "" {
		// The listener exists once New returns. The directory already
		// keeps others out; the socket's own mode says so too.
		if err := os.Chmod(socket, 0o600); err != nil {
			return nil, fmt.Errorf("embedded database socket: %w", err)
		}
		if err := writeFileAtomic(filepath.Join(dir, SocketFile), []byte(socket+"\n")); err != nil {
			return nil, fmt.Errorf("embedded database socket: %w", err)
		}
		// The driver wants the socket path percent-encoded as the host.
		db.uri = socketURI(socket)
	} else {
		db.uri = f.MongoDBURI()
	}
	ok = true
	return db, nil
}

// clearStale removes what a process that served dir and was killed left:
// its socket file and the private directory it names. Called with the
// directory's lock held, so that process is gone.
func clearStale(dir string) {
	path := filepath.Join(dir, SocketFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	_ = os.Remove(path)
	if socketDir := filepath.Dir(strings.TrimSpace(string(b))); strings.HasPrefix(filepath.Base(socketDir), socketDirPrefix) {
		_ = os.RemoveAll(socketDir)
	}
}

// socketDirPrefix begins the name of a socket's private directory.
const socketDirPrefix = "gqlauth-db-"

// privateSocket makes a fresh directory of its own (mode 0700) for the
// socket and returns it with the socket's path.
func privateSocket() (dir, socket string, err error) {
	for _, base := range []string{os.TempDir(), "/tmp"} {
		dir, err = os.MkdirTemp(base, socketDirPrefix)
		if err != nil {
			continue
		}
		socket = filepath.Join(dir, socketName)
		if len(socket) <= maxSocketPath {
			return dir, socket, nil
		}
		_ = os.Remove(dir)
	}
	if err == nil {
		err = errors.New("the temporary directory's path is too long for a socket (set TMPDIR to a shorter one)")
	}
	return "", "", fmt.Errorf("embedded database socket: %w", err)
}

func socketURI(socket string) string { return "mongodb://" + url.PathEscape(socket) + "/" }

// Locate returns the MongoDB URI of the embedded database that a running
// process serves from dir (on its Unix socket), for tools and tests that
// reach it from outside that process.
func Locate(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, SocketFile))
	if err != nil {
		return "", fmt.Errorf("locating the embedded database: %w", err)
	}
	return socketURI(strings.TrimSpace(string(b))), nil
}

// writeFileAtomic writes a 0600 file by renaming a temporary one over it.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// URI returns the MongoDB URI of the listener (no database in the path): a
// percent-encoded Unix socket path, or a loopback TCP address.
func (d *DB) URI() string { return d.uri }

// Dir returns the directory that holds the SQLite files.
func (d *DB) Dir() string { return d.dir }

// Stop closes the listener and all connections, waits for FerretDB to
// finish, and releases the directory.
func (d *DB) Stop() {
	d.cancel()
	<-d.done
	d.release()
}

// release removes the socket and its directory and drops the lock.
func (d *DB) release() {
	if d.socketDir != "" {
		_ = os.Remove(filepath.Join(d.dir, SocketFile))
		_ = os.RemoveAll(d.socketDir)
		d.socketDir = ""
	}
	if d.lock != nil {
		_ = d.lock.Close() // closing drops the flock
		d.lock = nil
	}
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
