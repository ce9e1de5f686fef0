package discord

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/cometbot/cometbot/adapters/discord/discordtest"
	"github.com/cometbot/cometbot/bot"
	"github.com/cometbot/cometbot/internal/fetch"
)

// Pure helpers.

func TestFetchURLs(t *testing.T) {
	for _, tc := range []struct {
		url, proxy string
		want       []string
	}{
		{"https://cdn.discordapp.com/a", "https://media.discordapp.net/a", []string{"https://cdn.discordapp.com/a", "https://media.discordapp.net/a"}},
		{"https://cdn.discordapp.com/a", "https://cdn.discordapp.com/a", []string{"https://cdn.discordapp.com/a"}},
		{"", "https://media.discordapp.net/a", []string{"https://media.discordapp.net/a"}},
		{" https://cdn.discordapp.com/a ", "", []string{"https://cdn.discordapp.com/a"}},
		{"", "", nil},
	} {
		if got := fetchURLs(tc.url, tc.proxy); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("fetchURLs(%q, %q) = %v, want %v", tc.url, tc.proxy, got, tc.want)
		}
	}
}

// scriptedGetter answers Get from a map of URL -> error (nil: the URL's own bytes).
type scriptedGetter struct {
	errs   map[string]error
	called []string
	header []http.Header
}

func (g *scriptedGetter) Get(_ context.Context, u string, h http.Header) ([]byte, error) {
	g.called = append(g.called, u)
	g.header = append(g.header, h)
	if err := g.errs[u]; err != nil {
		return nil, err
	}
	return []byte("bytes of " + u), nil
}

func TestFetchFirst(t *testing.T) {
	const u, p = "https://cdn.discordapp.com/f", "https://media.discordapp.net/f"
	ferr := func(k fetch.Kind) error { return &fetch.Error{Kind: k, Host: "cdn.discordapp.com"} }
	for _, tc := range []struct {
		name   string
		errs   map[string]error
		want   string
		called []string
		kind   fetch.Kind
	}{
		{"url works", nil, "bytes of " + u, []string{u}, ""},
		{"expired link: proxy", map[string]error{u: ferr(fetch.KindStatus)}, "bytes of " + p, []string{u, p}, ""},
		{"host not allowed: proxy", map[string]error{u: ferr(fetch.KindNotAllowed)}, "bytes of " + p, []string{u, p}, ""},
		{"network: proxy", map[string]error{u: ferr(fetch.KindNetwork)}, "bytes of " + p, []string{u, p}, ""},
		{"too large: stop", map[string]error{u: ferr(fetch.KindTooLarge)}, "", []string{u}, fetch.KindTooLarge},
		{"timeout: stop", map[string]error{u: ferr(fetch.KindTimeout)}, "", []string{u}, fetch.KindTimeout},
		{"login page: stop", map[string]error{u: ferr(fetch.KindLoginPage)}, "", []string{u}, fetch.KindLoginPage},
		{"both fail: last error", map[string]error{u: ferr(fetch.KindStatus), p: ferr(fetch.KindNotAllowed)}, "", []string{u, p}, fetch.KindNotAllowed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := &scriptedGetter{errs: tc.errs}
			b, err := fetchFirst(context.Background(), g, []string{u, p})
			if string(b) != tc.want || !reflect.DeepEqual(g.called, tc.called) {
				t.Errorf("got %q after %v, want %q after %v", b, g.called, tc.want, tc.called)
			}
			var fe *fetch.Error
			if tc.kind != "" && (!errors.As(err, &fe) || fe.Kind != tc.kind) {
				t.Errorf("err = %v, want kind %s", err, tc.kind)
			}
			if tc.kind == "" && err != nil {
				t.Errorf("err = %v", err)
			}
			for _, h := range g.header {
				if h != nil {
					t.Errorf("fetched with headers %v: Discord's CDN needs none", h)
				}
			}
		})
	}
}

func TestWithoutQuery(t *testing.T) {
	for in, want := range map[string]string{
		"https://cdn.discordapp.com/attachments/1/2/a.png?ex=1&is=2&hm=3": "https://cdn.discordapp.com/attachments/1/2/a.png",
		"http://127.0.0.1:5/attachments/1/2/a%20b.txt?hm=x#frag":          "http://127.0.0.1:5/attachments/1/2/a%20b.txt",
		"https://cdn.discordapp.com/plain":                                "https://cdn.discordapp.com/plain",
	} {
		if got := withoutQuery(in); got != want {
			t.Errorf("withoutQuery(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFetchHosts(t *testing.T) {
	got := fetchHosts("http://127.0.0.1:4567/api/v9")
	want := append(append([]string(nil), fetch.DefaultHosts...), "127.0.0.1:4567")
	if !reflect.DeepEqual(got, want) {
		t.Errorf("fetchHosts = %v, want %v", got, want)
	}
	if got := fetchHosts(DefaultAPIURL); got[len(got)-1] != fetch.HostOf(DefaultAPIURL) || len(fetch.DefaultHosts) != len(got)-1 {
		t.Errorf("fetchHosts(default) = %v; DefaultHosts now %v", got, fetch.DefaultHosts)
	}
}

func TestEmbedText(t *testing.T) {
	for _, tc := range []struct {
		name   string
		embeds []*discordgo.MessageEmbed
		want   string
	}{
		{"none", nil, ""},
		{"rich", []*discordgo.MessageEmbed{{Type: "rich", Title: "Build #12", Description: "failed",
			Fields: []*discordgo.MessageEmbedField{{Name: "branch", Value: "main"}, {Name: "", Value: "only value"}, nil}}},
			"Build #12\nfailed\nbranch: main\nonly value"},
		{"untyped counts as rich", []*discordgo.MessageEmbed{{Title: "T"}}, "T"},
		{"link previews are skipped", []*discordgo.MessageEmbed{
			{Type: discordgo.EmbedTypeLink, Title: "Some page", Description: "preview"},
			{Type: discordgo.EmbedTypeImage, Image: &discordgo.MessageEmbedImage{URL: "https://example.com/x.png"}},
			{Type: discordgo.EmbedTypeArticle, Title: "Article"},
		}, ""},
		{"two rich", []*discordgo.MessageEmbed{{Title: "A"}, nil, {Description: " B "}}, "A\n\nB"},
		{"empty rich", []*discordgo.MessageEmbed{{Type: "rich", Image: &discordgo.MessageEmbedImage{URL: "https://x/y.png"}}}, ""},
	} {
		if got := embedText(tc.embeds); got != tc.want {
			t.Errorf("%s: embedText = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestPackFiles(t *testing.T) {
	f := func(name string, n int) bot.File { return bot.File{Name: name, Data: make([]byte, n)} }
	names := func(bs [][]bot.File) string {
		var out []string
		for _, b := range bs {
			var ns []string
			for _, x := range b {
				ns = append(ns, x.Name)
			}
			out = append(out, strings.Join(ns, "+"))
		}
		return strings.Join(out, " | ")
	}
	var eleven []bot.File
	for i := 0; i < 11; i++ {
		eleven = append(eleven, f(fmt.Sprint(i), 1))
	}
	for _, tc := range []struct {
		name    string
		files   []bot.File
		limit   int64
		want    string
		skipped int
	}{
		{"one message", []bot.File{f("a", 3), f("b", 4)}, 10, "a+b", 0},
		{"exactly the limit", []bot.File{f("a", 6), f("b", 4)}, 10, "a+b", 0},
		{"split by bytes", []bot.File{f("a", 6), f("b", 6), f("c", 4)}, 10, "a | b+c", 0},
		{"oversized skipped", []bot.File{f("a", 2), f("big", 11), f("c", 2)}, 10, "a+c", 1},
		{"only oversized", []bot.File{f("big", 11)}, 10, "", 1},
		{"ten files per message", eleven, 100, "0+1+2+3+4+5+6+7+8+9 | 10", 0},
		{"empty file", []bot.File{f("e", 0)}, 10, "e", 0},
	} {
		bs, sk := packFiles(tc.files, tc.limit, maxFilesPerMessage)
		if got := names(bs); got != tc.want || len(sk) != tc.skipped {
			t.Errorf("%s: batches %q skipped %d, want %q and %d", tc.name, got, len(sk), tc.want, tc.skipped)
		}
	}
}

func TestUploadName(t *testing.T) {
	for _, tc := range []struct {
		name, mime string
		i          int
		want       string
	}{
		{"cat.png", "image/png", 0, "cat.png"},
		{"", "image/png", 0, "image-1.png"},
		{"", "image/jpeg", 2, "image-3.jpg"},
		{"", "application/pdf", 0, "file-1"},
		{"render", "image/webp", 0, "render.webp"},
		{"../../etc/passwd", "", 0, "passwd"},
		{`C:\tmp\shot.gif`, "image/gif", 0, "shot.gif"},
		{"..", "image/png", 1, "image-2.png"},
		{"notes.txt", "text/plain", 0, "notes.txt"},
	} {
		if got := uploadName(bot.File{Name: tc.name, MIMEType: tc.mime}, tc.i); got != tc.want {
			t.Errorf("uploadName(%q, %q, %d) = %q, want %q", tc.name, tc.mime, tc.i, got, tc.want)
		}
	}
}

// Through the real discordgo client against the fake.

// pngBytes is a small PNG-looking payload (the signature, then filler).
func pngBytes(n int) []byte {
	b := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{0, 1, 2, 250}, n/4)...)
	return b[:n]
}

func fetchCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestAttachmentReachesEngineWithFetch(t *testing.T) {
	t.Parallel()
	eng := newFakeEngine()
	e := start(t, eng, envOpts{})
	data := pngBytes(70_000)
	att := e.srv.AddAttachment(discordtest.CDNFile{ChannelID: general, Name: "diagram.png", ContentType: "image/png", Data: data})
	um := e.srv.UserMessage(discordtest.Post{ChannelID: general, Content: mention(botID) + " what is this? see https://example.com/evil.png",
		Attachments: []discordtest.Attachment{att}})
	eng.waitTurns(t, 1)
	m := eng.messages()[0]
	if m.ID != um.ID || len(m.Attachments) != 1 {
		t.Fatalf("engine got %+v", m)
	}
	got := m.Attachments[0]
	if got.Name != "diagram.png" || got.MIMEType != "image/png" || got.Size != int64(len(data)) || got.Fetch == nil || got.Data != nil {
		t.Errorf("attachment = %+v", got)
	}
	if strings.Contains(got.URL, "?") || !strings.HasSuffix(got.URL, "/attachments/"+general+"/"+att.ID+"/diagram.png") {
		t.Errorf("URL for logs = %q (want the link without its signature)", got.URL)
	}
	b, err := got.Fetch(fetchCtx(t))
	if err != nil || !bytes.Equal(b, data) {
		t.Fatalf("Fetch = %d bytes, %v; want the %d CDN bytes", len(b), err, len(data))
	}
	e.waitFor("the CDN request to be recorded", func() bool { return len(e.srv.CDNRequests()) > 0 })
	// One request, without a token; the URL in the text was never fetched.
	reqs := e.srv.CDNRequests()
	if len(reqs) != 1 || reqs[0].Authorization || reqs[0].Status != 200 || reqs[0].Bytes != int64(len(data)) {
		t.Errorf("CDN requests = %+v (one, without Authorization, the whole file)", reqs)
	}
}

func TestOverLimitDownloadIsCutOnTheWire(t *testing.T) {
	t.Parallel()
	const limit = 64 << 10
	eng := newFakeEngine()
	e := start(t, eng, envOpts{config: func(c *Config) {
		c.Fetcher = fetch.New(fetch.Config{MaxBytes: limit, AllowHosts: fetchHosts(c.APIURL)})
	}})
	dm := e.srv.DMChannel(discordtest.AliceID)
	big := bytes.Repeat([]byte("0123456789abcdef"), 24<<20/16) // 24 MiB, sent without Content-Length
	att := e.srv.AddAttachment(discordtest.CDNFile{ChannelID: dm, Name: "huge.log", ContentType: "text/plain", Data: big, NoLength: true})
	e.srv.UserMessage(discordtest.Post{ChannelID: dm, Attachments: []discordtest.Attachment{att}})
	eng.waitTurns(t, 1)
	a := eng.messages()[0].Attachments[0]
	_, err := a.Fetch(fetchCtx(t))
	var fe *fetch.Error
	if !errors.As(err, &fe) || fe.Kind != fetch.KindTooLarge {
		t.Fatalf("Fetch err = %v, want too large", err)
	}
	// The fetcher stops reading past the limit and drops the connection;
	// what the fake wrote meanwhile is at most the socket buffers' worth.
	e.waitFor("the CDN's answer to end", func() bool { return len(e.srv.CDNRequests()) == 1 })
	t.Logf("CDN wrote %d bytes of %d", e.srv.CDNRequests()[0].Bytes, len(big))
	if n := e.srv.CDNRequests()[0].Bytes; n <= limit || n >= int64(len(big))/2 {
		t.Errorf("CDN wrote %d of %d bytes: want the download cut soon after %d", n, len(big), limit)
	}
}

func TestFileOnlyMessagesReachEngine(t *testing.T) {
	t.Parallel()
	eng := newFakeEngine()
	e := start(t, eng, envOpts{})
	img := pngBytes(1000)

	// An image alone in a DM.
	dm := e.srv.DMChannel(discordtest.AliceID)
	dmImg := e.srv.AddAttachment(discordtest.CDNFile{ChannelID: dm, Name: "photo.png", ContentType: "image/png", Data: img})
	e.srv.UserMessage(discordtest.Post{ChannelID: dm, Attachments: []discordtest.Attachment{dmImg}})
	e.waitFor("the DM reply", func() bool { return len(e.srv.BotMessages(dm)) == 1 })

	// A mention with nothing but an image opens a thread like any mention.
	chImg := e.srv.AddAttachment(discordtest.CDNFile{ChannelID: general, Name: "chart.png", ContentType: "image/png", Data: img})
	um := e.srv.UserMessage(discordtest.Post{ChannelID: general, Content: mention(botID), Attachments: []discordtest.Attachment{chImg}})
	e.waitFor("the thread reply", func() bool { return len(e.srv.BotMessages(um.ID)) == 1 })

	// In the bot's thread, an image without text or mention continues.
	thImg := e.srv.AddAttachment(discordtest.CDNFile{ChannelID: um.ID, Name: "more.png", ContentType: "image/png", Data: img})
	e.srv.UserMessage(discordtest.Post{ChannelID: um.ID, Attachments: []discordtest.Attachment{thImg}})
	e.waitFor("the follow-up reply", func() bool { return len(e.srv.BotMessages(um.ID)) == 2 })

	// An image in a channel, unaddressed, is not answered; the marker
	// mention after it proves it was processed.
	unImg := e.srv.AddAttachment(discordtest.CDNFile{ChannelID: general, Name: "meme.png", ContentType: "image/png", Data: img})
	e.srv.UserMessage(discordtest.Post{ChannelID: general, Attachments: []discordtest.Attachment{unImg}})
	e.srv.UserMessage(discordtest.Post{ChannelID: general, Content: mention(botID) + " marker"})
	eng.waitTurns(t, 4)

	msgs := eng.messages()
	if len(msgs) != 4 || msgs[3].Text != "marker" {
		t.Fatalf("engine got %d messages: %+v", len(msgs), msgs)
	}
	for i, want := range []struct {
		name string
		dm   bool
	}{{"photo.png", true}, {"chart.png", false}, {"more.png", false}} {
		m := msgs[i]
		if m.Text != "" || m.DM != want.dm || len(m.Attachments) != 1 || m.Attachments[0].Name != want.name {
			t.Errorf("message %d = %+v", i, m)
			continue
		}
		if b, err := m.Attachments[0].Fetch(fetchCtx(t)); err != nil || !bytes.Equal(b, img) {
			t.Errorf("message %d: Fetch = %d bytes, %v", i, len(b), err)
		}
	}
	if th, _ := e.srv.Channel(um.ID); th.Name != "Chat with "+discordtest.DefaultBotName {
		t.Errorf("thread name = %q", th.Name)
	}
}

func TestForwardsReachEngine(t *testing.T) {
	t.Parallel()
	eng := newFakeEngine()
	e := start(t, eng, envOpts{})
	dm := e.srv.DMChannel(discordtest.AliceID)
	bob := discordtest.User{ID: discordtest.BobID, Username: "bob", GlobalName: "Bob"}

	// 1. A forward, without comment, of a message from someone else's DM:
	// the bot cannot read the original, so the author stays unknown.
	report := []byte("line one\nline two\n")
	att := e.srv.AddAttachment(discordtest.CDNFile{ChannelID: "555", Name: "report.txt", ContentType: "text/plain; charset=utf-8", Data: report})
	e.srv.UserMessage(discordtest.Post{ChannelID: dm, Forward: &discordtest.Snapshot{
		ChannelID: "555", Content: "can you check <@" + botID + ">'s numbers?", Attachments: []discordtest.Attachment{att},
		Embeds: []map[string]any{{"type": "rich", "title": "Q3", "description": "revenue up"}, {"type": "link", "title": "a preview"}},
	}})
	eng.waitTurns(t, 1)
	m := eng.messages()[0]
	if m.Text != "" || !m.DM || len(m.Attachments) != 0 || len(m.Forwards) != 1 {
		t.Fatalf("engine got %+v", m)
	}
	f := m.Forwards[0]
	if want := "can you check @" + discordtest.DefaultBotName + "'s numbers?\n\nQ3\nrevenue up"; f.Text != want || f.Author != "" {
		t.Errorf("forward = %+v, want text %q and no author", f, want)
	}
	if len(f.Attachments) != 1 || f.Attachments[0].Name != "report.txt" || f.Attachments[0].Size != int64(len(report)) {
		t.Fatalf("forward attachments = %+v", f.Attachments)
	}
	if b, err := f.Attachments[0].Fetch(fetchCtx(t)); err != nil || !bytes.Equal(b, report) {
		t.Errorf("Fetch = %q, %v", b, err)
	}
	if m.Mentioned {
		t.Error("a mention inside the forwarded text counted as addressing the bot")
	}

	// 2. A forward of a message the bot saw in its server: the author comes
	// from what it saw, without a lookup.
	seen := e.srv.UserMessage(discordtest.Post{ChannelID: general, Author: bob, Content: "the deploy is at 5"})
	sn, _ := e.srv.Snapshot(seen.ID)
	e.srv.UserMessage(discordtest.Post{ChannelID: dm, Content: "is that right?", Forward: &sn})
	eng.waitTurns(t, 2)

	// 3. A forward of an older message in its server it never saw: one GET.
	old := e.srv.AddMessage(discordtest.Post{ChannelID: general, Author: bob, Content: "old news"})
	sn, _ = e.srv.Snapshot(old.ID)
	e.srv.UserMessage(discordtest.Post{ChannelID: dm, Forward: &sn})
	eng.waitTurns(t, 3)

	msgs := eng.messages()
	if m := msgs[1]; m.Text != "is that right?" || len(m.Forwards) != 1 || m.Forwards[0].Text != "the deploy is at 5" || m.Forwards[0].Author != "Bob" {
		t.Errorf("forward of a seen message = %+v", m)
	}
	if m := msgs[2]; len(m.Forwards) != 1 || m.Forwards[0].Text != "old news" || m.Forwards[0].Author != "Bob" {
		t.Errorf("forward of an unseen message = %+v", m)
	}
	gets := e.srv.CallsTo("GET", "/messages/")
	if len(gets) != 1 || gets[0].Path != "/channels/"+general+"/messages/"+old.ID {
		t.Errorf("message lookups = %+v, want one for the unseen message", gets)
	}
}

func TestForwardInBotThreadIsAnswered(t *testing.T) {
	t.Parallel()
	eng := newFakeEngine()
	eng.reply = func(m bot.Message) []string {
		if len(m.Forwards) > 0 {
			return []string{"about the forward: ", m.Forwards[0].Text}
		}
		return []string{"echo: ", m.Text}
	}
	e := start(t, eng, envOpts{})
	um := e.srv.UserMessage(discordtest.Post{ChannelID: general, Content: mention(botID) + " hi"})
	e.waitFor("reply", func() bool { return len(e.srv.BotMessages(um.ID)) == 1 })
	e.srv.UserMessage(discordtest.Post{ChannelID: um.ID, Forward: &discordtest.Snapshot{Content: "forwarded words"}})
	e.waitFor("reply to the forward", func() bool {
		ms := e.srv.BotMessages(um.ID)
		return len(ms) == 2 && ms[1].Content == "about the forward: forwarded words"
	})
	eng.waitTurns(t, 2)
	if m := eng.messages()[1]; m.Thread != um.ID || m.Text != "" || m.Mentioned {
		t.Errorf("forward in thread = %+v", m)
	}
}

func TestUploadPostsMultipartIntoTheThread(t *testing.T) {
	t.Parallel()
	eng := newFakeEngine()
	img1, img2 := pngBytes(5000), pngBytes(7000)
	eng.files = func(m bot.Message) []bot.File {
		return []bot.File{
			{Name: "cat.png", MIMEType: "image/png", Data: img1},
			{MIMEType: "image/png", Data: img2},
			{Name: "huge.png", MIMEType: "image/png", Data: make([]byte, 20_001)},
		}
	}
	e := start(t, eng, envOpts{config: func(c *Config) { c.UploadLimit = 20_000 }})
	um := e.srv.UserMessage(discordtest.Post{ChannelID: general, Content: mention(botID) + " draw a cat"})
	eng.waitTurns(t, 1)
	e.waitFor("upload result", func() bool { return len(eng.uploadResults()) == 1 })

	err := eng.uploadResults()[0]
	if !errors.Is(err, ErrFileTooLarge) || !strings.Contains(err.Error(), "huge.png") || strings.Contains(err.Error(), "cat.png") {
		t.Errorf("Upload error = %v, want only huge.png skipped as too large", err)
	}
	ms := e.srv.BotMessages(um.ID)
	if len(ms) != 2 || ms[0].Content != "echo: draw a cat" {
		t.Fatalf("thread messages = %+v", ms)
	}
	up := ms[1]
	if up.Content != "" || len(up.Files) != 2 {
		t.Fatalf("upload message = %+v", up)
	}
	for i, want := range []struct {
		name string
		data []byte
	}{{"cat.png", img1}, {"image-2.png", img2}} {
		f := up.Files[i]
		if f.Name != want.name || f.ContentType != "image/png" || !bytes.Equal(f.Data, want.data) || f.Field != fmt.Sprintf("files[%d]", i) {
			t.Errorf("file %d = %s %s %s %d bytes, want %s", i, f.Field, f.Name, f.ContentType, len(f.Data), want.name)
		}
	}
	posts := e.srv.CallsTo("POST", "/channels/"+um.ID+"/messages")
	last := posts[len(posts)-1]
	if !strings.HasPrefix(last.ContentType, "multipart/form-data") || !strings.Contains(string(last.Payload), `"attachments":[{"id":0,"filename":"cat.png"},{"id":1,"filename":"image-2.png"}]`) {
		t.Errorf("upload request %s: payload %s", last.ContentType, last.Payload)
	}
	if len(e.srv.BotMessages(general)) != 0 {
		t.Error("files posted in the channel instead of the thread")
	}
	checkAllowedMentions(t, e.srv)
}

func TestUploadRefusedByDiscordIsReported(t *testing.T) {
	t.Parallel()
	eng := newFakeEngine()
	eng.files = func(m bot.Message) []bot.File {
		return []bot.File{{Name: "a.png", MIMEType: "image/png", Data: pngBytes(3000)}}
	}
	// The server allows less than the adapter believes (a misconfigured
	// UploadLimit): Discord's 413 comes back as Upload's error.
	e := start(t, eng, envOpts{fake: discordtest.Options{UploadLimit: 1000}})
	dm := e.srv.DMChannel(discordtest.AliceID)
	e.srv.UserMessage(discordtest.Post{ChannelID: dm, Content: "draw"})
	eng.waitTurns(t, 1)
	e.waitFor("upload result", func() bool { return len(eng.uploadResults()) == 1 })
	err := eng.uploadResults()[0]
	if restStatus(err) != http.StatusRequestEntityTooLarge || !strings.Contains(err.Error(), "a.png") {
		t.Errorf("Upload error = %v, want Discord's 413 naming a.png", err)
	}
	if ms := e.srv.BotMessages(dm); len(ms) != 1 || len(ms[0].Files) != 0 {
		t.Errorf("DM messages = %+v", ms)
	}
}

func TestUploadBeforeFinishIsRefused(t *testing.T) {
	t.Parallel()
	a, err := New(Config{Token: "x"}, newFakeEngine())
	if err != nil {
		t.Fatal(err)
	}
	r := newReply(context.Background(), a, target{channel: "1"})
	if err := r.Upload(context.Background(), []bot.File{{Name: "a.png", Data: []byte{1}}}); err == nil {
		t.Error("Upload before Finish succeeded")
	}
	if err := r.Upload(context.Background(), nil); err != nil {
		t.Errorf("Upload of nothing = %v", err)
	}
}

func TestMayBeAnswered(t *testing.T) {
	for _, tc := range []struct {
		m    bot.Message
		want bool
	}{
		{bot.Message{DM: true}, true},
		{bot.Message{Mentioned: true}, true},
		{bot.Message{ContinuesBot: true}, true},
		{bot.Message{Thread: "1"}, true},
		{bot.Message{Channel: "1"}, false},
	} {
		if got := mayBeAnswered(tc.m); got != tc.want {
			t.Errorf("mayBeAnswered(%+v) = %v", tc.m, got)
		}
	}
}
