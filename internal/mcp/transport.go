package mcp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
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

// stdioTransport returns a transport that starts s.Command, the command
// (its Process is set once the transport connected) and what logs its
// stderr.
func stdioTransport(s *Server, stop time.Duration, log *slog.Logger) (*sdk.CommandTransport, *exec.Cmd, *stderrLog) {
	cmd := exec.Command(s.Command, s.Args...)
	cmd.Env = s.childEnv(os.Getenv)
	stderr := &stderrLog{log: log}
	cmd.Stderr = stderr
	cmd.WaitDelay = waitDelay
	setProcGroup(cmd)
	return &sdk.CommandTransport{Command: cmd, TerminateDuration: stop}, cmd, stderr
}

// httpTransport returns a streamable-HTTP transport to s.URL sending
// s.Headers, over base (nil: http.DefaultTransport).
func httpTransport(s *Server, base http.RoundTripper) *sdk.StreamableClientTransport {
	if base == nil {
		base = http.DefaultTransport
	}
	var rt http.RoundTripper = &limitTransport{base: base, max: sdk.DefaultMaxLineLength}
	if len(s.Headers) > 0 {
		h := make(http.Header, len(s.Headers))
		for k, v := range s.Headers {
			h.Set(k, v)
		}
		host := ""
		if u, err := url.Parse(s.URL); err == nil {
			host = u.Scheme + "://" + u.Host
		}
		rt = &headerTransport{base: rt, origin: host, header: h}
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

// limitTransport bounds the JSON response bodies (the SDK reads them whole;
// SSE streams it bounds per event, and stdio per message, at 16 MiB).
type limitTransport struct {
	base http.RoundTripper
	max  int64
}

// errBodyTooLarge fails a JSON response longer than limitTransport.max.
var errBodyTooLarge = errors.New("response body too large")

// RoundTrip implements http.RoundTripper.
func (t *limitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err == nil && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		resp.Body = &limitedBody{rc: resp.Body, left: t.max}
	}
	return resp, err
}

type limitedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left == 0 {
		// At the limit: the body must end here.
		var one [1]byte
		n, err := b.rc.Read(one[:])
		if n > 0 {
			return 0, errBodyTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }

// stderrLog logs a stdio server's stderr line by line at debug level, each
// line cut at maxStderrLine bytes, and keeps the last line: why a server
// that exits said it did.
type stderrLog struct {
	log  *slog.Logger
	mu   sync.Mutex
	buf  []byte
	last string
}

const (
	maxStderrLine = 4 << 10
	// maxStderrTail bounds the last line quoted in an error.
	maxStderrTail = 300
)

// tail returns ` (stderr: "<the last line>")`, or "" when the server wrote
// nothing.
func (w *stderrLog) tail() string {
	if w == nil {
		return ""
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	last := w.last
	if len(w.buf) > 0 {
		last = strings.TrimSpace(string(w.buf))
	}
	if last == "" {
		return ""
	}
	return fmt.Sprintf(" (stderr: %q)", truncate(last, maxStderrTail))
}

// Write implements io.Writer. Lines are logged after the lock is released.
func (w *stderrLog) Write(p []byte) (int, error) {
	n := len(p)
	var lines []string
	w.mu.Lock()
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			room := max(maxStderrLine-len(w.buf), 0)
			w.buf = append(w.buf, p[:min(room, len(p))]...)
			break
		}
		room := max(maxStderrLine-len(w.buf), 0)
		w.buf = append(w.buf, p[:min(room, i)]...)
		if line := strings.TrimRight(string(w.buf), "\r"); strings.TrimSpace(line) != "" {
			lines = append(lines, line)
			w.last = strings.TrimSpace(line)
		}
		w.buf = w.buf[:0]
		p = p[i+1:]
	}
	w.mu.Unlock()
	for _, line := range lines {
		w.log.Debug("mcp: server stderr", "line", line)
	}
	return n, nil
}
