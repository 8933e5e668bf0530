package graph

import (
	"container/list"
	"context"
	"crypto/sha256"
	"sync"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
)

// Bounds of the parsed-query cache.
const (
	// QueryCacheBytes is the memory the cache may hold, as estimated by
	// documentCost.
	QueryCacheBytes = 4 << 20
	// MaxCachedQueryBytes is the longest query text that is cached. Longer
	// ones are parsed on every request: an auth API's own queries are a few
	// hundred bytes and GraphiQL's introspection about 3 KB, so only an odd
	// or hostile client sends more.
	MaxCachedQueryBytes = 16 << 10
)

// queryCache keeps parsed and validated query documents, least recently
// used first out, within a budget of bytes rather than a number of
// entries: a count bound lets a client pin memory with a few large
// distinct queries. Entries are keyed by the SHA-256 of the text, so the
// cache holds no copy of a query beyond the one its document keeps.
type queryCache struct {
	budget   int
	maxQuery int

	mu      sync.Mutex
	used    int
	order   *list.List // of *cacheEntry, most recently used first
	entries map[[sha256.Size]byte]*list.Element
}

type cacheEntry struct {
	key  [sha256.Size]byte
	doc  *ast.QueryDocument
	cost int
}

var _ graphql.Cache[*ast.QueryDocument] = (*queryCache)(nil)

// newQueryCache returns a cache of at most budget estimated bytes that
// keeps no query longer than maxQuery bytes.
func newQueryCache(budget, maxQuery int) *queryCache {
	return &queryCache{budget: budget, maxQuery: maxQuery, order: list.New(), entries: map[[sha256.Size]byte]*list.Element{}}
}

// Get returns the document parsed from query, if cached.
func (c *queryCache) Get(_ context.Context, query string) (*ast.QueryDocument, bool) {
	if len(query) > c.maxQuery {
		return nil, false
	}
	key := sha256.Sum256([]byte(query))
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(e)
	return e.Value.(*cacheEntry).doc, true
}

// Add caches the document parsed from query, evicting the least recently
// used entries to stay within the budget. A query over maxQuery bytes, or
// whose document alone would take more than a quarter of the budget, is not
// cached.
func (c *queryCache) Add(_ context.Context, query string, doc *ast.QueryDocument) {
	if len(query) > c.maxQuery {
		return
	}
	cost := documentCost(query, doc)
	if cost > c.budget/4 {
		return
	}
	key := sha256.Sum256([]byte(query))
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[key]; ok {
		return
	}
	for c.used+cost > c.budget {
		oldest := c.order.Back()
		old := c.order.Remove(oldest).(*cacheEntry)
		delete(c.entries, old.key)
		c.used -= old.cost
	}
	c.entries[key] = c.order.PushFront(&cacheEntry{key: key, doc: doc, cost: cost})
	c.used += cost
}

// Bytes returns the estimated memory the cache holds.
func (c *queryCache) Bytes() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.used
}

// documentCost estimates the memory a parsed document holds: its source
// text, a fixed overhead, and a share per node. The weights were measured
// on gqlparser's documents (about 230 bytes per field, 1.3 KB for the
// smallest document, see TestDocumentCostBoundsTheHeap) and round up.
func documentCost(query string, doc *ast.QueryDocument) int {
	nodes := 0
	var walk func(ast.SelectionSet)
	walk = func(set ast.SelectionSet) {
		for _, sel := range set {
			nodes++
			switch s := sel.(type) {
			case *ast.Field:
				nodes += len(s.Arguments) + len(s.Directives)
				for _, a := range s.Arguments {
					nodes += valueNodes(a.Value)
				}
				walk(s.SelectionSet)
			case *ast.InlineFragment:
				nodes += len(s.Directives)
				walk(s.SelectionSet)
			case *ast.FragmentSpread:
				nodes += len(s.Directives)
			}
		}
	}
	for _, op := range doc.Operations {
		nodes += 1 + 2*len(op.VariableDefinitions) + len(op.Directives)
		walk(op.SelectionSet)
	}
	for _, f := range doc.Fragments {
		nodes += 1 + len(f.Directives)
		walk(f.SelectionSet)
	}
	const overhead, perNode = 2 << 10, 320
	return overhead + 2*len(query) + perNode*nodes
}

// valueNodes counts the nodes of an argument value (lists and input
// objects nest).
func valueNodes(v *ast.Value) int {
	if v == nil {
		return 0
	}
	n := 1
	for _, c := range v.Children {
		n += valueNodes(c.Value)
	}
	return n
}
