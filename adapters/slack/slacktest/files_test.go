package slacktest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
)

func get(t *testing.T, url, auth string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func TestFakeFileDownloads(t *testing.T) {
	s := Start(t, Options{})
	data := []byte("\x89PNG\r\n\x1a\nnot really a png")
	f := s.AddFile(FileSpec{Name: "cat pic.png", MIMEType: "image/png", Data: data})
	if f.ID == "" || f.Size != len(data) || f.Mode != "hosted" || !strings.HasPrefix(f.URLPrivate, s.URL()+"/files-pri/T1-") ||
		!strings.Contains(f.URLPrivateDownload, "/download/") {
		t.Fatalf("file object %+v", f)
	}
	bot := "Bearer " + s.Options().BotToken

	for _, u := range []string{f.URLPrivate, f.URLPrivateDownload} {
		resp, body := get(t, u, bot)
		if resp.StatusCode != 200 || !bytes.Equal(body, data) || resp.Header.Get("Content-Type") != "image/png" {
			t.Fatalf("%s: %d %q %q", u, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
	}
	// No token, a wrong one or the app token: Slack's login page, with 200.
	for _, auth := range []string{"", "Bearer xoxb-wrong", "Bearer " + s.Options().AppToken} {
		resp, body := get(t, f.URLPrivateDownload, auth)
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !bytes.Contains(body, []byte("<html")) {
			t.Fatalf("auth %q: %d %q", auth, resp.StatusCode, body)
		}
	}
	ds := s.Downloads(f.ID)
	if len(ds) != 5 || ds[0].Token != "bot" || ds[0].LoginPage || ds[2].Token != "none" || !ds[2].LoginPage ||
		ds[3].Token != "invalid" || ds[4].Token != "app" {
		t.Fatalf("downloads %+v", ds)
	}
	if got := s.Served(f.ID); got != int64(2*len(data)) {
		t.Errorf("served %d bytes, want %d", got, 2*len(data))
	}

	// Without files:read the bot token gets the login page too.
	s.SetBotScopes([]string{"chat:write"})
	if resp, body := get(t, f.URLPrivate, bot); !bytes.Contains(body, []byte("Sign in")) || resp.StatusCode != 200 {
		t.Fatalf("without files:read: %q", body)
	}
	s.SetBotScopes([]string{"chat:write", "files:read"})
	if _, body := get(t, f.URLPrivate, bot); !bytes.Equal(body, data) {
		t.Fatalf("with files:read: %q", body)
	}
	if resp, _ := get(t, s.URL()+"/files-pri/T1-F99999999/x.png", bot); resp.StatusCode != 404 {
		t.Errorf("unknown file: %d", resp.StatusCode)
	}

	// A file served without Content-Length streams in chunks.
	big := s.AddFile(FileSpec{Name: "big.bin", Data: bytes.Repeat([]byte("x"), 100<<10), NoContentLength: true})
	resp, body := get(t, big.URLPrivate, bot)
	if resp.ContentLength != -1 || len(body) != 100<<10 {
		t.Errorf("streamed: length %d, %d bytes", resp.ContentLength, len(body))
	}
}

func TestFakeUploadFlow(t *testing.T) {
	s := Start(t, Options{})
	api := slack.New(s.Options().BotToken, slack.OptionAPIURL(s.APIURL()))
	ctx := context.Background()
	data := []byte("generated image bytes")

	// slack-go's three-step upload, as the adapter uses it.
	sum, err := api.UploadFileContext(ctx, slack.UploadFileParameters{
		Filename: "out.png", FileSize: len(data), Reader: bytes.NewReader(data), Channel: "C1", ThreadTimestamp: "1700000000.000001",
	})
	if err != nil {
		t.Fatal(err)
	}
	ups := s.Uploads("C1", "1700000000.000001")
	if len(ups) != 1 || ups[0].ID != sum.ID || !bytes.Equal(ups[0].Data, data) || ups[0].Name != "out.png" || !ups[0].Completed {
		t.Fatalf("uploads %+v", ups)
	}
	if len(s.Uploads("C1", "")) != 0 {
		t.Error("upload shown at the top level too")
	}
	msgs := s.BotReplies("C1", "1700000000.000001")
	if len(msgs) != 1 || len(msgs[0].Files) != 1 || msgs[0].Files[0] != sum.ID {
		t.Fatalf("file message %+v", msgs)
	}

	// Refusals, as Slack answers them.
	if _, err := api.CompleteUploadExternalContext(ctx, slack.CompleteUploadExternalParameters{
		Files: []slack.FileSummary{{ID: "F404"}}, Channel: "C1"}); err == nil || err.Error() != "file_not_found" {
		t.Errorf("unknown id: %v", err)
	}
	if _, err := api.CompleteUploadExternalContext(ctx, slack.CompleteUploadExternalParameters{
		Files: []slack.FileSummary{{ID: sum.ID}}, Channel: "C1"}); err == nil || err.Error() != "file_not_found" {
		t.Errorf("completed twice: %v", err)
	}
	u, err := api.GetUploadURLExternalContext(ctx, slack.GetUploadURLExternalParameters{FileName: "x.txt", FileSize: 5})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := api.CompleteUploadExternalContext(ctx, slack.CompleteUploadExternalParameters{
		Files: []slack.FileSummary{{ID: u.FileID}}, Channel: "C1"}); err == nil || err.Error() != "file_not_found" {
		t.Errorf("completed before the bytes arrived: %v", err)
	}
	if err := api.UploadToURL(ctx, slack.UploadToURLParameters{UploadURL: u.UploadURL, Filename: "x.txt", Content: "too long"}); err == nil {
		t.Error("length mismatch accepted")
	}
	if err := api.UploadToURL(ctx, slack.UploadToURLParameters{UploadURL: u.UploadURL, Filename: "x.txt", Content: "12345"}); err != nil {
		t.Fatal(err)
	}
	if _, err := api.CompleteUploadExternalContext(ctx, slack.CompleteUploadExternalParameters{
		Files: []slack.FileSummary{{ID: u.FileID}}, ThreadTimestamp: "1.1"}); err == nil || err.Error() != "invalid_arguments" {
		t.Errorf("thread without channel: %v", err)
	}
	// Without a channel the file stays private.
	if _, err := api.CompleteUploadExternalContext(ctx, slack.CompleteUploadExternalParameters{
		Files: []slack.FileSummary{{ID: u.FileID}}}); err != nil {
		t.Errorf("private upload: %v", err)
	}
	if f, _ := s.File(u.FileID); !f.Completed || len(f.Shares) != 0 {
		t.Errorf("private upload %+v", f)
	}
	if _, err := api.GetUploadURLExternalContext(ctx, slack.GetUploadURLExternalParameters{FileName: "", FileSize: 5}); err == nil {
		t.Error("empty filename accepted")
	}

	// files:write is required.
	s.SetBotScopes([]string{"chat:write"})
	if _, err := api.GetUploadURLExternalContext(ctx, slack.GetUploadURLExternalParameters{FileName: "x", FileSize: 1}); err == nil || err.Error() != "missing_scope" {
		t.Errorf("without files:write: %v", err)
	}
}

func TestFakeFileEvents(t *testing.T) {
	s := Start(t, Options{})
	s.AddUser(User{ID: "U2", Name: "bob", RealName: "Bob Builder", DisplayName: "Bob"})
	f := s.AddFile(FileSpec{Name: "a.txt", MIMEType: "text/plain", Data: []byte("abc")})
	ev := s.DM("U1", "D1", "", "").WithFiles(f).WithShares(s.Share("U2", "C1", "original words"))
	body, _ := s.EventCallback(ev)
	parsed, err := slackevents.ParseEvent(json.RawMessage(body), slackevents.OptionNoVerifyToken())
	if err != nil {
		t.Fatal(err)
	}
	me, ok := parsed.InnerEvent.Data.(*slackevents.MessageEvent)
	if !ok || me.SubType != "file_share" || len(me.Message.Files) != 1 || me.Message.Files[0].URLPrivate != f.URLPrivate {
		t.Fatalf("slack-go decoded %+v", parsed.InnerEvent.Data)
	}
	att := me.Message.Attachments
	if len(att) != 1 || !att[0].IsShare || !att[0].IsMsgUnfurl || att[0].Text != "original words" || att[0].AuthorName != "Bob Builder" ||
		att[0].AuthorID != "U2" || !strings.Contains(att[0].Fallback, "Bob: original words") {
		t.Fatalf("share %+v", att)
	}
	if m, ok := s.Message("D1", ev.TS); !ok || m.User != "U1" {
		t.Errorf("file_share message not stored: %+v", m)
	}
	mention := s.Mention("U1", "C1", "<@UBOT> look", "").WithFiles(f)
	if mention.SubType != "" || len(mention.Files) != 1 {
		t.Errorf("mention with files %+v", mention)
	}
}
