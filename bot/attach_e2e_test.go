package bot_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/cometbot/cometbot/bot"
	"github.com/cometbot/cometbot/bot/bottest"
	"github.com/cometbot/cometbot/llm"
	"github.com/cometbot/cometbot/llm/llmtest"
)

var (
	e2ePNG = append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), bytes.Repeat([]byte{42}, 300)...)
	e2ePDF = []byte("%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n")
)

func fetched(b []byte) func(context.Context) ([]byte, error) {
	return func(context.Context) ([]byte, error) { return append([]byte(nil), b...), nil }
}

func sayWith(t *testing.T, h *bottest.Harness, m bot.Message) (string, string) {
	t.Helper()
	o := newStreamOut()
	if err := h.Engine.HandleMessage(context.Background(), m, o); err != nil {
		t.Fatal(err)
	}
	_, final, failed := o.wait(t)
	if err := h.Engine.Quiesce(context.Background()); err != nil {
		t.Fatal(err)
	}
	return final, failed
}

// TestAttachmentsInEveryFormat: through the real llm client, each format's
// request carries the image and the PDF in its native shape with exactly the
// bytes that were attached, a text file's exact content inline, and a
// follow-up still carries the image.
func TestAttachmentsInEveryFormat(t *testing.T) {
	shapes := map[string][2]string{
		"chat":      {"image_url", "file"},
		"responses": {"input_image", "input_file"},
		"anthropic": {"image", "document"},
		"gemini":    {"inline_data", "inline_data"},
	}
	for _, f := range formatModels {
		t.Run(f.format, func(t *testing.T) {
			h := bottest.New(t, bottest.Options{Engine: func(o *bot.Options) { o.Defaults.Model = f.model }})
			m := bot.Message{Platform: "t", Workspace: "W", Channel: "D", DM: true, Author: bot.User{ID: "U"}, ID: "1", EventID: "e1",
				Text: "what's wrong here?",
				Attachments: []bot.Attachment{
					{Name: "shot.png", Fetch: fetched(e2ePNG)},
					{Name: "report.pdf", MIMEType: "application/pdf", Fetch: fetched(e2ePDF)},
					{Name: "app.log", Fetch: fetched([]byte("line 1\npanic: nil map\n"))},
				}}
			if _, failed := sayWith(t, h, m); failed != "" {
				t.Fatalf("failed: %q", failed)
			}
			p, _ := h.LastPrompt()
			if p.Format != llm.Format(f.format) {
				t.Fatalf("format %q, want %q", p.Format, f.format)
			}
			last := len(p.Messages) - 1
			parts := p.Parts[last]
			if len(parts) != 2 {
				t.Fatalf("parts = %+v", parts)
			}
			img, pdf := parts[0], parts[1]
			if img.Kind != llmtest.PartImage || img.Shape != shapes[f.format][0] || !bytes.Equal(img.Data, e2ePNG) || img.MIMEType != "image/png" {
				t.Errorf("image part: kind %q shape %q mime %q, %d bytes", img.Kind, img.Shape, img.MIMEType, len(img.Data))
			}
			if pdf.Kind != llmtest.PartFile || pdf.Shape != shapes[f.format][1] || !bytes.Equal(pdf.Data, e2ePDF) || pdf.MIMEType != "application/pdf" {
				t.Errorf("pdf part: kind %q shape %q mime %q, %d bytes", pdf.Kind, pdf.Shape, pdf.MIMEType, len(pdf.Data))
			}
			if c := p.Messages[last].Content; !strings.Contains(c, "line 1\npanic: nil map\n") || !strings.Contains(c, "app.log") {
				t.Errorf("text file not inline: %q", c)
			}
			// The follow-up still sees the image.
			if _, failed := sayWith(t, h, bot.Message{Platform: "t", Workspace: "W", Channel: "D", DM: true, Author: bot.User{ID: "U"}, ID: "2", EventID: "e2", Text: "and the chart?"}); failed != "" {
				t.Fatalf("follow-up failed: %q", failed)
			}
			p, _ = h.LastPrompt()
			found := false
			for _, ps := range p.Parts {
				for _, part := range ps {
					found = found || (part.Kind == llmtest.PartImage && bytes.Equal(part.Data, e2ePNG))
				}
			}
			if !found {
				t.Errorf("follow-up lost the image: %+v", p.Parts)
			}
		})
	}
}

// TestImageOnlyMessage: a message that is only an image is a question about
// it: the request's last user turn carries the image, never an empty turn.
func TestImageOnlyMessage(t *testing.T) {
	for _, f := range formatModels {
		t.Run(f.format, func(t *testing.T) {
			h := bottest.New(t, bottest.Options{Engine: func(o *bot.Options) { o.Defaults.Model = f.model }})
			m := bot.Message{Platform: "t", Workspace: "W", Channel: "D", DM: true, Author: bot.User{ID: "U"}, ID: "1", EventID: "e1",
				Attachments: []bot.Attachment{{Name: "shot.png", Fetch: fetched(e2ePNG)}}}
			if final, failed := sayWith(t, h, m); final == "" || failed != "" {
				t.Fatalf("final=%q failed=%q", final, failed)
			}
			p, _ := h.LastPrompt()
			last := p.Parts[len(p.Parts)-1]
			if p.Messages[len(p.Messages)-1].Role != llm.RoleUser || len(last) != 1 || !bytes.Equal(last[0].Data, e2ePNG) {
				t.Fatalf("last user turn = %+v parts %+v", p.Messages[len(p.Messages)-1], last)
			}
		})
	}
}

// TestGeneratedImageReachesTheReply: an image the model generates (Gemini
// inline data, Responses image_generation_call) is uploaded by the reply.
func TestGeneratedImageReachesTheReply(t *testing.T) {
	for _, f := range formatModels {
		if f.format != "gemini" && f.format != "responses" {
			continue
		}
		t.Run(f.format, func(t *testing.T) {
			h := bottest.New(t, bottest.Options{Engine: func(o *bot.Options) { o.Defaults.Model = f.model }})
			h.Gateway.Enqueue(llmtest.Script{Text: "Here you go.", Images: []llm.Image{{MIMEType: "image/png", Data: e2PNGCopy()}}})
			o := &uploadStreamOut{streamOut: newStreamOut()}
			m := bot.Message{Platform: "t", Workspace: "W", Channel: "D", DM: true, Author: bot.User{ID: "U"}, ID: "1", EventID: "e1", Text: "draw a cat"}
			if err := h.Engine.HandleMessage(context.Background(), m, o); err != nil {
				t.Fatal(err)
			}
			o.wait(t)
			if err := h.Engine.Quiesce(context.Background()); err != nil {
				t.Fatal(err)
			}
			if len(o.files) != 1 || !bytes.Equal(o.files[0].Data, e2ePNG) {
				t.Fatalf("uploaded %+v", o.files)
			}
		})
	}
}

func e2PNGCopy() []byte { return append([]byte(nil), e2ePNG...) }

type uploadStreamOut struct {
	*streamOut
	files []bot.File
}

func (o *uploadStreamOut) Start(context.Context) (bot.Reply, error) { return o, nil }
func (o *uploadStreamOut) Upload(_ context.Context, fs []bot.File) error {
	o.mu.Lock()
	o.files = append(o.files, fs...)
	o.mu.Unlock()
	return nil
}

func TestModelListVision(t *testing.T) {
	h := bottest.New(t, bottest.Options{})
	a := h.Engine.HandleCommand(context.Background(), bot.Command{Name: "model", Args: "list vision", Platform: "t", Workspace: "W", Channel: "D", DM: true, User: bot.User{ID: "U"}})
	for _, want := range []string{"gpt-4o-mini", "claude-sonnet-4-5", "gemini-2.5-flash"} {
		if !strings.Contains(a.Text, want) {
			t.Errorf("/model list vision lacks %s:\n%s", want, a.Text)
		}
	}
	if strings.Contains(a.Text, "deepseek-chat") {
		t.Errorf("/model list vision lists a model without vision:\n%s", a.Text)
	}
}
