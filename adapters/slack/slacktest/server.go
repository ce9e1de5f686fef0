// Package slacktest is a loopback fake of the Slack platform for tests and
// load tools: the Web API methods cometbot uses, a Socket Mode websocket
// (hello, pings, envelopes, acks, disconnects, redelivery) and a receiver for
// response_url posts, and files: downloads from url_private under Slack's
// token and files:read rule, and the external upload flow. The client side stays the real slack-go library: point
// it at APIURL() and let it open Socket Mode through apps.connections.open.
//
// Every call is recorded; every method the fake does not model answers
// {"ok":false,"error":"fake_method_not_implemented"} so that a missing route
// can never pass quietly. Per-method rate limits can be enforced (HTTP 429
// with Retry-After) and counted per time window.
package slacktest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options configures a fake Slack. Zero values get test defaults.
type Options struct {
	// BotToken is the accepted bot token (default "xoxb-test-token").
	BotToken string
	// AppToken is the accepted app-level token (default "xapp-test-token").
	AppToken string
	// TeamID and TeamName describe the workspace (default "T1", "Test Team").
	TeamID   string
	TeamName string
	// BotUserID, BotID and AppID identify the bot (default "UBOT", "BBOT", "A1").
	BotUserID string
	BotID     string
	AppID     string
	// PingInterval is how often the fake pings each Socket Mode connection
	// (default 2s).
	PingInterval time.Duration
	// RedeliverAfter is how long an envelope may stay un-acked before the
	// fake delivers it again (default 3s; negative disables redelivery).
	RedeliverAfter time.Duration
	// MaxTextRunes bounds a message's text; longer text fails with
	// msg_too_long (default 4000).
	MaxTextRunes int
	// MaxMarkdownRunes bounds markdown_text per stream call and markdown
	// blocks (default 12000).
	MaxMarkdownRunes int
	// MaxRecordedCalls bounds the call recorder for long load runs; the
	// oldest calls are dropped (default 100000).
	MaxRecordedCalls int
	// HistoryLimit is the largest page conversations.history and
	// conversations.replies return, and their default limit (default 1000,
	// as for internal apps; commercially distributed non-Marketplace apps
	// get 15).
	HistoryLimit int
	// Logger receives debug logs of the fake; nil discards them.
	Logger *slog.Logger
	// BotScopes are the bot token's OAuth scopes; nil grants every scope.
	// File downloads need files:read (without it Slack answers with its
	// login page) and uploads files:write (missing_scope).
	BotScopes []string
}

func (o *Options) defaults() {
	if o.BotToken == "" {
		o.BotToken = "xoxb-test-token"
	}
	if o.AppToken == "" {
		o.AppToken = "xapp-test-token"
	}
	if o.TeamID == "" {
		o.TeamID = "T1"
	}
	if o.TeamName == "" {
		o.TeamName = "Test Team"
	}
	if o.BotUserID == "" {
		o.BotUserID = "UBOT"
	}
	if o.BotID == "" {
		o.BotID = "BBOT"
	}
	if o.AppID == "" {
		o.AppID = "A1"
	}
	if o.PingInterval <= 0 {
		o.PingInterval = 2 * time.Second
	}
	if o.RedeliverAfter == 0 {
		o.RedeliverAfter = 3 * time.Second
	}
	if o.MaxTextRunes <= 0 {
		o.MaxTextRunes = 4000
	}
	if o.MaxMarkdownRunes <= 0 {
		o.MaxMarkdownRunes = 12000
	}
	if o.MaxRecordedCalls <= 0 {
		o.MaxRecordedCalls = 100000
	}
	if o.HistoryLimit <= 0 {
		o.HistoryLimit = 1000
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
}

// Call is one recorded Web API call.
type Call struct {
	// Method is the Web API method, e.g. "chat.postMessage".
	Method string
	// Time is when the fake received the call.
	Time time.Time
	// Params holds the form fields (or top-level JSON fields) without the token.
	Params url.Values
	// Token says which credential was presented: "bot", "app", "none" or "invalid".
	Token string
	// Status is the HTTP status answered (200 or 429).
	Status int
	// Error is the Slack error code answered with ok:false, or "".
	Error string
	// Fault is the transport fault injected after the call took effect
	// (see FailAfterStore), or "".
	Fault Fault
}

// OK reports whether the call succeeded.
func (c Call) OK() bool { return c.Status == http.StatusOK && c.Error == "" }

// Message is one message as the fake workspace stores it.
type Message struct {
	Channel  string
	TS       string
	ThreadTS string
	// User is the author (the bot user id for the bot's messages).
	User  string
	BotID string
	// Text is the message's text field (mrkdwn).
	Text string
	// Markdown is the streamed markdown_text, or the text of markdown blocks.
	Markdown string
	// Blocks is the raw blocks JSON, if any.
	Blocks json.RawMessage
	// Metadata is the message metadata ({"event_type":…,"event_payload":{…}})
	// the app attached, if any.
	Metadata json.RawMessage
	// Streaming is true between chat.startStream and chat.stopStream.
	Streaming bool
	// Streamed is true for messages created by chat.startStream.
	Streamed bool
	// Ephemeral messages are visible only to EphemeralUser.
	Ephemeral     bool
	EphemeralUser string
	Deleted       bool
	// Edits counts chat.update calls; Appends counts chat.appendStream calls.
	Edits   int
	Appends int
	// Files are the ids of files the message shares (uploads; see File).
	Files []string
}

// Body returns what the message shows: its markdown if it has any, else its text.
func (m Message) Body() string {
	if m.Markdown != "" {
		return m.Markdown
	}
	return m.Text
}

// User is a workspace member known to users.info.
type User struct {
	ID          string
	Name        string
	RealName    string
	DisplayName string
	IsBot       bool
}

// Response is one POST received on a response_url.
type Response struct {
	// URL is the response_url that was called.
	URL string
	// Time is when it arrived.
	Time time.Time
	// Text, ResponseType, ReplaceOriginal, DeleteOriginal are decoded fields.
	Text            string `json:"text"`
	ResponseType    string `json:"response_type"`
	ReplaceOriginal bool   `json:"replace_original"`
	DeleteOriginal  bool   `json:"delete_original"`
	ThreadTS        string `json:"thread_ts"`
	// Blocks is the raw blocks JSON.
	Blocks json.RawMessage `json:"blocks"`
}

type rateLimit struct {
	n      int
	window time.Duration
}

// Server is a running fake Slack.
type Server struct {
	opts Options
	log  *slog.Logger
	ln   net.Listener
	srv  *http.Server
	base string

	mu          sync.Mutex
	changed     chan struct{}
	calls       []Call
	messages    map[string][]*Message // channel -> messages in ts order
	byKey       map[string]*Message   // channel/ts -> message
	users       map[string]User
	statuses    map[string]string // channel/thread -> status
	tsCounter   int64
	disabled    map[string]bool
	failNext    map[string][]string
	limitNext   map[string][]time.Duration
	limits      map[string]rateLimit
	accepted    map[string][]time.Time // successful call times per method
	afterStore  map[string][]Fault     // transport faults after the call took effect
	responses   []Response
	respCounter int
	responseIDs map[string]bool

	scopes      []string // nil: every scope
	files       map[string]*File
	fileSeq     int
	downloads   []*Download
	uploadURLs  map[string]string // upload_url -> file id
	uploadSeq   int
	uploadOrder []string // completed uploads, in order

	sock socketState

	closeOnce sync.Once
	closed    chan struct{}
	wg        sync.WaitGroup
}

// New starts a fake Slack on 127.0.0.1 with a random port. Call Close when done.
func New(opts Options) (*Server, error) {
	opts.defaults()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("slacktest: listen: %w", err)
	}
	s := &Server{
		opts:        opts,
		log:         opts.Logger,
		ln:          ln,
		base:        "http://" + ln.Addr().String(),
		changed:     make(chan struct{}),
		messages:    map[string][]*Message{},
		byKey:       map[string]*Message{},
		users:       map[string]User{},
		statuses:    map[string]string{},
		disabled:    map[string]bool{},
		failNext:    map[string][]string{},
		limitNext:   map[string][]time.Duration{},
		limits:      map[string]rateLimit{},
		accepted:    map[string][]time.Time{},
		afterStore:  map[string][]Fault{},
		responseIDs: map[string]bool{},
		files:       map[string]*File{},
		uploadURLs:  map[string]string{},
		closed:      make(chan struct{}),
	}
	if opts.BotScopes != nil {
		s.scopes = append([]string{}, opts.BotScopes...)
	}
	s.sock.init()
	s.users[opts.BotUserID] = User{ID: opts.BotUserID, Name: "cometbot", RealName: "cometbot", DisplayName: "cometbot", IsBot: true}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/", s.handleAPI)
	mux.HandleFunc("/link/", s.handleSocket)
	mux.HandleFunc("/response/", s.handleResponseURL)
	mux.HandleFunc("/files-pri/", s.handleFile)
	mux.HandleFunc("/upload/", s.handleUpload)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.redeliverLoop()
	}()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Debug("slacktest: serve", "err", err)
		}
	}()
	return s, nil
}

// TB is the subset of testing.TB that Start needs.
type TB interface {
	Helper()
	Cleanup(func())
	Fatalf(format string, args ...any)
}

// Start starts a fake Slack for a test and closes it when the test ends.
func Start(t TB, opts Options) *Server {
	t.Helper()
	s, err := New(opts)
	if err != nil {
		t.Fatalf("slacktest: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// Close stops the fake: it closes Socket Mode connections and the listener.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.closed)
		s.closeSockets()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = s.srv.Shutdown(ctx)
		_ = s.srv.Close()
		s.wg.Wait()
	})
}

// Options returns the effective options (defaults filled in).
func (s *Server) Options() Options { return s.opts }

// URL returns the base URL, e.g. "http://127.0.0.1:1234".
func (s *Server) URL() string { return s.base }

// APIURL returns the Web API base for slack.OptionAPIURL (with the trailing slash).
func (s *Server) APIURL() string { return s.base + "/api/" }

// AddUser makes a user known to users.info.
func (s *Server) AddUser(u User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[u.ID] = u
}

// Disable makes a modelled method answer fake_method_not_implemented, as if
// the workspace did not offer it (used to test fallbacks).
func (s *Server) Disable(method string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.disabled[method] = true
}

// FailNext makes the next call of method answer ok:false with errCode.
// Several calls queue several failures.
func (s *Server) FailNext(method, errCode string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext[method] = append(s.failNext[method], errCode)
}

// RateLimitNext makes the next call of method answer HTTP 429 with
// Retry-After set to retryAfter rounded up to whole seconds.
func (s *Server) RateLimitNext(method string, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limitNext[method] = append(s.limitNext[method], retryAfter)
}

// SetRateLimit enforces at most n successful calls of method in any sliding
// window; calls beyond it answer HTTP 429 with Retry-After. n <= 0 removes it.
func (s *Server) SetRateLimit(method string, n int, window time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n <= 0 {
		delete(s.limits, method)
		return
	}
	s.limits[method] = rateLimit{n: n, window: window}
}

// Fault is a transport failure the fake injects after a call took effect:
// the client cannot tell whether its request succeeded.
type Fault string

// Faults FailAfterStore can inject.
const (
	// FaultTimeout holds the answer back until the client gives up (its
	// timeout or context) or the fake closes.
	FaultTimeout Fault = "timeout"
	// FaultReset resets the TCP connection instead of answering.
	FaultReset Fault = "reset"
	// FaultBadResponse answers 200 with a body that is not valid JSON.
	FaultBadResponse Fault = "bad_response"
)

// FailAfterStore makes the next successful call of method take effect (a
// chat.postMessage stores its message) and then fail in transport with
// fault, as when a response is lost. Several calls queue several faults.
func (s *Server) FailAfterStore(method string, fault Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.afterStore[method] = append(s.afterStore[method], fault)
}

// Calls returns all recorded calls, or only those of the given methods.
func (s *Server) Calls(methods ...string) []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Call
	for _, c := range s.calls {
		if len(methods) == 0 || contains(methods, c.Method) {
			c.Params = cloneValues(c.Params)
			out = append(out, c)
		}
	}
	return out
}

// MaxInWindow returns the largest number of successful calls of method that
// fell within any sliding window of the given length.
func (s *Server) MaxInWindow(method string, window time.Duration) int {
	s.mu.Lock()
	times := append([]time.Time(nil), s.accepted[method]...)
	s.mu.Unlock()
	best, j := 0, 0
	for i := range times {
		for times[i].Sub(times[j]) >= window {
			j++
		}
		best = max(best, i-j+1)
	}
	return best
}

// Messages returns the channel's stored messages in ts order, including
// deleted ones (check Deleted).
func (s *Server) Messages(channel string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, m := range s.messages[channel] {
		out = append(out, *m)
	}
	return out
}

// BotReplies returns the bot's visible (not deleted, not ephemeral) messages
// in the thread (threadTS "" = top level of the channel), in ts order.
func (s *Server) BotReplies(channel, threadTS string) []Message {
	var out []Message
	for _, m := range s.Messages(channel) {
		if m.Deleted || m.Ephemeral || m.User != s.opts.BotUserID || m.ThreadTS != threadTS {
			continue
		}
		out = append(out, m)
	}
	return out
}

// Message returns one stored message.
func (s *Server) Message(channel, ts string) (Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.byKey[channel+"/"+ts]
	if !ok {
		return Message{}, false
	}
	return *m, true
}

// Status returns the current assistant thread status of a thread.
func (s *Server) Status(channel, threadTS string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.statuses[channel+"/"+threadTS]
}

// Responses returns all posts received on response_urls.
func (s *Server) Responses() []Response {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Response(nil), s.responses...)
}

// NewResponseURL returns a fresh response_url served by the fake.
func (s *Server) NewResponseURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.respCounter++
	u := fmt.Sprintf("%s/response/%d", s.base, s.respCounter)
	s.responseIDs[u] = true
	return u
}

// NextTS allocates a message timestamp that sorts after every earlier one,
// for user messages injected by tests.
func (s *Server) NextTS() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nextTSLocked()
}

func (s *Server) nextTSLocked() string {
	s.tsCounter++
	return fmt.Sprintf("%d.%06d", 1700000000+s.tsCounter/1000000, s.tsCounter%1000000)
}

// Wait blocks until cond returns true or ctx ends. cond is re-evaluated after
// every change of the fake's state (and at least every 50 ms); it must not
// call Wait itself.
func (s *Server) Wait(ctx context.Context, cond func() bool) error {
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		if cond() {
			return nil
		}
		select {
		case <-ch:
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return fmt.Errorf("slacktest: wait: %w", ctx.Err())
		}
	}
}

// notifyLocked wakes Wait callers; s.mu must be held.
func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Server) notify() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.notifyLocked()
}

// ---- Web API ----

type apiRequest struct {
	method string
	params url.Values
	token  string // "bot", "app", "none", "invalid"
}

func (s *Server) handleAPI(w http.ResponseWriter, r *http.Request) {
	method := strings.TrimPrefix(r.URL.Path, "/api/")
	body, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	req := apiRequest{method: method, params: url.Values{}}
	ct := r.Header.Get("Content-Type")
	switch {
	case strings.HasPrefix(ct, "application/json"):
		if len(body) > 0 {
			var m map[string]json.RawMessage
			if err := json.Unmarshal(body, &m); err == nil {
				for k, v := range m {
					var str string
					if json.Unmarshal(v, &str) == nil {
						req.params.Set(k, str)
					} else {
						req.params.Set(k, string(v))
					}
				}
			}
		}
	default:
		if vals, err := url.ParseQuery(string(body)); err == nil {
			req.params = vals
		}
	}
	for k, v := range r.URL.Query() {
		req.params[k] = v
	}
	token := req.params.Get("token")
	req.params.Del("token")
	if auth := r.Header.Get("Authorization"); strings.HasPrefix(auth, "Bearer ") {
		token = strings.TrimPrefix(auth, "Bearer ")
	}
	switch token {
	case "":
		req.token = "none"
	case s.opts.BotToken:
		req.token = "bot"
	case s.opts.AppToken:
		req.token = "app"
	default:
		req.token = "invalid"
	}

	s.mu.Lock()
	call := Call{Method: method, Time: time.Now(), Params: req.params, Token: req.token, Status: http.StatusOK}
	// Rate limits first: a 429 is answered before anything else happens.
	if retry, limited := s.rateLimitedLocked(method, call.Time); limited {
		call.Status = http.StatusTooManyRequests
		s.recordLocked(call)
		s.mu.Unlock()
		secs := int(math.Ceil(retry.Seconds()))
		secs = max(secs, 1)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = w.Write([]byte(`{"ok":false,"error":"ratelimited"}`))
		return
	}
	var resp map[string]any
	var errCode string
	if q := s.failNext[method]; len(q) > 0 {
		errCode = q[0]
		s.failNext[method] = q[1:]
	} else {
		resp, errCode = s.dispatchLocked(req)
	}
	call.Error = errCode
	if q := s.afterStore[method]; errCode == "" && len(q) > 0 {
		call.Fault = q[0]
		s.afterStore[method] = q[1:]
	}
	s.recordLocked(call)
	scopes := strings.Join(s.scopes, ",")
	s.mu.Unlock()
	if scopes != "" {
		w.Header().Set("X-OAuth-Scopes", scopes)
	}

	if call.Fault != "" {
		s.injectFault(w, r, call.Fault)
		return
	}
	if errCode != "" {
		resp = map[string]any{"ok": false, "error": errCode}
	} else {
		if resp == nil {
			resp = map[string]any{}
		}
		resp["ok"] = true
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(resp)
}

// injectFault fails the transport of an answer.
func (s *Server) injectFault(w http.ResponseWriter, r *http.Request, f Fault) {
	switch f {
	case FaultBadResponse:
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_, _ = w.Write([]byte(`{"ok":true,"channel":`))
		return
	case FaultTimeout:
		select {
		case <-r.Context().Done():
		case <-s.closed:
		}
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic("slacktest: response writer cannot be hijacked")
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // close with RST
	}
	_ = conn.Close()
}

// recordLocked appends a call, keeping the recorder bounded.
func (s *Server) recordLocked(c Call) {
	if len(s.calls) >= s.opts.MaxRecordedCalls {
		drop := len(s.calls) - s.opts.MaxRecordedCalls + 1
		s.calls = append(s.calls[:0:0], s.calls[drop:]...)
	}
	s.calls = append(s.calls, c)
	if c.OK() {
		times := append(s.accepted[c.Method], c.Time)
		// Keep ten minutes of history for rate limits and MaxInWindow.
		cut := sort.Search(len(times), func(i int) bool { return c.Time.Sub(times[i]) < 10*time.Minute })
		if cut > 0 {
			times = append(times[:0:0], times[cut:]...)
		}
		s.accepted[c.Method] = times
	}
	s.notifyLocked()
}

func (s *Server) rateLimitedLocked(method string, now time.Time) (time.Duration, bool) {
	if q := s.limitNext[method]; len(q) > 0 {
		s.limitNext[method] = q[1:]
		return q[0], true
	}
	lim, ok := s.limits[method]
	if !ok {
		return 0, false
	}
	times := s.accepted[method]
	// Count successful calls within (now-window, now].
	cut := sort.Search(len(times), func(i int) bool { return now.Sub(times[i]) < lim.window })
	inWindow := times[cut:]
	if len(inWindow) < lim.n {
		return 0, false
	}
	// Free again when the oldest call in the window leaves it.
	return inWindow[0].Add(lim.window).Sub(now), true
}

type methodFunc func(s *Server, req apiRequest) (map[string]any, string)

var methods = map[string]methodFunc{
	"auth.test":                    (*Server).authTest,
	"apps.connections.open":        (*Server).appsConnectionsOpen,
	"users.info":                   (*Server).usersInfo,
	"chat.postMessage":             (*Server).chatPostMessage,
	"conversations.history":        (*Server).conversationsHistory,
	"conversations.replies":        (*Server).conversationsReplies,
	"chat.postEphemeral":           (*Server).chatPostEphemeral,
	"chat.update":                  (*Server).chatUpdate,
	"chat.delete":                  (*Server).chatDelete,
	"chat.startStream":             (*Server).chatStartStream,
	"chat.appendStream":            (*Server).chatAppendStream,
	"chat.stopStream":              (*Server).chatStopStream,
	"assistant.threads.setStatus":  (*Server).assistantSetStatus,
	"files.getUploadURLExternal":   (*Server).filesGetUploadURLExternal,
	"files.completeUploadExternal": (*Server).filesCompleteUploadExternal,
}

// dispatchLocked runs a method with s.mu held.
func (s *Server) dispatchLocked(req apiRequest) (map[string]any, string) {
	fn, ok := methods[req.method]
	if !ok || s.disabled[req.method] {
		return nil, "fake_method_not_implemented"
	}
	wantApp := req.method == "apps.connections.open"
	switch {
	case req.token == "none":
		return nil, "not_authed"
	case req.token == "invalid":
		return nil, "invalid_auth"
	case wantApp && req.token != "app":
		return nil, "not_allowed_token_type"
	case !wantApp && req.token != "bot":
		return nil, "not_allowed_token_type"
	}
	return fn(s, req)
}

func (s *Server) authTest(apiRequest) (map[string]any, string) {
	return map[string]any{
		"url":     "https://test.slack.com/",
		"team":    s.opts.TeamName,
		"user":    "cometbot",
		"team_id": s.opts.TeamID,
		"user_id": s.opts.BotUserID,
		"bot_id":  s.opts.BotID,
	}, ""
}

func (s *Server) usersInfo(req apiRequest) (map[string]any, string) {
	id := req.params.Get("user")
	u, ok := s.users[id]
	if !ok {
		return nil, "user_not_found"
	}
	return map[string]any{"user": map[string]any{
		"id":        u.ID,
		"team_id":   s.opts.TeamID,
		"name":      u.Name,
		"real_name": u.RealName,
		"is_bot":    u.IsBot,
		"profile": map[string]any{
			"real_name":    u.RealName,
			"display_name": u.DisplayName,
		},
	}}, ""
}

func runes(s string) int { return len([]rune(s)) }

// markdownOfBlocks returns the concatenated text of markdown blocks.
func markdownOfBlocks(raw string) (string, bool) {
	var blocks []struct {
		Type string `json:"type"`
		Text any    `json:"text"`
	}
	if err := json.Unmarshal([]byte(raw), &blocks); err != nil {
		return "", false
	}
	var parts []string
	for _, b := range blocks {
		if b.Type == "markdown" {
			if t, ok := b.Text.(string); ok {
				parts = append(parts, t)
			}
		}
	}
	return strings.Join(parts, "\n"), true
}

// content validates text / blocks of a post or update.
func (s *Server) contentLocked(req apiRequest) (text, markdown string, blocks json.RawMessage, errCode string) {
	text = req.params.Get("text")
	if raw := req.params.Get("blocks"); raw != "" {
		md, ok := markdownOfBlocks(raw)
		if !ok {
			return "", "", nil, "invalid_blocks"
		}
		if runes(md) > s.opts.MaxMarkdownRunes {
			return "", "", nil, "invalid_blocks"
		}
		markdown = md
		blocks = json.RawMessage(raw)
	}
	if text == "" && blocks == nil {
		return "", "", nil, "no_text"
	}
	if runes(text) > s.opts.MaxTextRunes {
		return "", "", nil, "msg_too_long"
	}
	return text, markdown, blocks, ""
}

// metadataParam validates the metadata argument of a post or update.
func metadataParam(req apiRequest) (json.RawMessage, string) {
	raw := req.params.Get("metadata")
	if raw == "" {
		return nil, ""
	}
	var md struct {
		EventType    *string         `json:"event_type"`
		EventPayload json.RawMessage `json:"event_payload"`
	}
	if err := json.Unmarshal([]byte(raw), &md); err != nil {
		return nil, "invalid_metadata_format"
	}
	var payload map[string]any
	if md.EventType == nil || *md.EventType == "" || json.Unmarshal(md.EventPayload, &payload) != nil || payload == nil {
		return nil, "invalid_metadata_schema"
	}
	if len(raw) > 8<<10 {
		return nil, "metadata_too_large"
	}
	return json.RawMessage(raw), ""
}

func (s *Server) storeLocked(m *Message) {
	s.messages[m.Channel] = append(s.messages[m.Channel], m)
	sort.SliceStable(s.messages[m.Channel], func(i, j int) bool {
		return tsLess(s.messages[m.Channel][i].TS, s.messages[m.Channel][j].TS)
	})
	s.byKey[m.Channel+"/"+m.TS] = m
	if m.User == s.opts.BotUserID && m.ThreadTS != "" {
		delete(s.statuses, m.Channel+"/"+m.ThreadTS)
	}
}

func tsLess(a, b string) bool {
	fa, _ := strconv.ParseFloat(a, 64)
	fb, _ := strconv.ParseFloat(b, 64)
	if fa != fb {
		return fa < fb
	}
	return a < b
}

func (s *Server) chatPostMessage(req apiRequest) (map[string]any, string) {
	ch := req.params.Get("channel")
	if ch == "" {
		return nil, "channel_not_found"
	}
	text, md, blocks, code := s.contentLocked(req)
	if code != "" {
		return nil, code
	}
	meta, code := metadataParam(req)
	if code != "" {
		return nil, code
	}
	thread := req.params.Get("thread_ts")
	m := &Message{Channel: ch, TS: s.nextTSLocked(), ThreadTS: thread, User: s.opts.BotUserID, BotID: s.opts.BotID,
		Text: text, Markdown: md, Blocks: blocks, Metadata: meta}
	s.storeLocked(m)
	return map[string]any{"channel": ch, "ts": m.TS, "message": s.messageJSON(m, meta != nil)}, ""
}

// messageJSON renders a stored message as the Web API returns it; metadata
// only when asked for (include_all_metadata), as Slack does.
func (s *Server) messageJSON(m *Message, withMetadata bool) map[string]any {
	js := map[string]any{"type": "message", "text": m.Text, "ts": m.TS}
	if m.User != "" {
		js["user"] = m.User
	}
	if m.BotID != "" {
		js["bot_id"] = m.BotID
		js["app_id"] = s.opts.AppID
	}
	if m.ThreadTS != "" {
		js["thread_ts"] = m.ThreadTS
	}
	if m.Blocks != nil {
		js["blocks"] = m.Blocks
	}
	if withMetadata && m.Metadata != nil {
		js["metadata"] = m.Metadata
	}
	if len(m.Files) > 0 {
		var files []any
		for _, id := range m.Files {
			f := map[string]any{"id": id}
			if sf, ok := s.files[id]; ok {
				f["name"], f["title"] = sf.Name, sf.Title
			}
			files = append(files, f)
		}
		js["files"] = files
	}
	return js
}

// historyPage applies oldest / latest / inclusive, limit and cursor to
// messages in the order they are returned.
func (s *Server) historyPage(req apiRequest, msgs []*Message) (map[string]any, string) {
	limit := s.opts.HistoryLimit
	if v := req.params.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return nil, "invalid_limit"
		}
		if n > 0 {
			limit = min(n, s.opts.HistoryLimit)
		}
	}
	oldest, latest := req.params.Get("oldest"), req.params.Get("latest")
	inclusive := req.params.Get("inclusive") == "1" || req.params.Get("inclusive") == "true"
	var kept []*Message
	for _, m := range msgs {
		if m.Deleted || m.Ephemeral {
			continue
		}
		if oldest != "" && (tsLess(m.TS, oldest) || (!inclusive && m.TS == oldest)) {
			continue
		}
		if latest != "" && (tsLess(latest, m.TS) || (!inclusive && m.TS == latest)) {
			continue
		}
		kept = append(kept, m)
	}
	start := 0
	if c := req.params.Get("cursor"); c != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(c, "next:"))
		if err != nil || !strings.HasPrefix(c, "next:") || n < 0 || n > len(kept) {
			return nil, "invalid_cursor"
		}
		start = n
	}
	end := min(start+limit, len(kept))
	withMeta := req.params.Get("include_all_metadata") == "1" || req.params.Get("include_all_metadata") == "true"
	out := []any{}
	for _, m := range kept[start:end] {
		out = append(out, s.messageJSON(m, withMeta))
	}
	resp := map[string]any{"messages": out, "has_more": end < len(kept)}
	next := ""
	if end < len(kept) {
		next = "next:" + strconv.Itoa(end)
	}
	resp["response_metadata"] = map[string]any{"next_cursor": next}
	return resp, ""
}

// historyScope is the scope that lets a bot read a conversation's history.
func historyScope(channel string) string {
	switch {
	case strings.HasPrefix(channel, "D"):
		return "im:history"
	case strings.HasPrefix(channel, "G"):
		return "groups:history"
	}
	return "channels:history"
}

// conversationsHistory returns a channel's top-level messages, newest first.
func (s *Server) conversationsHistory(req apiRequest) (map[string]any, string) {
	// The fake does not model channels: like chat.postMessage it accepts
	// any channel id, and one without messages is empty.
	ch := req.params.Get("channel")
	if ch == "" {
		return nil, "channel_not_found"
	}
	if !s.hasScopeLocked(historyScope(ch)) {
		return nil, "missing_scope"
	}
	all := s.messages[ch]
	var top []*Message
	for i := len(all) - 1; i >= 0; i-- {
		if m := all[i]; m.ThreadTS == "" || m.ThreadTS == m.TS {
			top = append(top, m)
		}
	}
	return s.historyPage(req, top)
}

// conversationsReplies returns a thread (the parent, then its replies,
// oldest first). Like Slack, it refuses bot tokens outside direct messages:
// channel threads need a user token.
func (s *Server) conversationsReplies(req apiRequest) (map[string]any, string) {
	ch, ts := req.params.Get("channel"), req.params.Get("ts")
	if ch == "" {
		return nil, "channel_not_found"
	}
	if ts == "" {
		return nil, "invalid_arguments"
	}
	if !s.hasScopeLocked(historyScope(ch)) {
		return nil, "missing_scope"
	}
	if !strings.HasPrefix(ch, "D") {
		return nil, "not_allowed_token_type"
	}
	parent, ok := s.byKey[ch+"/"+ts]
	if !ok || parent.Deleted {
		return nil, "thread_not_found"
	}
	thread := []*Message{parent}
	for _, m := range s.messages[ch] {
		if m.ThreadTS == ts && m.TS != ts {
			thread = append(thread, m)
		}
	}
	return s.historyPage(req, thread)
}

func (s *Server) chatPostEphemeral(req apiRequest) (map[string]any, string) {
	ch := req.params.Get("channel")
	user := req.params.Get("user")
	if ch == "" {
		return nil, "channel_not_found"
	}
	if user == "" {
		return nil, "user_not_found"
	}
	text, md, blocks, code := s.contentLocked(req)
	if code != "" {
		return nil, code
	}
	m := &Message{Channel: ch, TS: s.nextTSLocked(), ThreadTS: req.params.Get("thread_ts"), User: s.opts.BotUserID,
		BotID: s.opts.BotID, Text: text, Markdown: md, Blocks: blocks, Ephemeral: true, EphemeralUser: user}
	s.storeLocked(m)
	return map[string]any{"message_ts": m.TS}, ""
}

func (s *Server) ownMessageLocked(ch, ts string) (*Message, string) {
	m, ok := s.byKey[ch+"/"+ts]
	if !ok || m.Deleted {
		return nil, "message_not_found"
	}
	if m.User != s.opts.BotUserID {
		return nil, "cant_update_message"
	}
	return m, ""
}

func (s *Server) chatUpdate(req apiRequest) (map[string]any, string) {
	ch, ts := req.params.Get("channel"), req.params.Get("ts")
	m, code := s.ownMessageLocked(ch, ts)
	if code != "" {
		return nil, code
	}
	text, md, blocks, code := s.contentLocked(req)
	if code != "" {
		return nil, code
	}
	meta, code := metadataParam(req)
	if code != "" {
		return nil, code
	}
	m.Text, m.Markdown, m.Blocks = text, md, blocks
	if meta != nil { // without the argument the metadata stays
		m.Metadata = meta
	}
	m.Edits++
	return map[string]any{"channel": ch, "ts": ts, "text": text}, ""
}

func (s *Server) chatDelete(req apiRequest) (map[string]any, string) {
	ch, ts := req.params.Get("channel"), req.params.Get("ts")
	m, code := s.ownMessageLocked(ch, ts)
	if code != "" {
		return nil, code
	}
	m.Deleted = true
	return map[string]any{"channel": ch, "ts": ts}, ""
}

func (s *Server) chatStartStream(req apiRequest) (map[string]any, string) {
	ch := req.params.Get("channel")
	thread := req.params.Get("thread_ts")
	if ch == "" {
		return nil, "channel_not_found"
	}
	if thread == "" {
		return nil, "invalid_arguments"
	}
	if !strings.HasPrefix(ch, "D") && (req.params.Get("recipient_user_id") == "" || req.params.Get("recipient_team_id") == "") {
		return nil, "missing_recipient_user_id"
	}
	md := req.params.Get("markdown_text")
	if runes(md) > s.opts.MaxMarkdownRunes {
		return nil, "msg_too_long"
	}
	m := &Message{Channel: ch, TS: s.nextTSLocked(), ThreadTS: thread, User: s.opts.BotUserID, BotID: s.opts.BotID,
		Markdown: md, Streaming: true, Streamed: true}
	s.storeLocked(m)
	return map[string]any{"channel": ch, "ts": m.TS}, ""
}

func (s *Server) streamingLocked(req apiRequest) (*Message, string) {
	m, code := s.ownMessageLocked(req.params.Get("channel"), req.params.Get("ts"))
	if code != "" {
		return nil, code
	}
	if !m.Streaming {
		return nil, "message_not_in_streaming_state"
	}
	return m, ""
}

func (s *Server) chatAppendStream(req apiRequest) (map[string]any, string) {
	m, code := s.streamingLocked(req)
	if code != "" {
		return nil, code
	}
	md := req.params.Get("markdown_text")
	if md == "" {
		return nil, "invalid_arguments"
	}
	if runes(md) > s.opts.MaxMarkdownRunes || runes(m.Markdown)+runes(md) > 4*s.opts.MaxMarkdownRunes {
		return nil, "msg_too_long"
	}
	m.Markdown += md
	m.Appends++
	return map[string]any{"channel": m.Channel, "ts": m.TS}, ""
}

func (s *Server) chatStopStream(req apiRequest) (map[string]any, string) {
	m, code := s.streamingLocked(req)
	if code != "" {
		return nil, code
	}
	md := req.params.Get("markdown_text")
	if runes(md) > s.opts.MaxMarkdownRunes {
		return nil, "msg_too_long"
	}
	m.Markdown += md
	m.Streaming = false
	return map[string]any{"channel": m.Channel, "ts": m.TS}, ""
}

func (s *Server) assistantSetStatus(req apiRequest) (map[string]any, string) {
	ch, thread := req.params.Get("channel_id"), req.params.Get("thread_ts")
	if ch == "" || thread == "" {
		return nil, "invalid_arguments"
	}
	status := req.params.Get("status")
	if status == "" {
		delete(s.statuses, ch+"/"+thread)
	} else {
		s.statuses[ch+"/"+thread] = status
	}
	return map[string]any{}, ""
}

// ---- response_url ----

func (s *Server) handleResponseURL(w http.ResponseWriter, r *http.Request) {
	u := s.base + r.URL.Path
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	known := s.responseIDs[u]
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if !known {
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"ok":false,"error":"unknown_response_url"}`))
		return
	}
	resp := Response{URL: u, Time: time.Now()}
	if err := json.Unmarshal(body, &resp); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"ok":false,"error":"invalid_json"}`))
		return
	}
	resp.URL, resp.Time = u, time.Now()
	s.mu.Lock()
	s.responses = append(s.responses, resp)
	s.notifyLocked()
	s.mu.Unlock()
	_, _ = w.Write([]byte(`{"ok":true}`))
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}
