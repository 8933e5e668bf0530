package graph

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"
	"github.com/vektah/gqlparser/v2/validator"

	"github.com/gqlauth/gqlauth/internal/authtest"
	"github.com/gqlauth/gqlauth/internal/gqltest"
)

// parseValid parses and validates a query against the schema, as gqlgen
// does before caching it.
func parseValid(tb testing.TB, query string) *ast.QueryDocument {
	tb.Helper()
	doc, err := parser.ParseQuery(&ast.Source{Input: query})
	if err != nil {
		tb.Fatalf("parse: %v", err)
	}
	if errs := validator.Validate(NewExecutableSchema(Config{}).Schema(), doc); len(errs) > 0 {
		tb.Fatalf("validate: %v", errs)
	}
	return doc
}

// cacheShapes are queries of the shapes that weigh most per byte (many
// tiny fields, many aliases, arguments) and the ones clients send.
func cacheShapes(tb testing.TB) map[string]string {
	intro, err := os.ReadFile("../testdata/introspection.graphql")
	if err != nil {
		tb.Fatal(err)
	}
	var aliases strings.Builder
	aliases.WriteString("{")
	for i := range 500 {
		fmt.Fprintf(&aliases, " a%d: me { id }", i)
	}
	aliases.WriteString(" }")
	return map[string]string{
		"Introspection": string(intro),
		"DenseFields":   "{ me { " + strings.Repeat("id ", 1000) + "} }",
		"Aliases":       aliases.String(),
		"LongAlias":     "{ " + strings.Repeat("a", 16000) + ": me { id } }",
		"Me":            "{ me { id name email } }",
		"Login":         `mutation { login(input: {email: "a@example.com", password: "password123"}) { accessToken user { id } } }`,
		"Variables":     `mutation($e: String!, $p: String!) { login(input: {email: $e, password: $p}) { accessToken } }`,
	}
}

// TestDocumentCostBoundsTheHeap checks the cache's estimate against the heap
// that parsed documents really hold: never under it (the budget would not
// bound memory), and not wildly over (the cache would hold too little).
func TestDocumentCostBoundsTheHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("measures the heap; run without -short")
	}
	for name, q := range cacheShapes(t) {
		t.Run(name, func(t *testing.T) {
			n := 20 // large documents weigh enough to measure
			if len(q) < 1000 {
				n = 1000
			}
			docs := make([]*ast.QueryDocument, n)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			for i := range docs {
				docs[i] = parseValid(t, strings.Clone(q))
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			held := (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / float64(n)
			cost := float64(documentCost(q, docs[0]))
			runtime.KeepAlive(docs)
			t.Logf("%d bytes of text: %.0f bytes held, estimated %.0f (%.1fx)", len(q), held, cost, cost/held)
			if cost < held {
				t.Fatalf("estimate %.0f is under the %.0f bytes held", cost, held)
			}
			if cost > 8*held {
				t.Fatalf("estimate %.0f is over 8 times the %.0f bytes held", cost, held)
			}
		})
	}
}

func TestQueryCache(t *testing.T) {
	ctx := context.Background()
	shapes := cacheShapes(t)

	t.Run("OKIntrospectionAndSmallQueriesStay", func(t *testing.T) {
		c := newQueryCache(QueryCacheBytes, MaxCachedQueryBytes)
		for _, name := range []string{"Introspection", "Me", "Login", "Variables"} {
			c.Add(ctx, shapes[name], parseValid(t, shapes[name]))
		}
		for _, name := range []string{"Introspection", "Me", "Login", "Variables"} {
			if _, ok := c.Get(ctx, shapes[name]); !ok {
				t.Errorf("%s was not cached", name)
			}
		}
	})
	t.Run("LongQueriesNotCached", func(t *testing.T) {
		c := newQueryCache(QueryCacheBytes, MaxCachedQueryBytes)
		q := "{ " + strings.Repeat("b", MaxCachedQueryBytes) + ": me { id } }"
		c.Add(ctx, q, parseValid(t, q))
		if _, ok := c.Get(ctx, q); ok || c.Bytes() != 0 {
			t.Fatalf("a %d-byte query was cached (%d bytes held)", len(q), c.Bytes())
		}
	})
	t.Run("BoundedInBytesLeastRecentlyUsedOut", func(t *testing.T) {
		c := newQueryCache(1<<20, MaxCachedQueryBytes)
		first := "{ first: me { id } }"
		c.Add(ctx, first, parseValid(t, first))
		for i := range 2000 {
			q := fmt.Sprintf("{ q%d: me { id name email photo } }", i)
			if i%10 == 0 {
				c.Get(ctx, first) // kept in use
			}
			c.Add(ctx, q, parseValid(t, q))
			if c.Bytes() > 1<<20 {
				t.Fatalf("after %d queries the cache holds %d bytes, over its 1 MiB", i+1, c.Bytes())
			}
		}
		if _, ok := c.Get(ctx, first); !ok {
			t.Error("the query in use was evicted")
		}
		if _, ok := c.Get(ctx, "{ q0: me { id name email photo } }"); ok {
			t.Error("the oldest unused query is still cached")
		}
	})
	t.Run("KeyedByHash", func(t *testing.T) {
		c := newQueryCache(QueryCacheBytes, MaxCachedQueryBytes)
		c.Add(ctx, shapes["Me"], parseValid(t, shapes["Me"]))
		if _, ok := c.Get(ctx, shapes["Me"]+" "); ok {
			t.Fatal("another text found the cached document")
		}
	})
}

// TestSelectionLimitCountsWhatValidationWalks: a document stays cheap to
// validate however it is shaped, because the limit counts the selections
// the validator walks: a large fragment spread by many operations counts
// once per operation (the review's bypass: 160 operations of one
// 330-field fragment took 1.6 s to validate).
func TestSelectionLimitCountsWhatValidationWalks(t *testing.T) {
	ops := func(n int, frag string) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "query q%d { ...F } ", i)
		}
		return b.String() + frag
	}
	bigFragment := "fragment F on Query { me { " + strings.Repeat("id ", 330) + "} }"
	l := newSelectionLimit(200, newQueryCache(QueryCacheBytes, MaxCachedQueryBytes))
	for _, tc := range []struct {
		name  string
		query string
		ok    bool
	}{
		{"OneOperation", "{ me { id name } }", true},
		{"Introspection", cacheShapes(t)["Introspection"], true},
		{"DenseFields", "{ me { " + strings.Repeat("id ", 4000) + "} }", false},
		{"ManyOperationsOneFragment", ops(160, bigFragment), false},
		{"NestedFragments", "{ ...A } fragment A on Query { ...B ...B2 } fragment B on Query { me { " + strings.Repeat("id ", 200) + "} } fragment B2 on Query { me { " + strings.Repeat("name ", 200) + "} }", false},
		{"FewOperationsSmallFragment", ops(5, "fragment F on Query { me { id name } }"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := l.MutateOperationParameters(context.Background(), &graphql.RawParams{Query: tc.query})
			if (err == nil) != tc.ok {
				t.Fatalf("accepted = %v, want %v (%v)", err == nil, tc.ok, err)
			}
		})
	}
}

// TestSelectionLimitWorstAcceptedIsCheap: the costliest documents the limit
// lets through validate fast (about 25 ms here; a generous bound).
func TestSelectionLimitWorstAcceptedIsCheap(t *testing.T) {
	l := newSelectionLimit(200, newQueryCache(QueryCacheBytes, MaxCachedQueryBytes))
	var manyOps strings.Builder
	for i := range 20 {
		fmt.Fprintf(&manyOps, "query q%d { ...F } ", i)
	}
	manyOps.WriteString("fragment F on Query { me { " + strings.Repeat("id ", 20) + "} }")
	for name, q := range map[string]string{
		"OneSelectionSet":       "{ me { " + strings.Repeat("id ", l.max-2) + "} }",
		"OperationsOneFragment": manyOps.String(),
	} {
		t.Run(name, func(t *testing.T) {
			if err := l.MutateOperationParameters(context.Background(), &graphql.RawParams{Query: q}); err != nil {
				t.Fatalf("refused: %v", err)
			}
			start := time.Now()
			parseValid(t, q)
			if took := time.Since(start); took > time.Second {
				t.Fatalf("validating an accepted document took %v", took)
			}
		})
	}
}

// TestParsedQueriesBoundedInBytes (finding 2): many distinct large queries
// (each one long alias, so one token) leave the heap near where it was.
// Before, the parsed-query cache kept 1,000 documents whatever their size:
// 300 queries of 1 MB held 600 MiB.
func TestParsedQueriesBoundedInBytes(t *testing.T) {
	const size, n = 1 << 20, 60
	s := newTestServer(t, authtest.Options{}, func(o *Options) { o.MaxBodyBytes = 2 * size })
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	before := heap()
	hc := &http.Client{Timeout: 30 * time.Second}
	for i := range n {
		alias := fmt.Sprintf("a%d", i) + strings.Repeat("x", size)
		_, r, err := gqltest.PostJSON(hc, s.base, "{ "+alias+": me { id } }", nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		gqltest.ExpectCode(t, r, "UNAUTHENTICATED") // valid, executed, and not signed in
	}
	after := heap()
	grown := int64(after) - int64(before)
	t.Logf("heap %d MiB before, %d MiB after %d distinct 1 MiB queries", before>>20, after>>20, n)
	if grown > 16<<20 {
		t.Fatalf("the heap grew by %d MiB and stayed", grown>>20)
	}
}
