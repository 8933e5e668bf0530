package email_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gqlauth/gqlauth/internal/email"
	"github.com/gqlauth/gqlauth/internal/mongostore"
	"github.com/gqlauth/gqlauth/internal/smtptest"
	"github.com/gqlauth/gqlauth/internal/storetest"
)

// counts records what the queue and the worker counted.
type counts struct {
	mu sync.Mutex
	m  map[string]int
}

func (c *counts) add(k string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]int{}
	}
	c.m[k]++
}

func (c *counts) get(k string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[k]
}

func (c *counts) EmailQueued()                   { c.add("queued") }
func (c *counts) EmailSent()                     { c.add("sent") }
func (c *counts) EmailRetried()                  { c.add("retried") }
func (c *counts) EmailDropped(reason string)     { c.add("dropped " + reason) }
func (c *counts) EmailOutbox(int, time.Duration) {}

// TestOutboxKeepsLinksSealed: the queue stores the link sealed, the worker
// sends it in clear, and an e-mail whose link no key opens is dropped
// (counted as unreadable) rather than sent or retried.
func TestOutboxKeepsLinksSealed(t *testing.T) {
	ctx := context.Background()
	store := storetest.Open(t, mongostore.Options{})
	srv := smtptest.Start(t, smtptest.Options{})
	sender, err := email.NewSMTP(email.SMTPConfig{Host: "127.0.0.1", Port: srv.Port, TLS: "starttls", CAFile: srv.CAFile, Timeout: 5 * time.Second},
		"no-reply@acme.example", templates(t, ""))
	if err != nil {
		t.Fatal(err)
	}
	c := &counts{}
	ours, theirs := sealer(t, 1), sealer(t, 2)
	w := email.NewWorker(email.Worker{Store: store, Sender: sender, Sealer: ours, Observer: c})
	q := &email.Queue{Store: store, Sealer: ours, Observer: c}

	m := message()
	if err := q.Queue(ctx, m); err != nil {
		t.Fatal(err)
	}
	entries, err := store.DueEntries(ctx, time.Now().Add(time.Second))
	if err != nil || len(entries) != 1 {
		t.Fatalf("%d due, %v", len(entries), err)
	}
	if l := entries[0].Link; l == m.Link || strings.Contains(l, "#token=") {
		t.Fatalf("the outbox holds the link %q", l)
	}
	if n := w.Pass(ctx); n != 1 {
		t.Fatalf("%d attempts", n)
	}
	if got := srv.Wait(t, 1, 5*time.Second)[0]; !strings.Contains(got.Text, m.Link) || !strings.Contains(got.HTML, m.Link) {
		t.Fatalf("the e-mail does not carry the link in clear:\n%s", got.Text)
	}

	// Sealed under a key this server does not hold (its signing key was
	// replaced without keeping the old private key).
	other := &email.Queue{Store: store, Sealer: theirs}
	foreign := message()
	foreign.ID = "another-mail"
	if err := other.Queue(ctx, foreign); err != nil {
		t.Fatal(err)
	}
	w.Pass(ctx)
	if c.get("dropped unreadable") != 1 || c.get("sent") != 1 || c.get("retried") != 0 {
		t.Fatalf("counted %v", c.m)
	}
	if entries, err := store.DueEntries(ctx, time.Now().Add(email.MaxBackoff+time.Minute)); err != nil || len(entries) != 0 {
		t.Fatalf("%d still due after the drop, %v", len(entries), err)
	}
	if n := len(srv.Messages()); n != 1 {
		t.Fatalf("%d delivered, want 1", n)
	}
}

// TestQueueFullIsCounted: an e-mail refused at the outbox's bound is
// counted as outbox_full (not as a store failure) and the caller learns it.
func TestQueueFullIsCounted(t *testing.T) {
	store := storetest.Open(t, mongostore.Options{OutboxMax: 1})
	c := &counts{}
	q := &email.Queue{Store: store, Sealer: sealer(t, 1), Observer: c}
	if err := q.Queue(context.Background(), message()); err != nil {
		t.Fatal(err)
	}
	if err := q.Queue(context.Background(), message()); !errors.Is(err, email.ErrOutboxFull) {
		t.Fatalf("the second e-mail: %v, want ErrOutboxFull", err)
	}
	if c.get("queued") != 1 || c.get("dropped outbox_full") != 1 || c.get("dropped not_queued") != 0 {
		t.Fatalf("counted %v", c.m)
	}
}

// TestPassStopsWhileTheServerIsDown: with the mail server down, a pass
// tries one e-mail, not all of them, and leaves the others due; once the
// server is back, every one is delivered, once.
func TestPassStopsWhileTheServerIsDown(t *testing.T) {
	ctx := context.Background()
	store := storetest.Open(t, mongostore.Options{})
	srv := smtptest.Start(t, smtptest.Options{})
	srv.Stop()
	sender, err := email.NewSMTP(email.SMTPConfig{Host: "127.0.0.1", Port: srv.Port, TLS: "starttls", CAFile: srv.CAFile, Timeout: 5 * time.Second},
		"no-reply@acme.example", templates(t, ""))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	offset := time.Duration(0)
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return time.Now().Add(offset) }
	c := &counts{}
	s := sealer(t, 1)
	w := email.NewWorker(email.Worker{Store: store, Sender: sender, Sealer: s, Observer: c, Now: now})
	q := &email.Queue{Store: store, Sealer: s, Observer: c, Now: now}
	for range 5 {
		m := message()
		m.ID = ""
		if err := q.Queue(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	if n := w.Pass(ctx); n != 1 || c.get("retried") != 1 {
		t.Fatalf("a pass with the server down made %d attempts (%v), want 1", n, c.m)
	}
	srv.Restart(t)
	if n := w.Pass(ctx); n != 4 || c.get("sent") != 4 {
		t.Fatalf("once the server is back: %d attempts (%v), want the 4 untouched", n, c.m)
	}
	mu.Lock()
	offset += email.FirstBackoff + time.Second
	mu.Unlock()
	if n := w.Pass(ctx); n != 1 || c.get("sent") != 5 {
		t.Fatalf("the retry: %d attempts (%v)", n, c.m)
	}
	if got := len(srv.Wait(t, 5, 5*time.Second)); got != 5 {
		t.Fatalf("%d delivered, want 5", got)
	}

	// One that waited out a whole day without an attempt is not sent late.
	m := message()
	m.ID = ""
	if err := q.Queue(ctx, m); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	offset += email.GiveUpAfter
	mu.Unlock()
	if n := w.Pass(ctx); n != 1 || c.get("dropped failed_24h") != 1 || c.get("sent") != 5 {
		t.Fatalf("a day-old e-mail: %d attempts (%v), want dropped unsent", n, c.m)
	}
}
