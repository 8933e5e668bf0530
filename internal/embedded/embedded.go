// Package embedded runs FerretDB (SQLite handler) in-process, so that the
// server needs no database installed: the store reaches it through the
// official MongoDB driver on a private Unix socket, the same code path as a
// real MongoDB.
//
// Builds with the noembedded tag leave FerretDB and SQLite out (production
// images that use MongoDB): there Available is false and Start returns
// ErrNotBuilt.
package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
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

// ErrNotBuilt is returned by Start in a build without the embedded
// database (the noembedded tag).
var ErrNotBuilt = errors.New("this build has no embedded database (built with -tags noembedded)")

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
	if !Available {
		return nil, ErrNotBuilt
	}
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

	var socket string
	if o.Addr == "" {
		if db.socketDir, socket, err = privateSocket(); err != nil {
			return nil, err
		}
	}
	srv, err := newServer(dir, socket, o)
	if err != nil {
		return nil, fmt.Errorf("starting embedded database: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	db.cancel = cancel
	go func() {
		defer close(db.done)
		_ = srv.run(ctx) // returns nil when ctx is cancelled
	}()
	if socket != "" {
		// The listener exists once newServer returns. The directory already
		// keeps others out; the socket's own mode says so too.
		if err := os.Chmod(socket, 0o600); err != nil {
			return nil, fmt.Errorf("embedded database socket: %w", err)
		}
		if err := writeFileAtomic(filepath.Join(dir, SocketFile), []byte(socket+"\n")); err != nil {
			return nil, fmt.Errorf("embedded database socket: %w", err)
		}
		db.uri = socketURI(socket)
	} else {
		db.uri = srv.uri
	}
	ok = true
	return db, nil
}

// server is the database running in the process: its run loop, and its
// URI when it listens on TCP.
type server struct {
	run func(context.Context) error
	uri string
}

// ForServer starts the server's embedded database in dataDir/db (durable
// in production), and logs that it did and how to use MongoDB instead. In
// a build without it, the error says DATABASE_URL is required.
func ForServer(dataDir string, production bool, log *slog.Logger) (*DB, error) {
	db, err := Start(Options{Dir: filepath.Join(dataDir, "db"), Durable: production})
	if errors.Is(err, ErrNotBuilt) {
		return nil, fmt.Errorf("DATABASE_URL: required: %w", err)
	}
	if err != nil {
		return nil, err
	}
	log.Info("using the embedded database (FerretDB over SQLite); set DATABASE_URL to use MongoDB, e.g. DATABASE_URL=mongodb://admin:password123@localhost:6000/fastapi?authSource=admin",
		"dir", db.Dir())
	if production {
		log.Warn("APP_ENV=production without DATABASE_URL: the embedded database is a single process's files; use MongoDB in production")
	}
	return db, nil
}

// Prepare returns what the store runs once its schema exists: the _id
// index fix of the named database (IndexIDLookups).
func (d *DB) Prepare(database string) func(context.Context) error {
	return func(ctx context.Context) error { return IndexIDLookups(ctx, d.dir, database) }
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

// socketURI returns the driver's URI of a socket: its path, percent-encoded,
// as the host.
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
