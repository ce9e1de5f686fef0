package llm

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ErrorKind classifies a gateway failure by what a user or an admin can do
// about it.
type ErrorKind int

// The kinds of Error. KindUnknown is never produced by this package for a
// classified failure; it is the zero value.
const (
	KindUnknown     ErrorKind = iota
	KindAuth                  // 401/403: the API key is missing or wrong
	KindBaseURL               // 404/405, 3xx redirect, HTML body, unknown host: the base URL is wrong
	KindRateLimited           // 429: too many requests (retried)
	KindBadRequest            // 400/422 and other 4xx: the request (or one parameter) was refused
	KindServer                // 5xx, overloaded, connection failures, broken streams (retried before text)
	KindTimeout               // stall watchdog fired or the caller's deadline passed
	KindCancelled             // the caller's context was cancelled
	KindModel                 // the gateway does not know or cannot serve the model
	KindQuota                 // 402 or an exhausted quota/balance
	// KindIncomplete: the stream ended (or the gateway said the response is
	// incomplete) before the format's stop reason arrived — the answer was
	// cut. Error.Partial holds what arrived. Retried before any text.
	KindIncomplete
	// KindAttachment: the model refused an attached image or file (it cannot
	// read that kind of input, or it is too large). Never retried without
	// the attachment.
	KindAttachment
	// KindTools: the model or provider refused the tools of the request
	// (it cannot call functions, or a definition or the tool history was
	// refused), or a tool definition is invalid (checked before sending).
	// Never retried without the tools.
	KindTools
	// KindWebSearch: web search was asked for (Request.WebSearch) but is not
	// available: the format has none (Chat Completions: refused before
	// sending) or the model refused the search tool. Never retried without
	// it.
	KindWebSearch
)

var kindNames = [...]string{
	KindUnknown:     "unknown",
	KindAuth:        "auth",
	KindBaseURL:     "base-url",
	KindRateLimited: "rate-limited",
	KindBadRequest:  "bad-request",
	KindServer:      "server",
	KindTimeout:     "timeout",
	KindCancelled:   "cancelled",
	KindModel:       "model",
	KindQuota:       "quota",
	KindIncomplete:  "incomplete",
	KindAttachment:  "attachment",
	KindTools:       "tools",
	KindWebSearch:   "web-search",
}

// String returns the kind's short lower-case name, e.g. "rate-limited".
func (k ErrorKind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// sentinel is the type of the kind sentinels; errors.Is(err, ErrAuth) matches
// any *Error of kind KindAuth.
type sentinel struct{ kind ErrorKind }

func (s *sentinel) Error() string { return "llm: " + s.kind.String() }

// Sentinels for errors.Is. Each matches every *Error of its kind:
//
//	if errors.Is(err, llm.ErrRateLimited) { ... }
var (
	ErrAuth        error = &sentinel{KindAuth}
	ErrBaseURL     error = &sentinel{KindBaseURL}
	ErrRateLimited error = &sentinel{KindRateLimited}
	ErrBadRequest  error = &sentinel{KindBadRequest}
	ErrServer      error = &sentinel{KindServer}
	ErrTimeout     error = &sentinel{KindTimeout}
	ErrCancelled   error = &sentinel{KindCancelled}
	ErrModel       error = &sentinel{KindModel}
	ErrQuota       error = &sentinel{KindQuota}
	// ErrIncomplete matches a cut answer: a stream that ended without the
	// format's stop reason (chat finish_reason, Responses response.completed,
	// Anthropic stop_reason, Gemini finishReason), or a Responses
	// response.incomplete for a reason other than the output limit or the
	// content filter. The partial text and usage are in Error.Partial (and in
	// the Response returned with the error).
	ErrIncomplete error = &sentinel{KindIncomplete}
	// ErrAttachment: the model could not take an attached image or file.
	// The request is never retried without the attachment; pick a model
	// that accepts it (see ModelInfo.Accepts).
	ErrAttachment error = &sentinel{KindAttachment}
	// ErrTools: the tools offered (or the tool calls and results in the
	// history) were refused: by the provider (the model cannot call
	// functions), or before sending (a name outside [A-Za-z0-9_-]{1,64},
	// a name offered twice, parameters that are not a JSON Schema object).
	// The request is never retried without the tools.
	ErrTools error = &sentinel{KindTools}
	// ErrNoWebSearch: Request.WebSearch was set but the call has no web
	// search: Chat Completions has no built-in search (the call fails
	// before anything is sent, also after a native format fell back to
	// chat), or the model refused the search tool. Never answered without
	// the search.
	ErrNoWebSearch error = &sentinel{KindWebSearch}
)

// Error is the one error type of a failed gateway call. Use errors.Is with the
// Err* sentinels, or errors.As to read the details. Message never contains the
// API key (it is scrubbed) and is meant for logs and admins, not end users:
// see UserMessage for those.
type Error struct {
	// Kind classifies the failure.
	Kind ErrorKind
	// Status is the HTTP status (0 for connection failures, stalls and
	// cancellation; for an error inside a 200 stream, the status the error
	// carried, if any).
	Status int
	// Message is the gateway's (scrubbed) error message or a short
	// description of what went wrong.
	Message string
	// RequestID is the gateway's request id, when it gave one.
	RequestID string
	// Param is the request parameter the gateway named as the problem.
	Param string
	// Code is the gateway's machine-readable error code or type, when given.
	Code string
	// RetryAfter is the wait the gateway asked for (Retry-After), if any.
	RetryAfter time.Duration
	// Model is the model of the failed request.
	Model string
	// Format is the wire format of the failed attempt.
	Format Format
	// Attempts is how many HTTP attempts the call made.
	Attempts int
	// Partial is what arrived before the failure — text, reasoning, the
	// usage the gateway had reported, model — when answer or reasoning text
	// had reached the caller (Started); nil otherwise. It is the Response
	// returned together with the error. For KindIncomplete it is the cut
	// answer: show its text with a notice, store the turn as failed, count
	// its Usage.
	Partial *Response

	started       bool // text had reached the caller before the failure
	permanent     bool // retrying cannot help (an oversized stream event)
	formatProblem bool // the failure says the wire format/path is unsupported
	err           error
}

// Error returns a one-line description for logs, e.g.
// `llm: rate-limited: status 429: too many requests (request id 123)`.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("llm: ")
	b.WriteString(e.Kind.String())
	if e.Model != "" {
		b.WriteString(": model ")
		b.WriteString(e.Model)
	}
	if e.Format != "" {
		b.WriteString(" (")
		b.WriteString(string(e.Format))
		b.WriteString(")")
	}
	if e.Status != 0 {
		b.WriteString(": status ")
		b.WriteString(strconv.Itoa(e.Status))
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.Param != "" {
		b.WriteString(" [param ")
		b.WriteString(e.Param)
		b.WriteString("]")
	}
	if e.RequestID != "" && !strings.Contains(e.Message, e.RequestID) {
		b.WriteString(" (request id ")
		b.WriteString(e.RequestID)
		b.WriteString(")")
	}
	if e.started {
		b.WriteString(" [after partial output]")
	}
	if e.err != nil && e.Message == "" {
		b.WriteString(": ")
		b.WriteString(e.err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying cause (a network error, context.Canceled,
// context.DeadlineExceeded, ...), if any.
func (e *Error) Unwrap() error { return e.err }

// Is reports whether target is the sentinel of e's kind.
func (e *Error) Is(target error) bool {
	s, ok := target.(*sentinel)
	return ok && s.kind == e.Kind
}

// Started reports whether answer or reasoning text had already been passed
// to the caller's onDelta when the call failed. Such calls are never retried:
// the user has seen part of an answer.
func (e *Error) Started() bool { return e.started }

// Retryable reports whether the failure is transient (rate limit, server
// trouble, connection failure, a cut stream) — whether a later identical
// call may succeed.
func (e *Error) Retryable() bool {
	if e.permanent {
		return false
	}
	switch e.Kind {
	case KindRateLimited, KindIncomplete:
		return true
	case KindServer:
		return e.Status == 0 || retryableStatus(e.Status)
	}
	return false
}

func retryableStatus(s int) bool {
	switch s {
	case http.StatusTooManyRequests, http.StatusRequestTimeout,
		http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable,
		http.StatusGatewayTimeout, 520, 521, 522, 523, 524, 529:
		return true
	}
	return false
}

// UserMessage returns one short, friendly sentence for an end user about err:
// no secrets, no status codes, no JSON. It is meant to be posted in the chat
// in place of (or after) an answer. Unknown errors get a generic sentence.
func UserMessage(err error) string {
	if err == nil {
		return ""
	}
	var ce *CatalogError
	if errors.As(err, &ce) {
		s := ce.sentence()
		return strings.ToUpper(s[:1]) + s[1:] + "."
	}
	var e *Error
	kind := KindUnknown
	if errors.As(err, &e) {
		kind = e.Kind
	} else if errors.Is(err, context.Canceled) {
		kind = KindCancelled
	} else if errors.Is(err, context.DeadlineExceeded) {
		kind = KindTimeout
	}
	switch kind {
	case KindAuth:
		return "I can't reach the model: the gateway key is missing or wrong — please ask an admin to check it."
	case KindBaseURL:
		return "I can't reach the model: the base URL looks wrong; expected something like https://api.cometapi.com/v1."
	case KindRateLimited:
		return "The model is getting too many requests right now — please try again in a minute."
	case KindBadRequest:
		return "The model refused this request — try rephrasing it or picking another model."
	case KindServer:
		return "The model provider is having trouble right now — please try again shortly."
	case KindTimeout:
		return "The model stopped responding, so I gave up waiting — please try again."
	case KindCancelled:
		return "The request was cancelled."
	case KindModel:
		return "That model isn't available on the gateway — please pick another one."
	case KindQuota:
		return "The gateway account is out of credit or quota — please ask an admin to top it up."
	case KindIncomplete:
		return "The answer was cut off before the model finished — please try again."
	case KindAttachment:
		return "This model can't read the attached image or file — please try a model that accepts images or documents."
	case KindTools:
		return "This model can't use the tools it was offered — please try a model that supports tool calling."
	case KindWebSearch:
		return "This model can't search the web here — please try another model (GPT, Claude or Gemini through its native format) or ask without web search."
	}
	return "Something went wrong while talking to the model — please try again."
}

// errorBody is the gateway's JSON error envelope. It also covers the
// Anthropic ({"type":"error","error":{"type","message"}}), Gemini
// ({"error":{"code":400,"message","status"}}) and Responses
// ({"type":"error","code","message"}) shapes.
type errorBody struct {
	Error   json.RawMessage `json:"error"`
	Message string          `json:"message"`
	Code    json.RawMessage `json:"code"`
	Type    string          `json:"type"`
	Param   string          `json:"param"`
}

type errorDetail struct {
	Message string          `json:"message"`
	Type    string          `json:"type"`
	Param   string          `json:"param"`
	Code    json.RawMessage `json:"code"`
	Status  string          `json:"status"`
}

// parsedError is a decoded gateway error object.
type parsedError struct {
	Message string
	Type    string
	Param   string
	Code    string
	Status  int // numeric code (Gemini uses HTTP codes), when given
}

// parseErrorJSON decodes any of the known error shapes. ok is false when data
// holds no recognisable error.
func parseErrorJSON(data []byte) (pe parsedError, ok bool) {
	var b errorBody
	if json.Unmarshal(data, &b) != nil {
		return pe, false
	}
	if len(b.Error) > 0 && string(b.Error) != "null" {
		var d errorDetail
		if json.Unmarshal(b.Error, &d) == nil {
			pe = parsedError{Message: d.Message, Type: d.Type, Param: d.Param}
			pe.Code, pe.Status = rawCode(d.Code)
			if pe.Code == "" {
				pe.Code = d.Status
			}
			if pe.Code == "" {
				pe.Code = d.Type
			}
			return pe, true
		}
		var s string
		if json.Unmarshal(b.Error, &s) == nil && s != "" {
			return parsedError{Message: s}, true
		}
	}
	if b.Type == "error" || b.Message != "" {
		pe = parsedError{Message: b.Message, Type: b.Type, Param: b.Param}
		pe.Code, pe.Status = rawCode(b.Code)
		return pe, b.Message != "" || pe.Code != ""
	}
	return pe, false
}

func rawCode(raw json.RawMessage) (string, int) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", 0
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, 0
	}
	var n int
	if json.Unmarshal(raw, &n) == nil {
		return strconv.Itoa(n), n
	}
	return "", 0
}

var requestIDRe = regexp.MustCompile(`(?i)request[ _-]?id[:=]?\s*([A-Za-z0-9._:-]+)`)

// requestIDFrom finds the request id in response headers or in a message
// such as "... (request id: 2025...)".
func requestIDFrom(h http.Header, msg string) string {
	for _, k := range []string{"X-Request-Id", "X-Oneapi-Request-Id", "Request-Id", "X-Cometapi-Request-Id"} {
		if v := h.Get(k); v != "" {
			return v
		}
	}
	if m := requestIDRe.FindStringSubmatch(msg); m != nil {
		return strings.TrimRight(m[1], ".:")
	}
	return ""
}

// parseRetryAfter reads a Retry-After header (seconds or an HTTP date), or
// the OpenAI-style retry-after-ms header.
func parseRetryAfter(h http.Header, now time.Time) time.Duration {
	if v := h.Get("Retry-After-Ms"); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms > 0 {
			return time.Duration(ms * float64(time.Millisecond))
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		if s <= 0 {
			return 0
		}
		return time.Duration(s * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// knownParams are the optional request parameters (in every format's
// spelling) that a provider may reject.
var knownParams = []string{
	"max_completion_tokens", "max_output_tokens", "max_tokens", "maxOutputTokens",
	"temperature", "top_p", "topP", "stream_options", "include_usage",
}

// paramFrom returns the optional parameter a 400 names: the error's param
// field, or a known parameter mentioned in the message.
func paramFrom(pe parsedError) string {
	if pe.Param != "" {
		return pe.Param
	}
	lm := strings.ToLower(pe.Message)
	for _, p := range knownParams {
		if strings.Contains(lm, strings.ToLower(p)) {
			return p
		}
	}
	return ""
}

// scrubber removes the API key, the other secrets it was given (user info
// from the base URL) and anything that looks like a key from text.
type scrubber struct{ secrets []string }

// newScrubber returns a scrubber for these secrets; empty ones and ones
// shorter than 4 bytes (too common to replace) are ignored.
func newScrubber(secrets ...string) scrubber {
	var s scrubber
	for _, x := range secrets {
		if len(x) >= 4 && !slices.Contains(s.secrets, x) {
			s.secrets = append(s.secrets, x)
		}
	}
	return s
}

var keyLikeRe = regexp.MustCompile(`\b(sk-|Bearer\s+)[A-Za-z0-9_\-.]{8,}`)

func (s scrubber) clean(msg string) string {
	for _, x := range s.secrets {
		if strings.Contains(msg, x) {
			msg = strings.ReplaceAll(msg, x, "[redacted]")
		}
	}
	if strings.Contains(msg, "sk-") || strings.Contains(msg, "Bearer") {
		msg = keyLikeRe.ReplaceAllString(msg, "${1}[redacted]")
	}
	if len(msg) > 500 {
		msg = msg[:500] + "…"
	}
	return msg
}

// isHTML reports whether a response looks like a web page rather than an API answer.
func isHTML(contentType string, body []byte) bool {
	if strings.Contains(strings.ToLower(contentType), "text/html") {
		return true
	}
	t := strings.TrimSpace(string(body[:min(len(body), 64)]))
	return strings.HasPrefix(t, "<") && !strings.HasPrefix(t, "<?xml")
}

// classifyHTTP builds the Error for a non-success HTTP answer (or a 200 that
// carries an HTML page or a JSON error).
func (c *Client) classifyHTTP(resp *http.Response, body []byte) *Error {
	e := &Error{Status: resp.StatusCode}
	ct := resp.Header.Get("Content-Type")
	pe, hasJSON := parseErrorJSON(body)
	if hasJSON {
		e.Message = c.scrub.clean(pe.Message)
		e.Code = pe.Code
		e.Param = pe.Param
	}
	e.RequestID = requestIDFrom(resp.Header, pe.Message)
	e.RetryAfter = parseRetryAfter(resp.Header, time.Now())
	s := resp.StatusCode
	// An HTML page below 500 means the base URL points at a web site; an
	// HTML 5xx is usually a proxy's (Cloudflare's) error page: transient.
	html := !hasJSON && isHTML(ct, body) && s < 500
	lowMsg := strings.ToLower(pe.Message + " " + pe.Code + " " + pe.Type)
	switch {
	case s >= 300 && s < 400:
		e.Kind = KindBaseURL
		e.formatProblem = true
		if e.Message == "" {
			e.Message = "redirected to " + c.scrub.clean(safeURL(resp.Header.Get("Location")))
		}
	case html:
		e.Kind = KindBaseURL
		e.formatProblem = true
		e.Message = "the gateway answered with an HTML page"
	case s == http.StatusUnauthorized || s == http.StatusForbidden:
		e.Kind = KindAuth
		if strings.Contains(lowMsg, "quota") || strings.Contains(lowMsg, "balance") || strings.Contains(lowMsg, "insufficient") {
			e.Kind = KindQuota
		}
	case s == http.StatusPaymentRequired:
		e.Kind = KindQuota
	case s == http.StatusNotFound || s == http.StatusMethodNotAllowed:
		e.Kind = KindBaseURL
		e.formatProblem = true
		if hasJSON && mentionsModel(lowMsg) {
			e.Kind = KindModel
		}
	case s == http.StatusTooManyRequests:
		e.Kind = KindRateLimited
		if strings.Contains(lowMsg, "insufficient_quota") || strings.Contains(lowMsg, "quota exceeded") || strings.Contains(lowMsg, "balance") {
			e.Kind = KindQuota
		}
	case s == http.StatusRequestTimeout:
		e.Kind = KindServer
	case s >= 500:
		e.Kind = KindServer
		if hasJSON && mentionsModel(lowMsg) && (strings.Contains(lowMsg, "no available channel") || strings.Contains(lowMsg, "not found") || strings.Contains(lowMsg, "not exist")) {
			e.Kind = KindModel
		}
	case s >= 400:
		e.Kind = KindBadRequest
		if hasJSON {
			if strings.Contains(lowMsg, "model_not_found") || (mentionsModel(lowMsg) && (strings.Contains(lowMsg, "not found") || strings.Contains(lowMsg, "does not exist") || strings.Contains(lowMsg, "no available channel") || strings.Contains(lowMsg, "not supported model"))) {
				e.Kind = KindModel
			} else if e.Param == "" {
				e.Param = paramFrom(pe)
			}
		}
	default:
		e.Kind = KindServer
	}
	if e.Message == "" && !html {
		e.Message = http.StatusText(s)
		if t := strings.TrimSpace(string(body)); t != "" && len(t) < 200 && !strings.ContainsAny(t, "{<") {
			e.Message = c.scrub.clean(t)
		}
	}
	return e
}

// attachmentWords mark an error about an image or file input.
var attachmentWords = []string{"image", "vision", "multimodal", "multi-modal", "pdf", "document", "file", "inline_data",
	"inlinedata", "mime", "media_type", "attachment", "base64", "data url", "data uri"}

// attachmentRefused reports whether a refused request that carried images
// or files was refused because of them: a 413, or an error naming an
// attachment parameter or talking about images, files or media types. An
// error naming an optional parameter (temperature, ...) is not: it goes to
// the parameter retry, which keeps the attachments.
func attachmentRefused(e *Error) bool {
	if paramBit(e.Param) != 0 {
		return false
	}
	if e.Status == http.StatusRequestEntityTooLarge {
		return true
	}
	low := strings.ToLower(e.Param + " " + e.Code + " " + e.Message)
	for _, w := range attachmentWords {
		if strings.Contains(low, w) {
			return true
		}
	}
	return false
}

// toolErrorWords mark an error about tools or function calling;
// searchErrorWords one about the built-in web search.
var (
	toolErrorWords   = []string{"tool", "function"}
	searchErrorWords = []string{"web_search", "web search", "google_search", "googlesearch", "grounding", "search"}
)

// toolsRefusal returns the kind of a refused request that used tools or web
// search when it was refused because of them (KindTools, KindWebSearch), or
// KindUnknown: an error naming a tool or search parameter, or talking about
// tools, functions or search. An error naming an optional parameter
// (temperature, ...) is not: it goes to the parameter retry, which keeps the
// tools.
func toolsRefusal(e *Error, req *Request) ErrorKind {
	if !req.usesTools() || paramBit(e.Param) != 0 {
		return KindUnknown
	}
	low := strings.ToLower(e.Param + " " + e.Code + " " + e.Message)
	if req.WebSearch {
		for _, w := range searchErrorWords {
			if strings.Contains(low, w) {
				return KindWebSearch
			}
		}
	}
	for _, w := range toolErrorWords {
		if strings.Contains(low, w) {
			return KindTools
		}
	}
	return KindUnknown
}

func mentionsModel(low string) bool {
	return strings.Contains(low, "model")
}

// classifyStreamError builds the Error for an error object that arrived
// inside a 200 stream.
func (c *Client) classifyStreamError(pe parsedError) *Error {
	e := &Error{Message: c.scrub.clean(pe.Message), Code: pe.Code, Param: pe.Param, Status: pe.Status}
	e.RequestID = requestIDFrom(http.Header{}, pe.Message)
	low := strings.ToLower(pe.Code + " " + pe.Type + " " + pe.Message)
	switch {
	case pe.Status == 401 || pe.Status == 403 || strings.Contains(low, "authentication") || strings.Contains(low, "permission"):
		e.Kind = KindAuth
	case pe.Status == 429 || strings.Contains(low, "rate_limit") || strings.Contains(low, "rate limit") || strings.Contains(low, "resource_exhausted"):
		e.Kind = KindRateLimited
	case pe.Status == 400 || strings.Contains(low, "invalid_request") || strings.Contains(low, "invalid_argument"):
		e.Kind = KindBadRequest
		if e.Param == "" {
			e.Param = paramFrom(pe)
		}
	default:
		// overloaded_error, server_error, api_error, INTERNAL, UNAVAILABLE, ...
		e.Kind = KindServer
	}
	if e.Message == "" {
		e.Message = "error event in the stream"
		if pe.Code != "" {
			e.Message += " (" + pe.Code + ")"
		}
	}
	return e
}

// classifyTransport builds the Error for a failed round trip or body read.
// stalled reports that the watchdog cancelled the attempt.
func (c *Client) classifyTransport(ctx context.Context, err error, stalled bool) *Error {
	switch {
	case stalled:
		return &Error{Kind: KindTimeout, Message: fmt.Sprintf("no answer from the gateway for %s (keep-alives do not count)", c.stall), err: errStalled}
	case ctx.Err() != nil:
		cause := context.Cause(ctx)
		if errors.Is(cause, context.DeadlineExceeded) {
			return &Error{Kind: KindTimeout, Message: "deadline exceeded", err: cause}
		}
		return &Error{Kind: KindCancelled, Message: "cancelled", err: cause}
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
		return &Error{Kind: KindBaseURL, Message: "unknown host " + dnsErr.Name, err: err}
	}
	var certErr *x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	if errors.As(err, &certErr) || errors.As(err, &hostErr) {
		return &Error{Kind: KindBaseURL, Message: "TLS certificate problem", err: err}
	}
	msg := "connection failed"
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		msg = "connection closed by the gateway"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		msg = "network timeout"
	}
	return &Error{Kind: KindServer, Message: msg + ": " + c.scrub.clean(redactURLError(err)), err: err}
}

// redactURLError renders err with the URL a *url.Error carries reduced by
// safeURL: keys travel in headers, but a base URL may carry one anyway.
func redactURLError(err error) string {
	msg := err.Error()
	var ue *url.Error
	if errors.As(err, &ue) && ue.URL != "" {
		msg = strings.ReplaceAll(msg, ue.URL, safeURL(ue.URL))
	}
	return msg
}

// transportCause renders a failed round trip without the request URL: the
// cause inside a *url.Error.
func transportCause(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return err.Error()
}

// safeURL returns raw without user info, query and fragment, where secrets
// hide (https://KEY@host, ?key=KEY).
func safeURL(raw string) string {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return "(an invalid URL)"
	}
	u.User = nil
	u.RawQuery, u.ForceQuery = "", false
	u.Fragment, u.RawFragment = "", ""
	return u.String()
}

// errStalled is the cancellation cause set by the stall watchdog.
var errStalled = errors.New("llm: stream stalled")
