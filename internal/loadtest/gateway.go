package loadtest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// turnID names one turn of one conversation; it travels inside the user
// message as a tag like "[lt c12 t3]" so both fakes can attribute traffic.
type turnID struct{ conv, turn int }

func (id turnID) tag() string { return fmt.Sprintf("[lt c%d t%d]", id.conv, id.turn) }

var reTag = regexp.MustCompile(`\[lt c(\d+) t(\d+)\]`)

// lastTag returns the last turn tag in b (the newest user message of a
// prompt: history comes first).
func lastTag(b []byte) (turnID, bool) {
	for end := len(b); ; {
		i := bytes.LastIndex(b[:end], []byte("[lt c"))
		if i < 0 {
			return turnID{}, false
		}
		if m := reTag.FindSubmatch(b[i:min(len(b), i+40)]); m != nil && bytes.HasPrefix(b[i:], m[0]) {
			return parseTag(m)
		}
		end = i
	}
}

func parseTag(m [][]byte) (turnID, bool) {
	c, _ := strconv.Atoi(string(m[1]))
	t, _ := strconv.Atoi(string(m[2]))
	return turnID{c, t}, true
}

// modelCall is what the gateway side saw of one turn's model call.
type modelCall struct {
	received   time.Time // request headers arrived
	firstToken time.Time // first content delta written to the bot
	lastToken  time.Time // last bytes of the stream written to the bot
	status     int
	calls      int // model calls for this turn (retries count)
}

// gatewayTap is a loopback reverse proxy in front of the fake gateway: the
// bot talks to it as if it were the gateway, and it timestamps each model
// call (request in, first token out, last token out) per turn.
type gatewayTap struct {
	upstream string // fake gateway root URL
	client   *http.Client
	srv      *http.Server
	ln       net.Listener
	wg       sync.WaitGroup

	mu       sync.Mutex
	calls    map[turnID]*modelCall
	untagged int
	errors   int
	conns    atomic.Int64 // TCP connections the bot opened to the gateway
}

func newGatewayTap(upstream string) (*gatewayTap, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("loadtest: gateway tap listen: %w", err)
	}
	g := &gatewayTap{
		upstream: upstream,
		client: &http.Client{Transport: &http.Transport{
			MaxIdleConns: 4096, MaxIdleConnsPerHost: 4096, IdleConnTimeout: time.Minute,
			DisableCompression: true, ForceAttemptHTTP2: false,
		}},
		ln:    ln,
		calls: map[turnID]*modelCall{},
	}
	g.srv = &http.Server{Handler: http.HandlerFunc(g.serve), ReadHeaderTimeout: 10 * time.Second,
		ConnState: func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				g.conns.Add(1)
			}
		}}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		_ = g.srv.Serve(ln)
	}()
	return g, nil
}

// URL is the tap's root URL (append /v1 for the OpenAI-compatible base).
func (g *gatewayTap) URL() string { return "http://" + g.ln.Addr().String() }

func (g *gatewayTap) close() {
	_ = g.srv.Close()
	g.wg.Wait()
	g.client.CloseIdleConnections()
}

// call returns a copy of what was seen for id.
func (g *gatewayTap) call(id turnID) (modelCall, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	c, ok := g.calls[id]
	if !ok {
		return modelCall{}, false
	}
	return *c, true
}

var contentMark = []byte(`"content":"`)

// hasContent reports whether an SSE chunk carries a non-empty text delta in
// any of the formats (chat "content", responses/anthropic "delta"/"text").
func hasContent(b []byte) bool {
	for _, mark := range [][]byte{contentMark, []byte(`"delta":"`), []byte(`"text":"`)} {
		for i := bytes.Index(b, mark); i >= 0; {
			j := i + len(mark)
			if j < len(b) && b[j] != '"' {
				return true
			}
			k := bytes.Index(b[j:], mark)
			if k < 0 {
				break
			}
			i = j + k
		}
	}
	return false
}

func (g *gatewayTap) serve(w http.ResponseWriter, r *http.Request) {
	received := time.Now()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	id, tagged := lastTag(body)
	var mc *modelCall
	if r.Method == http.MethodPost {
		g.mu.Lock()
		if tagged {
			mc = g.calls[id]
			if mc == nil {
				mc = &modelCall{received: received}
				g.calls[id] = mc
			}
			mc.calls++
		} else {
			g.untagged++
		}
		g.mu.Unlock()
	}
	req, err := http.NewRequestWithContext(r.Context(), r.Method, g.upstream+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		http.Error(w, "proxy", http.StatusBadGateway)
		return
	}
	req.Header = r.Header.Clone()
	resp, err := g.client.Do(req)
	if err != nil {
		g.mu.Lock()
		g.errors++
		g.mu.Unlock()
		http.Error(w, "upstream: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	var first, last time.Time
	buf := make([]byte, 32*1024)
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				break
			}
			_ = rc.Flush()
			now := time.Now()
			if first.IsZero() && hasContent(buf[:n]) {
				first = now
			}
			last = now
		}
		if rerr != nil {
			if !errors.Is(rerr, io.EOF) {
				g.mu.Lock()
				g.errors++
				g.mu.Unlock()
			}
			break
		}
	}
	if mc != nil {
		g.mu.Lock()
		mc.status = resp.StatusCode
		mc.firstToken, mc.lastToken = first, last
		g.mu.Unlock()
	}
}
