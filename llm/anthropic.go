package llm

import (
	"encoding/json"
	"net/http"

	"github.com/cometbot/cometbot/llm/sse"
)

// AnthropicVersion is the anthropic-version header sent with Messages calls.
const AnthropicVersion = "2023-06-01"

// DefaultAnthropicMaxTokens is the max_tokens sent to Anthropic Messages
// (where it is required) when Request.MaxOutputTokens is 0.
const DefaultAnthropicMaxTokens = 8192

// anthropicWire is Anthropic Messages: POST {host}/v1/messages.
type anthropicWire struct{}

type anthropicRequest struct {
	Model       string             `json:"model"`
	System      string             `json:"system,omitempty"`
	Messages    []anthropicMessage `json:"messages"`
	MaxTokens   int                `json:"max_tokens"`
	Stream      bool               `json:"stream,omitempty"`
	Temperature *float64           `json:"temperature,omitempty"`
	TopP        *float64           `json:"top_p,omitempty"`
}

type anthropicMessage struct {
	Role    string           `json:"role"`
	Content []anthropicBlock `json:"content"`
}

type anthropicBlock struct {
	Type   string           `json:"type"`
	Text   string           `json:"text,omitempty"`
	Source *anthropicSource `json:"source,omitempty"`
}

type anthropicSource struct {
	Type      string `json:"type"`
	MediaType string `json:"media_type,omitempty"`
	Data      string `json:"data,omitempty"`
	URL       string `json:"url,omitempty"`
}

func (anthropicWire) url(c *Client, _ string, _ bool) string { return c.host + "/v1/messages" }

func (anthropicWire) auth(h http.Header, key string) {
	h.Set("anthropic-version", AnthropicVersion)
	if key != "" {
		h.Set("x-api-key", key)
		bearer(h, key)
	}
}

func (anthropicWire) encode(req *Request, stream bool, drop paramSet) (*reqBody, error) {
	var bl blobs
	r := anthropicRequest{Model: req.Model, System: req.System, Stream: stream, MaxTokens: req.MaxOutputTokens, Messages: []anthropicMessage{}}
	if r.MaxTokens <= 0 || drop&pMaxTokens != 0 {
		r.MaxTokens = DefaultAnthropicMaxTokens
	}
	for _, m := range turns(req.Messages, true) {
		am := anthropicMessage{Role: string(m.Role)}
		if m.Role == RoleUser {
			for _, im := range m.Images {
				src := &anthropicSource{Type: "url", URL: im.URL}
				if im.URL == "" {
					src = &anthropicSource{Type: "base64", MediaType: im.mime(), Data: bl.add(im.Data)}
				}
				am.Content = append(am.Content, anthropicBlock{Type: "image", Source: src})
			}
			for _, f := range m.Files {
				src := &anthropicSource{Type: "base64", MediaType: f.mime(), Data: bl.add(f.Data)}
				am.Content = append(am.Content, anthropicBlock{Type: "document", Source: src})
			}
		}
		if m.Content != "" {
			am.Content = append(am.Content, anthropicBlock{Type: "text", Text: m.Content})
		}
		r.Messages = append(r.Messages, am)
	}
	if drop&pTemperature == 0 {
		r.Temperature = req.Temperature
	}
	if drop&pTopP == 0 {
		r.TopP = req.TopP
	}
	return bl.body(r)
}

type anthropicUsage struct {
	InputTokens              int `json:"input_tokens"`
	OutputTokens             int `json:"output_tokens"`
	CacheCreationInputTokens int `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int `json:"cache_read_input_tokens"`
}

func (u anthropicUsage) input() int {
	return u.InputTokens + u.CacheCreationInputTokens + u.CacheReadInputTokens
}

type anthropicEvent struct {
	Index   skip   `json:"index"`
	Type    sticky `json:"type"`
	Message *struct {
		Model string         `json:"model"`
		Usage anthropicUsage `json:"usage"`
	} `json:"message"`
	Delta struct {
		Type       sticky `json:"type"`
		Text       string `json:"text"`
		Thinking   string `json:"thinking"`
		StopReason string `json:"stop_reason"`
	} `json:"delta"`
	Usage *anthropicUsage `json:"usage"`
}

func (anthropicWire) streamEvent(st *streamState, ev sse.Event) (bool, error) {
	e := &st.anth
	e.Message, e.Usage = nil, nil
	e.Delta.Text, e.Delta.Thinking, e.Delta.StopReason = "", "", ""
	if ev.Type == "error" || hasErrorKey(ev.Data) {
		if err := st.maybeBodyError(ev.Data); err != nil {
			return false, err
		}
	}
	if err := st.jd.decode(ev.Data, e); err != nil {
		return false, errBadJSON(st, err)
	}
	typ := string(e.Type)
	if typ == "" {
		typ = ev.Type
	}
	switch typ {
	case "content_block_delta":
		switch e.Delta.Type {
		case "text_delta":
			return false, st.emit(e.Delta.Text, "")
		case "thinking_delta":
			return false, st.emit("", e.Delta.Thinking)
		}
	case "message_start":
		if m := e.Message; m != nil {
			st.resp.Model = m.Model
			st.setUsage(Usage{InputTokens: m.Usage.input(), OutputTokens: m.Usage.OutputTokens})
		}
	case "message_delta":
		if e.Delta.StopReason != "" {
			st.resp.StopReason = e.Delta.StopReason
			st.ended = true
		}
		if u := e.Usage; u != nil {
			nu := st.resp.Usage
			if u.OutputTokens > 0 {
				nu.OutputTokens = u.OutputTokens
			}
			if in := u.input(); in > 0 {
				nu.InputTokens = in
			}
			st.setUsage(nu)
		}
	case "message_stop":
		return true, nil
	case "error":
		return false, st.streamError(parsedError{Message: "error event in the stream"})
	}
	return false, nil
}

func (anthropicWire) decodeBody(st *streamState, b []byte) error {
	var r struct {
		Type    string `json:"type"`
		Model   string `json:"model"`
		Content []struct {
			Type     string `json:"type"`
			Text     string `json:"text"`
			Thinking string `json:"thinking"`
		} `json:"content"`
		StopReason string         `json:"stop_reason"`
		Usage      anthropicUsage `json:"usage"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return errBadJSON(st, err)
	}
	if r.Type == "error" || r.Content == nil {
		if err := st.maybeBodyError(b); err != nil {
			return err
		}
	}
	var text, reasoning []byte
	for _, c := range r.Content {
		switch c.Type {
		case "text":
			text = append(text, c.Text...)
		case "thinking":
			reasoning = append(reasoning, c.Thinking...)
		}
	}
	st.bodyText, st.bodyReasoning = string(text), string(reasoning)
	st.resp.Model = r.Model
	st.resp.StopReason = r.StopReason
	st.resp.Usage = Usage{InputTokens: r.Usage.input(), OutputTokens: r.Usage.OutputTokens}
	return nil
}
