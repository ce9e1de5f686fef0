package slack

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cometbot/cometbot/adapters/slack/slacktest"
	"github.com/cometbot/cometbot/bot"
	"github.com/cometbot/cometbot/bot/bottest"
	"github.com/cometbot/cometbot/llm/llmtest"
)

const testSecret = "test-signing-secret"

// envOptions configures an end-to-end test environment.
type envOptions struct {
	cfg     func(*Config)
	gateway llmtest.Options
	engine  func(*bot.Options)
	fake    slacktest.Options
	http    bool // HTTP Events API instead of Socket Mode
}

// env is a fake Slack + real adapter (real slack-go clients) + real engine
// (bbolt store, llm client) + fake gateway, all on loopback.
type env struct {
	t     *testing.T
	slack *slacktest.Server
	h     *bottest.Harness
	a     *Adapter
	srv   *httptest.Server // HTTP mode only

	mu        sync.Mutex
	processed map[string]bool // channel/ts of message events the adapter dealt with
}

func testLogger() *slog.Logger {
	if os.Getenv("SLACK_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	// Cleanups run last-registered first: adapter, then engine and gateway,
	// then the fake Slack.
	fake := slacktest.Start(t, o.fake)
	fake.AddUser(slacktest.User{ID: "U1", Name: "alice", RealName: "Alice Liddell", DisplayName: "Alice"})
	fake.AddUser(slacktest.User{ID: "U2", Name: "bob", RealName: "Bob Builder"})
	h := bottest.New(t, bottest.Options{Gateway: o.gateway, Engine: o.engine})
	cfg := Config{
		BotToken:         fake.Options().BotToken,
		AppToken:         fake.Options().AppToken,
		APIURL:           fake.APIURL(),
		Logger:           testLogger(),
		PacingWindow:     3 * time.Second, // 50 updates per 3 s: fast but paced
		PostInterval:     20 * time.Millisecond,
		SigningSecret:    testSecret,
		MessagePartRunes: 3500,
	}
	if o.http {
		cfg.AppToken = ""
	}
	if o.cfg != nil {
		o.cfg(&cfg)
	}
	a, err := New(cfg, h.Engine)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, slack: fake, h: h, a: a, processed: map[string]bool{}}
	a.afterIncoming = e.noteProcessed
	if o.http {
		e.srv = httptest.NewServer(a.HTTPHandler())
		t.Cleanup(e.srv.Close)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Run did not return after cancel")
		}
	})
	e.waitFor("adapter ready", 5*time.Second, a.Ready)
	return e
}

func (e *env) waitFor(what string, timeout time.Duration, cond func() bool) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := e.slack.Wait(ctx, cond); err != nil {
		e.t.Fatalf("timed out waiting for %s", what)
	}
}

// bodies returns the bodies of the bot's visible messages in a thread.
func (e *env) bodies(channel, thread string) []string {
	var out []string
	for _, m := range e.slack.BotReplies(channel, thread) {
		out = append(out, m.Body())
	}
	return out
}

// waitThread waits until the bot's messages in the thread are exactly want.
func (e *env) waitThread(channel, thread string, want []string) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	err := e.slack.Wait(ctx, func() bool { return equalStrings(e.bodies(channel, thread), want) })
	if err != nil {
		got := e.bodies(channel, thread)
		e.t.Fatalf("thread %s/%s:\n got %d messages %q\nwant %d messages %q", channel, thread, len(got), clip(got), len(want), clip(want))
	}
}

// expectClassic is what a classic (chat.postMessage + chat.update) reply of
// answer looks like in the thread.
func (e *env) expectClassic(answer string) []string {
	return renderMrkdwn(answer, e.a.cfg.MessagePartRunes, e.a.cfg.MaxTextRunes)
}

func (e *env) prompts() int { return len(e.h.Prompts()) }

func (e *env) lastPrompt() llmtest.Prompt {
	e.t.Helper()
	p, ok := e.h.LastPrompt()
	if !ok {
		e.t.Fatal("no model call")
	}
	return p
}

func (e *env) noteProcessed(channel, ts string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.processed[channel+"/"+ts] = true
}

func (e *env) wasProcessed(channel, ts string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.processed[channel+"/"+ts]
}

// barrier returns when everything delivered to the adapter so far in the
// given channels has been dealt with and the engine has no turn queued or
// running: then anything that was going to be answered (twice) has been.
// It sends a Slackbot notice to each channel behind the events under test,
// on the same ordered path (Socket Mode or HTTP, then the channel's serial
// queue), and waits until the adapter has dealt with it.
func (e *env) barrier(channels ...string) {
	e.t.Helper()
	for _, ch := range channels {
		typ := "channel"
		if strings.HasPrefix(ch, "D") {
			typ = "im"
		}
		ev := slacktest.MessageEvent{Type: "message", User: slackbotUserID, Text: "barrier", Channel: ch, ChannelType: typ,
			TS: e.slack.NextTS(), Team: e.slack.Options().TeamID}
		if e.srv != nil {
			body, _ := e.slack.EventCallback(ev)
			if code, _ := e.post("/slack/events", "application/json", body, testSecret, time.Now(), nil); code != 200 {
				e.t.Fatalf("barrier event: status %d", code)
			}
		} else {
			e.slack.SendEvent(ev)
		}
		e.waitFor("barrier in "+ch, 15*time.Second, func() bool { return e.wasProcessed(ch, ev.TS) })
	}
	e.waitFor("engine idle", 15*time.Second, func() bool { return e.h.Engine.InFlight() == 0 })
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func clip(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		if len(s) > 200 {
			s = s[:100] + "…" + s[len(s)-100:]
		}
		out[i] = s
	}
	return out
}

func joinBodies(ms []slacktest.Message) string {
	var b strings.Builder
	for _, m := range ms {
		b.WriteString(m.Body())
	}
	return b.String()
}
