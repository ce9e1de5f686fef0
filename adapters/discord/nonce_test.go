package discord

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/cometbot/cometbot/adapters/discord/discordtest"
	"github.com/cometbot/cometbot/bot"
	"github.com/cometbot/cometbot/llm/llmtest"
)

// TestE2ELostPostAnswersCreateNoSecondCopy: posts are stored by Discord and
// then lose their answer (an undecodable 200, a dropped connection), some
// twice in a row. Retries carry the part's nonce, so Discord returns the
// message already created: one visible message per part.
func TestE2ELostPostAnswersCreateNoSecondCopy(t *testing.T) {
	t.Parallel()
	long := strings.TrimSpace(strings.Repeat("A long answer that needs more than one Discord message. ", 60))
	for _, tc := range []struct {
		fault  discordtest.Fault
		answer string
		dm     bool
	}{
		{discordtest.FaultBadResponse, "A short answer.", false},
		{discordtest.FaultDrop, "A short answer.", false},
		{discordtest.FaultBadResponse, long, false},
		{discordtest.FaultDrop, long, true},
	} {
		name := fmt.Sprintf("%s/%d parts", tc.fault, len(splitMessage(tc.answer)))
		if tc.dm {
			name += "/dm"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e, _ := startE2E(t, llmtest.Options{Reply: tc.answer}, envOpts{config: func(c *Config) { c.OpenThreads = false }})
			channel, content := general, mention(botID)+" tell me"
			if tc.dm {
				channel, content = e.srv.DMChannel(discordtest.AliceID), "tell me"
			}
			parts := splitMessage(tc.answer)
			for range len(parts) + 1 { // one post loses two answers in a row
				e.srv.FailAfterStore("POST", "/channels/"+channel+"/messages", tc.fault)
			}
			e.srv.UserMessage(discordtest.Post{ChannelID: channel, Content: content})
			e.waitFor("the whole answer", func() bool {
				ms := e.srv.BotMessages(channel)
				if len(ms) < len(parts) {
					return false
				}
				for i, p := range parts {
					if ms[i].Content != p {
						return false
					}
				}
				return true
			})
			e.barrier(channel)
			ms := e.srv.BotMessages(channel)
			if len(ms) != len(parts) {
				t.Fatalf("%d bot messages for %d parts", len(ms), len(parts))
			}
			posts := e.srv.CallsTo("POST", "/channels/"+channel+"/messages")
			faulted := 0
			nonceOf := map[string]string{} // nonce -> message id (via the stored messages)
			for _, m := range ms {
				if m.Nonce == "" || len(m.Nonce) > 25 || nonceOf[m.Nonce] != "" {
					t.Errorf("message %s: nonce %q missing, too long or shared", m.ID, m.Nonce)
				}
				nonceOf[m.Nonce] = m.ID
			}
			for _, c := range posts {
				var body struct {
					Nonce        string `json:"nonce"`
					EnforceNonce bool   `json:"enforce_nonce"`
				}
				if err := json.Unmarshal(c.Body, &body); err != nil || !body.EnforceNonce || nonceOf[body.Nonce] == "" {
					t.Errorf("post %s: nonce %q enforce %v does not name a visible message", c.Body, body.Nonce, body.EnforceNonce)
				}
				if c.Fault != "" {
					faulted++
				}
			}
			if faulted != len(parts)+1 || len(posts) != len(parts)+faulted {
				t.Errorf("%d posts, %d lost answers, for %d parts", len(posts), faulted, len(parts))
			}
			checkAllowedMentions(t, e.srv)
		})
	}
}

// TestLostUploadAnswerCreatesNoSecondCopy: a message carrying files whose
// answers are lost is retried with its nonce: one message with the files.
func TestLostUploadAnswerCreatesNoSecondCopy(t *testing.T) {
	t.Parallel()
	for _, fault := range []discordtest.Fault{discordtest.FaultBadResponse, discordtest.FaultDrop} {
		t.Run(string(fault), func(t *testing.T) {
			t.Parallel()
			eng := newFakeEngine()
			eng.files = func(bot.Message) []bot.File {
				return []bot.File{{Name: "cat.png", MIMEType: "image/png", Data: pngBytes(3000)}}
			}
			e := start(t, eng, envOpts{})
			dm := e.srv.DMChannel(discordtest.AliceID)
			for range 2 { // after the text, the upload loses two answers
				e.srv.FailAfterStoreSkipping("POST", "/channels/"+dm+"/messages", 1, fault)
			}
			e.srv.UserMessage(discordtest.Post{ChannelID: dm, Content: "draw a cat"})
			eng.waitTurns(t, 1)
			e.waitFor("upload result", func() bool { return len(eng.uploadResults()) == 1 })
			if err := eng.uploadResults()[0]; err != nil {
				t.Fatalf("Upload = %v", err)
			}
			e.barrier(dm)
			ms := e.srv.BotMessages(dm)
			if len(ms) != 2 || ms[0].Content != "echo: draw a cat" || len(ms[1].Files) != 1 {
				var got []string
				for _, m := range ms {
					got = append(got, fmt.Sprintf("%q with %d files", m.Content, len(m.Files)))
				}
				t.Fatalf("DM messages: %s; want the answer and one message with the file", strings.Join(got, ", "))
			}
			var lost int
			for _, c := range e.srv.CallsTo("POST", "/channels/"+dm+"/messages") {
				if c.Fault != "" {
					lost++
					if !strings.HasPrefix(c.ContentType, "multipart/") {
						t.Errorf("the text post lost its answer, not the upload")
					}
				}
			}
			if lost != 2 {
				t.Errorf("%d lost answers, want 2", lost)
			}
		})
	}
}
