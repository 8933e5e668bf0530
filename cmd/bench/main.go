// Command bench measures the server under closed-loop load, against a
// baseline binary and against the floor of its own database work, in one
// interleaved run (the machine's speed drifts between minutes, so only
// ratios within one run mean anything).
//
//	go run ./cmd/bench -rounds 1                       # seeds ./bench-data once, then about a minute
//	go run ./cmd/bench -database-url ferretdb          # the database in a process of its own
//	go run ./cmd/bench -database-url ferretdb -baseline /tmp/gqlauth-main
//	go run ./cmd/bench -url http://localhost:8000      # a running server (no RSS, no floors)
//
// It builds the server (or takes -bin), seeds users and sessions straight
// through the store (not through bcrypt) into a reusable -data folder once,
// and then, for each round and each binary (the baseline first in odd
// rounds, last in even ones), copies the seeded database afresh, starts the
// database (in the server's process by default; with -database-url
// ferretdb, FerretDB in a process of its own, which this program runs) and
// the server (RATE_LIMIT_IP_PER_MINUTE=0: all load comes from one address),
// and runs each load with -c clients for -d, each client with its own
// session and following its rotated cookies. It reports requests/s,
// p50/p99, errors, the CPU the server and the database used per 1,000
// requests (from /proc), and the server's idle and peak RSS; and the floors:
// the database work of one `me` and of one `refresh`, issued straight
// through the driver to the same database at the same concurrency.
package main

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
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
	url         string
	data        string
	users       int
	sessions    int
	clients     int
	duration    time.Duration
	loads       string
	floors      bool
	bcryptCost  int
	logLevel    string
	bin         string
	baseline    string
	databaseURL string
	pprof       string
	rounds      int
	serveDB     string
	dbAddr      string
	env         string
	alg         string
}

func main() {
	var o options
	flag.StringVar(&o.url, "url", "", "target a running server instead of starting one (no RSS, no floors)")
	flag.StringVar(&o.data, "data", "bench-data", "folder for the seeded database (reused; each run works on a fresh copy)")
	flag.IntVar(&o.users, "users", 10_000, "users to seed")
	flag.IntVar(&o.sessions, "sessions", 100_000, "sessions to seed (spread over the users)")
	flag.IntVar(&o.clients, "c", 16, "concurrent clients")
	flag.DurationVar(&o.duration, "d", 5*time.Second, "duration of each load")
	flag.StringVar(&o.loads, "loads", "me-bearer,refresh,login", "loads to run, comma-separated (also health, me-cookie, register)")
	flag.BoolVar(&o.floors, "floors", true, "also measure the database floors of me and refresh")
	flag.IntVar(&o.bcryptCost, "bcrypt-cost", 12, "BCRYPT_COST of the servers (and of the seeded hashes)")
	flag.StringVar(&o.logLevel, "log-level", "warn", "LOG_LEVEL of the servers")
	flag.StringVar(&o.bin, "bin", "", "server binary (default: go build the repository)")
	flag.StringVar(&o.baseline, "baseline", "", "a second server binary (e.g. built from main), measured in the same interleaved rounds")
	flag.StringVar(&o.databaseURL, "database-url", "", `"" for the server's embedded database, "ferretdb" for FerretDB in a process of its own (started here, on each fresh copy)`)
	flag.StringVar(&o.env, "env", "", "extra environment for the servers under test (not the baseline), comma-separated NAME=value")
	flag.StringVar(&o.pprof, "pprof", "", "DEBUG_PPROF_ADDR for the server (e.g. 127.0.0.1:6060), to profile it during the run")
	flag.StringVar(&o.alg, "jwt-algorithm", token.RS256, "JWT_ALGORITHM of both servers (each signs with a development key of that type)")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds; each load reports the median round")
	flag.StringVar(&o.serveDB, "serve-db", "", "internal: serve FerretDB on this folder (the database process of -database-url ferretdb)")
	flag.StringVar(&o.dbAddr, "db-addr", "", "internal: the address -serve-db listens on")
	flag.Parse()
	var err error
	switch {
	case o.serveDB != "":
		err = serveDB(o.serveDB, o.dbAddr)
	case o.url != "":
		err = runRemote(o)
	default:
		err = run(o)
	}
	if err != nil {
		log.Fatal(err)
	}
}

// serveDB is the database process: FerretDB on dir, on TCP, until a signal.
func serveDB(dir, addr string) error {
	db, err := embedded.Start(embedded.Options{Dir: dir, Addr: addr})
	if err != nil {
		return err
	}
	defer db.Stop()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Println("ready") // the parent waits for this line
	<-ctx.Done()
	return nil
}

// binary is a server binary under test.
type binary struct {
	name, path string
	env        []string
}

func run(o options) error {
	ctx := context.Background()
	fmt.Printf("machine: %d CPUs (GOMAXPROCS %d), %s memory, %s/%s\n", runtime.NumCPU(), runtime.GOMAXPROCS(0), memTotal(), runtime.GOOS, runtime.GOARCH)
	data, err := filepath.Abs(o.data)
	if err != nil {
		return err
	}
	if err := seed(ctx, data, o); err != nil {
		return err
	}
	var seeded seedInfo
	if err := readJSON(filepath.Join(data, seedFile), &seeded); err != nil {
		return err
	}
	bins := []binary{}
	if o.baseline != "" {
		bins = append(bins, binary{name: "baseline", path: o.baseline})
	}
	path := o.bin
	if path == "" {
		if path, err = buildServer(); err != nil {
			return err
		}
	}
	var extra []string
	if o.env != "" {
		extra = strings.Split(o.env, ",")
	}
	bins = append(bins, binary{name: "new", path: path, env: extra})

	where := "the server's embedded database"
	if o.databaseURL == "ferretdb" {
		where = "FerretDB in a process of its own (DATABASE_URL)"
	} else if o.databaseURL != "" {
		return errors.New(`-database-url takes "" or "ferretdb" (each run needs a fresh copy of the seeded data)`)
	}
	fmt.Printf("data: %d users, %d sessions, in %s; a fresh copy for each run\n", len(seeded.Users), seeded.Sessions, where)
	fmt.Printf("load: %d clients, %v each, closed loop, %d interleaved rounds (median reported); LOG_LEVEL=%s, BCRYPT_COST=%d\n\n",
		o.clients, o.duration, o.rounds, o.logLevel, o.bcryptCost)

	results := map[string][]result{} // by "binary load"
	for r := range o.rounds {
		order := slices.Clone(bins)
		if r%2 == 1 {
			slices.Reverse(order)
		}
		for _, b := range order {
			rs, err := runOnce(ctx, o, data, seeded, b, b.name == "new" && o.floors)
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", r+1, b.name, err)
			}
			for _, res := range rs {
				key := res.binary + " " + res.name
				results[key] = append(results[key], res)
				fmt.Fprintf(os.Stderr, "round %d: %s\n", r+1, res.row())
			}
		}
	}
	fmt.Println(header())
	med := map[string]result{}
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range results {
			if !yield(k) {
				return
			}
		}
	})
	for _, k := range keys {
		all := results[k]
		slices.SortFunc(all, func(a, b result) int { return cmp.Compare(a.rate(), b.rate()) })
		m := all[len(all)/2]
		for _, r := range all {
			m.peakRSS, m.idleRSS = max(m.peakRSS, r.peakRSS), max(m.idleRSS, r.idleRSS)
		}
		med[k] = m
		fmt.Println(m.row())
	}
	fmt.Println()
	ratio := func(a, b string) {
		if ra, rb := med[a], med[b]; ra.n > 0 && rb.n > 0 {
			fmt.Printf("%-32s %.2f\n", a+" / "+b, ra.rate()/rb.rate())
		}
	}
	for _, load := range strings.Split(o.loads, ",") {
		ratio("new "+load, "baseline "+load)
	}
	ratio("new refresh", "new floor-refresh")
	ratio("new refresh", "new floor-refresh-signed")
	ratio("new me-bearer", "new floor-me")
	return nil
}

// runOnce runs every load on a fresh copy of the seeded data with one
// binary, and the floors after them when asked.
func runOnce(ctx context.Context, o options, data string, seeded seedInfo, b binary, floors bool) ([]result, error) {
	run, err := os.MkdirTemp("", "gqlauth-bench-run-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(run)
	if err := copyDir(filepath.Join(data, "db"), filepath.Join(run, "db")); err != nil {
		return nil, err
	}
	if _, _, _, err := token.LoadOrCreateDevKey(data, o.alg); err != nil {
		return nil, err
	}
	if err := copyFile(token.DevKeyPath(data, o.alg), token.DevKeyPath(run, o.alg)); err != nil {
		return nil, err
	}
	var dbProc *process
	env := append([]string{}, b.env...)
	if o.databaseURL == "ferretdb" {
		if dbProc, err = startDB(filepath.Join(run, "db")); err != nil {
			return nil, err
		}
		defer dbProc.stop()
		env = append(env, "DATABASE_URL=mongodb://"+dbProc.addr+"/"+database)
	}
	srv, err := startServer(run, b, o, env)
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	idle := procKB(srv.pid, "VmRSS") // ready, before any request
	uri := "mongodb://" + dbProcAddr(dbProc) + "/"
	if dbProc == nil {
		if uri, err = embedded.Locate(filepath.Join(run, "db")); err != nil {
			return nil, err
		}
	}
	store, err := mongostore.Open(mongostore.Options{URI: uri, Database: database, Timeout: 10 * time.Second})
	if err != nil {
		return nil, err
	}
	defer store.Close(ctx)
	tokens, err := devTokens(run, o.alg)
	if err != nil {
		return nil, err
	}
	clients, err := newClients(ctx, store, tokens, seeded, o.clients)
	if err != nil {
		return nil, err
	}
	// Warm up: one refresh each (from then on a client holds the refresh
	// token format this binary issues), and the connection pools.
	for _, c := range clients {
		if err := serverLoads["refresh"](srv.base, c); err != nil {
			return nil, fmt.Errorf("warming up: %w", err)
		}
	}
	measure("warm-up", clients, time.Second, nil, nil, func(c *benchClient) error { return serverLoads["me-bearer"](srv.base, c) })

	var out []result
	for _, name := range strings.Split(o.loads, ",") {
		load, ok := serverLoads[strings.TrimSpace(name)]
		if !ok {
			return nil, fmt.Errorf("unknown load %q", name)
		}
		r := measure(name, clients, o.duration, srv, dbProc, func(c *benchClient) error { return load(srv.base, c) })
		r.binary, r.idleRSS = b.name, idle
		out = append(out, r)
	}
	if floors {
		for _, name := range floorNames {
			r := measure(name, clients, o.duration, nil, dbProc, func(c *benchClient) error { return floorLoads[name](ctx, store, tokens, c) })
			r.binary = b.name
			out = append(out, r)
		}
	}
	peak := procKB(srv.pid, "VmHWM")
	for i := range out {
		if !slices.Contains(floorNames, out[i].name) {
			out[i].peakRSS = peak
		}
	}
	return out, nil
}

func dbProcAddr(p *process) string {
	if p == nil {
		return ""
	}
	return p.addr
}

// devTokens returns a token manager with the run's development key (the
// one its server signs with).
func devTokens(dir, alg string) (*token.Manager, error) {
	key, _, _, err := token.DevelopmentKey(dir, alg)
	if err != nil {
		return nil, err
	}
	return token.NewManager("http://localhost:8000", key, nil, nil)
}

// ---- seeding ----

type seedInfo struct {
	Users      []string `json:"users"`
	Emails     []string `json:"emails"`
	Sessions   int      `json:"sessions"`
	BcryptCost int      `json:"bcrypt_cost"`
}

// seed fills the data folder once: users (one bcrypt hash shared by all, so
// seeding costs one hash) and sessions, inserted in bulk through the store's
// test helper, and the development key the servers will sign with.
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
	summary, err := db.Summary(ctx)
	if err != nil {
		return err
	}
	if err := writeJSON(filepath.Join(data, seedFile), info); err != nil {
		return err
	}
	fmt.Printf("seeded in %v: %s\n", time.Since(start).Round(time.Second), summary)
	return nil
}

// ---- processes ----

// process is a child process: a server or a database.
type process struct {
	cmd  *exec.Cmd
	pid  int
	base string // a server's URL
	addr string // a database's address
}

func (p *process) stop() {
	_ = p.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
	}
}

// cpu returns the process's user and system CPU time so far.
func (p *process) cpu() time.Duration {
	if p == nil {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.pid))
	if err != nil {
		return 0
	}
	// The fields after the command name (which may hold spaces): utime
	// and stime are the 12th and 13th, in clock ticks (100 a second).
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	if len(fields) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(fields[11], 10, 64)
	st, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// goStats reads the Go heap's allocation total and the number of
// collections from the server's /metrics (0, 0 when it has none to give).
func (p *process) goStats() (allocBytes, gcs float64) {
	if p == nil {
		return 0, 0
	}
	resp, err := http.Get(p.base + "/metrics")
	if err != nil {
		return 0, 0
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		switch name {
		case "go_memstats_alloc_bytes_total":
			allocBytes, _ = strconv.ParseFloat(value, 64)
		case "go_gc_duration_seconds_count":
			gcs, _ = strconv.ParseFloat(value, 64)
		}
	}
	return allocBytes, gcs
}

func buildServer() (string, error) {
	dir, err := os.MkdirTemp("", "gqlauth-bench-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "gqlauth")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return "", fmt.Errorf("building the server: %w", err)
	}
	return bin, nil
}

// startDB runs FerretDB on dir in a process of its own (this program with
// -serve-db).
func startDB(dir string) (*process, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.Command(self, "-serve-db", dir, "-db-addr", addr)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{cmd: cmd, pid: cmd.Process.Pid, addr: addr}
	line := make([]byte, 6)
	if _, err := io.ReadFull(out, line); err != nil || string(line) != "ready\n" {
		p.stop()
		return nil, fmt.Errorf("the database process did not start: %v", err)
	}
	return p, nil
}

func startServer(dir string, b binary, o options, env []string) (*process, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(b.path)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"DATA_DIR="+dir, "HOST=127.0.0.1", "PORT="+strconv.Itoa(port),
		"RATE_LIMIT_IP_PER_MINUTE=0", "LOGIN_FAILURES_PER_ACCOUNT=0",
		"BCRYPT_COST="+strconv.Itoa(o.bcryptCost), "LOG_LEVEL="+o.logLevel,
		"ACCESS_TOKEN_EXPIRES_IN=60", "REFRESH_TOKEN_EXPIRES_IN=120",
		"DATABASE_URL=", "JWT_PRIVATE_KEY=", "JWT_PUBLIC_KEY=", "JWT_ALGORITHM="+o.alg,
	)
	cmd.Env = append(cmd.Env, env...)
	if o.pprof != "" && b.name == "new" {
		cmd.Env = append(cmd.Env, "DEBUG_PPROF_ADDR="+o.pprof)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &process{cmd: cmd, pid: cmd.Process.Pid, base: "http://127.0.0.1:" + strconv.Itoa(port)}
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
	seq     atomic.Int64
}

// newClients gives each client a session of its own, made straight
// through the store, and tokens for it in the format every release knows
// (a JWT refresh token with its record).
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

// floorNames are the floors measured, in order.
var floorNames = []string{"floor-me", "floor-refresh", "floor-refresh-signed"}

// floorLoads are the database calls of one request, straight through the
// store and the driver: no HTTP, no GraphQL, and no tokens but the one
// signature of floor-refresh-signed.
var floorLoads = map[string]func(ctx context.Context, store *mongostore.Store, tokens *token.Manager, c *benchClient) error{
	// me: the session's revocation record (absent) and the user, by _id,
	// at once, as the server reads them.
	"floor-me": func(ctx context.Context, store *mongostore.Store, _ *token.Manager, c *benchClient) error {
		return revokedAndUser(ctx, store, c)
	},
	// refresh: the session's revocation and the user by _id at once, then
	// one insert (the spend).
	"floor-refresh": func(ctx context.Context, store *mongostore.Store, _ *token.Manager, c *benchClient) error {
		return floorRefresh(ctx, store, c)
	},
	// The same and the one signature a refresh cannot avoid (the access
	// token's, with the server's key and algorithm), in this process: what is left
	// between refresh and this is HTTP, GraphQL and the server's own code.
	"floor-refresh-signed": func(ctx context.Context, store *mongostore.Store, tokens *token.Manager, c *benchClient) error {
		if err := floorRefresh(ctx, store, c); err != nil {
			return err
		}
		now := time.Now()
		_, err := tokens.Sign(token.Access, token.Claims{Subject: c.userID, SessionID: c.session, IssuedAt: now, ExpiresAt: now.Add(time.Hour)})
		return err
	},
}

// floorRefresh is the floor of refresh: the session's revocation and the user
// by _id at once, then one insert (the spend).
func floorRefresh(ctx context.Context, store *mongostore.Store, c *benchClient) error {
	if err := revokedAndUser(ctx, store, c); err != nil {
		return err
	}
	now := time.Now().UTC()
	_, err := store.SpendRefreshToken(ctx, &auth.RefreshToken{
		Hash:      auth.HashToken(fmt.Sprintf("floor-%d-%d-%d", c.i, now.UnixNano(), c.seq.Add(1))),
		SessionID: c.session, UserID: c.userID, ExpiresAt: now.Add(time.Hour),
	}, now)
	return err
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

// ---- measuring ----

type result struct {
	name, binary string
	n            int
	errors       int
	firstErr     error
	elapsed      time.Duration
	lat          []time.Duration
	serverCPU    time.Duration
	dbCPU        time.Duration
	allocBytes   float64 // allocated by the server's Go heap during the load
	gcs          float64 // garbage collections during the load
	idleRSS      int64   // KiB
	peakRSS      int64   // KiB
}

func (r result) rate() float64 { return float64(r.n) / r.elapsed.Seconds() }

func (r result) pct(q float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	return r.lat[int(q*float64(len(r.lat)-1))]
}

// perThousand returns CPU seconds per 1,000 requests.
func (r result) perThousand(d time.Duration) string {
	if d == 0 || r.n == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fs", d.Seconds()*1000/float64(r.n))
}

// perRequest returns the server's allocation per request, in KiB.
func (r result) perRequest() string {
	if r.allocBytes == 0 || r.n == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", r.allocBytes/1024/float64(r.n))
}

func (r result) gcsPerThousand() string {
	if r.allocBytes == 0 || r.n == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", r.gcs*1000/float64(r.n))
}

func header() string {
	return fmt.Sprintf("%-9s %-14s %8s %9s %9s %6s %13s %13s %9s %7s %9s %9s", "binary", "load", "req/s", "p50", "p99", "errors", "server CPU/1k", "db CPU/1k", "KiB/req", "GCs/1k", "idle RSS", "peak RSS")
}

func (r result) row() string {
	s := fmt.Sprintf("%-9s %-14s %8.0f %9s %9s %6d %13s %13s %9s %7s %9s %9s", r.binary, r.name, r.rate(), ms(r.pct(.5)), ms(r.pct(.99)), r.errors,
		r.perThousand(r.serverCPU), r.perThousand(r.dbCPU), r.perRequest(), r.gcsPerThousand(), mib(r.idleRSS), mib(r.peakRSS))
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
	return fmt.Sprintf("%.1f MiB", float64(kb)/1024)
}

// measure runs fn in a closed loop on every client for d, with the CPU the
// server and the database used meanwhile.
func measure(name string, clients []*benchClient, d time.Duration, srv, db *process, fn func(*benchClient) error) result {
	r := result{name: name}
	var mu sync.Mutex
	srv0, db0 := srv.cpu(), db.cpu()
	alloc0, gc0 := srv.goStats()
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
	r.serverCPU, r.dbCPU = srv.cpu()-srv0, db.cpu()-db0
	if alloc1, gc1 := srv.goStats(); alloc1 > 0 {
		r.allocBytes, r.gcs = alloc1-alloc0, gc1-gc0
	}
	r.n = len(r.lat)
	slices.Sort(r.lat)
	return r
}

// ---- a remote server ----

func runRemote(o options) error {
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
		fmt.Println(measure(name, clients, o.duration, nil, nil, func(c *benchClient) error { return load(base, c) }).row())
	}
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

// copyDir copies the files of a folder (the seeded database: SQLite files,
// no subfolders that matter), leaving out sockets and the lock.
func copyDir(from, to string) error {
	if err := os.MkdirAll(to, 0o700); err != nil {
		return err
	}
	return filepath.WalkDir(from, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !d.Type().IsRegular() || d.Name() == embedded.LockName || d.Name() == embedded.SocketFile {
			return err
		}
		return copyFile(path, filepath.Join(to, d.Name()))
	})
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
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
