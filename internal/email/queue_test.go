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

// clock is a settable clock for the worker and the queue.
type clock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return time.Now().Add(c.offset) }

func (c *clock) Advance(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.offset += d }

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
	clk := &clock{}
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
// tries one e-mail and puts the others off to their next attempt, without
// connecting for them; once the server is back, each is delivered, once.
// One that waited out a whole day unsent is dropped, not sent late.
func TestPassStopsWhileTheServerIsDown(t *testing.T) {
	ctx := context.Background()
	store := storetest.Open(t, mongostore.Options{})
	srv := smtptest.Start(t, smtptest.Options{})
	srv.Stop()
	clk := &clock{}
	c := &counts{}
	s := sealer(t, 1)
	w := email.NewWorker(email.Worker{Store: store, Sender: smtpSender(t, srv), Sealer: s, Observer: c, Now: clk.Now})
	q := &email.Queue{Store: store, Sealer: s, Observer: c, Now: clk.Now}
	for range 5 {
		if err := q.Queue(ctx, newMessage()); err != nil {
			t.Fatal(err)
		}
	}
	if n := w.Pass(ctx); n != 1 || c.get("retried") != 5 {
		t.Fatalf("a pass with the server down tried %d (%v), want 1 tried and 5 due again", n, c.m)
	}
	srv.Restart(t)
	if n := w.Pass(ctx); n != 0 {
		t.Fatalf("%d tried before their backoff", n)
	}
	clk.Advance(email.FirstBackoff + time.Second)
	if n := w.Pass(ctx); n != 5 || c.get("sent") != 5 {
		t.Fatalf("once the server is back: %d tried (%v), want 5 sent", n, c.m)
	}
	if got := len(srv.Wait(t, 5, 5*time.Second)); got != 5 {
		t.Fatalf("%d delivered, want 5", got)
	}

	if err := q.Queue(ctx, newMessage()); err != nil {
		t.Fatal(err)
	}
	clk.Advance(email.GiveUpAfter)
	if n := w.Pass(ctx); n != 0 || c.get("dropped failed_24h") != 1 || c.get("sent") != 5 {
		t.Fatalf("a day-old e-mail: %d tried (%v), want dropped unsent", n, c.m)
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
	for range 20 {
		if err := q.Queue(ctx, newMessage()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	cancel()
	<-done
	if n := sender.count(); n != 1 {
		t.Fatalf("%d sends tried for 20 e-mails queued while the server was down, want 1 until the next tick", n)
	}
}
