package llmtest

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/cometbot/cometbot/llm"
)

// Prompt is a model call decoded from any of the four wire formats into
// provider-neutral terms, for assertions on what the client sent.
type Prompt struct {
	Format   llm.Format
	Model    string
	System   string
	Messages []llm.Message
	Stream   bool
	// IncludeUsage is Chat Completions' stream_options.include_usage.
	IncludeUsage bool
	// Params holds the optional parameters present in the request, under
	// neutral names: "temperature", "top_p", "max_tokens".
	Params map[string]any
	// Raw is the whole body as a generic map.
	Raw map[string]any
}

// LastUser returns the text of the last user message ("" if none).
func (p Prompt) LastUser() string {
	for i := len(p.Messages) - 1; i >= 0; i-- {
		if p.Messages[i].Role == llm.RoleUser {
			return p.Messages[i].Content
		}
	}
	return ""
}

func (p Prompt) wordCount() int {
	n := len(strings.Fields(p.System))
	for _, m := range p.Messages {
		n += len(strings.Fields(m.Content))
	}
	return n
}

// Decode decodes the recorded model call.
func (r Recorded) Decode() (Prompt, error) {
	if r.Format == "" {
		return Prompt{}, fmt.Errorf("llmtest: %s %s is not a model call", r.Method, r.Path)
	}
	return decodeRequest(r.Format, r.Path, r.Body)
}

// MustDecode is Decode that panics on error (for terse tests).
func (r Recorded) MustDecode() Prompt {
	p, err := r.Decode()
	if err != nil {
		panic(err)
	}
	return p
}

func decodeRequest(f llm.Format, path string, body []byte) (Prompt, error) {
	p := Prompt{Format: f, Params: map[string]any{}}
	if err := json.Unmarshal(body, &p.Raw); err != nil {
		return p, err
	}
	raw := p.Raw
	str := func(k string) string { s, _ := raw[k].(string); return s }
	p.Model = str("model")
	p.Stream, _ = raw["stream"].(bool)
	param := func(neutral string, keys ...string) {
		for _, k := range keys {
			if v, ok := raw[k]; ok {
				p.Params[neutral] = v
			}
		}
	}
	switch f {
	case llm.FormatChat:
		if so, ok := raw["stream_options"].(map[string]any); ok {
			p.IncludeUsage, _ = so["include_usage"].(bool)
		}
		param("temperature", "temperature")
		param("top_p", "top_p")
		param("max_tokens", "max_tokens", "max_completion_tokens")
		msgs, _ := raw["messages"].([]any)
		for _, m := range msgs {
			mm, _ := m.(map[string]any)
			role, _ := mm["role"].(string)
			text, imgs := decodeParts(mm["content"])
			if role == "system" || role == "developer" {
				p.System = joinNonEmpty(p.System, text)
				continue
			}
			p.Messages = append(p.Messages, llm.Message{Role: llm.Role(role), Content: text, Images: imgs})
		}
	case llm.FormatResponses:
		p.System = str("instructions")
		param("temperature", "temperature")
		param("top_p", "top_p")
		param("max_tokens", "max_output_tokens")
		switch in := raw["input"].(type) {
		case string:
			p.Messages = append(p.Messages, llm.Message{Role: llm.RoleUser, Content: in})
		case []any:
			for _, m := range in {
				mm, _ := m.(map[string]any)
				role, _ := mm["role"].(string)
				text, imgs := decodeParts(mm["content"])
				if role == "system" || role == "developer" {
					p.System = joinNonEmpty(p.System, text)
					continue
				}
				p.Messages = append(p.Messages, llm.Message{Role: llm.Role(role), Content: text, Images: imgs})
			}
		}
	case llm.FormatAnthropic:
		sys, _ := decodeParts(raw["system"])
		p.System = sys
		param("temperature", "temperature")
		param("top_p", "top_p")
		param("max_tokens", "max_tokens")
		msgs, _ := raw["messages"].([]any)
		for _, m := range msgs {
			mm, _ := m.(map[string]any)
			role, _ := mm["role"].(string)
			text, imgs := decodeParts(mm["content"])
			p.Messages = append(p.Messages, llm.Message{Role: llm.Role(role), Content: text, Images: imgs})
		}
	case llm.FormatGemini:
		rest := strings.TrimPrefix(path, "/v1beta/models/")
		i := strings.LastIndexByte(rest, ':')
		if i < 0 {
			return p, errors.New("no :action in path")
		}
		p.Model = rest[:i]
		p.Stream = rest[i+1:] == "streamGenerateContent"
		if gc, ok := raw["generationConfig"].(map[string]any); ok {
			for k, n := range map[string]string{"temperature": "temperature", "topP": "top_p", "maxOutputTokens": "max_tokens"} {
				if v, ok := gc[k]; ok {
					p.Params[n] = v
				}
			}
		}
		if si, ok := raw["systemInstruction"].(map[string]any); ok {
			p.System, _ = decodeParts(si["parts"])
		}
		cs, _ := raw["contents"].([]any)
		for _, c := range cs {
			cm, _ := c.(map[string]any)
			role, _ := cm["role"].(string)
			if role == "model" {
				role = string(llm.RoleAssistant)
			} else {
				role = string(llm.RoleUser)
			}
			text, imgs := decodeParts(cm["parts"])
			p.Messages = append(p.Messages, llm.Message{Role: llm.Role(role), Content: text, Images: imgs})
		}
	}
	return p, nil
}

func joinNonEmpty(a, b string) string {
	if a == "" {
		return b
	}
	if b == "" {
		return a
	}
	return a + "\n\n" + b
}

// decodeParts reads a content value of any format: a string, or a list of
// parts/blocks with text and images.
func decodeParts(v any) (string, []llm.Image) {
	switch c := v.(type) {
	case string:
		return c, nil
	case []any:
		var texts []string
		var imgs []llm.Image
		for _, part := range c {
			pm, _ := part.(map[string]any)
			if pm == nil {
				continue
			}
			if t, ok := pm["text"].(string); ok {
				if th, _ := pm["thought"].(bool); !th {
					texts = append(texts, t)
				}
				continue
			}
			switch {
			case pm["image_url"] != nil: // chat {"url":...} or responses "..."
				u, _ := pm["image_url"].(string)
				if m, ok := pm["image_url"].(map[string]any); ok {
					u, _ = m["url"].(string)
				}
				imgs = append(imgs, imageFromURL(u))
			case pm["source"] != nil: // anthropic
				src, _ := pm["source"].(map[string]any)
				if u, ok := src["url"].(string); ok {
					imgs = append(imgs, llm.Image{URL: u})
				} else {
					mt, _ := src["media_type"].(string)
					d, _ := src["data"].(string)
					data, _ := base64.StdEncoding.DecodeString(d)
					imgs = append(imgs, llm.Image{MIMEType: mt, Data: data})
				}
			case pm["inlineData"] != nil || pm["inline_data"] != nil:
				in, _ := pm["inlineData"].(map[string]any)
				if in == nil {
					in, _ = pm["inline_data"].(map[string]any)
				}
				mt, _ := in["mimeType"].(string)
				if mt == "" {
					mt, _ = in["mime_type"].(string)
				}
				d, _ := in["data"].(string)
				data, _ := base64.StdEncoding.DecodeString(d)
				imgs = append(imgs, llm.Image{MIMEType: mt, Data: data})
			case pm["fileData"] != nil:
				fd, _ := pm["fileData"].(map[string]any)
				u, _ := fd["fileUri"].(string)
				mt, _ := fd["mimeType"].(string)
				imgs = append(imgs, llm.Image{URL: u, MIMEType: mt})
			}
		}
		return strings.Join(texts, ""), imgs
	}
	return "", nil
}

func imageFromURL(u string) llm.Image {
	if rest, ok := strings.CutPrefix(u, "data:"); ok {
		meta, payload, _ := strings.Cut(rest, ",")
		mt := strings.TrimSuffix(meta, ";base64")
		data, _ := base64.StdEncoding.DecodeString(payload)
		return llm.Image{MIMEType: mt, Data: data}
	}
	return llm.Image{URL: u}
}

// skimmedPrompt is the Prompt of a call whose body was not read
// (Options.SkipBodies): only what the path and headers tell.
func skimmedPrompt(f llm.Format, r *http.Request) Prompt {
	p := Prompt{Format: f, Params: map[string]any{}}
	p.Stream = strings.Contains(r.Header.Get("Accept"), "text/event-stream")
	if f == llm.FormatGemini {
		rest := strings.TrimPrefix(r.URL.Path, "/v1beta/models/")
		if i := strings.LastIndexByte(rest, ':'); i >= 0 {
			p.Model = rest[:i]
			p.Stream = rest[i+1:] == "streamGenerateContent"
		}
	}
	return p
}
