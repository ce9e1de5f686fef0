package slack

import (
	"strings"
	"testing"
	"time"

	"github.com/cometbot/cometbot/bot"
	"github.com/cometbot/cometbot/llm/llmtest"
)

// TestPacingConcurrentStreams runs 20 streamed replies at once in one
// workspace. Budgets are scaled down (per 2 s instead of per minute) and
// enforced by the fake with 429s; the test asserts that the adapter's one
// pacing layer keeps every window under budget, that no call was refused,
// and that every reply ends complete.
func TestPacingConcurrentStreams(t *testing.T) {
	t.Parallel()
	const (
		streams = 20
		window  = 2 * time.Second
	)
	answer := strings.TrimSpace(strings.Repeat("every stream shares one budget ", 6))
	tests := []struct {
		name    string
		native  bool
		methods []string
		budget  int
	}{
		{"chat.update", false, []string{"chat.update"}, 16},
		{"native streaming", true, []string{"chat.startStream", "chat.appendStream", "chat.stopStream"}, 32},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envOptions{
				gateway: llmtest.Options{Reply: answer, TokensPerSecond: 15},
				cfg: func(c *Config) {
					c.NativeStreaming = tt.native
					c.PacingWindow = window
					c.UpdatesPerMinute = tt.budget
					c.StreamCallsPerMinute = tt.budget
				},
			})
			var streamMethods []string
			for _, m := range tt.methods {
				e.slack.SetRateLimit(m, tt.budget, window)
				streamMethods = append(streamMethods, m)
			}
			type thread struct{ channel, ts string }
			var threads []thread
			start := time.Now()
			for i := range streams {
				ch := "C" + itoa(10+i%4)
				ev := e.slack.Mention("U1", ch, "<@UBOT> stream "+itoa(i), "")
				e.slack.SendEvent(ev)
				threads = append(threads, thread{ch, ev.TS})
			}
			want := answer
			if tt.native {
				want = neutralizeMarkdown(bot.Split(answer, 10000)[0])
			}
			e.waitFor("all replies complete", 60*time.Second, func() bool {
				for _, th := range threads {
					r := e.slack.BotReplies(th.channel, th.ts)
					if len(r) != 1 || r[0].Body() != want || r[0].Streaming {
						return false
					}
				}
				return true
			})
			took := time.Since(start)

			// The total over all stream methods stays within the shared budget.
			all := e.slack.Calls(streamMethods...)
			var times []time.Time
			refused := 0
			for _, c := range all {
				if c.Status == 429 {
					refused++
				}
				if c.OK() {
					times = append(times, c.Time)
				}
			}
			if refused > 0 {
				t.Errorf("%d calls were rate limited by the fake", refused)
			}
			if peak := maxInWindow(times, window); peak > tt.budget {
				t.Errorf("%d calls in one %v window, budget %d", peak, window, tt.budget)
			}
			for _, m := range tt.methods {
				if peak := e.slack.MaxInWindow(m, window); peak > tt.budget {
					t.Errorf("%s: %d calls in one window, budget %d", m, peak, tt.budget)
				}
			}
			if n := e.prompts(); n != streams {
				t.Errorf("model calls = %d, want %d", n, streams)
			}
			t.Logf("%d streams done in %v with %d paced calls (peak %d per %v, budget %d)",
				streams, took.Round(10*time.Millisecond), len(times), maxInWindow(times, window), window, tt.budget)
		})
	}
}

// maxInWindow is the largest number of times within any window (sorted input).
func maxInWindow(times []time.Time, window time.Duration) int {
	best, j := 0, 0
	for i := range times {
		for times[i].Sub(times[j]) >= window {
			j++
		}
		best = max(best, i-j+1)
	}
	return best
}
