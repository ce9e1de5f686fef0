package discordtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strings"
	"testing"
)

type part struct {
	field, filename, contentType string
	data                         []byte
}

// multipartBody builds a multipart/form-data body from parts in order.
func multipartBody(t *testing.T, parts ...part) (string, []byte) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for _, p := range parts {
		h := textproto.MIMEHeader{}
		cd := fmt.Sprintf(`form-data; name=%q`, p.field)
		if p.filename != "" {
			cd += fmt.Sprintf(`; filename=%q`, p.filename)
		}
		h.Set("Content-Disposition", cd)
		if p.contentType != "" {
			h.Set("Content-Type", p.contentType)
		}
		pw, err := w.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		pw.Write(p.data)
	}
	w.Close()
	return w.FormDataContentType(), buf.Bytes()
}

func post(t *testing.T, s *Server, channel, contentType string, body []byte) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", s.APIURL()+"/channels/"+channel+"/messages", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bot "+s.Token())
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func TestMultipartMessages(t *testing.T) {
	t.Parallel()
	s := NewTest(t, Options{WriteBudget: -1, UploadLimit: 100})
	png := []byte("\x89PNG\r\n\x1a\nxxxx")
	js := func(v string) part {
		return part{field: "payload_json", contentType: "application/json", data: []byte(v)}
	}
	file := func(n int, name string, size int) part {
		return part{field: fmt.Sprintf("files[%d]", n), filename: name, contentType: "image/png", data: bytes.Repeat([]byte{7}, size)}
	}
	for _, tc := range []struct {
		name   string
		parts  []part
		status int
		code   int
		files  int
	}{
		{"files listed in attachments", []part{js(`{"attachments":[{"id":0,"filename":"a.png"},{"id":"1"}]}`), file(0, "a.png", 10), file(1, "b.png", 10)}, 200, 0, 2},
		{"files without attachments field", []part{js(`{"content":"here"}`), file(0, "a.png", 10)}, 200, 0, 1},
		{"files without payload_json", []part{file(0, "a.png", 10)}, 200, 0, 1},
		{"content only", []part{js(`{"content":"just text"}`)}, 200, 0, 0},
		{"neither content nor files", []part{js(`{"content":"","attachments":[]}`)}, 400, 50006, 0},
		{"file missing from attachments", []part{js(`{"attachments":[{"id":0}]}`), file(0, "a.png", 1), file(1, "b.png", 1)}, 400, 50035, 0},
		{"attachment without a file", []part{js(`{"attachments":[{"id":0},{"id":3}]}`), file(0, "a.png", 1)}, 400, 50035, 0},
		{"attachment listed twice", []part{js(`{"attachments":[{"id":0},{"id":0}]}`), file(0, "a.png", 1)}, 400, 50035, 0},
		{"file without a filename", []part{js(`{}`), {field: "files[0]", data: []byte("x")}}, 400, 50035, 0},
		{"unknown field", []part{js(`{}`), {field: "file", filename: "a.png", data: []byte("x")}}, 400, 50035, 0},
		{"bad index", []part{js(`{}`), {field: "files[01]", filename: "a.png", data: []byte("x")}}, 400, 50035, 0},
		{"duplicate part", []part{js(`{}`), file(0, "a.png", 1), file(0, "b.png", 1)}, 400, 50035, 0},
		{"over the upload limit", []part{js(`{}`), file(0, "a.png", 60), file(1, "b.png", 41)}, 413, 40005, 0},
		{"exactly the upload limit", []part{js(`{}`), file(0, "a.png", 60), file(1, "b.png", 40)}, 200, 0, 2},
		{"eleven files", func() []part {
			ps := []part{js(`{}`)}
			for i := 0; i < 11; i++ {
				ps = append(ps, file(i, fmt.Sprintf("%d.png", i), 1))
			}
			return ps
		}(), 400, 50035, 0},
		{"bad payload_json", []part{js(`{`), file(0, "a.png", 1)}, 400, 50109, 0},
	} {
		ct, body := multipartBody(t, tc.parts...)
		status, out := post(t, s, GeneralChannel, ct, body)
		if status != tc.status || (tc.code != 0 && out["code"] != float64(tc.code)) {
			t.Errorf("%s: %d %v, want %d code %d", tc.name, status, out, tc.status, tc.code)
			continue
		}
		if status == 200 {
			atts, _ := out["attachments"].([]any)
			if len(atts) != tc.files {
				t.Errorf("%s: %d attachments in the answer, want %d", tc.name, len(atts), tc.files)
			}
			m, _ := s.Message(out["id"].(string))
			if len(m.Files) != tc.files {
				t.Errorf("%s: recorded %d files, want %d", tc.name, len(m.Files), tc.files)
			}
		}
	}

	// What was uploaded is recorded as sent and can be downloaded again.
	ct, body := multipartBody(t, js(`{"attachments":[{"id":0,"filename":"renamed.png","description":"a cat"}]}`),
		part{field: "files[0]", filename: "orig.png", contentType: "image/png", data: png})
	status, out := post(t, s, GeneralChannel, ct, body)
	if status != 200 {
		t.Fatalf("upload: %d %v", status, out)
	}
	m, _ := s.Message(out["id"].(string))
	if f := m.Files[0]; f.Name != "renamed.png" || f.Description != "a cat" || f.ContentType != "image/png" || !bytes.Equal(f.Data, png) {
		t.Errorf("recorded file = %+v", f)
	}
	resp, err := http.Get(m.Attachments[0].URL)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(got, png) {
		t.Errorf("CDN gave %q", got)
	}
	if calls := s.CallsTo("POST", "/messages"); string(calls[len(calls)-1].Payload) != `{"attachments":[{"id":0,"filename":"renamed.png","description":"a cat"}]}` {
		t.Errorf("recorded payload = %s", calls[len(calls)-1].Payload)
	}
}

func TestCDN(t *testing.T) {
	t.Parallel()
	s := NewTest(t, Options{})
	data := bytes.Repeat([]byte("abc"), 50_000)
	a := s.AddAttachment(CDNFile{ChannelID: GeneralChannel, Name: "my notes.txt", ContentType: "text/plain", Data: data})
	if a.Size != int64(len(data)) || !strings.Contains(a.URL, "/attachments/"+GeneralChannel+"/"+a.ID+"/my%20notes.txt?") ||
		!strings.Contains(a.URL, "hm=") || !strings.Contains(a.URL, "ex=") || !strings.Contains(a.URL, "is=") {
		t.Fatalf("attachment = %+v", a)
	}
	get := func(u string, auth bool) (int, []byte, string) {
		req, _ := http.NewRequest("GET", u, nil)
		if auth {
			req.Header.Set("Authorization", "Bot "+s.Token())
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b, resp.Header.Get("Content-Length")
	}
	if st, b, cl := get(a.URL, false); st != 200 || !bytes.Equal(b, data) || cl != fmt.Sprint(len(data)) {
		t.Errorf("signed link: %d, %d bytes, length %q", st, len(b), cl)
	}
	unsigned, _, _ := strings.Cut(a.URL, "?")
	if st, b, _ := get(unsigned, false); st != 404 || string(b) != "This content is no longer available." {
		t.Errorf("unsigned link: %d %q", st, b)
	}
	if st, _, _ := get(strings.Replace(a.URL, "hm=", "hm=00", 1), false); st != 404 {
		t.Errorf("altered signature: %d", st)
	}
	if st, _, _ := get(strings.Replace(a.URL, "my%20notes", "other", 1), false); st != 404 {
		t.Errorf("other path with the same signature: %d", st)
	}
	get(a.URL, true)
	if n := s.BytesServed(a.ID); n != 2*int64(len(data)) {
		t.Errorf("BytesServed = %d, want %d", n, 2*len(data))
	}
	reqs := s.CDNRequests()
	if len(reqs) != 5 || reqs[0].Authorization || !reqs[4].Authorization || reqs[4].Bytes != int64(len(data)) || reqs[1].Status != 404 {
		t.Errorf("CDN requests = %+v", reqs)
	}

	// Without Content-Length the file comes chunked.
	b := s.AddAttachment(CDNFile{ChannelID: GeneralChannel, Name: "x.bin", Data: data, NoLength: true, DeclaredSize: 7})
	if st, got, cl := get(b.URL, false); st != 200 || cl != "" || !bytes.Equal(got, data) || b.Size != 7 {
		t.Errorf("no-length file: %d length %q %d bytes, declared %d", st, cl, len(got), b.Size)
	}
}

func TestForwardAndAttachmentShapes(t *testing.T) {
	t.Parallel()
	s := NewTest(t, Options{})
	dm := s.DMChannel(AliceID)
	att := s.AddAttachment(CDNFile{ChannelID: GeneralChannel, Name: "a.png", ContentType: "image/png", Data: []byte("x")})
	orig := s.AddMessage(Post{ChannelID: GeneralChannel, Author: User{ID: BobID, Username: "bob"}, Content: "original", Attachments: []Attachment{att}})
	sn, ok := s.Snapshot(orig.ID)
	if !ok || sn.GuildID != DefaultGuildID || sn.ChannelID != GeneralChannel || len(sn.Attachments) != 1 {
		t.Fatalf("snapshot = %+v", sn)
	}
	fw := s.UserMessage(Post{ChannelID: dm, Forward: &sn})
	s.mu.Lock()
	js := s.messageJSONLocked(s.messages[fw.ID], true)
	s.mu.Unlock()
	raw, _ := json.Marshal(js)
	var got struct {
		Type      int    `json:"type"`
		Content   string `json:"content"`
		Reference struct {
			Type      int    `json:"type"`
			MessageID string `json:"message_id"`
			ChannelID string `json:"channel_id"`
			GuildID   string `json:"guild_id"`
		} `json:"message_reference"`
		Referenced *json.RawMessage `json:"referenced_message"`
		Snapshots  []struct {
			Message map[string]json.RawMessage `json:"message"`
		} `json:"message_snapshots"`
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	r := got.Reference
	if got.Type != 0 || got.Content != "" || r.Type != 1 || r.MessageID != orig.ID || r.ChannelID != GeneralChannel || r.GuildID != DefaultGuildID || got.Referenced != nil {
		t.Errorf("forward = %s", raw)
	}
	if len(got.Snapshots) != 1 {
		t.Fatalf("snapshots in %s", raw)
	}
	snm := got.Snapshots[0].Message
	for _, k := range []string{"content", "attachments", "embeds", "timestamp", "type", "flags", "mentions"} {
		if _, ok := snm[k]; !ok {
			t.Errorf("snapshot message lacks %q: %s", k, raw)
		}
	}
	for _, k := range []string{"author", "id", "channel_id"} {
		if _, ok := snm[k]; ok {
			t.Errorf("snapshot message has %q, which Discord leaves out: %s", k, raw)
		}
	}
	if !strings.Contains(string(snm["attachments"]), att.ID) || string(snm["content"]) != `"original"` {
		t.Errorf("snapshot message = %s", raw)
	}

	// GET of a stored message; unknown ones are 404.
	for _, tc := range []struct {
		path   string
		status int
	}{
		{"/channels/" + GeneralChannel + "/messages/" + orig.ID, 200},
		{"/channels/" + GeneralChannel + "/messages/1", 404},
		{"/channels/" + dm + "/messages/" + orig.ID, 404},
		{"/channels/9/messages/" + orig.ID, 404},
	} {
		resp, body := do(t, s, "GET", tc.path, "", true)
		if resp.StatusCode != tc.status {
			t.Errorf("GET %s: %d, want %d", tc.path, resp.StatusCode, tc.status)
		}
		if tc.status == 200 && (body["content"] != "original" || body["author"].(map[string]any)["id"] != BobID) {
			t.Errorf("GET %s = %v", tc.path, body)
		}
	}
}
