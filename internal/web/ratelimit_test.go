package web_test

import (
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

func TestRateLimiter(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	l := web.NewRateLimiter(3, clk.Now)
	for i := range 3 {
		if ok, _ := l.Allow("192.0.2.1"); !ok {
			t.Fatalf("event %d refused", i+1)
		}
	}
	ok, wait := l.Allow("192.0.2.1")
	if ok || wait <= 0 || wait > 20*time.Second {
		t.Fatalf("4th event: ok=%v wait=%v, want refused with about 20 s", ok, wait)
	}
	if ok, _ := l.Allow("192.0.2.2"); !ok {
		t.Fatal("another client was limited")
	}
	clk.Add(20 * time.Second)
	if ok, _ := l.Allow("192.0.2.1"); !ok {
		t.Fatal("no token after 20 s at 3 per minute")
	}
	if ok, _ := l.Allow("192.0.2.1"); ok {
		t.Fatal("more than one token after 20 s")
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
