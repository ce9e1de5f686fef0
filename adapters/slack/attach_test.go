package slack

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cometbot/cometbot/adapters/slack/slacktest"
	"github.com/cometbot/cometbot/bot"
	"github.com/cometbot/cometbot/internal/fetch"
)

// recEngine records the messages the adapter hands to the engine.
type recEngine struct {
	nopEngine
	mu   sync.Mutex
	msgs []bot.Message
	got  chan struct{} // closed and replaced on every message
}

func newRecEngine() *recEngine { return &recEngine{got: make(chan struct{})} }

func (e *recEngine) HandleMessage(_ context.Context, m bot.Message, _ bot.Output) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.msgs = append(e.msgs, m)
	close(e.got)
	e.got = make(chan struct{})
	return nil
}

// Addressed says yes to everything: the recorder takes every message the
// adapter would hand over.
func (e *recEngine) Addressed(context.Context, bot.Message) (bool, error) { return true, nil }

// wait returns the message with the given ts once the engine has it.
func (e *recEngine) wait(t *testing.T, ts string) bot.Message {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		e.mu.Lock()
		for _, m := range e.msgs {
			if m.ID == ts {
				e.mu.Unlock()
				return m
			}
		}
		ch := e.got
		e.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("message %s never reached the engine", ts)
		}
	}
}

func (e *recEngine) has(ts string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, m := range e.msgs {
		if m.ID == ts {
			return true
		}
	}
	return false
}

// newRecEnv runs an adapter in Socket Mode against a fake Slack, with a
// recording engine.
func newRecEnv(t *testing.T, fo slacktest.Options, mutate func(*Config)) (*slacktest.Server, *recEngine, *Adapter) {
	t.Helper()
	fake := slacktest.Start(t, fo)
	fake.AddUser(slacktest.User{ID: "U1", Name: "alice", RealName: "Alice Liddell", DisplayName: "Alice"})
	fake.AddUser(slacktest.User{ID: "U2", Name: "bob", RealName: "Bob Builder", DisplayName: "Bob"})
	eng := newRecEngine()
	cfg := Config{BotToken: fake.Options().BotToken, AppToken: fake.Options().AppToken, APIURL: fake.APIURL(), Logger: testLogger()}
	if mutate != nil {
		mutate(&cfg)
	}
	a, err := New(cfg, eng)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	waitFake(t, fake, "adapter ready", a.Ready)
	return fake, eng, a
}

var pngBytes = append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), bytes.Repeat([]byte{7}, 64)...)

func TestMentionWithFileFetchesWithBotToken(t *testing.T) {
	t.Parallel()
	fake, eng, _ := newRecEnv(t, slacktest.Options{}, nil)
	f := fake.AddFile(slacktest.FileSpec{Name: "chart.png", MIMEType: "image/png", Data: pngBytes})
	ev := fake.Mention("U1", "C1", "<@UBOT> what is this?", "").WithFiles(f)
	fake.SendEvent(ev)
	m := eng.wait(t, ev.TS)
	if m.Text != "what is this?" || !m.Mentioned || len(m.Attachments) != 1 {
		t.Fatalf("message %+v", m)
	}
	att := m.Attachments[0]
	if att.Name != "chart.png" || att.MIMEType != "image/png" || att.Size != int64(len(pngBytes)) || att.URL != f.URLPrivateDownload || att.Fetch == nil {
		t.Fatalf("attachment %+v", att)
	}
	data, err := att.Fetch(context.Background())
	if err != nil || !bytes.Equal(data, pngBytes) {
		t.Fatalf("Fetch = %q, %v", data, err)
	}
	ds := fake.Downloads(f.ID)
	if len(ds) != 1 || ds[0].Token != "bot" || ds[0].LoginPage {
		t.Fatalf("downloads %+v: the fake must see the bot token", ds)
	}
}

func TestFileOnlyDMReachesEngine(t *testing.T) {
	t.Parallel()
	fake, eng, _ := newRecEnv(t, slacktest.Options{}, nil)
	f := fake.AddFile(slacktest.FileSpec{Name: "notes.txt", MIMEType: "text/plain", Data: []byte("remember the milk")})
	gone := fake.AddFile(slacktest.FileSpec{Name: "old.txt", Data: []byte("x")}).Tombstone()
	ev := fake.DM("U1", "D1", "", "").WithFiles(f, gone)
	if ev.SubType != "file_share" || ev.Text != "" {
		t.Fatalf("event %+v", ev)
	}
	fake.SendEvent(ev)
	m := eng.wait(t, ev.TS)
	if !m.DM || m.Text != "" || len(m.Attachments) != 2 {
		t.Fatalf("message %+v", m)
	}
	if data, err := m.Attachments[0].Fetch(context.Background()); err != nil || string(data) != "remember the milk" {
		t.Fatalf("Fetch = %q, %v", data, err)
	}
	if del := m.Attachments[1]; del.Fetch != nil || del.Data != nil || del.Name == "" {
		t.Errorf("deleted file must be described without Fetch: %+v", del)
	}
}

func TestFetchWithoutFilesReadScopeHasFix(t *testing.T) {
	t.Parallel()
	fake, eng, _ := newRecEnv(t, slacktest.Options{BotScopes: []string{"app_mentions:read", "chat:write", "im:history", "users:read"}}, nil)
	f := fake.AddFile(slacktest.FileSpec{Name: "chart.png", MIMEType: "image/png", Data: pngBytes})
	ev := fake.DM("U1", "D1", "look", "").WithFiles(f)
	fake.SendEvent(ev)
	m := eng.wait(t, ev.TS)
	_, err := m.Attachments[0].Fetch(context.Background())
	var fe *fetch.Error
	if !errors.As(err, &fe) || fe.Kind != fetch.KindLoginPage {
		t.Fatalf("Fetch error = %v, want a login-page *fetch.Error", err)
	}
	var fixer interface{ Fix() string }
	if !errors.As(err, &fixer) || !strings.Contains(fixer.Fix(), "files:read") {
		t.Fatalf("error %v has no Fix naming files:read", err)
	}
	if ds := fake.Downloads(f.ID); len(ds) != 1 || ds[0].Token != "bot" || !ds[0].LoginPage {
		t.Errorf("downloads %+v", ds)
	}
}

func TestOversizedDownloadStopsAtLimit(t *testing.T) {
	t.Parallel()
	const limit = 64 << 10
	var fetcher *fetch.Fetcher
	fake, eng, _ := newRecEnv(t, slacktest.Options{}, func(c *Config) {
		fetcher = fetch.New(fetch.Config{MaxBytes: limit, AllowHosts: []string{fetch.HostOf(c.APIURL)}})
		c.Fetcher = fetcher
	})
	// No Content-Length: only counting on the wire can stop it.
	big := bytes.Repeat([]byte("a"), 32<<20)
	f := fake.AddFile(slacktest.FileSpec{Name: "huge.txt", MIMEType: "text/plain", Data: big, NoContentLength: true})
	ev := fake.DM("U1", "D1", "", "").WithFiles(f)
	fake.SendEvent(ev)
	_, err := eng.wait(t, ev.TS).Attachments[0].Fetch(context.Background())
	var fe *fetch.Error
	if !errors.As(err, &fe) || fe.Kind != fetch.KindTooLarge {
		t.Fatalf("Fetch error = %v, want too_large", err)
	}
	// The fake's count includes what socket buffers took in before the
	// fetcher hung up (seen up to ~4 MiB on a loaded machine): far below
	// the file, which a reader that ignored the limit would take whole.
	waitFake(t, fake, "download over", func() bool { return len(fake.Downloads(f.ID)) == 1 })
	served := fake.Served(f.ID)
	t.Logf("served %d bytes of %d for a %d-byte limit", served, len(big), limit)
	if served >= int64(len(big))/2 {
		t.Errorf("served %d of %d bytes for a %d-byte limit", served, len(big), limit)
	}
}

func TestSharedMessageBecomesForward(t *testing.T) {
	t.Parallel()
	fake, eng, _ := newRecEnv(t, slacktest.Options{}, nil)
	f := fake.AddFile(slacktest.FileSpec{Name: "diagram.png", MIMEType: "image/png", Data: pngBytes})

	// A share without comment in a DM.
	share := fake.Share("U2", "C7", "the deploy broke at <https://ci.example.com/1|step 3> &amp; <@U1> knows why", f)
	ev := fake.DM("U1", "D1", "", "").WithShares(share)
	fake.SendEvent(ev)
	m := eng.wait(t, ev.TS)
	if m.Text != "" || len(m.Forwards) != 1 {
		t.Fatalf("message %+v", m)
	}
	fw := m.Forwards[0]
	if fw.Author != "Bob Builder" || fw.Text != "the deploy broke at step 3 (https://ci.example.com/1) & @Alice knows why" {
		t.Fatalf("forward %+v", fw)
	}
	if len(fw.Attachments) != 1 || fw.Attachments[0].Name != "diagram.png" || fw.Attachments[0].Fetch == nil {
		t.Fatalf("forward files %+v", fw.Attachments)
	}
	if data, err := fw.Attachments[0].Fetch(context.Background()); err != nil || !bytes.Equal(data, pngBytes) {
		t.Fatalf("forwarded file Fetch = %v", err)
	}

	// A message unfurl with only blocks and an author id: text from the
	// rich_text blocks, author from users.info; with a comment, in the
	// bot's thread (a mention starts it).
	root := fake.Mention("U1", "C1", "<@UBOT> hi", "")
	fake.SendEvent(root)
	eng.wait(t, root.TS)
	unfurl := fake.Share("U2", "C7", "from the blocks")
	unfurl.IsShare, unfurl.Text, unfurl.Fallback, unfurl.AuthorName, unfurl.AuthorSubname = false, "", "", "", ""
	reply := fake.ChannelMessage("U1", "C1", "what about this?", root.TS).WithShares(unfurl)
	fake.SendEvent(reply)
	m = eng.wait(t, reply.TS)
	if m.Text != "what about this?" || len(m.Forwards) != 1 || m.Forwards[0].Author != "Bob" || m.Forwards[0].Text != "from the blocks" {
		t.Fatalf("unfurl %+v", m)
	}
}

func TestUploadIntoThread(t *testing.T) {
	t.Parallel()
	a, fake := newOutputEnv(t, nil)
	ctx := context.Background()
	for _, thread := range []string{"1700000000.000042", ""} {
		out := &output{a: a, team: "T1", channel: "D1", thread: thread, user: "U1", dm: true}
		r, err := out.Start(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Finish(ctx, "Here is your picture."); err != nil {
			t.Fatal(err)
		}
		up, ok := r.(bot.FileUploader)
		if !ok {
			t.Fatal("reply is not a bot.FileUploader")
		}
		files := []bot.File{
			{Name: "cat.png", MIMEType: "image/png", Data: pngBytes},
			{Name: "dog.png", MIMEType: "image/png", Data: []byte("\x89PNG\r\n\x1a\nsecond")},
		}
		if err := up.Upload(ctx, files); err != nil {
			t.Fatal(err)
		}
		got := fake.Uploads("D1", thread)
		if len(got) != 2 {
			t.Fatalf("thread %q: uploads %+v", thread, got)
		}
		for i, f := range files {
			if got[i].Name != f.Name || got[i].Title != f.Name || !bytes.Equal(got[i].Data, f.Data) {
				t.Errorf("upload %d = %s %q", i, got[i].Name, got[i].Data)
			}
		}
	}
	if n := len(fake.Uploads("D1", "1700000000.000042")); n != 2 {
		t.Errorf("thread uploads leaked: %d", n)
	}
}

func TestUploadRetriesRateLimits(t *testing.T) {
	t.Parallel()
	a, fake := newOutputEnv(t, nil)
	fake.RateLimitNext("files.getUploadURLExternal", time.Second)
	fake.RateLimitNext("files.completeUploadExternal", time.Second)
	ctx := context.Background()
	out := &output{a: a, team: "T1", channel: "C1", thread: "1700000000.000042", user: "U1"}
	r, err := out.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Finish(ctx, "Here."); err != nil {
		t.Fatal(err)
	}
	if err := r.(bot.FileUploader).Upload(ctx, []bot.File{{Name: "a.png", Data: pngBytes}}); err != nil {
		t.Fatal(err)
	}
	if got := fake.Uploads("C1", out.thread); len(got) != 1 || !bytes.Equal(got[0].Data, pngBytes) {
		t.Fatalf("uploads %+v", got)
	}
	for _, m := range []string{"files.getUploadURLExternal", "files.completeUploadExternal"} {
		calls := fake.Calls(m)
		if len(calls) != 2 || calls[0].Status != http.StatusTooManyRequests || !calls[1].OK() ||
			calls[1].Time.Sub(calls[0].Time) < time.Second {
			t.Errorf("%s: %+v, want a 429 and a retry after Retry-After", m, calls)
		}
	}
}

func TestUploadWithoutFilesWriteHasFix(t *testing.T) {
	t.Parallel()
	a, fake := newOutputEnv(t, nil)
	fake.SetBotScopes([]string{"chat:write", "files:read"})
	ctx := context.Background()
	out := &output{a: a, team: "T1", channel: "C1", thread: "1700000000.000042", user: "U1"}
	r, err := out.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Finish(ctx, "Here."); err != nil {
		t.Fatal(err)
	}
	err = r.(bot.FileUploader).Upload(ctx, []bot.File{{Name: "a.png", Data: pngBytes}, {Name: "empty.png"}})
	var fixer interface{ Fix() string }
	if err == nil || !errors.As(err, &fixer) || !strings.Contains(fixer.Fix(), "files:write") {
		t.Fatalf("Upload = %v, want a files:write fix", err)
	}
	if !strings.Contains(err.Error(), `"a.png"`) || !strings.Contains(err.Error(), `"empty.png"`) {
		t.Errorf("error does not name the files: %v", err)
	}
	if n := len(fake.Uploads("C1", out.thread)); n != 0 {
		t.Errorf("%d uploads", n)
	}
}

func TestBotsOwnFileShareIgnored(t *testing.T) {
	t.Parallel()
	fake, eng, _ := newRecEnv(t, slacktest.Options{}, nil)
	f := fake.AddFile(slacktest.FileSpec{Name: "gen.png", MIMEType: "image/png", Data: pngBytes, User: "UBOT"})
	own := slacktest.MessageEvent{Type: "message", User: "UBOT", Channel: "D1", ChannelType: "im", TS: fake.NextTS()}.WithFiles(f)
	fake.SendEvent(own)
	// Barrier: events of one channel are handled in order.
	next := fake.DM("U1", "D1", "thanks", "")
	fake.SendEvent(next)
	eng.wait(t, next.TS)
	if eng.has(own.TS) {
		t.Fatal("the bot's own file_share reached the engine")
	}
}

func TestHTTPModeFileEvent(t *testing.T) {
	t.Parallel()
	fake, eng, a := newRecEnv(t, slacktest.Options{}, func(c *Config) { c.AppToken, c.SigningSecret = "", testSecret })
	srv := newHTTPTestServer(t, a.HTTPHandler())
	f := fake.AddFile(slacktest.FileSpec{Name: "a.csv", MIMEType: "text/csv", Data: []byte("a,b\n1,2\n")})
	ev := fake.DM("U1", "D1", "sum it", "").WithFiles(f)
	body, _ := fake.EventCallback(ev)
	req, err := slacktest.NewSignedRequest(context.Background(), srv+"/slack/events", testSecret, "application/json", body, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	m := eng.wait(t, ev.TS)
	if len(m.Attachments) != 1 {
		t.Fatalf("message %+v", m)
	}
	if data, err := m.Attachments[0].Fetch(context.Background()); err != nil || string(data) != "a,b\n1,2\n" {
		t.Fatalf("Fetch = %q, %v", data, err)
	}
}
