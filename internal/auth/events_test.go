package auth_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"slices"
	"strconv"
	"testing"

	"github.com/gqlauth/gqlauth/internal/auth"
)

// TestEventsListsEveryEvent: auth.Events, from which metrics count every
// event from zero, names each Event constant declared in events.go, once.
func TestEventsListsEveryEvent(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "events.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var declared []auth.Event
	ast.Inspect(f, func(n ast.Node) bool {
		spec, ok := n.(*ast.ValueSpec)
		if !ok || spec.Type == nil || len(spec.Values) != 1 {
			return true
		}
		if id, ok := spec.Type.(*ast.Ident); ok && id.Name == "Event" {
			if lit, ok := spec.Values[0].(*ast.BasicLit); ok {
				v, _ := strconv.Unquote(lit.Value)
				declared = append(declared, auth.Event(v))
			}
		}
		return true
	})
	listed := slices.Clone(auth.Events)
	slices.Sort(declared)
	slices.Sort(listed)
	if len(declared) < 16 || !slices.Equal(declared, listed) {
		t.Fatalf("declared %v\nlisted   %v", declared, listed)
	}
}
