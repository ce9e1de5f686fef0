// Command loadtest drives the real cometbot binary end to end against the
// loopback fake Slack and fake gateway and prints what the bot adds to the
// model's latency. See internal/loadtest and README "Benchmarks".
//
//	go run ./cmd/loadtest -n 200 -d 10s                      # instant model
//	go run ./cmd/loadtest -n 20 -ttft 200ms -tps 100 -slack-limits
//	go run ./cmd/loadtest -platform terminal -d 5s          # `cometbot chat`, no Slack
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/cometbot/cometbot/internal/loadtest"
)

func main() {
	var (
		cfg    loadtest.Config
		env    string
		yaml   string
		check  bool
		runs   int
		quiet  bool
		prefMB int64
	)
	flag.StringVar(&cfg.Binary, "bin", "", "cometbot binary to test (default: go build ./cmd/cometbot into a temp dir)")
	flag.StringVar(&cfg.Platform, "platform", "slack", "slack (Socket Mode against the fake Slack) or terminal (cometbot chat)")
	flag.IntVar(&cfg.Conversations, "n", 10, "concurrent conversations")
	flag.DurationVar(&cfg.Duration, "d", 10*time.Second, "how long to send new messages")
	flag.IntVar(&cfg.Turns, "turns", 0, "max turns per conversation (0: as many as fit in -d)")
	flag.DurationVar(&cfg.Think, "think", 0, "pause between a reply and the conversation's next message")
	flag.DurationVar(&cfg.TTFT, "ttft", 0, "fake model: time to first token")
	flag.Float64Var(&cfg.TokensPerSecond, "tps", 0, "fake model: tokens per second (0: instant)")
	flag.IntVar(&cfg.ChunkWords, "chunk", 1, "fake model: words per streamed chunk")
	flag.IntVar(&cfg.PromptWords, "words", 12, "words per user message (the model echoes it)")
	flag.BoolVar(&cfg.SlackLimits, "slack-limits", false, "fake Slack enforces Slack's rate limits (429 + Retry-After)")
	flag.DurationVar(&cfg.TurnTimeout, "turn-timeout", 60*time.Second, "how long one reply may take")
	flag.DurationVar(&cfg.Drain, "drain", 0, "wait for in-flight replies after -d (default: -turn-timeout)")
	flag.IntVar(&cfg.Prefill, "prefill", 0, "store this many conversations in the database before starting")
	flag.Int64Var(&prefMB, "prefill-mib", 0, "grow the prefilled database to at least this many MiB")
	flag.BoolVar(&cfg.ColdCache, "cold", false, "evict the prefilled database from the page cache before starting (cold start)")
	flag.DurationVar(&cfg.Idle, "idle", time.Second, "idle time after ready before the load (idle memory)")
	flag.StringVar(&yaml, "config", "", "YAML configuration file for the bot (COMETBOT_CONFIG)")
	flag.StringVar(&env, "env", "", "extra environment for the bot, comma-separated KEY=value")
	flag.BoolVar(&check, "check", false, "exit 1 if any reply is incomplete or the bot logged errors")
	flag.IntVar(&runs, "runs", 1, "repeat the run this many times (one binary build)")
	flag.BoolVar(&quiet, "q", false, "no progress lines")
	flag.StringVar(&cfg.PerfData, "perf", "", "record the bot's CPU profile with `perf record -g` into this file")
	flag.Parse()
	cfg.PrefillBytes = prefMB << 20
	if env != "" {
		cfg.Env = strings.Split(env, ",")
	}
	if yaml != "" {
		b, err := os.ReadFile(yaml)
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadtest:", err)
			os.Exit(2)
		}
		cfg.YAML = string(b)
	}
	if !quiet {
		cfg.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	if cfg.Binary == "" && runs > 1 {
		dir, err := os.MkdirTemp("", "cometbot-loadtest-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadtest:", err)
			os.Exit(1)
		}
		defer os.RemoveAll(dir)
		if cfg.Binary, err = loadtest.BuildBinary(ctx, "", dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	failed := false
	for i := range runs {
		if runs > 1 {
			fmt.Printf("--- run %d of %d\n", i+1, runs)
		}
		rep, err := loadtest.Run(ctx, cfg)
		if rep != nil {
			rep.Print(os.Stdout)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			failed = true
			break
		}
		if check {
			if err := rep.Check(); err != nil {
				fmt.Fprintln(os.Stderr, err)
				failed = true
			}
		}
	}
	if failed {
		os.Exit(1)
	}
}
