package llm

import (
	"bytes"
	"cmp"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/cometbot/cometbot/llm/sse"
)

// geminiWire is Gemini native:
// POST {host}/v1beta/models/{model}:streamGenerateContent?alt=sse (streaming)
// or :generateContent.
type geminiWire struct{}

type geminiRequest struct {
	Contents          []geminiContent  `json:"contents"`
	SystemInstruction *geminiContent   `json:"systemInstruction,omitempty"`
	GenerationConfig  *geminiGenConfig `json:"generationConfig,omitempty"`
}

type geminiContent struct {
	Role  string       `json:"role,omitempty"`
	Parts []geminiPart `json:"parts"`
}

// geminiPart is a request part. Blobs use the snake_case field names of the
// gateway's documentation (inline_data, mime_type); Gemini's JSON accepts
// both spellings.
type geminiPart struct {
	Text       string      `json:"text,omitempty"`
	InlineData *geminiBlob `json:"inline_data,omitempty"`
	FileData   *geminiFile `json:"file_data,omitempty"`
}

type geminiBlob struct {
	MIMEType string `json:"mime_type"`
	Data     string `json:"data"`
}

type geminiFile struct {
	MIMEType string `json:"mime_type,omitempty"`
	FileURI  string `json:"file_uri"`
}

type geminiGenConfig struct {
	Temperature     *float64 `json:"temperature,omitempty"`
	TopP            *float64 `json:"topP,omitempty"`
	MaxOutputTokens int      `json:"maxOutputTokens,omitempty"`
}

func (geminiWire) url(c *Client, model string, stream bool) string {
	model = strings.TrimPrefix(model, "models/")
	u := c.host + "/v1beta/models/" + url.PathEscape(model)
	if stream {
		return u + ":streamGenerateContent?alt=sse"
	}
	return u + ":generateContent"
}

func (geminiWire) auth(h http.Header, key string) {
	if key != "" {
		h.Set("x-goog-api-key", key)
		bearer(h, key)
	}
}

func (geminiWire) encode(req *Request, _ bool, drop paramSet) (*reqBody, error) {
	r := geminiRequest{Contents: []geminiContent{}}
	var bl blobs
	if req.System != "" {
		r.SystemInstruction = &geminiContent{Parts: []geminiPart{{Text: req.System}}}
	}
	for _, m := range turns(req.Messages, true) {
		gc := geminiContent{Role: "user"}
		if m.Role == RoleAssistant {
			gc.Role = "model"
		}
		if m.Content != "" {
			gc.Parts = append(gc.Parts, geminiPart{Text: m.Content})
		}
		for _, im := range m.Images {
			if im.URL != "" {
				gc.Parts = append(gc.Parts, geminiPart{FileData: &geminiFile{MIMEType: im.mime(), FileURI: im.URL}})
			} else {
				gc.Parts = append(gc.Parts, geminiPart{InlineData: &geminiBlob{MIMEType: im.mime(), Data: bl.add(im.Data)}})
			}
		}
		for _, f := range m.Files {
			gc.Parts = append(gc.Parts, geminiPart{InlineData: &geminiBlob{MIMEType: f.mime(), Data: bl.add(f.Data)}})
		}
		r.Contents = append(r.Contents, gc)
	}
	g := geminiGenConfig{}
	if drop&pTemperature == 0 {
		g.Temperature = req.Temperature
	}
	if drop&pTopP == 0 {
		g.TopP = req.TopP
	}
	if drop&pMaxTokens == 0 {
		g.MaxOutputTokens = req.MaxOutputTokens
	}
	if g != (geminiGenConfig{}) {
		r.GenerationConfig = &g
	}
	return bl.body(r)
}

type geminiResponse struct {
	Candidates    []geminiCandidate `json:"candidates"`
	UsageMetadata *struct {
		PromptTokenCount     int `json:"promptTokenCount"`
		CandidatesTokenCount int `json:"candidatesTokenCount"`
		ThoughtsTokenCount   int `json:"thoughtsTokenCount"`
		TotalTokenCount      int `json:"totalTokenCount"`
	} `json:"usageMetadata"`
	ModelVersion   sticky `json:"modelVersion"`
	ResponseID     skip   `json:"responseId"`
	PromptFeedback *struct {
		BlockReason string `json:"blockReason"`
	} `json:"promptFeedback"`
}

type geminiCandidate struct {
	Index   int `json:"index"`
	Content struct {
		Parts []struct {
			Text             string         `json:"text"`
			Thought          bool           `json:"thought"`
			ThoughtSignature skip           `json:"thoughtSignature"`
			InlineData       *geminiBlobOut `json:"inlineData"`
			InlineDataSnake  *geminiBlobOut `json:"inline_data"`
		} `json:"parts"`
		Role skip `json:"role"`
	} `json:"content"`
	SafetyRatings skip   `json:"safetyRatings"`
	FinishReason  string `json:"finishReason"`
}

// apply handles one GenerateContentResponse, emitting its text.
func (g *geminiResponse) apply(st *streamState, emit bool) error {
	if g.ModelVersion != "" {
		st.resp.Model = string(g.ModelVersion)
	}
	if g.UsageMetadata != nil {
		u := g.UsageMetadata
		out := u.CandidatesTokenCount + u.ThoughtsTokenCount
		if out == 0 && u.TotalTokenCount > u.PromptTokenCount {
			out = u.TotalTokenCount - u.PromptTokenCount
		}
		st.setUsage(Usage{InputTokens: u.PromptTokenCount, OutputTokens: out})
	}
	if g.PromptFeedback != nil && g.PromptFeedback.BlockReason != "" && len(g.Candidates) == 0 {
		return st.streamError(parsedError{Message: "the prompt was blocked: " + strings.ToLower(g.PromptFeedback.BlockReason), Code: "invalid_argument", Status: 400})
	}
	for i := range g.Candidates {
		c := &g.Candidates[i]
		if c.Index != 0 {
			continue
		}
		for _, p := range c.Content.Parts {
			if blob := cmp.Or(p.InlineData, p.InlineDataSnake); blob != nil {
				if !p.Thought { // a thought image is a draft
					st.addImage(blob.mime(), &blob.Data)
				}
				continue
			}
			var err error
			switch {
			case !emit && p.Thought:
				st.bodyReasoning += p.Text
			case !emit:
				st.bodyText += p.Text
			case p.Thought:
				err = st.emit("", p.Text)
			default:
				err = st.emit(p.Text, "")
			}
			if err != nil {
				return err
			}
		}
		if c.FinishReason != "" {
			st.resp.StopReason = c.FinishReason
			st.ended = true
		}
	}
	return nil
}

func (geminiWire) streamEvent(st *streamState, ev sse.Event) (bool, error) {
	if err := st.maybeBodyError(ev.Data); err != nil {
		return false, err
	}
	g := &st.gem
	// Reset the reused candidates, keeping their parts' capacity: decoding
	// into an existing element does not clear fields absent from the JSON.
	for i := range g.Candidates[:cap(g.Candidates)] {
		c := &g.Candidates[:cap(g.Candidates)][i]
		parts := c.Content.Parts[:0]
		clear(parts[:cap(parts)])
		*c = geminiCandidate{}
		c.Content.Parts = parts
	}
	g.Candidates = g.Candidates[:0]
	g.UsageMetadata, g.PromptFeedback = nil, nil
	if err := st.jd.decode(ev.Data, g); err != nil {
		return false, errBadJSON(st, err)
	}
	return false, g.apply(st, true)
}

func (geminiWire) decodeBody(st *streamState, b []byte) error {
	if err := st.maybeBodyError(b); err != nil {
		return err
	}
	if len(b) > 0 && b[0] == '[' { // streamGenerateContent without alt=sse
		var rs []geminiResponse
		if err := json.Unmarshal(b, &rs); err != nil {
			return errBadJSON(st, err)
		}
		for i := range rs {
			if err := rs[i].apply(st, false); err != nil {
				return err
			}
		}
		return nil
	}
	var r geminiResponse
	if err := json.Unmarshal(bytes.TrimSpace(b), &r); err != nil {
		return errBadJSON(st, err)
	}
	return r.apply(st, false)
}
