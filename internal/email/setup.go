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
	// LogLinks logs each mailbox e-mail's link (outside production), with
	// the same link on OwnBase, this server's URL.
	LogLinks          bool
	LinkBase, OwnBase string

	Store OutboxStore
	// LinkKeys seal the links the outbox keeps (the first seals, all
	// open): token.Manager.DeriveKeys(LinkKeyInfo).
	LinkKeys [][]byte
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
	sealer, err := NewSealer(o.LinkKeys)
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
		sender = &Mailbox{Dir: filepath.Clean(o.MailboxDir), From: o.From, Templates: t, Log: o.Log,
			LogLinks: o.LogLinks, LinkBase: o.LinkBase, OwnBase: o.OwnBase}
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
