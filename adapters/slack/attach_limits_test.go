package slack

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cometbot/cometbot/adapters/slack/slacktest"
	"github.com/cometbot/cometbot/bot"
	"github.com/cometbot/cometbot/internal/fetch"
	"github.com/cometbot/cometbot/llm"
	"github.com/cometbot/cometbot/llm/llmtest"
)

// End to end through the real slack-go clients, the real engine and the
// real llm client against the fakes: what the attachment rules of issue 10
// promise the user. URLs in text and files on other hosts are never
// requested, an over-limit file stops being read at the limit, a model
// without vision gets a one-line explanation, and shared messages reach the
// model quoted with their author. Each answer is the barrier before
// asserting that something did not happen: the engine reads every file
// before it calls the model.

// bait is a web server the bot must never reach: it counts every request.
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
		_, _ = w.Write(pngBytes)
	}))
	t.Cleanup(b.srv.Close)
	return b
}

// url is a link to path on the bait server.
func (b *bait) url(path string) string { return b.srv.URL + path }

// host is the bait server's host:port, as it appears in any of its links.
func (b *bait) host() string { return strings.TrimPrefix(b.srv.URL, "http://") }

// requests returns what the bait server was asked for.
func (b *bait) requests() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.paths...)
}

// waitReply waits until the bot's messages in the thread, together, contain
// every one of wants, and returns them joined. It fails t (which may be a
// subtest of e's test).
func (e *env) waitReply(t *testing.T, channel, thread string, wants ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var all string
	err := e.slack.Wait(ctx, func() bool {
		all = strings.Join(e.bodies(channel, thread), "\n")
		for _, w := range wants {
			if !strings.Contains(all, w) {
				return false
			}
		}
		return true
	})
	if err != nil {
		t.Fatalf("reply in %s/%s never contained %q; it is %q", channel, thread, wants, all)
	}
	return all
}

// lastPromptOf is the last model call, failing t when there was none.
func (e *env) lastPromptOf(t *testing.T) llmtest.Prompt {
	t.Helper()
	p, ok := e.h.LastPrompt()
	if !ok {
		t.Fatal("no model call")
	}
	return p
}

// replyPlace is where the bot answers an event: in the thread of a channel
// message, at the top of a DM.
func replyPlace(ev slacktest.MessageEvent) (channel, thread string) {
	if ev.ChannelType == "im" {
		return ev.Channel, ev.ThreadTS
	}
	if ev.ThreadTS != "" {
		return ev.Channel, ev.ThreadTS
	}
	return ev.Channel, ev.TS
}

func TestE2EURLInTextIsNeverFetched(t *testing.T) {
	t.Parallel()
	b := newBait(t)
	e := newEnv(t, envOptions{gateway: llmtest.Options{Echo: true}})
	for _, tc := range []struct {
		name string
		ev   func() slacktest.MessageEvent
		echo string // the start of the answer
	}{
		{"mention with links", func() slacktest.MessageEvent {
			return e.slack.Mention("U1", "C1", "<@UBOT> what is in <"+b.url("/x.png")+"> and <"+b.url("/y.png")+"|this picture>?", "")
		}, "echo: what is in "},
		{"DM with a link and a bare URL", func() slacktest.MessageEvent {
			return e.slack.DM("U1", "D1", "describe <"+b.url("/dm.png")+"> or "+b.url("/bare.png"), "")
		}, "echo: describe "},
		{"DM sharing a message with a link", func() slacktest.MessageEvent {
			return e.slack.DM("U1", "D2", "see this", "").WithShares(e.slack.Share("U2", "C7", "look at <"+b.url("/shared.png")+">"))
		}, "echo: see this"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := tc.ev()
			e.slack.SendEvent(ev)
			ch, th := replyPlace(ev)
			e.waitReply(t, ch, th, tc.echo)
			if got := e.lastPromptOf(t).LastUser(); !strings.Contains(got, b.host()) {
				t.Errorf("the model did not get the link as text: %q", got)
			}
			if reqs := b.requests(); len(reqs) != 0 {
				t.Fatalf("the bait server was requested: %q", reqs)
			}
		})
	}
}

func TestE2EFileOnAnotherHostIsNeverFetched(t *testing.T) {
	t.Parallel()
	b := newBait(t)
	e := newEnv(t, envOptions{gateway: llmtest.Options{Echo: true}})
	// onBait is a real file object whose links point at the bait server.
	onBait := func(name string) slacktest.FileObject {
		f := e.slack.AddFile(slacktest.FileSpec{Name: name, MIMEType: "image/png", Data: pngBytes})
		f.URLPrivate = b.url("/files-pri/T1-" + f.ID + "/" + name)
		f.URLPrivateDownload = b.url("/files-pri/T1-" + f.ID + "/download/" + name)
		return f
	}
	for _, tc := range []struct {
		name, file, text string
		ev               func(f slacktest.FileObject) slacktest.MessageEvent
	}{
		{"mention", "mention.png", "what is in it?", func(f slacktest.FileObject) slacktest.MessageEvent {
			return e.slack.Mention("U1", "C1", "<@UBOT> what is in it?", "").WithFiles(f)
		}},
		{"DM", "dm.png", "and this one?", func(f slacktest.FileObject) slacktest.MessageEvent {
			return e.slack.DM("U1", "D1", "and this one?", "").WithFiles(f)
		}},
		{"file of a shared message", "shared.png", "look", func(f slacktest.FileObject) slacktest.MessageEvent {
			return e.slack.DM("U1", "D2", "look", "").WithShares(e.slack.Share("U2", "C7", "the chart", f))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := onBait(tc.file)
			ev := tc.ev(f)
			e.slack.SendEvent(ev)
			ch, th := replyPlace(ev)
			e.waitReply(t, ch, th, "echo: "+tc.text, "📎 Skipped "+tc.file+": it is not on a file host I download from.")
			if reqs := b.requests(); len(reqs) != 0 {
				t.Fatalf("the bait server was requested: %q", reqs)
			}
			if ds := e.slack.Downloads(f.ID); len(ds) != 0 {
				t.Errorf("the file was downloaded from Slack: %+v", ds)
			}
			p := e.lastPromptOf(t)
			for _, ps := range p.Parts {
				if len(ps) != 0 {
					t.Errorf("the model got attachment parts: %+v", ps)
				}
			}
		})
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
		// transports' own. Observed: 0.05 to 3.5 MiB.
		buffered = 8 << 20
	)
	e := newEnv(t, envOptions{
		gateway: llmtest.Options{Echo: true},
		cfg: func(c *Config) {
			c.Fetcher = fetch.New(fetch.Config{MaxBytes: limit, AllowHosts: []string{fetch.HostOf(c.APIURL)}})
		},
		engine: func(o *bot.Options) { o.Attachments.MaxBytes = limit },
	})
	big := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	for _, tc := range []struct {
		name, file, channel string
		data                []byte
		// noLength serves the file without Content-Length.
		noLength bool
		// declared is the size the file object shows.
		declared int
		// requested says whether the fake must see a download at all;
		// maxServed bounds what it writes.
		requested bool
		maxServed int64
	}{
		{"streamed without Content-Length, small declared size", "stream.log", "D3", big, true, 1024, true, limit + buffered},
		{"Content-Length over the limit, small declared size", "length.log", "D4", big, false, 1024, true, buffered},
		{"declared size over the limit", "declared.log", "D5", []byte("a small body\n"), false, size, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := e.slack.AddFile(slacktest.FileSpec{Name: tc.file, MIMEType: "text/plain", Data: tc.data, NoContentLength: tc.noLength})
			f.Size = tc.declared
			text := "summarize " + tc.file
			ev := e.slack.DM("U1", tc.channel, text, "").WithFiles(f)
			e.slack.SendEvent(ev)
			e.waitReply(t, ev.Channel, "", "echo: "+text, "📎 Skipped "+tc.file+": ", "over the 64 KiB limit")
			if got := e.lastPromptOf(t).LastUser(); got != text {
				t.Errorf("the model got %q, want only the text", got)
			}
			ds := e.slack.Downloads(f.ID)
			served := e.slack.Served(f.ID)
			t.Logf("%d download(s), %d of %d bytes served for a %d-byte limit", len(ds), served, len(tc.data), limit)
			if !tc.requested {
				if len(ds) != 0 {
					t.Errorf("a file declared over the limit was requested: %+v", ds)
				}
				return
			}
			if len(ds) != 1 || ds[0].Token != "bot" {
				t.Fatalf("downloads %+v, want one with the bot token", ds)
			}
			if served > tc.maxServed {
				t.Errorf("served %d bytes, want at most %d (limit %d)", served, tc.maxServed, limit)
			}
		})
	}
}

func TestE2EImageForModelWithoutVision(t *testing.T) {
	t.Parallel()
	const model = "acme-text-1"
	models := append(llmtest.DefaultModels(), llm.ModelInfo{ID: model, Provider: "Acme", Type: "text",
		InputModalities: []string{"text"}, APIDocURL: "https://apidoc.cometapi.com/chat"})
	e := newEnv(t, envOptions{
		gateway: llmtest.Options{Echo: true, Models: models},
		engine:  func(o *bot.Options) { o.Defaults.Model = model },
	})
	f := e.slack.AddFile(slacktest.FileSpec{Name: "photo.png", MIMEType: "image/png", Data: pngBytes})
	ev := e.slack.Mention("U1", "C1", "<@UBOT> what is this?", "").WithFiles(f)
	e.slack.SendEvent(ev)
	all := e.waitReply(t, "C1", ev.TS, "echo: what is this?", "/model list vision")
	if n := strings.Count(all, "📎"); n != 1 || !strings.Contains(all, "photo.png") || !strings.Contains(all, model) {
		t.Errorf("reply %q: want one line naming the model and photo.png", all)
	}
	p := e.lastPromptOf(t)
	if p.Model != model {
		t.Errorf("model %q, want %q", p.Model, model)
	}
	for i, m := range p.Messages {
		if len(m.Images) != 0 || len(m.Files) != 0 || len(p.Parts[i]) != 0 {
			t.Errorf("message %d carries attachments: %d images, %d files, parts %+v", i, len(m.Images), len(m.Files), p.Parts[i])
		}
	}
}

// A shared message with a comment, in a channel: the model gets the comment
// and the shared text quoted under its author.
func TestE2ESharedMessageReachesTheModel(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{gateway: llmtest.Options{Echo: true}})
	ev := e.slack.Mention("U1", "C1", "<@UBOT> is this right?", "").
		WithShares(e.slack.Share("U2", "C7", "the deploy is at 5\nafter the <https://ci.example.com/9|build>"))
	e.slack.SendEvent(ev)
	e.waitReply(t, "C1", ev.TS, "echo: is this right?")
	want := "is this right?\n\n[Forwarded message from Bob Builder]\n> the deploy is at 5\n> after the build (https://ci.example.com/9)"
	if got := e.lastPromptOf(t).LastUser(); got != want {
		t.Errorf("the model got\n%q\nwant\n%q", got, want)
	}
}
