// Command cometbot is an LLM chatbot for Slack and Discord that talks to
// models through the CometAPI gateway.
//
//	cometbot [run]          serve every platform whose tokens are set
//	cometbot chat           talk to the bot in the terminal
//	cometbot models [text]  list the gateway's models with prices
//	cometbot doctor         check the configuration and every dependency
//	cometbot backup FILE    copy the database (hot, while the bot runs)
//	cometbot restore FILE   replace the database with a backup (bot stopped)
//	cometbot export --user ID [--workspace ID]  print a person's data as JSON
//	cometbot compact        rewrite the database without free pages (bot stopped)
//	cometbot --version
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

	"github.com/cometbot/cometbot/internal/config"
	"github.com/cometbot/cometbot/internal/redact"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `cometbot — an LLM chatbot for Slack and Discord, through the CometAPI gateway.

Usage:
  cometbot [run]            serve Slack and/or Discord (whichever tokens are set)
  cometbot chat             talk to the bot in this terminal (no platform needed)
  cometbot models [filter]  list the gateway's text models with prices
  cometbot doctor           check configuration, gateway, platforms and database
  cometbot healthcheck      probe /healthz (for container health checks)
  cometbot backup FILE      copy the database to FILE (also while the bot runs)
  cometbot restore FILE     replace the database with a backup (bot stopped; old file kept as .bak)
  cometbot export --user ID [--workspace PLATFORM/WORKSPACE]
                            print what is stored about a person as JSON
  cometbot compact          shrink the database file after deletions (bot stopped)
  cometbot --version        print the version

Configuration comes from environment variables (see README.md), e.g.
  COMETAPI_KEY, SLACK_BOT_TOKEN + SLACK_APP_TOKEN, DISCORD_BOT_TOKEN.
`

// usageError marks a setup problem the user must fix (exit status 2).
type usageError struct{ err error }

func (u *usageError) Error() string { return u.err.Error() }
func (u *usageError) Unwrap() error { return u.err }

// usageErr wraps err as a usage error.
func usageErr(err error) error { return &usageError{err} }

func main() {
	// The live heap is small (a few MB even at hundreds of conversations),
	// so the default GOGC=100 collects very often; 400 cut CPU per turn about
	// 10% in the load test. An explicit GOGC still wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// run dispatches a command line and returns the exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	cmd := "run"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "run", "serve":
		err = cmdRun(ctx, getenv, stderr)
	case "chat":
		err = cmdChat(ctx, getenv, stdin, stdout, stderr)
	case "models":
		err = cmdModels(ctx, getenv, args, stdout)
	case "doctor":
		err = cmdDoctor(ctx, getenv, stdout)
	case "healthcheck":
		err = cmdHealthcheck(ctx, getenv)
	case "backup":
		err = cmdBackup(ctx, getenv, args, stdout)
	case "restore":
		err = cmdRestore(getenv, args, stdout)
	case "export":
		err = cmdExport(getenv, args, stdout)
	case "compact":
		err = cmdCompact(getenv, stdout)
	case "--version", "-version", "version", "-v":
		fmt.Fprintln(stdout, "cometbot", version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "cometbot: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "cometbot: %v\n", err)
		var ue *usageError
		if errors.As(err, &ue) {
			return 2
		}
		return 1
	}
	return 0
}

// scrubbed returns err with cfg's secrets (keys embedded in URLs included)
// replaced, for printing; it still unwraps to err.
func scrubbed(cfg *config.Config, err error) error {
	if cfg == nil || err == nil {
		return err
	}
	return redact.NewScrubber(cfg.Secrets()...).Error(err)
}
