package llm_test

import (
	"bytes"
	"context"
	"math/rand/v2"
	"testing"

	"github.com/cometbot/cometbot/llm"
	"github.com/cometbot/cometbot/llm/llmtest"
)

// randomBytes returns n reproducible pseudo-random bytes starting with head.
func randomBytes(head string, n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, seed))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	copy(b, head)
	return b
}

// TestAttachmentsReachEveryFormat sends images and a PDF through the client
// in every format: the gateway decodes exactly the bytes sent, each in the
// format's native shape, and a message with only an image is sent.
func TestAttachmentsReachEveryFormat(t *testing.T) {
	t.Parallel()
	png := randomBytes("\x89PNG\r\n\x1a\n", 300_001, 1) // not a multiple of 3
	jpeg := randomBytes("\xff\xd8\xff", 4096, 2)
	pdf := randomBytes("%PDF-1.7\n", 70_000, 3)
	fileShape := map[llm.Format]string{llm.FormatChat: "file", llm.FormatResponses: "input_file", llm.FormatAnthropic: "document", llm.FormatGemini: "inline_data"}
	imageShape := map[llm.Format]string{llm.FormatChat: "image_url", llm.FormatResponses: "input_image", llm.FormatAnthropic: "image", llm.FormatGemini: "inline_data"}
	for _, fc := range formats {
		for _, stream := range []bool{true, false} {
			name := fc.name + map[bool]string{true: "/stream", false: "/complete"}[stream]
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				s := llmtest.New(t, llmtest.Options{Reply: "I see."})
				c := newClient(t, s)
				req := llm.Request{Model: fc.model, Messages: []llm.Message{
					{Role: llm.RoleUser, Content: "what is in these?", Images: []llm.Image{{MIMEType: "image/png", Data: png}}, Files: []llm.File{{Name: "a.pdf", MIMEType: "application/pdf", Data: pdf}}},
					{Role: llm.RoleAssistant, Content: "A picture and a paper."},
					{Role: llm.RoleUser, Images: []llm.Image{{Data: jpeg}}}, // no text, no MIME type
				}}
				call := c.Complete
				if stream {
					call = func(ctx context.Context, r llm.Request) (*llm.Response, error) { return c.Stream(ctx, r, nil) }
				}
				resp, err := call(context.Background(), req)
				if err != nil {
					t.Fatal(err)
				}
				if resp.Text != "I see." {
					t.Errorf("text = %q", resp.Text)
				}
				rec, _ := s.LastRequest()
				if rec.Size != int64(len(rec.Body)) || rec.Header.Get("Content-Length") == "" {
					t.Errorf("size %d, body %d, Content-Length %q", rec.Size, len(rec.Body), rec.Header.Get("Content-Length"))
				}
				p, err := rec.Decode()
				if err != nil {
					t.Fatal(err)
				}
				if len(p.Messages) != 3 || len(p.Parts) != 3 {
					t.Fatalf("messages = %d, parts = %d", len(p.Messages), len(p.Parts))
				}
				first := p.Parts[0]
				if len(first) != 2 {
					t.Fatalf("first message parts = %+v", first)
				}
				var img, doc llmtest.Part
				for _, pt := range first {
					if pt.Kind == llmtest.PartImage {
						img = pt
					} else {
						doc = pt
					}
				}
				if !bytes.Equal(img.Data, png) || img.MIMEType != "image/png" || img.Shape != imageShape[fc.format] {
					t.Errorf("image: %s %s %d bytes (equal %v)", img.Shape, img.MIMEType, len(img.Data), bytes.Equal(img.Data, png))
				}
				if !bytes.Equal(doc.Data, pdf) || doc.MIMEType != "application/pdf" || doc.Shape != fileShape[fc.format] || doc.Kind != llmtest.PartFile {
					t.Errorf("pdf: %s %s %s %d bytes (equal %v)", doc.Kind, doc.Shape, doc.MIMEType, len(doc.Data), bytes.Equal(doc.Data, pdf))
				}
				if (fc.format == llm.FormatChat || fc.format == llm.FormatResponses) && doc.Name != "a.pdf" {
					t.Errorf("file name = %q", doc.Name)
				}
				if p.Messages[0].Content != "what is in these?" || len(p.Messages[0].Files) != 1 {
					t.Errorf("first message = %q, %d files", p.Messages[0].Content, len(p.Messages[0].Files))
				}
				if p.Parts[1] != nil || p.Messages[1].Role != llm.RoleAssistant {
					t.Errorf("assistant message = %+v", p.Messages[1])
				}
				last := p.Parts[2]
				if p.Messages[2].Role != llm.RoleUser || p.Messages[2].Content != "" || len(last) != 1 ||
					!bytes.Equal(last[0].Data, jpeg) || last[0].MIMEType != "image/jpeg" {
					t.Errorf("image-only message: %q %+v", p.Messages[2].Content, last)
				}
			})
		}
	}
}
