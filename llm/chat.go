package llm

import (
	"encoding/json"
	"net/http"

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
}

type chatStreamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

type chatMessage struct {
	Role    string `json:"role"`
	Content any    `json:"content"` // string, or []chatPart when images or files are attached
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

func (chatWire) encode(req *Request, stream bool, drop paramSet) (*reqBody, error) {
	r := chatRequest{Model: req.Model, Stream: stream}
	var bl blobs
	if req.System != "" {
		r.Messages = append(r.Messages, chatMessage{Role: "system", Content: req.System})
	}
	for _, m := range turns(req.Messages, false) {
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
	Content          string `json:"content"` // null leaves it empty
	ReasoningContent string `json:"reasoning_content"`
	Reasoning        string `json:"reasoning"`
	Role             skip   `json:"role"`
	Refusal          skip   `json:"refusal"`
	ToolCalls        skip   `json:"tool_calls"`
	FunctionCall     skip   `json:"function_call"`
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
	clear(ch.Choices[:cap(ch.Choices)])
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
			Content          json.RawMessage `json:"content"`
			ReasoningContent string          `json:"reasoning_content"`
			Reasoning        string          `json:"reasoning"`
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
