package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/gqlauth/gqlauth/internal/gqltest"
)

// fencedBlock returns the first ```sh block after the line containing
// marker in the markdown file.
func fencedBlock(t *testing.T, file, marker string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	i := strings.Index(text, marker)
	if i < 0 {
		t.Fatalf("%s has no %q", file, marker)
	}
	start := strings.Index(text[i:], "```sh\n")
	if start < 0 {
		t.Fatalf("no sh block after %q", marker)
	}
	block := text[i+start+len("```sh\n"):]
	return block[:strings.Index(block, "```")]
}

// TestREADMECurlFlow runs the README's curl example, as written, against a
// server: the README cannot drift from what the server does.
func TestREADMECurlFlow(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("curl is needed to run the README's example (CI installs it)")
	}
	script := fencedBlock(t, "README.md", "With curl")
	s := startServer(t, serverOptions{})
	script = strings.ReplaceAll(script, "http://localhost:8000", s.URL())
	dir := t.TempDir()
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = dir
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("the README's curl flow failed: %v\n%s%s", err, out.String(), stderr.String())
	}
	// Each curl prints one JSON answer; none may be an error, and each
	// says what the step did.
	dec := json.NewDecoder(&out)
	var answers []string
	for dec.More() {
		var r gqltest.Response
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("an answer is not JSON: %v", err)
		}
		if len(r.Errors) > 0 {
			t.Fatalf("step %d answered errors: %+v", len(answers)+1, r.Errors)
		}
		for field := range r.Data {
			answers = append(answers, field)
		}
	}
	if want := "register login me refresh me logout"; strings.Join(answers, " ") != want {
		t.Fatalf("the steps answered %v, want %s", answers, want)
	}
}

// TestDocsCoverTheServer checks that the reference names every variable the
// configuration reads and every route the server serves, and that neither
// the README nor docs/ point outside the repository.
func TestDocsCoverTheServer(t *testing.T) {
	ref, err := os.ReadFile(filepath.Join("docs", "reference.md"))
	if err != nil {
		t.Fatal(err)
	}
	config, err := os.ReadFile(filepath.Join("internal", "config", "config.go"))
	if err != nil {
		t.Fatal(err)
	}
	vars := regexp.MustCompile(`l\.\w+\("([A-Z][A-Z0-9_]+)"`).FindAllStringSubmatch(string(config), -1)
	if len(vars) < 30 {
		t.Fatalf("found only %d variables in config.go: the pattern is stale", len(vars))
	}
	for _, v := range vars {
		if !strings.Contains(string(ref), "`"+v[1]+"`") {
			t.Errorf("docs/reference.md does not describe %s", v[1])
		}
	}
	server, err := os.ReadFile("server.go")
	if err != nil {
		t.Fatal(err)
	}
	routes := regexp.MustCompile(`Pattern: "(GET|POST) ([^"]+)"`).FindAllStringSubmatch(string(server), -1)
	if len(routes) < 6 {
		t.Fatalf("found only %d routes in server.go: the pattern is stale", len(routes))
	}
	for _, r := range routes {
		path := strings.TrimSuffix(r[2], "{$}")
		if !strings.Contains(string(ref), "`"+r[1]+" "+path) && !strings.Contains(string(ref), r[1]+" "+path+"`") {
			t.Errorf("docs/reference.md does not list %s %s", r[1], path)
		}
	}
	for _, f := range []string{"README.md", "docs/reference.md", "docs/architecture.md"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte("../shared")) {
			t.Errorf("%s points at ../shared, which users of the repository do not have", f)
		}
	}
}
