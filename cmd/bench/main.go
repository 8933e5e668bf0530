// Command bench measures the server under closed-loop load and compares it
// with its store's own limit.
//
//	go run ./cmd/bench -rounds 1             # seeds ./bench-data once, then about 45 s
//	go run ./cmd/bench                       # 3 interleaved rounds, medians: about 2 minutes
//	go run ./cmd/bench -c 64 -d 60s -loads me-bearer -floors=false
//	go run ./cmd/bench -url http://localhost:8000   # a running server (no RSS, no floors)
//
// By default it builds the server, seeds users and sessions straight through
// the store (not through bcrypt) into a reusable -data folder, starts the
// server as a child process on that folder's embedded database (with
// RATE_LIMIT_IP_PER_MINUTE=0: all load comes from one address), and runs
// each load with -c clients for -d, each client with its own session and
// following its rotated cookies. It reports requests/s, p50/p90/p99,
// errors and the server's peak RSS (from /proc), and the floors: the
// database work of one `me` and of one `refresh`, issued straight through
// the driver to the same database at the same concurrency.
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/gqlauth/gqlauth/internal/auth"
	"github.com/gqlauth/gqlauth/internal/embedded"
	"github.com/gqlauth/gqlauth/internal/mongostore"
	"github.com/gqlauth/gqlauth/internal/storetest"
	"github.com/gqlauth/gqlauth/internal/token"
)

const (
	database      = "fastapi"
	benchPassword = "bench password 1"
	seedFile      = "seed.json"
)

type options struct {
	url        string
	data       string
	users      int
	sessions   int
	clients    int
	duration   time.Duration
	loads      string
	floors     bool
	bcryptCost int
	logLevel   string
	bin        string
	pprof      string
	rounds     int
}

func main() {
	var o options
	flag.StringVar(&o.url, "url", "", "target a running server instead of starting one (no RSS, no floors)")
	flag.StringVar(&o.data, "data", "bench-data", "folder for the seeded embedded database (reused)")
	flag.IntVar(&o.users, "users", 10_000, "users to seed")
	flag.IntVar(&o.sessions, "sessions", 100_000, "sessions to seed (spread over the users)")
	flag.IntVar(&o.clients, "c", 16, "concurrent clients")
	flag.DurationVar(&o.duration, "d", 5*time.Second, "duration of each load")
	flag.StringVar(&o.loads, "loads", "health,me-bearer,me-cookie,refresh,login,register", "loads to run, comma-separated")
	flag.BoolVar(&o.floors, "floors", true, "also measure the database floors of me and refresh")
	flag.IntVar(&o.bcryptCost, "bcrypt-cost", 12, "BCRYPT_COST of the server (and of the seeded hashes)")
	flag.StringVar(&o.logLevel, "log-level", "warn", "LOG_LEVEL of the server")
	flag.StringVar(&o.bin, "bin", "", "server binary (default: go build the repository)")
	flag.StringVar(&o.pprof, "pprof", "", "DEBUG_PPROF_ADDR for the server (e.g. 127.0.0.1:6060), to profile it during the run")
	flag.IntVar(&o.rounds, "rounds", 3, "run the loads and floors this many times, interleaved, and report the median round of each (the machine's speed drifts)")
	flag.Parse()
	if err := run(o); err != nil {
		log.Fatal(err)
	}
}

func run(o options) error {
	ctx := context.Background()
	fmt.Printf("machine: %d CPUs (GOMAXPROCS %d), %s memory, %s/%s\n", runtime.NumCPU(), runtime.GOMAXPROCS(0), memTotal(), runtime.GOOS, runtime.GOARCH)
	if o.url != "" {
		return runRemote(ctx, o)
	}
	data, err := filepath.Abs(o.data)
	if err != nil {
		return err
	}
	if err := seed(ctx, data, o); err != nil {
		return err
	}
	srv, err := startServer(data, o)
	if err != nil {
		return err
	}
	defer srv.stop()

	uri, err := embedded.Locate(filepath.Join(data, "db"))
	if err != nil {
		return err
	}
	store, err := mongostore.Open(mongostore.Options{
		URI:      uri,
		Database: database,
		Timeout:  10 * time.Second,
	})
	if err != nil {
		return err
	}
	defer store.Close(ctx)
	var seeded seedInfo
	if err := readJSON(filepath.Join(data, seedFile), &seeded); err != nil {
		return err
	}
	priv, _, _, err := token.LoadOrCreateDevKey(data, token.RS256)
	if err != nil {
		return err
	}
	key, err := token.NewKey(token.RS256, priv, nil)
	if err != nil {
		return err
	}
	tokens, err := token.NewManager("http://localhost:8000", key, nil, nil)
	if err != nil {
		return err
	}
	clients, err := newClients(ctx, store, tokens, seeded, o.clients)
	if err != nil {
		return err
	}

	fmt.Printf("database: %s\n", counts(ctx, uri))
	fmt.Printf("load: %d clients, %v each, closed loop, median of %d interleaved rounds; server %s, LOG_LEVEL=%s, BCRYPT_COST=%d\n\n",
		o.clients, o.duration, o.rounds, srv.base, o.logLevel, o.bcryptCost)
	type named struct {
		name string
		fn   func(*benchClient) error
	}
	var plan []named
	for _, name := range strings.Split(o.loads, ",") {
		name = strings.TrimSpace(name)
		load, ok := serverLoads[name]
		if !ok {
			return fmt.Errorf("unknown load %q", name)
		}
		plan = append(plan, named{name, func(c *benchClient) error { return load(srv.base, c) }})
	}
	if o.floors {
		for _, name := range []string{"floor-me", "floor-refresh"} {
			plan = append(plan, named{name, func(c *benchClient) error { return floorLoads[name](ctx, store, c) }})
		}
	}
	rounds := map[string][]result{}
	for r := range o.rounds {
		for _, p := range plan {
			res := measure(p.name, clients, o.duration, srv.pid, p.fn)
			rounds[p.name] = append(rounds[p.name], res)
			fmt.Fprintf(os.Stderr, "round %d: %s\n", r+1, res.row())
		}
	}
	fmt.Println(header())
	results := map[string]result{}
	for _, p := range plan {
		all := rounds[p.name]
		slices.SortFunc(all, func(a, b result) int { return cmp.Compare(a.rate(), b.rate()) })
		med := all[len(all)/2]
		for _, r := range all { // peak RSS over every round
			med.peakRSS = max(med.peakRSS, r.peakRSS)
		}
		results[p.name] = med
		fmt.Println(med.row())
	}
	if o.floors {
		fmt.Println()
		ratio := func(a, b string) {
			if ra, rb := results[a], results[b]; ra.n > 0 && rb.n > 0 {
				fmt.Printf("%s / %s = %.2f\n", a, b, ra.rate()/rb.rate())
			}
		}
		ratio("me-bearer", "floor-me")
		ratio("me-cookie", "floor-me")
		ratio("refresh", "floor-refresh")
	}
	fmt.Printf("\nserver peak RSS (VmHWM) over the whole run: %s\n", mib(procKB(srv.pid, "VmHWM")))
	return nil
}

// ---- seeding ----

type seedInfo struct {
	Users      []string `json:"users"`
	Emails     []string `json:"emails"`
	Sessions   int      `json:"sessions"`
	BcryptCost int      `json:"bcrypt_cost"`
}

// seed fills the data folder once: users (one bcrypt hash shared by all, so
// seeding costs one hash) and sessions, inserted in bulk through the store.
func seed(ctx context.Context, data string, o options) error {
	if _, err := os.Stat(filepath.Join(data, seedFile)); err == nil {
		return nil
	}
	start := time.Now()
	fmt.Printf("seeding %d users and %d sessions into %s (once)…\n", o.users, o.sessions, data)
	edb, err := embedded.Start(embedded.Options{Dir: filepath.Join(data, "db")})
	if err != nil {
		return err
	}
	defer edb.Stop()
	store, err := mongostore.Connect(ctx, mongostore.Options{URI: edb.URI(), Database: database, Timeout: time.Minute, Prepare: edb.Prepare(database)})
	if err != nil {
		return err
	}
	defer store.Close(ctx)
	db, err := storetest.Connect(mongostore.Options{URI: edb.URI(), Database: database})
	if err != nil {
		return err
	}
	defer db.Close(ctx)
	if _, _, _, err := token.LoadOrCreateDevKey(data, token.RS256); err != nil {
		return err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(benchPassword), o.bcryptCost)
	if err != nil {
		return err
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	info := seedInfo{Sessions: o.sessions, BcryptCost: o.bcryptCost}
	for lo := 0; lo < o.users; lo += 1000 {
		var batch []*auth.User
		for i := lo; i < min(lo+1000, o.users); i++ {
			email := fmt.Sprintf("user%d@bench.test", i)
			batch = append(batch, &auth.User{Name: fmt.Sprintf("User %d", i), Email: email, Role: auth.RoleUser, Verified: true, PasswordHash: string(hash), CreatedAt: now, UpdatedAt: now})
			info.Emails = append(info.Emails, email)
		}
		if err := db.ImportUsers(ctx, batch); err != nil {
			return err
		}
		for _, u := range batch {
			info.Users = append(info.Users, u.ID)
		}
	}
	perUser := max(1, o.sessions/max(1, o.users))
	err = db.ImportSessions(ctx, info.Users, perUser, auth.Session{
		CreatedAt: now, ExpiresAt: now.Add(720 * time.Hour), UserAgent: "bench-seed", IP: "127.0.0.1",
	})
	if err != nil {
		return err
	}
	if err := writeJSON(filepath.Join(data, seedFile), info); err != nil {
		return err
	}
	fmt.Printf("seeded in %v\n", time.Since(start).Round(time.Second))
	return nil
}

// ---- the server process ----

type server struct {
	cmd  *exec.Cmd
	pid  int
	base string
}

func startServer(data string, o options) (*server, error) {
	bin := o.bin
	if bin == "" {
		dir, err := os.MkdirTemp("", "gqlauth-bench-")
		if err != nil {
			return nil, err
		}
		bin = filepath.Join(dir, "gqlauth")
		build := exec.Command("go", "build", "-o", bin, ".")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return nil, fmt.Errorf("building the server: %w", err)
		}
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin)
	cmd.Dir = data
	cmd.Env = append(os.Environ(),
		"DATA_DIR="+data, "HOST=127.0.0.1", "PORT="+strconv.Itoa(port),
		"RATE_LIMIT_IP_PER_MINUTE=0", "LOGIN_FAILURES_PER_ACCOUNT=0",
		"BCRYPT_COST="+strconv.Itoa(o.bcryptCost), "LOG_LEVEL="+o.logLevel,
		"ACCESS_TOKEN_EXPIRES_IN=60", "REFRESH_TOKEN_EXPIRES_IN=120",
		"DATABASE_URL=", "JWT_PRIVATE_KEY=", "JWT_PUBLIC_KEY=",
	)
	if o.pprof != "" {
		cmd.Env = append(cmd.Env, "DEBUG_PPROF_ADDR="+o.pprof)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{cmd: cmd, pid: cmd.Process.Pid, base: "http://127.0.0.1:" + strconv.Itoa(port)}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(s.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, errors.New("the server did not become ready")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *server) stop() {
	_ = s.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
	}
}

// ---- clients and loads ----

// benchClient is one closed-loop client with its own session.
type benchClient struct {
	i       int
	http    *http.Client
	userID  string
	email   string
	session string
	access  string
	refresh string
	// floor state: a refresh-token record to spend next.
	floorToken *auth.RefreshToken
	seq        atomic.Int64
}

func newClients(ctx context.Context, store *mongostore.Store, tokens *token.Manager, seeded seedInfo, n int) ([]*benchClient, error) {
	transport := &http.Transport{MaxIdleConns: n * 2, MaxIdleConnsPerHost: n * 2}
	now := time.Now().UTC().Truncate(time.Second)
	var out []*benchClient
	for i := range n {
		u := i % len(seeded.Users)
		sess := &auth.Session{UserID: seeded.Users[u], CreatedAt: now, ExpiresAt: now.Add(720 * time.Hour), UserAgent: "bench", IP: "127.0.0.1"}
		if _, err := store.CreateSession(ctx, sess); err != nil {
			return nil, err
		}
		c := &benchClient{i: i, http: &http.Client{Transport: transport, Timeout: 30 * time.Second}, userID: seeded.Users[u], email: seeded.Emails[u], session: sess.ID}
		var err error
		if c.access, err = tokens.Sign(token.Access, token.Claims{Subject: c.userID, SessionID: c.session, IssuedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
			return nil, err
		}
		if c.refresh, err = tokens.Sign(token.Refresh, token.Claims{Subject: c.userID, SessionID: c.session, IssuedAt: now, ExpiresAt: now.Add(2 * time.Hour)}); err != nil {
			return nil, err
		}
		rec := &auth.RefreshToken{Hash: auth.HashToken(c.refresh), SessionID: c.session, UserID: c.userID, IssuedAt: now, ExpiresAt: now.Add(2 * time.Hour), SessionExpiresAt: sess.ExpiresAt}
		if err := store.SaveRefreshToken(ctx, rec); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

var errGraphQL = errors.New("GraphQL error")

// post sends one GraphQL request and fails on a non-200 status or errors.
func (c *benchClient) post(base, body string, header map[string]string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodPost, base+"/graphql", strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK || strings.Contains(string(b), `"errors"`) {
		return resp, fmt.Errorf("%w: %d %.200s", errGraphQL, resp.StatusCode, b)
	}
	return resp, nil
}

const meBody = `{"query":"query Me { me { id email name } }"}`

var serverLoads = map[string]func(base string, c *benchClient) error{
	"health": func(base string, c *benchClient) error {
		resp, err := c.http.Get(base + "/api/healthchecker")
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	},
	"me-bearer": func(base string, c *benchClient) error {
		_, err := c.post(base, meBody, map[string]string{"Authorization": "Bearer " + c.access})
		return err
	},
	"me-cookie": func(base string, c *benchClient) error {
		_, err := c.post(base, meBody, map[string]string{"Cookie": "access_token=" + c.access + "; logged_in=true"})
		return err
	},
	"refresh": func(base string, c *benchClient) error {
		resp, err := c.post(base, `{"query":"mutation Refresh { refresh { accessToken } }"}`, map[string]string{"Cookie": "refresh_token=" + c.refresh})
		if err != nil {
			return err
		}
		for _, ck := range resp.Cookies() {
			switch ck.Name {
			case "refresh_token":
				c.refresh = ck.Value
			case "access_token":
				c.access = ck.Value
			}
		}
		return nil
	},
	"login": func(base string, c *benchClient) error {
		_, err := c.post(base, loginBody(c.email), nil)
		return err
	},
	"register": func(base string, c *benchClient) error {
		email := fmt.Sprintf("new-%d-%d-%d@bench.test", time.Now().UnixNano(), c.i, c.seq.Add(1))
		body := fmt.Sprintf(`{"query":"mutation Register($input: RegisterInput!) { register(input: $input) { id } }","variables":{"input":{"name":"New","email":%q,"password":%q,"passwordConfirm":%q}}}`, email, benchPassword, benchPassword)
		_, err := c.post(base, body, nil)
		return err
	},
}

func loginBody(email string) string {
	return fmt.Sprintf(`{"query":"mutation Login($e: String!, $p: String!) { login(input: {email: $e, password: $p}) { accessToken } }","variables":{"e":%q,"p":%q}}`, email, benchPassword)
}

// floorLoads are the database calls of one request, straight through the
// store and the driver: no HTTP, GraphQL or JWT.
var floorLoads = map[string]func(ctx context.Context, store *mongostore.Store, c *benchClient) error{
	// me: the session's revocation record (absent) and the user, by _id,
	// at once, as the server reads them.
	"floor-me": func(ctx context.Context, store *mongostore.Store, c *benchClient) error {
		return revokedAndUser(ctx, store, c)
	},
	// refresh: the token record, revocation and user by _id; the spend and
	// the new token (inserts); the session's last-used time (an update).
	"floor-refresh": func(ctx context.Context, store *mongostore.Store, c *benchClient) error {
		now := time.Now().UTC()
		if c.floorToken == nil {
			c.floorToken = floorRecord(c, now)
			if err := store.SaveRefreshToken(ctx, c.floorToken); err != nil {
				return err
			}
		}
		if _, err := store.RefreshTokenByHash(ctx, c.floorToken.Hash); err != nil {
			return err
		}
		if err := revokedAndUser(ctx, store, c); err != nil {
			return err
		}
		if _, err := store.SpendRefreshToken(ctx, c.floorToken, now); err != nil {
			return err
		}
		next := floorRecord(c, now)
		if err := store.SaveRefreshToken(ctx, next); err != nil {
			return err
		}
		c.floorToken = next
		return store.TouchSession(ctx, c.session, now)
	},
}

// revokedAndUser reads the session's revocation and the user at once.
func revokedAndUser(ctx context.Context, store *mongostore.Store, c *benchClient) error {
	userErr := make(chan error, 1)
	go func() {
		_, err := store.UserByID(ctx, c.userID)
		userErr <- err
	}()
	_, err := store.SessionRevoked(ctx, c.session)
	return errors.Join(err, <-userErr)
}

func floorRecord(c *benchClient, now time.Time) *auth.RefreshToken {
	return &auth.RefreshToken{
		Hash:      auth.HashToken(fmt.Sprintf("floor-%d-%d-%d", c.i, now.UnixNano(), c.seq.Add(1))),
		SessionID: c.session, UserID: c.userID, IssuedAt: now,
		ExpiresAt: now.Add(time.Hour), SessionExpiresAt: now.Add(time.Hour),
	}
}

// ---- measuring ----

type result struct {
	name     string
	n        int
	errors   int
	firstErr error
	elapsed  time.Duration
	lat      []time.Duration
	peakRSS  int64   // KiB
	rss      []int64 // KiB, sampled every 10 s
}

func (r result) rate() float64 { return float64(r.n) / r.elapsed.Seconds() }

func (r result) pct(q float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	return r.lat[int(q*float64(len(r.lat)-1))]
}

func header() string {
	return fmt.Sprintf("%-14s %10s %9s %9s %9s %7s %10s", "load", "req/s", "p50", "p90", "p99", "errors", "peak RSS")
}

func (r result) row() string {
	s := fmt.Sprintf("%-14s %10.0f %9s %9s %9s %7d %10s", r.name, r.rate(), ms(r.pct(.5)), ms(r.pct(.9)), ms(r.pct(.99)), r.errors, mib(r.peakRSS))
	if len(r.rss) > 2 {
		var parts []string
		for _, kb := range r.rss {
			parts = append(parts, mib(kb))
		}
		s += "  RSS every 10 s: " + strings.Join(parts, ", ")
	}
	if r.firstErr != nil {
		s += "  first error: " + r.firstErr.Error()
	}
	return s
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d.Microseconds())/1000) }

func mib(kb int64) string {
	if kb <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f MiB", float64(kb)/1024)
}

// measure runs fn in a closed loop on every client for d, sampling the
// server's RSS.
func measure(name string, clients []*benchClient, d time.Duration, pid int, fn func(*benchClient) error) result {
	r := result{name: name}
	var mu sync.Mutex
	stop := make(chan struct{})
	var peak atomic.Int64
	sampled := make(chan struct{})
	var series []int64
	go func() {
		defer close(sampled)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for i := 0; ; i++ {
			kb := procKB(pid, "VmRSS")
			if kb > peak.Load() {
				peak.Store(kb)
			}
			if i%100 == 0 {
				series = append(series, kb)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Go(func() {
			var lat []time.Duration
			var errs int
			var first error
			for time.Now().Before(deadline) {
				t0 := time.Now()
				err := fn(c)
				lat = append(lat, time.Since(t0))
				if err != nil {
					errs++
					if first == nil {
						first = err
					}
				}
			}
			mu.Lock()
			r.lat = append(r.lat, lat...)
			r.errors += errs
			if r.firstErr == nil {
				r.firstErr = first
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	r.elapsed = time.Since(start)
	close(stop)
	<-sampled
	r.n = len(r.lat)
	slices.Sort(r.lat)
	r.peakRSS = peak.Load()
	r.rss = append(series, procKB(pid, "VmRSS"))
	return r
}

// ---- a remote server ----

func runRemote(ctx context.Context, o options) error {
	base := strings.TrimSuffix(o.url, "/")
	var clients []*benchClient
	transport := &http.Transport{MaxIdleConns: o.clients * 2, MaxIdleConnsPerHost: o.clients * 2}
	for i := range o.clients {
		c := &benchClient{i: i, http: &http.Client{Transport: transport, Timeout: 30 * time.Second}, email: fmt.Sprintf("benchclient%d@bench.test", i)}
		reg := fmt.Sprintf(`{"query":"mutation($input: RegisterInput!) { register(input: $input) { id } }","variables":{"input":{"name":"Bench","email":%q,"password":%q,"passwordConfirm":%q}}}`, c.email, benchPassword, benchPassword)
		_, _ = c.post(base, reg, nil) // CONFLICT when it exists: fine
		resp, err := c.post(base, loginBody(c.email), nil)
		if err != nil {
			return fmt.Errorf("logging in client %d: %w", i, err)
		}
		for _, ck := range resp.Cookies() {
			switch ck.Name {
			case "access_token":
				c.access = ck.Value
			case "refresh_token":
				c.refresh = ck.Value
			}
		}
		clients = append(clients, c)
	}
	fmt.Printf("load: %d clients, %v each, against %s (rate limits must be off there)\n\n", o.clients, o.duration, base)
	fmt.Println(header())
	for _, name := range strings.Split(o.loads, ",") {
		load, ok := serverLoads[strings.TrimSpace(name)]
		if !ok {
			return fmt.Errorf("unknown load %q", name)
		}
		fmt.Println(measure(name, clients, o.duration, 0, func(c *benchClient) error { return load(base, c) }).row())
	}
	_ = ctx
	return nil
}

// ---- small helpers ----

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// procKB reads a "VmXxx: N kB" line of /proc/<pid>/status.
func procKB(pid int, field string) int64 {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			return n
		}
	}
	return 0
}

func memTotal() string {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return "?"
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			kb, _ := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			return fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
		}
	}
	return "?"
}

func counts(ctx context.Context, uri string) string {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	db, err := storetest.Connect(mongostore.Options{URI: uri, Database: database})
	if err != nil {
		return err.Error()
	}
	defer db.Close(ctx)
	summary, err := db.Summary(ctx)
	if err != nil {
		return err.Error()
	}
	return summary
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func writeJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}
