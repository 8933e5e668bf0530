package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/gqlauth/gqlauth/internal/auth"
	"github.com/gqlauth/gqlauth/internal/web"
)

// postTransport is GraphQL over HTTP POST with a JSON body. It replaces
// gqlgen's transport.POST, which reads the body without a limit and echoes a
// malformed one in its error: this one enforces the body limit (413),
// refuses other content types and JSON-array batches (400), and never
// echoes the body.
type postTransport struct {
	maxBody int64
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
		web.WriteJSONError(w, http.StatusBadRequest, auth.CodeBadRequest, "Content-Type must be application/json")
		return
	}
	tooLarge := "Request body is larger than " + strconv.FormatInt(t.maxBody, 10) + " bytes"
	if r.ContentLength > t.maxBody {
		web.WriteJSONError(w, http.StatusRequestEntityTooLarge, auth.CodePayloadTooLarge, tooLarge)
		return
	}
	start := graphql.Now()
	body, err := io.ReadAll(io.LimitReader(r.Body, t.maxBody+1))
	if err != nil {
		web.WriteJSONError(w, http.StatusBadRequest, auth.CodeBadRequest, "Could not read the request body")
		return
	}
	if int64(len(body)) > t.maxBody {
		web.WriteJSONError(w, http.StatusRequestEntityTooLarge, auth.CodePayloadTooLarge, tooLarge)
		return
	}
	if trimmed := bytes.TrimLeft(body, " \t\r\n"); len(trimmed) > 0 && trimmed[0] == '[' {
		web.WriteJSONError(w, http.StatusBadRequest, auth.CodeBadRequest, "Batched requests are not supported")
		return
	}
	params := &graphql.RawParams{}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(params); err != nil || dec.More() {
		web.WriteJSONError(w, http.StatusBadRequest, auth.CodeBadRequest, "Request body is not a valid GraphQL JSON request")
		return
	}
	params.Headers = r.Header
	params.ReadTime = graphql.TraceTiming{Start: start, End: graphql.Now()}

	ctx := r.Context()
	w.Header().Set("Content-Type", "application/json")
	opCtx, errs := exec.CreateOperationContext(ctx, params)
	if errs != nil {
		resp := exec.DispatchError(graphql.WithOperationContext(ctx, opCtx), errs)
		_ = writeResponse(w, http.StatusUnprocessableEntity, resp)
		return
	}
	responses, ctx := exec.DispatchOperation(ctx, opCtx)
	if err := writeResponse(w, http.StatusOK, responses(ctx)); err != nil || r.Context().Err() != nil {
		// The client went away before the answer was written: undo what
		// its resolvers changed for it (tokens it will never hold).
		if req := web.FromContext(r.Context()); req != nil {
			req.Undelivered()
		}
	}
}

// writeResponse writes the response; an error means it was not delivered.
// (Small answers are buffered, so the caller also checks whether the
// client has gone: net/http cancels the request's context when its
// connection closes.)
func writeResponse(w http.ResponseWriter, status int, resp *graphql.Response) error {
	b, err := json.Marshal(resp)
	if err != nil {
		web.WriteJSONError(w, http.StatusInternalServerError, auth.CodeInternal, errInternalMessage)
		return err
	}
	w.WriteHeader(status)
	_, err = w.Write(b)
	return err
}

// newGetTransport returns gqlgen's GET transport, answering
// application/json whatever the Accept header (so request errors are 422),
// wrapped as getTransport says.
func newGetTransport(observe OperationObserver) getTransport {
	return getTransport{
		gqlgen:  transport.GET{ResponseHeaders: map[string][]string{"Content-Type": {"application/json"}}},
		observe: observe,
	}
}

// getTransport is gqlgen's GET transport (queries only), wrapped where it
// differs from what the server promises: a malformed query string or
// variables get a 400 with BAD_REQUEST that does not echo them (gqlgen
// echoes the parser's message, without a code); request errors stay 422
// under Accept: application/graphql-response+json (gqlgen answers 400
// there); and the 406 for a mutation carries BAD_REQUEST and is counted.
type getTransport struct {
	gqlgen  transport.GET
	observe OperationObserver
}

var _ graphql.Transport = getTransport{}

// Supports claims GET requests.
func (t getTransport) Supports(r *http.Request) bool { return t.gqlgen.Supports(r) }

// Do checks what gqlgen would answer differently, then lets it execute.
func (t getTransport) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		web.WriteJSONError(w, http.StatusBadRequest, auth.CodeBadRequest, "Malformed query string")
		return
	}
	for _, name := range []string{"variables", "extensions"} {
		if v := q.Get(name); v != "" {
			var obj map[string]any
			if json.Unmarshal([]byte(v), &obj) != nil {
				web.WriteJSONError(w, http.StatusBadRequest, auth.CodeBadRequest, name+" is not a JSON object")
				return
			}
		}
	}
	r = r.WithContext(context.WithValue(r.Context(), getKey{}, &getState{}))
	gw := &getWriter{ResponseWriter: w}
	start := graphql.Now()
	t.gqlgen.Do(gw, r, exec)
	if gw.status == http.StatusNotAcceptable {
		web.WriteJSONError(w, http.StatusNotAcceptable, auth.CodeBadRequest, "GET requests only allow query operations")
		if t.observe != nil {
			t.observe(r.Context().Value(getKey{}).(*getState).label, auth.CodeBadRequest, graphql.Now().Sub(start))
		}
	}
}

// getKey marks a GET request's context; getState is what the observer
// learns of its operation, for the 406 that gqlgen answers itself.
type (
	getKey   struct{}
	getState struct{ label string }
)

// getWriter passes gqlgen's answer through, except a 406, which Do answers
// itself.
type getWriter struct {
	http.ResponseWriter
	status int
}

func (g *getWriter) WriteHeader(status int) {
	g.status = status
	if status != http.StatusNotAcceptable {
		g.ResponseWriter.WriteHeader(status)
	}
}

func (g *getWriter) Write(b []byte) (int, error) {
	if g.status == http.StatusNotAcceptable {
		return len(b), nil
	}
	return g.ResponseWriter.Write(b)
}

// operationLabel names an operation by its root fields ("me", "login",
// "me+sessions"): bounded by the schema, unlike client-chosen operation
// names, so it can label metrics.
func operationLabel(op *ast.OperationDefinition, frags ast.FragmentDefinitionList) string {
	counts := map[string]int{}
	countRootFields(op.SelectionSet, frags, map[string]bool{}, counts)
	names := make([]string, 0, len(counts))
	for name := range counts {
		names = append(names, name)
	}
	slices.Sort(names)
	return strings.Join(names, "+")
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
