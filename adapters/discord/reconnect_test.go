package discord

import (
	"testing"
	"time"

	"github.com/cometbot/cometbot/adapters/discord/discordtest"
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
