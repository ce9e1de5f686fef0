package llm

import (
	"bytes"
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
	Tools       []any              `json:"tools,omitempty"` // anthropicTool, and the web search server tool
}

type anthropicTool struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	InputSchema json.RawMessage `json:"input_schema"`
}

// AnthropicWebSearchMaxUses is the max_uses of the web search server tool
// sent when Request.WebSearch is set: the searches one answer may make.
const AnthropicWebSearchMaxUses = 5

type anthropicWebSearch struct {
	Type    string `json:"type"` // "web_search_20250305"
	Name    string `json:"name"` // "web_search"
	MaxUses int    `json:"max_uses"`
}

type anthropicMessage struct {
	Role    string           `json:"role"`
	Content []anthropicBlock `json:"content"`
}

type anthropicBlock struct {
	Type   string           `json:"type"`
	Text   string           `json:"text,omitempty"`
	Source *anthropicSource `json:"source,omitempty"`
	// tool_use
	ID    string          `json:"id,omitempty"`
	Name  string          `json:"name,omitempty"`
	Input json.RawMessage `json:"input,omitempty"`
	// tool_result
	ToolUseID string `json:"tool_use_id,omitempty"`
	Content   string `json:"content,omitempty"`
	IsError   bool   `json:"is_error,omitempty"`
}

// anthropicID makes a call id acceptable to Anthropic (^[A-Za-z0-9_-]+$):
// ids made by other providers ("functions.add:0") have other characters.
func anthropicID(id string) string {
	if id == "" {
		return "call"
	}
	var b []byte
	for i := 0; i < len(id); i++ {
		if c := id[i]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			if b == nil {
				b = []byte(id)
			}
			b[i] = '_'
		}
	}
	if b == nil {
		return id
	}
	return string(b)
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

// encode builds a Messages request. Tools are custom tools (input_schema)
// and, with WebSearch, the web_search server tool. Roles alternate: an
// assistant turn is its text then its tool_use blocks; a user turn is the
// tool_result blocks of the previous turn's calls first (is_error for a
// failed call), then images, documents and text.
func (anthropicWire) encode(req *Request, stream bool, drop paramSet) (*reqBody, error) {
	if err := checkTools(req, FormatAnthropic); err != nil {
		return nil, err
	}
	var bl blobs
	r := anthropicRequest{Model: req.Model, System: req.System, Stream: stream, MaxTokens: req.MaxOutputTokens, Messages: []anthropicMessage{}}
	if r.MaxTokens <= 0 || drop&pMaxTokens != 0 {
		r.MaxTokens = DefaultAnthropicMaxTokens
	}
	for _, t := range req.Tools {
		r.Tools = append(r.Tools, anthropicTool{Name: t.Name, Description: t.Description, InputSchema: paramsObject(&t)})
	}
	if req.WebSearch {
		r.Tools = append(r.Tools, anthropicWebSearch{Type: "web_search_20250305", Name: "web_search", MaxUses: AnthropicWebSearchMaxUses})
	}
	for _, m := range turns(req.Messages, true) {
		am := anthropicMessage{Role: string(m.Role)}
		for _, res := range m.ToolResults {
			am.Content = append(am.Content, anthropicBlock{Type: "tool_result", ToolUseID: anthropicID(res.CallID), Content: res.Content, IsError: res.IsError})
		}
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
		for _, c := range m.ToolCalls {
			am.Content = append(am.Content, anthropicBlock{Type: "tool_use", ID: anthropicID(c.ID), Name: c.Name, Input: c.Arguments})
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
	Index   optIndex `json:"index"`
	Type    sticky   `json:"type"`
	Message *struct {
		Model string         `json:"model"`
		Usage anthropicUsage `json:"usage"`
	} `json:"message"`
	// ContentBlock is the block of content_block_start.
	ContentBlock *anthropicOutBlock `json:"content_block"`
	Delta        struct {
		Type        sticky             `json:"type"`
		Text        string             `json:"text"`
		Thinking    string             `json:"thinking"`
		PartialJSON fragment           `json:"partial_json"`
		Citation    *anthropicCitation `json:"citation"`
		Signature   skip               `json:"signature"`
		StopReason  string             `json:"stop_reason"`
	} `json:"delta"`
	Usage *anthropicUsage `json:"usage"`
}

// anthropicOutBlock is a content block of an answer: text (with its
// citations), thinking, tool_use, or the server tool blocks of web search
// (server_tool_use, web_search_tool_result), which are not text.
type anthropicOutBlock struct {
	Type      string              `json:"type"`
	Text      string              `json:"text"`
	Thinking  string              `json:"thinking"`
	ID        string              `json:"id"`
	Name      string              `json:"name"`
	Input     json.RawMessage     `json:"input"`
	Citations []anthropicCitation `json:"citations"`
}

// anthropicCitation is a citation on a text block; web_search_result_location
// ones carry the search result's url and title.
type anthropicCitation struct {
	Type  string `json:"type"`
	URL   string `json:"url"`
	Title string `json:"title"`
}

func anthropicCite(st *streamState, cs []anthropicCitation) {
	for _, c := range cs {
		st.cite(c.URL, c.Title)
	}
}

// anthropicToolUse starts the tool_use block at index i. A non-empty
// input (a gateway that sends it whole) counts until fragments arrive.
func anthropicToolUse(st *streamState, i int, b *anthropicOutBlock) error {
	tb := st.toolCall(i, "", true)
	if err := st.toolSeen(tb, b.ID, b.Name); err != nil {
		return err
	}
	if in := bytes.TrimSpace(b.Input); len(in) > 0 && string(in) != "{}" {
		st.toolWhole(tb, in)
	}
	return nil
}

func (anthropicWire) streamEvent(st *streamState, ev sse.Event) (bool, error) {
	e := &st.anth
	e.Message, e.Usage, e.ContentBlock, e.Index = nil, nil, nil, optIndex{}
	e.Delta.Text, e.Delta.Thinking, e.Delta.StopReason, e.Delta.Citation = "", "", "", nil
	e.Delta.PartialJSON.b = e.Delta.PartialJSON.b[:0]
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
	case "content_block_start":
		b := e.ContentBlock
		if b == nil || !e.Index.ok {
			break
		}
		for len(st.anthBlock) <= e.Index.n && e.Index.n < 1<<16 {
			st.anthBlock = append(st.anthBlock, "")
		}
		if e.Index.n < len(st.anthBlock) {
			st.anthBlock[e.Index.n] = b.Type
		}
		switch b.Type {
		case "tool_use":
			return false, anthropicToolUse(st, e.Index.n, b)
		case "text":
			anthropicCite(st, b.Citations)
			return false, st.emit(b.Text, "")
		case "server_tool_use", "web_search_tool_result":
			st.progress() // searching is content for the stall watchdog
		}
	case "content_block_delta":
		switch e.Delta.Type {
		case "text_delta":
			return false, st.emit(e.Delta.Text, "")
		case "thinking_delta":
			return false, st.emit("", e.Delta.Thinking)
		case "input_json_delta":
			// Also the server_tool_use's query: only tool_use blocks are calls.
			if e.Index.ok && e.Index.n < len(st.anthBlock) && st.anthBlock[e.Index.n] == "tool_use" {
				tb := st.toolCall(e.Index.n, "", true)
				if len(e.Delta.PartialJSON.b) > 0 {
					tb.whole = nil
				}
				return false, st.toolArgs(tb, e.Delta.PartialJSON.b)
			}
			st.progress()
		case "citations_delta":
			if c := e.Delta.Citation; c != nil {
				st.cite(c.URL, c.Title)
			}
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
		Type       string              `json:"type"`
		Model      string              `json:"model"`
		Content    []anthropicOutBlock `json:"content"`
		StopReason string              `json:"stop_reason"`
		Usage      anthropicUsage      `json:"usage"`
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
	for i := range r.Content {
		c := &r.Content[i]
		switch c.Type {
		case "text":
			text = append(text, c.Text...)
			anthropicCite(st, c.Citations)
		case "thinking":
			reasoning = append(reasoning, c.Thinking...)
		case "tool_use":
			if err := anthropicToolUse(st, i, c); err != nil {
				return err
			}
		}
	}
	st.bodyText, st.bodyReasoning = string(text), string(reasoning)
	st.resp.Model = r.Model
	st.resp.StopReason = r.StopReason
	st.resp.Usage = Usage{InputTokens: r.Usage.input(), OutputTokens: r.Usage.OutputTokens}
	return nil
}
