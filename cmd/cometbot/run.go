package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cometbot/cometbot/bot"
	"github.com/cometbot/cometbot/internal/config"
	"github.com/cometbot/cometbot/internal/redact"
)

// platform is a chat platform adapter as the runner sees it.
type platform interface {
	// Run serves the platform until ctx ends.
	Run(ctx context.Context) error
	// Ready reports whether the platform is connected.
	Ready() bool
}

// namedPlatform pairs an adapter with its name for logs.
type namedPlatform struct {
	name string
	platform
}

func cmdRun(ctx context.Context, getenv func(string) string, stderr io.Writer) (err error) {
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	defer func() { err = scrubbed(cfg, err) }()
	log := newLogger(cfg, stderr)
	slog.SetDefault(log) // libraries that log through slog.Default (discordgo via the adapter) get the same format and scrubbing
	if err := cfg.RequireKey(); err != nil {
		return usageErr(err)
	}
	if !cfg.Slack.Enabled() && !cfg.Discord.Enabled() {
		return usageErr(errNoPlatform)
	}
	c, err := openCore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer c.shutdown(planShutdown(cfg.ShutdownTimeout()))

	platforms, handlers, err := buildPlatforms(cfg, c, log)
	if err != nil {
		return err
	}
	ready := func(ctx context.Context) error {
		var missing []string
		for _, p := range platforms {
			if !p.Ready() {
				missing = append(missing, p.name)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("not connected: %s", strings.Join(missing, ", "))
		}
		return c.engine.StoreError(ctx)
	}
	handlers["GET /metrics"] = c.metrics.Handler()
	rl := newReloader(cfg, c.engine, log)
	hup := make(chan os.Signal, 1) // SIGHUP reloads the YAML file (it no longer ends the process)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	if cfg.AdminToken.Set() {
		dash, err := adminHandler(c, rl, platforms, log)
		if err != nil {
			return err
		}
		handlers["/admin"], handlers["/admin/"] = dash, dash
		log.Info("admin dashboard enabled", "path", "/admin")
	}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on COMETBOT_HTTP_ADDR %s: %w", cfg.HTTPAddr, err)
	}
	dbg, err := debugServer(cfg.DebugAddr, log)
	if err != nil {
		_ = ln.Close()
		return err
	}
	if dbg != nil {
		defer dbg.Close()
	}
	if handlers == nil {
		handlers = map[string]http.Handler{}
	}
	handlers["POST "+backupPath] = backupHandler(c.store, getenv(adminTokenEnv), log)
	srv := healthServer(cfg.HTTPAddr, ready, handlers, defaultHTTPLimits)

	// Everything below is owned by this function and ends before it returns
	// (or, past the shutdown timeout, is abandoned as the process exits).
	platCtx, stopPlatforms := context.WithCancel(ctx)
	defer stopPlatforms()
	var wg sync.WaitGroup
	errc := make(chan error, len(platforms)+2)
	wg.Go(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("http server: %w", err)
		}
	})
	wg.Go(func() { rl.run(platCtx, hup, reloadPoll) })
	wg.Go(func() {
		if err := c.catalog.Run(platCtx); err != nil && !errors.Is(err, context.Canceled) {
			log.Warn("catalog refresh stopped", "err", err)
		}
	})
	wg.Go(func() { runJanitor(platCtx, c.store, retention(&cfg.File), log) })
	for _, p := range platforms {
		wg.Go(func() {
			if err := p.Run(platCtx); err != nil && !errors.Is(err, context.Canceled) {
				errc <- fmt.Errorf("%s: %w", p.name, err)
			}
		})
	}
	log.Info("cometbot running", "version", version, "http", ln.Addr().String(), "platforms", names(platforms), "default_model", cfg.Model())
	resumePending(platCtx, c, platforms, log)
	warnOpenDefaults(cfg, c.catalog, log)

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down", "timeout", cfg.ShutdownTimeout())
	case runErr = <-errc:
		log.Error("stopping after a fatal error", "err", runErr)
	}
	// One deadline for the whole shutdown. Stop taking events first, so
	// nothing new is accepted and lost; then let in-flight replies finish
	// (or finalize them as interrupted) while HTTP stays up; then close the
	// HTTP server and wait for the adapters with what is left.
	plan := planShutdown(cfg.ShutdownTimeout())
	deadline := time.Now().Add(plan.total)
	stopPlatforms()
	c.shutdown(plan)
	closeCtx, cancel := context.WithDeadline(context.WithoutCancel(ctx), deadline)
	defer cancel()
	_ = srv.Shutdown(closeCtx)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-closeCtx.Done():
		_ = srv.Close()
		log.Warn("shutdown timeout reached; exiting with work still running", "timeout", plan.total)
	}
	return runErr
}

// resumePending finishes the turns a previous process left unfinished:
// replies are continued in their own messages where the adapter can find
// them again, else closed as interrupted.
func resumePending(ctx context.Context, c *core, ps []namedPlatform, log *slog.Logger) {
	for _, p := range ps {
		r, _ := p.platform.(bot.Resumer)
		resumed, interrupted, err := c.engine.ResumePending(ctx, p.name, r)
		switch {
		case err != nil:
			log.Error("resume unfinished replies", "platform", p.name, "err", err)
		case resumed+interrupted > 0:
			log.Info("unfinished replies from the previous run", "platform", p.name, "answering_again", resumed, "marked_interrupted", interrupted)
		}
	}
}

func names(ps []namedPlatform) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.name
	}
	return out
}

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if cfg.LogFormat == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	// Transport errors print request URLs; Discord interaction/webhook and
	// Slack response_url paths carry tokens, so logged errors are scrubbed;
	// and the configured secrets (keys embedded in URLs included) are
	// replaced wherever they appear.
	return slog.New(redact.Handler(h, cfg.Secrets()...))
}
