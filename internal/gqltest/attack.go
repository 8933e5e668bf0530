package gqltest

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// Outcome is what a request got back: the HTTP status, and the first
// GraphQL error's code ("" when none) and message.
type Outcome struct {
	Status  int
	Code    string
	Message string
}

func (o Outcome) String() string { return fmt.Sprintf("HTTP %d %q %q", o.Status, o.Code, o.Message) }

// Outcomes most cases expect.
var (
	OK              = Outcome{Status: 200}
	Unauthenticated = Outcome{Status: 200, Code: "UNAUTHENTICATED"}
	BadInput        = Outcome{Status: 200, Code: "BAD_USER_INPUT"}
	Validation      = Outcome{Status: 422, Code: "GRAPHQL_VALIDATION_FAILED"}
	BadRequest      = Outcome{Status: 400, Code: "BAD_REQUEST"}
)

// OutcomeOf returns a response's outcome.
func OutcomeOf(r *Response) Outcome {
	o := Outcome{Status: r.HTTP.StatusCode, Code: r.Code()}
	if len(r.Errors) > 0 {
		o.Message = r.Errors[0].Message
	}
	return o
}

// Attack is one case of an attack table: what it sends, what it must get
// (status and code; and, where several causes share a code, a part of the
// message), and which collections it may write to (none unless listed).
type Attack struct {
	Name    string
	Send    func(t *testing.T) Outcome
	Want    Outcome
	Message string
	Writes  []string
}

// RunAttacks runs each case and checks its outcome, and that nothing was
// written outside the collections it may write to (snapshot counts the
// documents of each collection: storetest.DB.Snapshot).
func RunAttacks(t *testing.T, snapshot func(testing.TB) map[string]int64, attacks []Attack) {
	t.Helper()
	for _, a := range attacks {
		t.Run(a.Name, func(t *testing.T) {
			before := snapshot(t)
			got := a.Send(t)
			if got.Status != a.Want.Status || got.Code != a.Want.Code || !strings.Contains(got.Message, a.Message) {
				t.Fatalf("got %v, want %v with a message containing %q", got, a.Want, a.Message)
			}
			for name, n := range snapshot(t) {
				if n != before[name] && !slices.Contains(a.Writes, name) {
					t.Errorf("%s changed from %d to %d documents", name, before[name], n)
				}
			}
		})
	}
}

// Raw sends a request to the server at base and returns its outcome (a
// JSON answer's code and message; the status alone otherwise).
func Raw(t testing.TB, base, method, path, contentType, body string, header http.Header) Outcome {
	t.Helper()
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		return OutcomeOf(ReadResponse(t, resp))
	}
	resp.Body.Close()
	return Outcome{Status: resp.StatusCode}
}

// CookieHeader returns a Cookie header of name=value pairs, as a browser
// (or an attacker) sends them.
func CookieHeader(pairs ...string) http.Header {
	var cs []string
	for i := 0; i+1 < len(pairs); i += 2 {
		cs = append(cs, pairs[i]+"="+pairs[i+1])
	}
	return http.Header{"Cookie": {strings.Join(cs, "; ")}}
}
