package llm

import (
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/cometbot/cometbot/llm/sse"
)

// responsesWire is OpenAI Responses: POST {base}/responses.
type responsesWire struct{}

type responsesRequest struct {
	Model           string   `json:"model"`
	Instructions    string   `json:"instructions,omitempty"`
	Input           []any    `json:"input"` // responsesItem, responsesCall, responsesCallOutput
	Tools           []any    `json:"tools,omitempty"`
	Stream          bool     `json:"stream,omitempty"`
	Temperature     *float64 `json:"temperature,omitempty"`
	TopP            *float64 `json:"top_p,omitempty"`
	MaxOutputTokens int      `json:"max_output_tokens,omitempty"`
}

type responsesItem struct {
	Role    string          `json:"role"`
	Content []responsesPart `json:"content"`
}

// responsesCall is a function_call input item: a call the model made,
// echoed back before its output.
type responsesCall struct {
	Type      string `json:"type"` // "function_call"
	CallID    string `json:"call_id"`
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

// responsesCallOutput is a function_call_output input item.
type responsesCallOutput struct {
	Type   string `json:"type"` // "function_call_output"
	CallID string `json:"call_id"`
	Output string `json:"output"`
}

// responsesFunctionTool is a function tool definition. Strict is sent as
// false: the format's default is true, which refuses most schemas (every
// property required, additionalProperties false).
type responsesFunctionTool struct {
	Type        string          `json:"type"` // "function"
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters"`
	Strict      bool            `json:"strict"`
}

type responsesPart struct {
	Type     string `json:"type"`
	Text     string `json:"text,omitempty"`
	ImageURL string `json:"image_url,omitempty"`
	Filename string `json:"filename,omitempty"`
	FileData string `json:"file_data,omitempty"`
}

func (responsesWire) url(c *Client, _ string, _ bool) string { return c.base + "/responses" }

func (responsesWire) auth(h http.Header, key string) { bearer(h, key) }

// encode builds a Responses request. Tools are function tools (strict
// off) and, with WebSearch, {"type":"web_search"}. An assistant message's
// calls follow its text as function_call items; each result is a
// function_call_output item, its text prefixed "Error: " for a failed call.
func (responsesWire) encode(req *Request, stream bool, drop paramSet) (*reqBody, error) {
	if err := checkTools(req, FormatResponses); err != nil {
		return nil, err
	}
	r := responsesRequest{Model: req.Model, Instructions: req.System, Stream: stream, Input: []any{}}
	var bl blobs
	for _, t := range req.Tools {
		r.Tools = append(r.Tools, responsesFunctionTool{Type: "function", Name: t.Name, Description: t.Description, Parameters: paramsObject(&t)})
	}
	if req.WebSearch {
		r.Tools = append(r.Tools, map[string]string{"type": "web_search"})
	}
	for _, m := range turns(req.Messages, false) {
		if m.Role == RoleTool {
			for _, res := range m.ToolResults {
				r.Input = append(r.Input, responsesCallOutput{Type: "function_call_output", CallID: res.CallID, Output: resultText(&res)})
			}
			continue
		}
		it := responsesItem{Role: string(m.Role)}
		if m.Role == RoleAssistant {
			if m.Content != "" || len(m.ToolCalls) == 0 {
				it.Content = []responsesPart{{Type: "output_text", Text: m.Content}}
				r.Input = append(r.Input, it)
			}
			for _, c := range m.ToolCalls {
				r.Input = append(r.Input, responsesCall{Type: "function_call", CallID: c.ID, Name: c.Name, Arguments: string(c.Arguments)})
			}
			continue
		}
		if m.Content != "" {
			it.Content = append(it.Content, responsesPart{Type: "input_text", Text: m.Content})
		}
		for _, im := range m.Images {
			u := im.URL
			if u == "" {
				u = bl.dataURL(im.mime(), im.Data)
			}
			it.Content = append(it.Content, responsesPart{Type: "input_image", ImageURL: u})
		}
		for _, f := range m.Files {
			it.Content = append(it.Content, responsesPart{Type: "input_file", Filename: f.name(), FileData: bl.dataURL(f.mime(), f.Data)})
		}
		r.Input = append(r.Input, it)
	}
	if drop&pTemperature == 0 {
		r.Temperature = req.Temperature
	}
	if drop&pTopP == 0 {
		r.TopP = req.TopP
	}
	if drop&pMaxTokens == 0 {
		r.MaxOutputTokens = req.MaxOutputTokens
	}
	return bl.body(r)
}

type responsesEvent struct {
	SequenceNumber  skip            `json:"sequence_number"`
	ItemID          optSticky       `json:"item_id"`
	OutputIndex     optIndex        `json:"output_index"`
	ContentIndex    skip            `json:"content_index"`
	AnnotationIndex skip            `json:"annotation_index"`
	Obfuscation     skip            `json:"obfuscation"`
	Logprobs        skip            `json:"logprobs"`
	Type            sticky          `json:"type"`
	Delta           fragment        `json:"delta"`     // text, reasoning or argument text
	Arguments       fragment        `json:"arguments"` // response.function_call_arguments.done
	Name            skip            `json:"name"`
	Response        *responsesBody  `json:"response"`
	Code            json.RawMessage `json:"code"`
	Message         string          `json:"message"`
	Param           string          `json:"param"`
	Error           json.RawMessage `json:"error"`
	// Item is the output item of response.output_item.added and .done:
	// image_generation_call, function_call and message items are read.
	Item *responsesImageItem `json:"item"`
	// Annotation is the citation of response.output_text.annotation.added.
	Annotation *responsesAnnotation `json:"annotation"`
}

// responsesAnnotation is an annotation on output_text; url_citation ones
// are the web search's citations.
type responsesAnnotation struct {
	Type  string `json:"type"`
	URL   string `json:"url"`
	Title string `json:"title"`
}

// responsesOutText is the content of a message output item, read for its
// annotations (the text itself came in deltas).
type responsesOutText struct {
	Type        string                `json:"type"`
	Text        skip                  `json:"text"`
	Annotations []responsesAnnotation `json:"annotations"`
	Logprobs    skip                  `json:"logprobs"`
}

// responsesCite records the url_citation annotations of a message item.
func responsesCite(st *streamState, content []responsesOutText) {
	for _, c := range content {
		for _, a := range c.Annotations {
			if a.Type == "url_citation" {
				st.cite(a.URL, a.Title)
			}
		}
	}
}

// responsesTool finds the call an event is about: by item id, else by
// output index; create makes it when there is none.
func responsesTool(st *streamState, idx optIndex, item string, create bool) *toolBuild {
	if item != "" {
		if tb := st.toolCall(0, item, false); tb != nil {
			return tb
		}
	}
	if idx.ok {
		for i := range st.tools {
			if tb := &st.tools[i]; tb.key == idx.n && (item == "" || tb.item == "") {
				return tb
			}
		}
	}
	if !create {
		return nil
	}
	key := -1 - len(st.tools)
	if idx.ok {
		key = idx.n
	}
	st.tools = append(st.tools, toolBuild{key: key, item: item})
	return &st.tools[len(st.tools)-1]
}

// responsesItemTool handles a function_call output item (added or done).
func responsesItemTool(st *streamState, idx optIndex, it *responsesImageItem, done bool) error {
	tb := responsesTool(st, idx, it.ID, true)
	if err := st.toolSeen(tb, it.CallID, it.Name); err != nil {
		return err
	}
	if done || len(it.Arguments.b) > 0 {
		st.toolWhole(tb, it.Arguments.b)
	}
	return nil
}

type responsesBody struct {
	Model             string           `json:"model"`
	Status            string           `json:"status"`
	Output            []responsesOut   `json:"output"`
	Usage             *responsesUsage  `json:"usage"`
	Error             *json.RawMessage `json:"error"`
	IncompleteDetails *struct {
		Reason string `json:"reason"`
	} `json:"incomplete_details"`
}

type responsesOut struct {
	Type    string `json:"type"`
	ID      string `json:"id"`
	Content []struct {
		Type        string                `json:"type"`
		Text        string                `json:"text"`
		Annotations []responsesAnnotation `json:"annotations"`
	} `json:"content"`
	Summary []struct {
		Text string `json:"text"`
	} `json:"summary"`
	// function_call items
	CallID    string   `json:"call_id"`
	Name      string   `json:"name"`
	Arguments fragment `json:"arguments"`
}

// responsesOutput takes the citations of a final output list and, when
// calls is set (the stream did not deliver them), its function calls.
func responsesOutput(st *streamState, out []responsesOut, calls bool) error {
	for i := range out {
		o := &out[i]
		switch o.Type {
		case "message":
			for _, c := range o.Content {
				for _, a := range c.Annotations {
					if a.Type == "url_citation" {
						st.cite(a.URL, a.Title)
					}
				}
			}
		case "function_call":
			if !calls {
				continue
			}
			tb := responsesTool(st, optIndex{i, true}, o.ID, true)
			if err := st.toolSeen(tb, o.CallID, o.Name); err != nil {
				return err
			}
			st.toolWhole(tb, o.Arguments.b)
		}
	}
	return nil
}

type responsesUsage struct {
	InputTokens  int `json:"input_tokens"`
	OutputTokens int `json:"output_tokens"`
}

func (responsesWire) streamEvent(st *streamState, ev sse.Event) (bool, error) {
	e := &st.resps
	e.Response, e.Code, e.Message, e.Param, e.Error, e.Item, e.Annotation = nil, nil, "", "", nil, nil, nil
	e.ItemID.ok, e.OutputIndex = false, optIndex{}
	e.Delta.b, e.Arguments.b = e.Delta.b[:0], e.Arguments.b[:0]
	if err := st.jd.decode(ev.Data, e); err != nil {
		return false, errBadJSON(st, err)
	}
	typ := string(e.Type)
	if typ == "" {
		typ = ev.Type
	}
	switch typ {
	case "response.output_text.delta":
		return false, st.emit(string(e.Delta.b), "")
	case "response.reasoning_summary_text.delta", "response.reasoning_text.delta":
		return false, st.emit("", string(e.Delta.b))
	case "response.function_call_arguments.delta":
		if tb := responsesTool(st, e.OutputIndex, e.ItemID.get(), false); tb != nil {
			return false, st.toolArgs(tb, e.Delta.b)
		}
	case "response.function_call_arguments.done":
		if tb := responsesTool(st, e.OutputIndex, e.ItemID.get(), false); tb != nil {
			st.toolWhole(tb, e.Arguments.b)
		}
	case "response.output_text.annotation.added":
		if a := e.Annotation; a != nil && a.Type == "url_citation" {
			st.cite(a.URL, a.Title)
		}
	case "response.web_search_call.in_progress", "response.web_search_call.searching", "response.web_search_call.completed":
		st.progress() // searching is content for the stall watchdog
	case "response.output_item.added":
		if it := e.Item; it != nil {
			switch it.Type {
			case "function_call":
				return false, responsesItemTool(st, e.OutputIndex, it, false)
			case "web_search_call":
				st.progress()
			}
		}
	case "response.output_item.done":
		if it := e.Item; it != nil {
			switch it.Type {
			case "image_generation_call":
				st.respImages = true
				st.addImage(it.mime(), &it.Result)
			case "function_call":
				return false, responsesItemTool(st, e.OutputIndex, it, true)
			case "message":
				responsesCite(st, it.Content)
			case "web_search_call":
				st.progress()
			}
		}
	case "response.created", "response.in_progress":
		if e.Response != nil && e.Response.Model != "" {
			st.resp.Model = e.Response.Model
		}
	case "response.completed", "response.done":
		st.ended = true
		// The images normally came in response.output_item.done; take them
		// from the final output only when they did not.
		if !st.respImages && bytes.Contains(ev.Data, imageCallKey) {
			var fin struct {
				Response struct {
					Output []responsesImageItem `json:"output"`
				} `json:"response"`
			}
			if json.Unmarshal(ev.Data, &fin) == nil {
				responsesOutputImages(st, fin.Response.Output)
			}
		}
		if r := e.Response; r != nil {
			responsesFinish(st, r)
			if err := responsesOutput(st, r.Output, len(st.tools) == 0); err != nil {
				return false, err
			}
		}
		if st.resp.StopReason == "" {
			st.resp.StopReason = "completed"
		}
		return true, nil
	case "response.incomplete":
		if r := e.Response; r != nil {
			responsesFinish(st, r)
		}
		// Stopped at the output limit or by the content filter: a whole
		// answer as far as it goes. Any other reason: a cut answer.
		if n := normStop(st.resp.StopReason); n == StopLength || n == StopContentFilter {
			st.ended = true
			return true, nil
		}
		why := "the gateway marked the response incomplete"
		if st.resp.StopReason != "" && st.resp.StopReason != "incomplete" {
			why += " (" + st.resp.StopReason + ")"
		}
		return false, errIncomplete(st, why)
	case "response.failed":
		pe := parsedError{Message: "the response failed"}
		if e.Response != nil && e.Response.Error != nil {
			if p, ok := parseErrorJSON(append([]byte(`{"error":`), append(*e.Response.Error, '}')...)); ok {
				pe = p
			}
		}
		return false, st.streamError(pe)
	case "error":
		pe, ok := parseErrorJSON(ev.Data)
		if !ok {
			pe = parsedError{Message: "error event in the stream"}
		}
		return false, st.streamError(pe)
	}
	return false, nil
}

func responsesFinish(st *streamState, r *responsesBody) {
	if r.Model != "" {
		st.resp.Model = r.Model
	}
	if r.Usage != nil {
		st.setUsage(Usage{InputTokens: r.Usage.InputTokens, OutputTokens: r.Usage.OutputTokens})
	}
	switch {
	case r.IncompleteDetails != nil && r.IncompleteDetails.Reason != "":
		st.resp.StopReason = r.IncompleteDetails.Reason
	case r.Status == "incomplete":
		st.resp.StopReason = "incomplete"
	case r.Status != "":
		st.resp.StopReason = "stop"
	}
}

func (st *streamState) streamError(pe parsedError) error {
	e := st.c.classifyStreamError(pe)
	if e.RequestID == "" {
		e.RequestID = st.reqID
	}
	return e
}

func (responsesWire) decodeBody(st *streamState, b []byte) error {
	var r responsesBody
	if err := json.Unmarshal(b, &r); err != nil {
		return errBadJSON(st, err)
	}
	if r.Status == "failed" || (r.Output == nil && r.Status == "") {
		if err := st.maybeBodyError(b); err != nil {
			return err
		}
		if r.Status == "failed" {
			return st.streamError(parsedError{Message: "the response failed"})
		}
	}
	var text, reasoning []byte
	for _, o := range r.Output {
		switch o.Type {
		case "message":
			for _, c := range o.Content {
				if c.Type == "output_text" || c.Type == "text" {
					text = append(text, c.Text...)
				}
			}
		case "reasoning":
			for _, s := range o.Summary {
				reasoning = append(reasoning, s.Text...)
			}
		}
	}
	st.bodyText, st.bodyReasoning = string(text), string(reasoning)
	if bytes.Contains(b, imageCallKey) {
		var imgs struct {
			Output []responsesImageItem `json:"output"`
		}
		if json.Unmarshal(b, &imgs) == nil {
			responsesOutputImages(st, imgs.Output)
		}
	}
	responsesFinish(st, &r)
	return responsesOutput(st, r.Output, true)
}
