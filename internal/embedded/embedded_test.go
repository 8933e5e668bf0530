package embedded_test

import (
	"context"
	"database/sql"
	"fmt"
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
