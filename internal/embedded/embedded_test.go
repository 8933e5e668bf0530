//go:build !noembedded

package embedded_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/gqlauth/gqlauth/internal/embedded"
)

// queryPlan returns SQLite's plan for the query FerretDB runs for a filter
// {_id: value} on the collection's table.
func queryPlan(t *testing.T, dir, database string) string {
	t.Helper()
	sdb, err := sql.Open("sqlite", "file:"+filepath.Join(dir, database+".sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	defer sdb.Close()
	var table string
	if err := sdb.QueryRow(`SELECT table_name FROM _ferretdb_collections WHERE name = 'things'`).Scan(&table); err != nil {
		t.Fatal(err)
	}
	rows, err := sdb.Query(fmt.Sprintf(`EXPLAIN QUERY PLAN SELECT _ferretdb_sjson FROM %q WHERE _ferretdb_sjson->'$._id' = ?`, table), `"x"`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	return strings.Join(plan, "; ")
}

// TestIndexIDLookups shows that FerretDB's _id look-up scans the table, and
// uses an index once IndexIDLookups ran; and that the driver still finds
// documents by _id.
func TestIndexIDLookups(t *testing.T) {
	db, err := embedded.Start(embedded.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Stop()
	ctx := context.Background()
	client, err := mongo.Connect(options.Client().ApplyURI(db.URI()))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(ctx)
	coll := client.Database("test").Collection("things")
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: "a"}, {Key: "v", Value: 1}}); err != nil {
		t.Fatal(err)
	}

	if plan := queryPlan(t, db.Dir(), "test"); !strings.HasPrefix(plan, "SCAN") {
		t.Fatalf("before: plan = %q, want a scan (if FerretDB now uses its own index, drop IndexIDLookups)", plan)
	}
	for range 2 { // idempotent
		if err := embedded.IndexIDLookups(ctx, db.Dir(), "test"); err != nil {
			t.Fatal(err)
		}
	}
	if plan := queryPlan(t, db.Dir(), "test"); !strings.Contains(plan, "USING INDEX") {
		t.Fatalf("after: plan = %q, want an index search", plan)
	}

	var got struct {
		V int `bson:"v"`
	}
	if err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: "a"}}).Decode(&got); err != nil || got.V != 1 {
		t.Fatalf("FindOne = %+v, %v", got, err)
	}
	if _, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: "a"}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: 2}}}}); err != nil {
		t.Fatal(err)
	}
	if err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: "a"}}).Decode(&got); err != nil || got.V != 2 {
		t.Fatalf("after update = %+v, %v", got, err)
	}
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: "a"}}); !mongo.IsDuplicateKeyError(err) {
		t.Fatalf("duplicate _id insert err = %v, want duplicate key", err)
	}
}

func TestIndexIDLookupsMissingDatabase(t *testing.T) {
	if err := embedded.IndexIDLookups(context.Background(), t.TempDir(), "nope"); err == nil {
		t.Fatal("want an error for a database without files")
	}
}

// TestSocketNeverTCP starts the database in a directory whose path is too
// long for a Unix socket (container volume paths often are): it still
// listens on a Unix socket that only this user can reach, never on TCP,
// and a second process on the directory is refused by the lock.
func TestSocketNeverTCP(t *testing.T) {
	dir := filepath.Join(t.TempDir(), strings.Repeat("long-volume-path-", 8))
	db, err := embedded.Start(embedded.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			db.Stop()
		}
	}()
	if !strings.HasPrefix(db.URI(), "mongodb://%2F") || strings.Contains(db.URI(), "127.0.0.1") {
		t.Fatalf("URI %q is not a Unix socket", db.URI())
	}
	located, err := embedded.Locate(dir)
	if err != nil || located != db.URI() {
		t.Fatalf("Locate = %q, %v; want %q", located, err, db.URI())
	}
	socket, err := url.PathUnescape(strings.TrimSuffix(strings.TrimPrefix(db.URI(), "mongodb://"), "/"))
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{socket: 0o600, filepath.Dir(socket): 0o700} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s has mode %v, want %v", path, got, want)
		}
	}
	// The driver reaches it.
	client, err := mongo.Connect(options.Client().ApplyURI(db.URI()))
	if err != nil {
		t.Fatal(err)
	}
	if err := client.Ping(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	_ = client.Disconnect(context.Background())

	// A second process on the same directory is refused.
	if second, err := embedded.Start(embedded.Options{Dir: dir}); !errors.Is(err, embedded.ErrInUse) {
		if second != nil {
			second.Stop()
		}
		t.Fatalf("second Start: %v, want ErrInUse", err)
	}
	// Stopping releases the directory and removes the socket.
	db.Stop()
	stopped = true
	if _, err := os.Stat(filepath.Dir(socket)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the socket's directory is still there: %v", err)
	}
	again, err := embedded.Start(embedded.Options{Dir: dir})
	if err != nil {
		t.Fatalf("restart after Stop: %v", err)
	}
	again.Stop()
}

// TestStaleSocketCleared: what a killed process left (its socket file and
// the private directory it names) is removed by the next start.
func TestStaleSocketCleared(t *testing.T) {
	dir := t.TempDir()
	stale, err := os.MkdirTemp("", "gqlauth-db-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, embedded.SocketFile), []byte(filepath.Join(stale, "mongodb.sock")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := embedded.Start(embedded.Options{Dir: dir, Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Stop()
	if _, err := os.Stat(stale); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the stale socket directory is still there: %v", err)
	}
	if _, err := embedded.Locate(dir); err == nil {
		t.Fatal("Locate found the dead socket of a TCP-mode start")
	}
}
