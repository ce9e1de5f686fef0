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
	Model           string          `json:"model"`
	Instructions    string          `json:"instructions,omitempty"`
	Input           []responsesItem `json:"input"`
	Stream          bool            `json:"stream,omitempty"`
	Temperature     *float64        `json:"temperature,omitempty"`
	TopP            *float64        `json:"top_p,omitempty"`
	MaxOutputTokens int             `json:"max_output_tokens,omitempty"`
}

type responsesItem struct {
	Role    string          `json:"role"`
	Content []responsesPart `json:"content"`
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

func (responsesWire) encode(req *Request, stream bool, drop paramSet) (*reqBody, error) {
	r := responsesRequest{Model: req.Model, Instructions: req.System, Stream: stream, Input: []responsesItem{}}
	var bl blobs
	for _, m := range turns(req.Messages, false) {
		it := responsesItem{Role: string(m.Role)}
		if m.Role == RoleAssistant {
			it.Content = []responsesPart{{Type: "output_text", Text: m.Content}}
		} else {
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
	SequenceNumber skip            `json:"sequence_number"`
	ItemID         skip            `json:"item_id"`
	OutputIndex    skip            `json:"output_index"`
	ContentIndex   skip            `json:"content_index"`
	Obfuscation    skip            `json:"obfuscation"`
	Logprobs       skip            `json:"logprobs"`
	Type           sticky          `json:"type"`
	Delta          string          `json:"delta"`
	Response       *responsesBody  `json:"response"`
	Code           json.RawMessage `json:"code"`
	Message        string          `json:"message"`
	Param          string          `json:"param"`
	Error          json.RawMessage `json:"error"`
	// Item is the output item of response.output_item.done; only an
	// image_generation_call's fields are read.
	Item *responsesImageItem `json:"item"`
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
	Content []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	} `json:"content"`
	Summary []struct {
		Text string `json:"text"`
	} `json:"summary"`
}

type responsesUsage struct {
	InputTokens  int `json:"input_tokens"`
	OutputTokens int `json:"output_tokens"`
}

func (responsesWire) streamEvent(st *streamState, ev sse.Event) (bool, error) {
	e := &st.resps
	e.Delta, e.Response, e.Code, e.Message, e.Param, e.Error, e.Item = "", nil, nil, "", "", nil, nil
	if err := st.jd.decode(ev.Data, e); err != nil {
		return false, errBadJSON(st, err)
	}
	typ := string(e.Type)
	if typ == "" {
		typ = ev.Type
	}
	switch typ {
	case "response.output_text.delta":
		return false, st.emit(e.Delta, "")
	case "response.reasoning_summary_text.delta", "response.reasoning_text.delta":
		return false, st.emit("", e.Delta)
	case "response.output_item.done":
		if it := e.Item; it != nil && it.Type == "image_generation_call" {
			st.respImages = true
			st.addImage(it.mime(), &it.Result)
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
	return nil
}
