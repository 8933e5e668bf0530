package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/gqlauth/gqlauth/internal/config"
	"github.com/gqlauth/gqlauth/internal/password"
	"github.com/gqlauth/gqlauth/internal/web"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "healthcheck" {
		os.Exit(healthcheck())
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, stop, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// healthcheck asks the local server whether it is ready: the health check
// of images without a shell ("gqlauth healthcheck").
func healthcheck() int {
	cfg, err := config.FromEnvironment(".env")
	if err == nil {
		err = web.CheckReady(cfg.LocalURL())
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "healthcheck:", err)
		return 1
	}
	return 0
}

// run loads the configuration, starts the server, waits for a signal or a
// server failure, and shuts down within SHUTDOWN_TIMEOUT.
func run(ctx context.Context, stop context.CancelFunc, logOut io.Writer) error {
	cfg, err := config.FromEnvironment(".env")
	if err != nil {
		return err
	}
	defer password.ReserveProcs(cfg.BcryptConcurrency)()
	if _, set := os.LookupEnv("GOGC"); !set && cfg.Embedded() {
		// The embedded database allocates four times what the server does,
		// in this process: collecting half as often buys about a tenth more
		// `me` throughput for 6 MiB. Against an external database Go's
		// default costs nothing measurable and keeps 4 MiB less resident
		// (BENCHMARKS.md). GOGC overrides either.
		debug.SetGCPercent(200)
	}
	m := NewMain(cfg, web.NewLogger(logOut, cfg.LogFormat, cfg.LogLevel))
	if err := m.Run(ctx); err != nil {
		return err
	}
	var serveErr error
	select {
	case <-ctx.Done():
		stop() // a second signal now ends the process at once
		m.Logger.Info("shutting down", "timeout", cfg.ShutdownTimeout.String())
	case serveErr = <-m.ServeErr():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	return errors.Join(serveErr, m.Close(shutdownCtx))
}
