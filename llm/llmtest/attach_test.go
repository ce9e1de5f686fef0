package llmtest_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/cometbot/cometbot/llm/llmtest"
)

// TestAttachmentStrictness posts hand-written bodies: the fake must refuse
// what the real service refuses, in the format's own error shape, and
// decode what it accepts.
func TestAttachmentStrictness(t *testing.T) {
	t.Parallel()
	s := llmtest.New(t, llmtest.Options{Reply: "ok"})
	const (
		chat  = "/v1/chat/completions"
		resp  = "/v1/responses"
		anth  = "/v1/messages"
		gem   = "/v1beta/models/gemini-2.5-flash:generateContent"
		png   = "iVBORw0KGgo=" // \x89PNG\r\n\x1a\n
		pdf   = "JVBERi0xLjc=" // %PDF-1.7
		asPNG = "\x89PNG\r\n\x1a\n"
	)
	chatMsg := func(role, part string) string {
		return `{"model":"m","messages":[{"role":"user","content":"hi"},{"role":"` + role + `","content":[` + part + `]}]}`
	}
	respMsg := func(role, part string) string {
		return `{"model":"m","input":[{"role":"` + role + `","content":[` + part + `]}]}`
	}
	anthMsg := func(role, block string) string {
		return `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"},{"role":"` + role + `","content":[` + block + `]}]}`
	}
	gemMsg := func(part string) string {
		return `{"contents":[{"role":"user","parts":[{"text":"hi"},` + part + `]}]}`
	}
	tests := []struct {
		name, path, body string
		want             string // substring of the 400 error; "" means accepted
		part             *llmtest.Part
	}{
		// Chat Completions
		{"chat image", chat, chatMsg("user", `{"type":"image_url","image_url":{"url":"data:image/png;base64,`+png+`"}}`), "",
			&llmtest.Part{Kind: "image", Shape: "image_url", MIMEType: "image/png", Data: []byte(asPNG)}},
		{"chat image by URL", chat, chatMsg("user", `{"type":"image_url","image_url":{"url":"https://example.com/a.png"}}`), "",
			&llmtest.Part{Kind: "image", Shape: "image_url", URL: "https://example.com/a.png"}},
		{"chat pdf", chat, chatMsg("user", `{"type":"file","file":{"filename":"a.pdf","file_data":"data:application/pdf;base64,`+pdf+`"}}`), "",
			&llmtest.Part{Kind: "file", Shape: "file", MIMEType: "application/pdf", Name: "a.pdf", Data: []byte("%PDF-1.7")}},
		{"chat data URI without base64", chat, chatMsg("user", `{"type":"image_url","image_url":{"url":"data:image/png,`+png+`"}}`), "Expected a base64-encoded data URL", nil},
		{"chat bad base64", chat, chatMsg("user", `{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBOR*w0K"}}`), "messages[1].content[0].image_url.url", nil},
		{"chat no MIME type", chat, chatMsg("user", `{"type":"image_url","image_url":{"url":"data:;base64,`+png+`"}}`), "Expected a base64-encoded data URL", nil},
		{"chat unsupported image", chat, chatMsg("user", `{"type":"image_url","image_url":{"url":"data:image/bmp;base64,`+png+`"}}`), "unsupported image", nil},
		{"chat image_url as string", chat, chatMsg("user", `{"type":"image_url","image_url":"data:image/png;base64,`+png+`"}`), "expected an object", nil},
		{"chat image from the assistant", chat, chatMsg("assistant", `{"type":"image_url","image_url":{"url":"data:image/png;base64,`+png+`"}}`), "Invalid value: 'image_url'. Supported values are: 'text' and 'refusal'.", nil},
		{"chat file without name", chat, chatMsg("user", `{"type":"file","file":{"file_data":"data:application/pdf;base64,`+pdf+`"}}`), "file.filename", nil},
		{"chat file not a PDF", chat, chatMsg("user", `{"type":"file","file":{"filename":"a.txt","file_data":"data:text/plain;base64,`+pdf+`"}}`), "PDF MIME type", nil},
		// Responses
		{"responses image", resp, respMsg("user", `{"type":"input_image","image_url":"data:image/png;base64,`+png+`"}`), "",
			&llmtest.Part{Kind: "image", Shape: "input_image", MIMEType: "image/png", Data: []byte(asPNG)}},
		{"responses pdf", resp, respMsg("user", `{"type":"input_file","filename":"a.pdf","file_data":"data:application/pdf;base64,`+pdf+`"}`), "",
			&llmtest.Part{Kind: "file", Shape: "input_file", MIMEType: "application/pdf", Name: "a.pdf", Data: []byte("%PDF-1.7")}},
		{"responses image_url object", resp, respMsg("user", `{"type":"input_image","image_url":{"url":"data:image/png;base64,`+png+`"}}`), "expected a string", nil},
		{"responses bad base64", resp, respMsg("user", `{"type":"input_image","image_url":"data:image/png;base64,%%%"}`), "input[0].content[0].image_url", nil},
		{"responses image from the assistant", resp, respMsg("assistant", `{"type":"input_image","image_url":"data:image/png;base64,`+png+`"}`), "Supported values are: 'output_text' and 'refusal'", nil},
		{"responses file without name", resp, respMsg("user", `{"type":"input_file","file_data":"data:application/pdf;base64,`+pdf+`"}`), "filename", nil},
		// Anthropic Messages
		{"anthropic image", anth, anthMsg("user", `{"type":"image","source":{"type":"base64","media_type":"image/png","data":"`+png+`"}}`), "",
			&llmtest.Part{Kind: "image", Shape: "image", MIMEType: "image/png", Data: []byte(asPNG)}},
		{"anthropic pdf", anth, anthMsg("user", `{"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"`+pdf+`"}}`), "",
			&llmtest.Part{Kind: "file", Shape: "document", MIMEType: "application/pdf", Data: []byte("%PDF-1.7")}},
		{"anthropic missing media_type", anth, anthMsg("user", `{"type":"image","source":{"type":"base64","data":"`+png+`"}}`), "messages.1.content.0.image.source.base64.media_type: Field required", nil},
		{"anthropic wrong media_type", anth, anthMsg("user", `{"type":"image","source":{"type":"base64","media_type":"application/pdf","data":"`+png+`"}}`), "Input should be 'image/jpeg'", nil},
		{"anthropic bad base64", anth, anthMsg("user", `{"type":"image","source":{"type":"base64","media_type":"image/png","data":"not base64!"}}`), "invalid base64", nil},
		{"anthropic image from the assistant", anth, anthMsg("assistant", `{"type":"image","source":{"type":"base64","media_type":"image/png","data":"`+png+`"}}`), "Input tag 'image'", nil},
		{"anthropic document not a PDF", anth, anthMsg("user", `{"type":"document","source":{"type":"base64","media_type":"image/png","data":"`+png+`"}}`), "Input should be 'application/pdf'", nil},
		{"anthropic blank text", anth, anthMsg("user", `{"type":"text","text":"  "}`), "non-whitespace", nil},
		// Gemini
		{"gemini image", gem, gemMsg(`{"inline_data":{"mime_type":"image/png","data":"` + png + `"}}`), "",
			&llmtest.Part{Kind: "image", Shape: "inline_data", MIMEType: "image/png", Data: []byte(asPNG)}},
		{"gemini camelCase image", gem, gemMsg(`{"inlineData":{"mimeType":"image/png","data":"` + png + `"}}`), "",
			&llmtest.Part{Kind: "image", Shape: "inline_data", MIMEType: "image/png", Data: []byte(asPNG)}},
		{"gemini pdf", gem, gemMsg(`{"inline_data":{"mime_type":"application/pdf","data":"` + pdf + `"}}`), "",
			&llmtest.Part{Kind: "file", Shape: "inline_data", MIMEType: "application/pdf", Data: []byte("%PDF-1.7")}},
		{"gemini bad base64", gem, gemMsg(`{"inline_data":{"mime_type":"image/png","data":"*not*"}}`), "Base64 decoding failed", nil},
		{"gemini missing mime type", gem, gemMsg(`{"inline_data":{"data":"` + png + `"}}`), "mime_type: required field is not set", nil},
		{"gemini gif", gem, gemMsg(`{"inline_data":{"mime_type":"image/gif","data":"` + png + `"}}`), "Unsupported MIME type: image/gif", nil},
		{"gemini both spellings", gem, gemMsg(`{"inline_data":{"mime_type":"image/png","data":"` + png + `"},"inlineData":{"mimeType":"image/png","data":"` + png + `"}}`), "oneof field 'data' is already set", nil},
	}
	for _, tt := range tests {
		r, body := post(t, s.HostURL()+tt.path, tt.body)
		if tt.want != "" {
			if r.StatusCode != 400 || !strings.Contains(body, tt.want) {
				t.Errorf("%s: %d %s, want 400 with %q", tt.name, r.StatusCode, body, tt.want)
			}
			shape := map[string]string{anth: `"type":"error"`, gem: `"status":"INVALID_ARGUMENT"`}[tt.path]
			if shape == "" {
				shape = `"type":"invalid_request_error"`
			}
			if !strings.Contains(body, shape) || !strings.Contains(body, "request id: fake-") {
				t.Errorf("%s: error body not in the format's shape: %s", tt.name, body)
			}
			if rec, _ := s.LastRequest(); rec.Body == nil {
				t.Errorf("%s: refused request not recorded", tt.name)
			} else if _, err := rec.Decode(); err == nil {
				t.Errorf("%s: recorded refused request decodes without error", tt.name)
			}
			continue
		}
		if r.StatusCode != 200 {
			t.Errorf("%s: %d %s", tt.name, r.StatusCode, body)
			continue
		}
		rec, _ := s.LastRequest()
		p := rec.MustDecode()
		last := len(p.Messages) - 1
		if last < 0 || len(p.Parts[last]) != 1 {
			t.Errorf("%s: parts %+v", tt.name, p.Parts)
			continue
		}
		got, want := p.Parts[last][0], *tt.part
		if got.Kind != want.Kind || got.Shape != want.Shape || got.MIMEType != want.MIMEType || got.Name != want.Name || got.URL != want.URL || !bytes.Equal(got.Data, want.Data) {
			t.Errorf("%s: part %+v, want %+v", tt.name, got, want)
		}
		m := p.Messages[last]
		if want.Kind == llmtest.PartFile && (len(m.Files) != 1 || !bytes.Equal(m.Files[0].Data, want.Data)) ||
			want.Kind == llmtest.PartImage && (len(m.Images) != 1 || m.Images[0].URL != want.URL || !bytes.Equal(m.Images[0].Data, want.Data)) {
			t.Errorf("%s: message %+v", tt.name, m)
		}
	}
	if s.Pending() != 0 {
		t.Errorf("pending scripts")
	}
}

// TestRefusalUsesNoScript: a refused request does not use up a script.
func TestRefusalUsesNoScript(t *testing.T) {
	t.Parallel()
	s := llmtest.New(t)
	s.Enqueue(llmtest.Script{Text: "scripted"})
	r, body := post(t, s.URL()+"/messages", `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","data":"AA=="}}]}]}`)
	var e struct {
		Type  string `json:"type"`
		Error struct{ Type, Message string }
	}
	if r.StatusCode != 400 || json.Unmarshal([]byte(body), &e) != nil || e.Type != "error" || e.Error.Type != "invalid_request_error" {
		t.Errorf("%d %s", r.StatusCode, body)
	}
	if s.Pending() != 1 {
		t.Errorf("the refusal used the script")
	}
}
