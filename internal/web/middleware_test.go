package web_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gqlauth/gqlauth/internal/web"
)

var ok = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) })

// TestNoStore: every answer, whatever writes it below, is no-store and
// nosniff; a handler may replace Cache-Control (the JWK Set).
func TestNoStore(t *testing.T) {
	refuse := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", http.StatusRequestEntityTooLarge) })
	cacheable := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Header().Set("Cache-Control", "public, max-age=300") })
	for name, tc := range map[string]struct {
		h     http.Handler
		cache string
	}{"200": {ok, "no-store"}, "413": {refuse, "no-store"}, "own": {cacheable, "public, max-age=300"}} {
		rec := httptest.NewRecorder()
		web.NoStore(tc.h).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/graphql", nil))
		if got := rec.Header().Get("Cache-Control"); got != tc.cache || rec.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: Cache-Control %q, nosniff %q", name, got, rec.Header().Get("X-Content-Type-Options"))
		}
	}
}

// TestRequestID: a plain client id is honoured and echoed; anything else is
// replaced by a generated one, so that nothing a client sends reaches the
// logs unchecked.
func TestRequestID(t *testing.T) {
	var seen string
	h := web.RequestID(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen = web.RequestIDFromContext(r.Context()) }))
	for in, honoured := range map[string]bool{
		"abc-123_X.y": true, "": false, strings.Repeat("a", 65): false, "a b": false, "a\nb": false, "ü": false,
	} {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header.Set(web.RequestIDHeader, in)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		out := rec.Header().Get(web.RequestIDHeader)
		if out != seen || out == "" || (out == in) != honoured {
			t.Errorf("id %q: answered %q, context %q", in, out, seen)
		}
	}
}

// TestAccessLog: one line per request with its status, route name and
// operation; a panic below becomes a logged 500 in the error format.
func TestAccessLog(t *testing.T) {
	var buf bytes.Buffer
	log := web.NewLogger(&buf, "json", -4)
	routes := web.Routes{{Pattern: "POST /graphql", Handler: ok}}
	var observed []string
	mw := web.AccessLog(log, routes, func(route string, status int) { observed = append(observed, route+" "+http.StatusText(status)) })
	named := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		web.SetOperation(r.Context(), "Login")
		w.WriteHeader(http.StatusAccepted)
	})
	web.RequestID(mw(named)).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/graphql", nil))
	line := buf.String()
	for _, want := range []string{`"status":202`, `"operation":"Login"`, `"path":"/graphql"`, `"request_id":"`} {
		if !strings.Contains(line, want) {
			t.Fatalf("access line without %s: %s", want, line)
		}
	}
	buf.Reset()
	rec := httptest.NewRecorder()
	web.RequestID(mw(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }))).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/elsewhere", nil))
	if rec.Code != http.StatusInternalServerError || !strings.Contains(rec.Body.String(), `"INTERNAL_SERVER_ERROR"`) || !strings.Contains(buf.String(), "panic serving request") {
		t.Fatalf("a panic: %d %s\nlog: %s", rec.Code, rec.Body, buf.String())
	}
	if len(observed) != 2 || observed[0] != "/graphql Accepted" || observed[1] != "other Internal Server Error" {
		t.Fatalf("observed %v", observed)
	}
}

// TestCrossOrigin: a browser's cross-site POST is refused with the error
// format, a trusted origin's and a same-origin one pass, and so does a
// request without browser headers (curl).
func TestCrossOrigin(t *testing.T) {
	mw, err := web.CrossOrigin([]string{"https://app.example"})
	if err != nil {
		t.Fatal(err)
	}
	h := mw(ok)
	for name, tc := range map[string]struct {
		headers map[string]string
		want    int
	}{
		"cross-site":   {map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}, http.StatusForbidden},
		"trusted":      {map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://app.example"}, http.StatusOK},
		"same-origin":  {map[string]string{"Sec-Fetch-Site": "same-origin"}, http.StatusOK},
		"no browser":   {nil, http.StatusOK},
		"origin alone": {map[string]string{"Origin": "https://evil.example"}, http.StatusForbidden},
	} {
		req := httptest.NewRequest(http.MethodPost, "http://auth.example/graphql", nil)
		for k, v := range tc.headers {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.want || tc.want == http.StatusForbidden && !strings.Contains(rec.Body.String(), `"FORBIDDEN"`) {
			t.Errorf("%s: %d %s", name, rec.Code, rec.Body)
		}
	}
	if _, err := web.CrossOrigin([]string{"not an origin"}); err == nil {
		t.Error("a malformed trusted origin was taken")
	}
}

// TestSessionCookies: the two token cookies are HttpOnly, logged_in is not,
// all carry the configured attributes and Max-Age of their token's
// lifetime; clearing expires all three.
func TestSessionCookies(t *testing.T) {
	c := web.NewCookies(web.CookieConfig{Secure: true, Domain: "example.com", SameSite: http.SameSiteLaxMode})
	now := time.Now()
	rec := httptest.NewRecorder()
	c.SetSession(rec, web.Session{IssuedAt: now, Access: "a", AccessExpiresAt: now.Add(15 * time.Minute), Refresh: "r", RefreshExpiresAt: now.Add(time.Hour)})
	got := map[string]*http.Cookie{}
	for _, k := range rec.Result().Cookies() {
		got[k.Name] = k
	}
	for name, want := range map[string]struct {
		value    string
		age      int
		httpOnly bool
	}{web.CookieAccess: {"a", 900, true}, web.CookieRefresh: {"r", 3600, true}, web.CookieLoggedIn: {"true", 3600, false}} {
		k := got[name]
		if k == nil || k.Value != want.value || k.MaxAge != want.age || k.HttpOnly != want.httpOnly || !k.Secure ||
			k.Domain != "example.com" || k.SameSite != http.SameSiteLaxMode || k.Path != "/" {
			t.Errorf("%s: %+v", name, k)
		}
	}
	rec = httptest.NewRecorder()
	c.ClearSession(rec)
	cleared := rec.Result().Cookies()
	if len(cleared) != 3 {
		t.Fatalf("%d cookies cleared", len(cleared))
	}
	for _, k := range cleared {
		if k.MaxAge >= 0 || k.Value != "" {
			t.Errorf("%s not expired: %+v", k.Name, k)
		}
	}
}
