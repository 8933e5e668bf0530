package email

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Entry is one delivery attempt of a Message waiting in the outbox. A
// failed attempt is not updated: the next attempt is a new entry, due after
// the backoff.
type Entry struct {
	// Key is the store's identifier of this entry.
	Key string
	Message
	// Attempt counts from 1.
	Attempt       int
	FirstQueuedAt time.Time
	Due           time.Time
}

// Outcomes of an attempt, recorded once per attempt.
const (
	OutcomeSent    = "sent"
	OutcomeRetried = "retried"
	OutcomeDropped = "dropped"
	// OutcomeSkipped: a deferred request for an address that gets no
	// e-mail (unknown, or already verified).
	OutcomeSkipped = "skipped"
)

// ErrOutboxFull is returned by Enqueue when the outbox holds MaxPending
// e-mails: the new one is dropped (and counted), and the client's answer
// does not change.
var ErrOutboxFull = errors.New("the outbox is full")

// MaxPending bounds the e-mails waiting in the outbox.
const MaxPending = 10_000

// Delivery policy: retries back off from a few seconds to at most
// MaxBackoff, and an e-mail that could not be delivered for GiveUpAfter is
// dropped.
const (
	FirstBackoff = 2 * time.Second
	MaxBackoff   = 2 * time.Minute
	GiveUpAfter  = 24 * time.Hour
	// Lease is how long a claim on an attempt holds before another
	// instance may take the attempt over (its sender crashed): longer than
	// a send can take.
	Lease = 2 * time.Minute
)

// Backoff is the wait before attempt n+1 after attempt n failed.
func Backoff(attempt int) time.Duration {
	d := FirstBackoff
	for i := 1; i < attempt && d < MaxBackoff; i++ {
		d *= 2
	}
	return min(d, MaxBackoff)
}

// OutboxStore is the outbox as the delivery worker needs it. The store
// finds due entries without reading the whole outbox, and decides each
// claim and outcome by a unique insert, so that several instances share it.
type OutboxStore interface {
	// Enqueue stores e (due at e.Due). It returns ErrOutboxFull when
	// MaxPending e-mails are waiting.
	Enqueue(ctx context.Context, e Entry) error
	// DueEntries returns unresolved entries due at now, oldest first.
	DueEntries(ctx context.Context, now time.Time) ([]Entry, error)
	// ClaimEntry takes the attempt for this caller, for Lease; false when
	// another holds it or it is resolved.
	ClaimEntry(ctx context.Context, e Entry, now time.Time) (bool, error)
	// FinishEntry records the attempt's outcome.
	FinishEntry(ctx context.Context, e Entry, outcome string, at time.Time) error
	// OutboxStats counts what waits (as of the latest look) and how long
	// the oldest has waited.
	OutboxStats(ctx context.Context, now time.Time) (pending int, oldest time.Duration, err error)
}

// Observer counts e-mails (for metrics).
type Observer interface {
	EmailQueued()
	EmailSent()
	EmailRetried()
	EmailDropped(reason string)
	EmailOutbox(pending int, oldest time.Duration)
}

// Worker delivers the outbox in the background.
type Worker struct {
	Store  OutboxStore
	Sender Sender
	// Sealer opens the links of the entries, and seals those of retries.
	Sealer   *Sealer
	Log      *slog.Logger
	Observer Observer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Tick is how often the outbox is looked at when nothing wakes the
	// worker; 0 means a second.
	Tick time.Duration
	// Prepare completes a Deferred message (auth.Service.PrepareEmail);
	// false skips it.
	Prepare func(ctx context.Context, m Message, queuedAt time.Time) (Message, bool, error)

	wake    chan struct{}
	failing bool // the latest pass could not read the outbox
	// serverDown: the latest send failed because of the server (not of
	// one message); until a send succeeds, each pass connects for one
	// e-mail and puts the others off, and only the tick starts a pass.
	serverDown bool
	logged     map[string]bool // e-mails already warned about (once)
}

// NewWorker returns a worker; Run starts it.
func NewWorker(w Worker) *Worker {
	if w.Now == nil {
		w.Now = time.Now
	}
	if w.Tick <= 0 {
		w.Tick = time.Second
	}
	if w.Log == nil {
		w.Log = slog.New(slog.DiscardHandler)
	}
	w.wake = make(chan struct{}, 1)
	return &w
}

// Wake makes the worker look at the outbox now (an e-mail was queued by
// this process).
func (w *Worker) Wake() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Run delivers until ctx ends. Sends that have started finish (bounded by
// the sender's timeouts).
func (w *Worker) Run(ctx context.Context) {
	t := time.NewTicker(w.Tick)
	defer t.Stop()
	lastStats := time.Time{}
	for {
		w.pass(ctx)
		if now := w.Now(); now.Sub(lastStats) >= 10*time.Second {
			lastStats = now
			pending, oldest, err := w.Store.OutboxStats(ctx, now)
			if err == nil && w.Observer != nil {
				w.Observer.EmailOutbox(pending, oldest)
			}
		}
		for waiting := true; waiting; {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				waiting = false
			case <-w.wake:
				// While the mail server fails, or the outbox cannot be
				// read, only the tick starts a pass: each e-mail queued
				// meanwhile would otherwise cost an attempt of its own.
				waiting = w.serverDown || w.failing
			}
		}
	}
}

// errPutOff is the reason of an attempt not made: the mail server failed
// for an earlier e-mail of the same pass.
var errPutOff = errors.New("not attempted: the mail server failed for another e-mail of this pass")

// Pass delivers what is due now, one e-mail at a time, and reports how many
// it tried to send. While the mail server fails (it cannot be reached, TLS
// or AUTH fails: not a refusal of one message), the first e-mail of a pass
// is the one attempt; the rest are put off, each to its next attempt after
// its backoff as if it had failed too, without a connection of their own.
// A send that succeeds ends that state.
func (w *Worker) Pass(ctx context.Context) int { return w.pass(ctx) }

func (w *Worker) pass(ctx context.Context) (tried int) {
	entries, err := w.Store.DueEntries(ctx, w.Now())
	if err != nil {
		if ctx.Err() == nil && !w.failing {
			w.Log.WarnContext(ctx, "reading the outbox failed; retrying every tick", "err", err.Error())
		}
		w.failing = true
		return 0
	}
	if w.failing {
		w.failing = false
		w.Log.InfoContext(ctx, "reading the outbox works again")
	}
	probed := false // this pass has connected while the server was failing
	for _, e := range entries {
		if ctx.Err() != nil {
			break
		}
		ok, err := w.Store.ClaimEntry(ctx, e, w.Now())
		if err != nil {
			break // the store fails: the next tick tries again
		}
		if !ok {
			continue
		}
		putOff := w.serverDown && probed
		sent, serverFailed := w.deliver(ctx, e, putOff)
		if sent {
			tried++
			probed = true
			w.serverDown = serverFailed
		}
	}
	return tried
}

// deliver makes one attempt of a claimed entry (or, with putOff, puts it
// off) and records its outcome. It reports whether it tried to send, and
// whether the send failed because of the server (serverFailing).
func (w *Worker) deliver(ctx context.Context, e Entry, putOff bool) (tried, failed bool) {
	// The send is not cut short by shutdown (an interrupted send would only
	// be made again), but it ends well within the claim's lease, so that no
	// other instance takes the attempt over while it may still go out.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), Lease/2)
	defer cancel()
	attrs := []any{"email_id", e.ID, "kind", string(e.Kind), "attempt", e.Attempt}
	m, err := w.Sealer.Open(e.Message)
	if now := w.Now(); now.Sub(e.FirstQueuedAt) >= GiveUpAfter {
		// Put off, or left unopened, until too late to send.
		reason := "failed_24h"
		if err != nil {
			reason = "unreadable"
		}
		w.Log.ErrorContext(ctx, "e-mail dropped", append(attrs, "reason", reason)...)
		w.finish(ctx, e, OutcomeDropped, reason, now, attrs)
		return false, false
	}
	// stored: the retry carries the entry's message as it was stored (put
	// off, or not opened), never one this worker sealed from it.
	stored := false
	switch {
	case putOff:
		m, err, stored = e.Message, errPutOff, true
	case err != nil:
		// Sealed under a key this instance does not hold (another
		// instance, or a key rotation, may): put off as it is, for an
		// instance that can open it; dropped after GiveUpAfter. A link
		// stored unsealed opens nowhere: it is never sent.
		w.once(e.ID, func() {
			w.Log.WarnContext(ctx, "cannot open the e-mail's link with this instance's keys; leaving it for another attempt", attrs...)
		})
		m, stored = e.Message, true
	case m.Deferred:
		if w.Prepare == nil {
			err = errors.New("no preparer for a deferred e-mail")
			break
		}
		p, ok, perr := w.Prepare(sctx, m, e.FirstQueuedAt)
		switch {
		case perr != nil:
			err = fmt.Errorf("preparing: %w", perr)
		case !ok:
			w.finish(ctx, e, OutcomeSkipped, "", w.Now(), attrs)
			return false, false
		default:
			// The retries, if any, carry the prepared message: one link.
			m = p
		}
	}
	if err == nil {
		tried = true
		err = w.Sender.Send(sctx, m)
		failed = serverFailing(err)
	}
	now := w.Now()
	outcome, reason := OutcomeSent, ""
	switch {
	case err == nil:
		w.Log.InfoContext(ctx, "e-mail sent", attrs...)
	case IsPermanent(err):
		outcome, reason = OutcomeDropped, "refused"
	case now.Sub(e.FirstQueuedAt) >= GiveUpAfter:
		outcome, reason = OutcomeDropped, "failed_24h"
	default:
		outcome = OutcomeRetried
		next := e
		next.Key = ""
		next.Attempt++
		next.Due = now.Add(Backoff(e.Attempt))
		var qerr error
		if stored {
			next.Message = e.Message
		} else {
			next.Message, qerr = w.Sealer.Seal(m)
		}
		if qerr == nil {
			qerr = w.Store.Enqueue(context.WithoutCancel(ctx), next)
		}
		switch {
		case errors.Is(qerr, ErrOutboxFull):
			outcome, reason = OutcomeDropped, "outbox_full"
		case qerr != nil:
			// The attempt stays unresolved: after its lease it is made again.
			w.Log.WarnContext(ctx, "queueing an e-mail's retry failed", append(attrs, "err", qerr.Error())...)
			return tried, failed
		case errors.Is(err, errPutOff):
			w.Log.DebugContext(ctx, "e-mail put off", append(attrs, "retry_in", Backoff(e.Attempt).String())...)
		default:
			w.Log.WarnContext(ctx, "e-mail not delivered; retrying", append(attrs, "err", err.Error(), "retry_in", Backoff(e.Attempt).String())...)
		}
	}
	if outcome == OutcomeDropped {
		w.Log.ErrorContext(ctx, "e-mail dropped", append(attrs, "reason", reason, "err", err.Error())...)
	}
	w.finish(ctx, e, outcome, reason, now, attrs)
	return tried, failed
}

// once runs log the first time this worker meets the e-mail id (a bounded
// memory: it forgets past a thousand).
func (w *Worker) once(id string, log func()) {
	if w.logged == nil || len(w.logged) > 1000 {
		w.logged = map[string]bool{}
	}
	if !w.logged[id] {
		w.logged[id] = true
		log()
	}
}

// finish records the attempt's outcome and counts it.
func (w *Worker) finish(ctx context.Context, e Entry, outcome, reason string, at time.Time, attrs []any) {
	if err := w.Store.FinishEntry(context.WithoutCancel(ctx), e, outcome, at); err != nil {
		w.Log.WarnContext(ctx, "recording an e-mail's outcome failed", append(attrs, "err", err.Error())...)
	}
	if w.Observer == nil {
		return
	}
	switch outcome {
	case OutcomeSent:
		w.Observer.EmailSent()
	case OutcomeRetried:
		w.Observer.EmailRetried()
	case OutcomeDropped:
		w.Observer.EmailDropped(reason)
	}
}

// Queue is the Mailer the use cases call: it stores each e-mail in the
// outbox, due at once, and wakes this process's worker. The outbox being
// full drops the e-mail (logged and counted); nothing waits for SMTP.
type Queue struct {
	Store OutboxStore
	// Sealer seals each link before it is stored.
	Sealer   *Sealer
	Worker   *Worker // may be nil
	Observer Observer
	Log      *slog.Logger
	Now      func() time.Time
}

// Queue stores m in the outbox.
func (q *Queue) Queue(ctx context.Context, m Message) error {
	now := time.Now
	if q.Now != nil {
		now = q.Now
	}
	if m.ID == "" {
		m.ID = NewID()
	}
	t := now().UTC()
	m, err := q.Sealer.Seal(m)
	if err == nil {
		err = q.Store.Enqueue(ctx, Entry{Message: m, Attempt: 1, FirstQueuedAt: t, Due: t})
	}
	if err != nil {
		if q.Observer != nil {
			reason := "not_queued"
			if errors.Is(err, ErrOutboxFull) {
				reason = "outbox_full"
			}
			q.Observer.EmailDropped(reason)
		}
		return err
	}
	if q.Observer != nil {
		q.Observer.EmailQueued()
	}
	if q.Worker != nil {
		q.Worker.Wake()
	}
	return nil
}

// NewID returns a random e-mail id (128 bits, hex).
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
