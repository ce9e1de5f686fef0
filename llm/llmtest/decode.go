package llmtest

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
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
	// Parts are the images and files of each message, in wire order:
	// Parts[i] belongs to Messages[i] (whose Images and Files hold the same
	// attachments as llm values).
	Parts [][]Part
	// ToolParts are the tool calls and results of each message in their
	// native shape: ToolParts[i] belongs to Messages[i], whose ToolCalls
	// and ToolResults hold them in neutral form. Messages keep the wire's
	// roles: chat tool messages and Responses function_call_output items
	// (consecutive ones together) are RoleTool messages; Anthropic
	// tool_result blocks and Gemini functionResponse parts are in user
	// messages; Responses function_call items join the assistant message
	// they follow (or make one). A Gemini call or result has the id the
	// request gave it (usually none); a result's Content is the response's
	// "result" or "error" (then IsError) text, else the response as JSON.
	ToolParts [][]ToolPart
	// Tools are the function tools offered, in order.
	Tools []ToolDef
	// WebSearch reports that the request asked for the format's built-in
	// web search; WebSearchTool is its native type ("web_search",
	// "web_search_20250305", "google_search", ...).
	WebSearch     bool
	WebSearchTool string
	Stream        bool
	// IncludeUsage is Chat Completions' stream_options.include_usage.
	IncludeUsage bool
	// Params holds the optional parameters present in the request, under
	// neutral names: "temperature", "top_p", "max_tokens".
	Params map[string]any
	// Raw is the whole body as a generic map.
	Raw map[string]any
}

// The kinds of Part.
const (
	PartImage = "image"
	PartFile  = "file"
)

// Part is an image or a file of a recorded message, decoded from its
// format's native shape.
type Part struct {
	// Kind is PartImage or PartFile.
	Kind string
	// Shape is the native shape the part arrived in: "image_url" or "file"
	// (chat), "input_image" or "input_file" (responses), "image" or
	// "document" (anthropic), "inline_data" or "file_data" (gemini; the
	// camelCase spellings are reported under the same names).
	Shape string
	// MIMEType is the declared media type.
	MIMEType string
	// Name is the file name, in the formats that carry one.
	Name string
	// URL is the address of a part sent by reference (then Data is nil),
	// or a file id.
	URL string
	// Data is the part's bytes, decoded from base64.
	Data []byte
}

// LastUser returns the text of the last user message ("" if none); a user
// message that only carries tool results (Anthropic, Gemini) does not
// count.
func (p Prompt) LastUser() string {
	for i := len(p.Messages) - 1; i >= 0; i-- {
		if m := p.Messages[i]; m.Role == llm.RoleUser && (m.Content != "" || len(m.ToolResults) == 0) {
			return m.Content
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

// Decode decodes the recorded model call. A request the fake refused as
// invalid (status 400) returns that error.
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

// requestError is a request the real service would refuse with a 400: the
// fake answers it in the format's own error shape.
type requestError struct {
	msg, param, code string
}

func (e *requestError) Error() string { return e.msg }

func invalid(param, code, format string, args ...any) error {
	return &requestError{msg: fmt.Sprintf(format, args...), param: param, code: code}
}

// decodedMsg is a message being decoded: its tool calls and results with
// their native shapes. nonTool is set once a block other than a tool
// result was seen (Anthropic wants tool results first).
type decodedMsg struct {
	msg     llm.Message
	tools   []ToolPart
	nonTool bool
}

// add appends a decoded message.
func (p *Prompt) add(role, text string, parts []Part) {
	p.addMsg(role, text, parts, nil)
}

// addMsg appends a decoded message with its tool calls and results.
func (p *Prompt) addMsg(role, text string, parts []Part, d *decodedMsg) {
	m := llm.Message{Role: llm.Role(role), Content: text}
	var tps []ToolPart
	if d != nil {
		m.ToolCalls, m.ToolResults, tps = d.msg.ToolCalls, d.msg.ToolResults, d.tools
	}
	for _, pt := range parts {
		if pt.Kind == PartFile {
			m.Files = append(m.Files, llm.File{Name: pt.Name, MIMEType: pt.MIMEType, Data: pt.Data})
		} else {
			m.Images = append(m.Images, llm.Image{URL: pt.URL, MIMEType: pt.MIMEType, Data: pt.Data})
		}
	}
	p.Messages = append(p.Messages, m)
	p.Parts = append(p.Parts, parts)
	p.ToolParts = append(p.ToolParts, tps)
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
	var err error
	switch f {
	case llm.FormatChat:
		if so, ok := raw["stream_options"].(map[string]any); ok {
			p.IncludeUsage, _ = so["include_usage"].(bool)
		}
		param("temperature", "temperature")
		param("top_p", "top_p")
		param("max_tokens", "max_tokens", "max_completion_tokens")
		err = decodeChat(&p, raw)
	case llm.FormatResponses:
		p.System = str("instructions")
		param("temperature", "temperature")
		param("top_p", "top_p")
		param("max_tokens", "max_output_tokens")
		err = decodeResponses(&p, raw)
	case llm.FormatAnthropic:
		param("temperature", "temperature")
		param("top_p", "top_p")
		param("max_tokens", "max_tokens")
		err = decodeAnthropic(&p, raw)
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
		err = decodeGemini(&p, raw)
	}
	return p, err
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

// imageMIMEs are the image types OpenAI and Anthropic accept.
var imageMIMEs = map[string]bool{"image/png": true, "image/jpeg": true, "image/gif": true, "image/webp": true}

// parseDataURL splits a data: URL "data:<type>;base64,<payload>" and decodes
// its payload (standard base64). ok is false for anything else.
func parseDataURL(u string) (mime string, data []byte, ok bool) {
	rest, ok := strings.CutPrefix(u, "data:")
	if !ok {
		return "", nil, false
	}
	meta, payload, ok := strings.Cut(rest, ",")
	if !ok {
		return "", nil, false
	}
	params := strings.Split(meta, ";")
	mime = strings.ToLower(params[0])
	if len(params) < 2 || params[len(params)-1] != "base64" || !strings.Contains(mime, "/") {
		return "", nil, false
	}
	data, err := base64.StdEncoding.DecodeString(payload)
	if err != nil {
		return "", nil, false
	}
	return mime, data, true
}

func isHTTPURL(u string) bool {
	return strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://")
}

// supported renders OpenAI's "Supported values are: 'a', 'b' and 'c'."
func supported(vals ...string) string {
	q := make([]string, len(vals))
	for i, v := range vals {
		q[i] = "'" + v + "'"
	}
	if len(q) == 1 {
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + " and " + q[len(q)-1]
}

// ---- Chat Completions ----

func decodeChat(p *Prompt, raw map[string]any) error {
	if err := chatTools(p, raw); err != nil {
		return err
	}
	msgs, _ := raw["messages"].([]any)
	var pending []string // calls of the last assistant message not yet answered
	for i, m := range msgs {
		mm, _ := m.(map[string]any)
		role, _ := mm["role"].(string)
		where := fmt.Sprintf("messages[%d]", i)
		text, parts, err := chatContent(mm["content"], role, where)
		if err != nil {
			return err
		}
		if role == "tool" {
			id, _ := mm["tool_call_id"].(string)
			k := slices.Index(pending, id)
			if k < 0 {
				return invalid(fmt.Sprintf("messages.[%d].role", i), "", "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.")
			}
			pending = slices.Delete(pending, k, k+1)
			d := &decodedMsg{tools: []ToolPart{{Kind: PartToolResult, Shape: "tool", Native: mm}}}
			d.msg.ToolResults = []llm.ToolResult{{CallID: id, Content: text}}
			p.addMsg(string(llm.RoleTool), "", nil, d)
			continue
		}
		if err := chatPending(pending, i); err != nil {
			return err
		}
		if role == "system" || role == "developer" {
			p.System = joinNonEmpty(p.System, text)
			continue
		}
		var d *decodedMsg
		if tc, ok := mm["tool_calls"]; ok && tc != nil && role == "assistant" {
			d = &decodedMsg{}
			if d.msg.ToolCalls, d.tools, err = chatToolCalls(tc, where); err != nil {
				return err
			}
			for _, c := range d.msg.ToolCalls {
				pending = append(pending, c.ID)
			}
		}
		p.addMsg(role, text, parts, d)
	}
	return chatPending(pending, len(msgs))
}

func chatContent(v any, role, where string) (string, []Part, error) {
	list, ok := v.([]any)
	if !ok {
		s, _ := v.(string)
		return s, nil, nil
	}
	allowed := []string{"text", "image_url", "input_audio", "file"}
	switch role {
	case "assistant":
		allowed = []string{"text", "refusal"}
	case "system", "developer", "tool":
		allowed = []string{"text"}
	}
	var texts []string
	var parts []Part
	for j, part := range list {
		at := fmt.Sprintf("%s.content[%d]", where, j)
		pm, _ := part.(map[string]any)
		typ, _ := pm["type"].(string)
		ok := false
		for _, a := range allowed {
			ok = ok || a == typ
		}
		if !ok {
			return "", nil, invalid(at+".type", "invalid_value", "Invalid value: '%s'. Supported values are: %s.", typ, supported(allowed...))
		}
		switch typ {
		case "text", "refusal":
			t, _ := pm[typ].(string)
			texts = append(texts, t)
		case "image_url":
			iu, ok := pm["image_url"].(map[string]any)
			if !ok {
				return "", nil, invalid(at+".image_url", "invalid_type", "Invalid type for '%s.image_url': expected an object, but got %s instead.", at, jsonType(pm["image_url"]))
			}
			u, _ := iu["url"].(string)
			if isHTTPURL(u) {
				parts = append(parts, Part{Kind: PartImage, Shape: "image_url", URL: u})
				continue
			}
			mime, data, ok := parseDataURL(u)
			if !ok {
				return "", nil, invalid(at+".image_url.url", "invalid_value", "Invalid '%s.image_url.url'. Expected a base64-encoded data URL with an image MIME type (e.g. 'data:image/png;base64,aW1nIGJ5dGVzIGhlcmU='), but got an invalid value.", at)
			}
			if !imageMIMEs[mime] {
				return "", nil, invalid("", "invalid_image_format", "You uploaded an unsupported image. Please make sure your image has of one the following formats: ['png', 'jpeg', 'gif', 'webp'].")
			}
			parts = append(parts, Part{Kind: PartImage, Shape: "image_url", MIMEType: mime, Data: data})
		case "file":
			fm, ok := pm["file"].(map[string]any)
			if !ok {
				return "", nil, invalid(at+".file", "invalid_type", "Invalid type for '%s.file': expected an object, but got %s instead.", at, jsonType(pm["file"]))
			}
			if id, _ := fm["file_id"].(string); id != "" {
				parts = append(parts, Part{Kind: PartFile, Shape: "file", URL: id})
				continue
			}
			fd, ok := fm["file_data"].(string)
			if !ok {
				return "", nil, invalid(at+".file", "missing_required_parameter", "Missing required parameter: '%s.file.file_data' or '%s.file.file_id'.", at, at)
			}
			name, _ := fm["filename"].(string)
			if name == "" {
				return "", nil, invalid(at+".file.filename", "missing_required_parameter", "Missing required parameter: '%s.file.filename'.", at)
			}
			mime, data, ok := parseDataURL(fd)
			if !ok || mime != "application/pdf" {
				return "", nil, invalid(at+".file.file_data", "invalid_value", "Invalid '%s.file.file_data'. Expected a base64-encoded data URL with a PDF MIME type (e.g. 'data:application/pdf;base64,JVBERi0='), but got an invalid value.", at)
			}
			parts = append(parts, Part{Kind: PartFile, Shape: "file", MIMEType: mime, Name: name, Data: data})
		}
	}
	return strings.Join(texts, ""), parts, nil
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case bool:
		return "a boolean"
	}
	return "a number"
}

// ---- Responses ----

func decodeResponses(p *Prompt, raw map[string]any) error {
	if err := responsesTools(p, raw); err != nil {
		return err
	}
	switch in := raw["input"].(type) {
	case string:
		p.add(string(llm.RoleUser), in, nil)
	case []any:
		var calls, answered []string // call ids, in order
		last := ""                   // the previous item's kind: "assistant", "call", "output", ...
		for i, m := range in {
			mm, _ := m.(map[string]any)
			role, _ := mm["role"].(string)
			typ, _ := mm["type"].(string)
			at := fmt.Sprintf("input[%d]", i)
			switch {
			case typ == "function_call":
				id, _ := mm["call_id"].(string)
				name, _ := mm["name"].(string)
				args, ok := mm["arguments"].(string)
				switch {
				case id == "":
					return invalid(at+".call_id", "missing_required_parameter", "Missing required parameter: '%s.call_id'.", at)
				case name == "":
					return invalid(at+".name", "missing_required_parameter", "Missing required parameter: '%s.name'.", at)
				case !ok:
					return invalid(at+".arguments", "invalid_type", "Invalid type for '%s.arguments': expected a string, but got %s instead.", at, jsonType(mm["arguments"]))
				}
				calls = append(calls, id)
				c := llm.ToolCall{ID: id, Name: name, Arguments: json.RawMessage(args)}
				tp := ToolPart{Kind: PartToolCall, Shape: "function_call", Native: mm}
				if n := len(p.Messages) - 1; (last == "assistant" || last == "call") && n >= 0 {
					p.Messages[n].ToolCalls = append(p.Messages[n].ToolCalls, c)
					p.ToolParts[n] = append(p.ToolParts[n], tp)
				} else {
					p.addMsg(string(llm.RoleAssistant), "", nil, &decodedMsg{msg: llm.Message{ToolCalls: []llm.ToolCall{c}}, tools: []ToolPart{tp}})
				}
				last = "call"
			case typ == "function_call_output":
				id, _ := mm["call_id"].(string)
				if !slices.Contains(calls, id) {
					return invalid("input", "", "No tool call found for function call output with call_id %s.", id)
				}
				answered = append(answered, id)
				var out string
				switch o := mm["output"].(type) {
				case string:
					out = o
				case []any:
					t, _, err := responsesContent(o, "user", at+".output")
					if err != nil {
						return err
					}
					out = t
				default:
					return invalid(at+".output", "invalid_type", "Invalid type for '%s.output': expected a string, but got %s instead.", at, jsonType(mm["output"]))
				}
				r := llm.ToolResult{CallID: id, Content: out}
				tp := ToolPart{Kind: PartToolResult, Shape: "function_call_output", Native: mm}
				if n := len(p.Messages) - 1; last == "output" && n >= 0 {
					p.Messages[n].ToolResults = append(p.Messages[n].ToolResults, r)
					p.ToolParts[n] = append(p.ToolParts[n], tp)
				} else {
					p.addMsg(string(llm.RoleTool), "", nil, &decodedMsg{msg: llm.Message{ToolResults: []llm.ToolResult{r}}, tools: []ToolPart{tp}})
				}
				last = "output"
			case role != "" && (typ == "" || typ == "message"):
				text, parts, err := responsesContent(mm["content"], role, at)
				if err != nil {
					return err
				}
				last = role
				if role == "system" || role == "developer" {
					p.System = joinNonEmpty(p.System, text)
					continue
				}
				p.add(role, text, parts)
			default:
				last = typ // reasoning, web_search_call, ... items
			}
		}
		for _, id := range calls {
			if !slices.Contains(answered, id) {
				return invalid("input", "", "No tool output found for function call %s.", id)
			}
		}
	}
	return nil
}

func responsesContent(v any, role, where string) (string, []Part, error) {
	list, ok := v.([]any)
	if !ok {
		s, _ := v.(string)
		return s, nil, nil
	}
	allowed := []string{"input_text", "input_image", "input_file", "input_audio"}
	if role == "assistant" {
		allowed = []string{"output_text", "refusal"}
	}
	var texts []string
	var parts []Part
	for j, part := range list {
		at := fmt.Sprintf("%s.content[%d]", where, j)
		pm, _ := part.(map[string]any)
		typ, _ := pm["type"].(string)
		ok := false
		for _, a := range allowed {
			ok = ok || a == typ
		}
		if !ok {
			return "", nil, invalid(at, "invalid_value", "Invalid value: '%s'. Supported values are: %s.", typ, supported(allowed...))
		}
		switch typ {
		case "input_text", "output_text":
			t, _ := pm["text"].(string)
			texts = append(texts, t)
		case "refusal":
			t, _ := pm["refusal"].(string)
			texts = append(texts, t)
		case "input_image":
			if id, _ := pm["file_id"].(string); id != "" {
				parts = append(parts, Part{Kind: PartImage, Shape: "input_image", URL: id})
				continue
			}
			u, ok := pm["image_url"].(string)
			if !ok {
				return "", nil, invalid(at+".image_url", "invalid_type", "Invalid type for '%s.image_url': expected a string, but got %s instead.", at, jsonType(pm["image_url"]))
			}
			if isHTTPURL(u) {
				parts = append(parts, Part{Kind: PartImage, Shape: "input_image", URL: u})
				continue
			}
			mime, data, ok := parseDataURL(u)
			if !ok {
				return "", nil, invalid(at+".image_url", "invalid_value", "Invalid '%s.image_url'. Expected a base64-encoded data URL with an image MIME type (e.g. 'data:image/png;base64,aW1nIGJ5dGVzIGhlcmU='), but got an invalid value.", at)
			}
			if !imageMIMEs[mime] {
				return "", nil, invalid("", "invalid_image_format", "You uploaded an unsupported image. Please make sure your image has of one the following formats: ['png', 'jpeg', 'gif', 'webp'].")
			}
			parts = append(parts, Part{Kind: PartImage, Shape: "input_image", MIMEType: mime, Data: data})
		case "input_file":
			name, _ := pm["filename"].(string)
			if id, _ := pm["file_id"].(string); id != "" {
				parts = append(parts, Part{Kind: PartFile, Shape: "input_file", Name: name, URL: id})
				continue
			}
			if u, _ := pm["file_url"].(string); u != "" {
				parts = append(parts, Part{Kind: PartFile, Shape: "input_file", Name: name, URL: u})
				continue
			}
			fd, ok := pm["file_data"].(string)
			if !ok {
				return "", nil, invalid(at, "missing_required_parameter", "Missing required parameter: one of '%s.file_data', '%s.file_id' or '%s.file_url'.", at, at, at)
			}
			if name == "" {
				return "", nil, invalid(at+".filename", "missing_required_parameter", "Missing required parameter: '%s.filename'.", at)
			}
			mime, data, ok := parseDataURL(fd)
			if !ok || mime != "application/pdf" {
				return "", nil, invalid(at+".file_data", "invalid_value", "Invalid '%s.file_data'. Expected a base64-encoded data URL with a PDF MIME type (e.g. 'data:application/pdf;base64,JVBERi0='), but got an invalid value.", at)
			}
			parts = append(parts, Part{Kind: PartFile, Shape: "input_file", MIMEType: mime, Name: name, Data: data})
		}
	}
	return strings.Join(texts, ""), parts, nil
}

// ---- Anthropic Messages ----

func decodeAnthropic(p *Prompt, raw map[string]any) error {
	switch sys := raw["system"].(type) {
	case string:
		p.System = sys
	case []any:
		for i, b := range sys {
			bm, _ := b.(map[string]any)
			if typ, _ := bm["type"].(string); typ != "text" {
				return invalid("", "invalid_request_error", "system.%d.type: Input should be 'text'", i)
			}
			t, _ := bm["text"].(string)
			p.System += t
		}
	}
	if err := anthropicTools(p, raw); err != nil {
		return err
	}
	msgs, _ := raw["messages"].([]any)
	for i, m := range msgs {
		mm, _ := m.(map[string]any)
		role, _ := mm["role"].(string)
		if role != "user" && role != "assistant" {
			return invalid("", "invalid_request_error", "messages.%d.role: Input should be 'user' or 'assistant'", i)
		}
		d := &decodedMsg{}
		text, parts, err := anthropicContent(d, mm["content"], role, fmt.Sprintf("messages.%d.content", i))
		if err != nil {
			return err
		}
		p.addMsg(role, text, parts, d)
	}
	return anthropicPairs(p)
}

func anthropicContent(d *decodedMsg, v any, role, where string) (string, []Part, error) {
	list, ok := v.([]any)
	if !ok {
		s, _ := v.(string)
		return s, nil, nil
	}
	var texts []string
	var parts []Part
	for j, b := range list {
		at := fmt.Sprintf("%s.%d", where, j)
		bm, _ := b.(map[string]any)
		typ, _ := bm["type"].(string)
		if typ != "tool_result" {
			d.nonTool = true
		}
		switch typ {
		case "text":
			t, _ := bm["text"].(string)
			if strings.TrimSpace(t) == "" {
				return "", nil, invalid("", "invalid_request_error", "%s: text content blocks must contain non-whitespace text", at)
			}
			texts = append(texts, t)
			continue
		case "image", "document":
			if role != "user" {
				return "", nil, invalid("", "invalid_request_error", "%s.type: Input tag '%s' found using 'type' does not match any of the expected tags: 'text', 'thinking', 'redacted_thinking', 'tool_use', 'server_tool_use', 'web_search_tool_result'", at, typ)
			}
		case "tool_use", "tool_result":
			if err := anthropicToolBlock(d, bm, typ, role, at); err != nil {
				return "", nil, err
			}
			continue
		case "thinking", "redacted_thinking", "server_tool_use", "web_search_tool_result":
			continue
		default:
			return "", nil, invalid("", "invalid_request_error", "%s.type: Input tag '%s' found using 'type' does not match any of the expected tags", at, typ)
		}
		pt, err := anthropicSource(bm, typ, at)
		if err != nil {
			return "", nil, err
		}
		parts = append(parts, pt)
	}
	return strings.Join(texts, ""), parts, nil
}

func anthropicSource(bm map[string]any, typ, at string) (Part, error) {
	kind := PartImage
	if typ == "document" {
		kind = PartFile
	}
	pt := Part{Kind: kind, Shape: typ}
	src, ok := bm["source"].(map[string]any)
	if !ok {
		return pt, invalid("", "invalid_request_error", "%s.%s.source: Field required", at, typ)
	}
	st, _ := src["type"].(string)
	switch {
	case st == "url":
		u, _ := src["url"].(string)
		if !isHTTPURL(u) {
			return pt, invalid("", "invalid_request_error", "%s.%s.source.url.url: Field required", at, typ)
		}
		pt.URL = u
		return pt, nil
	case st == "file":
		id, _ := src["file_id"].(string)
		if id == "" {
			return pt, invalid("", "invalid_request_error", "%s.%s.source.file.file_id: Field required", at, typ)
		}
		pt.URL = id
		return pt, nil
	case st == "text" && typ == "document":
		d, _ := src["data"].(string)
		pt.MIMEType, pt.Data = "text/plain", []byte(d)
		return pt, nil
	case st != "base64":
		return pt, invalid("", "invalid_request_error", "%s.%s.source: Input tag '%s' found using 'type' does not match any of the expected tags: 'base64', 'url', 'file'", at, typ, st)
	}
	here := at + "." + typ + ".source.base64"
	mt, ok := src["media_type"].(string)
	if !ok {
		return pt, invalid("", "invalid_request_error", "%s.media_type: Field required", here)
	}
	if typ == "image" && !imageMIMEs[mt] {
		return pt, invalid("", "invalid_request_error", "%s.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'", here)
	}
	if typ == "document" && mt != "application/pdf" {
		return pt, invalid("", "invalid_request_error", "%s.media_type: Input should be 'application/pdf'", here)
	}
	d, ok := src["data"].(string)
	if !ok {
		return pt, invalid("", "invalid_request_error", "%s.data: Field required", here)
	}
	data, err := base64.StdEncoding.DecodeString(d)
	if err != nil {
		return pt, invalid("", "invalid_request_error", "%s.data: invalid base64 data", here)
	}
	pt.MIMEType, pt.Data = mt, data
	return pt, nil
}

// ---- Gemini ----

func decodeGemini(p *Prompt, raw map[string]any) error {
	if err := geminiTools(p, raw); err != nil {
		return err
	}
	if si, ok := raw["systemInstruction"].(map[string]any); ok {
		t, _, err := geminiParts(nil, si["parts"], "user", "systemInstruction")
		if err != nil {
			return err
		}
		p.System = t
	}
	cs, _ := raw["contents"].([]any)
	for i, c := range cs {
		cm, _ := c.(map[string]any)
		role, _ := cm["role"].(string)
		wire := role
		switch role {
		case "model":
			role = string(llm.RoleAssistant)
		case "user", "":
			role, wire = string(llm.RoleUser), "user"
		default:
			return invalid("", "INVALID_ARGUMENT", "Please use a valid role: user, model.")
		}
		d := &decodedMsg{}
		text, parts, err := geminiParts(d, cm["parts"], wire, fmt.Sprintf("contents[%d]", i))
		if err != nil {
			return err
		}
		p.addMsg(role, text, parts, d)
	}
	return geminiPairs(p)
}

// geminiMIME reports whether Gemini takes inline data of this type.
func geminiMIME(mt string) bool {
	switch mt {
	case "image/png", "image/jpeg", "image/webp", "image/heic", "image/heif", "application/pdf":
		return true
	}
	return strings.HasPrefix(mt, "text/") || strings.HasPrefix(mt, "audio/") || strings.HasPrefix(mt, "video/")
}

// geminiBytes decodes a proto bytes field: standard or URL-safe base64,
// padded or not.
func geminiBytes(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("bad base64")
}

// field returns m[snake] or m[camel], and an error when both are set (a
// proto oneof set twice).
func field(m map[string]any, snake, camel, at string) (any, string, error) {
	a, b := m[snake], m[camel]
	if a != nil && b != nil {
		return nil, "", invalid("", "INVALID_ARGUMENT", "Invalid value at '%s' (oneof), oneof field 'data' is already set. Cannot set '%s'", at, camel)
	}
	if b != nil {
		return b, camel, nil
	}
	return a, snake, nil
}

func geminiParts(d *decodedMsg, v any, role, where string) (string, []Part, error) {
	list, _ := v.([]any)
	var texts []string
	var parts []Part
	for j, part := range list {
		at := fmt.Sprintf("%s.parts[%d]", where, j)
		pm, _ := part.(map[string]any)
		if d != nil {
			if ok, err := geminiToolPart(d, pm, role, at); ok || err != nil {
				if err != nil {
					return "", nil, err
				}
				continue
			}
		}
		if t, ok := pm["text"].(string); ok {
			if th, _ := pm["thought"].(bool); !th {
				texts = append(texts, t)
			}
			continue
		}
		set := 0
		for _, k := range []string{"inline_data", "inlineData", "file_data", "fileData"} {
			if pm[k] != nil {
				set++
			}
		}
		if set > 1 {
			return "", nil, invalid("", "INVALID_ARGUMENT", "Invalid value at '%s' (oneof), oneof field 'data' is already set.", at)
		}
		if in, name, _ := field(pm, "inline_data", "inlineData", at); in != nil {
			im, _ := in.(map[string]any)
			mtv, _, err := field(im, "mime_type", "mimeType", at+"."+name)
			if err != nil {
				return "", nil, err
			}
			mt, _ := mtv.(string)
			if mt == "" {
				return "", nil, invalid("", "INVALID_ARGUMENT", "* GenerateContentRequest.%s.%s.mime_type: required field is not set", at, name)
			}
			if !geminiMIME(mt) {
				return "", nil, invalid("", "INVALID_ARGUMENT", "Unsupported MIME type: %s", mt)
			}
			d, _ := im["data"].(string)
			data, err := geminiBytes(d)
			if err != nil {
				return "", nil, invalid("", "INVALID_ARGUMENT", "Invalid value at '%s.%s.data' (TYPE_BYTES), Base64 decoding failed for %q", at, name, truncate(d, 40))
			}
			kind := PartImage
			if !strings.HasPrefix(mt, "image/") {
				kind = PartFile
			}
			parts = append(parts, Part{Kind: kind, Shape: "inline_data", MIMEType: mt, Data: data})
			continue
		}
		if fd, name, _ := field(pm, "file_data", "fileData", at); fd != nil {
			fm, _ := fd.(map[string]any)
			uv, _, err := field(fm, "file_uri", "fileUri", at+"."+name)
			if err != nil {
				return "", nil, err
			}
			u, _ := uv.(string)
			if u == "" {
				return "", nil, invalid("", "INVALID_ARGUMENT", "* GenerateContentRequest.%s.%s.file_uri: required field is not set", at, name)
			}
			mtv, _, _ := field(fm, "mime_type", "mimeType", at+"."+name)
			mt, _ := mtv.(string)
			kind := PartImage
			if mt != "" && !strings.HasPrefix(mt, "image/") {
				kind = PartFile
			}
			parts = append(parts, Part{Kind: kind, Shape: "file_data", MIMEType: mt, URL: u})
		}
	}
	return strings.Join(texts, ""), parts, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
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
