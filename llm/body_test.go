package llm

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"runtime"
	"testing"
	"testing/iotest"
)

// readChunks reads r with reads of at most n bytes.
func readChunks(t *testing.T, r io.Reader, n int) []byte {
	t.Helper()
	var out []byte
	buf := make([]byte, n)
	for {
		k, err := r.Read(buf)
		out = append(out, buf[:k]...)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestBodySplicesBase64(t *testing.T) {
	t.Parallel()
	payloads := [][]byte{nil, {1}, {1, 2}, {1, 2, 3}, []byte("four"), bytes.Repeat([]byte{0xff, 0, 0x7f}, 3001), bytes.Repeat([]byte("x"), 10000)}
	for _, data := range payloads {
		var bl blobs
		v := map[string]any{
			"text": "user text mentioning @blob:abc:0@ and \"quotes\" <b>",
			"url":  bl.dataURL("image/png", data),
			"raw":  bl.add(data[:len(data)/2]),
		}
		rb, err := bl.body(v)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(map[string]any{
			"text": "user text mentioning @blob:abc:0@ and \"quotes\" <b>",
			"url":  "data:image/png;base64," + base64.StdEncoding.EncodeToString(data),
			"raw":  base64.StdEncoding.EncodeToString(data[:len(data)/2]),
		})
		if rb.size != int64(len(want)) {
			t.Errorf("%d bytes: size %d, want %d", len(data), rb.size, len(want))
		}
		for _, n := range []int{1, 2, 3, 4, 5, 7, 64, 4096, 1 << 20} {
			if got := readChunks(t, rb.reader(), n); !bytes.Equal(got, want) {
				t.Fatalf("%d bytes, reads of %d:\n got %.200s\nwant %.200s", len(data), n, got, want)
			}
		}
		if err := iotest.TestReader(rb.reader(), want); err != nil {
			t.Errorf("%d bytes: %v", len(data), err)
		}
	}
}

func TestEncodeStreamsEveryFormat(t *testing.T) {
	t.Parallel()
	img := bytes.Repeat([]byte("\x89PNG\r\n\x1a\nimage"), 100)
	pdf := []byte("%PDF-1.7\n...")
	req := &Request{Model: "m", Messages: []Message{
		{Role: RoleUser, Images: []Image{{MIMEType: "image/png", Data: img}}, Files: []File{{Name: "a.pdf", Data: pdf}}},
		{Role: RoleAssistant, Content: "seen", Images: []Image{{Data: img}}},
		{Role: RoleUser, Content: "again", Images: []Image{{URL: "https://example.com/x.png"}}},
	}}
	b64 := base64.StdEncoding.EncodeToString
	tests := []struct {
		f    Format
		want []string
	}{
		{FormatChat, []string{
			`{"type":"image_url","image_url":{"url":"data:image/png;base64,` + b64(img) + `"}}`,
			`{"type":"file","file":{"filename":"a.pdf","file_data":"data:application/pdf;base64,` + b64(pdf) + `"}}`,
			`{"role":"assistant","content":"seen"}`,
			`{"type":"image_url","image_url":{"url":"https://example.com/x.png"}}`,
		}},
		{FormatResponses, []string{
			`{"type":"input_image","image_url":"data:image/png;base64,` + b64(img) + `"}`,
			`{"type":"input_file","filename":"a.pdf","file_data":"data:application/pdf;base64,` + b64(pdf) + `"}`,
			`{"role":"assistant","content":[{"type":"output_text","text":"seen"}]}`,
		}},
		{FormatAnthropic, []string{
			`{"type":"image","source":{"type":"base64","media_type":"image/png","data":"` + b64(img) + `"}}`,
			`{"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"` + b64(pdf) + `"}}`,
			`{"role":"assistant","content":[{"type":"text","text":"seen"}]}`,
			`{"type":"image","source":{"type":"url","url":"https://example.com/x.png"}}`,
		}},
		{FormatGemini, []string{
			`{"inline_data":{"mime_type":"image/png","data":"` + b64(img) + `"}}`,
			`{"inline_data":{"mime_type":"application/pdf","data":"` + b64(pdf) + `"}}`,
			`{"role":"model","parts":[{"text":"seen"}]}`,
			`{"file_data":{"mime_type":"image/png","file_uri":"https://example.com/x.png"}}`,
		}},
	}
	for _, tt := range tests {
		rb, err := wireFor(tt.f).encode(req, true, 0)
		if err != nil {
			t.Fatal(err)
		}
		body := rb.bytes()
		if !json.Valid(body) || int64(len(body)) != rb.size {
			t.Fatalf("%s: invalid body or size %d != %d: %.300s", tt.f, rb.size, len(body), body)
		}
		for _, w := range tt.want {
			if !bytes.Contains(body, []byte(w)) {
				t.Errorf("%s: body lacks %s\n%.600s", tt.f, w, body)
			}
		}
		if n := bytes.Count(body, []byte(b64(img))); n != 1 {
			t.Errorf("%s: the inline image appears %d times (assistant images must be dropped)", tt.f, n)
		}
	}
}

// TestEncodeAllocatesLittle guards the memory requirement: sending an
// attachment must not build its base64 text (or the body) in memory.
func TestEncodeAllocatesLittle(t *testing.T) {
	const size = 4 << 20
	img := make([]byte, size)
	req := &Request{Model: "m", Messages: []Message{{Role: RoleUser, Content: "look", Images: []Image{{MIMEType: "image/png", Data: img}}, Files: []File{{Data: img}}}}}
	for _, f := range []Format{FormatChat, FormatResponses, FormatAnthropic, FormatGemini} {
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		rb, err := wireFor(f).encode(req, true, 0)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := io.CopyBuffer(io.Discard, struct{ io.Reader }{rb.reader()}, make([]byte, 32<<10))
		runtime.ReadMemStats(&m1)
		if n != rb.size || n < 2*size*4/3 {
			t.Errorf("%s: read %d bytes, size %d", f, n, rb.size)
		}
		if alloc := m1.TotalAlloc - m0.TotalAlloc; alloc > size/10 {
			t.Errorf("%s: encoding and reading allocated %d bytes for 2×%d attachment bytes", f, alloc, size)
		}
	}
}

func TestTurnsAttachments(t *testing.T) {
	t.Parallel()
	a, b, c := Image{URL: "a"}, Image{URL: "b"}, Image{URL: "c"}
	pdf := File{Name: "x.pdf"}
	mine := []Image{a, b}[:1:2] // room to append: merging must not write into it
	in := []Message{
		{Role: RoleUser, Images: mine},
		{Role: RoleUser, Content: " ", Files: []File{pdf}},
		{Role: RoleUser, Images: []Image{c}},
		{Role: RoleAssistant, Content: "", Images: []Image{a}},
		{Role: RoleAssistant, Content: "ok", Images: []Image{a}, Files: []File{pdf}},
	}
	got := turns(in, false)
	if len(got) != 4 || len(got[0].Images) != 1 || len(got[1].Files) != 1 || got[3].Images != nil || got[3].Files != nil {
		t.Errorf("unmerged = %+v", got)
	}
	got = turns(in, true)
	if len(got) != 2 || len(got[0].Images) != 2 || got[0].Images[1].URL != "c" || len(got[0].Files) != 1 || got[0].Content != "" {
		t.Errorf("merged = %+v", got)
	}
	if got[1].Role != RoleAssistant || got[1].Images != nil || got[1].Files != nil {
		t.Errorf("assistant kept attachments: %+v", got[1])
	}
	if mine[:2][1].URL != "b" {
		t.Errorf("merging wrote into the caller's slice")
	}
	if (&Request{Messages: in[3:]}).hasAttachments() || !(&Request{Messages: in[:1]}).hasAttachments() {
		t.Errorf("hasAttachments")
	}
}

// TestB64ImageCap: a generated image is decoded up to MaxImageBytes; a
// larger one is refused from its length alone, without decoding it.
func TestB64ImageCap(t *testing.T) {
	t.Parallel()
	quote := func(b []byte) []byte { return append(append([]byte{'"'}, b...), '"') }
	// "AAAA" is 3 zero bytes, "AAA=" 2 and "AA==" 1: MaxImageBytes is 3k+2.
	limit := append(bytes.Repeat([]byte("AAAA"), MaxImageBytes/3), "AAE="...) // ends in 0x00 0x01
	tests := []struct {
		name        string
		raw         []byte
		n           int
		tooBig, bad bool
	}{
		{"exactly the limit", quote(limit), MaxImageBytes, false, false},
		{"one byte over", quote(append(limit[:len(limit)-4:len(limit)-4], "AAAA"...)), 0, true, false},
		{"far over", quote(bytes.Repeat([]byte("AAAA"), MaxImageBytes/2)), 0, true, false},
		{"unpadded", quote(base64.RawStdEncoding.AppendEncode(nil, []byte("ab"))), 2, false, false},
		{"url-safe", quote(base64.URLEncoding.AppendEncode(nil, []byte{0xfb, 0xff})), 2, false, false},
		{"escaped line breaks", []byte(`"YW\nJj\/"`), 0, false, true},
		{"line breaks", []byte(`"YWJj\nZGVm"`), 6, false, false},
		{"not base64", []byte(`"*"`), 0, false, true},
		{"not a string", []byte(`12`), 0, false, true},
		{"null", []byte(`null`), 0, false, false},
	}
	for _, tt := range tests {
		var d b64image
		err := d.UnmarshalJSON(tt.raw)
		if err != nil || len(d.data) != tt.n || d.tooBig != tt.tooBig || d.bad != tt.bad {
			t.Errorf("%s: err %v, %d bytes, tooBig %v, bad %v", tt.name, err, len(d.data), d.tooBig, d.bad)
		}
		if tt.name == "exactly the limit" && (d.data[0] != 0 || d.data[MaxImageBytes-1] != 1) {
			t.Errorf("%s: wrong bytes", tt.name)
		}
	}
}
