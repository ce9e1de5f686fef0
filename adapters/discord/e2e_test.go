package discord

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cometbot/cometbot/adapters/discord/discordtest"
	"github.com/cometbot/cometbot/bot"
	"github.com/cometbot/cometbot/bot/bottest"
	"github.com/cometbot/cometbot/llm"
	"github.com/cometbot/cometbot/llm/llmtest"
)

// End-to-end: the real discordgo session against the fake Discord, the real
// engine, store and llm client against the fake gateway.

// startE2E starts a harness (engine + fake gateway) and an adapter in front
// of it. The harness is created first so its cleanup runs after the adapter's.
func startE2E(t *testing.T, gw llmtest.Options, o envOpts) (*env, *bottest.Harness) {
	t.Helper()
	h := bottest.New(t, bottest.Options{Gateway: gw})
	return start(t, h.Engine, o), h
}

func lastUserTexts(p llmtest.Prompt) []string {
	var out []string
	for _, m := range p.Messages {
		out = append(out, string(m.Role)+":"+m.Content)
	}
	return out
}

func TestE2EMentionThreadStreamingAndFollowUp(t *testing.T) {
	t.Parallel()
	answer := "Sure! Here is a streamed answer with quite a few words so that it arrives in several chunks over time, and @everyone stays unpinged."
	e, h := startE2E(t, llmtest.Options{Reply: answer, TTFT: 30 * time.Millisecond, TokensPerSecond: 40}, envOpts{})

	um := e.srv.UserMessage(discordtest.Post{ChannelID: general, Content: mention(botID) + " tell me something"})
	e.waitFor("the streamed reply", func() bool {
		ms := e.srv.BotMessages(um.ID)
		return len(ms) == 1 && ms[0].Content == answer
	})
	r := e.srv.BotMessages(um.ID)[0]
	if r.Edits == 0 {
		t.Errorf("the reply was not streamed (no edits)")
	}
	if th, _ := e.srv.Channel(um.ID); th.ParentID != general {
		t.Errorf("reply not in a thread on the message: %+v", th)
	}
	if p, _ := h.LastPrompt(); p.LastUser() != "tell me something" || p.Model != bottest.DefaultModel {
		t.Errorf("prompt = %v model %s", lastUserTexts(p), p.Model)
	}

	// A follow-up in the thread, without a mention, carries the history.
	h.Gateway.SetReply("Second answer.")
	e.srv.UserMessage(discordtest.Post{ChannelID: um.ID, Content: "and then?"})
	e.waitFor("follow-up reply", func() bool {
		ms := e.srv.BotMessages(um.ID)
		return len(ms) == 2 && ms[1].Content == "Second answer."
	})
	p, _ := h.LastPrompt()
	got := strings.Join(lastUserTexts(p), "|")
	if want := "user:tell me something|assistant:" + answer + "|user:and then?"; got != want {
		t.Errorf("follow-up prompt:\n got %s\nwant %s", got, want)
	}
	checkAllowedMentions(t, e.srv)
}

func TestE2EReplyInPlaceContinuesConversation(t *testing.T) {
	t.Parallel()
	e, h := startE2E(t, llmtest.Options{Echo: true}, envOpts{config: func(c *Config) { c.OpenThreads = false }})
	um := e.srv.UserMessage(discordtest.Post{ChannelID: general, Content: mention(botID) + " first question"})
	e.waitFor("reply", func() bool { return len(e.srv.BotMessages(general)) == 1 })
	r := e.srv.BotMessages(general)[0]
	e.waitFor("final text", func() bool { m, _ := e.srv.Message(r.ID); return m.Content == "echo: first question" })
	if r.ReferenceID != um.ID {
		t.Errorf("reply references %q, want %q", r.ReferenceID, um.ID)
	}
	e.srv.UserMessage(discordtest.Post{ChannelID: general, Content: "second question", ReplyTo: r.ID})
	e.waitFor("second reply", func() bool {
		ms := e.srv.BotMessages(general)
		return len(ms) == 2 && ms[1].Content == "echo: second question"
	})
	p, _ := h.LastPrompt()
	if got := strings.Join(lastUserTexts(p), "|"); got != "user:first question|assistant:echo: first question|user:second question" {
		t.Errorf("prompt = %s", got)
	}
}

func TestE2EDirectMessagesAndReset(t *testing.T) {
	t.Parallel()
	e, h := startE2E(t, llmtest.Options{Echo: true}, envOpts{})
	dm := e.srv.DMChannel(discordtest.AliceID)
	say := func(text string, n int) {
		t.Helper()
		e.srv.UserMessage(discordtest.Post{ChannelID: dm, Content: text})
		e.waitFor("dm reply "+text, func() bool {
			ms := e.srv.BotMessages(dm)
			return len(ms) == n && ms[n-1].Content == "echo: "+text
		})
	}
	say("hello", 1)
	say("again", 2)
	p, _ := h.LastPrompt()
	if got := strings.Join(lastUserTexts(p), "|"); got != "user:hello|assistant:echo: hello|user:again" {
		t.Errorf("prompt = %s", got)
	}
	id := e.srv.Interact(discordtest.Invoke{ChannelID: dm, Name: "reset"})
	e.waitFor("/reset answer", func() bool { in, _ := e.srv.Interaction(id); return in.Content != "" })
	if in, _ := e.srv.Interaction(id); !strings.Contains(in.Content, "new conversation") {
		t.Errorf("/reset = %q", in.Content)
	}
	say("fresh start", 3)
	p, _ = h.LastPrompt()
	if got := strings.Join(lastUserTexts(p), "|"); got != "user:fresh start" {
		t.Errorf("prompt after /reset = %s", got)
	}
}

func TestE2ELongAnswerArrivesInSeveralMessages(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	for i := 0; b.Len() < 6000; i++ {
		fmt.Fprintf(&b, "Paragraph %d. %s\n\n", i, strings.Repeat("The quick brown fox jumps over the lazy dog. ", 6))
		if i == 5 {
			b.WriteString("```python\n" + strings.Repeat("print('hello world')\n", 40) + "```\n\n")
		}
	}
	answer := strings.TrimSpace(b.String())
	e, _ := startE2E(t, llmtest.Options{Reply: answer, ChunkSize: 40}, envOpts{})
	um := e.srv.UserMessage(discordtest.Post{ChannelID: general, Content: mention(botID) + " essay please"})
	e.waitFor("the whole answer", func() bool {
		var parts []string
		for _, m := range e.srv.BotMessages(um.ID) {
			parts = append(parts, m.Content)
		}
		return squash(strings.Join(parts, "")) == squash(answer)
	})
	ms := e.srv.BotMessages(um.ID)
	if len(ms) < 3 {
		t.Fatalf("%d messages, want 3 or more", len(ms))
	}
	for _, m := range ms {
		if n := utf16Len(m.Content); n > 2000 {
			t.Errorf("message of %d units", n)
		}
		if strings.Count(m.Content, "```")%2 != 0 {
			t.Errorf("message with an unbalanced code fence")
		}
	}
	checkAllowedMentions(t, e.srv)
}

func TestE2EModelCommandAutocompleteAndSwitch(t *testing.T) {
	t.Parallel()
	e, h := startE2E(t, llmtest.Options{Reply: "ok"}, envOpts{config: func(c *Config) { c.GuildIDs = []string{guildID} }})
	set := func(opts ...discordtest.Option) []discordtest.Option {
		return []discordtest.Option{{Name: "set", Type: 1, Options: opts}}
	}
	id := e.srv.Interact(discordtest.Invoke{ChannelID: general, Name: "model", Autocomplete: true,
		Options: set(discordtest.Option{Name: "model", Type: 3, Value: "claude", Focused: true})})
	e.waitFor("autocomplete", func() bool { in, _ := e.srv.Interaction(id); return in.ResponseType == 8 })
	in, _ := e.srv.Interaction(id)
	if len(in.Choices) == 0 || in.Choices[0].Value != "claude-sonnet-4-5" || !strings.Contains(in.Choices[0].Name, "Anthropic") || !strings.Contains(in.Choices[0].Name, "$") {
		t.Fatalf("autocomplete choices = %+v", in.Choices)
	}
	for _, c := range in.Choices {
		if !strings.Contains(fmt.Sprint(c.Value), "claude") {
			t.Errorf("choice %v does not match the query", c.Value)
		}
	}

	id = e.srv.Interact(discordtest.Invoke{ChannelID: general, Name: "model", Options: set(discordtest.Option{Name: "model", Type: 3, Value: "claude-sonnet-4-5"})})
	e.waitFor("/model set", func() bool { in, _ := e.srv.Interaction(id); return in.Content != "" })
	in, _ = e.srv.Interaction(id)
	if !strings.Contains(in.Content, "claude-sonnet-4-5") {
		t.Errorf("/model set answered %q", in.Content)
	}

	id = e.srv.Interact(discordtest.Invoke{ChannelID: general, Name: "model", Options: []discordtest.Option{{Name: "list", Type: 1,
		Options: []discordtest.Option{{Name: "filter", Type: 3, Value: "gpt"}}}}})
	e.waitFor("/model list", func() bool { in, _ := e.srv.Interaction(id); return in.Content != "" })
	if in, _ := e.srv.Interaction(id); !strings.Contains(in.Content, "gpt-4o-mini") || strings.Contains(in.Content, "claude") || in.Flags != 64 {
		t.Errorf("/model list gpt = flags %d %q", in.Flags, in.Content)
	}

	um := e.srv.UserMessage(discordtest.Post{ChannelID: general, Content: mention(botID) + " which model?"})
	e.waitFor("reply", func() bool { ms := e.srv.BotMessages(um.ID); return len(ms) == 1 && ms[0].Content == "ok" })
	if m := h.LastModel(); m != "claude-sonnet-4-5" {
		t.Errorf("next reply used %q", m)
	}
	checkAllowedMentions(t, e.srv)
}

func TestE2EResumeReplayIsNotAnsweredTwice(t *testing.T) {
	t.Parallel()
	e, h := startE2E(t, llmtest.Options{Echo: true}, envOpts{config: func(c *Config) { c.OpenThreads = false }})
	e.srv.UserMessage(discordtest.Post{ChannelID: general, Content: mention(botID) + " only once"})
	e.waitFor("reply", func() bool {
		ms := e.srv.BotMessages(general)
		return len(ms) == 1 && ms[0].Content == "echo: only once"
	})
	// Drop the gateway; on RESUME the fake replays the mention (and the
	// bot's own echo) although the client had received them.
	e.srv.DropConnection(3)
	e.waitFor("resumed", func() bool { return e.srv.Resumes() >= 1 && e.a.Ready() })
	e.srv.UserMessage(discordtest.Post{ChannelID: general, Content: mention(botID) + " after resume"})
	e.waitFor("next reply", func() bool {
		ms := e.srv.BotMessages(general)
		return len(ms) >= 2 && ms[len(ms)-1].Content == "echo: after resume"
	})
	e.barrier(general)
	ms := e.srv.BotMessages(general)
	if len(ms) != 2 || ms[1].Content != "echo: after resume" {
		t.Errorf("bot messages after resume: %+v", ms)
	}
	if n := len(h.Prompts()); n != 2 {
		t.Errorf("%d model calls, want 2", n)
	}
	if n := e.srv.Identifies(); n != 1 {
		t.Errorf("%d IDENTIFYs, want 1", n)
	}
}

func TestE2ERateLimitedEditStillCompletes(t *testing.T) {
	t.Parallel()
	answer := strings.TrimSpace(strings.Repeat("streaming words arrive one by one ", 12))
	e, _ := startE2E(t, llmtest.Options{Reply: answer, TTFT: 20 * time.Millisecond, TokensPerSecond: 60},
		envOpts{config: func(c *Config) { c.OpenThreads = false }})
	e.srv.RateLimitNext("PATCH", "/channels/"+general+"/messages/", 500*time.Millisecond)
	e.srv.UserMessage(discordtest.Post{ChannelID: general, Content: mention(botID) + " go"})
	e.waitFor("complete reply", func() bool {
		ms := e.srv.BotMessages(general)
		return len(ms) == 1 && ms[0].Content == answer
	})
	if n := e.srv.RateLimited(); n != 1 {
		t.Errorf("%d 429s, want the injected one", n)
	}
	var limitedAt time.Time
	for _, c := range e.srv.CallsTo("PATCH", "/messages/") {
		if c.Status == 429 {
			limitedAt = c.Time
		} else if !limitedAt.IsZero() {
			if gap := c.Time.Sub(limitedAt); gap < 480*time.Millisecond {
				t.Errorf("edit %s after a 429 with retry_after 500ms", gap)
			}
			break
		}
	}
	if limitedAt.IsZero() {
		t.Error("the injected 429 was not hit")
	}
}

func TestE2EModelErrorShowsOneShortMessage(t *testing.T) {
	t.Parallel()
	e, h := startE2E(t, llmtest.Options{}, envOpts{config: func(c *Config) { c.OpenThreads = false }})
	h.Gateway.Enqueue(llmtest.Script{Status: 400, ErrorMessage: "bad request from test", ErrorType: "invalid_request_error"})
	e.srv.UserMessage(discordtest.Post{ChannelID: general, Content: mention(botID) + " fail please"})
	e.waitFor("failure notice", func() bool { return len(e.srv.BotMessages(general)) == 1 })
	e.barrier(general)
	ms := e.srv.BotMessages(general)
	if len(ms) != 1 || !strings.HasPrefix(ms[0].Content, "⚠️") || strings.Count(ms[0].Content, "⚠️") != 1 || len(ms[0].Content) > 400 {
		t.Errorf("failure messages = %+v", ms)
	}
}

func TestE2EPacingTenStreamsInOneChannel(t *testing.T) {
	t.Parallel()
	const streams = 10
	window := time.Second
	answer := strings.TrimSpace(strings.Repeat("a steady stream of words ", 6))
	e, h := startE2E(t, llmtest.Options{Reply: answer, TTFT: 50 * time.Millisecond, TokensPerSecond: 25},
		envOpts{
			quiet:  true,
			fake:   discordtest.Options{WriteBudget: 5, WriteWindow: window},
			config: func(c *Config) { c.OpenThreads = false; c.EditBudget = 5; c.EditWindow = window },
		})
	for i := 0; i < streams; i++ {
		e.srv.UserMessage(discordtest.Post{ChannelID: general, Content: fmt.Sprintf("%s question %d", mention(botID), i)})
	}
	e.waitFor("all replies complete", func() bool {
		ms := e.srv.BotMessages(general)
		if len(ms) != streams {
			return false
		}
		for _, m := range ms {
			if m.Content != answer {
				return false
			}
		}
		return true
	})
	if n := len(h.Prompts()); n != streams {
		t.Errorf("%d model calls, want %d", n, streams)
	}
	if n := e.srv.RateLimited(); n != 0 {
		t.Errorf("fake answered %d 429s", n)
	}
	if n := e.srv.MaxWritesInWindow(general, window); n > 5 {
		t.Errorf("%d writes inside one %s window, budget 5", n, window)
	}
	var edits int
	for _, m := range e.srv.BotMessages(general) {
		edits += m.Edits
	}
	t.Logf("%d streams: %d posts, %d edits", streams, streams, edits)
}

// withImage is the engine's model (the real client, talking to the fake
// gateway) with one generated image added to every answer: the llm client
// does not decode images a model generates from the wire yet.
type withImage struct {
	bot.Model
	img llm.Image
}

func (m withImage) Stream(ctx context.Context, req llm.Request, onDelta func(llm.Delta) error) (*llm.Response, error) {
	resp, err := m.Model.Stream(ctx, req, onDelta)
	if err == nil {
		resp.Images = append(resp.Images, m.img)
	}
	return resp, err
}

func TestE2EImageOnlyDMAndGeneratedImage(t *testing.T) {
	t.Parallel()
	photo, drawn := pngBytes(5000), pngBytes(3000)
	h := bottest.New(t, bottest.Options{
		Gateway: llmtest.Options{Reply: "A cat on a mat. Here is another."},
		Engine: func(o *bot.Options) {
			o.Model = withImage{Model: o.Model, img: llm.Image{MIMEType: "image/png", Data: drawn}}
		},
	})
	e := start(t, h.Engine, envOpts{})
	dm := e.srv.DMChannel(discordtest.AliceID)
	att := e.srv.AddAttachment(discordtest.CDNFile{ChannelID: dm, Name: "photo.png", ContentType: "image/png", Data: photo})
	e.srv.UserMessage(discordtest.Post{ChannelID: dm, Attachments: []discordtest.Attachment{att}})
	e.waitFor("the answer and the generated image", func() bool {
		ms := e.srv.BotMessages(dm)
		return len(ms) == 2 && len(ms[1].Files) == 1
	})
	p, _ := h.LastPrompt()
	var user llm.Message
	for _, m := range p.Messages {
		if m.Role == llm.RoleUser {
			user = m
		}
	}
	if len(user.Images) != 1 || !bytes.Equal(user.Images[0].Data, photo) {
		t.Errorf("last user turn: %q with %d images; want the photo's bytes", user.Content, len(user.Images))
	}
	ms := e.srv.BotMessages(dm)
	if ms[0].Content != "A cat on a mat. Here is another." {
		t.Errorf("answer = %q", ms[0].Content)
	}
	if f := ms[1].Files[0]; !bytes.Equal(f.Data, drawn) || f.ContentType != "image/png" || !strings.HasSuffix(f.Name, ".png") {
		t.Errorf("uploaded %s %s, %d bytes; want the generated PNG", f.Name, f.ContentType, len(f.Data))
	}
	e.waitFor("the CDN request to be recorded", func() bool { return len(e.srv.CDNRequests()) > 0 })
	if reqs := e.srv.CDNRequests(); len(reqs) != 1 || reqs[0].Authorization {
		t.Errorf("CDN requests = %+v", reqs)
	}
	checkAllowedMentions(t, e.srv)
}
