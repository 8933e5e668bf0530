package web

import (
	"net/netip"
	"sync"
	"time"
)

// RateLimiter limits events per client IP with a token bucket per address:
// `perMinute` tokens, refilled continuously. IPv6 clients are grouped by
// /64, the block a single subscriber usually holds. It lives in memory: each
// instance limits on its own.
type RateLimiter struct {
	perMinute float64
	now       func() time.Time

	mu      sync.Mutex
	buckets map[netip.Prefix]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// maxBuckets bounds memory: beyond it, buckets that have refilled are
// dropped (a full bucket is the same as no bucket).
const maxBuckets = 100_000

// NewRateLimiter returns a limiter of perMinute events per minute per
// client; perMinute 0 returns nil, and a nil limiter allows everything.
func NewRateLimiter(perMinute int, now func() time.Time) *RateLimiter {
	if perMinute <= 0 {
		return nil
	}
	if now == nil {
		now = time.Now
	}
	return &RateLimiter{perMinute: float64(perMinute), now: now, buckets: map[netip.Prefix]*bucket{}}
}

// Allow takes one token for the client. When none is left it returns false
// and how long until one is.
func (l *RateLimiter) Allow(ip string) (bool, time.Duration) {
	if l == nil {
		return true, 0
	}
	key := clientKey(ip)
	now := l.now()
	rate := l.perMinute / float64(time.Minute) // tokens per nanosecond

	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) >= maxBuckets {
			l.dropFull(now, rate)
		}
		b = &bucket{tokens: l.perMinute, last: now}
		l.buckets[key] = b
	}
	b.tokens = min(l.perMinute, b.tokens+float64(now.Sub(b.last))*rate)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / rate)
}

// dropFull forgets every bucket that has refilled. Called with mu held.
func (l *RateLimiter) dropFull(now time.Time, rate float64) {
	for k, b := range l.buckets {
		if b.tokens+float64(now.Sub(b.last))*rate >= l.perMinute {
			delete(l.buckets, k)
		}
	}
}

// clientKey maps an address to its bucket: the address for IPv4, its /64
// for IPv6; anything unparsable shares one bucket.
func clientKey(ip string) netip.Prefix {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return netip.Prefix{}
	}
	a = a.Unmap().WithZone("")
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p
	}
	return netip.PrefixFrom(a, 32)
}
