package main

import (
	"context"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/cometbot/cometbot/bot"
	"github.com/cometbot/cometbot/internal/config"
)

// reloadPoll is how often the YAML file's modification time and size are
// checked for a change.
const reloadPoll = 3 * time.Second

// reconfigurer is the engine as the reloader sees it.
type reconfigurer interface {
	Reconfigure(bot.Reconfig) error
}

// reloader re-reads the YAML file on SIGHUP and when it changes on disk. A
// valid file replaces the engine's policy (aliases, access, budgets, rate
// limits, per-scope defaults, tool policy) for the turns that start next;
// an invalid one is logged with its line and the old policy stays.
// Environment variables (secrets) are not read again, and settings that
// shape the process (HTTP address, database, MCP servers, gateway
// concurrency) need a restart.
type reloader struct {
	log    *slog.Logger
	engine reconfigurer

	mu    sync.Mutex
	cfg   *config.Config
	stamp fileStamp
}

// fileStamp identifies a version of the file on disk.
type fileStamp struct {
	mod  time.Time
	size int64
}

func stampOf(path string) fileStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}
	}
	return fileStamp{fi.ModTime(), fi.Size()}
}

func newReloader(cfg *config.Config, engine reconfigurer, log *slog.Logger) *reloader {
	return &reloader{log: log, engine: engine, cfg: cfg, stamp: stampOf(cfg.ConfigPath)}
}

// config returns the configuration in force.
func (r *reloader) config() *config.Config {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cfg
}

// reload reads the file and applies it when valid. It returns the error
// that kept the old configuration, if any.
func (r *reloader) reload(why string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stamp = stampOf(r.cfg.ConfigPath)
	n, err := r.cfg.Reload()
	if err == nil {
		err = r.engine.Reconfigure(reconfig(n))
	}
	if err != nil {
		r.log.Error("configuration not reloaded; the previous one stays in force", "trigger", why, "err", err)
		return err
	}
	r.cfg = n
	r.log.Info("configuration reloaded", "trigger", why, "file", n.ConfigPath)
	return nil
}

// changed reports whether the file on disk differs from the one last read.
func (r *reloader) changed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return stampOf(r.cfg.ConfigPath) != r.stamp
}

// run reloads on every value of hup and when the file changes (polled every
// interval) until ctx ends. Without a file it only waits.
func (r *reloader) run(ctx context.Context, hup <-chan os.Signal, interval time.Duration) {
	if r.config().ConfigPath == "" {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				r.log.Warn("SIGHUP: no configuration file to reload (COMETBOT_CONFIG is not set)")
			}
		}
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			_ = r.reload("SIGHUP")
		case <-t.C:
			if r.changed() {
				_ = r.reload("file changed")
			}
		}
	}
}
