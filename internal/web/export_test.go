package web

// RateLimiterClients returns how many clients the limiter keeps.
func RateLimiterClients(l *RateLimiter) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.clients)
}
