package auth

import (
	"math/bits"
	"time"
)

// LoginThrottle is the per-e-mail login throttle. The MaxFailures-th failed
// attempt within Window throttles the e-mail for Base; each further failure
// while the streak lasts (each within Window of the one before) doubles the
// delay, up to Cap. While throttled, login answers RATE_LIMITED without
// checking the password and counts nothing. The streak lasts while each
// failure comes within Window after the delay before it ended; a success
// resets everything, and so does a quiet Window after a delay ends (or
// after the last failure, when not throttled).
type LoginThrottle struct {
	MaxFailures int // 0 disables the throttle
	Window      time.Duration
	Base        time.Duration
	Cap         time.Duration
}

// DefaultLoginThrottle returns the contract's policy for maxFailures.
func DefaultLoginThrottle(maxFailures int) LoginThrottle {
	return LoginThrottle{MaxFailures: maxFailures, Window: 15 * time.Minute, Base: 30 * time.Second, Cap: 900 * time.Second}
}

// Enabled reports whether the throttle is on.
func (p LoginThrottle) Enabled() bool { return p.MaxFailures > 0 }

// LoginAttempts is the latest record of an e-mail's login attempts: its
// sequence number (0 when there is none), the failures within the window
// not followed by a success (oldest first, at most MaxFailures), and the
// throttle level (0: not throttled; n: the n-th delay of the streak).
type LoginAttempts struct {
	Seq      int64
	Failures []time.Time
	Level    int
}

// last returns the latest failure.
func (a LoginAttempts) last() (time.Time, bool) {
	if len(a.Failures) == 0 {
		return time.Time{}, false
	}
	return a.Failures[len(a.Failures)-1], true
}

// recent returns the failures within the window before now, oldest first.
func (p LoginThrottle) recent(failures []time.Time, now time.Time) []time.Time {
	start := now.Add(-p.Window)
	for i, f := range failures {
		if f.After(start) {
			return failures[i:]
		}
	}
	return nil
}

// delayAt returns the delay of a throttle level.
func (p LoginThrottle) delayAt(level int) time.Duration {
	if level-1 >= bits.LeadingZeros64(uint64(p.Base)) {
		return p.Cap
	}
	return min(p.Base<<(level-1), p.Cap)
}

// Delay returns how much longer the e-mail is throttled, or 0.
func (p LoginThrottle) Delay(a LoginAttempts, now time.Time) time.Duration {
	last, ok := a.last()
	if !p.Enabled() || a.Level == 0 || !ok {
		return 0
	}
	until := last.Add(p.delayAt(a.Level))
	if !until.After(now) {
		return 0
	}
	return until.Sub(now)
}

// Fail returns the record after a failed attempt at `at` (Seq unchanged).
func (p LoginThrottle) Fail(a LoginAttempts, at time.Time) LoginAttempts {
	last, ok := a.last()
	// The streak lasts while each failure comes within Window of the end of
	// the delay before it: measured from the failure instead, a client that
	// waits out a capped delay (as long as the window) would arrive after
	// the window, and the next MaxFailures guesses would be free.
	streak := a.Level > 0 && ok && at.Sub(last.Add(p.delayAt(a.Level))) <= p.Window
	recent := append(append([]time.Time(nil), p.recent(a.Failures, at)...), at)
	if len(recent) > p.MaxFailures {
		recent = recent[len(recent)-p.MaxFailures:]
	}
	level := 0
	switch {
	case streak:
		level = a.Level + 1
	case len(recent) >= p.MaxFailures:
		level = 1
	}
	return LoginAttempts{Seq: a.Seq, Failures: recent, Level: level}
}

// RetryAfterSeconds rounds a delay up to whole seconds, at least 1.
func RetryAfterSeconds(d time.Duration) int {
	s := int((d + time.Second - 1) / time.Second)
	return max(s, 1)
}
