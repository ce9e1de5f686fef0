package llm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// RawArgsKey is the key under which a ToolCall keeps arguments that were not
// a JSON object: when the model's argument text does not parse (a stream cut
// at the output limit, a model that wrote prose), Arguments is
// {"_raw": "<the text as the model sent it>"}. Arguments is therefore always a
// JSON object, which every format can send back in the history; a tool that
// receives RawArgsKey should answer with an error result so that the model
// sees its mistake and retries.
const RawArgsKey = "_raw"

// maxToolArgBytes bounds the argument text of all the tool calls of one
// answer together: a model that never closes its arguments is stopped.
const maxToolArgBytes = 8 << 20

// noResult is the error result sent for a tool call whose result is missing
// from the history (every format requires one per call).
const noResult = "no result: the call did not complete"

// ValidToolName reports whether name is acceptable as a tool name in every
// format: 1 to 64 characters from [A-Za-z0-9_-].
func ValidToolName(name string) bool {
	if len(name) == 0 || len(name) > 64 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// normArgs returns a tool call's arguments as a compact JSON object: "{}"
// when there are none (empty or null), the object itself when raw is one,
// else {RawArgsKey: raw}. The result never aliases raw.
func normArgs(raw []byte) json.RawMessage {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 || string(t) == "null" {
		return json.RawMessage("{}")
	}
	if t[0] == '{' && json.Valid(t) {
		var b bytes.Buffer
		if json.Compact(&b, t) == nil {
			return b.Bytes()
		}
	}
	b, _ := json.Marshal(map[string]string{RawArgsKey: string(raw)})
	return b
}

// paramsObject returns a tool's parameters schema: its own when it is a JSON
// object, {"type":"object","properties":{}} when it has none.
func paramsObject(t *Tool) json.RawMessage {
	if len(bytes.TrimSpace(t.Parameters)) == 0 || string(bytes.TrimSpace(t.Parameters)) == "null" {
		return json.RawMessage(`{"type":"object","properties":{}}`)
	}
	return t.Parameters
}

// resultText is a tool result as text for the formats without an error
// flag (chat, responses): a failed call's text says so.
func resultText(r *ToolResult) string {
	if r.IsError && !strings.HasPrefix(strings.ToLower(strings.TrimSpace(r.Content)), "error") {
		return "Error: " + r.Content
	}
	return r.Content
}

// usesTools reports whether the request offers tools or web search, or
// carries tool calls or results in its history.
func (req *Request) usesTools() bool {
	if len(req.Tools) > 0 || req.WebSearch {
		return true
	}
	for _, m := range req.Messages {
		if len(m.ToolCalls) > 0 || len(m.ToolResults) > 0 {
			return true
		}
	}
	return false
}

// checkTools refuses, before anything is sent, what no gateway would take:
// web search in Chat Completions (ErrNoWebSearch), a tool name outside
// [A-Za-z0-9_-]{1,64}, a name offered twice, parameters that are not a JSON
// object (ErrTools).
func checkTools(req *Request, f Format) error {
	if req.WebSearch && f == FormatChat {
		return &Error{Kind: KindWebSearch, Format: f, permanent: true,
			Message: "Chat Completions has no built-in web search: route the model to a native format (responses, anthropic, gemini) or ask without web search"}
	}
	seen := make(map[string]bool, len(req.Tools))
	for i := range req.Tools {
		t := &req.Tools[i]
		bad := func(why string) error {
			return &Error{Kind: KindTools, Format: f, permanent: true, Message: fmt.Sprintf("tool %d (%q): %s", i, t.Name, why)}
		}
		if !ValidToolName(t.Name) {
			return bad("the name must be 1 to 64 characters from [A-Za-z0-9_-]")
		}
		if seen[t.Name] {
			return bad("offered twice")
		}
		seen[t.Name] = true
		if req.WebSearch && f == FormatAnthropic && t.Name == "web_search" {
			return bad("the name is taken by Anthropic's web search tool")
		}
		if p := bytes.TrimSpace(t.Parameters); len(p) > 0 && string(p) != "null" {
			var probe map[string]json.RawMessage
			if p[0] != '{' || json.Unmarshal(p, &probe) != nil {
				return bad("parameters are not a JSON Schema object")
			}
		}
	}
	return nil
}

// pairTools returns the conversation with its tool calls and results
// arranged the way every format requires: each assistant message's calls are
// followed at once by one RoleTool message holding a result for every call,
// in the calls' order. Results are matched to calls by CallID (by Name when
// CallID is empty); a call without a result gets an error result (noResult);
// a result without a call (a history trimmed between the two) is dropped.
// User messages that came between the calls and their results are moved
// after the results, and the text and attachments of a RoleTool message
// become a user message there. Call ids are made unique within the request
// (Gemini's made-up "call_<n>" repeat from step to step), arguments become
// JSON objects (normArgs), and results take the id and name of their call.
// The caller's slices are not modified.
func pairTools(msgs []Message) []Message {
	has := false
	for _, m := range msgs {
		if len(m.ToolCalls) > 0 || len(m.ToolResults) > 0 || m.Role == RoleTool {
			has = true
			break
		}
	}
	if !has {
		return msgs
	}
	type block struct {
		calls    []ToolCall
		orig     []string // the calls' ids as given
		results  []*ToolResult
		missing  int
		deferred []Message
	}
	out := make([]Message, 0, len(msgs)+2)
	used := map[string]bool{}
	var open *block
	closeBlock := func() {
		if open == nil {
			return
		}
		res := make([]ToolResult, len(open.calls))
		for i, c := range open.calls {
			if r := open.results[i]; r != nil {
				res[i] = *r
			} else {
				res[i] = ToolResult{Content: noResult, IsError: true}
			}
			res[i].CallID, res[i].Name = c.ID, c.Name
		}
		out = append(out, Message{Role: RoleTool, ToolResults: res})
		out = append(out, open.deferred...)
		open = nil
	}
	n := 0
	for _, m := range msgs {
		if m.Role == RoleAssistant {
			closeBlock()
			m.ToolResults = nil
			if len(m.ToolCalls) == 0 {
				out = append(out, m)
				continue
			}
			b := &block{}
			for _, c := range m.ToolCalls {
				if c.Name == "" {
					continue // nothing any format could send
				}
				n++
				orig := c.ID
				id := c.ID
				if id == "" {
					id = "call_" + strconv.Itoa(n)
				}
				for k := 2; used[id]; k++ {
					id = c.ID + "_" + strconv.Itoa(k)
					if c.ID == "" {
						id = "call_" + strconv.Itoa(n) + "_" + strconv.Itoa(k)
					}
				}
				used[id] = true
				c.ID = id
				c.Arguments = normArgs(c.Arguments)
				b.calls = append(b.calls, c)
				b.orig = append(b.orig, orig)
			}
			m.ToolCalls = b.calls
			out = append(out, m)
			if len(b.calls) > 0 {
				b.results = make([]*ToolResult, len(b.calls))
				b.missing = len(b.calls)
				open = b
			}
			continue
		}
		m.ToolCalls = nil
		results := m.ToolResults
		m.ToolResults = nil
		if m.Role == RoleTool {
			m.Role = RoleUser
		}
		if open != nil {
			for i := range results {
				r := &results[i]
				for j, c := range open.calls {
					if open.results[j] != nil {
						continue
					}
					if (r.CallID != "" && (r.CallID == open.orig[j] || r.CallID == c.ID)) || (r.CallID == "" && r.Name == c.Name) {
						open.results[j] = r
						open.missing--
						break
					}
				}
			}
		}
		if strings.TrimSpace(m.Content) != "" || len(m.Images) > 0 || len(m.Files) > 0 {
			if open != nil {
				open.deferred = append(open.deferred, m)
			} else {
				out = append(out, m)
			}
		}
		if open != nil && open.missing == 0 {
			closeBlock()
		}
	}
	closeBlock()
	return out
}

// ---- decoding ----

// toolBuild is a tool call being received.
type toolBuild struct {
	key       int    // the format's index: chat index, Anthropic block index, Responses output_index
	item      string // Responses item id
	id, name  string
	sig       string
	args      []byte          // argument fragments so far
	whole     json.RawMessage // arguments given whole (Gemini args, Responses .done, Anthropic start input)
	announced bool
}

// toolCall returns the call with this key (and Responses item id, when
// given), creating it when create is set; nil when there is none.
func (s *streamState) toolCall(key int, item string, create bool) *toolBuild {
	for i := range s.tools {
		tb := &s.tools[i]
		if (item != "" && tb.item == item) || (item == "" && tb.key == key) {
			return tb
		}
	}
	if !create {
		return nil
	}
	s.tools = append(s.tools, toolBuild{key: key, item: item})
	return &s.tools[len(s.tools)-1]
}

// toolSeen records a call's id and name as they arrive (the first ones
// win) and announces the call to the caller once its name is known: a
// Delta with ToolCall set. An announcement is progress for the stall
// watchdog, but not answer text: a call that fails afterwards may still be
// retried (and the call announced again).
func (s *streamState) toolSeen(tb *toolBuild, id, name string) error {
	if tb.id == "" && id != "" && !tb.announced {
		tb.id = id
	}
	if tb.name == "" && name != "" {
		tb.name = name
	}
	if tb.announced || tb.name == "" {
		return nil
	}
	if tb.id == "" {
		tb.id = "call_" + strconv.Itoa(len(s.tools))
	}
	tb.announced = true
	s.progress()
	if err := s.onDelta(Delta{ToolCall: &ToolCall{ID: tb.id, Name: tb.name}}); err != nil {
		return &abortError{err}
	}
	return nil
}

// toolArgs appends a fragment of a call's argument text. A fragment is
// progress for the stall watchdog.
func (s *streamState) toolArgs(tb *toolBuild, frag []byte) error {
	if len(frag) == 0 {
		return nil
	}
	s.toolBytes += len(frag)
	if s.toolBytes > maxToolArgBytes {
		return &Error{Kind: KindServer, Message: fmt.Sprintf("tool call arguments larger than %d MiB: refused", maxToolArgBytes>>20), RequestID: s.reqID, permanent: true}
	}
	tb.args = append(tb.args, frag...)
	s.progress()
	return nil
}

// toolWhole sets a call's complete argument text (it wins over fragments).
func (s *streamState) toolWhole(tb *toolBuild, args []byte) {
	if len(bytes.TrimSpace(args)) > 0 {
		tb.whole = append(tb.whole[:0], args...)
		s.progress()
	}
}

// toolCalls returns the calls received, in order, with their arguments
// normalised (normArgs). Calls that never got a name are dropped.
func (s *streamState) toolCalls() []ToolCall {
	if len(s.tools) == 0 {
		return nil
	}
	out := make([]ToolCall, 0, len(s.tools))
	for i := range s.tools {
		tb := &s.tools[i]
		if tb.name == "" {
			s.c.log.Warn("llm: a tool call without a name was dropped", "request_id", s.reqID)
			continue
		}
		if tb.id == "" {
			tb.id = "call_" + strconv.Itoa(i+1)
		}
		args := tb.args
		if len(tb.whole) > 0 {
			args = tb.whole
		}
		if a := bytes.TrimSpace(args); bytes.HasPrefix(a, []byte("{}")) && len(a) > 2 && !json.Valid(a) && json.Valid(a[2:]) {
			// A converter that sent the empty input of a tool_use start
			// ("{}") before the real fragments.
			args = a[2:]
		}
		out = append(out, ToolCall{ID: tb.id, Name: tb.name, Arguments: normArgs(args), Signature: tb.sig})
	}
	return out
}

// cite records a citation, once per URL, in order of first appearance.
func (s *streamState) cite(url, title string) {
	if url == "" {
		return
	}
	for i := range s.resp.Citations {
		if c := &s.resp.Citations[i]; c.URL == url {
			if c.Title == "" {
				c.Title = title
			}
			return
		}
	}
	s.resp.Citations = append(s.resp.Citations, Citation{URL: url, Title: title})
	s.progress()
}

// fragment is a JSON string decoded into a reused byte buffer: tool
// argument fragments arrive escaped in every chunk, and decoding them into
// a string would allocate one per chunk. A value that is not a string (a
// gateway that sends arguments as an object) is kept as its JSON text.
type fragment struct{ b []byte }

// UnmarshalJSON implements json.Unmarshaler.
func (f *fragment) UnmarshalJSON(b []byte) error {
	f.b = f.b[:0]
	if string(b) == "null" {
		return nil
	}
	if len(b) < 2 || b[0] != '"' {
		f.b = append(f.b, b...)
		return nil
	}
	var err error
	f.b, err = appendUnquoted(f.b, b[1:len(b)-1])
	return err
}

var errBadEscape = errors.New("bad escape in a JSON string")

// appendUnquoted appends the text of a JSON string literal's inside (the
// bytes between the quotes, as encoding/json validated them) to dst.
func appendUnquoted(dst, s []byte) ([]byte, error) {
	for {
		i := bytes.IndexByte(s, '\\')
		if i < 0 {
			return append(dst, s...), nil
		}
		dst = append(dst, s[:i]...)
		if i+1 >= len(s) {
			return dst, errBadEscape
		}
		c := s[i+1]
		s = s[i+2:]
		switch c {
		case '"', '\\', '/':
			dst = append(dst, c)
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, ok := hex4(s)
			if !ok {
				return dst, errBadEscape
			}
			s = s[4:]
			if utf16.IsSurrogate(r) {
				r2 := utf8.RuneError
				if len(s) >= 6 && s[0] == '\\' && s[1] == 'u' {
					if x, ok := hex4(s[2:]); ok {
						if d := utf16.DecodeRune(r, x); d != utf8.RuneError {
							r2, s = d, s[6:]
						}
					}
				}
				r = r2
			}
			dst = utf8.AppendRune(dst, r)
		default:
			return dst, errBadEscape
		}
	}
}

func hex4(s []byte) (rune, bool) {
	if len(s) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range s[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}
