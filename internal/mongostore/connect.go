package mongostore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Connect opens the store and prepares the database as the server needs it
// at start-up: a ping, the schema (EnsureSchema), then o.Prepare. Then the
// store is ready (Ready). It also starts the sweep (RunSweeper) and, for a
// database that is down, the retries; Close stops them.
//
// A database that does not answer yet (refused, timed out, a name that does
// not resolve) is waited for, when o.WaitWhenDown is set: Connect returns
// the store, not ready, and prepares it in the background with capped
// exponential backoff. A peer that answers but is not MongoDB, or refuses
// the credentials, is an error, and so is any failure without
// WaitWhenDown (the embedded database).
func Connect(ctx context.Context, o Options) (*Store, error) {
	s, err := Open(o)
	if err != nil {
		return nil, err
	}
	err = s.prepare(ctx)
	var probeErr error
	if err != nil && o.WaitWhenDown {
		// The driver reports a peer that is not MongoDB as a timeout or as
		// a garbled reply, depending on what the peer does: ask it directly.
		probeErr = ProbeWire(ctx, o.URI, o.Timeout)
	}
	switch {
	case err == nil:
	case !o.WaitWhenDown:
		err = fmt.Errorf("preparing the database: %w", err)
	case probeErr != nil:
		err = fmt.Errorf("not a MongoDB server: %s", oneLine(probeErr))
	case !IsDown(err):
		err = fmt.Errorf("the database refused us (check the address, user and password): %s", oneLine(err))
	default:
		s.log.WarnContext(ctx, "database is not reachable yet; serving, not ready, and retrying", "err", err.Error())
		s.background(s.retryPrepare)
		err = nil
	}
	if err != nil {
		_ = s.Close(context.Background())
		return nil, err
	}
	s.background(func(ctx context.Context) { s.RunSweeper(ctx, SweepFirst, SweepInterval) })
	return s, nil
}

// background runs f until Close.
func (s *Store) background(f func(context.Context)) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f(s.bg)
	}()
}

// prepare pings the database and creates the schema, within twice the
// database timeout; then the store is ready.
func (s *Store) prepare(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*s.timeout)
	defer cancel()
	if err := s.Ping(ctx); err != nil {
		return err
	}
	if err := s.EnsureSchema(ctx); err != nil {
		return err
	}
	if s.prepareHook != nil {
		if err := s.prepareHook(ctx); err != nil {
			return err
		}
	}
	s.ready.Store(true)
	return nil
}

// retryPrepare retries prepare with capped exponential backoff until it
// succeeds or ctx ends.
func (s *Store) retryPrepare(ctx context.Context) {
	delay := 500 * time.Millisecond
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		err := s.prepare(ctx)
		if err == nil {
			s.log.InfoContext(ctx, "database is reachable; ready")
			return
		}
		s.log.WarnContext(ctx, "database still not ready", "err", err.Error(), "retry_in", delay.String())
		delay = min(2*delay, 30*time.Second)
	}
}

// errNotPrepared is Ready's answer before the schema is prepared.
var errNotPrepared = errors.New("database not prepared")

// Ready reports whether the store can serve: the database is prepared and
// answers a ping.
func (s *Store) Ready(ctx context.Context) error {
	if !s.ready.Load() {
		return errNotPrepared
	}
	return s.Ping(ctx)
}

// oneLine flattens an error message (the driver's can span lines), so that
// a start-up failure is one line.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}
