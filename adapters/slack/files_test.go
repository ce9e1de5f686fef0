package slack

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/cometbot/cometbot/internal/fetch"
)

func TestFileURL(t *testing.T) {
	t.Parallel()
	ext := "https://drive.example.com/d/1"
	tests := []struct {
		name string
		f    slack.File
		want string
	}{
		{"download URL first", slack.File{Mode: "hosted", URLPrivate: "https://files.slack.com/a", URLPrivateDownload: "https://files.slack.com/download/a"}, "https://files.slack.com/download/a"},
		{"private URL otherwise", slack.File{Mode: "snippet", URLPrivate: "https://files.slack.com/a"}, "https://files.slack.com/a"},
		{"deleted", slack.File{Mode: "tombstone"}, ""},
		{"hidden by the plan's limit", slack.File{Mode: "hidden_by_limit", URLPrivate: "https://files.slack.com/a"}, ""},
		{"external by mode", slack.File{Mode: "external", URLPrivate: ext}, ""},
		{"external by flag", slack.File{IsExternal: true, URLPrivate: ext, ExternalURL: &ext}, ""},
		{"no URL at all", slack.File{Mode: "hosted"}, ""},
	}
	for _, tt := range tests {
		if got := fileURL(tt.f); got != tt.want {
			t.Errorf("%s: fileURL = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestMayReceiveToken(t *testing.T) {
	t.Parallel()
	const api = "https://slack.com/api/"
	const fake = "http://127.0.0.1:4567/api/"
	tests := []struct {
		url, api string
		want     bool
	}{
		{"https://files.slack.com/files-pri/T1-F1/a.png", api, true},
		{"https://slack.com/files/a", api, true},
		{"https://files.slack-gov.com/a", api, true},
		{"http://files.slack.com/a", api, false},
		{"https://files.slack.com.evil.io/a", api, false},
		{"https://evilslack.com/a", api, false},
		{"https://cdn.discordapp.com/a.png", api, false},
		{"https://user:pw@files.slack.com/a", api, false},
		{"http://127.0.0.1:4567/files-pri/T1-F1/a.png", fake, true},
		{"http://127.0.0.1:4568/files-pri/T1-F1/a.png", fake, false},
		{"https://127.0.0.1:4567/a", fake, false},
		{"::bad", api, false},
	}
	for _, tt := range tests {
		if got := mayReceiveToken(tt.url, tt.api); got != tt.want {
			t.Errorf("mayReceiveToken(%q, %q) = %v", tt.url, tt.api, got)
		}
	}
}

func TestAttachmentsOf(t *testing.T) {
	t.Parallel()
	var asked []string
	fetcher := func(u string) func(context.Context) ([]byte, error) {
		asked = append(asked, u)
		if strings.Contains(u, "elsewhere") {
			return nil // the token may not go there
		}
		return func(context.Context) ([]byte, error) { return []byte(u), nil }
	}
	files := []slack.File{
		{ID: "F1", Name: "cat.png", Mimetype: "image/png", Size: 42, Mode: "hosted",
			URLPrivate: "https://files.slack.com/cat.png", URLPrivateDownload: "https://files.slack.com/download/cat.png"},
		{ID: "F2", Mode: "tombstone"},
		{ID: "F3", Title: "Notes", Mimetype: "text/plain", Mode: "snippet", URLPrivate: "https://files.slack.com/notes"},
		{ID: "F4", Name: "x.pdf", Mode: "hosted", URLPrivate: "https://elsewhere.example/x.pdf"},
	}
	got := attachmentsOf(files, fetcher)
	if len(got) != 4 {
		t.Fatalf("got %d attachments", len(got))
	}
	if a := got[0]; a.Name != "cat.png" || a.MIMEType != "image/png" || a.Size != 42 || a.URL != "https://files.slack.com/download/cat.png" || a.Fetch == nil || a.Data != nil {
		t.Errorf("file: %+v", a)
	}
	if b, _ := got[0].Fetch(context.Background()); string(b) != "https://files.slack.com/download/cat.png" {
		t.Errorf("fetch used %q", b)
	}
	if a := got[1]; a.Name != "F2" || a.Fetch != nil || a.Data != nil || a.URL != "" {
		t.Errorf("tombstone must be described without Fetch: %+v", a)
	}
	if a := got[2]; a.Name != "Notes" || a.URL != "https://files.slack.com/notes" || a.Fetch == nil {
		t.Errorf("snippet: %+v", a)
	}
	if a := got[3]; a.Name != "x.pdf" || a.Fetch != nil {
		t.Errorf("file the token may not go to: %+v", a)
	}
	if !reflect.DeepEqual(asked, []string{"https://files.slack.com/download/cat.png", "https://files.slack.com/notes", "https://elsewhere.example/x.pdf"}) {
		t.Errorf("fetchers made for %q", asked)
	}
}

func TestFixErrors(t *testing.T) {
	t.Parallel()
	login := &fetch.Error{Kind: fetch.KindLoginPage, Host: "files.slack.com"}
	err := withDownloadFix(login)
	var fixer interface{ Fix() string }
	if !errors.As(err, &fixer) || fixer.Fix() != fixFilesRead {
		t.Fatalf("login page: %v has no files:read fix", err)
	}
	var fe *fetch.Error
	if !errors.As(err, &fe) || fe != login {
		t.Errorf("the *fetch.Error is not wrapped: %v", err)
	}
	if err.Error() != login.Error() {
		t.Errorf("message changed: %q", err)
	}
	tooLarge := &fetch.Error{Kind: fetch.KindTooLarge, Host: "files.slack.com", Limit: 10}
	if err := withDownloadFix(tooLarge); errors.As(err, &fixer) || err != tooLarge {
		t.Errorf("too large got a fix: %v", err)
	}
	if err := withUploadFix(slack.SlackErrorResponse{Err: "missing_scope"}); !errors.As(err, &fixer) || fixer.Fix() != fixFilesWrite {
		t.Errorf("missing_scope: %v", err)
	}
	if err := withUploadFix(slack.SlackErrorResponse{Err: "channel_not_found"}); errors.As(err, &fixer) {
		t.Errorf("channel_not_found got a fix: %v", err)
	}
	if withUploadFix(nil) != nil {
		t.Error("nil error wrapped")
	}
}

func TestDecodeContentAndShares(t *testing.T) {
	t.Parallel()
	raw := `{"type":"message","user":"U1","text":"","ts":"1.1","channel":"D1","channel_type":"im",
	 "files":[{"id":"F1","name":"a.txt","mimetype":"text/plain","size":3,"mode":"hosted","url_private":"https://files.slack.com/a.txt"}],
	 "attachments":[
	  {"id":1,"is_msg_unfurl":true,"is_share":true,"author_id":"U2","author_name":"Bob Builder","author_subname":"Bob",
	   "text":"see <@U3> &amp; <https://x.io|this>","fallback":"[date] Bob: see","ts":"1700000000.000100",
	   "files":[{"id":"F2","name":"b.png","mimetype":"image/png","mode":"hosted","url_private":"https://files.slack.com/b.png"}]},
	  {"id":2,"title":"A web page","title_link":"https://example.com","text":"a link preview","service_name":"Example"},
	  {"id":3,"is_msg_unfurl":true,"author_id":"U4","text":"",
	   "message_blocks":[{"team":"T1","channel":"C1","ts":"1.2","message":{"blocks":[
	    {"type":"rich_text","block_id":"x","elements":[{"type":"rich_text_section","elements":[{"type":"text","text":"from blocks"}]}]}]}}]},
	  {"id":4,"is_share":true,"text":{"not":"text"}},
	  {"id":6,"is_share":true,"author_name":"Nobody"},
	  {"id":5,"is_share":true,"fallback":"only a fallback"}
	 ]}`
	c := decodeContent([]byte(raw))
	if len(c.Files) != 1 || c.Files[0].ID != "F1" {
		t.Fatalf("files: %+v", c.Files)
	}
	got := sharedMessages(c.Attachments)
	want := []sharedMessage{
		{authorID: "U2", author: "Bob Builder", text: "see <@U3> &amp; <https://x.io|this>"},
		{authorID: "U4", text: "from blocks"},
		{text: "only a fallback"},
	}
	if len(got) != len(want) {
		t.Fatalf("shares = %+v", got)
	}
	for i := range want {
		g := got[i]
		if g.authorID != want[i].authorID || g.author != want[i].author || g.text != want[i].text {
			t.Errorf("share %d = %+v, want %+v", i, g, want[i])
		}
	}
	if len(got[0].files) != 1 || got[0].files[0].ID != "F2" {
		t.Errorf("shared files: %+v", got[0].files)
	}
	if c := decodeContent([]byte(`{"type":"message","text":"hi"}`)); c.Files != nil || c.Attachments != nil {
		t.Errorf("plain message: %+v", c)
	}
	// A files[] that does not decode keeps the attachments, and vice versa.
	c = decodeContent([]byte(`{"files":"bogus","attachments":[{"is_share":true,"text":"kept"}]}`))
	if s := sharedMessages(c.Attachments); len(s) != 1 || s[0].text != "kept" {
		t.Errorf("attachments lost with bad files: %+v", c)
	}
}

func TestRichText(t *testing.T) {
	t.Parallel()
	raw := `{"type":"rich_text","elements":[
	 {"type":"rich_text_section","elements":[
	   {"type":"text","text":"Hi "},{"type":"user","user_id":"U2"},{"type":"text","text":", a <b> & c in "},
	   {"type":"channel","channel_id":"C9"},{"type":"text","text":" "},{"type":"link","url":"https://x.io","text":"site"},
	   {"type":"text","text":" "},{"type":"link","url":"https://y.io"},{"type":"text","text":" "},{"type":"emoji","name":"wave"},
	   {"type":"text","text":" "},{"type":"broadcast","range":"here"},{"type":"text","text":" "},{"type":"usergroup","usergroup_id":"S1"},
	   {"type":"text","text":" "},{"type":"date","timestamp":1700000000,"format":"{date}","fallback":"Nov 14"}]},
	 {"type":"rich_text_list","style":"bullet","elements":[
	   {"type":"rich_text_section","elements":[{"type":"text","text":"one","style":{"bold":true}}]},
	   {"type":"rich_text_section","elements":[{"type":"text","text":"two"}]}]},
	 {"type":"rich_text_list","style":"ordered","indent":1,"elements":[
	   {"type":"rich_text_section","elements":[{"type":"text","text":"first"}]}]},
	 {"type":"rich_text_quote","elements":[{"type":"text","text":"quoted\nlines"}]},
	 {"type":"rich_text_preformatted","elements":[{"type":"text","text":"x := 1"}]}
	]}`
	var b richElement
	if err := json.Unmarshal([]byte(raw), &b); err != nil {
		t.Fatal(err)
	}
	want := "Hi <@U2>, a &lt;b&gt; &amp; c in <#C9> <https://x.io|site> <https://y.io> :wave: <!here> <!subteam^S1> Nov 14\n" +
		"- one\n- two\n" +
		"  1. first\n" +
		"&gt; quoted\n&gt; lines\n" +
		"```\nx := 1\n```"
	if got := richText(b); got != want {
		t.Errorf("richText =\n%s\nwant\n%s", got, want)
	}
	if got := richText(richElement{Type: "section", Text: "not rich text"}); got != "" {
		t.Errorf("other block = %q", got)
	}
	// Through resolveText, rich text reads like any message.
	a, _ := New(Config{BotToken: "xoxb-1", APIURL: "http://127.0.0.1:1/api/"}, nopEngine{})
	a.users.m["U2"] = userInfo{name: "Bob", expires: time.Now().Add(time.Hour)}
	if got := a.resolveText(context.Background(), richInline([]richElement{
		{Type: "text", Text: "ask "}, {Type: "user", UserID: "U2"}, {Type: "text", Text: " if 1 < 2 & <b>"},
	}), "UBOT"); got != "ask @Bob if 1 < 2 & <b>" {
		t.Errorf("resolved = %q", got)
	}
}
