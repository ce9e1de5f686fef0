package slack

import (
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/cometbot/cometbot/adapters/slack/slacktest"
	"github.com/cometbot/cometbot/bot"
	"github.com/cometbot/cometbot/llm"
	"github.com/cometbot/cometbot/llm/llmtest"
)

const modelAnswer = "## Plan\n\nFirst, **install** the tool. Then run `make build` and read [the guide](https://example.com/guide?a=1&b=2).\n\n" +
	"- it is *fast*\n- it is ~~slow~~ safe\n\n```go\nfunc main() { fmt.Println(\"<hi>\") }\n```\n\nThat's all, friends."

func TestMentionGetsThreadedStreamedReply(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{gateway: llmtest.Options{Reply: modelAnswer, TokensPerSecond: 60}})
	ev := e.slack.Mention("U1", "C1", "<@UBOT> how do I start?", "")
	envID, _ := e.slack.SendEvent(ev)
	// An app subscribed to message.channels gets the same message again.
	dup := ev
	dup.Type, dup.ChannelType = "message", "channel"
	e.slack.SendEvent(dup)

	want := e.expectClassic(modelAnswer)
	if len(want) != 1 || !strings.HasPrefix(want[0], "*Plan*") {
		t.Fatalf("unexpected rendering %q", want)
	}
	e.waitThread("C1", ev.TS, want)
	e.barrier("C1")
	if n := e.prompts(); n != 1 {
		t.Fatalf("model calls = %d, want 1 (double delivery must be answered once)", n)
	}
	if got := e.lastPrompt().LastUser(); got != "how do I start?" {
		t.Errorf("model saw %q", got)
	}
	if top := e.slack.BotReplies("C1", ""); len(top) != 0 {
		t.Errorf("bot posted %d top-level messages; replies belong in the thread", len(top))
	}
	status := e.slack.Calls("assistant.threads.setStatus")
	if len(status) == 0 || status[0].Params.Get("thread_ts") != ev.TS || status[0].Params.Get("status") == "" {
		t.Errorf("no thinking status in the thread: %+v", status)
	}
	if posts := okCalls(e.slack.Calls("chat.postMessage")); len(posts) != 1 {
		t.Errorf("chat.postMessage calls = %d, want 1", len(posts))
	}
	if ups := okCalls(e.slack.Calls("chat.update")); len(ups) < 2 {
		t.Errorf("chat.update calls = %d: the reply did not stream", len(ups))
	}
	env, _ := e.slack.Envelope(envID)
	if !env.Acked || env.AckedAt.Sub(env.SentAt) > 3*time.Second {
		t.Errorf("envelope not acked within 3 s: %+v", env)
	}
}

func okCalls(cs []slacktest.Call) []slacktest.Call {
	var out []slacktest.Call
	for _, c := range cs {
		if c.OK() {
			out = append(out, c)
		}
	}
	return out
}

func TestThreadFollowUpCarriesHistory(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{gateway: llmtest.Options{Echo: true}})
	ev := e.slack.Mention("U1", "C1", "<@UBOT> first question", "")
	e.slack.SendEvent(ev)
	e.waitThread("C1", ev.TS, []string{"echo: first question"})

	// A reply in the thread without a mention continues the conversation.
	e.slack.SendEvent(e.slack.ChannelMessage("U2", "C1", "second question", ev.TS))
	e.waitThread("C1", ev.TS, []string{"echo: first question", "echo: second question"})
	p := e.lastPrompt()
	if len(p.Messages) != 3 || p.Messages[0].Content != "first question" || p.Messages[1].Role != llm.RoleAssistant ||
		p.Messages[2].Content != "second question" {
		t.Fatalf("history not carried: %+v", p.Messages)
	}

	// Channel chatter outside the thread is not for the bot.
	e.slack.SendEvent(e.slack.ChannelMessage("U1", "C1", "lunch?", ""))
	e.barrier("C1")
	if n := e.prompts(); n != 2 {
		t.Fatalf("model calls = %d, want 2", n)
	}
}

func TestThreadFollowUpNeedsMentionWhenConfigured(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{
		gateway: llmtest.Options{Echo: true},
		cfg:     func(c *Config) { c.MentionRequiredInThreads = true },
		engine:  func(o *bot.Options) { o.MentionRequiredInThreads = true },
	})
	ev := e.slack.Mention("U1", "C1", "<@UBOT> hello", "")
	e.slack.SendEvent(ev)
	e.waitThread("C1", ev.TS, []string{"echo: hello"})
	e.slack.SendEvent(e.slack.ChannelMessage("U1", "C1", "no mention", ev.TS))
	e.barrier("C1")
	if n := e.prompts(); n != 1 {
		t.Fatalf("model calls = %d, want 1", n)
	}
	e.slack.SendEvent(e.slack.Mention("U1", "C1", "<@UBOT> with mention", ev.TS))
	e.waitThread("C1", ev.TS, []string{"echo: hello", "echo: with mention"})
}

func TestDirectMessages(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{gateway: llmtest.Options{Echo: true}})
	e.slack.SendEvent(e.slack.DM("U1", "D1", "hi there", ""))
	e.waitThread("D1", "", []string{"echo: hi there"})
	first := e.slack.BotReplies("D1", "")[0]
	e.slack.SendEvent(e.slack.DM("U1", "D1", "and more", ""))
	e.waitThread("D1", "", []string{"echo: hi there", "echo: and more"})
	if p := e.lastPrompt(); len(p.Messages) != 3 {
		t.Fatalf("DM history not carried: %+v", p.Messages)
	}
	// A thread inside the DM is its own conversation.
	e.slack.SendEvent(e.slack.DM("U1", "D1", "side topic", first.TS))
	e.waitThread("D1", first.TS, []string{"echo: side topic"})
	if p := e.lastPrompt(); len(p.Messages) != 1 {
		t.Fatalf("DM thread should start fresh, got %+v", p.Messages)
	}
}

func TestRedeliveredEnvelopeProducesNoSecondReply(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{gateway: llmtest.Options{Echo: true}})
	ev := e.slack.Mention("U1", "C1", "<@UBOT> once", "")
	envID, _ := e.slack.SendEvent(ev)
	e.waitThread("C1", ev.TS, []string{"echo: once"})
	e.slack.Redeliver(envID)
	e.waitFor("redelivery acked", 5*time.Second, func() bool {
		env, _ := e.slack.Envelope(envID)
		return env.Deliveries == 2 && env.Acked
	})
	e.barrier("C1")
	if n := e.prompts(); n != 1 {
		t.Fatalf("model calls = %d after redelivery, want 1", n)
	}
	e.waitThread("C1", ev.TS, []string{"echo: once"})
}

func TestMentionsResolvedForTheModel(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{gateway: llmtest.Options{Echo: true}})
	text := "<@UBOT> please ask <@U2> and <@U1|alice> about <#C9|general>, see <https://x.io|site> &amp; &lt;3 <!here>"
	ev := e.slack.Mention("U1", "C1", text, "")
	e.slack.SendEvent(ev)
	want := "please ask @Bob Builder and @alice about #general, see site (https://x.io) & <3 @here"
	e.waitFor("model call", 10*time.Second, func() bool { return e.prompts() == 1 })
	if got := e.lastPrompt().LastUser(); got != want {
		t.Fatalf("model saw %q\nwant       %q", got, want)
	}
	// The reply echoes "@here": it must not ping.
	e.waitFor("reply", 10*time.Second, func() bool {
		r := e.slack.BotReplies("C1", ev.TS)
		return len(r) == 1 && strings.Contains(r[0].Body(), "Bob Builder")
	})
	if body := e.slack.BotReplies("C1", ev.TS)[0].Body(); strings.Contains(body, "@here") || strings.Contains(body, "<!") {
		t.Errorf("reply can ping: %q", body)
	}
	// users.info is cached.
	e.slack.SendEvent(e.slack.Mention("U1", "C1", "<@UBOT> again <@U2>", ""))
	e.waitFor("second model call", 10*time.Second, func() bool { return e.prompts() == 2 })
	n := 0
	for _, c := range e.slack.Calls("users.info") {
		if c.Params.Get("user") == "U2" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("users.info for U2 called %d times, want 1", n)
	}
}

func TestIgnoresBotsEditsDeletionsAndJoins(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{gateway: llmtest.Options{Echo: true}})
	s := e.slack
	events := []any{
		slacktest.MessageEvent{Type: "message", SubType: "bot_message", BotID: "B2", Text: "<@UBOT> hi", Channel: "C1", ChannelType: "channel", TS: s.NextTS()},
		slacktest.MessageEvent{Type: "app_mention", User: "U3", BotID: "B3", Text: "<@UBOT> from a bot", Channel: "C1", TS: s.NextTS()},
		slacktest.MessageEvent{Type: "message", User: "UBOT", BotID: "BBOT", Text: "my own words", Channel: "D1", ChannelType: "im", TS: s.NextTS()},
		slacktest.MessageEvent{Type: "message", SubType: "channel_join", User: "U1", Text: "<@U1> has joined the channel", Channel: "C1", ChannelType: "channel", TS: s.NextTS()},
		map[string]any{"type": "message", "subtype": "message_changed", "channel": "D1", "channel_type": "im", "ts": s.NextTS(),
			"message": map[string]any{"type": "message", "user": "U1", "text": "edited text", "ts": "1700000000.000001"}},
		map[string]any{"type": "message", "subtype": "message_deleted", "channel": "D1", "channel_type": "im", "ts": s.NextTS(), "deleted_ts": "1700000000.000001"},
		map[string]any{"type": "app_mention", "user": "U1", "text": "<@UBOT> edited in", "channel": "C1", "ts": s.NextTS(), "edited": map[string]any{"user": "U1", "ts": "1"}},
	}
	var ids []string
	for _, ev := range events {
		id, _ := s.SendEvent(ev)
		ids = append(ids, id)
	}
	e.waitFor("all acked", 5*time.Second, func() bool {
		for _, id := range ids {
			if env, _ := s.Envelope(id); !env.Acked {
				return false
			}
		}
		return true
	})
	e.barrier("C1", "D1")
	if n := e.prompts(); n != 0 {
		t.Fatalf("model calls = %d, want 0", n)
	}
	if n := len(okCalls(s.Calls("chat.postMessage"))); n != 0 {
		t.Fatalf("bot posted %d messages", n)
	}
}

func TestModelOutputCannotPing(t *testing.T) {
	t.Parallel()
	answer := "Heads up @here and @channel! <!everyone> <!subteam^S123|@devs> <!here> and <@U2>, please look."
	for _, native := range []bool{false, true} {
		name := "classic"
		if native {
			name = "native"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, envOptions{gateway: llmtest.Options{Reply: answer}, cfg: func(c *Config) { c.NativeStreaming = native }})
			ev := e.slack.Mention("U1", "C1", "<@UBOT> say it", "")
			e.slack.SendEvent(ev)
			e.waitFor("reply", 10*time.Second, func() bool {
				r := e.slack.BotReplies("C1", ev.TS)
				return len(r) == 1 && strings.Contains(r[0].Body(), "please look.") && !r[0].Streaming
			})
			m := e.slack.BotReplies("C1", ev.TS)[0]
			for _, field := range []string{m.Text, m.Markdown} {
				for _, bad := range []string{"<!everyone", "<!here", "<!subteam", "<@U2", "@here", "@channel", "@everyone"} {
					if strings.Contains(field, bad) {
						t.Errorf("message contains %q: %q", bad, field)
					}
				}
			}
		})
	}
}

// longAnswer builds a model-style answer of about n characters with
// paragraphs, lists and code fences.
func longAnswer(n int) string {
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		switch i % 5 {
		case 0:
			b.WriteString("## Section " + itoa(i) + "\n\n")
		case 3:
			b.WriteString("```\n")
			for j := 0; j < 25; j++ {
				b.WriteString("line " + itoa(i) + " " + itoa(j) + " of the code block\n")
			}
			b.WriteString("```\n\n")
		default:
			b.WriteString("Paragraph " + itoa(i) + " talks about **streaming** and *pacing* in detail. ")
			b.WriteString(strings.Repeat("The quick brown fox jumps over the lazy dog. ", 8))
			b.WriteString("\n\n- point one\n- point two\n\n")
		}
	}
	return b.String()
}

func itoa(i int) string {
	const digits = "0123456789"
	if i < 10 {
		return digits[i : i+1]
	}
	return itoa(i/10) + digits[i%10:i%10+1]
}

var reWord = regexp.MustCompile(`[A-Za-z0-9]+`)

// words returns the alphanumeric words of s, ignoring formatting.
func words(s string) []string { return reWord.FindAllString(s, -1) }

func TestLongAnswerArrivesCompleteInValidPieces(t *testing.T) {
	t.Parallel()
	answer := longAnswer(12000)
	if len(answer) < 12000 {
		t.Fatal("answer too short")
	}
	for _, native := range []bool{false, true} {
		name := "classic"
		if native {
			name = "native"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, envOptions{gateway: llmtest.Options{Reply: answer, ChunkSize: 40}, cfg: func(c *Config) { c.NativeStreaming = native }})
			ev := e.slack.Mention("U1", "C1", "<@UBOT> tell me everything", "")
			e.slack.SendEvent(ev)
			wantWords := words(answer)
			e.waitFor("complete answer", 20*time.Second, func() bool {
				r := e.slack.BotReplies("C1", ev.TS)
				for _, m := range r {
					if m.Streaming {
						return false
					}
				}
				return equalStrings(words(strings.ReplaceAll(joinBodies(r), "```", "")), wantWords)
			})
			msgs := e.slack.BotReplies("C1", ev.TS)
			minParts := 4
			if native {
				minParts = 2
			}
			if len(msgs) < minParts {
				t.Fatalf("%d messages, want at least %d", len(msgs), minParts)
			}
			for i, m := range msgs {
				if n := utf8.RuneCountInString(m.Text); n > 4000 {
					t.Errorf("message %d text has %d runes", i, n)
				}
				if n := utf8.RuneCountInString(m.Markdown); n > 12000 {
					t.Errorf("message %d markdown has %d runes", i, n)
				}
				fences := 0
				for _, line := range strings.Split(m.Body(), "\n") {
					if strings.HasPrefix(line, "```") {
						fences++
					}
				}
				if fences%2 != 0 {
					t.Errorf("message %d has an unclosed code fence", i)
				}
			}
			for _, c := range e.slack.Calls() {
				if c.Error == "msg_too_long" || c.Error == "invalid_blocks" {
					t.Errorf("%s failed with %s", c.Method, c.Error)
				}
			}
			if !native {
				e.waitThread("C1", ev.TS, e.expectClassic(answer))
			}
		})
	}
}

func TestEngineErrorShowsOneShortMessage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{gateway: llmtest.Options{Echo: true}})
	e.h.Gateway.Enqueue(llmtest.Script{Status: 400, ErrorMessage: "invalid request:\n  at frame 1\n  at frame 2", ErrorType: "invalid_request_error"})
	ev := e.slack.Mention("U1", "C1", "<@UBOT> break please", "")
	e.slack.SendEvent(ev)
	e.waitFor("error message", 15*time.Second, func() bool {
		r := e.slack.BotReplies("C1", ev.TS)
		return len(r) == 1 && !strings.Contains(r[0].Body(), "Thinking")
	})
	e.barrier("C1")
	r := e.slack.BotReplies("C1", ev.TS)
	if len(r) != 1 {
		t.Fatalf("%d messages, want 1: %q", len(r), e.bodies("C1", ev.TS))
	}
	body := r[0].Body()
	if strings.Contains(body, "\n") || utf8.RuneCountInString(body) > 320 || strings.Contains(body, "frame") {
		t.Errorf("error message is not short: %q", body)
	}
	if !strings.HasPrefix(body, "⚠️") && !strings.HasPrefix(body, ":warning:") {
		t.Errorf("error message has no emoji: %q", body)
	}
}

func TestPlaceholderWhenThreadStatusUnavailable(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{gateway: llmtest.Options{Echo: true, TokensPerSecond: 50}})
	e.slack.Disable("assistant.threads.setStatus")
	ev := e.slack.Mention("U1", "C1", "<@UBOT> one two three four five", "")
	e.slack.SendEvent(ev)
	e.waitThread("C1", ev.TS, []string{"echo: one two three four five"})
	posts := okCalls(e.slack.Calls("chat.postMessage"))
	if len(posts) != 1 || posts[0].Params.Get("text") != placeholderText || posts[0].Params.Get("thread_ts") != ev.TS {
		t.Fatalf("expected one placeholder post in the thread, got %+v", posts)
	}
	// The workspace remembers: no more setStatus attempts.
	ev2 := e.slack.Mention("U1", "C1", "<@UBOT> again", "")
	e.slack.SendEvent(ev2)
	e.waitThread("C1", ev2.TS, []string{"echo: again"})
	if n := len(e.slack.Calls("assistant.threads.setStatus")); n != 1 {
		t.Errorf("setStatus tried %d times, want 1", n)
	}
}

func TestNativeStreaming(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{gateway: llmtest.Options{Reply: modelAnswer, TokensPerSecond: 60}, cfg: func(c *Config) { c.NativeStreaming = true }})
	ev := e.slack.Mention("U1", "C1", "<@UBOT> stream it", "")
	e.slack.SendEvent(ev)
	want := neutralizeMarkdown(bot.Split(modelAnswer, 10000)[0])
	e.waitFor("streamed reply", 10*time.Second, func() bool {
		r := e.slack.BotReplies("C1", ev.TS)
		return len(r) == 1 && !r[0].Streaming && r[0].Markdown == want
	})
	m := e.slack.BotReplies("C1", ev.TS)[0]
	if !m.Streamed || m.Edits != 0 {
		t.Errorf("reply was not natively streamed: %+v", m)
	}
	start := okCalls(e.slack.Calls("chat.startStream"))
	if len(start) != 1 || start[0].Params.Get("recipient_user_id") != "U1" || start[0].Params.Get("recipient_team_id") != "T1" ||
		start[0].Params.Get("thread_ts") != ev.TS {
		t.Errorf("chat.startStream calls: %+v", start)
	}
	if n := len(okCalls(e.slack.Calls("chat.appendStream"))); n < 1 {
		t.Errorf("chat.appendStream calls = %d", n)
	}
	if n := len(okCalls(e.slack.Calls("chat.stopStream"))); n != 1 {
		t.Errorf("chat.stopStream calls = %d", n)
	}
}

func TestNativeStreamingFallsBack(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{gateway: llmtest.Options{Reply: modelAnswer, TokensPerSecond: 60}, cfg: func(c *Config) { c.NativeStreaming = true }})
	e.slack.Disable("chat.startStream")
	for i := range 2 {
		ev := e.slack.Mention("U1", "C1", "<@UBOT> stream it "+itoa(i), "")
		e.slack.SendEvent(ev)
		e.waitThread("C1", ev.TS, e.expectClassic(modelAnswer))
	}
	if n := len(e.slack.Calls("chat.startStream")); n != 1 {
		t.Errorf("chat.startStream tried %d times, want 1 (the workspace should remember)", n)
	}
}

func TestRateLimitedUpdateIsHonoured(t *testing.T) {
	t.Parallel()
	answer := strings.TrimSpace(strings.Repeat("streaming words arrive slowly here ", 8))
	e := newEnv(t, envOptions{gateway: llmtest.Options{Reply: answer, TokensPerSecond: 40}})
	e.slack.RateLimitNext("chat.update", time.Second)
	ev := e.slack.Mention("U1", "C1", "<@UBOT> go", "")
	e.slack.SendEvent(ev)
	e.waitThread("C1", ev.TS, []string{answer})
	calls := e.slack.Calls("chat.update")
	limited := -1
	for i, c := range calls {
		if c.Status == 429 {
			limited = i
			break
		}
	}
	if limited < 0 || limited == len(calls)-1 {
		t.Fatalf("expected a 429 followed by more chat.update calls, got %d calls (429 at %d)", len(calls), limited)
	}
	if gap := calls[limited+1].Time.Sub(calls[limited].Time); gap < 950*time.Millisecond {
		t.Errorf("next chat.update came %v after the 429, want >= Retry-After (1s)", gap)
	}
}

func TestSocketReconnectLosesNothing(t *testing.T) {
	t.Parallel()
	long := strings.TrimSpace(strings.Repeat("slow words keep coming ", 10))
	e := newEnv(t, envOptions{gateway: llmtest.Options{Reply: long, TokensPerSecond: 25}})
	ev1 := e.slack.Mention("U1", "C1", "<@UBOT> first", "")
	e.slack.SendEvent(ev1)
	e.waitFor("streaming started", 10*time.Second, func() bool { return len(e.slack.BotReplies("C1", ev1.TS)) == 1 })

	// The network drops mid-answer; a message arrives meanwhile.
	e.slack.DropConnections()
	ev2 := e.slack.Mention("U2", "C2", "<@UBOT> second", "")
	e.slack.SendEvent(ev2)
	e.waitThread("C1", ev1.TS, []string{long})
	e.waitThread("C2", ev2.TS, []string{long})
	if n := e.slack.Connections(); n < 2 {
		t.Fatalf("connections = %d, want a reconnect", n)
	}

	// Slack asks for a refresh mid-conversation.
	ev3 := e.slack.ChannelMessage("U1", "C1", "third", ev1.TS)
	e.slack.SendEvent(ev3)
	e.waitFor("third answer streaming", 10*time.Second, func() bool { return len(e.slack.BotReplies("C1", ev1.TS)) == 2 })
	e.slack.Disconnect("refresh_requested")
	ev4 := e.slack.Mention("U1", "C3", "<@UBOT> fourth", "")
	e.slack.SendEvent(ev4)
	e.waitThread("C1", ev1.TS, []string{long, long})
	e.waitThread("C3", ev4.TS, []string{long})
	e.waitFor("ready again", 5*time.Second, e.a.Ready)
	if n := e.slack.Connections(); n < 3 {
		t.Fatalf("connections = %d, want another reconnect", n)
	}
	e.barrier("C1", "C2", "C3")
	if n := e.prompts(); n != 4 {
		t.Fatalf("model calls = %d, want 4 (nothing lost, nothing doubled)", n)
	}
	if p := e.lastPrompt(); p.LastUser() != "fourth" {
		// The third turn carried the thread's history.
		t.Logf("last prompt: %q", p.LastUser())
	}
}

// TestSlackbotNoticesAreNotAnswered: Slackbot posts system notices into the
// bot's DM as user USLACKBOT without bot_id (payloads as Slack sends them).
func TestSlackbotNoticesAreNotAnswered(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{gateway: llmtest.Options{Echo: true}})
	s := e.slack
	notices := []map[string]any{
		{"user": "USLACKBOT", "type": "message", "ts": s.NextTS(), "text": "You have been added to #general by Alice.",
			"team": "T1", "channel": "D1", "event_ts": "1700000000.000100", "channel_type": "im"},
		{"user": "USLACKBOT", "type": "message", "ts": s.NextTS(), "channel": "D1", "channel_type": "im", "team": "T1",
			"text": "Reminder: stand-up in 5 minutes.",
			"blocks": []any{map[string]any{"type": "rich_text", "block_id": "x1", "elements": []any{map[string]any{
				"type": "rich_text_section", "elements": []any{map[string]any{"type": "text", "text": "Reminder: stand-up in 5 minutes."}}}}}}},
		{"user": "USLACKBOT", "type": "message", "ts": s.NextTS(), "channel": "D1", "channel_type": "im", "team": "T1",
			"text": "<@UBOT> I searched for that on our Help Center."},
	}
	for _, n := range notices {
		s.SendEvent(n)
	}
	e.slack.SendEvent(e.slack.DM("U1", "D1", "a real question", ""))
	e.waitThread("D1", "", []string{"echo: a real question"})
	e.barrier("D1")
	if n := e.prompts(); n != 1 {
		t.Fatalf("model calls = %d, want 1 (Slackbot's notices are not for the model)", n)
	}
	if n := len(e.slack.BotReplies("D1", "")); n != 1 {
		t.Fatalf("%d answers in the DM, want 1", n)
	}
}
