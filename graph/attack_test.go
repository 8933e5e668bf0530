package graph

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gqlauth/gqlauth/internal/auth"
	"github.com/gqlauth/gqlauth/internal/authtest"
	"github.com/gqlauth/gqlauth/internal/email"
	"github.com/gqlauth/gqlauth/internal/gqltest"
	"github.com/gqlauth/gqlauth/internal/storetest"
	"github.com/gqlauth/gqlauth/internal/token"
	"github.com/gqlauth/gqlauth/internal/web"
	"golang.org/x/crypto/bcrypt"
)

// testServer is the /graphql handler over real HTTP, on the service on a
// real embedded database: what the resolvers, the transports and the
// limits do, without the rest of the server's middleware.
type testServer struct {
	env  *authtest.Env
	base string
}

// newTestServer starts the handler with the default options, edited.
func newTestServer(t *testing.T, env authtest.Options, edit func(*Options)) *testServer {
	t.Helper()
	s := &testServer{env: authtest.New(t, env)}
	o := testOptions(s.env.Service)
	if edit != nil {
		edit(&o)
	}
	ts := httptest.NewServer(NewHandler(o))
	t.Cleanup(ts.Close)
	s.base = ts.URL
	return s
}

func (s *testServer) client(t testing.TB) *gqltest.Client { return gqltest.New(t, s.base) }

// signedIn registers a user and signs a new client in.
func (s *testServer) signedIn(t testing.TB, email string) (*gqltest.Client, gqltest.AuthPayload) {
	t.Helper()
	c := s.client(t)
	c.MustRegister(email)
	return c, c.MustLogin(email)
}

// createUser stores a user directly (for states the API cannot reach, such
// as unverified), with the test password.
func (s *testServer) createUser(t testing.TB, email string, verified bool) *auth.User {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(gqltest.Password), 4)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	u := &auth.User{Name: "Unverified", Email: email, Role: auth.RoleUser, Verified: verified, PasswordHash: string(hash), CreatedAt: now, UpdatedAt: now}
	if err := s.env.Store.CreateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	return u
}

// liveSessions counts the user's live sessions by reading the whole
// sessions collection, independently of the store's own listing.
func (s *testServer) liveSessions(t testing.TB, userID string) int {
	t.Helper()
	ids, err := s.env.DB.LiveSessionsByScan(context.Background(), userID)
	if err != nil {
		t.Fatal(err)
	}
	return len(ids)
}

func encodeJWTPart(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

// TestAttacks is the table of abuse and bad input against the GraphQL
// layer: each case asserts the code (or HTTP status) and that nothing was
// written that should not be. The forgery of tokens themselves is
// token.TestVerifyRefuses; cases that need the whole server (cross-origin
// requests, the header limit, production's surface) are the root
// package's TestAttacksOnTheServer.
func TestAttacks(t *testing.T) {
	s := newTestServer(t, authtest.Options{}, nil)
	victim, p := s.signedIn(t, "victim@example.com")
	refreshTok := victim.Cookie(web.CookieRefresh)
	parts := strings.Split(p.AccessToken, ".")
	sid := storetest.SessionID(p.User.ID, 1)
	now := time.Now()
	signed := func(kind token.Kind, sub, sid string) string {
		tok, err := s.env.Tokens.Sign(kind, token.Claims{Subject: sub, SessionID: sid, IssuedAt: now, ExpiresAt: now.Add(10 * time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}

	me := func(tok string) func(t *testing.T) gqltest.Outcome {
		return func(t *testing.T) gqltest.Outcome {
			return gqltest.OutcomeOf(s.client(t).Bearer(tok).Do(gqltest.MeQuery, nil))
		}
	}
	refreshWith := func(tok string) func(t *testing.T) gqltest.Outcome {
		return func(t *testing.T) gqltest.Outcome {
			c := s.client(t)
			c.SetCookie(web.CookieRefresh, tok)
			return gqltest.OutcomeOf(c.Do(gqltest.RefreshMutation, nil))
		}
	}
	gql := func(query string, vars map[string]any) func(t *testing.T) gqltest.Outcome {
		return func(t *testing.T) gqltest.Outcome { return gqltest.OutcomeOf(s.client(t).Do(query, vars)) }
	}
	raw := func(method, path, contentType, body string, header http.Header) func(t *testing.T) gqltest.Outcome {
		return func(t *testing.T) gqltest.Outcome {
			return gqltest.Raw(t, s.base, method, path, contentType, body, header)
		}
	}
	register := func(input map[string]any) func(t *testing.T) gqltest.Outcome {
		return gql(gqltest.RegisterMutation, map[string]any{"input": input})
	}
	input := func(edit func(map[string]any)) map[string]any {
		in := map[string]any{"name": "Eve", "email": "eve@example.com", "password": gqltest.Password, "passwordConfirm": gqltest.Password}
		edit(in)
		return in
	}
	loginAs := func(email, password string) func(t *testing.T) gqltest.Outcome {
		return gql(gqltest.LoginMutation, map[string]any{"email": email, "password": password})
	}
	deep := func(levels int) string {
		q := "kind"
		for range levels {
			q = "ofType { " + q + " }"
		}
		return "{ __schema { types { fields { type { " + q + " } } } } }"
	}
	const meBody = `{"query":"{ me { id } }"}`
	registerBody := `{"query":"mutation { register(input: {name: \"X\", email: \"csrf@example.com\", password: \"password123\", passwordConfirm: \"password123\"}) { id } }"}`
	aliasedLogin := `mutation { a: login(input: {email: "victim@example.com", password: "guess1guess"}) { accessToken } b: login(input: {email: "victim@example.com", password: "guess2guess"}) { accessToken } }`
	var hundredMe strings.Builder
	hundredMe.WriteString("{")
	for i := range 100 {
		fmt.Fprintf(&hundredMe, " m%d: me { id }", i)
	}
	hundredMe.WriteString(" }")

	attacks := []gqltest.Attack{
		// Tokens: the control shows that the server's own signature is
		// accepted, so each refusal below is due to the one thing its case
		// changes.
		{Name: "TokenControlSignedCorrectly", Send: me(signed(token.Access, p.User.ID, sid)), Want: gqltest.OK},
		{Name: "TokenAlgNone", Send: me(encodeJWTPart(map[string]any{"alg": "none", "typ": "at+jwt"}) + "." + parts[1] + "."), Want: gqltest.Unauthenticated},
		{Name: "TokenTamperedSub", Send: me(parts[0] + "." + encodeJWTPart(map[string]any{"sub": "000000000000000000000000", "sid": sid, "exp": now.Add(time.Hour).Unix()}) + "." + parts[2]), Want: gqltest.Unauthenticated},
		{Name: "TokenPaddedBase64", Send: me(parts[0] + "=." + parts[1] + "." + parts[2]), Want: gqltest.Unauthenticated},
		{Name: "TokenStdBase64Alphabet", Send: me(strings.NewReplacer("-", "+", "_", "/").Replace(p.AccessToken) + "+/"), Want: gqltest.Unauthenticated},
		{Name: "TokenTwoSegments", Send: me(parts[0] + "." + parts[1]), Want: gqltest.Unauthenticated},
		{Name: "TokenFourSegments", Send: me(p.AccessToken + "." + parts[2]), Want: gqltest.Unauthenticated},
		{Name: "TokenOversized", Send: me(p.AccessToken + strings.Repeat("A", 5000)), Want: gqltest.Unauthenticated},
		{Name: "TokenOfAnotherUsersSession", Send: me(signed(token.Access, "000000000000000000000000", sid)), Want: gqltest.Unauthenticated},
		{Name: "RefreshTokenAsAccess", Send: me(refreshTok), Want: gqltest.Unauthenticated},
		{Name: "AccessTokenAsRefresh", Send: refreshWith(p.AccessToken), Want: gqltest.Unauthenticated},
		{Name: "RefreshTokenNeverIssued", Send: refreshWith(signed(token.Refresh, p.User.ID, sid)), Want: gqltest.Unauthenticated, Message: "Could not refresh"},
		{Name: "DuplicateAccessCookies", Send: raw(http.MethodPost, "/graphql", "application/json", meBody,
			gqltest.CookieHeader(web.CookieAccess, "forged.by.sibling", web.CookieAccess, p.AccessToken)), Want: gqltest.Unauthenticated, Message: "Token is invalid"},
		{Name: "DuplicateRefreshCookies", Send: raw(http.MethodPost, "/graphql", "application/json", `{"query":"mutation { refresh { accessToken } }"}`,
			gqltest.CookieHeader(web.CookieRefresh, "forged.by.sibling", web.CookieRefresh, refreshTok)), Want: gqltest.Unauthenticated, Message: "Could not refresh"},

		// Input rules: each violation names its field, and nothing is written.
		{Name: "EmailDisplayName", Send: register(input(func(in map[string]any) { in["email"] = "Eve <eve@example.com>" })), Want: gqltest.BadInput},
		{Name: "EmailNewline", Send: register(input(func(in map[string]any) { in["email"] = "eve@example.com\nBcc: x@example.com" })), Want: gqltest.BadInput},
		{Name: "EmailNUL", Send: register(input(func(in map[string]any) { in["email"] = "eve\x00@example.com" })), Want: gqltest.BadInput},
		{Name: "EmailTooLong", Send: register(input(func(in map[string]any) { in["email"] = strings.Repeat("e", 250) + "@example.com" })), Want: gqltest.BadInput},
		{Name: "EmailInjection", Send: register(input(func(in map[string]any) { in["email"] = `"; db.users.drop(); "` })), Want: gqltest.BadInput},
		{Name: "EmailRegexLike", Send: loginAs(".*@example.com", gqltest.Password), Want: gqltest.BadInput},
		{Name: "NameEmpty", Send: register(input(func(in map[string]any) { in["name"] = " \t " })), Want: gqltest.BadInput},
		{Name: "NameTooLong", Send: register(input(func(in map[string]any) { in["name"] = strings.Repeat("名", 101) })), Want: gqltest.BadInput},
		{Name: "NameControlCharacters", Send: register(input(func(in map[string]any) { in["name"] = "Eve\u0000\u001b[31m" })), Want: gqltest.BadInput},
		{Name: "PhotoJavascriptURL", Send: register(input(func(in map[string]any) { in["photo"] = "javascript:alert(document.cookie)" })), Want: gqltest.BadInput},
		{Name: "PhotoDataURL", Send: register(input(func(in map[string]any) { in["photo"] = "data:image/png;base64,AAAA" })), Want: gqltest.BadInput},
		{Name: "PhotoTooLong", Send: register(input(func(in map[string]any) { in["photo"] = "https://example.com/" + strings.Repeat("p", 2100) })), Want: gqltest.BadInput},
		{Name: "PasswordShort", Send: register(input(func(in map[string]any) { in["password"], in["passwordConfirm"] = "short", "short" })), Want: gqltest.BadInput},
		{Name: "PasswordOver72Bytes", Send: register(input(func(in map[string]any) {
			pw := strings.Repeat("ü", 37) // 37 characters, 74 bytes
			in["password"], in["passwordConfirm"] = pw, pw
		})), Want: gqltest.BadInput},
		{Name: "PasswordConfirmMismatch", Send: register(input(func(in map[string]any) { in["passwordConfirm"] = "something else" })), Want: gqltest.BadInput},
		{Name: "LoginPasswordOver72Bytes", Send: loginAs("victim@example.com", gqltest.Password+strings.Repeat("!", 60)), Want: gqltest.BadInput},
		{Name: "OperatorObjectAsEmail", Send: gql(gqltest.LoginMutation, map[string]any{"email": map[string]any{"$ne": nil}, "password": gqltest.Password}), Want: gqltest.Validation},
		{Name: "OperatorObjectInInput", Send: register(input(func(in map[string]any) { in["email"] = map[string]any{"$gt": ""} })), Want: gqltest.Validation},
		{Name: "OperatorArrayAsPassword", Send: gql(gqltest.LoginMutation, map[string]any{"email": "victim@example.com", "password": []any{"a", "b"}}), Want: gqltest.Validation},
		{Name: "ExtraInputField", Send: register(input(func(in map[string]any) { in["role"] = "ADMIN" })), Want: gqltest.Validation},
		{Name: "RegisterAsAdminInline", Send: gql(`mutation { register(input: {name: "E", email: "e2@example.com", password: "password123", passwordConfirm: "password123", role: ADMIN}) { id } }`, nil), Want: gqltest.Validation},

		// Aliases and fragments cannot multiply password checks, token
		// spends or database reads.
		{Name: "AliasedLogins", Send: gql(aliasedLogin, nil), Want: gqltest.Validation, Message: "At most one login"},
		{Name: "LoginViaFragmentTwice", Send: gql(`mutation { ...A ...B } fragment A on Mutation { a: login(input: {email: "victim@example.com", password: "guess1guess"}) { accessToken } } fragment B on Mutation { b: login(input: {email: "victim@example.com", password: "guess2guess"}) { accessToken } }`, nil), Want: gqltest.Validation, Message: "At most one login"},
		{Name: "LoginViaInlineFragments", Send: gql(`mutation { ... on Mutation { a: login(input: {email: "victim@example.com", password: "guess1guess"}) { accessToken } } b: login(input: {email: "victim@example.com", password: "guess2guess"}) { accessToken } }`, nil), Want: gqltest.Validation, Message: "At most one login"},
		{Name: "LoginAndRefresh", Send: gql(`mutation { login(input: {email: "victim@example.com", password: "guess1guess"}) { accessToken } refresh { accessToken } }`, nil), Want: gqltest.Validation, Message: "At most one login"},
		{Name: "AliasedRegisters", Send: gql(`mutation { a: register(input: {name: "A", email: "a1@example.com", password: "password123", passwordConfirm: "password123"}) { id } b: register(input: {name: "B", email: "b1@example.com", password: "password123", passwordConfirm: "password123"}) { id } }`, nil), Want: gqltest.Validation, Message: "At most one login"},
		{Name: "AliasedChangePassword", Send: func(t *testing.T) gqltest.Outcome {
			return gqltest.OutcomeOf(s.client(t).Bearer(p.AccessToken).Do(`mutation { a: changePassword(currentPassword: "guess1guess", newPassword: "newpassword1") b: changePassword(currentPassword: "guess2guess", newPassword: "newpassword1") }`, nil))
		}, Want: gqltest.Validation, Message: "At most one changePassword"},
		{Name: "AliasedSessions", Send: func(t *testing.T) gqltest.Outcome {
			return gqltest.OutcomeOf(s.client(t).Bearer(p.AccessToken).Do(`{ a: sessions { id } b: sessions { id } }`, nil))
		}, Want: gqltest.Validation, Message: "At most one sessions"},
		{Name: "AliasedRefreshes", Send: func(t *testing.T) gqltest.Outcome {
			c := s.client(t)
			c.SetCookie(web.CookieRefresh, refreshTok)
			return gqltest.OutcomeOf(c.Do(`mutation { a: refresh { accessToken } b: refresh { accessToken } }`, nil))
		}, Want: gqltest.Validation, Message: "At most one login"},
		// The e-mail mutations: once per operation, no header can be
		// injected through an address, and a forged or foreign token spends
		// and writes nothing.
		{Name: "AliasedPasswordResets", Send: gql(`mutation { a: requestPasswordReset(email: "victim@example.com") b: requestPasswordReset(email: "victim@example.com") }`, nil), Want: gqltest.Validation, Message: "At most one requestPasswordReset"},
		{Name: "AliasedVerificationEmails", Send: gql(`mutation { a: sendVerificationEmail(email: "victim@example.com") b: sendVerificationEmail(email: "other@example.com") }`, nil), Want: gqltest.Validation, Message: "At most one sendVerificationEmail"},
		{Name: "AliasedResetUses", Send: gql(`mutation { a: resetPassword(token: "x", newPassword: "newpassword1") b: resetPassword(token: "y", newPassword: "newpassword1") }`, nil), Want: gqltest.Validation, Message: "At most one resetPassword"},
		{Name: "HeaderInjectionInResetAddress", Send: gql(`mutation($e: String!) { requestPasswordReset(email: $e) }`, map[string]any{"e": "victim@example.com\r\nBcc: attacker@example.com"}), Want: gqltest.BadInput},
		{Name: "HeaderInjectionInVerificationAddress", Send: gql(`mutation($e: String!) { sendVerificationEmail(email: $e) }`, map[string]any{"e": "victim@example.com\nSubject: hi"}), Want: gqltest.BadInput},
		{Name: "DisplayNameAsAddress", Send: gql(`mutation($e: String!) { requestPasswordReset(email: $e) }`, map[string]any{"e": "Evil <victim@example.com>"}), Want: gqltest.BadInput},
		{Name: "HeaderInjectionInNewEmail", Send: func(t *testing.T) gqltest.Outcome {
			return gqltest.OutcomeOf(s.client(t).Bearer(p.AccessToken).Do(`mutation($e: String!) { requestEmailChange(newEmail: $e, currentPassword: "password123") }`, map[string]any{"e": "new@example.com\r\nBcc: x@example.com"}))
		}, Want: gqltest.BadInput},
		// What a user typed reaches the HTML part of an e-mail escaped: a
		// name with markup is text there, not a link or a script.
		{Name: "MarkupInNameEscapedInEmail", Send: func(t *testing.T) gqltest.Outcome {
			const name = `<a href="https://evil.example/">Claim</a><script>alert(1)</script><img src=x onerror=alert(2)>`
			c := s.client(t)
			in := gqltest.RegisterInput("markup@example.com")
			in["input"].(map[string]any)["name"] = name
			gqltest.ExpectOK(t, c.Do(gqltest.RegisterMutation, in))
			o := gqltest.OutcomeOf(c.Do(`mutation { requestPasswordReset(email: "markup@example.com") }`, nil))
			tpl, err := email.LoadTemplates("")
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, e := range s.env.Queued(t) {
				if e.To != "markup@example.com" || e.Kind != email.KindReset {
					continue
				}
				found = true
				r, err := tpl.Render(e.Message)
				if err != nil {
					t.Fatal(err)
				}
				if strings.Contains(r.HTML, "<script") || strings.Contains(r.HTML, "<img src=x") || strings.Contains(r.HTML, `href="https://evil.example/"`) ||
					!strings.Contains(r.HTML, "&lt;script&gt;alert(1)&lt;/script&gt;") {
					t.Fatalf("the name is not escaped in the HTML part:\n%s", r.HTML)
				}
			}
			if !found {
				t.Fatal("no reset e-mail queued")
			}
			return o
		}, Want: gqltest.OK, Writes: append(append(slices.Clone(storetest.Registration), storetest.Mail...), storetest.Attempts...)},
		{Name: "MarkupAsAddress", Send: gql(`mutation($e: String!) { requestPasswordReset(email: $e) }`, map[string]any{"e": `"<script>"@example.com`}), Want: gqltest.BadInput},
		{Name: "ForgedResetToken", Send: gql(`mutation { resetPassword(token: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", newPassword: "newpassword1") }`, nil), Want: gqltest.BadInput},
		{Name: "HugeToken", Send: gql(`mutation($t: String!) { verifyEmail(token: $t) }`, map[string]any{"t": strings.Repeat("A", 10000)}), Want: gqltest.BadInput},
		{Name: "RefreshTokenAsEmailToken", Send: gql(`mutation($t: String!) { confirmEmailChange(token: $t) }`, map[string]any{"t": refreshTok}), Want: gqltest.BadInput},
		{Name: "HundredAliasesOfMe", Send: func(t *testing.T) gqltest.Outcome {
			return gqltest.OutcomeOf(s.client(t).Bearer(p.AccessToken).Do(hundredMe.String(), nil))
		}, Want: gqltest.OK},
		{Name: "OneLoginPerOperationOfMany", Send: func(t *testing.T) gqltest.Outcome {
			// Two operations of one login each: only the named one runs, and
			// it counts one attempt.
			body := `{"operationName":"A","query":"mutation A { login(input: {email: \"victim@example.com\", password: \"wrong-password\"}) { accessToken } } mutation B { login(input: {email: \"victim@example.com\", password: \"wrong-password\"}) { accessToken } }"}`
			before, _ := s.env.DB.Count(t.Context(), storetest.Attempts)
			o := gqltest.Raw(t, s.base, http.MethodPost, "/graphql", "application/json", body, nil)
			if after, _ := s.env.DB.Count(t.Context(), storetest.Attempts); after-before != 1 { // the e-mail's head record exists already
				t.Errorf("%d attempt records written, want 1", after-before)
			}
			return o
		}, Want: gqltest.Unauthenticated, Writes: storetest.Attempts},
		{Name: "FieldAfterLogoutAllSignedOut", Send: func(t *testing.T) gqltest.Outcome {
			c, _ := s.signedIn(t, "logoutall-then@example.com")
			r := c.Do(`mutation { logoutAll revokeSession(id: "x") }`, nil)
			if len(r.Errors) != 1 || fmt.Sprint(r.Errors[0].Path) != "[revokeSession]" {
				t.Errorf("want one error, on the field after logoutAll: %s", r.Body)
			}
			return gqltest.OutcomeOf(r)
		}, Want: gqltest.Unauthenticated, Writes: append(append(append(storetest.Registration, storetest.SignIn...), storetest.Attempts...), storetest.Revocations...)},

		// GraphQL limits.
		{Name: "DepthAtLimitPasses", Send: gql(deep(15), nil), Want: gqltest.OK},
		{Name: "DepthOverLimit", Send: gql(deep(16), nil), Want: gqltest.Validation, Message: "depth 21 exceeds the limit of 20"},
		{Name: "DepthThroughFragments", Send: gql(`query Deep { __schema { types { ...T } } } fragment T on __Type { fields { type { ...R } } } fragment R on __Type { `+strings.Repeat("ofType { ", 16)+"kind"+strings.Repeat(" }", 16)+` }`, nil), Want: gqltest.Validation, Message: "depth 21"},
		{Name: "DepthThroughFragmentsAtLimit", Send: gql(`query Deep { __schema { types { ...T } } } fragment T on __Type { fields { type { ...R } } } fragment R on __Type { `+strings.Repeat("ofType { ", 15)+"kind"+strings.Repeat(" }", 15)+` }`, nil), Want: gqltest.OK},
		{Name: "ComplexityOverLimit", Send: func(t *testing.T) gqltest.Outcome {
			var b strings.Builder
			b.WriteString("{")
			for i := range 120 {
				fmt.Fprintf(&b, " m%d: me { id }", i)
			}
			b.WriteString(" }")
			return gqltest.OutcomeOf(s.client(t).Do(b.String(), nil))
		}, Want: gqltest.Outcome{Status: 422, Code: "COMPLEXITY_LIMIT_EXCEEDED"}},
		{Name: "ValidationCostBounded", Send: func(t *testing.T) gqltest.Outcome {
			// Validation compares a selection set's fields pairwise: 4,000
			// fields in 12 KB cost seconds before the selection limit.
			start := time.Now()
			o := gqltest.OutcomeOf(s.client(t).Do("{ me { "+strings.Repeat("id ", 4000)+"} }", nil))
			if took := time.Since(start); took > time.Second {
				t.Errorf("refusing it took %v", took)
			}
			return o
		}, Want: gqltest.Validation, Message: "selections"},
		{Name: "ParserTokenLimit", Send: gql("{ me { id "+strings.Repeat("a ", 6000)+"} }", nil), Want: gqltest.Outcome{Status: 422, Code: "GRAPHQL_PARSE_FAILED"}},
		{Name: "FragmentCycle", Send: gql(`{ me { ...A } } fragment A on User { ...B } fragment B on User { ...A }`, nil), Want: gqltest.Validation},
		{Name: "UnknownOperationName", Send: raw(http.MethodPost, "/graphql", "application/json", `{"query":"query A { me { id } }","operationName":"B"}`, nil), Want: gqltest.Validation},
		{Name: "NoFieldSuggestions", Send: func(t *testing.T) gqltest.Outcome {
			r := s.client(t).Do(`{ me { emial } }`, nil)
			if strings.Contains(r.Body, "Did you mean") || strings.Contains(r.Body, "email") {
				t.Errorf("the error suggests fields: %s", r.Body)
			}
			return gqltest.OutcomeOf(r)
		}, Want: gqltest.Validation},
		{Name: "NoArgumentSuggestions", Send: func(t *testing.T) gqltest.Outcome {
			r := s.client(t).Do(`mutation { login(inptu: {email: "a@example.com", password: "password123"}) { accessToken } }`, nil)
			if strings.Contains(r.Body, "Did you mean") {
				t.Errorf("the error suggests arguments: %s", r.Body)
			}
			return gqltest.OutcomeOf(r)
		}, Want: gqltest.Validation},

		// HTTP-level abuse of the transports.
		{Name: "MalformedJSONNotEchoed", Send: raw(http.MethodPost, "/graphql", "application/json", `{"query": "<script>alert(1)</script>`, nil), Want: gqltest.BadRequest},
		{Name: "JSONArrayBatch", Send: raw(http.MethodPost, "/graphql", "application/json", "["+registerBody+","+registerBody+"]", nil), Want: gqltest.BadRequest},
		{Name: "FormPostCSRF", Send: raw(http.MethodPost, "/graphql", "application/x-www-form-urlencoded", "query="+url.QueryEscape(`mutation { logout }`), gqltest.CookieHeader(web.CookieAccess, p.AccessToken)), Want: gqltest.BadRequest},
		{Name: "TextPlainPostCSRF", Send: raw(http.MethodPost, "/graphql", "text/plain", registerBody, nil), Want: gqltest.BadRequest},
		{Name: "MultipartPost", Send: raw(http.MethodPost, "/graphql", "multipart/form-data; boundary=x", "--x\r\nContent-Disposition: form-data; name=\"operations\"\r\n\r\n"+registerBody+"\r\n--x--\r\n", nil), Want: gqltest.BadRequest},
		{Name: "GETMutation", Send: raw(http.MethodGet, "/graphql?query="+url.QueryEscape(`mutation { logout }`), "", "", gqltest.CookieHeader(web.CookieAccess, p.AccessToken)), Want: gqltest.Outcome{Status: 406, Code: "BAD_REQUEST"}},
		{Name: "GETMalformedVariablesNotEchoed", Send: func(t *testing.T) gqltest.Outcome {
			o := gqltest.Raw(t, s.base, http.MethodGet, "/graphql?query="+url.QueryEscape(`query($x: String) { me { id } }`)+"&variables=%3Cscript%3E", "", "", nil)
			if strings.Contains(o.Message, "script") {
				t.Errorf("the variables were echoed: %q", o.Message)
			}
			return o
		}, Want: gqltest.BadRequest},
		{Name: "GETValidationUnderGraphQLResponseAccept", Send: raw(http.MethodGet, "/graphql?query="+url.QueryEscape(`{ nope }`), "", "", http.Header{"Accept": {"application/graphql-response+json"}}), Want: gqltest.Validation},
		{Name: "BodyOverLimit", Send: raw(http.MethodPost, "/graphql", "application/json", `{"query":"{ me { id } }","variables":{"x":"`+strings.Repeat("x", 70<<10)+`"}}`, nil), Want: gqltest.Outcome{Status: 413, Code: "PAYLOAD_TOO_LARGE"}},

		// Equal answers: unknown e-mail and wrong password look alike.
		{Name: "UnknownEmail", Send: loginAs("nobody@example.com", gqltest.Password), Want: gqltest.Unauthenticated, Writes: storetest.Attempts},
		{Name: "WrongPassword", Send: loginAs("victim@example.com", "not the password"), Want: gqltest.Unauthenticated, Writes: storetest.Attempts},
		{Name: "Password72ByteTruncation", Send: func(t *testing.T) gqltest.Outcome {
			// bcrypt ignores bytes after the 72nd: a login with a longer
			// password must not match a 72-byte one.
			pw := strings.Repeat("a", 72)
			c := s.client(t)
			c.Do(gqltest.RegisterMutation, map[string]any{"input": map[string]any{"name": "T", "email": "trunc@example.com", "password": pw, "passwordConfirm": pw}})
			return gqltest.OutcomeOf(c.Do(gqltest.LoginMutation, map[string]any{"email": "trunc@example.com", "password": pw + "anything"}))
		}, Want: gqltest.BadInput, Writes: storetest.Registration},
	}
	gqltest.RunAttacks(t, s.env.DB.Snapshot, attacks)
	// The victim's session survived every attack.
	gqltest.ExpectOK(t, victim.Bearer(p.AccessToken).Do(gqltest.MeQuery, nil))
}
