package graph

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/gqlauth/gqlauth/internal/web"
)

// Codes of request errors answered before execution.
const (
	codeBadRequest      = "BAD_REQUEST"
	codePayloadTooLarge = "PAYLOAD_TOO_LARGE"
)

// postTransport is GraphQL over HTTP POST with a JSON body. Unlike gqlgen's
// transport.POST it enforces the body limit (413), refuses other content
// types and JSON-array batches (400), and never echoes a malformed body.
type postTransport struct {
	maxBody int64
	observe OperationObserver
}

var _ graphql.Transport = postTransport{}

// Supports claims every POST, so that other content types get a clear 400
// here rather than gqlgen's generic answer.
func (postTransport) Supports(r *http.Request) bool {
	return r.Method == http.MethodPost && r.Header.Get("Upgrade") == ""
}

// Do reads, checks and executes one operation.
func (t postTransport) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mediaType != "application/json" {
		web.WriteJSONError(w, http.StatusBadRequest, codeBadRequest, "Content-Type must be application/json")
		return
	}
	if r.ContentLength > t.maxBody {
		web.WriteJSONError(w, http.StatusRequestEntityTooLarge, codePayloadTooLarge, "Request body is larger than "+strconv.FormatInt(t.maxBody, 10)+" bytes")
		return
	}
	start := graphql.Now()
	body, err := io.ReadAll(io.LimitReader(r.Body, t.maxBody+1))
	if err != nil {
		web.WriteJSONError(w, http.StatusBadRequest, codeBadRequest, "Could not read the request body")
		return
	}
	if int64(len(body)) > t.maxBody {
		web.WriteJSONError(w, http.StatusRequestEntityTooLarge, codePayloadTooLarge, "Request body is larger than "+strconv.FormatInt(t.maxBody, 10)+" bytes")
		return
	}
	if trimmed := bytes.TrimLeft(body, " \t\r\n"); len(trimmed) > 0 && trimmed[0] == '[' {
		web.WriteJSONError(w, http.StatusBadRequest, codeBadRequest, "Batched requests are not supported")
		return
	}
	params := &graphql.RawParams{}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(params); err != nil || dec.More() {
		web.WriteJSONError(w, http.StatusBadRequest, codeBadRequest, "Request body is not a valid GraphQL JSON request")
		return
	}
	params.Headers = r.Header
	params.ReadTime = graphql.TraceTiming{Start: start, End: graphql.Now()}
	execute(w, r, exec, params, false, t.observe)
}

// getTransport is GraphQL over HTTP GET, for queries only (406 otherwise).
type getTransport struct {
	observe OperationObserver
}

var _ graphql.Transport = getTransport{}

// Supports claims GET requests.
func (getTransport) Supports(r *http.Request) bool {
	return r.Method == http.MethodGet && r.Header.Get("Upgrade") == ""
}

// Do reads the query string and executes the query.
func (t getTransport) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		web.WriteJSONError(w, http.StatusBadRequest, codeBadRequest, "Malformed query string")
		return
	}
	params := &graphql.RawParams{
		Query:         q.Get("query"),
		OperationName: q.Get("operationName"),
		Headers:       r.Header,
	}
	params.ReadTime.Start = graphql.Now()
	for name, dst := range map[string]*map[string]any{"variables": &params.Variables, "extensions": &params.Extensions} {
		if v := q.Get(name); v != "" {
			dec := json.NewDecoder(bytes.NewReader([]byte(v)))
			dec.UseNumber()
			if err := dec.Decode(dst); err != nil {
				web.WriteJSONError(w, http.StatusBadRequest, codeBadRequest, name+" is not a JSON object")
				return
			}
		}
	}
	params.ReadTime.End = graphql.Now()
	execute(w, r, exec, params, true, t.observe)
}

// OperationObserver is told of each operation: its root fields (or
// "invalid"), its outcome (ok, or the first error code) and its duration.
type OperationObserver func(operation, outcome string, d time.Duration)

// execute prepares and runs one operation. Request errors (parse,
// validation, complexity) answer 422; a mutation over GET answers 406; an
// operation that runs answers 200 whatever its errors.
func execute(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor, params *graphql.RawParams, queryOnly bool, observe OperationObserver) {
	ctx := r.Context()
	start := time.Now()
	label := "invalid"
	var resp *graphql.Response
	defer func() {
		if observe != nil && resp != nil {
			observe(label, outcome(resp), time.Since(start))
		}
	}()
	w.Header().Set("Content-Type", "application/json")
	opCtx, errs := exec.CreateOperationContext(ctx, params)
	if errs != nil {
		resp = exec.DispatchError(graphql.WithOperationContext(ctx, opCtx), errs)
		writeResponse(w, http.StatusUnprocessableEntity, resp)
		return
	}
	label = operationLabel(opCtx.Operation, opCtx.Doc.Fragments)
	web.SetOperation(ctx, logName(opCtx.Operation.Name, label))
	if queryOnly && opCtx.Operation.Operation != ast.Query {
		resp = &graphql.Response{Errors: gqlerror.List{{
			Message:    "GET requests only allow query operations",
			Extensions: map[string]any{"code": codeBadRequest},
		}}}
		writeResponse(w, http.StatusNotAcceptable, resp)
		return
	}
	responses, ctx := exec.DispatchOperation(ctx, opCtx)
	resp = responses(ctx)
	if err := writeResponse(w, http.StatusOK, resp); err != nil || r.Context().Err() != nil {
		// The client went away before the answer was written: undo what
		// its resolvers changed for it (tokens it will never hold).
		if req := web.FromContext(r.Context()); req != nil {
			req.Undelivered()
		}
	}
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

// operationLabel names an operation by its root fields ("me",
// "login", "me+sessions"): bounded by the schema, unlike client-chosen
// operation names, so it can label metrics.
func operationLabel(op *ast.OperationDefinition, frags ast.FragmentDefinitionList) string {
	var names []string
	var collect func(ast.SelectionSet, map[string]bool)
	collect = func(set ast.SelectionSet, seen map[string]bool) {
		for _, sel := range set {
			switch s := sel.(type) {
			case *ast.Field:
				names = append(names, s.Name)
			case *ast.InlineFragment:
				collect(s.SelectionSet, seen)
			case *ast.FragmentSpread:
				if f := frags.ForName(s.Name); f != nil && !seen[s.Name] {
					seen[s.Name] = true
					collect(f.SelectionSet, seen)
				}
			}
		}
	}
	collect(op.SelectionSet, map[string]bool{})
	slices.Sort(names)
	return strings.Join(slices.Compact(names), "+")
}

// logName is the operation's name for the access log: the client's name
// when it is a plain identifier, else the root fields.
func logName(clientName, label string) string {
	if clientName == "" || len(clientName) > 64 {
		return label
	}
	for _, c := range clientName {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return label
		}
	}
	return clientName
}

// writeResponse writes the response; an error means it was not delivered.
// (Small answers are buffered, so the caller also checks whether the
// client has gone: net/http cancels the request's context when its
// connection closes.)
func writeResponse(w http.ResponseWriter, status int, resp *graphql.Response) error {
	b, err := json.Marshal(resp)
	if err != nil {
		web.WriteJSONError(w, http.StatusInternalServerError, "INTERNAL_SERVER_ERROR", errInternalMessage)
		return err
	}
	w.WriteHeader(status)
	_, err = w.Write(b)
	return err
}
