package password_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gqlauth/gqlauth/internal/password"
)

func TestHashAndCheck(t *testing.T) {
	h, err := password.NewHasher(4, 2, 4)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	hash, err := h.Hash(ctx, "correct horse battery")
	if err != nil || !strings.HasPrefix(hash, "$2a$04$") {
		t.Fatalf("hash = %q, %v", hash, err)
	}
	for _, tc := range []struct {
		name, hash, password string
		want                 bool
	}{
		{"OK", hash, "correct horse battery", true},
		{"Wrong", hash, "wrong horse battery", false},
		{"UnknownUserNeverMatches", "", "correct horse battery", false},
		{"UnknownUserDummyPassword", "", "dummy password for unknown e-mails", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			slot, err := h.Slot(ctx)
			if err != nil {
				t.Fatal(err)
			}
			ok, err := slot.Check(tc.hash, tc.password)
			if err != nil || ok != tc.want {
				t.Fatalf("Check = %v, %v; want %v", ok, err, tc.want)
			}
			slot.Release() // after Check, a no-op
			if h.InFlight() != 0 {
				t.Fatalf("%d slots still held", h.InFlight())
			}
		})
	}
	if _, err := password.NewHasher(3, 1, 0); err == nil {
		t.Fatal("a bcrypt cost below 4 was accepted")
	}
}

// TestBounds: beyond the slots and the queue a hash is refused at once;
// a waiting one gives up when its caller goes.
func TestBounds(t *testing.T) {
	h, err := password.NewHasher(4, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	held, err := h.Slot(ctx) // the only slot
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	queued := make(chan error, 1)
	wg.Go(func() { // waits in the one queue place
		_, err := h.Hash(ctx, "queued password")
		queued <- err
	})
	deadline := time.Now().Add(5 * time.Second)
	for h.Waiting() != 1 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	if _, err := h.Hash(ctx, "one too many"); !errors.Is(err, password.ErrBusy) {
		t.Fatalf("beyond the queue: %v, want ErrBusy", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("the refusal took %v", took)
	}
	held.Release()
	wg.Wait()
	if err := <-queued; err != nil {
		t.Fatalf("the queued hash: %v", err)
	}

	held, _ = h.Slot(ctx)
	gone, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := h.Slot(gone); !errors.Is(err, password.ErrBusy) {
		t.Fatalf("a caller that went away: %v, want ErrBusy", err)
	}
	held.Release()
}
