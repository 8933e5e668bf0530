package web_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gqlauth/gqlauth/internal/web"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestRateLimiterBurst(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	l := web.NewRateLimiter(3, clk.Now)
	for i := range 3 {
		if ok, _ := l.Allow("192.0.2.1"); !ok {
			t.Fatalf("event %d refused", i+1)
		}
	}
	ok, wait := l.Allow("192.0.2.1")
	if ok || wait < 55*time.Second || wait > 65*time.Second {
		t.Fatalf("4th event: ok=%v wait=%v, want refused for about a minute", ok, wait)
	}
	if ok, _ := l.Allow("192.0.2.2"); !ok {
		t.Fatal("another client was limited")
	}
	clk.Add(wait)
	if ok, _ := l.Allow("192.0.2.1"); !ok {
		t.Fatalf("refused after the announced wait of %v", wait)
	}
}

// TestRateLimiterEveryWindow sends an event every 100 ms for five minutes:
// no 60-second window may hold more than the limit, and the client still
// gets close to the limit each minute.
func TestRateLimiterEveryWindow(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	const limit = 120
	l := web.NewRateLimiter(limit, clk.Now)
	var allowed []time.Time
	for range 3000 {
		if ok, _ := l.Allow("192.0.2.1"); ok {
			allowed = append(allowed, clk.Now())
		}
		clk.Add(100 * time.Millisecond)
	}
	for i := range allowed {
		n := 0
		for j := i; j < len(allowed) && allowed[j].Sub(allowed[i]) < time.Minute; j++ {
			n++
		}
		if n > limit {
			t.Fatalf("%d events in the minute from %v", n, allowed[i])
		}
	}
	if per := float64(len(allowed)) / 5; per < limit*0.9 {
		t.Fatalf("only %.0f events a minute allowed, want close to %d", per, limit)
	}
}

func TestRateLimiterIPv6Slash64(t *testing.T) {
	l := web.NewRateLimiter(1, nil)
	if ok, _ := l.Allow("2001:db8::1"); !ok {
		t.Fatal("first event refused")
	}
	if ok, _ := l.Allow("2001:db8::ffff:1"); ok {
		t.Fatal("another address of the same /64 was not limited")
	}
	if ok, _ := l.Allow("2001:db8:0:1::1"); !ok {
		t.Fatal("another /64 was limited")
	}
}

func TestRateLimiterDisabled(t *testing.T) {
	l := web.NewRateLimiter(0, nil)
	for range 1000 {
		if ok, _ := l.Allow("192.0.2.1"); !ok {
			t.Fatal("a disabled limiter refused")
		}
	}
}

// TestRateLimiterManyClients floods the limiter with new addresses: memory
// stays bounded and each new address stays cheap.
func TestRateLimiterManyClients(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	l := web.NewRateLimiter(1, clk.Now)
	start := time.Now()
	for i := range 300_000 {
		l.Allow(fmt.Sprintf("2001:db8:%x:%x::1", i>>16, i&0xffff))
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("300,000 new clients took %v", d)
	}
	if n := web.RateLimiterClients(l); n > 100_000 {
		t.Fatalf("%d clients kept, want at most 100,000", n)
	}
}
