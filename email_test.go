package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gqlauth/gqlauth/internal/embedded"
	"github.com/gqlauth/gqlauth/internal/gqltest"
	"github.com/gqlauth/gqlauth/internal/smtptest"
)

// The e-mail mutations, as a frontend sends them.
const (
	verifyEmailMutation  = `mutation($t: String!) { verifyEmail(token: $t) }`
	requestResetMutation = `mutation($e: String!) { requestPasswordReset(email: $e) }`
	resetMutation        = `mutation($t: String!, $p: String!) { resetPassword(token: $t, newPassword: $p) }`
	requestChangeMut     = `mutation($e: String!, $p: String!) { requestEmailChange(newEmail: $e, currentPassword: $p) }`
	confirmChangeMut     = `mutation($t: String!) { confirmEmailChange(token: $t) }`
	sendVerificationMut  = `mutation($e: String!) { sendVerificationEmail(email: $e) }`
)

// mailEnv is the configuration of a server that sends through smtp:
// STARTTLS under the test CA, with AUTH.
func mailEnv(smtp *smtptest.Server, extra map[string]string) map[string]string {
	env := map[string]string{
		"EMAIL_HOST":               "127.0.0.1",
		"EMAIL_PORT":               strconv.Itoa(smtp.Port),
		"EMAIL_USERNAME":           smtptest.Username,
		"EMAIL_PASSWORD":           smtptest.Password,
		"EMAIL_TLS_CA_FILE":        smtp.CAFile,
		"EMAIL_FROM":               "Acme Accounts <accounts@acme.test>",
		"EMAIL_LINK_BASE":          "http://app.test",
		"RATE_LIMIT_IP_PER_MINUTE": "0",
	}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

var linkToken = regexp.MustCompile(`http://app\.test(/[a-z-]+)#token=([A-Za-z0-9_-]+)`)

// linkIn returns the path and token of the link in a delivered e-mail, and
// checks that both parts carry the same link.
func linkIn(t *testing.T, m smtptest.Message) (path, tok string) {
	t.Helper()
	text := linkToken.FindStringSubmatch(m.Text)
	html := linkToken.FindStringSubmatch(m.HTML)
	if text == nil || html == nil || text[0] != html[0] {
		t.Fatalf("no link, or different links, in the parts:\ntext: %s\nhtml: %s", m.Text, m.HTML)
	}
	return text[1], text[2]
}

// notStored fails when a document of the database holds tok: tokens are
// stored only as hashes, and the outbox keeps each link sealed.
func (s *testServer) notStored(t *testing.T, tok string) {
	t.Helper()
	docs, err := s.records().Export(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for coll, list := range docs {
		for _, d := range list {
			if bytes.Contains(d, []byte(tok)) {
				t.Fatalf("the token is stored in clear in %s: %s", coll, d)
			}
		}
	}
}

func lastTo(t *testing.T, msgs []smtptest.Message, to string) smtptest.Message {
	t.Helper()
	for i := len(msgs) - 1; i >= 0; i-- {
		if len(msgs[i].To) == 1 && msgs[i].To[0] == to {
			return msgs[i]
		}
	}
	t.Fatalf("no e-mail to %s among %d", to, len(msgs))
	return smtptest.Message{}
}

// TestEmailFlowsOverSMTP runs each flow end to end: over HTTP, with the
// e-mails delivered through a real SMTP server (STARTTLS under a test CA,
// AUTH) and read back from it.
func TestEmailFlowsOverSMTP(t *testing.T) {
	smtp := smtptest.Start(t, smtptest.Options{RequireAuth: true})
	s := startServer(t, serverOptions{env: mailEnv(smtp, map[string]string{"EMAIL_VERIFICATION": "required"})})
	sent := 0

	t.Run("VerifyOnRegister", func(t *testing.T) {
		c := s.client()
		in := gqltest.RegisterInput("vera@example.com")
		in["input"].(map[string]any)["name"] = `Vera <b>"&'`
		r := c.Do(gqltest.RegisterMutation, in)
		gqltest.ExpectOK(t, r)
		var u gqltest.User
		r.Decode(t, "register", &u)
		if u.Verified {
			t.Fatal("registered verified with EMAIL_VERIFICATION=required")
		}
		gqltest.ExpectCode(t, c.Login("vera@example.com"), "FORBIDDEN")
		sent++
		m := smtp.Wait(t, sent, 15*time.Second)[sent-1]
		if m.Type != "multipart/alternative" || !m.TLS || m.AuthWas != smtptest.Username {
			t.Fatalf("type %s, TLS %v, AUTH %q", m.Type, m.TLS, m.AuthWas)
		}
		if got := m.Header.Get("To"); got != "<vera@example.com>" && got != "vera@example.com" {
			t.Fatalf("To: %q", got)
		}
		if !strings.Contains(m.Header.Get("From"), "accounts@acme.test") || m.Header.Get("Subject") != "Verify your e-mail address" {
			t.Fatalf("From %q, Subject %q", m.Header.Get("From"), m.Header.Get("Subject"))
		}
		if !strings.Contains(m.Text, `Vera <b>"&'`) || !strings.Contains(m.HTML, "Vera &lt;b&gt;&#34;&amp;&#39;") || strings.Contains(m.HTML, "<b>\"") {
			t.Fatalf("the name is not in both parts, escaped in the HTML:\n%s\n%s", m.Text, m.HTML)
		}
		path, tok := linkIn(t, m)
		if path != "/verify-email" {
			t.Fatalf("link path %s", path)
		}
		s.notStored(t, tok)
		// Opening the link (a mail scanner) spends nothing.
		if resp, err := http.Get(s.base + path + "?token=" + tok); err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET of the link's page: %v %v", resp, err)
		}
		gqltest.ExpectOK(t, c.Do(verifyEmailMutation, map[string]any{"t": tok}))
		gqltest.ExpectCode(t, c.Do(verifyEmailMutation, map[string]any{"t": tok}), "BAD_USER_INPUT")
		gqltest.ExpectOK(t, c.Login("vera@example.com"))
		r = c.Do(gqltest.MeQuery, nil)
		r.Decode(t, "me", &u)
		if !u.Verified {
			t.Fatal("me is not verified after the link")
		}
	})

	t.Run("ForgotPasswordFromAnotherBrowser", func(t *testing.T) {
		first := s.client()
		first.MustRegister("forgot@example.com")
		sent++ // its verification e-mail
		smtp.Wait(t, sent, 15*time.Second)
		_, tok := linkIn(t, lastTo(t, smtp.Messages(), "forgot@example.com"))
		gqltest.ExpectOK(t, first.Do(verifyEmailMutation, map[string]any{"t": tok}))
		first.MustLogin("forgot@example.com")

		second := s.client()
		gqltest.ExpectOK(t, second.Do(requestResetMutation, map[string]any{"e": "Forgot@Example.com"}))
		sent++
		smtp.Wait(t, sent, 15*time.Second)
		m := lastTo(t, smtp.Messages(), "forgot@example.com")
		path, tok := linkIn(t, m)
		if path != "/reset-password" {
			t.Fatalf("link path %s", path)
		}
		gqltest.ExpectCode(t, second.Do(resetMutation, map[string]any{"t": tok, "p": "short"}), "BAD_USER_INPUT")
		gqltest.ExpectOK(t, second.Do(resetMutation, map[string]any{"t": tok, "p": gqltest.NewPassword}))
		gqltest.ExpectCode(t, first.Do(gqltest.MeQuery, nil), "UNAUTHENTICATED")
		gqltest.ExpectCode(t, first.Do(gqltest.RefreshMutation, nil), "UNAUTHENTICATED")
		r := second.Do(gqltest.LoginMutation, map[string]any{"email": "forgot@example.com", "password": gqltest.NewPassword})
		gqltest.ExpectOK(t, r)
	})

	t.Run("ChangeOfAddress", func(t *testing.T) {
		c := s.client()
		c.MustRegister("before@example.com")
		sent++
		smtp.Wait(t, sent, 15*time.Second)
		_, tok := linkIn(t, lastTo(t, smtp.Messages(), "before@example.com"))
		gqltest.ExpectOK(t, c.Do(verifyEmailMutation, map[string]any{"t": tok}))
		c.MustLogin("before@example.com")
		gqltest.ExpectCode(t, c.Do(requestChangeMut, map[string]any{"e": "after@example.com", "p": "wrong password"}), "BAD_USER_INPUT")
		gqltest.ExpectCode(t, c.Do(requestChangeMut, map[string]any{"e": "vera@example.com", "p": gqltest.Password}), "CONFLICT")
		gqltest.ExpectOK(t, c.Do(requestChangeMut, map[string]any{"e": "after@example.com", "p": gqltest.Password}))
		sent += 2
		msgs := smtp.Wait(t, sent, 15*time.Second)
		notice := lastTo(t, msgs, "before@example.com")
		if strings.Contains(notice.Text, "#token=") || !strings.Contains(notice.Text, "after@example.com") {
			t.Fatalf("the notice to the current address:\n%s", notice.Text)
		}
		path, tok := linkIn(t, lastTo(t, msgs, "after@example.com"))
		if path != "/confirm-email" {
			t.Fatalf("link path %s", path)
		}
		s.notStored(t, tok)
		gqltest.ExpectOK(t, c.Do(confirmChangeMut, map[string]any{"t": tok}))
		var u gqltest.User
		c.Do(gqltest.MeQuery, nil).Decode(t, "me", &u)
		if u.Email != "after@example.com" || !u.Verified {
			t.Fatalf("me after the change: %+v", u)
		}
		gqltest.ExpectCode(t, c.Login("before@example.com"), "UNAUTHENTICATED")
	})

	t.Run("UnknownAddressAnswersAlike", func(t *testing.T) {
		c := s.client()
		// after@example.com is registered, and no e-mail of either kind was
		// asked for it yet.
		for _, q := range []string{requestResetMutation, sendVerificationMut} {
			known := c.Do(q, map[string]any{"e": "after@example.com"})
			unknown := c.Do(q, map[string]any{"e": "nobody@example.com"})
			if known.Body != unknown.Body || known.HTTP.StatusCode != unknown.HTTP.StatusCode {
				t.Fatalf("known %s, unknown %s", known.Body, unknown.Body)
			}
		}
	})
}

// TestEmailSurvivesSMTPOutage: with the SMTP server down the request is
// answered at once and the e-mail waits; when the server is back it is
// delivered, once.
func TestEmailSurvivesSMTPOutage(t *testing.T) {
	smtp := smtptest.Start(t, smtptest.Options{})
	s := startServer(t, serverOptions{env: mailEnv(smtp, nil)})
	s.client().MustRegister("outage@example.com")
	smtp.Stop()
	start := time.Now()
	gqltest.ExpectOK(t, s.client().Do(requestResetMutation, map[string]any{"e": "outage@example.com"}))
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("the request waited %s for SMTP", d)
	}
	time.Sleep(3 * time.Second) // a few failed attempts
	if n := len(smtp.Messages()); n != 0 {
		t.Fatalf("%d delivered while down", n)
	}
	if resp, _ := get(t, s.base+"/readyz", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("readiness %d while SMTP is down: it must not depend on SMTP", resp.StatusCode)
	}
	smtp.Restart(t)
	smtp.Wait(t, 1, 30*time.Second)
	time.Sleep(2 * time.Second)
	if n := len(smtp.Messages()); n != 1 {
		t.Fatalf("%d e-mails delivered, want 1", n)
	}
	// The retries kept the prepared link in the outbox: sealed.
	_, tok := linkIn(t, smtp.Messages()[0])
	s.notStored(t, tok)
	metrics := getBody(t, s.base+"/metrics")
	if !regexp.MustCompile(`gqlauth_emails_total\{outcome="retried"\} [1-9]`).MatchString(metrics) ||
		!regexp.MustCompile(`gqlauth_emails_total\{outcome="sent"\} 1`).MatchString(metrics) {
		t.Fatalf("metrics:\n%s", grepLines(metrics, "gqlauth_email"))
	}
}

// TestEmailRefusedForGood: an SMTP 5xx drops the e-mail (counted), without
// retries.
func TestEmailRefusedForGood(t *testing.T) {
	smtp := smtptest.Start(t, smtptest.Options{})
	smtp.Refuse(550)
	s := startServer(t, serverOptions{env: mailEnv(smtp, nil)})
	s.client().MustRegister("refused@example.com")
	gqltest.ExpectOK(t, s.client().Do(requestResetMutation, map[string]any{"e": "refused@example.com"}))
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(getBody(t, s.base+"/metrics"), `gqlauth_emails_dropped_total{reason="refused"} 1`) {
		if time.Now().After(deadline) {
			t.Fatalf("not dropped:\n%s", grepLines(getBody(t, s.base+"/metrics"), "gqlauth_email"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	if strings.Contains(getBody(t, s.base+"/metrics"), `gqlauth_emails_total{outcome="retried"} 1`) {
		t.Fatal("a permanent refusal was retried")
	}
}

// TestConcurrentLinkUseAcrossInstances: 20 concurrent uses of one reset
// link, spread over two instances sharing one database, give one success.
func TestConcurrentLinkUseAcrossInstances(t *testing.T) {
	smtp := smtptest.Start(t, smtptest.Options{})
	db, err := embedded.Start(embedded.Options{Dir: t.TempDir(), Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Stop)
	env := mailEnv(smtp, map[string]string{"DATABASE_URL": db.URI(), "MONGO_INITDB_DATABASE": "shared"})
	a := startServer(t, serverOptions{env: env})
	b := startServer(t, serverOptions{env: env})
	if err := embedded.IndexIDLookups(context.Background(), db.Dir(), "shared"); err != nil {
		t.Fatal(err)
	}
	a.client().MustRegister("twice@example.com")
	gqltest.ExpectOK(t, b.client().Do(requestResetMutation, map[string]any{"e": "twice@example.com"}))
	_, tok := linkIn(t, smtp.Wait(t, 1, 15*time.Second)[0])
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[string]int{}
	for i := range 20 {
		srv := a
		if i%2 == 1 {
			srv = b
		}
		wg.Go(func() {
			r := srv.client().Do(resetMutation, map[string]any{"t": tok, "p": "parallel password " + strconv.Itoa(i)})
			code := r.Code()
			if code == "" && len(r.Errors) == 0 {
				code = "ok"
			}
			mu.Lock()
			codes[code]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if codes["ok"] != 1 || codes["BAD_USER_INPUT"] != 19 {
		t.Fatalf("outcomes %v, want one ok and 19 BAD_USER_INPUT", codes)
	}
	// Two instances share the outbox: each e-mail is sent once.
	gqltest.ExpectOK(t, a.client().Do(sendVerificationMut, map[string]any{"e": "twice@example.com"}))
	time.Sleep(4 * time.Second)
	if n := len(smtp.Messages()); n != 1 {
		t.Fatalf("%d e-mails for one reset request (the account is verified: no verification e-mail)", n)
	}
}

// TestDevelopmentMailbox: with no EMAIL_HOST, e-mails are .eml files (0600)
// under DATA_DIR/mail, and the link is logged with the same link on this
// server.
func TestDevelopmentMailbox(t *testing.T) {
	s := startServer(t, serverOptions{env: map[string]string{"RATE_LIMIT_IP_PER_MINUTE": "0"}})
	s.client().MustRegister("mailbox@example.com")
	gqltest.ExpectOK(t, s.client().Do(requestResetMutation, map[string]any{"e": "mailbox@example.com"}))
	dir := filepath.Join(s.Config.DataDir, "mail")
	var files []string
	for deadline := time.Now().Add(10 * time.Second); len(files) == 0 && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		files, _ = filepath.Glob(filepath.Join(dir, "*.eml"))
	}
	if len(files) != 1 {
		t.Fatalf("mailbox files: %v", files)
	}
	st, err := os.Stat(files[0])
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v", st.Mode(), err)
	}
	raw, _ := os.ReadFile(files[0])
	if !strings.Contains(string(raw), "multipart/alternative") {
		t.Fatalf("not multipart/alternative:\n%s", raw)
	}
	if !s.logged("development mailbox", `link="http://localhost:3000/reset-password#token=`, `link_on_this_server="http://127.0.0.1:`) {
		t.Fatalf("link not logged:\n%s", s.logs.String())
	}

	// In production the mailbox still takes the e-mail, and no link is
	// logged (the log is no place for a token there).
	p := startServer(t, serverOptions{env: map[string]string{"APP_ENV": "production", "BCRYPT_COST": "10", "RATE_LIMIT_IP_PER_MINUTE": "0"}})
	p.client().MustRegister("quiet@example.com")
	gqltest.ExpectOK(t, p.client().Do(requestResetMutation, map[string]any{"e": "quiet@example.com"}))
	// The line written once the e-mail is in the mailbox (after it, the
	// link would have been logged).
	for deadline := time.Now().Add(10 * time.Second); !p.logged("e-mail written to the development mailbox") && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	files, _ = filepath.Glob(filepath.Join(p.Config.DataDir, "mail", "*.eml"))
	if len(files) != 1 || strings.Contains(p.logs.String(), "#token=") || !p.logged("e-mail written to the development mailbox") {
		t.Fatalf("production: mailbox files %v; log:\n%s", files, p.logs.String())
	}
}

// TestPlaygroundFromTheBinary: the playground page loads its scripts and
// styles from this server only (none inline), under the same-origin CSP,
// and the vendored files carry their licences.
func TestPlaygroundFromTheBinary(t *testing.T) {
	s := startServer(t, serverOptions{})
	resp, body := get(t, s.base+"/", nil)
	csp := resp.Header.Get("Content-Security-Policy")
	if resp.StatusCode != 200 || !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") || strings.Contains(csp, "http") {
		t.Fatalf("%d, CSP %q", resp.StatusCode, csp)
	}
	if strings.Contains(body, "<script>") || strings.Contains(body, "<style") || strings.Contains(body, "http") {
		t.Fatalf("inline script or style, or another host:\n%s", body)
	}
	srcs := regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllStringSubmatch(body, -1)
	if len(srcs) < 5 {
		t.Fatalf("only %d scripts and styles", len(srcs))
	}
	for _, src := range append(srcs, []string{"", "/static/playground/vendor/LICENSE.graphiql"}, []string{"", "/static/playground/vendor/LICENSE.react"}) {
		r, b := get(t, s.base+src[1], nil)
		if r.StatusCode != 200 || len(b) < 100 {
			t.Fatalf("%s: %d, %d bytes", src[1], r.StatusCode, len(b))
		}
	}
}

// TestLinkPages: the pages answer 200 with their headers, in every mode,
// and load only what this server serves.
func TestLinkPages(t *testing.T) {
	s := startServer(t, serverOptions{env: map[string]string{"APP_ENV": "test", "GRAPHQL_PLAYGROUND": "false"}})
	for _, path := range []string{"/verify-email", "/reset-password", "/confirm-email"} {
		resp, err := http.Get(s.base + path + "?token=abc")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		h := resp.Header
		if resp.StatusCode != 200 || h.Get("Referrer-Policy") != "no-referrer" || h.Get("Cache-Control") != "no-store" ||
			!strings.Contains(h.Get("Content-Security-Policy"), "script-src 'self'") {
			t.Fatalf("%s: %d %v", path, resp.StatusCode, h)
		}
		if strings.Contains(string(body), "abc") || strings.Contains(string(body), "http") && !strings.Contains(string(body), "/static/") {
			t.Fatalf("%s: the page echoes the token or loads another host:\n%s", path, body)
		}
		for _, src := range regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllStringSubmatch(string(body), -1) {
			if !strings.HasPrefix(src[1], "/static/") {
				t.Fatalf("%s loads %s", path, src[1])
			}
			if r, err := http.Get(s.base + src[1]); err != nil || r.StatusCode != 200 {
				t.Fatalf("%s: %v %v", src[1], r, err)
			}
		}
	}
}

func getBody(t *testing.T, url string) string {
	t.Helper()
	_, body := get(t, url, nil)
	return body
}

func grepLines(s, part string) string {
	var out []string
	for line := range strings.Lines(s) {
		if strings.Contains(line, part) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "")
}

// TestEmailSurvivesKill: e-mails queued while SMTP is down are in the
// database, not in the process: after a kill -9 and a restart they are
// delivered, each exactly once.
func TestEmailSurvivesKill(t *testing.T) {
	bin := buildBinary(t)
	smtp := smtptest.Start(t, smtptest.Options{RequireAuth: true})
	smtp.Stop()
	var env []string
	for k, v := range mailEnv(smtp, nil) {
		env = append(env, k+"="+v)
	}
	dataDir := filepath.Join(t.TempDir(), "data")
	p := startProcess(t, bin, dataDir, env...)
	hc := &http.Client{Timeout: 10 * time.Second}
	const n = 5
	for i := range n {
		addr := "killed-" + strconv.Itoa(i) + "@example.com"
		for _, step := range []struct {
			q    string
			vars map[string]any
		}{{gqltest.RegisterMutation, gqltest.RegisterInput(addr)}, {requestResetMutation, map[string]any{"e": addr}}} {
			_, g, err := gqltest.PostJSON(hc, p.base, step.q, step.vars, nil)
			if err != nil || g.Code() != "" || len(g.Errors) > 0 {
				t.Fatalf("%s: %v %+v", addr, err, g)
			}
		}
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done
	p.done <- nil // for the cleanup
	smtp.Restart(t)
	startProcess(t, bin, dataDir, env...)
	smtp.Wait(t, n, 60*time.Second)
	time.Sleep(5 * time.Second) // anything sent twice would arrive by now
	got := map[string]int{}
	for _, m := range smtp.Messages() {
		got[m.To[0]]++
	}
	for i := range n {
		if addr := "killed-" + strconv.Itoa(i) + "@example.com"; got[addr] != 1 {
			t.Fatalf("deliveries per address: %v", got)
		}
	}
}
