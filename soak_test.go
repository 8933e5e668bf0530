package main

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gqlauth/gqlauth/internal/gqltest"
)

// soakDuration is the soak test's length: 60 s by default, GQLAUTH_SOAK
// (CI sets 20s) or -soak (longer runs) change it.
var soakDuration = flag.Duration("soak", 0, "length of TestSoak (default 60s, or $GQLAUTH_SOAK)")

func soakLength(t *testing.T) time.Duration {
	if *soakDuration > 0 {
		return *soakDuration
	}
	if v := os.Getenv("GQLAUTH_SOAK"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("GQLAUTH_SOAK: %v", err)
		}
		return d
	}
	return 60 * time.Second
}

// stableGoroutines returns the goroutine count once it stops falling.
func stableGoroutines() int {
	n := runtime.NumGoroutine()
	for range 50 {
		time.Sleep(100 * time.Millisecond)
		m := runtime.NumGoroutine()
		if m >= n {
			return m
		}
		n = m
	}
	return n
}

// databaseConnections counts the embedded database's client connections
// (FerretDB runs one goroutine per connection in conn.run, and two beside
// it).
func databaseConnections() int {
	buf := make([]byte, 8<<20)
	return strings.Count(string(buf[:runtime.Stack(buf, true)]), "clientconn.(*conn).run(")
}

// closeIdle closes the test clients' idle keep-alive connections (and so
// the server's goroutines serving them).
func closeIdle() {
	http.DefaultClient.CloseIdleConnections()
	time.Sleep(100 * time.Millisecond)
}

func heapAlloc() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestSoak runs a mixed workload (register, login, me, refresh, logout) with
// 32 clients: no internal error, no 5xx, and afterwards the goroutines and
// the heap are back near where they started.
func TestSoak(t *testing.T) {
	long(t)
	length := soakLength(t)
	s := startServer(t, serverOptions{env: map[string]string{"RATE_LIMIT_IP_PER_MINUTE": "0", "LOG_LEVEL": "warn"}})
	const clients = 32
	var requests, failures, busy atomic.Int64
	var mu sync.Mutex
	codes := map[string]int{}
	record := func(r *gqltest.Response) {
		requests.Add(1)
		if r.Code() != "" || r.HTTP.StatusCode != 200 {
			failures.Add(1)
			mu.Lock()
			codes[fmt.Sprintf("%d %s", r.HTTP.StatusCode, r.Code())]++
			mu.Unlock()
		}
	}
	run := func(phase string, length time.Duration) {
		deadline := time.Now().Add(length)
		var wg sync.WaitGroup
		for i := range clients {
			wg.Go(func() {
				c := s.client()
				for n := 0; time.Now().Before(deadline); n++ {
					email := fmt.Sprintf("soak-%s-%d-%d@example.com", phase, i, n)
					// A busy hasher answers "retry shortly" (the bound on
					// password hashing, as designed, when the machine is
					// slow: under the race detector, say): the client
					// waits and starts over.
					if r := c.Do(gqltest.RegisterMutation, gqltest.RegisterInput(email)); hasherBusy(r) {
						busy.Add(1)
						time.Sleep(time.Second)
						continue
					} else {
						record(r)
					}
					if r := c.Login(email); hasherBusy(r) {
						busy.Add(1)
						time.Sleep(time.Second)
						continue
					} else {
						record(r)
					}
					for range 10 {
						record(c.Do(gqltest.MeQuery, nil))
					}
					record(c.Do(gqltest.RefreshMutation, nil))
					record(c.Do(gqltest.MeQuery, nil))
					record(c.Do(gqltest.LogoutMutation, nil))
				}
			})
		}
		wg.Wait()
	}

	// Warm up with the same workload, so that the pools (HTTP keep-alive,
	// driver and database connections) reach their working size: growth
	// after the soak is then a leak, not a pool.
	run("warmup", 3*time.Second)
	closeIdle()
	goroutinesBefore, heapBefore := stableGoroutines(), heapAlloc()
	connsBefore := databaseConnections()

	run("soak", length)
	t.Logf("%d requests in %v by %d clients; failures %v; %d answers of a busy hasher", requests.Load(), length, clients, codes, busy.Load())
	if failures.Load() != 0 {
		t.Fatalf("%d of %d requests failed: %v", failures.Load(), requests.Load(), codes)
	}
	if s.logged("level=ERROR") {
		t.Fatal("the server logged errors during the soak")
	}

	closeIdle()
	goroutinesAfter, heapAfter := stableGoroutines(), heapAlloc()
	connsAfter := databaseConnections()
	t.Logf("goroutines %d -> %d, database connections %d -> %d, heap %d KiB -> %d KiB",
		goroutinesBefore, goroutinesAfter, connsBefore, connsAfter, heapBefore>>10, heapAfter>>10)
	// A leak grows with the requests (15,000 here); a pool still settling
	// adds a few HTTP connections, and database connections (bounded by
	// the driver's pool, closed after a minute idle) with FerretDB's three
	// goroutines each.
	if goroutinesAfter > goroutinesBefore+clients+3*max(0, connsAfter-connsBefore) {
		var b strings.Builder
		_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
		t.Errorf("goroutines grew from %d to %d:\n%s", goroutinesBefore, goroutinesAfter, b.String())
	}
	if heapAfter > 2*heapBefore+4<<20 {
		t.Errorf("heap grew from %d KiB to %d KiB", heapBefore>>10, heapAfter>>10)
	}
}

// hasherBusy reports whether the answer is the password hasher's "retry
// shortly" (RATE_LIMITED with a retryAfter of 1 s), not a failure.
func hasherBusy(r *gqltest.Response) bool {
	if r.Code() != "RATE_LIMITED" {
		return false
	}
	ra, _ := r.Errors[0].Extensions["retryAfter"].(float64)
	return ra == 1
}
