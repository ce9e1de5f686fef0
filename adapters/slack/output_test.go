package slack

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cometbot/cometbot/adapters/slack/slacktest"
	"github.com/cometbot/cometbot/bot"
)

// newOutputEnv builds an adapter against a fake Slack without Run: enough to
// drive bot.Output directly, as the engine does.
func newOutputEnv(t *testing.T, mutate func(*Config)) (*Adapter, *slacktest.Server) {
	t.Helper()
	fake := slacktest.Start(t, slacktest.Options{})
	cfg := Config{
		BotToken: fake.Options().BotToken, APIURL: fake.APIURL(), Logger: testLogger(),
		PacingWindow: time.Second, PostInterval: 10 * time.Millisecond,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	a, err := New(cfg, nopEngine{})
	if err != nil {
		t.Fatal(err)
	}
	return a, fake
}

func waitFake(t *testing.T, fake *slacktest.Server, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := fake.Wait(ctx, cond); err != nil {
		t.Fatalf("timed out waiting for %s", what)
	}
}

func TestReplyReconcilesFinalText(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("A fairly long paragraph that fills the message quickly. ", 80) // ~4,500 chars
	tests := []struct {
		name        string
		native      bool
		streamed    string
		final       string
		wantMethods []string // calls that must have happened
	}{
		{"classic: final rewrites the preview", false, "Hello wor", "Completely different answer.", []string{"chat.update"}},
		{"classic: final shorter than the preview drops a message", false, long + "\n\n" + long, "Short now.", []string{"chat.delete"}},
		{"native: final extends the stream", true, "Hello ", "Hello world, and more.", []string{"chat.startStream", "chat.stopStream"}},
		{"native: final rewrites the stream", true, "Hello there ", "Goodbye.", []string{"chat.stopStream", "chat.update"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a, fake := newOutputEnv(t, func(c *Config) { c.NativeStreaming = tt.native })
			out := &output{a: a, team: "T1", channel: "C1", thread: "1700000000.000009", user: "U1"}
			ctx := context.Background()
			r, err := out.Start(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Append(ctx, tt.streamed); err != nil {
				t.Fatal(err)
			}
			interim := 1
			if len(tt.streamed) > 4000 {
				interim = 2
			}
			// At least: the flusher may post several parts between two looks.
			waitFake(t, fake, "interim text", func() bool { return len(fake.BotReplies("C1", out.thread)) >= interim })
			if err := r.Finish(ctx, tt.final); err != nil {
				t.Fatal(err)
			}
			if err := r.Append(ctx, "late"); err == nil {
				t.Error("Append after Finish accepted")
			}
			got := fake.BotReplies("C1", out.thread)
			want := toMrkdwn(tt.final)
			if tt.native {
				want = tt.final
			}
			if len(got) != 1 || got[0].Body() != want || got[0].Streaming {
				t.Fatalf("thread = %+v, want one message %q", got, want)
			}
			for _, m := range tt.wantMethods {
				if len(okCalls(fake.Calls(m))) == 0 {
					t.Errorf("no successful %s call", m)
				}
			}
		})
	}
}

func TestReplyFailReplacesPlaceholder(t *testing.T) {
	t.Parallel()
	a, fake := newOutputEnv(t, nil)
	// A top-level DM: no thread status, so a placeholder is posted.
	out := &output{a: a, team: "T1", channel: "D1", user: "U1", dm: true}
	ctx := context.Background()
	r, err := out.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := fake.BotReplies("D1", ""); len(got) != 1 || got[0].Text != placeholderText {
		t.Fatalf("placeholder = %+v", got)
	}
	if err := r.Fail(ctx, "⚠️ The model is overloaded. Please try again."); err != nil {
		t.Fatal(err)
	}
	if err := r.Finish(ctx, "x"); err == nil {
		t.Error("Finish after Fail accepted")
	}
	got := fake.BotReplies("D1", "")
	if len(got) != 1 || got[0].Text != "⚠️ The model is overloaded. Please try again." {
		t.Fatalf("thread = %+v", got)
	}
	if n := len(fake.Calls("assistant.threads.setStatus")); n != 0 {
		t.Errorf("setStatus called %d times outside a thread", n)
	}
}

func TestReplyFailAfterPartialText(t *testing.T) {
	t.Parallel()
	a, fake := newOutputEnv(t, nil)
	out := &output{a: a, team: "T1", channel: "C1", thread: "1700000000.000001", user: "U1"}
	ctx := context.Background()
	r, err := out.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = r.Append(ctx, "Partial answer")
	waitFake(t, fake, "partial text", func() bool { return len(fake.BotReplies("C1", out.thread)) == 1 })
	if err := r.Fail(ctx, "stream broke"); err != nil {
		t.Fatal(err)
	}
	// The notice is edited in under the text shown: no second message.
	got := fake.BotReplies("C1", out.thread)
	if len(got) != 1 || got[0].Text != "Partial answer\n\n:warning: stream broke" {
		t.Fatalf("thread = %+v", got)
	}
}

func TestReplyStartFailsWhenSlackRefuses(t *testing.T) {
	t.Parallel()
	a, fake := newOutputEnv(t, nil)
	fake.FailNext("chat.postMessage", "channel_not_found")
	out := &output{a: a, team: "T1", channel: "D404", user: "U1", dm: true}
	if _, err := out.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "channel_not_found") {
		t.Fatalf("Start = %v", err)
	}
}

func TestFinishSurvivesDeletedMessage(t *testing.T) {
	t.Parallel()
	a, fake := newOutputEnv(t, func(c *Config) { c.DisableThreadStatus = true })
	out := &output{a: a, team: "T1", channel: "C1", thread: "1700000000.000001", user: "U1"}
	ctx := context.Background()
	r, err := out.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Someone deletes the placeholder before the answer is ready.
	fake.FailNext("chat.update", "message_not_found")
	if err := r.Finish(ctx, "The answer."); err != nil {
		t.Fatal(err)
	}
	var bodies []string
	for _, m := range fake.BotReplies("C1", out.thread) {
		bodies = append(bodies, m.Body())
	}
	if len(bodies) == 0 || bodies[len(bodies)-1] != "The answer." {
		t.Fatalf("thread = %q", bodies)
	}
}

var _ bot.Output = (*output)(nil)

// TestFinalsUnderCongestion finishes several answers at once while the
// chat.update budget allows one edit per ~1.1 s: finals that would wait too
// long are posted as new messages (the interim ones are deleted), so every
// answer is delivered quickly and complete, and no budget is exceeded.
func TestFinalsUnderCongestion(t *testing.T) {
	t.Parallel()
	const n = 6
	window := 2 * time.Second
	a, fake := newOutputEnv(t, func(c *Config) {
		c.PacingWindow = window
		c.UpdatesPerMinute = 2
		c.FinalUpdateMaxWait = time.Second
	})
	fake.SetRateLimit("chat.update", 2, window)
	fake.SetRateLimit("chat.delete", 2, window)
	ctx := context.Background()
	runCtx, stop := context.WithCancel(ctx)
	runDone := make(chan error, 1)
	go func() { runDone <- a.Run(runCtx) }()
	t.Cleanup(func() { stop(); <-runDone })
	waitFake(t, fake, "ready", a.Ready)
	var replies []bot.Reply
	var outs []*output
	for i := range n {
		out := &output{a: a, team: "T1", channel: "C" + itoa(i), thread: "1700000000.000001", user: "U1"}
		r, err := out.Start(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_ = r.Append(ctx, "interim "+itoa(i))
		replies = append(replies, r)
		outs = append(outs, out)
	}
	waitFake(t, fake, "interim messages", func() bool {
		for _, o := range outs {
			if len(fake.BotReplies(o.channel, o.thread)) != 1 {
				return false
			}
		}
		return true
	})
	start := time.Now()
	errs := make(chan error, n)
	for i, r := range replies {
		go func() { errs <- r.Finish(ctx, "final answer "+itoa(i)) }()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	took := time.Since(start)
	// chat.update alone would need 6 × 1.1 s: most finals must have been
	// posted as new messages instead.
	finalUpdates, finalPosts := 0, 0
	for _, c := range fake.Calls("chat.update", "chat.postMessage") {
		if c.OK() && strings.HasPrefix(c.Params.Get("text"), "final answer") {
			if c.Method == "chat.update" {
				finalUpdates++
			} else {
				finalPosts++
			}
		}
	}
	// The budget allows 2 updates per window: on a loaded machine the
	// finals may span more than one window, and each one started allows 2
	// more. The rest must have been posted rather than waited for.
	maxUpdates := 2 * (1 + int(took/window))
	if finalUpdates > maxUpdates || finalUpdates+finalPosts != n || finalPosts == 0 {
		t.Errorf("%d finals by chat.update and %d by chat.postMessage (took %v), want at most %d updates", finalUpdates, finalPosts, took, maxUpdates)
	}
	waitFake(t, fake, "interim messages deleted", func() bool {
		for i, o := range outs {
			r := fake.BotReplies(o.channel, o.thread)
			if len(r) != 1 || r[0].Text != "final answer "+itoa(i) {
				return false
			}
		}
		return true
	})
	for _, c := range fake.Calls("chat.update", "chat.delete") {
		if c.Status == 429 {
			t.Errorf("%s was rate limited", c.Method)
		}
	}
}
