package discord

import (
	"strings"
	"testing"

	"github.com/cometbot/cometbot/adapters/discord/discordtest"
)

// TestManagedRoleMentionByTags: the bot's managed role counts as a mention
// by its tags.bot_id, not by its name: the bot's role is named "Comet
// Helper", and another bot's managed role is named like this bot.
func TestManagedRoleMentionByTags(t *testing.T) {
	t.Parallel()
	eng := newFakeEngine()
	e := start(t, eng, envOpts{config: func(c *Config) { c.OpenThreads = false }})
	// A role created after the bot joined, as Discord dispatches it.
	const newRole = "820000000000000009"
	e.srv.Dispatch("GUILD_ROLE_CREATE", map[string]any{"guild_id": guildID, "role": map[string]any{
		"id": newRole, "name": "Comet Helper 2", "managed": true, "permissions": "0", "position": 2, "color": 0,
		"hoist": false, "mentionable": false, "flags": 0, "icon": nil, "unicode_emoji": nil,
		"tags": map[string]any{"bot_id": botID},
	}})
	tests := []struct {
		name      string
		content   string
		mentioned bool
		text      string
	}{
		{"the bot's role, named otherwise", "<@&" + discordtest.BotRoleID + "> what time is it?", true, "what time is it?"},
		{"a role created later", "<@&" + newRole + "> and now?", true, "and now?"},
		{"another bot's role named like this bot", "<@&" + discordtest.OtherBotRoleID + "> not you", false, ""},
	}
	var sent []string
	for _, tt := range tests {
		sent = append(sent, e.srv.UserMessage(discordtest.Post{ChannelID: general, Content: tt.content}).ID)
	}
	e.barrier(general)
	got := map[string]string{}
	for _, m := range eng.messages() {
		got[m.ID] = m.Text
		if !m.Mentioned {
			t.Errorf("message %q reached the engine without a mention", m.Text)
		}
	}
	for i, tt := range tests {
		text, answered := got[sent[i]]
		if answered != tt.mentioned || text != tt.text {
			t.Errorf("%s: answered %v with text %q, want %v %q", tt.name, answered, text, tt.mentioned, tt.text)
		}
	}
}

// TestUnknownComponentTypeKeepsMessage: discordgo fails on component types
// it does not know and hands over an empty message; the adapter decodes it
// again without components, so the text still reaches the bot.
func TestUnknownComponentTypeKeepsMessage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		components []any
	}{
		{"top level", []any{map[string]any{"type": 99, "id": 1, "custom_id": "future"}}},
		{"inside an action row", []any{map[string]any{"type": 1, "id": 1, "components": []any{
			map[string]any{"type": 2, "id": 2, "style": 1, "label": "ok", "custom_id": "ok"},
			map[string]any{"type": 99, "id": 3, "custom_id": "future", "spec": map[string]any{"x": 12345678901234567}},
		}}}},
		{"known components", []any{map[string]any{"type": 1, "id": 1, "components": []any{
			map[string]any{"type": 2, "id": 2, "style": 1, "label": "ok", "custom_id": "ok"},
		}}}},
	}
	eng := newFakeEngine()
	e := start(t, eng, envOpts{config: func(c *Config) { c.OpenThreads = false }})
	want := map[string]string{}
	for _, tt := range tests {
		m := e.srv.UserMessage(discordtest.Post{ChannelID: general, Content: mention(botID) + " " + tt.name,
			Extra: map[string]any{"components": tt.components}})
		want[m.ID] = tt.name
	}
	eng.waitTurns(t, len(tests))
	e.barrier(general)
	got := map[string]string{}
	for _, m := range eng.messages() {
		got[m.ID] = m.Text
		if m.Author.ID != discordtest.AliceID || !m.Mentioned || m.Time.IsZero() {
			t.Errorf("message %s decoded incompletely: %+v", m.ID, m)
		}
	}
	for id, text := range want {
		if got[id] != text {
			t.Errorf("message with %s components: engine got %q", text, got[id])
		}
	}
	e.waitFor("answers", func() bool { return len(e.srv.BotMessages(general)) == len(tests) })
	for _, m := range e.srv.BotMessages(general) {
		if !strings.HasPrefix(m.Content, "echo: ") {
			t.Errorf("answer %q", m.Content)
		}
	}
}

func TestWithoutComponents(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{`{"id":"1","components":[{"type":99}],"content":"x"}`, `{"content":"x","id":"1"}`},
		{`{"referenced_message":{"id":"2","components":[]},"n":12345678901234567890}`, `{"n":12345678901234567890,"referenced_message":{"id":"2"}}`},
		{`{"message_snapshots":[{"message":{"components":[1],"content":"fwd"}}]}`, `{"message_snapshots":[{"message":{"content":"fwd"}}]}`},
	}
	for _, tt := range tests {
		got, err := withoutComponents([]byte(tt.in))
		if err != nil || string(got) != tt.want {
			t.Errorf("withoutComponents(%s) = %s, %v; want %s", tt.in, got, err, tt.want)
		}
	}
}
