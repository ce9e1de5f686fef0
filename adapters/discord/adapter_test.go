package discord

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/cometbot/cometbot/adapters/discord/discordtest"
	"github.com/cometbot/cometbot/bot"
)

const (
	botID   = discordtest.DefaultBotID
	guildID = discordtest.DefaultGuildID
	general = discordtest.GeneralChannel
	locked  = discordtest.LockedChannel
)

func TestMentionOpensThreadAndStreams(t *testing.T) {
	t.Parallel()
	eng := newFakeEngine()
	eng.reply = func(m bot.Message) []string {
		return []string{"Hello", " there,", " how can", " I help", " @everyone?"}
	}
	eng.delay = 20 * time.Millisecond
	eng.first = 100 * time.Millisecond
	e := start(t, eng, envOpts{})

	um := e.srv.UserMessage(discordtest.Post{ChannelID: general, Content: mention(botID) + " hello <#" + general + ">"})
	e.waitFor("the reply in the thread", func() bool {
		ms := e.srv.BotMessages(um.ID)
		return len(ms) == 1 && ms[0].Content == "Hello there, how can I help @everyone?"
	})
	eng.waitTurns(t, 1)

	th, ok := e.srv.Channel(um.ID)
	if !ok || th.ParentID != general || th.Type != discordtest.ChannelPublicThread || th.Name != "hello #general" {
		t.Fatalf("thread = %+v, %v", th, ok)
	}
	msgs := eng.messages()
	if len(msgs) != 1 {
		t.Fatalf("engine got %d messages", len(msgs))
	}
	want := bot.Message{
		Platform: "discord", Workspace: guildID, Channel: general, Thread: um.ID, ID: um.ID,
		EventID: "discord:" + um.ID, Mentioned: true, Text: "hello #general",
	}
	got := msgs[0]
	if got.Platform != want.Platform || got.Workspace != want.Workspace || got.Channel != want.Channel ||
		got.Thread != want.Thread || got.ID != want.ID || got.EventID != want.EventID || !got.Mentioned ||
		got.DM || got.ContinuesBot || got.Text != want.Text || got.Author.ID != discordtest.AliceID || got.Author.Name != "Alice" {
		t.Errorf("engine got %+v", got)
	}
	if n := len(e.srv.CallsTo("POST", "/channels/"+um.ID+"/typing")); n == 0 {
		t.Error("no typing indicator in the thread")
	}
	if n := len(e.srv.BotMessages(general)); n != 0 {
		t.Errorf("%d bot messages in the channel itself", n)
	}
	checkAllowedMentions(t, e.srv)

	// A follow-up in the thread continues the conversation without a mention.
	f := e.srv.UserMessage(discordtest.Post{ChannelID: um.ID, Content: "and more"})
	e.waitFor("the follow-up reply", func() bool { return len(e.srv.BotMessages(um.ID)) == 2 })
	eng.waitTurns(t, 2)
	msgs = eng.messages()
	if got := msgs[1]; got.Channel != general || got.Thread != um.ID || got.ID != f.ID || got.Mentioned || got.Text != "and more" {
		t.Errorf("follow-up = %+v", got)
	}
	if got := len(e.srv.CallsTo("POST", "/threads")); got != 1 {
		t.Errorf("%d thread creations, want 1", got)
	}
}

func TestReplyInPlace(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		channel string
		threads bool
	}{
		{"threads off", general, false},
		{"thread creation forbidden", locked, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			eng := newFakeEngine()
			e := start(t, eng, envOpts{config: func(c *Config) { c.OpenThreads = tc.threads }})

			um := e.srv.UserMessage(discordtest.Post{ChannelID: tc.channel, Content: "hi " + mention(botID)})
			e.waitFor("reply", func() bool { return len(e.srv.BotMessages(tc.channel)) == 1 })
			eng.waitTurns(t, 1)
			r := e.srv.BotMessages(tc.channel)[0]
			if r.ReferenceID != um.ID || r.Content != "echo: hi" {
				t.Fatalf("reply = %+v", r)
			}

			// Replying to the bot's message continues the same conversation.
			f := e.srv.UserMessage(discordtest.Post{ChannelID: tc.channel, Content: "tell me more", ReplyTo: r.ID, NoReplyPing: true})
			e.waitFor("second reply", func() bool { return len(e.srv.BotMessages(tc.channel)) == 2 })
			eng.waitTurns(t, 2)
			r2 := e.srv.BotMessages(tc.channel)[1]
			if r2.ReferenceID != f.ID {
				t.Errorf("second reply references %s, want %s", r2.ReferenceID, f.ID)
			}
			msgs := eng.messages()
			if len(msgs) != 2 {
				t.Fatalf("engine got %d messages", len(msgs))
			}
			if msgs[0].Thread != um.ID || msgs[1].Thread != um.ID || !msgs[1].ContinuesBot || msgs[1].Mentioned {
				t.Errorf("conversation keys: first %+v second %+v", msgs[0], msgs[1])
			}
			if msgs[0].Scope().ConversationKey() != msgs[1].Scope().ConversationKey() {
				t.Error("follow-up landed in another conversation")
			}
			// A second mention in the locked channel does not try a thread again.
			e.srv.UserMessage(discordtest.Post{ChannelID: tc.channel, Content: mention(botID) + " again"})
			e.waitFor("third reply", func() bool { return len(e.srv.BotMessages(tc.channel)) == 3 })
			eng.waitTurns(t, 3)
			wantThreadCalls := 0
			if tc.threads {
				wantThreadCalls = 1
			}
			if n := len(e.srv.CallsTo("POST", "/threads")); n != wantThreadCalls {
				t.Errorf("%d thread creation attempts, want %d", n, wantThreadCalls)
			}
			checkAllowedMentions(t, e.srv)
		})
	}
}

func TestDirectMessages(t *testing.T) {
	t.Parallel()
	eng := newFakeEngine()
	e := start(t, eng, envOpts{})
	dm := e.srv.DMChannel(discordtest.BobID)
	bob := discordtest.User{ID: discordtest.BobID, Username: "bob"}
	for i, text := range []string{"first", "second"} {
		e.srv.UserMessage(discordtest.Post{ChannelID: dm, Author: bob, Content: text})
		e.waitFor("dm reply", func() bool { return len(e.srv.BotMessages(dm)) == i+1 })
	}
	eng.waitTurns(t, 2)
	for i, m := range eng.messages() {
		if !m.DM || m.Workspace != "" || m.Channel != dm || m.Thread != "" || m.Author.ID != discordtest.BobID {
			t.Errorf("message %d = %+v", i, m)
		}
	}
	for _, r := range e.srv.BotMessages(dm) {
		if r.ReferenceID != "" {
			t.Errorf("DM reply %q uses a reply reference", r.Content)
		}
	}
	if got := e.srv.BotMessages(dm)[1].Content; got != "echo: second" {
		t.Errorf("second reply = %q", got)
	}
}

func TestIgnoresBotsSelfAndUnaddressed(t *testing.T) {
	t.Parallel()
	eng := newFakeEngine()
	e := start(t, eng, envOpts{})
	other := discordtest.User{ID: "650000000000000001", Username: "otherbot", Bot: true}
	e.srv.UserMessage(discordtest.Post{ChannelID: general, Author: other, Content: mention(botID) + " hi from a bot"})
	e.srv.UserMessage(discordtest.Post{ChannelID: general, Content: "just chatting"})
	self := discordtest.User{ID: botID, Username: "cometbot", Bot: true}
	e.srv.UserMessage(discordtest.Post{ChannelID: general, Author: self, Content: mention(botID) + " me"})
	// A marker mention proves the earlier events were processed.
	e.srv.UserMessage(discordtest.Post{ChannelID: general, Content: mention(botID) + " marker"})
	e.waitFor("marker reply", func() bool { return len(eng.messages()) >= 1 })
	eng.waitTurns(t, 1)
	msgs := eng.messages()
	if len(msgs) != 1 || msgs[0].Text != "marker" {
		t.Fatalf("engine got %+v", msgs)
	}
}

func squash(s string) string {
	s = strings.ReplaceAll(s, "```go", "")
	s = strings.ReplaceAll(s, "```", "")
	return strings.Join(strings.Fields(s), "")
}

func TestMessageContentIntentOff(t *testing.T) {
	t.Parallel()
	eng := newFakeEngine()
	e := start(t, eng, envOpts{fake: discordtest.Options{RejectMessageContent: true}})
	if in := e.srv.Intents(); in&(1<<15) != 0 || in&(1<<9) == 0 || in&(1<<12) == 0 || in&1 == 0 {
		t.Errorf("intents = %b", in)
	}
	// Without the intent Discord blanks messages that are not addressed to the bot.
	e.srv.UserMessage(discordtest.Post{ChannelID: general, Content: ""})
	um := e.srv.UserMessage(discordtest.Post{ChannelID: general, Content: mention(botID) + " still here?"})
	e.waitFor("reply", func() bool { return len(e.srv.BotMessages(um.ID)) == 1 })
	eng.waitTurns(t, 1)
	if n := len(eng.messages()); n != 1 {
		t.Errorf("engine got %d messages", n)
	}
}

func TestSlashCommands(t *testing.T) {
	t.Parallel()
	eng := newFakeEngine()
	eng.choices = []bot.Choice{
		{Value: "gpt-4o", Label: "gpt-4o · OpenAI · $2.50/$10.00"},
		{Value: "gpt-4o-mini", Label: "gpt-4o-mini · OpenAI · $0.15/$0.60"},
		{Value: "claude-sonnet-4", Label: "claude-sonnet-4 · Anthropic · $3.00/$15.00"},
	}
	eng.answer = func(c bot.Command) bot.Answer {
		return bot.Answer{Text: "ran " + c.Name + " [" + c.Args + "] <@" + discordtest.BobID + ">", Private: c.Name == "usage"}
	}
	e := start(t, eng, envOpts{config: func(c *Config) { c.GuildIDs = []string{guildID} }})

	var cmds []struct {
		Name    string `json:"name"`
		Options []struct {
			Name    string `json:"name"`
			Options []struct {
				Name         string `json:"name"`
				Autocomplete bool   `json:"autocomplete"`
			} `json:"options"`
		} `json:"options"`
	}
	if err := json.Unmarshal(e.srv.Commands(guildID), &cmds); err != nil {
		t.Fatalf("commands: %v", err)
	}
	var names []string
	for _, c := range cmds {
		names = append(names, c.Name)
	}
	if got := strings.Join(names, ","); got != "model,reset,system,usage,forget,tools,help" {
		t.Errorf("registered %s", got)
	}
	if e.srv.Commands("") != nil {
		t.Error("commands registered globally too")
	}
	if o := cmds[0].Options[0]; o.Name != "set" || len(o.Options) != 2 || !o.Options[0].Autocomplete {
		t.Errorf("/model set = %+v", o)
	}

	thread := "830000000000000001"
	e.srv.AddChannel(discordtest.Channel{ID: thread, GuildID: guildID, Name: "a thread", Type: discordtest.ChannelPublicThread, ParentID: general})
	sub := func(name string, opts ...discordtest.Option) []discordtest.Option {
		return []discordtest.Option{{Name: name, Type: 1, Options: opts}}
	}
	for _, tc := range []struct {
		name    string
		in      discordtest.Invoke
		want    bot.Command
		private bool
	}{
		{"model set", discordtest.Invoke{ChannelID: general, Name: "model", Options: sub("set", discordtest.Option{Name: "model", Type: 3, Value: "gpt-4o"})},
			bot.Command{Name: "model", Args: "gpt-4o", Channel: general}, false},
		{"model list", discordtest.Invoke{ChannelID: general, Name: "model", Options: sub("list", discordtest.Option{Name: "filter", Type: 3, Value: "gpt"})},
			bot.Command{Name: "model", Args: "list gpt", Channel: general}, false},
		{"model show in thread", discordtest.Invoke{ChannelID: thread, Name: "model", Options: sub("show")},
			bot.Command{Name: "model", Args: "", Channel: general, Thread: thread}, false},
		{"model set in thread carries the thread (the engine defaults to it)", discordtest.Invoke{ChannelID: thread, Name: "model", Options: sub("set", discordtest.Option{Name: "model", Type: 3, Value: "gpt-4o"})},
			bot.Command{Name: "model", Args: "gpt-4o", Channel: general, Thread: thread}, false},
		{"model set with scope", discordtest.Invoke{ChannelID: thread, Name: "model", Options: sub("set", discordtest.Option{Name: "model", Type: 3, Value: "gpt-4o"}, discordtest.Option{Name: "scope", Type: 3, Value: "server"})},
			bot.Command{Name: "model", Args: "gpt-4o server", Channel: general, Thread: thread}, false},
		{"model list page", discordtest.Invoke{ChannelID: general, Name: "model", Options: sub("list", discordtest.Option{Name: "page", Type: 4, Value: 2})},
			bot.Command{Name: "model", Args: "list 2", Channel: general}, false},
		{"system in thread", discordtest.Invoke{ChannelID: thread, Name: "system", Options: []discordtest.Option{{Name: "prompt", Type: 3, Value: "Be brief."}}},
			bot.Command{Name: "system", Args: "Be brief.", Channel: general, Thread: thread}, false},
		{"reset", discordtest.Invoke{ChannelID: general, Name: "reset"}, bot.Command{Name: "reset", Channel: general}, false},
		{"system", discordtest.Invoke{ChannelID: general, Name: "system", Options: []discordtest.Option{{Name: "prompt", Type: 3, Value: "Be brief."}}},
			bot.Command{Name: "system", Args: "Be brief.", Channel: general}, false},
		{"usage is private", discordtest.Invoke{ChannelID: general, Name: "usage"}, bot.Command{Name: "usage", Channel: general}, true},
		{"forget confirmed", discordtest.Invoke{ChannelID: general, Name: "forget", Options: []discordtest.Option{{Name: "confirm", Type: 5, Value: true}}},
			bot.Command{Name: "forget", Args: "confirm", Channel: general}, false},
	} {
		id := e.srv.Interact(tc.in)
		e.waitFor(tc.name+" answer", func() bool { in, _ := e.srv.Interaction(id); return len(in.Callbacks) > 0 })
		in, _ := e.srv.Interaction(id)
		cmds := eng.commands()
		got := cmds[len(cmds)-1]
		if got.Name != tc.want.Name || got.Args != tc.want.Args || got.Channel != tc.want.Channel || got.Thread != tc.want.Thread ||
			got.Workspace != guildID || got.Platform != "discord" || got.User.ID != discordtest.AliceID || got.DM {
			t.Errorf("%s: engine got %+v", tc.name, got)
		}
		wantFlags := 0
		if tc.private {
			wantFlags = 64
		}
		if in.ResponseType != 4 || in.Flags != wantFlags || !strings.HasPrefix(in.Content, "ran "+tc.want.Name) {
			t.Errorf("%s: response type %d flags %d content %q", tc.name, in.ResponseType, in.Flags, in.Content)
		}
	}

	// Autocomplete feeds the model option from the catalog.
	id := e.srv.Interact(discordtest.Invoke{ChannelID: general, Name: "model", Autocomplete: true,
		Options: sub("set", discordtest.Option{Name: "model", Type: 3, Value: "gpt", Focused: true})})
	e.waitFor("autocomplete", func() bool { in, _ := e.srv.Interaction(id); return len(in.Callbacks) > 0 })
	in, _ := e.srv.Interaction(id)
	if in.ResponseType != 8 || len(in.Choices) != 2 || in.Choices[0].Value != "gpt-4o" || in.Choices[1].Name != "gpt-4o-mini · OpenAI · $0.15/$0.60" {
		t.Errorf("autocomplete = type %d %+v", in.ResponseType, in.Choices)
	}
	id = e.srv.Interact(discordtest.Invoke{ChannelID: general, Name: "model", Autocomplete: true,
		Options: sub("set", discordtest.Option{Name: "model", Type: 3, Value: "nothing-matches", Focused: true})})
	e.waitFor("empty autocomplete", func() bool { in, _ := e.srv.Interaction(id); return len(in.Callbacks) > 0 })
	if in, _ := e.srv.Interaction(id); in.ResponseType != 8 || len(in.Choices) != 0 {
		t.Errorf("empty autocomplete = %+v", in)
	}
	checkAllowedMentions(t, e.srv)
}

func TestSlowCommandIsDeferred(t *testing.T) {
	t.Parallel()
	eng := newFakeEngine()
	eng.cmdDelay = 300 * time.Millisecond
	long := strings.Repeat("word ", 700) // two messages
	eng.answer = func(c bot.Command) bot.Answer { return bot.Answer{Text: long} }
	e := start(t, eng, envOpts{config: func(c *Config) { c.CommandDeferAfter = 50 * time.Millisecond }})
	id := e.srv.Interact(discordtest.Invoke{ChannelID: general, Name: "usage"})
	e.waitFor("deferred answer", func() bool {
		in, _ := e.srv.Interaction(id)
		return len(in.Followups) == 1
	})
	in, _ := e.srv.Interaction(id)
	if in.ResponseType != 5 || in.Flags != 64 || in.Content == "" || in.Followups[0].Flags != 64 {
		t.Errorf("interaction = %+v", in)
	}
	if squash(in.Content+in.Followups[0].Content) != squash(long) {
		t.Error("deferred answer incomplete")
	}
	checkAllowedMentions(t, e.srv)
}

func TestInviteURLWhenInNoGuild(t *testing.T) {
	t.Parallel()
	eng := newFakeEngine()
	logs := &syncBuffer{}
	e := start(t, eng, envOpts{fake: discordtest.Options{NoGuilds: true}, config: func(c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(logs, nil))
	}})
	want := InviteURL(discordtest.DefaultAppID)
	e.waitFor("invite logged", func() bool { return strings.Contains(logs.String(), "invite_url=") })
	if got := logs.String(); !strings.Contains(got, want) {
		t.Errorf("log lacks %s:\n%s", want, got)
	}
	if e.a.InviteURL() != want {
		t.Errorf("InviteURL() = %q", e.a.InviteURL())
	}
	if !strings.Contains(want, "permissions=309237763072") || !strings.Contains(want, "scope=bot+applications.commands") || !strings.Contains(want, "client_id="+discordtest.DefaultAppID) {
		t.Errorf("invite URL = %s", want)
	}
}
