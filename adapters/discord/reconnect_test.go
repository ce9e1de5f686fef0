package discord

import (
	"context"
	"testing"
	"time"

	"github.com/cometbot/cometbot/adapters/discord/discordtest"
	"github.com/cometbot/cometbot/bot"
)

// TestReconnects covers the ways a gateway connection ends: lost heartbeat
// ACKs and a server's op 7 Reconnect. Each time the adapter resumes the
// session (no new IDENTIFY) and keeps answering.
func TestReconnects(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		fake   discordtest.Options
		break_ func(*discordtest.Server)
	}{
		{"heartbeat ACKs stop", discordtest.Options{HeartbeatInterval: 100 * time.Millisecond}, func(s *discordtest.Server) { s.SetHeartbeatAcks(false) }},
		{"op 7 reconnect", discordtest.Options{}, func(s *discordtest.Server) { s.RequestReconnect() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			eng := newFakeEngine()
			e := start(t, eng, envOpts{fake: tc.fake, config: func(c *Config) { c.OpenThreads = false }})
			tc.break_(e.srv)
			// The client closes the socket at once (then waits a second
			// before it reconnects).
			e.waitFor("disconnect", func() bool { return !e.srv.Connected() })
			e.srv.SetHeartbeatAcks(true)
			e.waitFor("resumed", func() bool { return e.srv.Resumes() >= 1 && e.srv.Connected() && e.a.Ready() })
			e.srv.UserMessage(discordtest.Post{ChannelID: general, Content: mention(botID) + " still there?"})
			eng.waitTurns(t, 1)
			e.waitFor("reply", func() bool {
				ms := e.srv.BotMessages(general)
				return len(ms) == 1 && ms[0].Content == "echo: still there?"
			})
			if n := e.srv.Identifies(); n != 1 {
				t.Errorf("%d IDENTIFYs, want 1", n)
			}
		})
	}
}

// TestShutdownLetsRepliesFinish: when Run's context ends mid-stream the
// reply still completes (ShutdownGrace), and a reply the engine starts after
// Run returned is delivered by Finish without streaming.
func TestShutdownLetsRepliesFinish(t *testing.T) {
	t.Parallel()
	srv := discordtest.NewTest(t, discordtest.Options{WriteWindow: time.Second})
	eng := newFakeEngine()
	eng.reply = func(bot.Message) []string { return []string{"one ", "two ", "three ", "four ", "five"} }
	eng.delay = 150 * time.Millisecond
	c := DefaultConfig()
	c.Token, c.APIURL, c.OpenThreads, c.EditWindow = srv.Token(), srv.APIURL(), false, time.Second
	c.Logger = testLogger(t)
	a, err := New(c, eng)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	e := &env{t: t, srv: srv, a: a, eng: eng}
	e.waitFor("ready", a.Ready)
	e.srv.UserMessage(discordtest.Post{ChannelID: general, Content: mention(botID) + " count"})
	e.waitFor("streaming started", func() bool { return len(srv.BotMessages(general)) == 1 })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	eng.waitTurns(t, 1)
	if ms := srv.BotMessages(general); len(ms) != 1 || ms[0].Content != "one two three four five" {
		t.Fatalf("after shutdown: %+v", ms)
	}
	out := &output{a: a, t: target{channel: general}}
	r, err := out.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	_ = r.Append(context.Background(), "ignored while shut down")
	if err := r.Fail(context.Background(), "⚠️ Interrupted — ask again."); err != nil {
		t.Fatal(err)
	}
	ms := srv.BotMessages(general)
	if len(ms) != 2 || ms[1].Content != "ignored while shut down\n\n⚠️ Interrupted — ask again." {
		t.Errorf("late reply: %+v", ms)
	}
}
