package loadtest

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"testing"
	"time"
)

// TestSmoke is the CI smoke run of the load tool: the real cometbot binary
// (built with -race when the test runs under -race) against the loopback
// fakes, a few seconds, a few conversations. It fails only on correctness —
// an incomplete or failed reply, an unacknowledged envelope, an error line in
// the bot's log, a data race or a panic — never on timing.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the cometbot binary")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var flags []string
	if raceEnabled {
		flags = append(flags, "-race")
	}
	bin, err := BuildBinary(ctx, "", t.TempDir(), flags...)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"terminal", Config{Platform: "terminal", Duration: 2 * time.Second, PromptWords: 20,
			TTFT: 5 * time.Millisecond, TokensPerSecond: 2000}},
		{"slack", Config{Platform: "slack", Conversations: 4, Duration: 3 * time.Second, PromptWords: 20,
			TTFT: 5 * time.Millisecond, TokensPerSecond: 500, Turns: 6}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var log bytes.Buffer
			tc.cfg.Binary = bin
			tc.cfg.Idle = 100 * time.Millisecond
			tc.cfg.TurnTimeout = 45 * time.Second
			tc.cfg.Log = slog.New(slog.NewTextHandler(&log, nil))
			rep, err := Run(ctx, tc.cfg)
			if err != nil {
				t.Fatalf("run: %v\n%s", err, log.String())
			}
			var out bytes.Buffer
			rep.Print(&out)
			t.Logf("\n%s", out.String())
			if err := rep.Check(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestMain(m *testing.M) {
	// The bot inherits nothing from the test's environment but PATH; make
	// sure `go build` finds its caches when HOME is unusual in CI.
	os.Exit(m.Run())
}
