package graph

import (
	"context"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/gqlauth/gqlauth/internal/web"
)

// OperationObserver is told of each answer: the operation's root fields
// ("invalid" for a request refused before an operation existed), its
// outcome (ok, or the first error's code) and its duration.
type OperationObserver func(operation, outcome string, d time.Duration)

// observer is the gqlgen extension that names each operation in the access
// log and reports each answer to an OperationObserver (the metrics).
// Requests refused before an operation exists (parse and validation errors,
// the 422s) reach it too, through the executor's error dispatch.
type observer struct {
	observe OperationObserver
}

var (
	_ graphql.HandlerExtension        = observer{}
	_ graphql.OperationContextMutator = observer{}
	_ graphql.ResponseInterceptor     = observer{}
)

// ExtensionName implements graphql.HandlerExtension.
func (observer) ExtensionName() string { return "Observer" }

// Validate implements graphql.HandlerExtension.
func (observer) Validate(graphql.ExecutableSchema) error { return nil }

// MutateOperationContext names the parsed operation in the access line.
func (observer) MutateOperationContext(ctx context.Context, opCtx *graphql.OperationContext) *gqlerror.Error {
	label := operationLabel(opCtx.Operation, opCtx.Doc.Fragments)
	web.SetOperation(ctx, logName(opCtx.Operation.Name, label))
	if st, ok := ctx.Value(getKey{}).(*getState); ok {
		st.label = label // for a GET transport's 406
	}
	return nil
}

// InterceptResponse reports the answer.
func (o observer) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	resp := next(ctx)
	if o.observe == nil || resp == nil {
		return resp
	}
	label, start := "invalid", graphql.GetStartTime(ctx)
	if graphql.HasOperationContext(ctx) {
		opCtx := graphql.GetOperationContext(ctx)
		if opCtx.Operation != nil && opCtx.Doc != nil {
			label = operationLabel(opCtx.Operation, opCtx.Doc.Fragments)
		}
		if !opCtx.Stats.OperationStart.IsZero() {
			start = opCtx.Stats.OperationStart
		}
	}
	o.observe(label, outcome(resp), time.Since(start))
	return resp
}

// outcome is "ok", or the first error's code.
func outcome(resp *graphql.Response) string {
	if len(resp.Errors) == 0 {
		return "ok"
	}
	if code, ok := resp.Errors[0].Extensions["code"].(string); ok {
		return code
	}
	return "error"
}
