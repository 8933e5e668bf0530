package auth_test

import (
	"testing"
	"time"

	"github.com/gqlauth/gqlauth/internal/auth"
)

func TestLoginThrottleDelay(t *testing.T) {
	p := auth.DefaultLoginThrottle(5)
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	var a auth.LoginAttempts
	for i := range 4 {
		a = p.Fail(a, t0.Add(time.Duration(i)*time.Second))
	}
	if d := p.Delay(a, t0.Add(4*time.Second)); d != 0 {
		t.Fatalf("after 4 failures: delay %v, want 0", d)
	}
	at := t0.Add(4 * time.Second)
	a = p.Fail(a, at) // the fifth
	if d := p.Delay(a, at); d != 30*time.Second {
		t.Fatalf("after 5 failures: delay %v, want 30s", d)
	}
	if d := p.Delay(a, at.Add(16*time.Second)); d != 14*time.Second {
		t.Fatalf("16 s later: delay %v, want 14s", d)
	}
	// Each further failure (once the delay has passed) doubles it, up to
	// 900 s, and stays there while the failures keep coming.
	want := 30 * time.Second
	for i, next := range []time.Duration{60, 120, 240, 480, 900, 900, 900} {
		at = at.Add(want)
		if d := p.Delay(a, at); d != 0 {
			t.Fatalf("at the end of the %v delay: still %v", want, d)
		}
		a = p.Fail(a, at)
		want = next * time.Second
		if d := p.Delay(a, at); d != want {
			t.Fatalf("after %d failures: delay %v, want %v", 6+i, d, want)
		}
	}
	if len(a.Failures) > 5 {
		t.Fatalf("keeps %d failures; %d are enough", len(a.Failures), 5)
	}
	// A quiet window after the delay ends the streak.
	at = at.Add(900*time.Second + 16*time.Minute)
	a = p.Fail(a, at)
	if d := p.Delay(a, at); d != 0 {
		t.Fatalf("after a quiet window: delay %v, want 0", d)
	}
}

// TestLoginThrottleCapHolds: once at the cap (900 s, as long as the
// window), a client that waits out each delay and then guesses stays at the
// cap: the streak is measured from the end of the delay, not from the
// failure, so it does not reset itself.
func TestLoginThrottleCapHolds(t *testing.T) {
	p := auth.DefaultLoginThrottle(5)
	at := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	var a auth.LoginAttempts
	for range 5 {
		a = p.Fail(a, at)
	}
	for range 6 { // 30, 60, 120, 240, 480, 900
		at = at.Add(p.Delay(a, at))
		a = p.Fail(a, at)
	}
	if d := p.Delay(a, at); d != 900*time.Second {
		t.Fatalf("delay %v, want the cap", d)
	}
	// Waiting out the delay and a little more, ten times over.
	for i := range 10 {
		at = at.Add(900*time.Second + time.Duration(1+i*60)*time.Second)
		if d := p.Delay(a, at); d != 0 {
			t.Fatalf("still throttled %v after the delay", d)
		}
		a = p.Fail(a, at)
		if d := p.Delay(a, at); d != 900*time.Second {
			t.Fatalf("guess %d after waiting: delay %v, want 900s (the streak reset itself)", i+1, d)
		}
	}
	// A quiet window after the delay ends the streak.
	at = at.Add(900*time.Second + 15*time.Minute + time.Second)
	a = p.Fail(a, at)
	if d := p.Delay(a, at); d != 0 {
		t.Fatalf("after a quiet window past the delay: %v, want 0", d)
	}
}

func TestLoginThrottleWindow(t *testing.T) {
	p := auth.DefaultLoginThrottle(5)
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	var a auth.LoginAttempts
	// Five failures four minutes apart: only four fall in any 15 minutes.
	for i := range 5 {
		a = p.Fail(a, t0.Add(time.Duration(i)*4*time.Minute))
	}
	if d := p.Delay(a, t0.Add(16*time.Minute)); d != 0 {
		t.Fatalf("delay %v, want 0", d)
	}
}

func TestLoginThrottleDisabled(t *testing.T) {
	p := auth.DefaultLoginThrottle(0)
	now := time.Now()
	var a auth.LoginAttempts
	for range 20 {
		a = p.Fail(a, now)
	}
	if p.Enabled() || p.Delay(a, now) != 0 {
		t.Fatal("a disabled throttle throttled")
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	for d, want := range map[time.Duration]int{time.Millisecond: 1, time.Second: 1, 1500 * time.Millisecond: 2, 30 * time.Second: 30} {
		if got := auth.RetryAfterSeconds(d); got != want {
			t.Errorf("RetryAfterSeconds(%v) = %d, want %d", d, got, want)
		}
	}
}
