package bot

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/cometbot/cometbot/internal/fetch"
	"github.com/cometbot/cometbot/llm"
	"github.com/cometbot/cometbot/storage"
)

// memBlobs is an in-memory BlobStore.
type memBlobs struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (b *memBlobs) PutBlob(_ context.Context, _ string, data []byte) (string, error) {
	sum := sha256.Sum256(data)
	ref := hex.EncodeToString(sum[:])
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m == nil {
		b.m = map[string][]byte{}
	}
	b.m[ref] = append([]byte(nil), data...)
	return ref, nil
}

func (b *memBlobs) Blob(_ context.Context, ref string) ([]byte, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	d, ok := b.m[ref]
	if !ok {
		return nil, storage.ErrBlobNotFound
	}
	return d, nil
}

func (b *memBlobs) drop() {
	b.mu.Lock()
	b.m = nil
	b.mu.Unlock()
}

var (
	pngBytes = append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), bytes.Repeat([]byte{7}, 64)...)
	pdfBytes = []byte("%PDF-1.4\n1 0 obj << >> endobj\ntrailer <<>>\n%%EOF\n")
)

func served(data []byte) func(context.Context) ([]byte, error) {
	return func(context.Context) ([]byte, error) { return append([]byte(nil), data...), nil }
}

// fixErr is an adapter's wrapped fetch error with a fix.
type fixErr struct{ error }

func (fixErr) Fix() string { return "add the files:read scope to the Slack app and reinstall it" }

// uploadOut is a recOut whose replies can post files.
type uploadOut struct {
	*recOut
	files []File
}

func (o *uploadOut) Start(ctx context.Context) (Reply, error) {
	_, _ = o.recOut.Start(ctx)
	return o, nil
}
func (o *uploadOut) Upload(_ context.Context, fs []File) error {
	o.mu.Lock()
	o.files = append(o.files, fs...)
	o.mu.Unlock()
	return nil
}

func lastUser(t *testing.T, reqs []llm.Request) llm.Message {
	t.Helper()
	if len(reqs) == 0 {
		t.Fatal("no model request")
	}
	msgs := reqs[len(reqs)-1].Messages
	return msgs[len(msgs)-1]
}

func TestAttachmentsReachTheModel(t *testing.T) {
	blobs := &memBlobs{}
	h := newHarness(t, func(o *Options) { o.Blobs = blobs })

	// An image-only DM is a real question about the image.
	m := dm("", "1")
	m.Attachments = []Attachment{{Name: "shot.png", MIMEType: "application/octet-stream", Fetch: served(pngBytes)}}
	final, failed := h.say(t, m)
	if failed != "" || final == "" {
		t.Fatalf("final=%q failed=%q", final, failed)
	}
	u := lastUser(t, h.model.requests())
	if len(u.Images) != 1 || !bytes.Equal(u.Images[0].Data, pngBytes) || u.Images[0].MIMEType != "image/png" {
		t.Fatalf("image not sent: %+v", u.Images)
	}

	// A PDF and a text file: the PDF as a file part, the text inlined with its name.
	m = dm("what's wrong here?", "2")
	m.Attachments = []Attachment{
		{Name: "report.pdf", Fetch: served(pdfBytes)},
		{Name: "app.log", MIMEType: "text/plain", Fetch: served([]byte("line 1\npanic: boom\n"))},
	}
	h.say(t, m)
	u = lastUser(t, h.model.requests())
	if len(u.Files) != 1 || u.Files[0].Name != "report.pdf" || !bytes.Equal(u.Files[0].Data, pdfBytes) {
		t.Fatalf("pdf not sent: %+v", u.Files)
	}
	if !strings.Contains(u.Content, "what's wrong here?") || !strings.Contains(u.Content, `<file name="app.log">`) || !strings.Contains(u.Content, "panic: boom") {
		t.Fatalf("text file not inlined: %q", u.Content)
	}

	// A follow-up still sees the image, the PDF and the log.
	h.say(t, dm("and the second chart?", "3"))
	msgs := h.model.requests()[2].Messages
	if len(msgs) != 5 || len(msgs[0].Images) != 1 || !bytes.Equal(msgs[0].Images[0].Data, pngBytes) || len(msgs[2].Files) != 1 || !strings.Contains(msgs[2].Content, "panic: boom") {
		t.Fatalf("follow-up lost attachments: %+v", msgs)
	}

	// Bytes that are gone are named, not silently dropped.
	blobs.drop()
	h.say(t, dm("still there?", "4"))
	msgs = h.model.requests()[3].Messages
	if len(msgs[0].Images) != 0 || !strings.Contains(msgs[0].Content, "[image: shot.png, no longer in context]") {
		t.Fatalf("dropped image not named: %+v", msgs[0])
	}
}

func TestAttachmentSkipNotes(t *testing.T) {
	loginPage := fixErr{&fetch.Error{Kind: fetch.KindLoginPage, Host: "files.slack.com"}}
	tests := []struct {
		name     string
		atts     []Attachment
		text     string
		wantNote string
		wantCall bool
	}{
		{"login page names the fix", []Attachment{{Name: "a.png", Fetch: func(context.Context) ([]byte, error) { return nil, loginPage }}}, "look", "add the files:read scope", true},
		{"too large by declared size", []Attachment{{Name: "big.png", Size: 30 << 20, Fetch: served(pngBytes)}}, "look", "over the 20 MiB limit", true},
		{"too large on the wire", []Attachment{{Name: "big.png", Fetch: func(context.Context) ([]byte, error) {
			return nil, &fetch.Error{Kind: fetch.KindTooLarge, Limit: 20 << 20}
		}}}, "look", "big.png: it is over the 20 MiB limit", true},
		{"binary is unsupported", []Attachment{{Name: "x.bin", Fetch: served([]byte{0, 1, 2, 0xff, 0xfe})}}, "look", "I can read images, PDFs and text files", true},
		{"not downloadable", []Attachment{{Name: "ext.doc"}}, "look", "doesn't let bots download it", true},
		{"download failed", []Attachment{{Name: "a.png", Fetch: func(context.Context) ([]byte, error) { return nil, errors.New("reset") }}}, "look", "the download failed", true},
		{"only a skipped file: notes, no model call", []Attachment{{Name: "x.bin", Fetch: served([]byte{0, 0xff})}}, "", "I can read images", false},
		{"too many files", manyFiles(12), "look", "I read at most 10 files per message", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			m := dm(tt.text, "1")
			m.Attachments = tt.atts
			final, failed := h.say(t, m)
			if failed != "" || !strings.Contains(final, tt.wantNote) {
				t.Fatalf("final=%q failed=%q, want note %q", final, failed, tt.wantNote)
			}
			calls := h.model.requests()
			if got := len(calls) > 0; got != tt.wantCall {
				t.Fatalf("model called = %v, want %v", got, tt.wantCall)
			}
			if tt.wantCall && !strings.Contains(lastUser(t, calls).Content, tt.text) {
				t.Fatalf("text not answered: %+v", calls)
			}
			if len(strings.Split(strings.TrimSpace(final[strings.Index(final, "📎"):]), "\n")) != 1 {
				t.Fatalf("note is not one line: %q", final)
			}
		})
	}
}

func manyFiles(n int) []Attachment {
	out := make([]Attachment, n)
	for i := range out {
		out[i] = Attachment{Name: fmt.Sprintf("f%d.txt", i), Fetch: served([]byte("hello"))}
	}
	return out
}

func TestModelWithoutVision(t *testing.T) {
	cat := fakeCatalog{"text-only": {ID: "text-only", Provider: "X", Type: "text", InputModalities: []string{"text"}}}
	for k, v := range testCatalog {
		cat[k] = v
	}
	h := newHarness(t, func(o *Options) { o.Catalog = cat; o.Defaults.Model = "text-only" })
	m := dm("what is this?", "1")
	m.Attachments = []Attachment{{Name: "shot.png", Fetch: served(pngBytes)}}
	final, _ := h.say(t, m)
	if !strings.Contains(final, "/model list vision") {
		t.Fatalf("no explanation: %q", final)
	}
	if u := lastUser(t, h.model.requests()); len(u.Images) != 0 || u.Content != "what is this?" {
		t.Fatalf("image sent to a model without vision: %+v", u)
	}
}

// A model that refuses the image (the catalog could not tell) gets the
// attachment sentence, not a generic failure.
func TestModelRefusesImage(t *testing.T) {
	h := newHarness(t, nil)
	h.model.answer = func(ctx context.Context, req llm.Request) (string, error) {
		return "", &llm.Error{Kind: llm.KindAttachment, Status: 400, Message: "image_url is only supported by certain models"}
	}
	m := dm("what is this?", "1")
	m.Attachments = []Attachment{{Name: "shot.png", Fetch: served(pngBytes)}}
	if _, failed := h.say(t, m); !strings.Contains(failed, "/model list vision") {
		t.Fatalf("failure message = %q", failed)
	}
}

func TestTextFileCutToFit(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.ContextTokens = 2000 })
	big := strings.Repeat("0123456789abcdef\n", 10_000) // 170k characters
	m := dm("summarize", "1")
	m.Attachments = []Attachment{{Name: "big.log", Fetch: served([]byte(big))}}
	h.say(t, m)
	u := lastUser(t, h.model.requests())
	if len(u.Content) > 10_000 || !strings.Contains(u.Content, "[… cut to fit the context: the first") || !strings.Contains(u.Content, "of 170000 characters]") {
		t.Fatalf("text not cut with a note (%d chars): %q", len(u.Content), u.Content[max(0, len(u.Content)-200):])
	}
}

func TestForwardsAreQuoted(t *testing.T) {
	h := newHarness(t, nil)
	m := dm("", "1")
	m.Forwards = []Forward{{Author: "Bob", Text: "the build is red\nsince noon", Attachments: []Attachment{{Name: "ci.png", Fetch: served(pngBytes)}}}}
	final, failed := h.say(t, m)
	if failed != "" || final == "" {
		t.Fatalf("forward not answered: final=%q failed=%q", final, failed)
	}
	u := lastUser(t, h.model.requests())
	if u.Content != "[Forwarded message from Bob]\n> the build is red\n> since noon" || len(u.Images) != 1 {
		t.Fatalf("forward = %q, %d images", u.Content, len(u.Images))
	}
}

func TestGeneratedImagesAreUploaded(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.Blobs = &memBlobs{} })
	h.model.answer = nil
	img := llm.Image{MIMEType: "image/png", Data: pngBytes}
	h.e.opts.Model = imageModel{img}
	out := &uploadOut{recOut: newOut()}
	if err := h.e.HandleMessage(context.Background(), dm("draw a cat", "1"), out); err != nil {
		t.Fatal(err)
	}
	final, _ := out.wait(t)
	if err := h.e.quiesceConversation(context.Background(), dm("", "").Scope().ConversationKey()); err != nil {
		t.Fatal(err)
	}
	out.mu.Lock()
	files := out.files
	out.mu.Unlock()
	if final != "here it is" || len(files) != 1 || !bytes.Equal(files[0].Data, pngBytes) || files[0].Name != "image-1.png" {
		t.Fatalf("final=%q files=%+v", final, files)
	}
	// Without an uploader the reply says so.
	plain := newOut()
	if err := h.e.HandleMessage(context.Background(), dm("again", "2"), plain); err != nil {
		t.Fatal(err)
	}
	if final, _ := plain.wait(t); !strings.Contains(final, "The model made 1 image, which can't be shown here.") {
		t.Fatalf("final=%q", final)
	}
}

// imageModel answers every request with text and one generated image.
type imageModel struct{ img llm.Image }

func (m imageModel) Stream(_ context.Context, _ llm.Request, onDelta func(llm.Delta) error) (*llm.Response, error) {
	if err := onDelta(llm.Delta{Text: "here it is"}); err != nil {
		return nil, err
	}
	return &llm.Response{Text: "here it is", Images: []llm.Image{m.img}}, nil
}

// failingUploadOut has a message from the start and refuses uploads.
type failingUploadOut struct {
	*recOut
	err error
}

func (o *failingUploadOut) Start(ctx context.Context) (Reply, error) {
	_, _ = o.recOut.Start(ctx)
	return o, nil
}
func (o *failingUploadOut) OnRef(fn func(string))                { fn("msg-1") }
func (o *failingUploadOut) Upload(context.Context, []File) error { return o.err }

func TestFailedUploadIsSaid(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{fmt.Errorf("discord: x.png: %w", ErrFileTooLarge), "larger than this platform accepts"},
		{fixErr{errors.New("missing_scope")}, "I couldn't post the image the model made — add the files:read scope"},
		{errors.New("boom"), "I couldn't post the image the model made."},
	}
	for _, tt := range tests {
		h := newHarness(t, nil)
		h.e.opts.Model = imageModel{llm.Image{MIMEType: "image/png", Data: pngBytes}}
		out := &failingUploadOut{recOut: newOut(), err: tt.err}
		if err := h.e.HandleMessage(context.Background(), dm("draw", "1"), out); err != nil {
			t.Fatal(err)
		}
		final, _ := out.wait(t)
		if err := h.e.quiesceConversation(context.Background(), dm("", "").Scope().ConversationKey()); err != nil {
			t.Fatal(err)
		}
		out.mu.Lock()
		failed := out.failed
		out.mu.Unlock()
		if final != "here it is" || !strings.Contains(failed, tt.want) {
			t.Errorf("final = %q, notice = %q, want %q", final, failed, tt.want)
		}
	}
}
