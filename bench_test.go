package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gqlauth/gqlauth/internal/gqltest"
	"github.com/gqlauth/gqlauth/internal/password"
)

// BenchmarkMeDuringLoginFlood measures the latency of `me` alone, then while
// 16 clients log in as fast as they can (bcrypt at cost 12, the default),
// and reports both p99s and their ratio: the bounded hashing must keep the
// flood from starving other requests. Run it with a fixed count, e.g.
//
//	go test -run '^$' -bench MeDuringLoginFlood -benchtime 2000x
//
// The per-IP limit is off (all traffic comes from one address).
func BenchmarkMeDuringLoginFlood(b *testing.B) {
	const flooders = 16
	// As run() does: BCRYPT_CONCURRENCY defaults to GOMAXPROCS, which is then
	// raised by as many places for the hashing threads.
	slots := runtime.GOMAXPROCS(0)
	defer password.ReserveProcs(slots)()
	s := startServer(b, serverOptions{env: map[string]string{
		"RATE_LIMIT_IP_PER_MINUTE": "0", "BCRYPT_COST": "12", "LOGIN_FAILURES_PER_ACCOUNT": "0",
		"BCRYPT_CONCURRENCY": strconv.Itoa(slots),
	}})
	c, p := s.signedIn("bench-me@example.com")
	_ = c
	for i := range flooders {
		s.client().MustRegister(fmt.Sprintf("flood%d@example.com", i))
	}
	body := `{"query":"{ me { id email } }"}`
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	me := func() time.Duration {
		req, _ := http.NewRequest(http.MethodPost, s.base+"/graphql", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+p.AccessToken)
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
		return time.Since(start)
	}
	measure := func() []time.Duration {
		lat := make([]time.Duration, 0, b.N)
		for range b.N {
			lat = append(lat, me())
			time.Sleep(time.Millisecond) // an open-ish loop: do not queue behind ourselves
		}
		slices.Sort(lat)
		return lat
	}
	pct := func(lat []time.Duration, q float64) float64 {
		return float64(lat[int(q*float64(len(lat)-1))].Microseconds()) / 1000
	}

	for range 50 { // warm up connections and caches
		me()
	}
	b.ResetTimer()
	idle := measure()

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[string]int{}
	for i := range flooders {
		wg.Go(func() {
			fc := s.client()
			for ctx.Err() == nil {
				code := fc.Do(gqltest.LoginMutation, map[string]any{"email": fmt.Sprintf("flood%d@example.com", i), "password": gqltest.Password}).Code()
				mu.Lock()
				codes[code]++
				mu.Unlock()
			}
		})
	}
	time.Sleep(500 * time.Millisecond) // let the flood fill the hashing queue
	flood := measure()
	cancel()
	wg.Wait()
	b.StopTimer()

	b.ReportMetric(pct(idle, 0.5), "idle-p50-ms")
	b.ReportMetric(pct(idle, 0.99), "idle-p99-ms")
	b.ReportMetric(pct(flood, 0.5), "flood-p50-ms")
	b.ReportMetric(pct(flood, 0.99), "flood-p99-ms")
	b.ReportMetric(pct(flood, 0.99)/pct(idle, 0.99), "p99-ratio")
	b.Logf("login outcomes during the flood: %v", codes)
}

// BenchmarkMeHandler measures one `me` through the whole handler (middleware,
// GraphQL, token check, two look-ups on the embedded database) without the
// network, with allocations:
//
//	go test -run '^$' -bench MeHandler -benchmem
func BenchmarkMeHandler(b *testing.B) {
	s := startServer(b, serverOptions{env: map[string]string{"LOG_LEVEL": "warn"}})
	_, p := s.signedIn("bench-handler@example.com")
	h := s.Handler()
	body := `{"query":"query Me { me { id email name } }"}`
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+p.AccessToken)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK || strings.Contains(rec.Body.String(), `"errors"`) {
			b.Fatalf("%d %s", rec.Code, rec.Body.String())
		}
	}
}
