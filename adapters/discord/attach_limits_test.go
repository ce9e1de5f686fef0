package discord

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cometbot/cometbot/adapters/discord/discordtest"
	"github.com/cometbot/cometbot/bot"
	"github.com/cometbot/cometbot/bot/bottest"
	"github.com/cometbot/cometbot/internal/fetch"
	"github.com/cometbot/cometbot/llm"
	"github.com/cometbot/cometbot/llm/llmtest"
)

// End to end through the real discordgo session, the real engine and the
// real llm client against the fakes: what the attachment rules of issue 10
// promise the user. URLs in text (and the embeds Discord derives from them)
// and files on other hosts are never requested, an over-limit file stops
// being read at the limit, a model without vision gets a one-line
// explanation, and forwards reach the model quoted with their author. Each
// answer is the barrier before asserting that something did not happen: the
// engine reads every file before it calls the model.

// bait is a web server the bot must never reach: it records every request.
type bait struct {
	srv   *httptest.Server
	mu    sync.Mutex
	paths []string
}

func newBait(t *testing.T) *bait {
	t.Helper()
	b := &bait{}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.paths = append(b.paths, r.Method+" "+r.URL.RequestURI())
		b.mu.Unlock()
		w.Header().Set("Content-Type", "image/png")
		_, _ = w.Write(pngBytes(1000))
	}))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *bait) url(path string) string { return b.srv.URL + path }

// host is the bait server's host:port, as it appears in any of its links.
func (b *bait) host() string { return strings.TrimPrefix(b.srv.URL, "http://") }

func (b *bait) requests() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.paths...)
}

// startWith starts a harness with the given gateway and engine options and
// an adapter in front of it (the harness first, so it stops last).
func startWith(t *testing.T, gw llmtest.Options, engine func(*bot.Options), o envOpts) (*env, *bottest.Harness) {
	t.Helper()
	h := bottest.New(t, bottest.Options{Gateway: gw, Engine: engine})
	return start(t, h.Engine, o), h
}

// waitReply waits until the bot's messages in channel after the first skip
// ones, together, contain every one of wants, and returns them joined. It
// fails t, which may be a subtest of e's test.
func (e *env) waitReply(t *testing.T, channel string, skip int, wants ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var all string
	err := e.srv.WaitUntil(ctx, func() bool {
		var parts []string
		for i, m := range e.srv.BotMessages(channel) {
			if i >= skip {
				parts = append(parts, m.Content)
			}
		}
		all = strings.Join(parts, "\n")
		for _, w := range wants {
			if !strings.Contains(all, w) {
				return false
			}
		}
		return true
	})
	if err != nil {
		t.Fatalf("reply in %s never contained %q; it is %q", channel, wants, all)
	}
	return all
}

func lastPromptOf(t *testing.T, h *bottest.Harness) llmtest.Prompt {
	t.Helper()
	p, ok := h.LastPrompt()
	if !ok {
		t.Fatal("no model call")
	}
	return p
}

// Where the answer to a user message appears: in the thread the bot opens
// on a mention, or in the DM.
func inThread(m discordtest.Message) string { return m.ID }

func inDM(m discordtest.Message) string { return m.ChannelID }

func TestE2EURLInTextIsNeverFetched(t *testing.T) {
	t.Parallel()
	b := newBait(t)
	e, h := startWith(t, llmtest.Options{Echo: true}, nil, envOpts{})
	dm := e.srv.DMChannel(discordtest.AliceID)
	for _, tc := range []struct {
		name string
		post discordtest.Post
		in   func(discordtest.Message) string
		echo string
	}{
		{"mention with links", discordtest.Post{ChannelID: general,
			Content: mention(botID) + " what is at " + b.url("/x.png") + " and <" + b.url("/y.png") + ">?"}, inThread, "echo: what is at "},
		{"DM with a link", discordtest.Post{ChannelID: dm, Content: "describe " + b.url("/dm.png")}, inDM, "echo: describe "},
		{"DM forwarding a link and its image embed", discordtest.Post{ChannelID: dm, Content: "see this", Forward: &discordtest.Snapshot{
			Content: "look at " + b.url("/forwarded.png"),
			Embeds: []map[string]any{{"type": "image", "url": b.url("/forwarded.png"),
				"thumbnail": map[string]any{"url": b.url("/thumb.png"), "proxy_url": b.url("/proxy/thumb.png"), "width": 10, "height": 10}}},
		}}, inDM, "echo: see this"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ch := dm
			skip := len(e.srv.BotMessages(dm))
			um := e.srv.UserMessage(tc.post)
			if tc.in(um) != dm {
				ch, skip = tc.in(um), 0
			}
			e.waitReply(t, ch, skip, tc.echo)
			if got := lastPromptOf(t, h).LastUser(); !strings.Contains(got, b.host()) {
				t.Errorf("the model did not get the link as text: %q", got)
			}
			if reqs := b.requests(); len(reqs) != 0 {
				t.Fatalf("the bait server was requested: %q", reqs)
			}
		})
	}
	if reqs := e.srv.CDNRequests(); len(reqs) != 0 {
		t.Errorf("CDN requests: %+v", reqs)
	}
}

func TestE2EFileOnAnotherHostIsNeverFetched(t *testing.T) {
	t.Parallel()
	b := newBait(t)
	e, h := startWith(t, llmtest.Options{Echo: true}, nil, envOpts{})
	dm := e.srv.DMChannel(discordtest.AliceID)
	// onBait is an attachment object whose url and proxy_url point at the
	// bait server (Discord's own would be on its CDN and media proxy).
	onBait := func(name, id string) []discordtest.Attachment {
		return []discordtest.Attachment{{ID: id, ChannelID: dm, Filename: name, ContentType: "image/png", Size: 1000,
			URL:      b.url("/attachments/" + dm + "/" + id + "/" + name + "?ex=1&is=2&hm=3"),
			ProxyURL: b.url("/external/" + id + "/" + name)}}
	}
	for _, tc := range []struct {
		name, file, text string
		post             discordtest.Post
		in               func(discordtest.Message) string
	}{
		{"mention", "mention.png", "what is in it?", discordtest.Post{ChannelID: general, Content: mention(botID) + " what is in it?",
			Attachments: onBait("mention.png", "910000000000000001")}, inThread},
		{"DM", "dm.png", "and this one?", discordtest.Post{ChannelID: dm, Content: "and this one?",
			Attachments: onBait("dm.png", "910000000000000002")}, inDM},
		{"file of a forward", "forwarded.png", "look", discordtest.Post{ChannelID: dm, Content: "look",
			Forward: &discordtest.Snapshot{Content: "the chart", Attachments: onBait("forwarded.png", "910000000000000003")}}, inDM},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ch := dm
			skip := len(e.srv.BotMessages(dm))
			um := e.srv.UserMessage(tc.post)
			if tc.in(um) != dm {
				ch, skip = tc.in(um), 0
			}
			e.waitReply(t, ch, skip, "echo: "+tc.text, "📎 Skipped "+tc.file+": it is not on a file host I download from.")
			if reqs := b.requests(); len(reqs) != 0 {
				t.Fatalf("the bait server was requested: %q", reqs)
			}
			for _, ps := range lastPromptOf(t, h).Parts {
				if len(ps) != 0 {
					t.Errorf("the model got attachment parts: %+v", ps)
				}
			}
		})
	}
	if reqs := e.srv.CDNRequests(); len(reqs) != 0 {
		t.Errorf("CDN requests: %+v", reqs)
	}
}

func TestE2EOverLimitFileStopsAtTheLimit(t *testing.T) {
	t.Parallel()
	const (
		limit = 64 << 10
		size  = 24 << 20
		// buffered bounds what may leave the fake after the bot stops
		// reading: the socket buffers at both ends of the loopback
		// connection (the send buffer alone may grow to 4 MiB) and the
		// transports' own. Observed: 0.1 to 3.9 MiB.
		buffered = 8 << 20
	)
	e, h := startWith(t, llmtest.Options{Echo: true}, func(o *bot.Options) { o.Attachments.MaxBytes = limit }, envOpts{
		config: func(c *Config) {
			c.Fetcher = fetch.New(fetch.Config{MaxBytes: limit, AllowHosts: fetchHosts(c.APIURL)})
		},
	})
	dm := e.srv.DMChannel(discordtest.AliceID)
	big := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	for _, tc := range []struct {
		name, file string
		data       []byte
		noLength   bool
		// declared is the size the attachment object shows.
		declared int64
		// requested says whether the CDN must see a request at all;
		// maxServed bounds what it writes.
		requested bool
		maxServed int64
	}{
		{"streamed without Content-Length, small declared size", "stream.log", big, true, 1024, true, limit + buffered},
		{"Content-Length over the limit, small declared size", "length.log", big, false, 1024, true, buffered},
		{"declared size over the limit", "declared.log", []byte("a small body\n"), false, size, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			att := e.srv.AddAttachment(discordtest.CDNFile{ChannelID: dm, Name: tc.file, ContentType: "text/plain",
				Data: tc.data, NoLength: tc.noLength, DeclaredSize: tc.declared})
			before := len(e.srv.CDNRequests())
			skip := len(e.srv.BotMessages(dm))
			text := "summarize " + tc.file
			e.srv.UserMessage(discordtest.Post{ChannelID: dm, Content: text, Attachments: []discordtest.Attachment{att}})
			e.waitReply(t, dm, skip, "echo: "+text, "📎 Skipped "+tc.file+": ", "over the 64 KiB limit")
			if got := lastPromptOf(t, h).LastUser(); got != text {
				t.Errorf("the model got %q, want only the text", got)
			}
			if !tc.requested {
				if reqs := e.srv.CDNRequests()[before:]; len(reqs) != 0 || e.srv.BytesServed(att.ID) != 0 {
					t.Errorf("a file declared over the limit was requested: %+v", reqs)
				}
				return
			}
			// The CDN records a request once its answer is over: written in
			// full, or cut off by the client.
			e.waitFor("the CDN's answer to end", func() bool { return len(e.srv.CDNRequests()) == before+1 })
			r := e.srv.CDNRequests()[before]
			t.Logf("CDN wrote %d of %d bytes for a %d-byte limit", r.Bytes, len(tc.data), limit)
			if r.Status != http.StatusOK || r.Authorization {
				t.Errorf("CDN request %+v", r)
			}
			if r.Bytes > tc.maxServed {
				t.Errorf("CDN wrote %d bytes, want at most %d (limit %d)", r.Bytes, tc.maxServed, limit)
			}
		})
	}
}

func TestE2EImageForModelWithoutVision(t *testing.T) {
	t.Parallel()
	const model = "acme-text-1"
	models := append(llmtest.DefaultModels(), llm.ModelInfo{ID: model, Provider: "Acme", Type: "text",
		InputModalities: []string{"text"}, APIDocURL: "https://apidoc.cometapi.com/chat"})
	e, h := startWith(t, llmtest.Options{Echo: true, Models: models}, func(o *bot.Options) { o.Defaults.Model = model }, envOpts{})
	dm := e.srv.DMChannel(discordtest.AliceID)
	att := e.srv.AddAttachment(discordtest.CDNFile{ChannelID: dm, Name: "photo.png", ContentType: "image/png", Data: pngBytes(5000)})
	e.srv.UserMessage(discordtest.Post{ChannelID: dm, Content: "what is this?", Attachments: []discordtest.Attachment{att}})
	all := e.waitReply(t, dm, 0, "echo: what is this?", "/model list vision")
	if n := strings.Count(all, "📎"); n != 1 || !strings.Contains(all, "photo.png") || !strings.Contains(all, model) {
		t.Errorf("reply %q: want one line naming the model and photo.png", all)
	}
	p := lastPromptOf(t, h)
	if p.Model != model {
		t.Errorf("model %q, want %q", p.Model, model)
	}
	for i, m := range p.Messages {
		if len(m.Images) != 0 || len(m.Files) != 0 || len(p.Parts[i]) != 0 {
			t.Errorf("message %d carries attachments: %d images, %d files, parts %+v", i, len(m.Images), len(m.Files), p.Parts[i])
		}
	}
}

// Forwards (message_snapshots) reach the model quoted under their author:
// one the bot saw written, and one it looks up.
func TestE2EForwardReachesTheModel(t *testing.T) {
	t.Parallel()
	e, h := startWith(t, llmtest.Options{Echo: true}, nil, envOpts{})
	dm := e.srv.DMChannel(discordtest.AliceID)
	bob := discordtest.User{ID: discordtest.BobID, Username: "bob", GlobalName: "Bob"}
	for _, tc := range []struct {
		name string
		post func() discordtest.Post
		in   func(discordtest.Message) string
		want string
	}{
		{"DM forward of a message the bot saw", func() discordtest.Post {
			seen := e.srv.UserMessage(discordtest.Post{ChannelID: general, Author: bob, Content: "the deploy is at 5\nafter the build"})
			sn, _ := e.srv.Snapshot(seen.ID)
			return discordtest.Post{ChannelID: dm, Forward: &sn}
		}, inDM, "[Forwarded message from Bob]\n> the deploy is at 5\n> after the build"},
		{"mention with a forward of an older message", func() discordtest.Post {
			old := e.srv.AddMessage(discordtest.Post{ChannelID: general, Author: bob, Content: "old news"})
			sn, _ := e.srv.Snapshot(old.ID)
			return discordtest.Post{ChannelID: general, Content: mention(botID) + " is this right?", Forward: &sn}
		}, inThread, "is this right?\n\n[Forwarded message from Bob]\n> old news"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ch := dm
			skip := len(e.srv.BotMessages(dm))
			um := e.srv.UserMessage(tc.post())
			if tc.in(um) != dm {
				ch, skip = tc.in(um), 0
			}
			e.waitReply(t, ch, skip, "echo: ")
			if got := lastPromptOf(t, h).LastUser(); got != tc.want {
				t.Errorf("the model got\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}
