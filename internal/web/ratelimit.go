package web

import (
	"net/netip"
	"sync"
	"time"
)

// RateLimiter allows at most `perMinute` events per client IP in any 60
// seconds. Each client keeps counts for 5-second slots; an event is allowed
// while the slots of the last 60 to 65 seconds hold fewer than perMinute, so
// the bound holds for every 60-second window (a token bucket would allow
// twice the limit in a client's first minute). IPv6 clients are grouped by
// /64, the block a single subscriber usually holds. It lives in memory: each
// instance limits on its own.
type RateLimiter struct {
	limit uint32
	now   func() time.Time

	mu      sync.Mutex
	clients map[netip.Prefix]*window
}

const (
	slotLen = 5 * time.Second
	// slots cover one minute plus the current, partial slot.
	slots = int(time.Minute/slotLen) + 1
	// maxClients bounds memory (about 60 bytes a client).
	maxClients = 100_000
)

type window struct {
	last   int64 // the slot index of the latest event
	counts [slots]uint32
}

// NewRateLimiter returns a limiter of perMinute events per minute per
// client; perMinute 0 returns nil, and a nil limiter allows everything.
func NewRateLimiter(perMinute int, now func() time.Time) *RateLimiter {
	if perMinute <= 0 {
		return nil
	}
	if now == nil {
		now = time.Now
	}
	return &RateLimiter{limit: uint32(perMinute), now: now, clients: map[netip.Prefix]*window{}}
}

// Allow counts one event for the client, unless the client is at its limit:
// then it returns false and how long until an event would be allowed.
func (l *RateLimiter) Allow(ip string) (bool, time.Duration) {
	if l == nil {
		return true, 0
	}
	key := clientKey(ip)
	now := l.now()
	cur := now.UnixNano() / int64(slotLen)

	l.mu.Lock()
	defer l.mu.Unlock()
	w, ok := l.clients[key]
	if !ok {
		if len(l.clients) >= maxClients {
			l.evict(cur)
		}
		w = &window{last: cur}
		l.clients[key] = w
	}
	w.advance(cur)
	var sum uint32
	for _, c := range w.counts {
		sum += c
	}
	if sum < l.limit {
		w.counts[cur%int64(slots)]++
		return true, 0
	}
	// Wait until enough of the oldest slots have left the window.
	excess := sum - l.limit + 1
	for age := int64(slots - 1); age >= 0; age-- {
		c := w.counts[(cur-age)%int64(slots)]
		if c >= excess {
			leaves := time.Unix(0, (cur-age+int64(slots))*int64(slotLen))
			return false, max(leaves.Sub(now), time.Second)
		}
		excess -= c
	}
	return false, time.Minute
}

// advance clears the slots between the latest event and the current slot.
func (w *window) advance(cur int64) {
	if cur <= w.last {
		return
	}
	for i := w.last + 1; i <= cur && i <= w.last+int64(slots); i++ {
		w.counts[i%int64(slots)] = 0
	}
	w.last = cur
}

// evict makes room: first clients with nothing in their window, then, if
// that frees less than a tenth, arbitrary others (map order is random), so
// that a flood of new addresses costs one scan per tenth of the capacity.
// Called with mu held.
func (l *RateLimiter) evict(cur int64) {
	for k, w := range l.clients {
		if cur-w.last >= int64(slots) {
			delete(l.clients, k)
		}
	}
	for k := range l.clients {
		if len(l.clients) < maxClients*9/10 {
			break
		}
		delete(l.clients, k)
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
