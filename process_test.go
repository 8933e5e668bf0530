package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// buildBinary builds the server once into the test's temporary directory.
func buildBinary(t *testing.T) string {
	t.Helper()
	long(t)
	bin := filepath.Join(t.TempDir(), "gqlauth")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// command returns the server command with only the given environment (and
// PATH), run in a fresh directory without a .env file.
func command(t *testing.T, bin string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Dir = t.TempDir()
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + cmd.Dir}, env...)
	return cmd
}

// TestProcess runs the built binary: bad configuration stops start-up with
// one line and exit status 1; SIGTERM shuts down cleanly with status 0.
func TestProcess(t *testing.T) {
	bin := buildBinary(t)
	weakKey, err := os.ReadFile("internal/config/testdata/insecure-512-private.pem")
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name   string
		env    []string
		dotenv string
		want   string
	}{
		{"ErrPort", []string{"PORT=http"}, "", "configuration: PORT: "},
		{"ErrTutorialKey", []string{"JWT_PRIVATE_KEY=" + b64(weakKey)}, "", "configuration: JWT_PRIVATE_KEY: the RSA key has 512 bits"},
		// A bad value in .env is reported like one in the environment.
		{"ErrDotEnvValue", nil, "REFRESH_REUSE_GRACE=1m\n", "configuration: REFRESH_REUSE_GRACE: "},
		// A line that does not parse is named, and the rest of the file
		// (secrets) is not shown.
		{"ErrDotEnvSyntax", nil, "PORT=8000\nMY-FLAG=1\nDATABASE_URL=mongodb://admin:SuperSecret@db/x\n", ".env: line 2 is not NAME=value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := command(t, bin, tc.env...)
			if tc.dotenv != "" {
				if err := os.WriteFile(filepath.Join(cmd.Dir, ".env"), []byte(tc.dotenv), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Fatalf("exit = %v, want status 1; stderr: %s", err, stderr.String())
			}
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], tc.want) {
				t.Fatalf("stderr = %q, want one line starting %q", stderr.String(), tc.want)
			}
			if strings.Contains(stderr.String(), "SuperSecret") {
				t.Fatalf("stderr shows a secret: %q", stderr.String())
			}
		})
	}

	t.Run("OKGracefulShutdown", func(t *testing.T) {
		cmd := command(t, bin, "HOST=127.0.0.1", "PORT=0", "BCRYPT_COST=4", "JWT_PRIVATE_KEY="+testKeys.priv)
		stderr, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = cmd.Process.Kill() }() // only if the test failed midway
		addr := waitForListening(t, stderr)
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("/readyz: %v %v", resp, err)
		}
		resp.Body.Close()
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("exit after SIGTERM: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("no exit within 15 s of SIGTERM")
		}
	})
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

var listeningRE = regexp.MustCompile(`msg=listening addr=(\S+)`)

// waitForListening reads the server's log until it says where it listens,
// then keeps draining the log in the background.
func waitForListening(t *testing.T, stderr interface{ Read([]byte) (int, error) }) string {
	t.Helper()
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := listeningRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
	}()
	select {
	case addr := <-found:
		return addr
	case <-time.After(30 * time.Second):
		t.Fatal("the server did not start listening")
		return ""
	}
}
