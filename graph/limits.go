package graph

import (
	"context"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/parser"
	"github.com/vektah/gqlparser/v2/validator/core"
	"github.com/vektah/gqlparser/v2/validator/rules"

	"github.com/gqlauth/gqlauth/internal/auth"
	"github.com/gqlauth/gqlauth/internal/web"
)

// ParserTokenLimit bounds the tokens of a query document. The playground's
// full introspection query has about 400.
const ParserTokenLimit = 5000

// signInFields are the mutations that cost a password hash or spend a
// refresh token: one of them per operation, so that aliases cannot
// multiply them; each counts toward the per-IP limit.
var signInFields = map[string]bool{"login": true, "register": true, "refresh": true}

// onceFields may each appear once per operation: changePassword costs two
// password hashes (and counts toward the per-IP limit too); logoutAll,
// revokeSession and sessions read or write up to 50 sessions each; the six
// e-mail mutations write limit records, tokens and e-mails.
var onceFields = map[string]bool{"changePassword": true, "logoutAll": true, "revokeSession": true, "sessions": true,
	"sendVerificationEmail": true, "verifyEmail": true, "requestPasswordReset": true, "resetPassword": true,
	"requestEmailChange": true, "confirmEmailChange": true}

// ipLimitedFields count toward the per-IP limit.
var ipLimitedFields = map[string]bool{"login": true, "register": true, "refresh": true, "changePassword": true,
	"sendVerificationEmail": true, "verifyEmail": true, "requestPasswordReset": true, "resetPassword": true,
	"requestEmailChange": true, "confirmEmailChange": true}

// validationRules returns gqlparser's rules plus the depth limit and the
// one-sign-in-per-operation rule. Their errors are validation errors (422,
// GRAPHQL_VALIDATION_FAILED), and validated documents are cached, so the
// rules run once per distinct query.
func validationRules(depthLimit int, introspection bool) func() *rules.Rules {
	return func() *rules.Rules {
		r := rules.NewDefaultRules()
		r.AddRule("MaxDepth", maxDepthRule(depthLimit))
		r.AddRule("OneSignInPerOperation", oneSignInRule)
		if !introspection {
			r.AddRule("NoIntrospection", noIntrospectionRule)
		}
		return r
	}
}

// noIntrospectionRule refuses __schema and __type when introspection is
// off (__typename stays: clients such as Apollo add it everywhere).
func noIntrospectionRule(observers *core.Events, addError core.AddErrFunc) {
	observers.OnField(func(walker *core.Walker, field *ast.Field) {
		if field.Name == "__schema" || field.Name == "__type" {
			addError(core.Message("Introspection is disabled"), core.At(field.Position))
		}
	})
}

// maxDepthRule refuses an operation whose selections nest deeper than
// limit, counting every field, introspection fields included, through
// fragments.
func maxDepthRule(limit int) core.RuleFunc {
	return func(observers *core.Events, addError core.AddErrFunc) {
		observers.OnOperation(func(walker *core.Walker, op *ast.OperationDefinition) {
			d := &depthWalker{frags: walker.Document.Fragments, memo: map[string]int{}, visiting: map[string]bool{}}
			if depth := d.depth(op.SelectionSet); depth > limit {
				addError(
					core.Message("Query depth %d exceeds the limit of %d", depth, limit),
					core.At(op.Position),
				)
			}
		})
	}
}

type depthWalker struct {
	frags    ast.FragmentDefinitionList
	memo     map[string]int // a fragment's depth does not depend on where it is spread
	visiting map[string]bool
}

func (d *depthWalker) depth(set ast.SelectionSet) int {
	deepest := 0
	for _, sel := range set {
		n := 0
		switch s := sel.(type) {
		case *ast.Field:
			n = 1 + d.depth(s.SelectionSet)
		case *ast.InlineFragment:
			n = d.depth(s.SelectionSet)
		case *ast.FragmentSpread:
			n = d.fragment(s.Name)
		}
		deepest = max(deepest, n)
	}
	return deepest
}

func (d *depthWalker) fragment(name string) int {
	if n, ok := d.memo[name]; ok {
		return n
	}
	f := d.frags.ForName(name)
	if f == nil || d.visiting[name] {
		return 0 // unknown fragments and cycles are other rules' errors
	}
	d.visiting[name] = true
	n := d.depth(f.SelectionSet)
	delete(d.visiting, name)
	d.memo[name] = n
	return n
}

// oneSignInRule refuses an operation with more than one login, register or
// refresh field, or more than one of any onceFields field, aliases and
// fragments included.
func oneSignInRule(observers *core.Events, addError core.AddErrFunc) {
	observers.OnOperation(func(walker *core.Walker, op *ast.OperationDefinition) {
		counts := map[string]int{}
		countRootFields(op.SelectionSet, walker.Document.Fragments, map[string]bool{}, counts)
		signIns := 0
		for name, n := range counts {
			if signInFields[name] {
				signIns += n
			}
			if onceFields[name] && n > 1 {
				addError(core.Message("At most one %s per operation", name), core.At(op.Position))
			}
		}
		if signIns > 1 {
			addError(core.Message("At most one login, register or refresh per operation"), core.At(op.Position))
		}
	})
}

// countRootFields counts the root fields of a selection by name, through
// inline fragments and fragment spreads (a fragment spread twice is one
// selection once merged, and is counted once).
func countRootFields(set ast.SelectionSet, frags ast.FragmentDefinitionList, seen map[string]bool, counts map[string]int) {
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			counts[s.Name]++
		case *ast.InlineFragment:
			countRootFields(s.SelectionSet, frags, seen, counts)
		case *ast.FragmentSpread:
			if f := frags.ForName(s.Name); f != nil && !seen[s.Name] {
				seen[s.Name] = true
				countRootFields(f.SelectionSet, frags, seen, counts)
			}
		}
	}
}

// rateLimitSignIns returns root-field middleware that counts each field of
// ipLimitedFields (sign-ins, changePassword, the e-mail mutations) against
// the client IP's limit.
func rateLimitSignIns(l *web.RateLimiter) graphql.RootFieldMiddleware {
	return func(ctx context.Context, next graphql.RootResolver) graphql.Marshaler {
		// (RootFieldContext.Object holds the field's name, not its type.)
		fc := graphql.GetRootFieldContext(ctx)
		if fc == nil || !ipLimitedFields[fc.Field.Name] || graphql.GetOperationContext(ctx).Operation.Operation != ast.Mutation {
			return next(ctx)
		}
		if ok, wait := l.Allow(web.FromContext(ctx).ClientIP); !ok {
			graphql.AddError(ctx, &auth.Error{
				Code:       auth.CodeRateLimited,
				Message:    "Too many requests from this address; try again later",
				RetryAfter: auth.RetryAfterSeconds(wait),
			})
			return graphql.Null
		}
		return next(ctx)
	}
}

// withoutSuggestions removes gqlparser's "Did you mean …?" hints, which tell
// the schema to clients even with introspection off.
func withoutSuggestions(msg string) string {
	if i := strings.Index(msg, " Did you mean "); i >= 0 {
		return msg[:i]
	}
	return msg
}

// selectionLimit is a handler extension that refuses, before validation, a
// document with too many selections (fields, fragment spreads, inline
// fragments, over all its operations and fragments). Validation compares
// the fields of a selection set pairwise (gqlparser's
// OverlappingFieldsCanBeMerged), so before this a 12 KB
// `{ me { id id id … } }` cost seconds of CPU, although the complexity limit
// refuses it afterwards. The bound is twice the complexity limit, and at
// least MinSelectionLimit: an operation's selections are no more than its
// complexity, so no document of operations within the limit is refused
// (GraphiQL sends every operation of its editor), and one within the bound
// validates in tens of milliseconds at most. Cached queries (valid, and
// small) are not parsed again.
type selectionLimit struct {
	max   int
	cache *queryCache
}

// MinSelectionLimit is the least number of selections a document may have.
const MinSelectionLimit = 500

// newSelectionLimit returns the limit for a complexity limit.
func newSelectionLimit(complexityLimit int, cache *queryCache) selectionLimit {
	return selectionLimit{max: max(2*complexityLimit, MinSelectionLimit), cache: cache}
}

var (
	_ graphql.HandlerExtension          = selectionLimit{}
	_ graphql.OperationParameterMutator = selectionLimit{}
)

// ExtensionName implements graphql.HandlerExtension.
func (selectionLimit) ExtensionName() string { return "SelectionLimit" }

// Validate implements graphql.HandlerExtension.
func (selectionLimit) Validate(graphql.ExecutableSchema) error { return nil }

// MutateOperationParameters refuses a document with too many selections.
func (l selectionLimit) MutateOperationParameters(ctx context.Context, p *graphql.RawParams) *gqlerror.Error {
	if _, ok := l.cache.Get(ctx, p.Query); ok {
		return nil
	}
	doc, err := parser.ParseQueryWithTokenLimit(&ast.Source{Input: p.Query}, ParserTokenLimit)
	if err != nil {
		return nil // the executor reports the parse error
	}
	if n := countSelections(doc); n > l.max {
		e := gqlerror.Errorf("The document has %d selections; at most %d are allowed", n, l.max)
		e.Extensions = map[string]any{"code": auth.CodeValidationFailed}
		return e
	}
	return nil
}

// countSelections counts the selections that validation walks: for each
// operation its own and those of every fragment it reaches (gqlparser's
// walker enters each fragment once per operation, and compares its fields
// again there), and each fragment definition once more on its own. A
// document of many operations that spread one large fragment is therefore
// counted as large as it is to validate.
func countSelections(doc *ast.QueryDocument) int {
	var count func(ast.SelectionSet, map[string]bool) int
	count = func(set ast.SelectionSet, seen map[string]bool) int {
		n := len(set)
		for _, sel := range set {
			switch s := sel.(type) {
			case *ast.Field:
				n += count(s.SelectionSet, seen)
			case *ast.InlineFragment:
				n += count(s.SelectionSet, seen)
			case *ast.FragmentSpread:
				if seen != nil && !seen[s.Name] {
					seen[s.Name] = true
					if f := doc.Fragments.ForName(s.Name); f != nil {
						n += count(f.SelectionSet, seen)
					}
				}
			}
		}
		return n
	}
	n := 0
	for _, op := range doc.Operations {
		n += count(op.SelectionSet, map[string]bool{})
	}
	for _, f := range doc.Fragments {
		n += count(f.SelectionSet, map[string]bool{f.Name: true})
	}
	return n
}
