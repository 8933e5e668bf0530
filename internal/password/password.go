// Package password hashes and checks passwords with bcrypt within bounds:
// at most a fixed number at once, a bounded queue that waits at most
// MaxWait, each hash on a low-priority thread of its own so that a login
// flood does not slow other requests, and a dummy hash that makes an
// unknown e-mail cost as much as a wrong password.
package password

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// MaxWait is the longest a hash waits for a slot.
const MaxWait = 5 * time.Second

// ErrBusy is returned when too many passwords are being hashed: beyond the
// queue, after waiting MaxWait for a slot, or once the caller has gone.
var ErrBusy = errors.New("too many passwords are being hashed")

// Hasher hashes and checks passwords with bcrypt at a fixed cost, at most
// `concurrency` at once with up to `queue` more waiting, so that a flood of
// logins answers RATE_LIMITED fast instead of slowing every request.
//
// An unknown e-mail at login is checked against a dummy hash of the same
// cost, so that it takes as long as a wrong password.
type Hasher struct {
	cost    int
	dummy   []byte
	slots   chan struct{}
	queue   int64
	waiting atomic.Int64
	maxWait time.Duration
}

// NewHasher returns a Hasher for the given bcrypt cost and bounds. It
// computes one hash up front (the dummy used for unknown e-mails).
func NewHasher(cost, concurrency, queue int) (*Hasher, error) {
	if cost < bcrypt.MinCost || cost > bcrypt.MaxCost {
		return nil, fmt.Errorf("bcrypt cost %d out of range", cost)
	}
	if concurrency < 1 || queue < 0 {
		return nil, fmt.Errorf("bcrypt concurrency %d and queue %d out of range", concurrency, queue)
	}
	dummy, err := bcrypt.GenerateFromPassword([]byte("dummy password for unknown e-mails"), cost)
	if err != nil {
		return nil, fmt.Errorf("computing dummy hash: %w", err)
	}
	return &Hasher{
		cost:    cost,
		dummy:   dummy,
		slots:   make(chan struct{}, concurrency),
		queue:   int64(queue),
		maxWait: MaxWait,
	}, nil
}

// InFlight returns how many hashes are running.
func (h *Hasher) InFlight() int { return len(h.slots) }

// Waiting returns how many hashes wait for a slot.
func (h *Hasher) Waiting() int { return int(h.waiting.Load()) }

// acquire takes a hashing slot: at once if one is free, else after waiting
// in the queue (if it has room) for at most maxWait.
func (h *Hasher) acquire(ctx context.Context) error {
	select {
	case h.slots <- struct{}{}:
		return nil
	default:
	}
	if h.waiting.Add(1) > h.queue {
		h.waiting.Add(-1)
		return ErrBusy
	}
	defer h.waiting.Add(-1)
	t := time.NewTimer(h.maxWait)
	defer t.Stop()
	select {
	case h.slots <- struct{}{}:
		return nil
	case <-t.C:
		return ErrBusy
	case <-ctx.Done():
		return ErrBusy // the client is gone; nothing to log
	}
}

func (h *Hasher) release() { <-h.slots }

// Hash returns the bcrypt hash of password. The caller has checked that the
// password is at most 72 bytes.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer h.release()
	var b []byte
	var err error
	inBackground(func() { b, err = bcrypt.GenerateFromPassword([]byte(password), h.cost) })
	if err != nil {
		return "", fmt.Errorf("hashing password: %w", err)
	}
	return string(b), nil
}

// Check reports whether password matches hash. An empty hash (unknown user)
// is checked against the dummy hash and never matches. The caller holds a
// slot (see Slot).
func (h *Hasher) check(hash, password string) (bool, error) {
	if hash == "" {
		inBackground(func() { _ = bcrypt.CompareHashAndPassword(h.dummy, []byte(password)) })
		return false, nil
	}
	var err error
	inBackground(func() { err = bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) })
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, bcrypt.ErrMismatchedHashAndPassword):
		return false, nil
	default:
		return false, fmt.Errorf("checking password: %w", err)
	}
}

// inBackground runs f on an OS thread of its own at the lowest priority, and
// waits for it. A login flood then takes only CPU time that nothing else
// wants: other requests' threads run first. (ReserveProcs gives these
// threads scheduler places of their own while they run, so that they do
// not take the places other work needs either.) The goroutine exits still
// locked to its thread, so the runtime discards the thread and its priority
// instead of reusing it.
func inBackground(f func()) {
	hashStarting()
	defer hashDone()
	done := make(chan any, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: see above
		lowerThreadPriority()
		defer func() { done <- recover() }()
		f()
	}()
	if p := <-done; p != nil {
		panic(p) // in the caller's goroutine, where the server recovers it
	}
}

// Slot is a held hashing slot, for work that must happen between taking a
// slot and comparing (the login throttle counts the attempt only once the
// compare is sure to run).
type Slot struct{ h *Hasher }

// Slot waits for a hashing slot (see Hash for the bounds).
func (h *Hasher) Slot(ctx context.Context) (*Slot, error) {
	if err := h.acquire(ctx); err != nil {
		return nil, err
	}
	return &Slot{h: h}, nil
}

// Check compares in the held slot and releases it.
func (s *Slot) Check(hash, password string) (bool, error) {
	defer s.Release()
	return s.h.check(hash, password)
}

// Release gives the slot back; releasing twice is a no-op.
func (s *Slot) Release() {
	if s.h != nil {
		s.h.release()
		s.h = nil
	}
}

// ReserveProcs gives the hashing threads scheduler places of their own
// while hashes run: GOMAXPROCS rises by the number of hashing slots when a
// hash starts, and returns when none has run for ProcsIdle. Hashes run on
// low-priority threads of their own (inBackground); with places of their
// own a login flood cannot occupy the places other requests need, while the
// OS gives the CPU to those requests first. Raised all the time, the spare
// places made every garbage collection cost several times more on a
// machine with no spare cores (its stop-the-world phases wait for threads
// the OS is not running, and idle places run mark workers that take CPU
// from the database): `me` spent a quarter more CPU at GOGC=100
// (BENCHMARKS.md). (Setting GOMAXPROCS stops the runtime from following
// later changes of a container's CPU limit; the value read here already
// follows the limit at start.) It returns a function that restores the
// setting and ends the reservation.
func ReserveProcs(slots int) (restore func()) {
	procs.mu.Lock()
	defer procs.mu.Unlock()
	procs.reserved, procs.base, procs.slots = true, runtime.GOMAXPROCS(0), slots
	return func() {
		procs.mu.Lock()
		defer procs.mu.Unlock()
		if procs.lower != nil {
			procs.lower.Stop()
		}
		if procs.raised {
			runtime.GOMAXPROCS(procs.base)
			procs.raised = false
		}
		procs.reserved = false
	}
}

// ProcsIdle is how long GOMAXPROCS stays raised after the last hash: a
// login flood keeps it raised instead of changing it (a stop-the-world)
// twice per hash.
var ProcsIdle = time.Second

// procs is the reservation of ReserveProcs.
var procs struct {
	mu       sync.Mutex
	reserved bool
	base     int
	slots    int
	running  int
	raised   bool
	lower    *time.Timer
}

// hashStarting raises GOMAXPROCS, if reserved and not raised yet.
func hashStarting() {
	procs.mu.Lock()
	defer procs.mu.Unlock()
	procs.running++
	if procs.lower != nil {
		procs.lower.Stop()
	}
	if procs.reserved && !procs.raised {
		runtime.GOMAXPROCS(procs.base + procs.slots)
		procs.raised = true
	}
}

// hashDone lowers GOMAXPROCS ProcsIdle after the last running hash.
func hashDone() {
	procs.mu.Lock()
	defer procs.mu.Unlock()
	procs.running--
	if procs.running > 0 || !procs.raised {
		return
	}
	if procs.lower == nil {
		procs.lower = time.AfterFunc(ProcsIdle, lowerProcs)
	} else {
		procs.lower.Reset(ProcsIdle)
	}
}

func lowerProcs() {
	procs.mu.Lock()
	defer procs.mu.Unlock()
	if procs.running == 0 && procs.raised && procs.reserved {
		runtime.GOMAXPROCS(procs.base)
		procs.raised = false
	}
}
