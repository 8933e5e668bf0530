package email

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"time"
)

// Options configure Start.
type Options struct {
	// SMTP is the server to send through; an empty Host selects the
	// development mailbox under MailboxDir.
	SMTP         SMTPConfig
	From         string
	TemplatesDir string
	MailboxDir   string
	// Production: the mailbox (no SMTP host) is warned about at start, and
	// its links are not logged. Outside production each mailbox e-mail's
	// link is logged, with the same link on OwnBase, this server's URL.
	Production        bool
	LinkBase, OwnBase string

	Store OutboxStore
	// Keys derives the keys that seal the links the outbox keeps (the
	// token manager: from the signing key and the previous private keys).
	Keys interface {
		DeriveKeys(info string) ([][]byte, error)
	}
	Observer Observer
	Log      *slog.Logger
	Now      func() time.Time
}

// Service is the running e-mail delivery: the queue the use cases call and
// the worker that delivers the outbox.
type Service struct {
	queue  *Queue
	worker *Worker
	stop   context.CancelFunc
	done   sync.WaitGroup
}

// New loads the templates and picks the sender; Run starts the worker.
func New(o Options) (*Service, error) {
	keys, err := o.Keys.DeriveKeys(LinkKeyInfo)
	if err != nil {
		return nil, err
	}
	sealer, err := NewSealer(keys)
	if err != nil {
		return nil, err
	}
	t, err := LoadTemplates(o.TemplatesDir)
	if err != nil {
		return nil, err
	}
	if len(t.Overridden) > 0 {
		o.Log.Info("e-mail templates replaced from EMAIL_TEMPLATES_DIR", "files", t.Overridden)
	}
	var sender Sender
	if o.SMTP.Host == "" {
		if o.Production {
			o.Log.Warn("EMAIL_HOST is not set: e-mails are written to the development mailbox and delivered to nobody", "dir", o.MailboxDir)
		}
		sender = &Mailbox{Dir: filepath.Clean(o.MailboxDir), From: o.From, Templates: t, Log: o.Log,
			LogLinks: !o.Production, LinkBase: o.LinkBase, OwnBase: o.OwnBase}
	} else if sender, err = NewSMTP(o.SMTP, o.From, t); err != nil {
		return nil, err
	}
	w := NewWorker(Worker{Store: o.Store, Sender: sender, Sealer: sealer, Log: o.Log, Observer: o.Observer, Now: o.Now})
	q := &Queue{Store: o.Store, Sealer: sealer, Worker: w, Observer: o.Observer, Log: o.Log, Now: o.Now}
	return &Service{queue: q, worker: w, stop: func() {}}, nil
}

// Run starts the worker, with prepare completing deferred messages
// (auth.Service.PrepareEmail).
func (s *Service) Run(prepare func(context.Context, Message, time.Time) (Message, bool, error)) {
	s.worker.Prepare = prepare
	ctx, stop := context.WithCancel(context.Background())
	s.stop = stop
	s.done.Add(1)
	go func() {
		defer s.done.Done()
		s.worker.Run(ctx)
	}()
}

// Queue stores m in the outbox for the worker (auth.Mailer).
func (s *Service) Queue(ctx context.Context, m Message) error { return s.queue.Queue(ctx, m) }

// Stop stops the worker; a send in progress finishes first.
func (s *Service) Stop() {
	s.stop()
	s.done.Wait()
}
