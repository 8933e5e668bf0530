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

// clock is a clock for the worker and the queue that moves only when the
// test advances it.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Advance(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

func smtpSender(t *testing.T, srv *smtptest.Server) email.Sender {
	t.Helper()
	sender, err := email.NewSMTP(email.SMTPConfig{Host: "127.0.0.1", Port: srv.Port, TLS: "starttls", CAFile: srv.CAFile, Timeout: 5 * time.Second},
		"no-reply@acme.example", templates(t, ""))
	if err != nil {
		t.Fatal(err)
	}
	return sender
}

func newMessage() email.Message {
	m := message()
	m.ID = email.NewID()
	return m
}

// TestOutboxKeepsLinksSealed: the queue stores the link sealed and the
// worker sends it in clear. An instance without the key it was sealed
// under leaves it, still sealed, for one that has the key (it does not
// drop what another instance could send); what no instance can open is
// dropped as unreadable once GiveUpAfter has passed.
func TestOutboxKeepsLinksSealed(t *testing.T) {
	ctx := context.Background()
	store := storetest.Open(t, mongostore.Options{})
	srv := smtptest.Start(t, smtptest.Options{})
	clk := newClock()
	c := &counts{}
	ours, theirs := sealer(t, 1), sealer(t, 2)
	w := email.NewWorker(email.Worker{Store: store, Sender: smtpSender(t, srv), Sealer: ours, Observer: c, Now: clk.Now})
	q := &email.Queue{Store: store, Sealer: ours, Observer: c, Now: clk.Now}

	m := newMessage()
	if err := q.Queue(ctx, m); err != nil {
		t.Fatal(err)
	}
	entries, err := store.DueEntries(ctx, clk.Now().Add(time.Second))
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

	// Sealed by another instance, under a key this one does not hold.
	other := newMessage()
	if err := (&email.Queue{Store: store, Sealer: theirs, Now: clk.Now}).Queue(ctx, other); err != nil {
		t.Fatal(err)
	}
	if n := w.Pass(ctx); n != 0 || c.get("retried") != 1 || c.get("dropped unreadable") != 0 {
		t.Fatalf("an e-mail this instance cannot open: %d sent, counted %v; want it left for another", n, c.m)
	}
	clk.Advance(email.FirstBackoff + time.Second)
	theirWorker := email.NewWorker(email.Worker{Store: store, Sender: smtpSender(t, srv), Sealer: theirs, Now: clk.Now})
	if n := theirWorker.Pass(ctx); n != 1 {
		t.Fatalf("the instance with the key: %d sent", n)
	}
	if got := srv.Wait(t, 2, 5*time.Second)[1]; !strings.Contains(got.Text, other.Link) {
		t.Fatalf("the other instance's e-mail:\n%s", got.Text)
	}

	// Sealed under a key nobody holds any more.
	lost := newMessage()
	if err := (&email.Queue{Store: store, Sealer: sealer(t, 3), Now: clk.Now}).Queue(ctx, lost); err != nil {
		t.Fatal(err)
	}
	w.Pass(ctx)
	clk.Advance(email.GiveUpAfter)
	w.Pass(ctx)
	if c.get("dropped unreadable") != 1 || len(srv.Messages()) != 2 {
		t.Fatalf("counted %v, %d delivered", c.m, len(srv.Messages()))
	}
	if entries, err := store.DueEntries(ctx, clk.Now().Add(email.MaxBackoff+time.Minute)); err != nil || len(entries) != 0 {
		t.Fatalf("%d still due after the drop, %v", len(entries), err)
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
// connects for one e-mail and puts the others off to their next attempt;
// the server stays taken for down until a send succeeds, so a later pass
// also connects once, whatever it holds. Once the server is back, each
// e-mail is delivered, once. One that waited out a whole day unsent is
// dropped, not sent late.
func TestPassStopsWhileTheServerIsDown(t *testing.T) {
	ctx := context.Background()
	store := storetest.Open(t, mongostore.Options{})
	srv := smtptest.Start(t, smtptest.Options{})
	srv.Stop()
	clk := newClock()
	c := &counts{}
	s := sealer(t, 1)
	sender := &countingSender{Sender: smtpSender(t, srv)}
	w := email.NewWorker(email.Worker{Store: store, Sender: sender, Sealer: s, Observer: c, Now: clk.Now})
	q := &email.Queue{Store: store, Sealer: s, Observer: c, Now: clk.Now}
	for range 5 {
		if err := q.Queue(ctx, newMessage()); err != nil {
			t.Fatal(err)
		}
	}
	if n := w.Pass(ctx); n != 1 || c.get("retried") != 5 {
		t.Fatalf("a pass with the server down tried %d (%v), want 1 tried and 5 due again", n, c.m)
	}
	if n := w.Pass(ctx); n != 0 {
		t.Fatalf("%d tried before their backoff", n)
	}
	for range 3 {
		if err := q.Queue(ctx, newMessage()); err != nil {
			t.Fatal(err)
		}
	}
	if n := w.Pass(ctx); n != 1 || c.get("retried") != 8 {
		t.Fatalf("a later pass, the server still down: %d tried (%v), want 1", n, c.m)
	}
	srv.Restart(t)
	clk.Advance(email.Backoff(2) + time.Second)
	if n := w.Pass(ctx); n != 8 || c.get("sent") != 8 {
		t.Fatalf("once the server is back: %d tried (%v), want 8 sent", n, c.m)
	}
	if got := len(srv.Wait(t, 8, 5*time.Second)); got != 8 || sender.count() != 10 {
		t.Fatalf("%d delivered in %d sends, want 8 in 10", got, sender.count())
	}

	if err := q.Queue(ctx, newMessage()); err != nil {
		t.Fatal(err)
	}
	clk.Advance(email.GiveUpAfter)
	if n := w.Pass(ctx); n != 0 || c.get("dropped failed_24h") != 1 || c.get("sent") != 8 {
		t.Fatalf("a day-old e-mail: %d tried (%v), want dropped unsent", n, c.m)
	}
}

// TestOneRefusedMessageStopsNothing: a server that answers but refuses one
// recipient for now (452) is not a server that is down: the other e-mails
// of the pass are sent, and the refused one is retried.
func TestOneRefusedMessageStopsNothing(t *testing.T) {
	ctx := context.Background()
	store := storetest.Open(t, mongostore.Options{})
	srv := smtptest.Start(t, smtptest.Options{})
	srv.RefuseRecipient("full@example.com", 452)
	clk := newClock()
	c := &counts{}
	s := sealer(t, 1)
	w := email.NewWorker(email.Worker{Store: store, Sender: smtpSender(t, srv), Sealer: s, Observer: c, Now: clk.Now})
	q := &email.Queue{Store: store, Sealer: s, Now: clk.Now}
	for _, to := range []string{"full@example.com", "a@example.com", "b@example.com"} {
		m := newMessage()
		m.To = to
		if err := q.Queue(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	if n := w.Pass(ctx); n != 3 || c.get("sent") != 2 || c.get("retried") != 1 {
		t.Fatalf("%d tried (%v), want 3 tried, 2 sent and the refused one retried", n, c.m)
	}
}

// TestUnsealedLinkNeverSent: an entry whose link is stored in clear (not
// written by this server: a hand edit, or planted) opens nowhere, so it is
// never sent, nor sealed by the worker and sent later; after a day it is
// dropped as unreadable.
func TestUnsealedLinkNeverSent(t *testing.T) {
	ctx := context.Background()
	store := storetest.Open(t, mongostore.Options{})
	srv := smtptest.Start(t, smtptest.Options{})
	clk := newClock()
	c := &counts{}
	w := email.NewWorker(email.Worker{Store: store, Sender: smtpSender(t, srv), Sealer: sealer(t, 1), Observer: c, Now: clk.Now})
	planted := message()
	planted.Link = "https://evil.example/reset#token=phish"
	if err := store.Enqueue(ctx, email.Entry{Message: planted, Attempt: 1, FirstQueuedAt: clk.Now(), Due: clk.Now()}); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		w.Pass(ctx)
		clk.Advance(email.MaxBackoff + time.Second)
	}
	clk.Advance(email.GiveUpAfter)
	w.Pass(ctx)
	if n := len(srv.Messages()); n != 0 || c.get("dropped unreadable") != 1 {
		t.Fatalf("%d delivered (%v), want none and dropped unreadable", n, c.m)
	}
}

// countingSender counts the sends it is asked for.
type countingSender struct {
	email.Sender
	mu sync.Mutex
	n  int
}

func (s *countingSender) Send(ctx context.Context, m email.Message) error {
	s.mu.Lock()
	s.n++
	s.mu.Unlock()
	return s.Sender.Send(ctx, m)
}

func (s *countingSender) count() int { s.mu.Lock(); defer s.mu.Unlock(); return s.n }

// TestWakesWaitWhileTheServerIsDown: while the mail server fails, e-mails
// queued one after another do not each start a pass (and a connection):
// only the worker's tick does.
func TestWakesWaitWhileTheServerIsDown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store := storetest.Open(t, mongostore.Options{})
	srv := smtptest.Start(t, smtptest.Options{})
	srv.Stop()
	sender := &countingSender{Sender: smtpSender(t, srv)}
	s := sealer(t, 1)
	w := email.NewWorker(email.Worker{Store: store, Sender: sender, Sealer: s, Tick: time.Hour})
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	q := &email.Queue{Store: store, Sealer: s, Worker: w}
	if err := q.Queue(ctx, newMessage()); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); sender.count() == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the first e-mail was never tried")
		}
	}
	time.Sleep(100 * time.Millisecond) // its failure recorded
	for range 20 {
		if err := q.Queue(ctx, newMessage()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	cancel()
	<-done
	if n := sender.count(); n != 1 {
		t.Fatalf("%d sends tried for 21 e-mails queued while the server was down, want 1 until the next tick", n)
	}
}
