package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/cometbot/cometbot/adapters/terminal"
	"github.com/cometbot/cometbot/internal/config"
	"github.com/cometbot/cometbot/internal/mcp"
)

func cmdChat(ctx context.Context, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) (err error) {
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	defer func() { err = scrubbed(cfg, err) }()
	// Logs go to stderr at warn level unless asked otherwise, so the
	// conversation on stdout stays clean.
	if getenv("COMETBOT_LOG_LEVEL") == "" {
		cfg.LogLevel = slog.LevelWarn
	}
	log := newLogger(cfg, stderr)
	if err := cfg.RequireKey(); err != nil {
		return usageErr(err)
	}
	c, err := openCore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer c.shutdown(planShutdown(cfg.ShutdownTimeout()))

	// Refresh the catalog: in the background when a cached copy exists,
	// otherwise (first run) before reading input, for at most a few seconds.
	catCtx, stopCatalog := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stopCatalog(); wg.Wait() }()
	refreshed := make(chan struct{})
	wg.Go(func() {
		defer close(refreshed)
		rctx, cancel := context.WithTimeout(catCtx, 15*time.Second)
		defer cancel()
		if err := c.catalog.Refresh(rctx); err != nil && !errors.Is(err, context.Canceled) {
			log.Warn("model catalog refresh failed; using the cached copy if any", "err", err)
		}
	})
	if !c.catalog.Loaded() {
		select {
		case <-refreshed:
		case <-time.After(5 * time.Second):
		case <-ctx.Done():
		}
	}

	// MCP servers connect in the background and their tools are offered
	// once connected: let each connect (or fail) before the first turn, or
	// piped input would be answered without them.
	waitMCP(ctx, c.mcp, 10*time.Second, log)

	// A terminal session that ended mid-answer cannot be continued: its
	// unfinished turns are closed as interrupted (and stay in history).
	if _, n, err := c.engine.ResumePending(ctx, terminal.Platform, nil); err != nil {
		log.Warn("close unfinished turns", "err", err)
	} else if n > 0 {
		log.Info("closed unfinished turns from the previous session", "n", n)
	}
	prompt := ""
	if isTerminal(stdin) {
		prompt = "you> "
		fmt.Fprintf(stdout, "cometbot %s — chatting with %s. Commands: /model, /system, /reset, /usage, /help; /quit or Ctrl-D to leave.\n", version, cfg.Model())
	}
	user := getenv("USER")
	return terminal.Run(ctx, c.engine, terminal.Config{In: stdin, Out: stdout, User: user, Prompt: prompt, MaxFileBytes: c.fetcher.MaxBytes()})
}

// waitMCP waits until every server of m (nil: none) has connected or
// failed once, for at most max.
func waitMCP(ctx context.Context, m *mcp.Manager, max time.Duration, log *slog.Logger) {
	if m == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, max)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		settled := true
		for _, st := range m.Status() {
			settled = settled && (st.Connected || st.Err != "")
		}
		if settled {
			return
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				log.Warn("MCP servers still connecting; their tools are offered once they are up", "waited", max)
			}
			return
		case <-tick.C:
		}
	}
}

// isTerminal reports whether r is an interactive terminal.
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
