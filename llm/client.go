package llm

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/cometbot/cometbot/llm/sse"
)

// DefaultBaseURL is the CometAPI gateway's OpenAI-compatible base URL.
const DefaultBaseURL = "https://api.cometapi.com/v1"

// Defaults for Config fields left zero.
const (
	DefaultMaxConcurrency = 16
	DefaultStallTimeout   = 60 * time.Second
	DefaultRetryDeadline  = 60 * time.Second
	DefaultRetryBase      = time.Second
	DefaultRetryMaxDelay  = 30 * time.Second
)

// Config configures a Client. Only APIKey is usually set; everything else has
// a sensible default.
type Config struct {
	// BaseURL is the OpenAI-compatible base, default https://api.cometapi.com/v1.
	// The Anthropic (/v1/messages) and Gemini (/v1beta/...) paths hang off the
	// host: BaseURL with a trailing /v1 removed. A query is refused; user
	// info (https://KEY@host/v1) is removed from every request and redacted
	// from every error and log, and is used as the API key when APIKey is
	// empty.
	BaseURL string
	// APIKey is the gateway key. It is sent in headers only and never appears
	// in errors or logs.
	APIKey string
	// MaxConcurrency is the global limit on in-flight gateway calls, default 16.
	// After a 429 the effective limit is lowered and then recovers slowly.
	MaxConcurrency int
	// StallTimeout cancels an attempt that receives no headers, or then no
	// content, for this long, default 60s. In a stream, content is answer or
	// reasoning text that is not only whitespace, a tool call (its start or
	// an argument fragment), web search activity, a citation or new usage
	// numbers: keep-alive comments, pings and empty chunks do not count, so
	// a model that thinks silently for longer needs a larger value.
	StallTimeout time.Duration
	// RetryDeadline is the total time budget for retries of one call, counted
	// from the call's start, default 60s. A retry whose wait would end after
	// the budget is not made.
	RetryDeadline time.Duration
	// RetryBase is the first backoff step (doubling per retry, with jitter),
	// default 1s.
	RetryBase time.Duration
	// RetryMaxDelay caps one backoff wait (Retry-After is still honoured up to
	// the deadline), default 30s.
	RetryMaxDelay time.Duration
	// HTTPClient is the HTTP client; nil means a tuned default. Its
	// CheckRedirect is overridden on a copy: redirects are reported as a base
	// URL problem, never followed. Its Timeout should be 0 (streams are long;
	// the stall watchdog and contexts bound them).
	HTTPClient *http.Client
	// Logger receives retry, fallback and parameter-rejection notes; nil
	// discards them.
	Logger *slog.Logger
	// Catalog, optional, supplies model providers and features for routing.
	Catalog *Catalog
	// Routes override the format per model; the first matching Route wins.
	Routes []Route
	// UserAgent is sent as User-Agent; default "cometbot-llm".
	UserAgent string
	// Metrics receives one report per gateway request and per retry; nil
	// reports nothing.
	Metrics Metrics
}

// Metrics receives the client's reports for monitoring (internal/metrics
// implements it). Every label is bounded: a wire format, a status code, a
// reason from a fixed set.
type Metrics interface {
	// GatewayRequest reports one HTTP request to the gateway and its status
	// code; 0 means no response (a transport error or timeout).
	GatewayRequest(format string, status int)
	// GatewayRetry reports a call made again and why: an error kind
	// (ErrorKind.String, e.g. "rate-limited"), "format-fallback" or
	// "param-rejected".
	GatewayRetry(reason string)
}

// String returns a description of the configuration with the API key redacted,
// so that printing or logging a Config never leaks it.
func (c Config) String() string {
	key := "(none)"
	if c.APIKey != "" {
		key = "[redacted]"
	}
	base := c.BaseURL
	if base != "" {
		base = safeURL(base)
	}
	return fmt.Sprintf("llm.Config{BaseURL:%q APIKey:%s MaxConcurrency:%d StallTimeout:%s RetryDeadline:%s Routes:%v}",
		base, key, c.MaxConcurrency, c.StallTimeout, c.RetryDeadline, c.Routes)
}

// GoString is String, for %#v.
func (c Config) GoString() string { return c.String() }

// LogValue implements slog.LogValuer with the API key redacted.
func (c Config) LogValue() slog.Value { return slog.StringValue(c.String()) }

// Route forces a wire format for the models it matches.
type Route struct {
	// Pattern is an exact model id or a path.Match glob ("claude-*",
	// "*-thinking"), matched case-insensitively.
	Pattern string
	// Format is the wire format for matching models.
	Format Format
}

// Client calls the gateway. It is safe for concurrent use.
type Client struct {
	base          string // OpenAI-compatible base, no trailing slash
	host          string // base without a trailing /v1
	key           string
	hc            *http.Client
	log           *slog.Logger
	catalog       *Catalog
	routes        []Route
	stall         time.Duration
	retryDeadline time.Duration
	retryBase     time.Duration
	retryMax      time.Duration
	ua            string
	lim           *limiter
	scrub         scrubber
	mx            Metrics // nil: no metrics

	mu       sync.Mutex
	fallback map[string]Format   // lower-case model -> format forced after a native failure
	rejected map[string]paramSet // lower-case model -> optional parameters it rejects
}

// NewClient checks cfg and returns a Client.
func NewClient(cfg Config) (*Client, error) {
	base := strings.TrimSpace(cfg.BaseURL)
	if base == "" {
		base = DefaultBaseURL
	}
	base = strings.TrimRight(base, "/")
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("llm: base URL %q: want something like %s", safeURL(base), DefaultBaseURL)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return nil, fmt.Errorf("llm: base URL %q must not carry a query or fragment (give the API key separately, not in the URL)", safeURL(base))
	}
	key := cfg.APIKey
	var secrets []string
	if u.User != nil {
		// A key in the user info: never sent in the URL, never printed.
		name := u.User.Username()
		pass, _ := u.User.Password()
		// Both decoded and as written (percent-encoded) in the URL.
		secrets = append(secrets, name, pass, url.User(name).String(), strings.TrimPrefix(url.UserPassword("", pass).String(), ":"))
		if key == "" {
			key = cmp.Or(pass, name)
		}
		u.User = nil
		base = u.String()
	}
	for i, r := range cfg.Routes {
		if _, err := path.Match(strings.ToLower(r.Pattern), ""); err != nil || r.Pattern == "" {
			return nil, fmt.Errorf("llm: route %d: bad pattern %q", i, r.Pattern)
		}
		if !r.Format.valid() {
			return nil, fmt.Errorf("llm: route %d (%s): unknown format %q (want chat, responses, anthropic or gemini)", i, r.Pattern, r.Format)
		}
	}
	c := &Client{
		base:          base,
		host:          hostOf(base),
		key:           key,
		log:           cfg.Logger,
		catalog:       cfg.Catalog,
		routes:        append([]Route(nil), cfg.Routes...),
		stall:         orDefault(cfg.StallTimeout, DefaultStallTimeout),
		retryDeadline: orDefault(cfg.RetryDeadline, DefaultRetryDeadline),
		retryBase:     orDefault(cfg.RetryBase, DefaultRetryBase),
		retryMax:      orDefault(cfg.RetryMaxDelay, DefaultRetryMaxDelay),
		ua:            cfg.UserAgent,
		mx:            cfg.Metrics,
		scrub:         newScrubber(append(secrets, key)...),
		fallback:      map[string]Format{},
		rejected:      map[string]paramSet{},
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.ua == "" {
		c.ua = "cometbot-llm"
	}
	n := cfg.MaxConcurrency
	if n <= 0 {
		n = DefaultMaxConcurrency
	}
	c.lim = newLimiter(n)
	if cfg.HTTPClient != nil {
		hc := *cfg.HTTPClient
		c.hc = &hc
	} else {
		c.hc = &http.Client{Transport: defaultTransport(n)}
	}
	c.hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c, nil
}

func defaultTransport(n int) *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 15 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          max(100, 2*n),
		MaxIdleConnsPerHost:   max(16, 2*n),
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   15 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// hostOf removes a trailing /v1 from an OpenAI-compatible base URL.
func hostOf(base string) string {
	base = strings.TrimRight(base, "/")
	if strings.HasSuffix(base, "/v1") {
		return strings.TrimSuffix(base, "/v1")
	}
	return base
}

// CatalogURLFor returns the model catalog URL for an OpenAI-compatible base
// URL: the base without user info or query (the catalog needs no key) and
// with a trailing /v1 removed, plus /api/models. An empty base means
// DefaultBaseURL.
func CatalogURLFor(baseURL string) string {
	baseURL = strings.TrimSpace(baseURL)
	if baseURL == "" {
		baseURL = DefaultBaseURL
	}
	if u, err := url.Parse(baseURL); err == nil && u.Host != "" {
		baseURL = safeURL(baseURL)
	}
	return hostOf(baseURL) + "/api/models"
}

func (f Format) valid() bool {
	switch f {
	case FormatChat, FormatResponses, FormatAnthropic, FormatGemini:
		return true
	}
	return false
}

// ConcurrencyStats reports the current adaptive concurrency limit, the calls
// in flight, and the highest number of calls ever in flight at once.
func (c *Client) ConcurrencyStats() (limit, inFlight, peak int) { return c.lim.stats() }

// Stream makes one streamed model call. Every piece of answer or reasoning
// text is passed to onDelta as it arrives (onDelta may be nil); if onDelta
// returns an error the call stops and returns that error as is. On success the
// Response holds the whole text, stop reason and usage.
//
// Failures are *Error values (see errors.Is with ErrAuth, ErrRateLimited, ...).
// Transient failures before any text reached onDelta are retried within the
// retry deadline; after text has started, the error is returned with
// Started() true, together with a Response holding the partial text (the
// same as Error.Partial). A stream that ends without the format's stop
// reason is a cut answer: ErrIncomplete. Stopping at the model's output
// limit is not an error (Response.Truncated), nor is stopping at
// Request.MaxAnswerChars (Response.Cut).
func (c *Client) Stream(ctx context.Context, req Request, onDelta func(Delta) error) (*Response, error) {
	return c.call(ctx, req, true, onDelta)
}

// Complete makes one non-streaming model call and returns the whole answer.
// Errors and retries are as for Stream.
func (c *Client) Complete(ctx context.Context, req Request) (*Response, error) {
	return c.call(ctx, req, false, nil)
}

// abortError carries the caller's onDelta error out of a decoder.
type abortError struct{ err error }

func (a *abortError) Error() string { return a.err.Error() }

func (c *Client) call(ctx context.Context, req Request, stream bool, onDelta func(Delta) error) (*Response, error) {
	if req.Model == "" {
		return nil, &Error{Kind: KindBadRequest, Message: "no model given"}
	}
	if onDelta == nil {
		onDelta = func(Delta) error { return nil }
	}
	start := time.Now()
	deadline := start.Add(c.retryDeadline)
	f := c.FormatFor(req.Model)
	drop := c.rejectedParams(req.Model)
	paramRetried := false
	attempts := 0
	for retry := 0; ; {
		attempts++
		st := &streamState{c: c, onDelta: onDelta, maxChars: req.MaxAnswerChars, maxEvent: c.streamEventLimit(req.Model)}
		resp, err := c.attempt(ctx, f, &req, stream, drop, st)
		if err == nil {
			c.lim.succeeded()
			return resp, nil
		}
		if a, ok := err.(*abortError); ok {
			return st.partial(f), a.err
		}
		var e *Error
		if !errors.As(err, &e) {
			e = &Error{Kind: KindServer, Message: c.scrub.clean(err.Error()), err: err}
		}
		e.Model, e.Format, e.Attempts = req.Model, f, attempts
		if st.started {
			e.started = true
			e.Partial = st.partial(f)
			return e.Partial, e
		}
		if e.Kind == KindCancelled || (e.Kind == KindTimeout && ctx.Err() != nil) {
			return nil, e
		}
		if f != FormatChat && e.formatProblem {
			c.rememberFallback(req.Model, f, e)
			f = FormatChat
			if c.mx != nil {
				c.mx.GatewayRetry("format-fallback")
			}
			continue
		}
		if e.Kind == KindBadRequest {
			if k := toolsRefusal(e, &req); k != KindUnknown {
				// Never retried without the tools or the search: an
				// answer without them would mislead the user.
				e.Kind = k
				return nil, e
			}
		}
		if e.Kind == KindBadRequest && req.hasAttachments() && attachmentRefused(e) {
			// Never retried without the attachment: answering as if it
			// were not there would mislead the user.
			e.Kind = KindAttachment
			return nil, e
		}
		if e.Kind == KindBadRequest && e.Param != "" && !paramRetried {
			if bit := paramBit(e.Param); bit != 0 && sentParams(&req, f, stream)&^drop&bit != 0 {
				paramRetried = true
				c.rememberRejected(req.Model, bit, e)
				drop = allParams
				if c.mx != nil {
					c.mx.GatewayRetry("param-rejected")
				}
				continue
			}
		}
		if !e.Retryable() {
			return nil, e
		}
		if e.Kind == KindRateLimited {
			c.lim.rateLimited(time.Now())
		}
		wait := c.backoff(retry, e.RetryAfter)
		retry++
		if time.Until(deadline) < wait {
			c.log.Warn("llm: giving up", "model", req.Model, "format", f, "kind", e.Kind.String(), "status", e.Status,
				"request_id", e.RequestID, "attempts", attempts, "elapsed", time.Since(start).Round(time.Millisecond))
			return nil, e
		}
		if c.mx != nil {
			c.mx.GatewayRetry(e.Kind.String())
		}
		c.log.Info("llm: retrying", "model", req.Model, "format", f, "kind", e.Kind.String(), "status", e.Status,
			"request_id", e.RequestID, "attempt", attempts, "wait", wait.Round(time.Millisecond))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, c.classifyTransport(ctx, ctx.Err(), false).with(req.Model, f, attempts)
		case <-t.C:
		}
	}
}

func (e *Error) with(model string, f Format, attempts int) *Error {
	e.Model, e.Format, e.Attempts = model, f, attempts
	return e
}

// backoff returns the wait before retry number n (0-based): Retry-After when
// the gateway gave one, else min(RetryMaxDelay, RetryBase·2^n) with jitter
// in [50%, 100%].
func (c *Client) backoff(n int, retryAfter time.Duration) time.Duration {
	if retryAfter > 0 {
		return retryAfter + rand.N(retryAfter/10+time.Millisecond)
	}
	d := c.retryBase
	for i := 0; i < n && d < c.retryMax; i++ {
		d *= 2
	}
	d = min(d, c.retryMax)
	return d/2 + rand.N(d/2+1)
}

func (c *Client) rememberFallback(model string, from Format, e *Error) {
	c.mu.Lock()
	c.fallback[strings.ToLower(model)] = FormatChat
	c.mu.Unlock()
	c.log.Warn("llm: native format failed, falling back to chat completions for this model",
		"model", model, "format", from, "status", e.Status, "reason", e.Message)
}

func (c *Client) rememberRejected(model string, bit paramSet, e *Error) {
	c.mu.Lock()
	c.rejected[strings.ToLower(model)] |= bit
	c.mu.Unlock()
	c.log.Warn("llm: model rejected a parameter; retrying without optional parameters and remembering it",
		"model", model, "param", e.Param, "request_id", e.RequestID)
}

func (c *Client) rejectedParams(model string) paramSet {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rejected[strings.ToLower(model)]
}

// attempt makes one HTTP attempt. It holds a concurrency slot for its whole
// duration and runs the stall watchdog.
func (c *Client) attempt(ctx context.Context, f Format, req *Request, stream bool, drop paramSet, st *streamState) (*Response, error) {
	w := wireFor(f)
	body, err := w.encode(req, stream, drop)
	if err != nil {
		var e *Error
		if errors.As(err, &e) { // refused before sending (checkTools)
			return nil, e
		}
		return nil, &Error{Kind: KindBadRequest, Message: "encode request: " + err.Error(), err: err}
	}
	if err := c.lim.acquire(ctx); err != nil {
		return nil, c.classifyTransport(ctx, err, false)
	}
	defer c.lim.release()

	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	wd := time.AfterFunc(c.stall, func() { cancel(errStalled) })
	defer wd.Stop()
	stalled := func() bool { return context.Cause(actx) == errStalled && ctx.Err() == nil }

	hreq, err := http.NewRequestWithContext(actx, http.MethodPost, w.url(c, req.Model, stream), nil)
	if err != nil {
		return nil, &Error{Kind: KindBaseURL, Message: "build request: " + c.scrub.clean(err.Error())}
	}
	body.attach(hreq)
	h := hreq.Header
	h.Set("Content-Type", "application/json")
	if stream {
		h.Set("Accept", "text/event-stream")
	} else {
		h.Set("Accept", "application/json")
	}
	h.Set("User-Agent", c.ua)
	w.auth(h, c.key)

	resp, err := c.hc.Do(hreq)
	if c.mx != nil {
		status := 0
		if err == nil {
			status = resp.StatusCode
		}
		c.mx.GatewayRequest(string(f), status)
	}
	if err != nil {
		return nil, c.classifyTransport(actx, err, stalled())
	}
	defer resp.Body.Close()
	wd.Reset(c.stall)
	st.wd, st.stall = wd, c.stall
	rd := &activityReader{r: resp.Body, t: wd, d: c.stall}

	ct := strings.ToLower(resp.Header.Get("Content-Type"))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b, rerr := io.ReadAll(io.LimitReader(rd, 64<<10))
		if rerr != nil && len(b) == 0 && stalled() {
			return nil, c.classifyTransport(actx, rerr, true)
		}
		return nil, c.classifyHTTP(resp, b)
	}
	st.resp.Format = f
	st.reqID = requestIDFrom(resp.Header, "")
	if strings.Contains(ct, "text/event-stream") || (ct == "" && stream) {
		// In a stream only content resets the watchdog (streamState.progress):
		// keep-alive comments, pings and empty chunks do not, so a stream
		// that sends nothing else is cut after StallTimeout.
		err = c.readStream(actx, w, resp.Body, st)
	} else {
		var b []byte
		b, err = io.ReadAll(io.LimitReader(rd, 32<<20))
		if err == nil {
			err = c.readBody(actx, w, resp, b, st)
		}
	}
	if err == errMaxAnswer {
		// Stop reading: returning closes the body and cancels the request.
		r := st.finish()
		r.StopReason = StopMaxAnswerChars
		r.ToolCalls = nil // an unfinished step: nothing to run
		return r, nil
	}
	if err != nil {
		var e *Error
		if _, ok := err.(*abortError); ok {
			return nil, err
		}
		if !errors.As(err, &e) {
			e = c.classifyTransport(actx, err, stalled())
		}
		if e.RequestID == "" {
			e.RequestID = st.reqID
		}
		return nil, e
	}
	return st.finish(), nil
}

// maxStreamEvent bounds one SSE line and one event's data: a larger event is
// refused with an error rather than buffered.
const maxStreamEvent = sse.DefaultMaxEventSize

// readStream feeds SSE events to the format's decoder until it reports the
// end of the answer or the body ends.
func (c *Client) readStream(ctx context.Context, w wire, body io.Reader, st *streamState) error {
	r := sse.NewReader(body)
	limit := cmp.Or(st.maxEvent, maxStreamEvent)
	r.SetMaxEventSize(limit)
	for {
		ev, err := r.Next()
		if err == io.EOF {
			return st.end(false)
		}
		if err != nil {
			if ctx.Err() != nil {
				return err // classified by the caller (stall, cancel)
			}
			if errors.Is(err, sse.ErrTooLarge) {
				return &Error{Kind: KindServer, Message: fmt.Sprintf("a stream event larger than %d MiB: refused", limit>>20), permanent: true, err: err}
			}
			return err
		}
		st.events++
		done, err := w.streamEvent(st, ev)
		if err != nil {
			return err
		}
		if done {
			return st.end(true)
		}
	}
}

// end checks, when the stream is over, that the answer is complete: that
// the format's stop reason arrived. marker reports that the stream ended on
// the format's terminal marker ([DONE], message_stop) rather than with the
// body; a marker without a stop reason is still a cut answer.
func (s *streamState) end(marker bool) error {
	if s.ended {
		return nil
	}
	if marker {
		return errIncomplete(s, "the stream ended without a stop reason")
	}
	return errIncomplete(s, "the stream ended before the answer was complete")
}

// readBody decodes a non-streaming (JSON) answer and passes its text on as
// one delta, so Stream also works when the gateway ignores "stream": true.
func (c *Client) readBody(ctx context.Context, w wire, resp *http.Response, b []byte, st *streamState) error {
	t := bytes.TrimSpace(b)
	if isHTML(resp.Header.Get("Content-Type"), t) {
		return c.classifyHTTP(resp, b)
	}
	if len(t) == 0 {
		return &Error{Kind: KindServer, Status: resp.StatusCode, Message: "empty response body"}
	}
	if bytes.HasPrefix(t, []byte("data:")) || bytes.HasPrefix(t, []byte("event:")) || bytes.HasPrefix(t, []byte(":")) {
		// An event stream with the wrong Content-Type.
		return c.readStream(ctx, w, bytes.NewReader(t), st)
	}
	if err := w.decodeBody(st, t); err != nil {
		return err
	}
	return st.emit(st.bodyText, st.bodyReasoning)
}

// activityReader resets the stall watchdog on every read that returns bytes.
// It serves whole (JSON) answers and error bodies, where every byte is
// content; streams count content instead (streamState.progress).
type activityReader struct {
	r io.Reader
	t *time.Timer
	d time.Duration
}

func (a *activityReader) Read(p []byte) (int, error) {
	n, err := a.r.Read(p)
	if n > 0 {
		a.t.Reset(a.d)
	}
	return n, err
}

// streamState accumulates one attempt's answer.
type streamState struct {
	c       *Client
	onDelta func(Delta) error
	resp    Response
	text    strings.Builder
	reason  strings.Builder
	started bool
	// maxChars is Request.MaxAnswerChars; nText and nReason count the runes
	// of text and reasoning kept so far.
	maxChars       int
	nText, nReason int
	ended          bool // the format's stop reason (finish_reason, completed, stop_reason, finishReason) was seen
	events         int
	reqID          string
	wd             *time.Timer   // the attempt's stall watchdog, once the headers arrived
	stall          time.Duration // the watchdog's period

	bodyText, bodyReasoning string

	respImages bool // a Responses image arrived in response.output_item.done
	maxEvent   int  // the SSE event limit (0: maxStreamEvent); see streamEventLimit

	progressHook func() // called on every progress (tests)

	tools     []toolBuild // tool calls being received, in order of their start
	toolBytes int         // their argument bytes together (maxToolArgBytes)
	anthBlock []string    // Anthropic content block types by index

	// per-format scratch
	jd    jsonDec
	chat  chatChunk
	resps responsesEvent
	anth  anthropicEvent
	gem   geminiResponse
}

// progress restarts the stall watchdog: the stream produced content (answer
// or reasoning text that is not only whitespace, a tool call fragment, new
// usage numbers). Keep-alive comments, pings and empty chunks never call it.
func (s *streamState) progress() {
	if s.wd != nil {
		s.wd.Reset(s.stall)
	}
	if s.progressHook != nil {
		s.progressHook()
	}
}

// setUsage records the usage the gateway reported; changed numbers are
// progress.
func (s *streamState) setUsage(u Usage) {
	if u != s.resp.Usage {
		s.resp.Usage = u
		s.progress()
	}
}

// errMaxAnswer stops a stream whose answer reached Request.MaxAnswerChars.
var errMaxAnswer = errors.New("llm: answer reached MaxAnswerChars")

// emit passes text to the caller and records it. With a MaxAnswerChars
// limit, text past it is cut and emit returns errMaxAnswer; reasoning past
// it is passed on but not kept.
func (s *streamState) emit(text, reasoning string) error {
	if text == "" && reasoning == "" {
		return nil
	}
	if strings.TrimSpace(text) != "" || strings.TrimSpace(reasoning) != "" {
		s.progress()
	}
	cut := false
	keptReasoning := reasoning
	if s.maxChars > 0 {
		if text != "" {
			n := utf8.RuneCountInString(text)
			if s.nText+n > s.maxChars {
				text, n, cut = prefixRunes(text, s.maxChars-s.nText), s.maxChars-s.nText, true
			}
			s.nText += n
		}
		if reasoning != "" {
			n := utf8.RuneCountInString(reasoning)
			if s.nReason+n > s.maxChars {
				keptReasoning, n = prefixRunes(reasoning, s.maxChars-s.nReason), s.maxChars-s.nReason
			}
			s.nReason += n
		}
	}
	s.text.WriteString(text)
	s.reason.WriteString(keptReasoning)
	if text != "" || reasoning != "" {
		s.started = true
		if err := s.onDelta(Delta{Text: text, Reasoning: reasoning}); err != nil {
			return &abortError{err}
		}
	}
	if cut {
		return errMaxAnswer
	}
	return nil
}

// prefixRunes returns the first n runes of s.
func prefixRunes(s string, n int) string {
	for i := range s {
		if n == 0 {
			return s[:i]
		}
		n--
	}
	return s
}

func (s *streamState) finish() *Response {
	r := s.resp
	r.Text = s.text.String()
	r.Reasoning = s.reason.String()
	r.RawStopReason = r.StopReason
	r.StopReason = normStop(r.StopReason)
	r.ToolCalls = s.toolCalls()
	if len(r.ToolCalls) > 0 && (r.StopReason == StopEnd || r.StopReason == "") {
		// Gemini says STOP and Responses completed: the step ends in calls.
		r.StopReason = StopToolCalls
	}
	return &r
}

// partial returns what arrived before a failure, or nil when nothing did.
func (s *streamState) partial(f Format) *Response {
	if !s.started {
		return nil
	}
	r := s.finish()
	r.Format = f
	r.ToolCalls = nil // an unfinished step: nothing to run
	return r
}

// paramSet is a set of optional request parameters.
type paramSet uint8

const (
	pTemperature paramSet = 1 << iota
	pTopP
	pMaxTokens
	pStreamOptions
	allParams = pTemperature | pTopP | pMaxTokens | pStreamOptions
)

// paramBit maps a parameter name in any format's spelling to its bit.
func paramBit(name string) paramSet {
	n := strings.ToLower(name)
	if i := strings.LastIndexAny(n, ".["); i >= 0 { // "generationConfig.temperature"
		n = strings.Trim(n[i+1:], "]'\"")
	}
	switch n {
	case "temperature":
		return pTemperature
	case "top_p", "topp":
		return pTopP
	case "max_tokens", "max_output_tokens", "max_completion_tokens", "maxoutputtokens":
		return pMaxTokens
	case "stream_options", "include_usage":
		return pStreamOptions
	}
	return 0
}

// sentParams is the set of optional parameters a request carries in format f.
func sentParams(req *Request, f Format, stream bool) paramSet {
	var s paramSet
	if req.Temperature != nil {
		s |= pTemperature
	}
	if req.TopP != nil {
		s |= pTopP
	}
	if req.MaxOutputTokens > 0 && f != FormatAnthropic {
		s |= pMaxTokens
	}
	if stream && f == FormatChat {
		s |= pStreamOptions
	}
	return s
}
