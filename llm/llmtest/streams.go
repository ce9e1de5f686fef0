package llmtest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cometbot/cometbot/llm"
)

// sse builds one stream's events into a reusable buffer.
type sseOut struct {
	w        http.ResponseWriter
	rc       *http.ResponseController
	buf      []byte
	nl       string
	dataOnly bool
	keep     bool
	seq      int
}

func (o *sseOut) event(name string, data []byte) {
	if o.keep {
		o.buf = append(o.buf, ": keep-alive"...)
		o.buf = append(o.buf, o.nl...)
	}
	if name != "" && !o.dataOnly {
		o.buf = append(o.buf, "event: "...)
		o.buf = append(o.buf, name...)
		o.buf = append(o.buf, o.nl...)
	}
	o.buf = append(o.buf, "data: "...)
	o.buf = append(o.buf, data...)
	o.buf = append(o.buf, o.nl...)
	o.buf = append(o.buf, o.nl...)
}

func (o *sseOut) flush() bool {
	if len(o.buf) == 0 {
		return true
	}
	_, err := o.w.Write(o.buf)
	o.buf = o.buf[:0]
	if err != nil {
		return false
	}
	return o.rc.Flush() == nil
}

// frames renders the events of one format.
type frames interface {
	start(o *sseOut, a *answer)
	reasoning(o *sseOut, s string)
	text(o *sseOut, s string)
	images(o *sseOut, a *answer)
	// tools sends the answer's tool calls.
	tools(o *sseOut, a *answer)
	finish(o *sseOut, a *answer)
	fail(o *sseOut, msg string)
	// ping sends the format's event without content.
	ping(o *sseOut)
}

// hold keeps a stalled stream open until the client goes away or the server
// closes, sending the script's keep-alives.
func (s *Server) hold(ctx context.Context, o *sseOut, fr frames, sc Script) {
	o.flush()
	if sc.StallKeepAlive <= 0 {
		s.sleepUntil(ctx, time.Now().Add(24*time.Hour))
		return
	}
	for s.sleepUntil(ctx, time.Now().Add(sc.StallKeepAlive)) {
		if sc.StallPings {
			fr.ping(o)
		} else {
			o.buf = append(o.buf, ": ping"...)
			o.buf = append(o.buf, o.nl...)
			o.buf = append(o.buf, o.nl...)
		}
		if !o.flush() {
			return
		}
	}
}

func (s *Server) sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		select {
		case <-ctx.Done():
			return false
		case <-s.done:
			return false
		default:
			return true
		}
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-ctx.Done():
		return false
	case <-s.done:
		return false
	}
}

func (s *Server) writeStream(w http.ResponseWriter, r *http.Request, f llm.Format, p Prompt, a answer, sc Script, end func()) {
	if f == llm.FormatGemini && r.URL.Query().Get("alt") != "sse" {
		end()
		s.writeGeminiArray(w, p, a)
		return
	}
	ctx := r.Context()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	o := &sseOut{w: w, rc: http.NewResponseController(w), buf: make([]byte, 0, 1024), nl: "\n", dataOnly: sc.DataOnly, keep: sc.KeepAlive}
	if sc.CRLF || f == llm.FormatGemini {
		o.nl = "\r\n"
	}
	if !o.flush() {
		return
	}
	var fr frames
	id := strconv.FormatInt(s.seq.Add(1), 10)
	switch f {
	case llm.FormatResponses:
		fr = &responsesFrames{id: "resp_" + id, model: p.Model}
	case llm.FormatAnthropic:
		fr = &anthropicFrames{id: "msg_" + id, model: p.Model}
	case llm.FormatGemini:
		fr = &geminiFrames{model: p.Model}
	default:
		fr = &chatFrames{head: chatHead("chatcmpl-"+id, p.Model), usage: p.IncludeUsage}
	}
	next := time.Now().Add(a.ttft)
	if !s.sleepUntil(ctx, next) {
		return
	}
	fr.start(o, &a)
	for _, c := range a.reasoning {
		fr.reasoning(o, c)
		if !o.flush() {
			return
		}
	}
	n := len(a.chunks) // chunks to send; -1: endless
	if sc.Repeat > 1 {
		n *= sc.Repeat
	} else if sc.Repeat < 0 && n > 0 {
		n = -1
	}
	for i := 0; n < 0 || i < n; i++ {
		c := a.chunks[i%len(a.chunks)]
		if i == sc.ErrorAfter && sc.MidStreamError != "" {
			fr.fail(o, sc.MidStreamError)
			end()
			o.flush()
			return
		}
		if i == sc.ErrorAfter && sc.Stall {
			s.hold(ctx, o, fr, sc)
			return
		}
		if i > 0 && a.interval > 0 {
			next = next.Add(a.interval)
			if !s.sleepUntil(ctx, next) {
				return
			}
		}
		fr.text(o, c)
		if !o.flush() {
			return
		}
	}
	if n >= 0 && n <= sc.ErrorAfter {
		if sc.MidStreamError != "" {
			fr.fail(o, sc.MidStreamError)
			end()
			o.flush()
			return
		}
		if sc.Stall {
			s.hold(ctx, o, fr, sc)
			return
		}
	}
	if len(a.images) > 0 {
		fr.images(o, &a)
		if !o.flush() {
			return
		}
	}
	if len(a.calls) > 0 {
		fr.tools(o, &a)
		if !o.flush() {
			return
		}
	}
	if sc.Truncate {
		end()
		o.flush()
		return
	}
	fr.finish(o, &a)
	end()
	o.flush()
}

// argFragments splits a call's argument text into the fragments a stream
// sends it in: four pieces (fewer for short text), cut at rune boundaries,
// so that a fragment may end inside a key, a string or an escape's source
// text but is always valid UTF-8.
func argFragments(args string) []string {
	if len(args) < 8 {
		return []string{args}
	}
	var out []string
	start := 0
	for k := 1; k < 4; k++ {
		cut := len(args) * k / 4
		for cut < len(args) && !utf8.RuneStart(args[cut]) {
			cut++
		}
		if cut > start && cut < len(args) {
			out = append(out, args[start:cut])
			start = cut
		}
	}
	return append(out, args[start:])
}

// appendJSONString appends s as a JSON string literal.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = append(b, s[start:i]...)
				b = append(b, `\ufffd`...)
				i += size
				start = i
				continue
			}
			if r == '\u2028' || r == '\u2029' {
				b = append(b, s[start:i]...)
				b = append(b, `\u202`...)
				b = append(b, hex[r&0xF])
				i += size
				start = i
				continue
			}
			i += size
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
		}
		i++
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

func usageJSON(b []byte, in, out, total string, u llm.Usage) []byte {
	b = append(b, `{"`...)
	b = append(b, in...)
	b = append(b, `":`...)
	b = strconv.AppendInt(b, int64(u.InputTokens), 10)
	b = append(b, `,"`...)
	b = append(b, out...)
	b = append(b, `":`...)
	b = strconv.AppendInt(b, int64(u.OutputTokens), 10)
	b = append(b, `,"`...)
	b = append(b, total...)
	b = append(b, `":`...)
	b = strconv.AppendInt(b, int64(u.Total()), 10)
	return append(b, '}')
}

// ---- Chat Completions ----

type chatFrames struct {
	head  []byte // {"id":...,"object":"chat.completion.chunk","created":...,"model":...,
	usage bool
	tmp   []byte
}

func chatHead(id, model string) []byte {
	b := []byte(`{"id":`)
	b = appendJSONString(b, id)
	b = append(b, `,"object":"chat.completion.chunk","created":`...)
	b = strconv.AppendInt(b, time.Now().Unix(), 10)
	b = append(b, `,"model":`...)
	b = appendJSONString(b, model)
	b = append(b, `,"system_fingerprint":null,`...)
	return b
}

func (c *chatFrames) delta(o *sseOut, key, s string) {
	b := append(c.tmp[:0], c.head...)
	b = append(b, `"choices":[{"index":0,"delta":{"`...)
	b = append(b, key...)
	b = append(b, `":`...)
	b = appendJSONString(b, s)
	b = append(b, `},"logprobs":null,"finish_reason":null}]}`...)
	c.tmp = b
	o.event("", b)
}

func (c *chatFrames) start(o *sseOut, _ *answer) {
	b := append(c.tmp[:0], c.head...)
	b = append(b, `"choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}`...)
	c.tmp = b
	o.event("", b)
}

func (c *chatFrames) reasoning(o *sseOut, s string) { c.delta(o, "reasoning_content", s) }
func (c *chatFrames) text(o *sseOut, s string)      { c.delta(o, "content", s) }
func (c *chatFrames) images(*sseOut, *answer)       {}

// toolDelta sends one element of delta.tool_calls: the first with id and
// name (head), the next ones with argument text only.
func (c *chatFrames) toolDelta(o *sseOut, i int, tc *llm.ToolCall, head bool, args string) {
	b := append(c.tmp[:0], c.head...)
	b = append(b, `"choices":[{"index":0,"delta":{`...)
	if head {
		b = append(b, `"role":"assistant","content":null,`...)
	}
	b = append(b, `"tool_calls":[{"index":`...)
	b = strconv.AppendInt(b, int64(i), 10)
	if head {
		b = append(b, `,"id":`...)
		b = appendJSONString(b, tc.ID)
		b = append(b, `,"type":"function","function":{"name":`...)
		b = appendJSONString(b, tc.Name)
		b = append(b, `,"arguments":`...)
	} else {
		b = append(b, `,"function":{"arguments":`...)
	}
	b = appendJSONString(b, args)
	b = append(b, `}}]},"logprobs":null,"finish_reason":null}]}`...)
	c.tmp = b
	o.event("", b)
}

func (c *chatFrames) tools(o *sseOut, a *answer) {
	for i := range a.calls {
		tc := &a.calls[i]
		c.toolDelta(o, i, tc, true, "")
		for _, f := range argFragments(string(tc.Arguments)) {
			c.toolDelta(o, i, tc, false, f)
		}
	}
}

func (c *chatFrames) finish(o *sseOut, a *answer) {
	stop := a.stop
	if stop == "" {
		stop = "stop"
		if len(a.calls) > 0 {
			stop = "tool_calls"
		}
	}
	b := append(c.tmp[:0], c.head...)
	b = append(b, `"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":`...)
	if a.noStop {
		b = append(b, "null"...)
	} else {
		b = appendJSONString(b, stop)
	}
	b = append(b, `}]}`...)
	o.event("", b)
	if c.usage {
		b = append(b[:0], c.head...)
		b = append(b, `"choices":[],"usage":`...)
		b = usageJSON(b, "prompt_tokens", "completion_tokens", "total_tokens", a.usage)
		b = append(b, '}')
		o.event("", b)
	}
	c.tmp = b
	o.event("", []byte("[DONE]"))
}

func (c *chatFrames) ping(o *sseOut) { c.delta(o, "content", "") }

func (c *chatFrames) fail(o *sseOut, msg string) {
	b := append(c.tmp[:0], `{"error":{"message":`...)
	b = appendJSONString(b, msg)
	b = append(b, `,"type":"server_error","param":null,"code":"server_error"}}`...)
	c.tmp = b
	o.event("", b)
}

// ---- Responses ----

type responsesFrames struct {
	id, model string
	seq       int
	tmp       []byte
	msgIndex  int // output_index of the message item (1 after a web search)
}

func (r *responsesFrames) ev(o *sseOut, typ string, rest func(b []byte) []byte) {
	b := append(r.tmp[:0], `{"type":"`...)
	b = append(b, typ...)
	b = append(b, `","sequence_number":`...)
	b = strconv.AppendInt(b, int64(r.seq), 10)
	r.seq++
	b = rest(b)
	b = append(b, '}')
	r.tmp = b
	o.event(typ, b)
}

func (r *responsesFrames) response(b []byte, status string, a *answer) []byte {
	b = append(b, `,"response":{"id":`...)
	b = appendJSONString(b, r.id)
	b = append(b, `,"object":"response","created_at":`...)
	b = strconv.AppendInt(b, time.Now().Unix(), 10)
	b = append(b, `,"status":"`...)
	b = append(b, status...)
	b = append(b, `","model":`...)
	b = appendJSONString(b, r.model)
	if a == nil {
		return append(b, `,"output":[],"usage":null}`...)
	}
	b = append(b, `,"output":[`...)
	if rs := strings.Join(a.reasoning, ""); rs != "" {
		b = append(b, `{"type":"reasoning","id":"rs_1","summary":[{"type":"summary_text","text":`...)
		b = appendJSONString(b, rs)
		b = append(b, `}]},`...)
	}
	if len(a.cites) > 0 {
		b = webSearchCallItem(b, true)
		b = append(b, ',')
	}
	if a.text != "" || len(a.calls) == 0 {
		b = append(b, `{"type":"message","id":"msg_1","status":"completed","role":"assistant","content":[{"type":"output_text","annotations":`...)
		b = urlCitations(b, a)
		b = append(b, `,"text":`...)
		b = appendJSONString(b, a.text)
		b = append(b, `}]},`...)
	}
	for i, im := range a.images {
		b = imageCallItem(b, i, im, true)
		b = append(b, ',')
	}
	for i := range a.calls {
		b = functionCallItem(b, i, &a.calls[i], true)
		b = append(b, ',')
	}
	if b[len(b)-1] == ',' {
		b = b[:len(b)-1]
	}
	b = append(b, ']')
	if status == "incomplete" && !a.noStop {
		b = append(b, `,"incomplete_details":{"reason":`...)
		b = appendJSONString(b, a.stop)
		b = append(b, '}')
	}
	b = append(b, `,"usage":`...)
	b = usageJSON(b, "input_tokens", "output_tokens", "total_tokens", a.usage)
	return append(b, '}')
}

// urlCitations renders the answer's citations as url_citation annotations.
func urlCitations(b []byte, a *answer) []byte {
	b = append(b, '[')
	for i, c := range a.cites {
		if i > 0 {
			b = append(b, ',')
		}
		b = urlCitation(b, c, len(a.text))
	}
	return append(b, ']')
}

func urlCitation(b []byte, c llm.Citation, end int) []byte {
	b = append(b, `{"type":"url_citation","start_index":0,"end_index":`...)
	b = strconv.AppendInt(b, int64(end), 10)
	b = append(b, `,"url":`...)
	b = appendJSONString(b, c.URL)
	b = append(b, `,"title":`...)
	b = appendJSONString(b, c.Title)
	return append(b, '}')
}

// webSearchCallItem renders the web_search_call output item of an answer
// with citations.
func webSearchCallItem(b []byte, done bool) []byte {
	if !done {
		return append(b, `{"type":"web_search_call","id":"ws_1","status":"in_progress"}`...)
	}
	return append(b, `{"type":"web_search_call","id":"ws_1","status":"completed","action":{"type":"search","query":"fake search"}}`...)
}

// functionCallItem renders call i as a function_call output item, its
// arguments empty until done.
func functionCallItem(b []byte, i int, tc *llm.ToolCall, done bool) []byte {
	b = append(b, `{"type":"function_call","id":"fc_`...)
	b = strconv.AppendInt(b, int64(i+1), 10)
	b = append(b, `","call_id":`...)
	b = appendJSONString(b, tc.ID)
	b = append(b, `,"name":`...)
	b = appendJSONString(b, tc.Name)
	b = append(b, `,"arguments":`...)
	if done {
		b = appendJSONString(b, string(tc.Arguments))
		return append(b, `,"status":"completed"}`...)
	}
	return append(b, `"","status":"in_progress"}`...)
}

func (r *responsesFrames) start(o *sseOut, a *answer) {
	r.ev(o, "response.created", func(b []byte) []byte { return r.response(b, "in_progress", nil) })
	r.ev(o, "response.in_progress", func(b []byte) []byte { return r.response(b, "in_progress", nil) })
	if len(a.cites) == 0 {
		return
	}
	r.msgIndex = 1
	item := func(typ string, done bool) {
		r.ev(o, typ, func(b []byte) []byte {
			b = append(b, `,"output_index":0,"item":`...)
			return webSearchCallItem(b, done)
		})
	}
	item("response.output_item.added", false)
	for _, typ := range []string{"response.web_search_call.in_progress", "response.web_search_call.searching", "response.web_search_call.completed"} {
		r.ev(o, typ, func(b []byte) []byte { return append(b, `,"output_index":0,"item_id":"ws_1"`...) })
	}
	item("response.output_item.done", true)
}

func (r *responsesFrames) delta(o *sseOut, typ, s string) {
	r.ev(o, typ, func(b []byte) []byte {
		b = append(b, `,"item_id":"msg_1","output_index":`...)
		b = strconv.AppendInt(b, int64(r.msgIndex), 10)
		b = append(b, `,"content_index":0,"delta":`...)
		return appendJSONString(b, s)
	})
}

func (r *responsesFrames) reasoning(o *sseOut, s string) {
	r.delta(o, "response.reasoning_summary_text.delta", s)
}
func (r *responsesFrames) text(o *sseOut, s string) { r.delta(o, "response.output_text.delta", s) }

// imageCallItem renders image i as an image_generation_call output item,
// with its base64 result when done.
func imageCallItem(b []byte, i int, im llm.Image, done bool) []byte {
	b = append(b, `{"type":"image_generation_call","id":"ig_`...)
	b = strconv.AppendInt(b, int64(i+1), 10)
	if !done {
		return append(b, `","status":"in_progress"}`...)
	}
	b = append(b, `","status":"completed","output_format":`...)
	b = appendJSONString(b, strings.TrimPrefix(im.MIMEType, "image/"))
	b = append(b, `,"revised_prompt":"a picture","result":"`...)
	b = base64.StdEncoding.AppendEncode(b, im.Data)
	return append(b, `"}`...)
}

func (r *responsesFrames) images(o *sseOut, a *answer) {
	for i, im := range a.images {
		for _, done := range []bool{false, true} {
			typ := "response.output_item.added"
			if done {
				typ = "response.output_item.done"
			}
			r.ev(o, typ, func(b []byte) []byte {
				b = append(b, `,"output_index":`...)
				b = strconv.AppendInt(b, int64(i+1), 10)
				b = append(b, `,"item":`...)
				return imageCallItem(b, i, im, done)
			})
		}
	}
}

func (r *responsesFrames) tools(o *sseOut, a *answer) {
	for i := range a.calls {
		tc := &a.calls[i]
		idx := int64(r.msgIndex + 1 + len(a.images) + i)
		item := func(typ string, done bool) {
			r.ev(o, typ, func(b []byte) []byte {
				b = append(b, `,"output_index":`...)
				b = strconv.AppendInt(b, idx, 10)
				b = append(b, `,"item":`...)
				return functionCallItem(b, i, tc, done)
			})
		}
		at := func(b []byte) []byte {
			b = append(b, `,"item_id":"fc_`...)
			b = strconv.AppendInt(b, int64(i+1), 10)
			b = append(b, `","output_index":`...)
			return strconv.AppendInt(b, idx, 10)
		}
		item("response.output_item.added", false)
		for _, f := range argFragments(string(tc.Arguments)) {
			r.ev(o, "response.function_call_arguments.delta", func(b []byte) []byte {
				b = append(at(b), `,"delta":`...)
				return appendJSONString(b, f)
			})
		}
		r.ev(o, "response.function_call_arguments.done", func(b []byte) []byte {
			b = append(at(b), `,"name":`...)
			b = appendJSONString(b, tc.Name)
			b = append(b, `,"arguments":`...)
			return appendJSONString(b, string(tc.Arguments))
		})
		item("response.output_item.done", true)
	}
}

func (r *responsesFrames) finish(o *sseOut, a *answer) {
	for i, c := range a.cites {
		r.ev(o, "response.output_text.annotation.added", func(b []byte) []byte {
			b = append(b, `,"item_id":"msg_1","output_index":`...)
			b = strconv.AppendInt(b, int64(r.msgIndex), 10)
			b = append(b, `,"content_index":0,"annotation_index":`...)
			b = strconv.AppendInt(b, int64(i), 10)
			b = append(b, `,"annotation":`...)
			return urlCitation(b, c, len(a.text))
		})
	}
	if a.text != "" || len(a.calls) == 0 {
		r.ev(o, "response.output_text.done", func(b []byte) []byte {
			b = append(b, `,"item_id":"msg_1","output_index":`...)
			b = strconv.AppendInt(b, int64(r.msgIndex), 10)
			b = append(b, `,"content_index":0,"text":`...)
			return appendJSONString(b, a.text)
		})
	}
	if a.noStop || (a.stop != "" && a.stop != "stop" && a.stop != "completed") {
		r.ev(o, "response.incomplete", func(b []byte) []byte { return r.response(b, "incomplete", a) })
		return
	}
	r.ev(o, "response.completed", func(b []byte) []byte { return r.response(b, "completed", a) })
}

func (r *responsesFrames) ping(o *sseOut) {
	r.ev(o, "response.in_progress", func(b []byte) []byte { return r.response(b, "in_progress", nil) })
}

func (r *responsesFrames) fail(o *sseOut, msg string) {
	r.ev(o, "error", func(b []byte) []byte {
		b = append(b, `,"code":"server_error","message":`...)
		b = appendJSONString(b, msg)
		return append(b, `,"param":null`...)
	})
}

// ---- Anthropic Messages ----

type anthropicFrames struct {
	id, model string
	block     int
	open      bool
	kind      string
	tmp       []byte
	cites     []llm.Citation // sent as citations_delta when the text block opens
}

func (a *anthropicFrames) raw(o *sseOut, typ string, b []byte) {
	a.tmp = b
	o.event(typ, b)
}

func (a *anthropicFrames) start(o *sseOut, ans *answer) {
	b := append(a.tmp[:0], `{"type":"message_start","message":{"id":`...)
	b = appendJSONString(b, a.id)
	b = append(b, `,"type":"message","role":"assistant","model":`...)
	b = appendJSONString(b, a.model)
	b = append(b, `,"content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":`...)
	b = strconv.AppendInt(b, int64(ans.usage.InputTokens), 10)
	b = append(b, `,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}}}`...)
	a.raw(o, "message_start", b)
	a.raw(o, "ping", append(a.tmp[:0], `{"type": "ping"}`...))
	if len(ans.cites) > 0 {
		a.search(o, ans.cites)
	}
}

// search sends the web search's server_tool_use and web_search_tool_result
// blocks; the citations follow in the text block.
func (a *anthropicFrames) search(o *sseOut, cites []llm.Citation) {
	b := append(a.tmp[:0], `{"type":"content_block_start","index":`...)
	b = strconv.AppendInt(b, int64(a.block), 10)
	b = append(b, `,"content_block":{"type":"server_tool_use","id":"srvtoolu_fake","name":"web_search","input":{}}}`...)
	a.raw(o, "content_block_start", b)
	b = append(a.tmp[:0], `{"type":"content_block_delta","index":`...)
	b = strconv.AppendInt(b, int64(a.block), 10)
	b = append(b, `,"delta":{"type":"input_json_delta","partial_json":"{\"query\": \"fake search\"}"}}`...)
	a.raw(o, "content_block_delta", b)
	a.open, a.kind = true, "server_tool_use"
	a.closeBlock(o)
	b = append(a.tmp[:0], `{"type":"content_block_start","index":`...)
	b = strconv.AppendInt(b, int64(a.block), 10)
	b = append(b, `,"content_block":{"type":"web_search_tool_result","tool_use_id":"srvtoolu_fake","content":[`...)
	for i, c := range cites {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"type":"web_search_result","url":`...)
		b = appendJSONString(b, c.URL)
		b = append(b, `,"title":`...)
		b = appendJSONString(b, c.Title)
		b = append(b, `,"encrypted_content":"ZmFrZQ==","page_age":null}`...)
	}
	b = append(b, `]}}`...)
	a.raw(o, "content_block_start", b)
	a.open, a.kind = true, "web_search_tool_result"
	a.closeBlock(o)
	a.cites = cites
}

// citation renders a web_search_result_location citation.
func anthropicCitation(b []byte, c llm.Citation) []byte {
	b = append(b, `{"type":"web_search_result_location","cited_text":"fake cited text","url":`...)
	b = appendJSONString(b, c.URL)
	b = append(b, `,"title":`...)
	b = appendJSONString(b, c.Title)
	return append(b, `,"encrypted_index":"ZmFrZQ=="}`...)
}

func (a *anthropicFrames) openBlock(o *sseOut, kind string) {
	if a.open && a.kind == kind {
		return
	}
	a.closeBlock(o)
	b := append(a.tmp[:0], `{"type":"content_block_start","index":`...)
	b = strconv.AppendInt(b, int64(a.block), 10)
	if kind == "thinking" {
		b = append(b, `,"content_block":{"type":"thinking","thinking":""}}`...)
	} else {
		b = append(b, `,"content_block":{"type":"text","text":""}}`...)
	}
	a.raw(o, "content_block_start", b)
	a.open, a.kind = true, kind
	if kind == "text" {
		for _, c := range a.cites {
			b = append(a.tmp[:0], `{"type":"content_block_delta","index":`...)
			b = strconv.AppendInt(b, int64(a.block), 10)
			b = append(b, `,"delta":{"type":"citations_delta","citation":`...)
			b = anthropicCitation(b, c)
			b = append(b, `}}`...)
			a.raw(o, "content_block_delta", b)
		}
		a.cites = nil
	}
}

func (a *anthropicFrames) closeBlock(o *sseOut) {
	if !a.open {
		return
	}
	b := append(a.tmp[:0], `{"type":"content_block_stop","index":`...)
	b = strconv.AppendInt(b, int64(a.block), 10)
	b = append(b, '}')
	a.raw(o, "content_block_stop", b)
	a.block++
	a.open = false
}

func (a *anthropicFrames) delta(o *sseOut, kind, field, s string) {
	a.openBlock(o, kind)
	b := append(a.tmp[:0], `{"type":"content_block_delta","index":`...)
	b = strconv.AppendInt(b, int64(a.block), 10)
	b = append(b, `,"delta":{"type":"`...)
	b = append(b, field...)
	b = append(b, `_delta","`...)
	b = append(b, field...)
	b = append(b, `":`...)
	b = appendJSONString(b, s)
	b = append(b, `}}`...)
	a.raw(o, "content_block_delta", b)
}

func (a *anthropicFrames) reasoning(o *sseOut, s string) { a.delta(o, "thinking", "thinking", s) }
func (a *anthropicFrames) text(o *sseOut, s string)      { a.delta(o, "text", "text", s) }
func (a *anthropicFrames) images(*sseOut, *answer)       {}

func (a *anthropicFrames) tools(o *sseOut, ans *answer) {
	a.closeBlock(o)
	for i := range ans.calls {
		tc := &ans.calls[i]
		b := append(a.tmp[:0], `{"type":"content_block_start","index":`...)
		b = strconv.AppendInt(b, int64(a.block), 10)
		b = append(b, `,"content_block":{"type":"tool_use","id":`...)
		b = appendJSONString(b, tc.ID)
		b = append(b, `,"name":`...)
		b = appendJSONString(b, tc.Name)
		b = append(b, `,"input":{}}}`...)
		a.raw(o, "content_block_start", b)
		a.open, a.kind = true, "tool_use"
		for _, f := range append([]string{""}, argFragments(string(tc.Arguments))...) {
			b = append(a.tmp[:0], `{"type":"content_block_delta","index":`...)
			b = strconv.AppendInt(b, int64(a.block), 10)
			b = append(b, `,"delta":{"type":"input_json_delta","partial_json":`...)
			b = appendJSONString(b, f)
			b = append(b, `}}`...)
			a.raw(o, "content_block_delta", b)
		}
		a.closeBlock(o)
	}
}

func (a *anthropicFrames) finish(o *sseOut, ans *answer) {
	a.closeBlock(o)
	stop := ans.stop
	if stop == "" {
		stop = "end_turn"
		if len(ans.calls) > 0 {
			stop = "tool_use"
		}
	}
	b := append(a.tmp[:0], `{"type":"message_delta","delta":{"stop_reason":`...)
	if ans.noStop {
		b = append(b, "null"...)
	} else {
		b = appendJSONString(b, stop)
	}
	b = append(b, `,"stop_sequence":null},"usage":{"output_tokens":`...)
	b = strconv.AppendInt(b, int64(ans.usage.OutputTokens), 10)
	b = append(b, `}}`...)
	a.raw(o, "message_delta", b)
	a.raw(o, "message_stop", append(a.tmp[:0], `{"type":"message_stop"}`...))
}

func (a *anthropicFrames) ping(o *sseOut) { a.raw(o, "ping", append(a.tmp[:0], `{"type": "ping"}`...)) }

func (a *anthropicFrames) fail(o *sseOut, msg string) {
	b := append(a.tmp[:0], `{"type":"error","error":{"type":"overloaded_error","message":`...)
	b = appendJSONString(b, msg)
	b = append(b, `}}`...)
	a.raw(o, "error", b)
}

// ---- Gemini ----

type geminiFrames struct {
	model string
	tmp   []byte
	cites []llm.Citation // groundingMetadata of the last chunk
}

func (g *geminiFrames) chunk(s string, thought bool, finish string, u *llm.Usage) []byte {
	b := append(g.tmp[:0], `{"candidates":[{"content":{"parts":[{"text":`...)
	b = appendJSONString(b, s)
	if thought {
		b = append(b, `,"thought":true`...)
	}
	b = append(b, `}],"role":"model"}`...)
	if finish != "" {
		b = append(b, `,"finishReason":`...)
		b = appendJSONString(b, finish)
	}
	if u != nil && len(g.cites) > 0 {
		b = g.grounding(b)
	}
	b = append(b, `,"index":0}]`...)
	if u != nil {
		b = append(b, `,"usageMetadata":{"promptTokenCount":`...)
		b = strconv.AppendInt(b, int64(u.InputTokens), 10)
		b = append(b, `,"candidatesTokenCount":`...)
		b = strconv.AppendInt(b, int64(u.OutputTokens), 10)
		b = append(b, `,"totalTokenCount":`...)
		b = strconv.AppendInt(b, int64(u.Total()), 10)
		b = append(b, '}')
	}
	b = append(b, `,"modelVersion":`...)
	b = appendJSONString(b, g.model)
	b = append(b, `,"responseId":"fake"}`...)
	g.tmp = b
	return b
}

// imageChunk renders a chunk with one inline image part.
func (g *geminiFrames) imageChunk(im llm.Image, snake bool) []byte {
	b := append(g.tmp[:0], `{"candidates":[{"content":{"parts":[{`...)
	if snake {
		b = append(b, `"inline_data":{"mime_type":`...)
	} else {
		b = append(b, `"inlineData":{"mimeType":`...)
	}
	b = appendJSONString(b, im.MIMEType)
	b = append(b, `,"data":"`...)
	b = base64.StdEncoding.AppendEncode(b, im.Data)
	b = append(b, `"}}],"role":"model"},"index":0}],"modelVersion":`...)
	b = appendJSONString(b, g.model)
	b = append(b, `,"responseId":"fake"}`...)
	g.tmp = b
	return b
}

// grounding renders the candidate's groundingMetadata for the citations.
func (g *geminiFrames) grounding(b []byte) []byte {
	b = append(b, `,"groundingMetadata":{"webSearchQueries":["fake search"],"searchEntryPoint":{"renderedContent":"<div></div>"},"groundingChunks":[`...)
	for i, c := range g.cites {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"web":{"uri":`...)
		b = appendJSONString(b, c.URL)
		b = append(b, `,"title":`...)
		b = appendJSONString(b, c.Title)
		b = append(b, `}}`...)
	}
	b = append(b, `],"groundingSupports":[{"segment":{"startIndex":0,"endIndex":4,"text":"fake"},"groundingChunkIndices":[0]}]}`...)
	return b
}

// callChunk renders one chunk holding every call as a functionCall part.
func (g *geminiFrames) callChunk(calls []llm.ToolCall) []byte {
	b := append(g.tmp[:0], `{"candidates":[{"content":{"parts":[`...)
	for i := range calls {
		tc := &calls[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"functionCall":{`...)
		if tc.ID != "" {
			b = append(b, `"id":`...)
			b = appendJSONString(b, tc.ID)
			b = append(b, ',')
		}
		b = append(b, `"name":`...)
		b = appendJSONString(b, tc.Name)
		b = append(b, `,"args":`...)
		b = append(b, tc.Arguments...)
		b = append(b, '}')
		if tc.Signature != "" {
			b = append(b, `,"thoughtSignature":`...)
			b = appendJSONString(b, tc.Signature)
		}
		b = append(b, '}')
	}
	b = append(b, `],"role":"model"},"index":0}],"modelVersion":`...)
	b = appendJSONString(b, g.model)
	b = append(b, `,"responseId":"fake"}`...)
	g.tmp = b
	return b
}

func (g *geminiFrames) tools(o *sseOut, a *answer) { o.event("", g.callChunk(a.calls)) }

func (g *geminiFrames) images(o *sseOut, a *answer) {
	for _, im := range a.images {
		o.event("", g.imageChunk(im, a.snake))
	}
}

func (g *geminiFrames) start(_ *sseOut, a *answer)    { g.cites = a.cites }
func (g *geminiFrames) reasoning(o *sseOut, s string) { o.event("", g.chunk(s, true, "", nil)) }
func (g *geminiFrames) text(o *sseOut, s string)      { o.event("", g.chunk(s, false, "", nil)) }

func (g *geminiFrames) finish(o *sseOut, a *answer) {
	stop := a.stop
	if stop == "" {
		stop = "STOP"
	}
	if a.noStop {
		stop = ""
	}
	o.event("", g.chunk("", false, stop, &a.usage))
}

func (g *geminiFrames) ping(o *sseOut) { o.event("", g.chunk("", false, "", nil)) }

func (g *geminiFrames) fail(o *sseOut, msg string) {
	b := append(g.tmp[:0], `{"error":{"code":500,"message":`...)
	b = appendJSONString(b, msg)
	b = append(b, `,"status":"INTERNAL"}}`...)
	g.tmp = b
	o.event("", b)
}

func (s *Server) writeGeminiArray(w http.ResponseWriter, p Prompt, a answer) {
	g := &geminiFrames{model: p.Model, cites: a.cites}
	var b []byte
	b = append(b, '[')
	for _, c := range a.reasoning {
		b = append(b, g.chunk(c, true, "", nil)...)
		b = append(b, ',')
	}
	for _, c := range a.chunks {
		b = append(b, g.chunk(c, false, "", nil)...)
		b = append(b, ',')
	}
	for _, im := range a.images {
		b = append(b, g.imageChunk(im, a.snake)...)
		b = append(b, ',')
	}
	if len(a.calls) > 0 {
		b = append(b, g.callChunk(a.calls)...)
		b = append(b, ',')
	}
	stop := a.stop
	if stop == "" {
		stop = "STOP"
	}
	b = append(b, g.chunk("", false, stop, &a.usage)...)
	b = append(b, ']')
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

// writeWhole answers a non-streaming call.
func (s *Server) writeWhole(ctx context.Context, w http.ResponseWriter, f llm.Format, p Prompt, a answer, end func()) {
	if a.ttft > 0 && !s.sleepUntil(ctx, time.Now().Add(a.ttft)) {
		return
	}
	reasoning := strings.Join(a.reasoning, "")
	u := a.usage
	var v any
	switch f {
	case llm.FormatResponses:
		r := &responsesFrames{id: "resp_whole", model: p.Model}
		status := "completed"
		if a.stop != "" && a.stop != "stop" && a.stop != "completed" {
			status = "incomplete"
		}
		b := r.response([]byte(`{"x":0`), status, &a)
		// r.response renders `,"response":{...}`; unwrap it.
		var wrap struct {
			Response json.RawMessage `json:"response"`
		}
		_ = json.Unmarshal(append(b, '}'), &wrap)
		end()
		w.Header().Set("Content-Type", "application/json")
		w.Write(wrap.Response)
		return
	case llm.FormatAnthropic:
		content := []map[string]any{}
		if reasoning != "" {
			content = append(content, map[string]any{"type": "thinking", "thinking": reasoning, "signature": "fake"})
		}
		text := map[string]any{"type": "text", "text": a.text}
		if len(a.cites) > 0 {
			var results, cites []any
			for _, c := range a.cites {
				results = append(results, map[string]any{"type": "web_search_result", "url": c.URL, "title": c.Title, "encrypted_content": "ZmFrZQ==", "page_age": nil})
				cites = append(cites, map[string]any{"type": "web_search_result_location", "url": c.URL, "title": c.Title, "cited_text": "fake cited text", "encrypted_index": "ZmFrZQ=="})
			}
			content = append(content,
				map[string]any{"type": "server_tool_use", "id": "srvtoolu_fake", "name": "web_search", "input": map[string]any{"query": "fake search"}},
				map[string]any{"type": "web_search_tool_result", "tool_use_id": "srvtoolu_fake", "content": results})
			text["citations"] = cites
		}
		if a.text != "" || len(a.calls) == 0 {
			content = append(content, text)
		}
		for _, tc := range a.calls {
			content = append(content, map[string]any{"type": "tool_use", "id": tc.ID, "name": tc.Name, "input": tc.Arguments})
		}
		stop := a.stop
		if stop == "" {
			stop = "end_turn"
			if len(a.calls) > 0 {
				stop = "tool_use"
			}
		}
		v = map[string]any{"id": "msg_whole", "type": "message", "role": "assistant", "model": p.Model, "content": content,
			"stop_reason": stop, "stop_sequence": nil, "usage": map[string]any{"input_tokens": u.InputTokens, "output_tokens": u.OutputTokens}}
	case llm.FormatGemini:
		parts := []map[string]any{}
		if reasoning != "" {
			parts = append(parts, map[string]any{"text": reasoning, "thought": true})
		}
		parts = append(parts, map[string]any{"text": a.text})
		for _, im := range a.images {
			blob := map[string]any{"mimeType": im.MIMEType, "data": im.Data} // []byte marshals as base64
			if a.snake {
				parts = append(parts, map[string]any{"inline_data": map[string]any{"mime_type": im.MIMEType, "data": im.Data}})
			} else {
				parts = append(parts, map[string]any{"inlineData": blob})
			}
		}
		for _, tc := range a.calls {
			fc := map[string]any{"name": tc.Name, "args": tc.Arguments}
			if tc.ID != "" {
				fc["id"] = tc.ID
			}
			part := map[string]any{"functionCall": fc}
			if tc.Signature != "" {
				part["thoughtSignature"] = tc.Signature
			}
			parts = append(parts, part)
		}
		stop := a.stop
		if stop == "" {
			stop = "STOP"
		}
		cand := map[string]any{"content": map[string]any{"parts": parts, "role": "model"}, "finishReason": stop, "index": 0}
		if len(a.cites) > 0 {
			var chunks []any
			for _, c := range a.cites {
				chunks = append(chunks, map[string]any{"web": map[string]any{"uri": c.URL, "title": c.Title}})
			}
			cand["groundingMetadata"] = map[string]any{"webSearchQueries": []string{"fake search"}, "groundingChunks": chunks}
		}
		v = map[string]any{"candidates": []any{cand},
			"usageMetadata": map[string]any{"promptTokenCount": u.InputTokens, "candidatesTokenCount": u.OutputTokens, "totalTokenCount": u.Total()},
			"modelVersion":  p.Model}
	default:
		msg := map[string]any{"role": "assistant", "content": a.text}
		if reasoning != "" {
			msg["reasoning_content"] = reasoning
		}
		if len(a.calls) > 0 {
			var tcs []any
			for _, tc := range a.calls {
				tcs = append(tcs, map[string]any{"id": tc.ID, "type": "function", "function": map[string]any{"name": tc.Name, "arguments": string(tc.Arguments)}})
			}
			msg["tool_calls"] = tcs
			if a.text == "" {
				msg["content"] = nil
			}
		}
		stop := a.stop
		if stop == "" {
			stop = "stop"
			if len(a.calls) > 0 {
				stop = "tool_calls"
			}
		}
		v = map[string]any{"id": "chatcmpl-whole", "object": "chat.completion", "created": time.Now().Unix(), "model": p.Model,
			"choices": []any{map[string]any{"index": 0, "message": msg, "finish_reason": stop}},
			"usage":   map[string]any{"prompt_tokens": u.InputTokens, "completion_tokens": u.OutputTokens, "total_tokens": u.Total()}}
	}
	b, _ := json.Marshal(v)
	end()
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}
