// Package llmtest is a loopback fake of the CometAPI gateway for tests and
// load tools. It speaks the four wire formats of package llm — Chat
// Completions, Responses, Anthropic Messages and Gemini native — streaming
// (SSE) and non-streaming, serves the model catalog at /api/models and the
// OpenAI model list at /v1/models, and records every request.
//
// Routes (chosen by request path, as on the real gateway):
//
//	POST /v1/chat/completions                                   Chat Completions
//	POST /v1/responses                                          Responses
//	POST /v1/messages                                           Anthropic Messages
//	POST /v1beta/models/{model}:streamGenerateContent?alt=sse   Gemini (SSE; without alt=sse a JSON array)
//	POST /v1beta/models/{model}:generateContent                 Gemini, non-streaming
//	GET  /api/models                                            catalog {"success":true,"total":N,"data":[...]}
//	GET  /v1/models                                             OpenAI model list
//
// Every model call is answered by the next queued Script (Enqueue), or by the
// default behaviour: the reply set with SetReply (or, in echo mode, "echo: "
// followed by the last user message), streamed one word per chunk at the
// configured latency. Scripts can fail with any status, headers and body,
// break or stall a stream, set usage numbers, return generated images, call
// tools (Script.ToolCalls) and cite web sources (Script.Citations).
//
// Requests are checked like the real service checks them: image and file
// parts (data URIs, base64, media types, which roles may carry them) are
// decoded per format, and a malformed one is refused with a 400 in the
// format's own error shape before any script is used. Recorded.Decode gives
// the parts back (Prompt.Parts) with their bytes. Tools are checked the
// same way: definitions (names within [A-Za-z0-9_-]{1,64}, schemas Gemini
// cannot hold, Responses' strict default, chat web search), and the pairing
// of calls and results (a result without its call, a call left unanswered,
// Anthropic tool_result blocks not first in the next user turn, Gemini
// function responses that do not answer the previous turn's calls by name
// and number, Gemini 3 calls without a thoughtSignature). Prompt.Tools,
// WebSearch, the messages' ToolCalls and ToolResults and Prompt.ToolParts
// (native shapes) give them back.
//
// NewServer has no testing dependency so load tools can run it; New ties the
// server to a test and closes it on cleanup.
package llmtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cometbot/cometbot/llm"
)

// DefaultReply is the answer of a server that was given no reply.
const DefaultReply = "Hello! I am the fake gateway, answering from 127.0.0.1."

// Options configures a Server. The zero value is a fast server answering
// DefaultReply with the DefaultModels catalog.
type Options struct {
	// Reply is the default answer text (DefaultReply when empty).
	Reply string
	// Echo makes the default answer "echo: <last user message>".
	Echo bool
	// TTFT is the time to first token of every streamed answer.
	TTFT time.Duration
	// TokensPerSecond paces streamed chunks (each chunk counts as ChunkSize
	// tokens); 0 streams as fast as possible.
	TokensPerSecond float64
	// ChunkSize is the number of words per streamed chunk, default 1.
	ChunkSize int
	// Models is the catalog; nil means DefaultModels().
	Models []llm.ModelInfo
	// APIKey, when set, is required on every model call (Bearer, x-api-key,
	// x-goog-api-key or ?key=); other calls get a 401.
	APIKey string
	// DisableRecording turns the request recorder off (for load tests).
	DisableRecording bool
	// MaxRecorded bounds the recorder (oldest dropped), default 10000.
	MaxRecorded int
	// SkipBodies reads model-call bodies without keeping or decoding them,
	// so that a memory benchmark of the client in the same process measures
	// the client alone. Recorded.Body is then nil (Recorded.Size still counts
	// the bytes), attachments are not checked, and the call is streamed when
	// its Accept header (or Gemini path) asks for a stream.
	SkipBodies bool
}

// Script is the scripted answer to one model call. Zero fields take the
// server defaults; a Script{} is a normal successful answer.
type Script struct {
	// Path restricts the script to requests whose path contains it (for
	// example "/messages" or ":streamGenerateContent"); "" matches any call.
	Path string

	// Status is the HTTP status, default 200. With a status >= 300 and no
	// Body, the body is the gateway's JSON error envelope built from the
	// Error* fields.
	Status int
	// Header holds extra response headers, e.g. {"Retry-After": {"1"}}.
	Header http.Header
	// Body, when set, is sent verbatim (for example an HTML page) instead of
	// any generated answer.
	Body string
	// ContentType is the Content-Type for Body, default text/html when Body
	// starts with '<', else application/json.
	ContentType string
	// ErrorMessage, ErrorType, ErrorCode, ErrorParam fill the JSON error
	// envelope for a failing Status. The message gets " (request id: ...)".
	ErrorMessage, ErrorType, ErrorCode, ErrorParam string

	// Text is the answer; "" uses the server's reply (or echo).
	Text string
	// Reasoning is reasoning text streamed before the answer.
	Reasoning string
	// Chunks, when set, is the exact chunking of Text (Text is then ignored).
	Chunks []string
	// ChunkSize overrides the words per chunk.
	ChunkSize int
	// TTFT and TokensPerSecond override the server's latency for this call.
	TTFT            time.Duration
	TokensPerSecond float64
	// Usage overrides the reported token usage.
	Usage *llm.Usage
	// StopReason overrides the stop reason in the format's own vocabulary.
	StopReason string
	// Images are generated images sent after the text: Gemini parts
	// {"inlineData":{"mimeType","data"}} (streamed as their own chunks), and
	// Responses image_generation_call items (response.output_item.added and
	// .done with the base64 result, repeated in the final output). Chat
	// Completions and Anthropic have no image output and ignore them.
	Images []llm.Image
	// SnakeCaseImages spells Gemini image parts inline_data / mime_type.
	SnakeCaseImages bool

	// ToolCalls are calls the model makes after the text (with Text and
	// Chunks empty the answer has no text), in each format's stream shape:
	// chat delta.tool_calls (a first chunk with index, id and name, then
	// the arguments in several fragments), Responses function_call items
	// (output_item.added, function_call_arguments.delta fragments, .done,
	// output_item.done, and in the final output), Anthropic tool_use blocks
	// (content_block_start, input_json_delta fragments), Gemini
	// functionCall parts (whole, in one chunk; a made-up thoughtSignature on
	// the first for Gemini 3 models unless a call has a Signature). Empty
	// ids are made up in the format's style (Gemini sends none unless
	// given). The stop reason becomes the format's tool stop ("tool_calls",
	// "tool_use"; Gemini STOP, Responses completed). Arguments are sent as
	// given ("{}" when empty).
	ToolCalls []llm.ToolCall
	// Citations are web search sources the answer cites, in each format's
	// shape: Responses url_citation annotations (annotation.added events
	// after a web_search_call item, and on the final output_text);
	// Anthropic server_tool_use and web_search_tool_result blocks before
	// the text, then web_search_result_location citations_delta events
	// in the text block; Gemini groundingMetadata.groundingChunks in the
	// last chunk. Chat Completions has no search and ignores them.
	Citations []llm.Citation

	// MidStreamError, when set, sends a format-specific error event with this
	// message after ErrorAfter text chunks, and ends the stream.
	MidStreamError string
	// ErrorAfter is the number of text chunks before MidStreamError or Stall.
	ErrorAfter int
	// Stall stops sending after ErrorAfter text chunks and holds the
	// connection open until the client goes away or the server closes.
	Stall bool
	// StallKeepAlive, with Stall, sends a keep-alive every StallKeepAlive
	// while stalled instead of silence: an SSE comment (": ping"), or with
	// StallPings the format's own event without content (a chat chunk with
	// empty content, a Responses response.in_progress, an Anthropic ping, a
	// Gemini chunk with an empty text part).
	StallKeepAlive time.Duration
	// StallPings makes StallKeepAlive send the format's no-content event
	// rather than an SSE comment.
	StallPings bool
	// Repeat streams the chunks (of Text or Chunks) Repeat times, generated
	// as they are sent, never held whole: a stream of any size costs the
	// server one chunk of memory. -1 repeats them until the client goes away.
	// 0 and 1 stream them once. The final events carry one copy of the text.
	Repeat int
	// Truncate ends the stream after the text without the format's
	// terminal marker ([DONE], response.completed, message_stop, finishReason).
	Truncate bool
	// NoStopReason ends the stream with the format's usage and terminal
	// marker but without its stop reason: a chat finish chunk with
	// "finish_reason":null then usage and [DONE]; a Responses
	// response.incomplete without incomplete_details; an Anthropic
	// message_delta with "stop_reason":null then message_stop; a last Gemini
	// chunk with usageMetadata and no finishReason.
	NoStopReason bool
	// KeepAlive interleaves SSE comment lines (": keep-alive") between events.
	KeepAlive bool
	// CRLF uses CRLF line endings in the stream.
	CRLF bool
	// DataOnly omits "event:" lines (Responses and Anthropic streams).
	DataOnly bool
}

// Recorded is one request the server received.
type Recorded struct {
	Method string
	Path   string
	Query  url.Values
	Header http.Header
	Body   []byte
	// Size is the number of body bytes received (also with SkipBodies).
	Size int64
	// Format is the wire format the path selects ("" for catalog and other calls).
	Format llm.Format
	Time   time.Time
}

// JSON decodes the recorded body into v.
func (r Recorded) JSON(v any) error { return json.Unmarshal(r.Body, v) }

// Map decodes the recorded body into a generic map (nil if it is not a JSON object).
func (r Recorded) Map() map[string]any {
	var m map[string]any
	if json.Unmarshal(r.Body, &m) != nil {
		return nil
	}
	return m
}

// Server is the fake gateway.
type Server struct {
	ts   *httptest.Server
	done chan struct{}
	once sync.Once

	mu          sync.Mutex
	opts        Options
	queue       []Script
	recs        []Recorded
	models      []llm.ModelInfo
	catStatus   int
	unsupported map[llm.Format]bool

	seq      atomic.Int64
	calls    atomic.Int64
	inFlight atomic.Int64
	peak     atomic.Int64
}

// NewServer starts a fake gateway on 127.0.0.1. Close it when done.
func NewServer(opts Options) *Server {
	if opts.Reply == "" {
		opts.Reply = DefaultReply
	}
	if opts.ChunkSize <= 0 {
		opts.ChunkSize = 1
	}
	if opts.MaxRecorded <= 0 {
		opts.MaxRecorded = 10000
	}
	s := &Server{done: make(chan struct{}), opts: opts, unsupported: map[llm.Format]bool{}}
	s.models = opts.Models
	if s.models == nil {
		s.models = DefaultModels()
	}
	s.ts = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// New starts a fake gateway for a test and closes it on t.Cleanup.
func New(t testing.TB, opts ...Options) *Server {
	t.Helper()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	s := NewServer(o)
	t.Cleanup(s.Close)
	return s
}

// URL returns the OpenAI-compatible base URL, ending in /v1, for llm.Config.BaseURL.
func (s *Server) URL() string { return s.ts.URL + "/v1" }

// HostURL returns the server's root URL (no /v1).
func (s *Server) HostURL() string { return s.ts.URL }

// CatalogURL returns the catalog URL (…/api/models).
func (s *Server) CatalogURL() string { return s.ts.URL + "/api/models" }

// Client returns an HTTP client for the server.
func (s *Server) Client() *http.Client { return s.ts.Client() }

// Close stops the server, ending stalled and paced streams.
func (s *Server) Close() {
	s.once.Do(func() {
		close(s.done)
		s.ts.CloseClientConnections()
		s.ts.Close()
	})
}

// SetReply sets the default answer and turns echo mode off.
func (s *Server) SetReply(text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opts.Reply = text
	s.opts.Echo = false
}

// SetEcho turns echo mode on or off: the default answer becomes
// "echo: <last user message>".
func (s *Server) SetEcho(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opts.Echo = on
}

// SetLatency sets the default time to first token and pacing.
func (s *Server) SetLatency(ttft time.Duration, tokensPerSecond float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opts.TTFT = ttft
	s.opts.TokensPerSecond = tokensPerSecond
}

// Enqueue queues scripts; each model call takes the first queued script
// whose Path matches it.
func (s *Server) Enqueue(scripts ...Script) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queue = append(s.queue, scripts...)
}

// Pending returns the number of scripts not yet used.
func (s *Server) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue)
}

// SetModels replaces the catalog served at /api/models.
func (s *Server) SetModels(models []llm.ModelInfo) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.models = append([]llm.ModelInfo(nil), models...)
}

// SetCatalogStatus makes /api/models fail with status (0 or 200 restores it).
func (s *Server) SetCatalogStatus(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.catStatus = status
}

// SetUnsupported makes the paths of these formats answer 404 with an HTML
// page, like a gateway or proxy that does not serve them. No arguments
// restores all formats.
func (s *Server) SetUnsupported(formats ...llm.Format) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unsupported = map[llm.Format]bool{}
	for _, f := range formats {
		s.unsupported[f] = true
	}
}

// Requests returns a copy of the recorded requests, oldest first.
func (s *Server) Requests() []Recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Recorded(nil), s.recs...)
}

// LastRequest returns the most recent recorded request.
func (s *Server) LastRequest() (Recorded, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.recs) == 0 {
		return Recorded{}, false
	}
	return s.recs[len(s.recs)-1], true
}

// Reset clears the recorder, the script queue and the counters.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recs = nil
	s.queue = nil
	s.calls.Store(0)
	s.peak.Store(s.inFlight.Load())
}

// Calls returns the number of model calls served (catalog calls excluded).
func (s *Server) Calls() int { return int(s.calls.Load()) }

// InFlight returns the number of model calls being served now.
func (s *Server) InFlight() int { return int(s.inFlight.Load()) }

// MaxInFlight returns the highest number of model calls served at once.
func (s *Server) MaxInFlight() int { return int(s.peak.Load()) }

func formatOf(p string) llm.Format {
	switch {
	case strings.HasSuffix(p, "/chat/completions"):
		return llm.FormatChat
	case strings.HasSuffix(p, "/responses"):
		return llm.FormatResponses
	case p == "/v1/messages":
		return llm.FormatAnthropic
	case strings.HasPrefix(p, "/v1beta/models/"):
		return llm.FormatGemini
	}
	return ""
}

// maxBody is the largest request body the fake reads.
const maxBody = 32 << 20

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	f := formatOf(r.URL.Path)
	s.mu.Lock()
	skip := s.opts.SkipBodies && f != ""
	s.mu.Unlock()
	var body []byte
	var size int64
	if skip {
		size, _ = io.Copy(io.Discard, r.Body)
	} else {
		body = readBody(r)
		size = int64(len(body))
	}
	s.mu.Lock()
	if !s.opts.DisableRecording {
		s.recs = append(s.recs, Recorded{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header.Clone(), Body: body, Size: size, Format: f, Time: time.Now()})
		if n := len(s.recs) - s.opts.MaxRecorded; n > 0 {
			s.recs = append(s.recs[:0:0], s.recs[n:]...)
		}
	}
	s.mu.Unlock()

	switch {
	case r.URL.Path == "/api/models" && r.Method == http.MethodGet:
		s.serveCatalog(w)
		return
	case r.URL.Path == "/v1/models" && r.Method == http.MethodGet:
		s.serveModelList(w, r)
		return
	case f == "":
		writeJSONError(w, http.StatusNotFound, fmt.Sprintf("Invalid URL (%s %s)", r.Method, r.URL.Path), "invalid_request_error", "", "", s.reqID())
		return
	case r.Method != http.MethodPost:
		writeJSONError(w, http.StatusMethodNotAllowed, "method not allowed", "invalid_request_error", "", "", s.reqID())
		return
	}
	n := s.inFlight.Add(1)
	// A call stops being in flight just before its last bytes are written, so
	// a client that starts its next call after reading them never sees an
	// overlap that was not there.
	var once sync.Once
	end := func() { once.Do(func() { s.inFlight.Add(-1) }) }
	defer end()
	for {
		p := s.peak.Load()
		if n <= p || s.peak.CompareAndSwap(p, n) {
			break
		}
	}
	s.calls.Add(1)
	s.serveModel(w, r, f, body, skip, end)
}

// readBody reads a request body of up to maxBody bytes, sized from
// Content-Length when the client gave one.
func readBody(r *http.Request) []byte {
	var buf bytes.Buffer
	if n := r.ContentLength; n > 0 && n <= maxBody {
		buf.Grow(int(n) + 1)
	}
	buf.ReadFrom(io.LimitReader(r.Body, maxBody))
	return buf.Bytes()
}

func (s *Server) reqID() string {
	return fmt.Sprintf("fake-%d", s.seq.Add(1))
}

func (s *Server) authorized(r *http.Request, key string) bool {
	if key == "" {
		return true
	}
	if r.Header.Get("Authorization") == "Bearer "+key || r.Header.Get("x-api-key") == key ||
		r.Header.Get("x-goog-api-key") == key || r.URL.Query().Get("key") == key {
		return true
	}
	return false
}

// takeScript pops the first queued script matching path.
func (s *Server) takeScript(path string) (Script, Options, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, sc := range s.queue {
		if sc.Path == "" || strings.Contains(path, sc.Path) {
			s.queue = append(s.queue[:i:i], s.queue[i+1:]...)
			return sc, s.opts, true
		}
	}
	return Script{}, s.opts, false
}

func (s *Server) serveModel(w http.ResponseWriter, r *http.Request, f llm.Format, body []byte, skip bool, end func()) {
	id := s.reqID()
	w.Header().Set("X-Oneapi-Request-Id", id)
	s.mu.Lock()
	unsupported := s.unsupported[f]
	key := s.opts.APIKey
	s.mu.Unlock()
	if unsupported {
		end()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, "<!DOCTYPE html><html><head><title>404 Not Found</title></head><body><h1>Not Found</h1></body></html>")
		return
	}
	if !s.authorized(r, key) {
		end()
		writeJSONError(w, http.StatusUnauthorized, "Invalid token", "comet_api_error", "", "", id)
		return
	}
	var p Prompt
	var err error
	if skip {
		p = skimmedPrompt(f, r)
	} else {
		p, err = decodeRequest(f, r.URL.Path, body)
	}
	if err != nil {
		// Refused before any model sees it: no script is used up.
		end()
		var re *requestError
		if errors.As(err, &re) {
			writeFormatError(w, f, http.StatusBadRequest, re.msg, "invalid_request_error", re.param, re.code, id)
			return
		}
		writeFormatError(w, f, http.StatusBadRequest, "invalid JSON body: "+err.Error(), "invalid_request_error", "", "invalid_request", id)
		return
	}
	sc, opts, _ := s.takeScript(r.URL.Path)
	for k, vs := range sc.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	status := sc.Status
	if status == 0 {
		status = http.StatusOK
	}
	if sc.Body != "" {
		end()
		ct := sc.ContentType
		if ct == "" {
			ct = "application/json"
			if strings.HasPrefix(strings.TrimSpace(sc.Body), "<") {
				ct = "text/html; charset=utf-8"
			}
		}
		w.Header().Set("Content-Type", ct)
		w.WriteHeader(status)
		io.WriteString(w, sc.Body)
		return
	}
	if status >= 300 {
		end()
		msg := sc.ErrorMessage
		if msg == "" {
			msg = http.StatusText(status)
		}
		typ := sc.ErrorType
		if typ == "" {
			typ = "comet_api_error"
		}
		writeJSONError(w, status, msg, typ, sc.ErrorParam, sc.ErrorCode, id)
		return
	}
	a := s.answer(sc, opts, p)
	if !p.Stream {
		if sc.Stall {
			s.sleepUntil(r.Context(), time.Now().Add(24*time.Hour))
			return
		}
		s.writeWhole(r.Context(), w, f, p, a, end)
		return
	}
	s.writeStream(w, r, f, p, a, sc, end)
}

// answer is the planned answer of one call.
type answer struct {
	chunks    []string
	reasoning []string
	usage     llm.Usage
	stop      string
	noStop    bool
	ttft      time.Duration
	interval  time.Duration
	text      string
	images    []llm.Image
	snake     bool
	calls     []llm.ToolCall
	cites     []llm.Citation
}

func (s *Server) answer(sc Script, opts Options, p Prompt) answer {
	text := sc.Text
	if text == "" && sc.Chunks == nil && len(sc.ToolCalls) == 0 {
		text = opts.Reply
		if opts.Echo {
			text = "echo: " + p.LastUser()
		}
	}
	size := sc.ChunkSize
	if size <= 0 {
		size = opts.ChunkSize
	}
	a := answer{ttft: opts.TTFT, stop: sc.StopReason, noStop: sc.NoStopReason, images: sc.Images, snake: sc.SnakeCaseImages}
	if sc.TTFT > 0 {
		a.ttft = sc.TTFT
	}
	tps := opts.TokensPerSecond
	if sc.TokensPerSecond > 0 {
		tps = sc.TokensPerSecond
	}
	if tps > 0 {
		a.interval = time.Duration(float64(size) / tps * float64(time.Second))
	}
	if sc.Chunks != nil {
		a.chunks = sc.Chunks
		text = strings.Join(sc.Chunks, "")
	} else {
		a.chunks = SplitWords(text, size)
	}
	a.text = text
	if sc.Reasoning != "" {
		a.reasoning = SplitWords(sc.Reasoning, size)
	}
	a.cites = sc.Citations
	a.calls = s.toolCalls(sc.ToolCalls, p)
	if sc.Usage != nil {
		a.usage = *sc.Usage
	} else {
		a.usage = llm.Usage{InputTokens: max(1, p.wordCount()), OutputTokens: max(1, len(SplitWords(text+" "+sc.Reasoning, 1)))}
	}
	return a
}

// toolCalls returns the script's calls as the format sends them: ids made
// up where missing (none for Gemini), "{}" for empty arguments, and a
// thoughtSignature on the first call of a Gemini 3 model.
func (s *Server) toolCalls(calls []llm.ToolCall, p Prompt) []llm.ToolCall {
	if len(calls) == 0 {
		return nil
	}
	out := append([]llm.ToolCall(nil), calls...)
	signed := false
	for i := range out {
		c := &out[i]
		if len(strings.TrimSpace(string(c.Arguments))) == 0 {
			c.Arguments = json.RawMessage("{}")
		}
		signed = signed || c.Signature != ""
		if c.ID != "" {
			continue
		}
		n := strconv.FormatInt(s.seq.Add(1), 10)
		switch p.Format {
		case llm.FormatAnthropic:
			c.ID = "toolu_fake" + n
		case llm.FormatGemini:
		default:
			c.ID = "call_fake" + n
		}
	}
	if p.Format == llm.FormatGemini && !signed && geminiGeneration(p.Model) >= 3 {
		out[0].Signature = "fake_sig_" + strconv.FormatInt(s.seq.Add(1), 10)
	}
	return out
}

// SplitWords splits text into chunks of n words, each word keeping the
// whitespace before it, so that joining the chunks gives text back.
func SplitWords(text string, n int) []string {
	if n <= 0 {
		n = 1
	}
	if text == "" {
		return nil
	}
	var out []string
	start, words := 0, 0
	inSpace := true
	for i := 0; i < len(text); i++ {
		c := text[i]
		space := c == ' ' || c == '\n' || c == '\t' || c == '\r'
		if !space && inSpace {
			// a word starts at i; close the chunk before its leading space
			if words == n {
				j := i
				for j > start && isSpace(text[j-1]) {
					j--
				}
				out = append(out, text[start:j])
				start = j
				words = 0
			}
			words++
		}
		inSpace = space
	}
	out = append(out, text[start:])
	return out
}

func isSpace(c byte) bool { return c == ' ' || c == '\n' || c == '\t' || c == '\r' }

// writeFormatError writes an error in the shape of format f: Anthropic's
// {"type":"error","error":{...}}, Gemini's {"error":{"code","message",
// "status"}}, else the OpenAI-style gateway envelope.
func writeFormatError(w http.ResponseWriter, f llm.Format, status int, msg, typ, param, code, reqID string) {
	var v any
	switch f {
	case llm.FormatAnthropic:
		v = map[string]any{"type": "error", "error": map[string]any{"type": typ, "message": msg + " (request id: " + reqID + ")"}, "request_id": reqID}
	case llm.FormatGemini:
		st := "INVALID_ARGUMENT"
		if status != http.StatusBadRequest {
			st = strings.ToUpper(strings.ReplaceAll(http.StatusText(status), " ", "_"))
		}
		v = map[string]any{"error": map[string]any{"code": status, "message": msg + " (request id: " + reqID + ")", "status": st}}
	default:
		writeJSONError(w, status, msg, typ, param, code, reqID)
		return
	}
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}

func writeJSONError(w http.ResponseWriter, status int, msg, typ, param, code, reqID string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	e := map[string]any{"message": msg + " (request id: " + reqID + ")", "type": typ, "param": param, "code": code}
	if code == "" {
		e["code"] = nil
	}
	b, _ := json.Marshal(map[string]any{"error": e})
	w.Write(b)
}

func (s *Server) serveCatalog(w http.ResponseWriter) {
	s.mu.Lock()
	models := s.models
	status := s.catStatus
	s.mu.Unlock()
	if status != 0 && status != http.StatusOK {
		writeJSONError(w, status, "catalog unavailable", "comet_api_error", "", "", s.reqID())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(CatalogJSON(models))
}

// CatalogJSON renders models as the gateway's catalog document.
func CatalogJSON(models []llm.ModelInfo) []byte {
	type pricing struct {
		Currency   string   `json:"currency"`
		Input      float64  `json:"input"`
		Output     float64  `json:"output"`
		PerRequest *float64 `json:"per_request"`
		PerSecond  *float64 `json:"per_second"`
	}
	type rec struct {
		ID        string   `json:"id"`
		Provider  string   `json:"provider"`
		ModelType string   `json:"model_type"`
		Features  []string `json:"features"`
		Pricing   pricing  `json:"pricing"`
		APIDocURL string   `json:"api_doc_url"`
		Upcoming  bool     `json:"upcoming"`
		InputMods []string `json:"input_modalities,omitempty"`
	}
	recs := make([]rec, 0, len(models))
	for _, m := range models {
		f := m.Features
		if f == nil {
			f = []string{}
		}
		cur := m.Pricing.Currency
		if cur == "" {
			cur = "USD / M Tokens"
		}
		recs = append(recs, rec{ID: m.ID, Provider: m.Provider, ModelType: m.Type, Features: f, APIDocURL: m.APIDocURL, InputMods: m.InputModalities,
			Pricing: pricing{Currency: cur, Input: m.Pricing.Input, Output: m.Pricing.Output, PerRequest: m.Pricing.PerRequest, PerSecond: m.Pricing.PerSecond}})
	}
	b, _ := json.Marshal(map[string]any{"success": true, "page": 0, "page_size": 0, "total": len(recs), "data": recs})
	return b
}

func (s *Server) serveModelList(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	models := s.models
	key := s.opts.APIKey
	s.mu.Unlock()
	if !s.authorized(r, key) {
		writeJSONError(w, http.StatusUnauthorized, "Invalid token", "comet_api_error", "", "", s.reqID())
		return
	}
	var buf bytes.Buffer
	buf.WriteString(`{"object":"list","data":[`)
	for i, m := range models {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.WriteString(`{"id":`)
		buf.Write(appendJSONString(nil, m.ID))
		buf.WriteString(`,"object":"model","created":1700000000,"owned_by":`)
		buf.Write(appendJSONString(nil, strings.ToLower(m.Provider)))
		buf.WriteByte('}')
	}
	buf.WriteString(`]}`)
	w.Header().Set("Content-Type", "application/json")
	w.Write(buf.Bytes())
}
