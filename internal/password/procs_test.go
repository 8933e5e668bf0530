package password

import (
	"runtime"
	"testing"
	"time"
)

// TestProcsRaisedOnlyWhileHashing: the hashing threads' scheduler places
// exist while hashes run and a little after, not at rest (where they made
// every garbage collection dearer).
func TestProcsRaisedOnlyWhileHashing(t *testing.T) {
	prevIdle := ProcsIdle
	ProcsIdle = 50 * time.Millisecond
	defer func() { ProcsIdle = prevIdle }()
	base := runtime.GOMAXPROCS(0)
	restore := ReserveProcs(2)
	defer restore()

	if got := runtime.GOMAXPROCS(0); got != base {
		t.Fatalf("GOMAXPROCS at rest = %d, want %d", got, base)
	}
	var during int
	inBackground(func() { during = runtime.GOMAXPROCS(0) })
	if during != base+2 {
		t.Fatalf("GOMAXPROCS during a hash = %d, want %d", during, base+2)
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.GOMAXPROCS(0) != base {
		if time.Now().After(deadline) {
			t.Fatalf("GOMAXPROCS still %d after the hashes, want %d", runtime.GOMAXPROCS(0), base)
		}
		time.Sleep(10 * time.Millisecond)
	}

	// A flood keeps it raised between hashes instead of changing it twice
	// per hash.
	ProcsIdle = time.Minute
	inBackground(func() {})
	inBackground(func() {
		if got := runtime.GOMAXPROCS(0); got != base+2 {
			t.Errorf("GOMAXPROCS during the second hash = %d, want %d", got, base+2)
		}
	})
	if got := runtime.GOMAXPROCS(0); got != base+2 {
		t.Fatalf("GOMAXPROCS between hashes of a flood = %d, want %d", got, base+2)
	}
	restore()
	if got := runtime.GOMAXPROCS(0); got != base {
		t.Fatalf("GOMAXPROCS after restore = %d, want %d", got, base)
	}
}
