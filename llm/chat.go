package llm

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/cometbot/cometbot/llm/sse"
)

// chatWire is OpenAI Chat Completions: POST {base}/chat/completions.
type chatWire struct{}

type chatRequest struct {
	Model         string             `json:"model"`
	Messages      []chatMessage      `json:"messages"`
	Stream        bool               `json:"stream,omitempty"`
	StreamOptions *chatStreamOptions `json:"stream_options,omitempty"`
	Temperature   *float64           `json:"temperature,omitempty"`
	TopP          *float64           `json:"top_p,omitempty"`
	MaxTokens     int                `json:"max_tokens,omitempty"`
	Tools         []chatTool         `json:"tools,omitempty"`
}

type chatTool struct {
	Type     string       `json:"type"` // "function"
	Function chatFunction `json:"function"`
}

type chatFunction struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters"`
}

type chatToolCall struct {
	ID       string           `json:"id"`
	Type     string           `json:"type"` // "function"
	Function chatFunctionCall `json:"function"`
}

type chatFunctionCall struct {
	Name      string `json:"name"`
	Arguments string `json:"arguments"` // the JSON object as a string
}

type chatStreamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

type chatMessage struct {
	Role       string         `json:"role"`
	Content    any            `json:"content"` // string, or []chatPart when images or files are attached; null for calls without text
	ToolCalls  []chatToolCall `json:"tool_calls,omitempty"`
	ToolCallID string         `json:"tool_call_id,omitempty"`
}

type chatPart struct {
	Type     string        `json:"type"`
	Text     string        `json:"text,omitempty"`
	ImageURL *chatImageURL `json:"image_url,omitempty"`
	File     *chatFile     `json:"file,omitempty"`
}

type chatImageURL struct {
	URL string `json:"url"`
}

type chatFile struct {
	Filename string `json:"filename"`
	FileData string `json:"file_data"`
}

func (chatWire) url(c *Client, _ string, _ bool) string { return c.base + "/chat/completions" }

func (chatWire) auth(h http.Header, key string) { bearer(h, key) }

// encode builds a Chat Completions request. Tools are function tools; an
// assistant message's calls travel in its tool_calls (content null when it
// has no text), and each result is a {"role":"tool","tool_call_id",
// "content"} message, its text prefixed "Error: " for a failed call (the
// format has no error flag). Web search is refused (ErrNoWebSearch).
func (chatWire) encode(req *Request, stream bool, drop paramSet) (*reqBody, error) {
	if err := checkTools(req, FormatChat); err != nil {
		return nil, err
	}
	r := chatRequest{Model: req.Model, Stream: stream}
	var bl blobs
	if req.System != "" {
		r.Messages = append(r.Messages, chatMessage{Role: "system", Content: req.System})
	}
	for _, t := range req.Tools {
		r.Tools = append(r.Tools, chatTool{Type: "function", Function: chatFunction{Name: t.Name, Description: t.Description, Parameters: paramsObject(&t)}})
	}
	for _, m := range turns(req.Messages, false) {
		if m.Role == RoleTool {
			for _, res := range m.ToolResults {
				r.Messages = append(r.Messages, chatMessage{Role: "tool", ToolCallID: res.CallID, Content: resultText(&res)})
			}
			continue
		}
		if len(m.ToolCalls) > 0 {
			cm := chatMessage{Role: string(m.Role)}
			if m.Content != "" {
				cm.Content = m.Content
			}
			for _, c := range m.ToolCalls {
				cm.ToolCalls = append(cm.ToolCalls, chatToolCall{ID: c.ID, Type: "function", Function: chatFunctionCall{Name: c.Name, Arguments: string(c.Arguments)}})
			}
			r.Messages = append(r.Messages, cm)
			continue
		}
		if len(m.Images) == 0 && len(m.Files) == 0 {
			r.Messages = append(r.Messages, chatMessage{Role: string(m.Role), Content: m.Content})
			continue
		}
		parts := make([]chatPart, 0, 1+len(m.Images)+len(m.Files))
		if m.Content != "" {
			parts = append(parts, chatPart{Type: "text", Text: m.Content})
		}
		for _, im := range m.Images {
			u := im.URL
			if u == "" {
				u = bl.dataURL(im.mime(), im.Data)
			}
			parts = append(parts, chatPart{Type: "image_url", ImageURL: &chatImageURL{URL: u}})
		}
		for _, f := range m.Files {
			parts = append(parts, chatPart{Type: "file", File: &chatFile{Filename: f.name(), FileData: bl.dataURL(f.mime(), f.Data)}})
		}
		r.Messages = append(r.Messages, chatMessage{Role: string(m.Role), Content: parts})
	}
	if stream && drop&pStreamOptions == 0 {
		r.StreamOptions = &chatStreamOptions{IncludeUsage: true}
	}
	if drop&pTemperature == 0 {
		r.Temperature = req.Temperature
	}
	if drop&pTopP == 0 {
		r.TopP = req.TopP
	}
	if drop&pMaxTokens == 0 {
		r.MaxTokens = req.MaxOutputTokens
	}
	return bl.body(r)
}

type chatChunk struct {
	ID                skip         `json:"id"`
	Object            skip         `json:"object"`
	Created           skip         `json:"created"`
	SystemFingerprint skip         `json:"system_fingerprint"`
	ServiceTier       skip         `json:"service_tier"`
	Provider          skip         `json:"provider"`
	Obfuscation       skip         `json:"obfuscation"`
	Model             sticky       `json:"model"`
	Choices           []chatChoice `json:"choices"`
	Usage             *chatUsage   `json:"usage"`
}

type chatChoice struct {
	Index        int        `json:"index"`
	Delta        chatDelta  `json:"delta"`
	Message      *chatDelta `json:"message"`
	FinishReason *string    `json:"finish_reason"`
	Logprobs     skip       `json:"logprobs"`
	NativeFinish skip       `json:"native_finish_reason"`
}

type chatDelta struct {
	Content          string              `json:"content"` // null leaves it empty
	ReasoningContent string              `json:"reasoning_content"`
	Reasoning        string              `json:"reasoning"`
	Role             skip                `json:"role"`
	Refusal          skip                `json:"refusal"`
	ToolCalls        []chatToolCallDelta `json:"tool_calls"`
	FunctionCall     skip                `json:"function_call"`
	Annotations      []chatAnnotation    `json:"annotations"`
}

// chatAnnotation is a url_citation of the models that search in Chat
// Completions (gpt-4o-search-preview and the like).
type chatAnnotation struct {
	Type        string `json:"type"`
	URLCitation *struct {
		URL   string `json:"url"`
		Title string `json:"title"`
	} `json:"url_citation"`
}

func chatCite(st *streamState, as []chatAnnotation) {
	for _, a := range as {
		if a.Type == "url_citation" && a.URLCitation != nil {
			st.cite(a.URLCitation.URL, a.URLCitation.Title)
		}
	}
}

// chatToolCallDelta is one element of a chunk's delta.tool_calls: the first
// fragment of a call carries its index, id and name, the next ones the same
// index and more argument text. Some gateways send whole calls without an
// index.
type chatToolCallDelta struct {
	Index    optIndex `json:"index"`
	ID       sticky   `json:"id"`
	Type     skip     `json:"type"`
	Function struct {
		Name      sticky   `json:"name"`
		Arguments fragment `json:"arguments"`
	} `json:"function"`
}

// reset clears the element for reuse, keeping the argument buffer.
func (d *chatToolCallDelta) reset() {
	d.Index, d.ID, d.Function.Name = optIndex{}, "", ""
	d.Function.Arguments.b = d.Function.Arguments.b[:0]
}

// optIndex is a JSON integer that may be absent (ok false).
type optIndex struct {
	n  int
	ok bool
}

// UnmarshalJSON implements json.Unmarshaler.
func (o *optIndex) UnmarshalJSON(b []byte) error {
	*o = optIndex{}
	if string(b) == "null" {
		return nil
	}
	n, err := strconv.Atoi(string(b))
	if err != nil || n < 0 {
		return nil // not an index: treated as absent
	}
	*o = optIndex{n, true}
	return nil
}

// chatToolCalls merges a chunk's tool call fragments into st's calls.
func chatToolCalls(st *streamState, tcs []chatToolCallDelta) error {
	for i := range tcs {
		d := &tcs[i]
		var tb *toolBuild
		switch {
		case d.Index.ok:
			tb = st.toolCall(d.Index.n, "", true)
		case len(st.tools) > 0 && (d.ID == "" || string(d.ID) == st.tools[len(st.tools)-1].id):
			tb = &st.tools[len(st.tools)-1] // no index: more of the last call
		default:
			tb = st.toolCall(-1-len(st.tools), "", true) // no index: a new call
		}
		if err := st.toolSeen(tb, string(d.ID), string(d.Function.Name)); err != nil {
			return err
		}
		if err := st.toolArgs(tb, d.Function.Arguments.b); err != nil {
			return err
		}
	}
	return nil
}

type chatUsage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
}

func (chatWire) streamEvent(st *streamState, ev sse.Event) (bool, error) {
	if isDone(ev.Data) {
		return true, nil
	}
	if err := st.maybeBodyError(ev.Data); err != nil {
		return false, err
	}
	ch := &st.chat
	// Reset the reused choices, keeping their tool call slices: decoding
	// into an existing element does not clear fields absent from the JSON.
	for i := range ch.Choices[:cap(ch.Choices)] {
		c := &ch.Choices[:cap(ch.Choices)][i]
		tcs := c.Delta.ToolCalls[:0]
		for j := range tcs[:cap(tcs)] {
			tcs[:cap(tcs)][j].reset()
		}
		*c = chatChoice{}
		c.Delta.ToolCalls = tcs
	}
	ch.Choices = ch.Choices[:0]
	ch.Usage = nil
	if err := st.jd.decode(ev.Data, ch); err != nil {
		return false, errBadJSON(st, err)
	}
	st.resp.Model = string(ch.Model)
	for i := range ch.Choices {
		c := &ch.Choices[i]
		if c.Index != 0 {
			continue
		}
		d := &c.Delta
		if c.Message != nil { // some gateways send whole messages in chunks
			d = c.Message
		}
		text := d.Content
		reasoning := d.ReasoningContent
		if reasoning == "" {
			reasoning = d.Reasoning
		}
		if err := st.emit(text, reasoning); err != nil {
			return false, err
		}
		if err := chatToolCalls(st, d.ToolCalls); err != nil {
			return false, err
		}
		chatCite(st, d.Annotations)
		if c.FinishReason != nil && *c.FinishReason != "" {
			st.resp.StopReason = *c.FinishReason
			st.ended = true
		}
	}
	if ch.Usage != nil {
		st.setUsage(Usage{InputTokens: ch.Usage.PromptTokens, OutputTokens: ch.Usage.CompletionTokens})
	}
	return false, nil
}

type chatCompletion struct {
	Model   string `json:"model"`
	Choices []struct {
		Index   int `json:"index"`
		Message struct {
			Content          json.RawMessage  `json:"content"`
			ReasoningContent string           `json:"reasoning_content"`
			Reasoning        string           `json:"reasoning"`
			Annotations      []chatAnnotation `json:"annotations"`
			ToolCalls        []struct {
				ID       string `json:"id"`
				Function struct {
					Name      string   `json:"name"`
					Arguments fragment `json:"arguments"`
				} `json:"function"`
			} `json:"tool_calls"`
		} `json:"message"`
		FinishReason string `json:"finish_reason"`
	} `json:"choices"`
	Usage *chatUsage `json:"usage"`
}

func (chatWire) decodeBody(st *streamState, b []byte) error {
	var r chatCompletion
	if err := json.Unmarshal(b, &r); err != nil {
		return errBadJSON(st, err)
	}
	if len(r.Choices) == 0 {
		if err := st.maybeBodyError(b); err != nil {
			return err
		}
		return &Error{Kind: KindServer, Message: "the gateway answered without choices", RequestID: st.reqID}
	}
	st.resp.Model = r.Model
	for _, c := range r.Choices {
		if c.Index != 0 {
			continue
		}
		st.bodyText = contentText(c.Message.Content)
		st.bodyReasoning = c.Message.ReasoningContent
		if st.bodyReasoning == "" {
			st.bodyReasoning = c.Message.Reasoning
		}
		st.resp.StopReason = c.FinishReason
		chatCite(st, c.Message.Annotations)
		for i, tc := range c.Message.ToolCalls {
			tb := st.toolCall(i, "", true)
			if err := st.toolSeen(tb, tc.ID, tc.Function.Name); err != nil {
				return err
			}
			if err := st.toolArgs(tb, tc.Function.Arguments.b); err != nil {
				return err
			}
		}
		break
	}
	if r.Usage != nil {
		st.resp.Usage = Usage{InputTokens: r.Usage.PromptTokens, OutputTokens: r.Usage.CompletionTokens}
	}
	return nil
}

// contentText reads a message content that is a string, null, or an array of
// {"type":"text","text":...} parts.
func contentText(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if json.Unmarshal(raw, &parts) == nil {
		out := ""
		for _, p := range parts {
			if p.Type == "text" || p.Type == "output_text" || p.Type == "" {
				out += p.Text
			}
		}
		return out
	}
	return ""
}
