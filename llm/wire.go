package llm

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/cometbot/cometbot/llm/sse"
)

// wire is one gateway wire format: how to address, authenticate and encode a
// request, and how to decode its streamed or whole answer. The shared core
// (retries, watchdog, concurrency, SSE) lives in client.go.
type wire interface {
	url(c *Client, model string, stream bool) string
	auth(h http.Header, key string)
	// encode builds the request body; attachments are streamed as base64
	// when the body is read (see reqBody).
	encode(req *Request, stream bool, drop paramSet) (*reqBody, error)
	// streamEvent handles one SSE event; done reports the format's terminal
	// marker ([DONE], response.completed, message_stop). It sets st.ended
	// when the format's stop reason arrives: without it the answer is cut,
	// whether or not a terminal marker came (see streamState.end).
	streamEvent(st *streamState, ev sse.Event) (done bool, err error)
	// decodeBody decodes a whole (non-streaming) answer into st.bodyText,
	// st.bodyReasoning and st.resp.
	decodeBody(st *streamState, b []byte) error
}

func wireFor(f Format) wire {
	switch f {
	case FormatResponses:
		return responsesWire{}
	case FormatAnthropic:
		return anthropicWire{}
	case FormatGemini:
		return geminiWire{}
	}
	return chatWire{}
}

func bearer(h http.Header, key string) {
	if key != "" {
		h.Set("Authorization", "Bearer "+key)
	}
}

// sticky is a JSON string field that keeps its previous value (and so
// allocates nothing) when the new value is the same, which is the common case
// for ids, model names and event types repeated in every stream chunk.
type sticky string

// UnmarshalJSON implements json.Unmarshaler.
func (s *sticky) UnmarshalJSON(b []byte) error {
	if len(b) >= 2 && b[0] == '"' && bytes.IndexByte(b[1:len(b)-1], '\\') < 0 {
		if string(b[1:len(b)-1]) != string(*s) {
			*s = sticky(b[1 : len(b)-1])
		}
		return nil
	}
	if string(b) == "null" {
		*s = ""
		return nil
	}
	var v string
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*s = sticky(v)
	return nil
}

// optSticky is a sticky field that may be absent from a reused struct:
// clear ok before decoding (clearing the value would make sticky allocate
// again).
type optSticky struct {
	v  sticky
	ok bool
}

// UnmarshalJSON implements json.Unmarshaler.
func (o *optSticky) UnmarshalJSON(b []byte) error {
	o.ok = true
	return o.v.UnmarshalJSON(b)
}

// get returns the value, "" when it was absent.
func (o *optSticky) get() string {
	if !o.ok {
		return ""
	}
	return string(o.v)
}

// jsonDec decodes a stream's events with one reused json.Decoder, which keeps
// its scanner and decode state between events: json.Unmarshal would allocate
// them for every chunk.
type jsonDec struct {
	r   bytes.Reader
	dec *json.Decoder
}

// decode decodes data, which must hold exactly one JSON value, into v.
// A large value (an event carrying an image) is decoded with json.Unmarshal,
// so that the decoder does not copy it and keep a buffer of its size.
func (j *jsonDec) decode(data []byte, v any) error {
	if len(data) > 256<<10 {
		return json.Unmarshal(data, v)
	}
	if j.dec == nil {
		j.dec = json.NewDecoder(&j.r)
	}
	j.r.Reset(data)
	if err := j.dec.Decode(v); err != nil {
		j.dec = nil // a decoder that failed stays failed
		return err
	}
	if j.dec.More() {
		j.dec = nil
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

// skip is a JSON field that is known and ignored. Declaring the fields a
// format sends but the client does not need avoids encoding/json's
// case-folding lookup (and its allocation) for unknown keys on every chunk.
type skip struct{}

// UnmarshalJSON implements json.Unmarshaler by ignoring the value.
func (*skip) UnmarshalJSON([]byte) error { return nil }

// turns returns the conversation without empty messages, its tool calls
// and results paired (pairTools): a message is kept when it has text, tool
// calls (assistant), tool results (RoleTool), or (from the user) images or
// files. Images and files are dropped from assistant messages: only user
// turns carry attachments. Roles other than assistant and tool count as
// user. When merge is set (Anthropic and Gemini, which want strictly
// alternating roles), tool results travel in a user turn, consecutive
// messages of the same role are joined with their attachments, calls and
// results (an encoder puts a user turn's results first and an assistant
// turn's calls after its text), and a conversation that starts with the
// assistant gets a placeholder user turn first.
func turns(msgs []Message, merge bool) []Message {
	msgs = pairTools(msgs)
	out := make([]Message, 0, len(msgs))
	for _, m := range msgs {
		role := m.Role
		switch {
		case role == RoleAssistant:
			m.Images, m.Files, m.ToolResults = nil, nil, nil
		case role == RoleTool && len(m.ToolResults) > 0: // pairTools left nothing else on it
			if merge {
				role = RoleUser
			}
		default:
			role = RoleUser
			m.ToolResults = nil
		}
		if role != RoleAssistant {
			m.ToolCalls = nil
		}
		m.Role = role
		if strings.TrimSpace(m.Content) == "" {
			if len(m.Images) == 0 && len(m.Files) == 0 && len(m.ToolCalls) == 0 && len(m.ToolResults) == 0 {
				continue
			}
			m.Content = "" // no whitespace-only text part (Anthropic refuses them)
		}
		if merge && len(out) > 0 && out[len(out)-1].Role == role {
			last := &out[len(out)-1]
			if m.Content != "" {
				if last.Content != "" {
					last.Content += "\n\n"
				}
				last.Content += m.Content
			}
			// Copy before appending: the slices belong to the caller.
			if len(m.Images) > 0 {
				last.Images = append(slices.Clip(last.Images), m.Images...)
			}
			if len(m.Files) > 0 {
				last.Files = append(slices.Clip(last.Files), m.Files...)
			}
			if len(m.ToolCalls) > 0 {
				last.ToolCalls = append(slices.Clip(last.ToolCalls), m.ToolCalls...)
			}
			if len(m.ToolResults) > 0 {
				last.ToolResults = append(slices.Clip(last.ToolResults), m.ToolResults...)
			}
			continue
		}
		out = append(out, m)
	}
	if merge && len(out) > 0 && out[0].Role == RoleAssistant {
		out = append([]Message{{Role: RoleUser, Content: "(conversation continues)"}}, out...)
	}
	return out
}

// hasAttachments reports whether a user message of req carries an image or
// a file.
func (req *Request) hasAttachments() bool {
	for _, m := range req.Messages {
		if m.Role != RoleAssistant && (len(m.Images) > 0 || len(m.Files) > 0) {
			return true
		}
	}
	return false
}

func isDone(data []byte) bool {
	return bytes.Equal(bytes.TrimSpace(data), []byte("[DONE]"))
}

// hasErrorKey is a cheap pre-check before decoding an error object.
func hasErrorKey(data []byte) bool {
	return bytes.Contains(data, []byte(`"error"`))
}

// maybeBodyError returns the gateway error carried by a 200 JSON body or
// stream chunk, or nil.
func (st *streamState) maybeBodyError(data []byte) error {
	if !hasErrorKey(data) {
		return nil
	}
	var probe struct {
		Error json.RawMessage `json:"error"`
		Type  string          `json:"type"`
	}
	if json.Unmarshal(data, &probe) != nil {
		return nil
	}
	if (len(probe.Error) == 0 || string(probe.Error) == "null") && probe.Type != "error" {
		return nil
	}
	pe, ok := parseErrorJSON(data)
	if !ok {
		return nil
	}
	e := st.c.classifyStreamError(pe)
	if e.RequestID == "" {
		e.RequestID = st.reqID
	}
	return e
}

// errIncomplete is the error of a stream that ended without its stop
// reason; why describes how it ended. A stream without a single event is an
// empty answer, a server failure, rather than a cut one.
func errIncomplete(st *streamState, why string) error {
	if st.events == 0 {
		return &Error{Kind: KindServer, Message: "the gateway sent an empty stream", RequestID: st.reqID}
	}
	return &Error{Kind: KindIncomplete, Message: why, RequestID: st.reqID}
}

func errBadJSON(st *streamState, err error) error {
	return &Error{Kind: KindServer, Message: "undecodable data from the gateway: " + err.Error(), RequestID: st.reqID, err: err}
}
