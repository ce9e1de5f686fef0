package mcp

// Real MCP servers for the tests, built with the SDK: the same "calc"
// server runs over stdio (the test binary re-executed with MCP_TEST_SERVER
// set, see TestMain) and in-process over streamable HTTP.

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

func TestMain(m *testing.M) {
	switch os.Getenv("MCP_TEST_SERVER") {
	case "calc":
		os.Exit(serveStdio(false))
	case "empty":
		os.Exit(serveStdio(true))
	case "broken":
		fmt.Fprintln(os.Stderr, "broken: starting")
		fmt.Fprintln(os.Stderr, "broken: GITHUB_TOKEN is not set")
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// serveStdio runs the calc server (or, if empty, one without tools) on
// stdin/stdout, logging what it sees to the file named by MCP_TEST_LOG.
func serveStdio(empty bool) int {
	f, err := os.OpenFile(os.Getenv("MCP_TEST_LOG"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	var mu sync.Mutex
	logf := func(format string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(f, format+"\n", a...)
	}
	logf("start %d", os.Getpid())
	fmt.Fprintln(os.Stderr, "calc: serving on stdio")
	srv := newCalc(logf, nil)
	if empty {
		srv = sdk.NewServer(&sdk.Implementation{Name: "empty", Version: "1.0"}, nil)
	}
	if err := srv.Run(context.Background(), &sdk.StdioTransport{}); err != nil {
		logf("run: %v", err)
	}
	logf("exit")
	return 0
}

type addIn struct {
	A float64 `json:"a"`
	B float64 `json:"b"`
}

type envIn struct {
	Name string `json:"name"`
}

func text(s string) *sdk.CallToolResult {
	return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: s}}}
}

// testPNG is the image the image tool returns.
func testPNG() []byte {
	img := image.NewRGBA(image.Rect(0, 0, 2, 2))
	img.Set(0, 0, color.RGBA{R: 255, A: 255})
	img.Set(1, 1, color.RGBA{B: 255, A: 255})
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// newCalc builds the test server. Its tools:
//   - add {a,b}: the sum as text ("5" for 2 and 3)
//   - hang: blocks until cancelled
//   - fail: an isError result "boom"
//   - image: testPNG
//   - mixed: audio, a resource link, embedded text and blob resources and a
//     2000-byte image
//   - env {name}: the server's value of an environment variable
//   - grow: adds a tool "mul" (the server sends tools/list_changed)
//   - exit: the process exits (stdio only)
//
// hang also ends when quit is closed (a server session's Close waits for
// its handlers).
func newCalc(logf func(string, ...any), quit <-chan struct{}) *sdk.Server {
	s := sdk.NewServer(&sdk.Implementation{Name: "calc", Version: "1.0"}, nil)
	sdk.AddTool(s, &sdk.Tool{Name: "add", Description: "Adds a and b."},
		func(_ context.Context, _ *sdk.CallToolRequest, in addIn) (*sdk.CallToolResult, any, error) {
			logf("add %g %g", in.A, in.B)
			return text(strconv.FormatFloat(in.A+in.B, 'f', -1, 64)), nil, nil
		})
	sdk.AddTool(s, &sdk.Tool{Name: "hang", Description: "Never answers."},
		func(ctx context.Context, _ *sdk.CallToolRequest, _ any) (*sdk.CallToolResult, any, error) {
			logf("hang start")
			select {
			case <-ctx.Done():
				logf("hang cancelled")
			case <-quit:
				logf("hang quit")
			}
			return nil, nil, ctx.Err()
		})
	sdk.AddTool(s, &sdk.Tool{Name: "fail", Description: "Fails."},
		func(context.Context, *sdk.CallToolRequest, any) (*sdk.CallToolResult, any, error) {
			r := text("boom")
			r.IsError = true
			return r, nil, nil
		})
	sdk.AddTool(s, &sdk.Tool{Name: "image", Description: "A PNG."},
		func(context.Context, *sdk.CallToolRequest, any) (*sdk.CallToolResult, any, error) {
			return &sdk.CallToolResult{Content: []sdk.Content{
				&sdk.TextContent{Text: "a picture"},
				&sdk.ImageContent{MIMEType: "image/png", Data: testPNG()},
			}}, nil, nil
		})
	sdk.AddTool(s, &sdk.Tool{Name: "mixed", Description: "Every content kind."},
		func(context.Context, *sdk.CallToolRequest, any) (*sdk.CallToolResult, any, error) {
			size := int64(42)
			return &sdk.CallToolResult{Content: []sdk.Content{
				&sdk.AudioContent{MIMEType: "audio/wav", Data: make([]byte, 100)},
				&sdk.ResourceLink{URI: "file:///srv/report.txt", Name: "report.txt", MIMEType: "text/plain", Size: &size, Description: "the report"},
				&sdk.EmbeddedResource{Resource: &sdk.ResourceContents{URI: "mem://note", MIMEType: "text/plain", Text: "hello note"}},
				&sdk.EmbeddedResource{Resource: &sdk.ResourceContents{URI: "mem://bin", MIMEType: "application/octet-stream", Blob: []byte("0123456789")}},
				&sdk.ImageContent{MIMEType: "image/png", Data: make([]byte, 2000)},
			}}, nil, nil
		})
	sdk.AddTool(s, &sdk.Tool{Name: "env", Description: "Reads an environment variable."},
		func(_ context.Context, _ *sdk.CallToolRequest, in envIn) (*sdk.CallToolResult, any, error) {
			v, ok := os.LookupEnv(in.Name)
			if !ok {
				return text("(unset)"), nil, nil
			}
			return text(v), nil, nil
		})
	sdk.AddTool(s, &sdk.Tool{Name: "grow", Description: "Adds the mul tool."},
		func(context.Context, *sdk.CallToolRequest, any) (*sdk.CallToolResult, any, error) {
			sdk.AddTool(s, &sdk.Tool{Name: "mul", Description: "Multiplies a and b."},
				func(_ context.Context, _ *sdk.CallToolRequest, in addIn) (*sdk.CallToolResult, any, error) {
					logf("mul %g %g", in.A, in.B)
					return text(strconv.FormatFloat(in.A*in.B, 'f', -1, 64)), nil, nil
				})
			logf("grow")
			return text("grown"), nil, nil
		})
	sdk.AddTool(s, &sdk.Tool{Name: "exit", Description: "Exits the process."},
		func(context.Context, *sdk.CallToolRequest, any) (*sdk.CallToolResult, any, error) {
			logf("exiting")
			os.Exit(3)
			return nil, nil, nil
		})
	return s
}

// stdioCalc configures the calc server over stdio (this test binary run
// again), logging to a temporary file; log returns what it logged so far.
func stdioCalc(t *testing.T, name string) (cfg Server, log func() string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := t.TempDir() + "/calc.log"
	cfg = Server{
		Name:    name,
		Command: exe,
		Env:     map[string]string{"MCP_TEST_SERVER": "calc", "MCP_TEST_LOG": path, "EXTRA": "from-config"},
	}
	return cfg, func() string {
		b, _ := os.ReadFile(path)
		return string(b)
	}
}

// httpCalc is the calc server over streamable HTTP behind an Authorization
// check, on a listener that can be shut (connections refused) and opened.
type httpCalc struct {
	ts    *httptest.Server
	gate  *gate
	mu    sync.Mutex
	lines []string
	auths []string // Authorization headers seen
	// close ends the hang calls and the server's sessions and closes
	// the server.
	close func()
}

const token = "Bearer s3cret"

// newHTTPCalc starts the calc server over HTTP, accepting connections if
// open. With the SDK's latest protocol (protocol "") the server is stateless (no
// sessions: the 2026-07-28 protocol); else it keeps sessions (the 2025
// protocols).
func newHTTPCalc(t *testing.T, open bool, protocol string) *httpCalc {
	t.Helper()
	h := &httpCalc{}
	quit := make(chan struct{})
	srv := newCalc(h.logf, quit)
	mcpHandler := sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return srv },
		// A stateless server learns of a cancelled call from its
		// request's end, not from notifications/cancelled.
		&sdk.StreamableHTTPOptions{Stateless: protocol == "", PropagateRequestCancellation: true})
	h.ts = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		h.mu.Lock()
		h.auths = append(h.auths, auth)
		h.mu.Unlock()
		if auth != token {
			http.Error(w, "missing or bad token", http.StatusUnauthorized)
			return
		}
		mcpHandler.ServeHTTP(w, r)
	}))
	h.gate = &gate{Listener: h.ts.Listener}
	h.gate.open.Store(open)
	h.ts.Listener = h.gate
	h.ts.Start()
	h.close = sync.OnceFunc(func() {
		close(quit)
		for ss := range srv.Sessions() {
			ss.Close()
		}
		h.ts.Close()
	})
	t.Cleanup(h.close)
	return h
}

func (h *httpCalc) logf(format string, a ...any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lines = append(h.lines, fmt.Sprintf(format, a...))
}

func (h *httpCalc) log() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return strings.Join(h.lines, "\n") + "\n"
}

func (h *httpCalc) config(name string, headers map[string]string) Server {
	return Server{Name: name, URL: h.ts.URL + "/mcp", Headers: headers}
}

// down refuses new connections and closes the open ones; up accepts again.
func (h *httpCalc) down() {
	h.gate.open.Store(false)
	h.ts.CloseClientConnections()
}

func (h *httpCalc) up() { h.gate.open.Store(true) }

// gate is a listener that closes the connections it accepts while shut.
type gate struct {
	net.Listener
	open atomic.Bool
}

func (g *gate) Accept() (net.Conn, error) {
	for {
		c, err := g.Listener.Accept()
		if err != nil || g.open.Load() {
			return c, err
		}
		c.Close()
	}
}
