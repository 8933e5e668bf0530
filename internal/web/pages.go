package web

import (
	"bytes"
	"embed"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
)

//go:embed static
var static embed.FS

// PageCSP is the Content-Security-Policy of the pages the server serves:
// everything from this origin, nothing inline, no framing.
const PageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// linkPage is one of the pages the e-mails' links open.
type linkPage struct {
	Path     string
	Title    string
	Intro    string
	Mutation string
	Button   string
	Password bool
}

var linkPages = []linkPage{
	{Path: "/verify-email", Title: "Verify your e-mail address", Intro: "Press the button to confirm that this address is yours.",
		Mutation: "verifyEmail", Button: "Verify my address"},
	{Path: "/reset-password", Title: "Choose a new password", Intro: "Choose a new password (8 to 72 bytes). Every device signed in to the account will be signed out.",
		Mutation: "resetPassword", Button: "Reset my password", Password: true},
	{Path: "/confirm-email", Title: "Confirm your new e-mail address", Intro: "Press the button to make this address the account's e-mail address.",
		Mutation: "confirmEmailChange", Button: "Confirm the change"},
}

var pageTemplate = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{{.Title}}</title>
<link rel="stylesheet" href="/static/pages.css">
<script src="/static/pages.js" defer></script>
</head>
<body>
<h1>{{.Title}}</h1>
<p>{{.Intro}}</p>
<form id="form" data-mutation="{{.Mutation}}">
{{- if .Password}}
<label for="password">New password</label>
<input id="password" type="password" autocomplete="new-password" minlength="8" required>
<label for="confirm">New password, again</label>
<input id="confirm" type="password" autocomplete="new-password" minlength="8" required>
{{- end}}
<button id="submit" type="submit">{{.Button}}</button>
</form>
<p id="status" class="status" role="status"></p>
</body>
</html>
`))

var playgroundTemplate = template.Must(template.New("playground").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<link rel="stylesheet" href="/static/playground/vendor/graphiql.min.css">
<link rel="stylesheet" href="/static/playground/playground.css">
<script src="/static/playground/vendor/react.production.min.js" defer></script>
<script src="/static/playground/vendor/react-dom.production.min.js" defer></script>
<script src="/static/playground/vendor/graphiql.min.js" defer></script>
<script src="/static/playground/playground.js" defer></script>
</head>
<body>
<div id="graphiql" data-endpoint="{{.Endpoint}}"><div class="loading">Loading…</div></div>
</body>
</html>
`))

// Playground returns the GraphQL playground's page: GraphiQL and React from
// the binary (vendored from npm with their licences), no inline script or
// style, under the same-origin CSP, so it works on a machine that reaches
// no CDN.
func Playground(title, endpoint string) http.Handler {
	var b bytes.Buffer
	if err := playgroundTemplate.Execute(&b, struct{ Title, Endpoint string }{title, endpoint}); err != nil {
		panic(err)
	}
	body := b.Bytes()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pageHeaders(w.Header())
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(body)
	})
}

// pageHeaders are sent with every page and static file the server serves.
func pageHeaders(h http.Header) {
	h.Set("Content-Security-Policy", PageCSP)
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
}

// LinkPages returns the routes of the three link pages and the static
// files (theirs and the playground's). The pages never read the token on the server: their script reads
// it from the fragment or the query, and calls the mutation when the user
// presses the button, so that opening a link (as mail scanners do) spends
// nothing. They answer 200 in every mode, and are not cached.
func LinkPages() Routes {
	var routes Routes
	for _, p := range linkPages {
		var b bytes.Buffer
		if err := pageTemplate.Execute(&b, p); err != nil {
			panic(err)
		}
		body := b.Bytes()
		routes = append(routes, Route{Pattern: "GET " + p.Path, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			pageHeaders(w.Header())
			w.Header().Set("Cache-Control", "no-store")
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = w.Write(body)
		})})
	}
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err)
	}
	files := http.StripPrefix("/static/", http.FileServerFS(sub))
	routes = append(routes, Route{Pattern: "GET /static/", Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") { // no directory listings
			http.NotFound(w, r)
			return
		}
		pageHeaders(w.Header())
		w.Header().Set("Cache-Control", "public, max-age=300")
		files.ServeHTTP(w, r)
	})})
	return routes
}
