package slack

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/cometbot/cometbot/bot"
	"github.com/cometbot/cometbot/llm/llmtest"
)

// ackMessage is what a command ack payload looks like.
type ackMessage struct {
	ResponseType string            `json:"response_type"`
	Text         string            `json:"text"`
	Blocks       []json.RawMessage `json:"blocks"`
	Options      []struct {
		Value string `json:"value"`
		Text  struct {
			Text string `json:"text"`
		} `json:"text"`
	} `json:"options"`
}

// slash sends a slash command over Socket Mode and returns the ack payload.
func (e *env) slash(user, channel, command, text string) ackMessage {
	e.t.Helper()
	envID, _ := e.slack.SendSlashCommand(slack.SlashCommand{Command: command, Text: text, UserID: user, UserName: "alice", ChannelID: channel})
	return e.waitAck(envID)
}

func (e *env) waitAck(envID string) ackMessage {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	raw, err := e.slack.WaitAck(ctx, envID)
	if err != nil {
		e.t.Fatalf("no ack within Slack's 3 s: %v", err)
	}
	var m ackMessage
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &m); err != nil {
			e.t.Fatalf("ack payload %s: %v", raw, err)
		}
	}
	return m
}

func TestSlashCommands(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{gateway: llmtest.Options{Echo: true}})

	list := e.slash("U1", "C1", "/model", "list gpt")
	if list.ResponseType != "ephemeral" || !strings.Contains(list.Text, "gpt-4o") || strings.Contains(list.Text, "claude") {
		t.Fatalf("/model list gpt = %+v", list)
	}

	sw := e.slash("U1", "C1", "/model", "gpt-4o")
	if !strings.Contains(sw.Text, "gpt-4o") {
		t.Fatalf("/model gpt-4o = %+v", sw)
	}
	ev := e.slack.Mention("U1", "C1", "<@UBOT> which model?", "")
	e.slack.SendEvent(ev)
	e.waitThread("C1", ev.TS, []string{"echo: which model?"})
	if m := e.lastPrompt().Model; m != "gpt-4o" {
		t.Fatalf("model after /model gpt-4o = %q", m)
	}

	e.slash("U1", "C1", "/system", "You are a pirate.")
	ev2 := e.slack.Mention("U1", "C1", "<@UBOT> ahoy", "")
	e.slack.SendEvent(ev2)
	e.waitThread("C1", ev2.TS, []string{"echo: ahoy"})
	if sys := e.lastPrompt().System; !strings.Contains(sys, "You are a pirate.") {
		t.Fatalf("system prompt = %q", sys)
	}

	usage := e.slash("U1", "C1", "/usage", "")
	if usage.Text == "" {
		t.Fatalf("/usage answered nothing")
	}

	// /reset starts a new DM conversation.
	e.slack.SendEvent(e.slack.DM("U1", "D1", "remember this", ""))
	e.waitThread("D1", "", []string{"echo: remember this"})
	reset := e.slash("U1", "D1", "/reset", "")
	if !strings.Contains(reset.Text, "new conversation") {
		t.Fatalf("/reset = %+v", reset)
	}
	e.slack.SendEvent(e.slack.DM("U1", "D1", "fresh start", ""))
	e.waitThread("D1", "", []string{"echo: remember this", "echo: fresh start"})
	if p := e.lastPrompt(); len(p.Messages) != 1 {
		t.Fatalf("history after /reset: %+v", p.Messages)
	}

	unknown := e.slash("U1", "C1", "/nope", "")
	if !strings.Contains(unknown.Text, "Unknown command") {
		t.Fatalf("/nope = %+v", unknown)
	}
}

func TestCommandNamesConfigurable(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{
		gateway: llmtest.Options{Echo: true},
		cfg:     func(c *Config) { c.CommandNames = map[string]string{"/ai-model": "model", "ai-reset": "reset"} },
	})
	if m := e.slash("U1", "C1", "/ai-model", "list"); !strings.Contains(m.Text, "gpt-4o-mini") {
		t.Fatalf("/ai-model list = %+v", m)
	}
	if m := e.slash("U1", "C1", "/model", "list"); !strings.Contains(m.Text, "Unknown command") {
		t.Fatalf("/model should not be registered: %+v", m)
	}
}

func TestLongCommandAnswerUsesResponseURL(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	responses := func(u string) []string {
		var out []string
		for _, r := range e.slack.Responses() {
			if r.URL == u {
				if r.ResponseType != "ephemeral" {
					t.Errorf("response_type = %q", r.ResponseType)
				}
				out = append(out, r.Text)
			}
		}
		return out
	}

	text := strings.Repeat("A line of a long answer.\n\n", 300)
	u := e.slack.NewResponseURL()
	payload, follow := e.a.commandAnswer(bot.Answer{Text: text, Private: true}, false, u, false)
	first := payload.(commandMessage)
	if raw, _ := json.Marshal(first); len(raw) >= 20<<10 {
		t.Fatalf("ack payload is %d bytes", len(raw))
	}
	if follow == nil {
		t.Fatal("no follow-up for a long answer")
	}
	follow(context.Background())
	rest := responses(u)
	if len(rest) == 0 || len(rest) > 4 {
		t.Fatalf("%d response_url posts", len(rest))
	}
	if got := words(first.Text + strings.Join(rest, "")); !equalStrings(got, words(text)) {
		t.Fatalf("command answer incomplete: %d words, want %d", len(got), len(words(text)))
	}

	// Slack allows five uses of a response_url: huge answers are capped.
	u2 := e.slack.NewResponseURL()
	_, follow = e.a.commandAnswer(bot.Answer{Text: strings.Repeat("word ", 5000), Private: true}, false, u2, false)
	follow(context.Background())
	if rest := responses(u2); len(rest) != 4 || !strings.Contains(rest[3], "truncated") {
		t.Fatalf("capped answer: %d posts", len(rest))
	}
}

func TestModelPicker(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{gateway: llmtest.Options{Echo: true}})
	ack := e.slash("U1", "C1", "/model", "")
	if len(ack.Blocks) != 2 || !strings.Contains(string(ack.Blocks[1]), `"external_select"`) ||
		!strings.Contains(string(ack.Blocks[1]), modelActionID) {
		t.Fatalf("/model without args should offer a picker: %+v", ack)
	}

	// Typing in the select asks for options.
	sugg := e.waitAck(e.slack.SendInteraction(map[string]any{
		"type": "block_suggestion", "action_id": modelActionID, "block_id": "cometbot_model", "value": "claude",
		"user": map[string]any{"id": "U1", "name": "alice"}, "team": map[string]any{"id": "T1"},
		"channel": map[string]any{"id": "C1"}, "api_app_id": "A1",
	}))
	if len(sugg.Options) == 0 || sugg.Options[0].Value != "claude-sonnet-4-5" || sugg.Options[0].Text.Text == "" {
		t.Fatalf("block_suggestion options = %+v", sugg.Options)
	}

	// Choosing one switches the model.
	respURL := e.slack.NewResponseURL()
	e.waitAck(e.slack.SendInteraction(map[string]any{
		"type": "block_actions", "user": map[string]any{"id": "U1", "name": "alice"}, "team": map[string]any{"id": "T1"},
		"channel": map[string]any{"id": "C1"}, "response_url": respURL, "api_app_id": "A1",
		"container": map[string]any{"type": "message", "channel_id": "C1", "is_ephemeral": true},
		"actions": []map[string]any{{
			"type": "external_select", "action_id": modelActionID, "block_id": "cometbot_model", "action_ts": "1.2",
			"selected_option": map[string]any{"value": "claude-sonnet-4-5", "text": map[string]any{"type": "plain_text", "text": "claude"}},
		}},
	}))
	e.waitFor("picker answer", 5*time.Second, func() bool {
		for _, r := range e.slack.Responses() {
			if r.URL == respURL && r.ReplaceOriginal && strings.Contains(r.Text, "claude-sonnet-4-5") {
				return true
			}
		}
		return false
	})
	ev := e.slack.Mention("U1", "C1", "<@UBOT> hi", "")
	e.slack.SendEvent(ev)
	e.waitThread("C1", ev.TS, []string{"echo: hi"})
	if m := e.lastPrompt().Model; m != "claude-sonnet-4-5" {
		t.Fatalf("model after picking = %q", m)
	}
}

func TestTextCommandsInThreads(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{gateway: llmtest.Options{Echo: true}})
	ev := e.slack.Mention("U1", "C1", "<@UBOT> remember apples", "")
	e.slack.SendEvent(ev)
	e.waitThread("C1", ev.TS, []string{"echo: remember apples"})

	// "/reset" typed in the thread (where Slack fires no slash commands).
	reset := e.slack.Mention("U1", "C1", "<@UBOT> /reset", ev.TS)
	e.slack.SendEvent(reset)
	dup := reset
	dup.Type, dup.ChannelType = "message", "channel"
	e.slack.SendEvent(dup)
	e.waitFor("reset answer", 5*time.Second, func() bool {
		b := e.bodies("C1", ev.TS)
		return len(b) == 2 && strings.Contains(b[1], "new conversation in this thread")
	})
	e.slack.SendEvent(e.slack.ChannelMessage("U1", "C1", "what did I say?", ev.TS))
	e.waitFor("answer after reset", 10*time.Second, func() bool { return len(e.bodies("C1", ev.TS)) == 3 })
	if p := e.lastPrompt(); len(p.Messages) != 1 {
		t.Fatalf("history after thread /reset: %+v", p.Messages)
	}
	e.barrier("C1")
	if n := len(e.bodies("C1", ev.TS)); n != 3 {
		t.Fatalf("%d messages in thread, want 3 (the doubled /reset must run once)", n)
	}

	// Private answers in channels are ephemeral.
	e.slack.SendEvent(e.slack.Mention("U1", "C1", "<@UBOT> /model list", ev.TS))
	e.waitFor("ephemeral answer", 5*time.Second, func() bool {
		for _, m := range e.slack.Messages("C1") {
			if m.Ephemeral && m.EphemeralUser == "U1" && m.ThreadTS == ev.TS && strings.Contains(m.Text, "gpt-4o") {
				return true
			}
		}
		return false
	})
}
