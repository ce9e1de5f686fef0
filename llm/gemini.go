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
	Tools             []geminiTool     `json:"tools,omitempty"`
	GenerationConfig  *geminiGenConfig `json:"generationConfig,omitempty"`
}

// geminiTool is one entry of tools: function declarations, or Google
// Search.
type geminiTool struct {
	FunctionDeclarations []geminiFunction `json:"functionDeclarations,omitempty"`
	GoogleSearch         *struct{}        `json:"google_search,omitempty"`
}

type geminiFunction struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
}

type geminiFunctionCall struct {
	Name string          `json:"name"`
	Args json.RawMessage `json:"args"`
}

type geminiFunctionResponse struct {
	Name     string            `json:"name"`
	Response map[string]string `json:"response"` // {"result": text} or {"error": text}
}

// geminiSkipSignature is the thoughtSignature value Google documents for
// function calls whose signature was lost (a history from another model or
// a store that dropped it): Gemini 3 refuses calls without one.
const geminiSkipSignature = "skip_thought_signature_validator"

type geminiContent struct {
	Role  string       `json:"role,omitempty"`
	Parts []geminiPart `json:"parts"`
}

// geminiPart is a request part. Blobs use the snake_case field names of the
// gateway's documentation (inline_data, mime_type); Gemini's JSON accepts
// both spellings.
type geminiPart struct {
	Text             string                  `json:"text,omitempty"`
	InlineData       *geminiBlob             `json:"inline_data,omitempty"`
	FileData         *geminiFile             `json:"file_data,omitempty"`
	FunctionCall     *geminiFunctionCall     `json:"functionCall,omitempty"`
	FunctionResponse *geminiFunctionResponse `json:"functionResponse,omitempty"`
	ThoughtSignature string                  `json:"thoughtSignature,omitempty"`
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

// encode builds a generateContent request. Tools are function
// declarations, their schemas reduced to what Gemini takes (geminiSchema),
// and, with WebSearch, {"google_search":{}}. Roles alternate: a model turn
// is its text then its functionCall parts (with their thoughtSignature); a
// user turn is the functionResponse parts of the previous turn's calls
// first ({"result": text} or {"error": text}), then text and attachments.
// Gemini matches results to calls by name and order: ids are not sent.
func (geminiWire) encode(req *Request, _ bool, drop paramSet) (*reqBody, error) {
	if err := checkTools(req, FormatGemini); err != nil {
		return nil, err
	}
	r := geminiRequest{Contents: []geminiContent{}}
	var bl blobs
	if req.System != "" {
		r.SystemInstruction = &geminiContent{Parts: []geminiPart{{Text: req.System}}}
	}
	if len(req.Tools) > 0 {
		decls := make([]geminiFunction, 0, len(req.Tools))
		for _, t := range req.Tools {
			decls = append(decls, geminiFunction{Name: t.Name, Description: t.Description, Parameters: geminiSchema(t.Parameters)})
		}
		r.Tools = append(r.Tools, geminiTool{FunctionDeclarations: decls})
	}
	if req.WebSearch {
		r.Tools = append(r.Tools, geminiTool{GoogleSearch: &struct{}{}})
	}
	needSig := geminiGeneration(req.Model) >= 3
	for _, m := range turns(req.Messages, true) {
		gc := geminiContent{Role: "user"}
		if m.Role == RoleAssistant {
			gc.Role = "model"
		}
		for _, res := range m.ToolResults {
			resp := map[string]string{"result": res.Content}
			if res.IsError {
				resp = map[string]string{"error": res.Content}
			}
			gc.Parts = append(gc.Parts, geminiPart{FunctionResponse: &geminiFunctionResponse{Name: res.Name, Response: resp}})
		}
		if m.Content != "" {
			gc.Parts = append(gc.Parts, geminiPart{Text: m.Content})
		}
		signed := false
		for _, c := range m.ToolCalls {
			signed = signed || c.Signature != ""
		}
		for i, c := range m.ToolCalls {
			p := geminiPart{FunctionCall: &geminiFunctionCall{Name: c.Name, Args: c.Arguments}, ThoughtSignature: c.Signature}
			if i == 0 && !signed && needSig {
				p.ThoughtSignature = geminiSkipSignature
			}
			gc.Parts = append(gc.Parts, p)
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
			ThoughtSignature string         `json:"thoughtSignature"`
			InlineData       *geminiBlobOut `json:"inlineData"`
			InlineDataSnake  *geminiBlobOut `json:"inline_data"`
			FunctionCall     *struct {
				ID   string          `json:"id"`
				Name string          `json:"name"`
				Args json.RawMessage `json:"args"`
			} `json:"functionCall"`
		} `json:"parts"`
		Role skip `json:"role"`
	} `json:"content"`
	SafetyRatings     skip   `json:"safetyRatings"`
	FinishReason      string `json:"finishReason"`
	GroundingMetadata *struct {
		GroundingChunks []struct {
			Web *struct {
				URI   string `json:"uri"`
				Title string `json:"title"`
			} `json:"web"`
		} `json:"groundingChunks"`
	} `json:"groundingMetadata"`
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
			if fc := p.FunctionCall; fc != nil {
				// Whole calls, without ids unless the model gave one.
				tb := st.toolCall(-1-len(st.tools), "", true)
				tb.sig = p.ThoughtSignature
				if err := st.toolSeen(tb, fc.ID, fc.Name); err != nil {
					return err
				}
				st.toolWhole(tb, fc.Args)
				continue
			}
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
		if gm := c.GroundingMetadata; gm != nil {
			for _, ch := range gm.GroundingChunks {
				if w := ch.Web; w != nil {
					st.cite(w.URI, w.Title)
				}
			}
		}
		if c.FinishReason != "" {
			st.resp.StopReason = c.FinishReason
			st.ended = true
		}
	}
	return nil
}

// geminiGeneration returns the major version of a Gemini model id
// ("gemini-3-pro-preview" → 3, "models/gemini-2.5-flash" → 2), or 0.
func geminiGeneration(model string) int {
	m := strings.ToLower(strings.TrimPrefix(model, "models/"))
	rest, ok := strings.CutPrefix(m, "gemini-")
	if !ok {
		return 0
	}
	n := 0
	for i := 0; i < len(rest) && rest[i] >= '0' && rest[i] <= '9' && n < 1000; i++ {
		n = n*10 + int(rest[i]-'0')
	}
	return n
}

// geminiSchemaKeys are the JSON Schema keywords Gemini's Schema takes;
// others ($schema, additionalProperties, $ref, const, default, examples,
// ...) make it refuse the request.
var geminiSchemaKeys = map[string]bool{
	"type": true, "format": true, "title": true, "description": true, "nullable": true, "enum": true,
	"items": true, "properties": true, "required": true, "anyOf": true, "propertyOrdering": true,
	"minItems": true, "maxItems": true, "minimum": true, "maximum": true, "minLength": true, "maxLength": true,
	"pattern": true, "minProperties": true, "maxProperties": true,
}

// geminiSchema reduces a tool's JSON Schema to what Gemini takes: unknown
// keywords are dropped (recursively, also inside properties, items and
// anyOf), a type list ["string","null"] becomes "string" with nullable,
// const becomes a one-value enum, formats and enums are kept only where
// Gemini allows them, and required lists only defined properties. A schema
// without properties (no parameters) is left out: Gemini refuses an object
// with none.
func geminiSchema(raw json.RawMessage) json.RawMessage {
	var v any
	if len(bytes.TrimSpace(raw)) == 0 || json.Unmarshal(raw, &v) != nil {
		return nil
	}
	m, ok := cleanGeminiSchema(v).(map[string]any)
	if !ok {
		return nil
	}
	if props, _ := m["properties"].(map[string]any); len(props) == 0 {
		return nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil
	}
	return b
}

func cleanGeminiSchema(v any) any {
	in, ok := v.(map[string]any)
	if !ok {
		return v
	}
	out := make(map[string]any, len(in))
	for k, x := range in {
		if !geminiSchemaKeys[k] {
			continue
		}
		switch k {
		case "properties":
			pm, ok := x.(map[string]any)
			if !ok {
				continue
			}
			props := make(map[string]any, len(pm))
			for name, p := range pm {
				props[name] = cleanGeminiSchema(p)
			}
			if len(props) > 0 {
				out[k] = props
			}
		case "items":
			out[k] = cleanGeminiSchema(x)
		case "anyOf":
			list, ok := x.([]any)
			if !ok {
				continue
			}
			var alts []any
			for _, a := range list {
				if am, ok := a.(map[string]any); ok && am["type"] == "null" {
					out["nullable"] = true
					continue
				}
				alts = append(alts, cleanGeminiSchema(a))
			}
			if len(alts) == 1 {
				for ak, av := range alts[0].(map[string]any) {
					if _, set := out[ak]; !set {
						out[ak] = av
					}
				}
			} else if len(alts) > 1 {
				out[k] = alts
			}
		case "type":
			switch t := x.(type) {
			case string:
				out[k] = t
			case []any:
				for _, e := range t {
					if s, _ := e.(string); s == "null" {
						out["nullable"] = true
					} else if s != "" && out[k] == nil {
						out[k] = s
					}
				}
			}
		case "enum":
			list, ok := x.([]any)
			if !ok {
				continue
			}
			strs := make([]any, 0, len(list))
			for _, e := range list {
				if s, ok := e.(string); ok {
					strs = append(strs, s)
				}
			}
			if len(strs) == len(list) && len(strs) > 0 {
				out[k] = strs
			}
		default:
			out[k] = x
		}
	}
	if c, ok := in["const"].(string); ok && out["enum"] == nil {
		out["enum"] = []any{c}
	}
	if f, ok := out["format"].(string); ok {
		t, _ := out["type"].(string)
		if !geminiFormatOK(strings.ToLower(t), f) {
			delete(out, "format")
		}
	}
	if _, ok := out["enum"]; ok {
		if t, _ := out["type"].(string); t != "" && !strings.EqualFold(t, "string") {
			delete(out, "enum")
		}
	}
	if req, ok := out["required"].([]any); ok {
		props, _ := out["properties"].(map[string]any)
		keep := make([]any, 0, len(req))
		for _, r := range req {
			if s, ok := r.(string); ok && props[s] != nil {
				keep = append(keep, s)
			}
		}
		if len(keep) > 0 {
			out["required"] = keep
		} else {
			delete(out, "required")
		}
	}
	return out
}

// geminiFormatOK reports whether Gemini takes format f for type t.
func geminiFormatOK(t, f string) bool {
	switch t {
	case "string":
		return f == "enum" || f == "date-time"
	case "number":
		return f == "float" || f == "double"
	case "integer":
		return f == "int32" || f == "int64"
	}
	return false
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
