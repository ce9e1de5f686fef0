package loadtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/cometbot/cometbot/adapters/slack/slacktest"
)

// Slack's published rate limits (per workspace and method unless noted),
// enforced by the fake when Config.SlackLimits is on.
var slackLimits = []struct {
	method string
	n      int
	window time.Duration
}{
	{"chat.update", 50, time.Minute},        // Tier 3
	{"chat.delete", 50, time.Minute},        // Tier 3
	{"chat.startStream", 100, time.Minute},  // Tier 4
	{"chat.appendStream", 100, time.Minute}, // Tier 4
	{"chat.stopStream", 100, time.Minute},   // Tier 4
	{"chat.postEphemeral", 100, time.Minute},
}

// chat.postMessage: about one per second per channel, short bursts allowed.
const (
	postPerChannelRate  = 1.0
	postPerChannelBurst = 3
)

// slackCall is one Web API call the bot made, as the tap saw it.
type slackCall struct {
	method  string
	channel string
	at      time.Time // request arrived
	status  int
	ok      bool
	hasText bool // carries reply text (an "echo:" answer), not just a placeholder
}

// slackTap is a loopback reverse proxy in front of the fake Slack's Web API:
// it timestamps and attributes every call to a conversation (by channel),
// counts 429s, and enforces chat.postMessage's per-channel limit (the fake
// itself enforces the per-method workspace tiers).
type slackTap struct {
	fake     *slacktest.Server
	upstream string
	client   *http.Client
	srv      *http.Server
	ln       net.Listener
	wg       sync.WaitGroup
	limits   bool

	mu       sync.Mutex
	posts    map[string]*rate.Limiter
	byMethod map[string]int
	limited  map[string]int
	observe  func(slackCall)

	total atomic.Int64
	conns atomic.Int64 // TCP connections the bot opened to the Web API
}

func newSlackTap(fake *slacktest.Server, limits bool, observe func(slackCall)) (*slackTap, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("loadtest: slack tap listen: %w", err)
	}
	t := &slackTap{
		fake:     fake,
		upstream: fake.URL(),
		client: &http.Client{Transport: &http.Transport{
			MaxIdleConns: 4096, MaxIdleConnsPerHost: 4096, IdleConnTimeout: time.Minute, DisableCompression: true,
		}},
		ln:       ln,
		limits:   limits,
		posts:    map[string]*rate.Limiter{},
		byMethod: map[string]int{},
		limited:  map[string]int{},
		observe:  observe,
	}
	t.srv = &http.Server{Handler: http.HandlerFunc(t.serve), ReadHeaderTimeout: 10 * time.Second,
		ConnState: func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				t.conns.Add(1)
			}
		}}
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		_ = t.srv.Serve(ln)
	}()
	return t, nil
}

// APIURL is the Web API base the bot should use (SLACK_API_URL).
func (t *slackTap) APIURL() string { return "http://" + t.ln.Addr().String() + "/api/" }

func (t *slackTap) close() {
	_ = t.srv.Close()
	t.wg.Wait()
	t.client.CloseIdleConnections()
}

// counts returns calls and 429s per method.
func (t *slackTap) counts() (calls, limited map[string]int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	calls, limited = map[string]int{}, map[string]int{}
	for k, v := range t.byMethod {
		calls[k] = v
	}
	for k, v := range t.limited {
		limited[k] = v
	}
	return calls, limited
}

// params decodes a Web API request body (form or JSON) and query.
func params(r *http.Request, body []byte) url.Values {
	v := url.Values{}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		var m map[string]json.RawMessage
		if json.Unmarshal(body, &m) == nil {
			for k, raw := range m {
				var s string
				if json.Unmarshal(raw, &s) == nil {
					v.Set(k, s)
				} else {
					v.Set(k, string(raw))
				}
			}
		}
	} else if q, err := url.ParseQuery(string(body)); err == nil {
		v = q
	}
	for k, vs := range r.URL.Query() {
		v[k] = vs
	}
	return v
}

func (t *slackTap) serve(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	method := strings.TrimPrefix(r.URL.Path, "/api/")
	p := params(r, body)
	call := slackCall{method: method, at: at, channel: p.Get("channel")}
	if call.channel == "" {
		call.channel = p.Get("channel_id")
	}
	for _, f := range []string{"text", "markdown_text", "blocks"} {
		if strings.Contains(p.Get(f), "echo:") {
			call.hasText = true
		}
	}
	t.total.Add(1)
	t.mu.Lock()
	t.byMethod[method]++
	limited := false
	if t.limits && method == "chat.postMessage" && call.channel != "" {
		l := t.posts[call.channel]
		if l == nil {
			l = rate.NewLimiter(postPerChannelRate, postPerChannelBurst)
			t.posts[call.channel] = l
		}
		limited = !l.AllowN(at, 1)
	}
	if limited {
		t.limited[method]++
	}
	t.mu.Unlock()

	if limited {
		w.Header().Set("Retry-After", "1")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = w.Write([]byte(`{"ok":false,"error":"ratelimited"}`))
		call.status = http.StatusTooManyRequests
		t.report(call)
		return
	}
	req, err := http.NewRequestWithContext(r.Context(), r.Method, t.upstream+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		http.Error(w, "proxy", http.StatusBadGateway)
		return
	}
	req.Header = r.Header.Clone()
	resp, err := t.client.Do(req)
	if err != nil {
		http.Error(w, "upstream: "+err.Error(), http.StatusBadGateway)
		return
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(out)
	call.status = resp.StatusCode
	call.ok = resp.StatusCode == http.StatusOK && bytes.Contains(out, []byte(`"ok":true`))
	if resp.StatusCode == http.StatusTooManyRequests {
		t.mu.Lock()
		t.limited[method]++
		t.mu.Unlock()
	}
	t.report(call)
}

func (t *slackTap) report(c slackCall) {
	if t.observe != nil {
		t.observe(c)
	}
}

// normalize collapses whitespace, for comparing rendered replies.
func normalize(s string) string { return strings.Join(strings.Fields(s), " ") }
