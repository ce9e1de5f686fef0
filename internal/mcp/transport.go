package mcp

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// waitDelay bounds how long a stdio server's pipes are drained after it
// exits (a grandchild may hold them open).
const waitDelay = 2 * time.Second

// stdioTransport returns a transport that starts s.Command, and the command
// (its Process is set once the transport connected).
func stdioTransport(s *Server, stop time.Duration, log *slog.Logger) (*sdk.CommandTransport, *exec.Cmd) {
	cmd := exec.Command(s.Command, s.Args...)
	cmd.Env = s.childEnv(os.Getenv)
	cmd.Stderr = &stderrLog{log: log}
	cmd.WaitDelay = waitDelay
	setProcGroup(cmd)
	return &sdk.CommandTransport{Command: cmd, TerminateDuration: stop}, cmd
}

// httpTransport returns a streamable-HTTP transport to s.URL sending
// s.Headers, over base (nil: http.DefaultTransport).
func httpTransport(s *Server, base http.RoundTripper) *sdk.StreamableClientTransport {
	if base == nil {
		base = http.DefaultTransport
	}
	rt := base
	if len(s.Headers) > 0 {
		h := make(http.Header, len(s.Headers))
		for k, v := range s.Headers {
			h.Set(k, v)
		}
		host := ""
		if u, err := url.Parse(s.URL); err == nil {
			host = u.Scheme + "://" + u.Host
		}
		rt = &headerTransport{base: base, origin: host, header: h}
	}
	return &sdk.StreamableClientTransport{
		Endpoint:   s.URL,
		HTTPClient: &http.Client{Transport: rt},
	}
}

// headerTransport adds the configured headers to requests for the server's
// origin (scheme and host) only: a redirect elsewhere does not get them.
type headerTransport struct {
	base   http.RoundTripper
	origin string
	header http.Header
}

// RoundTrip implements http.RoundTripper.
func (t *headerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme+"://"+req.URL.Host != t.origin {
		return t.base.RoundTrip(req)
	}
	req = req.Clone(req.Context())
	for k, v := range t.header {
		req.Header[k] = v
	}
	return t.base.RoundTrip(req)
}

// stderrLog logs a stdio server's stderr line by line at debug level, each
// line cut at maxStderrLine bytes.
type stderrLog struct {
	log *slog.Logger
	mu  sync.Mutex
	buf []byte
}

const maxStderrLine = 4 << 10

// Write implements io.Writer.
func (w *stderrLog) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			room := max(maxStderrLine-len(w.buf), 0)
			w.buf = append(w.buf, p[:min(room, len(p))]...)
			break
		}
		room := max(maxStderrLine-len(w.buf), 0)
		w.buf = append(w.buf, p[:min(room, i)]...)
		if line := strings.TrimRight(string(w.buf), "\r"); line != "" {
			w.log.Debug("mcp: server stderr", "line", line)
		}
		w.buf = w.buf[:0]
		p = p[i+1:]
	}
	return n, nil
}
