// Package mcptest provides a real MCP server for end-to-end tests: "calc",
// built with the official go-sdk, reachable over stdio (a test binary
// re-executed from its TestMain, or the calcserver command built with
// BuildCalcServer) and over streamable HTTP in-process (NewHTTPHandler).
//
// Its tools:
//   - add {a, b}: the sum as text ("5" for 2 and 3)
//   - hang: blocks until the call is cancelled (or the handler is closed)
//   - fail: an isError result with the text "boom"
//
// Every call is appended as a JSON line (an Entry) to a log file, named by
// Options.LogPath or, for ServeStdio and calcserver, by the EnvLog variable;
// ReadLog and Log read it back.
//
// Stdio from a test binary:
//
//	func TestMain(m *testing.M) {
//		mcptest.ServeStdio() // serves and exits when EnvServer is set
//		os.Exit(m.Run())
//	}
//
//	log := mcptest.NewLog(t)
//	srv := mcp.Server{Name: "calc", Command: mcptest.Executable(t), Env: mcptest.StdioEnv(log.Path)}
//
// Exchanges pairs the tool calls and results a recorded gateway request
// (llmtest.Prompt) carries, with their native shapes, for assertions on
// what the model was sent.
//
// The package does not import internal/mcp, so that package's own tests
// may use it.
package mcptest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// The environment of a stdio calc server.
const (
	// EnvServer selects the server ServeStdio runs: "calc".
	EnvServer = "COMETBOT_MCPTEST_SERVER"
	// EnvLog names the file the server appends its log to ("" logs nothing).
	EnvLog = "COMETBOT_MCPTEST_LOG"
)

// ServerName is the name the calc server gives itself (serverInfo.name).
const ServerName = "calc"

// ToolNames are the calc server's tools, in the order it lists them (the
// SDK lists tools by name).
var ToolNames = []string{"add", "fail", "hang"}

// The events of a log Entry.
const (
	// EventStart: a stdio server process started (PID set).
	EventStart = "start"
	// EventCall: a tool was called (Tool and Args set).
	EventCall = "call"
	// EventCancelled: a hang call ended because its context did.
	EventCancelled = "cancelled"
	// EventQuit: a hang call ended because the HTTP handler was closed.
	EventQuit = "quit"
)

// Entry is one line of a server's log.
type Entry struct {
	Event string `json:"event"`
	// Tool is the tool called.
	Tool string `json:"tool,omitempty"`
	// Args are the call's arguments as received (nil when there were none).
	Args json.RawMessage `json:"args,omitempty"`
	// PID is the server's process id.
	PID int `json:"pid"`
}

// Arg returns the argument name of a call, decoded from JSON (nil when
// absent).
func (e Entry) Arg(name string) any {
	var m map[string]any
	if json.Unmarshal(e.Args, &m) != nil {
		return nil
	}
	return m[name]
}

// Options configures a calc server.
type Options struct {
	// LogPath is the file each call is appended to as a JSON line ("": no
	// log).
	LogPath string
}

// logger appends entries to a file, one write per line (O_APPEND), so that
// several processes may share a log.
type logger struct {
	mu   sync.Mutex
	path string
}

func (l *logger) log(e Entry) {
	if l == nil || l.path == "" {
		return
	}
	e.PID = os.Getpid()
	b, err := json.Marshal(e)
	if err != nil {
		panic(err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	f, err := os.OpenFile(l.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mcptest: log:", err)
		return
	}
	defer f.Close()
	if _, err := f.Write(append(b, '\n')); err != nil {
		fmt.Fprintln(os.Stderr, "mcptest: log:", err)
	}
}

type addIn struct {
	A float64 `json:"a" jsonschema:"the first number"`
	B float64 `json:"b" jsonschema:"the second number"`
}

type noArgs struct{}

func text(s string) *sdk.CallToolResult {
	return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: s}}}
}

// NewCalc returns the calc server. A hang call also ends when quit is
// closed (nil: never), since closing a session waits for its handlers.
func NewCalc(opts Options, quit <-chan struct{}) *sdk.Server {
	l := &logger{path: opts.LogPath}
	called := func(req *sdk.CallToolRequest) {
		e := Entry{Event: EventCall, Tool: req.Params.Name}
		if a := bytes.TrimSpace(req.Params.Arguments); len(a) > 0 && !bytes.Equal(a, []byte("null")) {
			e.Args = json.RawMessage(a)
		}
		l.log(e)
	}
	s := sdk.NewServer(&sdk.Implementation{Name: ServerName, Version: "1.0"}, nil)
	sdk.AddTool(s, &sdk.Tool{Name: "add", Description: "Adds a and b."},
		func(_ context.Context, req *sdk.CallToolRequest, in addIn) (*sdk.CallToolResult, any, error) {
			called(req)
			return text(strconv.FormatFloat(in.A+in.B, 'f', -1, 64)), nil, nil
		})
	sdk.AddTool(s, &sdk.Tool{Name: "hang", Description: "Never answers."},
		func(ctx context.Context, req *sdk.CallToolRequest, _ noArgs) (*sdk.CallToolResult, any, error) {
			called(req)
			select {
			case <-ctx.Done():
				l.log(Entry{Event: EventCancelled, Tool: "hang"})
				return nil, nil, ctx.Err()
			case <-quit:
				l.log(Entry{Event: EventQuit, Tool: "hang"})
				return nil, nil, errors.New("server closing")
			}
		})
	sdk.AddTool(s, &sdk.Tool{Name: "fail", Description: "Always fails."},
		func(_ context.Context, req *sdk.CallToolRequest, _ noArgs) (*sdk.CallToolResult, any, error) {
			called(req)
			r := text("boom")
			r.IsError = true
			return r, nil, nil
		})
	return s
}

// RunStdio serves the calc server on stdin/stdout until its client closes
// the connection (or ctx ends).
func RunStdio(ctx context.Context, opts Options) error {
	(&logger{path: opts.LogPath}).log(Entry{Event: EventStart})
	return NewCalc(opts, nil).Run(ctx, &sdk.StdioTransport{})
}

// ServeStdio, when the EnvServer variable is set, serves that server on
// stdin/stdout with the log file named by EnvLog and exits the process;
// otherwise it returns at once. Call it first in a TestMain so that the
// test binary, run again with StdioEnv, is a stdio MCP server.
func ServeStdio() {
	switch name := os.Getenv(EnvServer); name {
	case "":
		return
	case ServerName:
		fmt.Fprintln(os.Stderr, "calc: serving on stdio")
		if err := RunStdio(context.Background(), Options{LogPath: os.Getenv(EnvLog)}); err != nil {
			fmt.Fprintln(os.Stderr, "calc:", err)
			os.Exit(1)
		}
		os.Exit(0)
	default:
		fmt.Fprintf(os.Stderr, "mcptest: unknown server %q\n", name)
		os.Exit(2)
	}
}

// StdioEnv is the environment that makes a test binary calling ServeStdio
// (or calcserver) the calc server, logging to logPath.
func StdioEnv(logPath string) map[string]string {
	return map[string]string{EnvServer: ServerName, EnvLog: logPath}
}

// Executable is the running test binary, to be run again as a stdio server.
func Executable(t testing.TB) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// BuildCalcServer builds the calcserver command into a temporary directory
// and returns the binary's path.
func BuildCalcServer(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "calcserver")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/cometbot/cometbot/internal/mcp/mcptest/calcserver")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build calcserver: %v\n%s", err, out)
	}
	return bin
}

// HTTPOptions configures NewHTTPHandler.
type HTTPOptions struct {
	Options
	// Authorization, when set, is the Authorization header every request
	// must carry (e.g. "Bearer s3cret"); others get a 401.
	Authorization string
	// Stateless serves without sessions (see sdk.StreamableHTTPOptions).
	Stateless bool
}

// HTTPHandler serves the calc server over streamable HTTP.
type HTTPHandler struct {
	srv   *sdk.Server
	h     http.Handler
	auth  string
	quit  chan struct{}
	close sync.Once

	mu    sync.Mutex
	auths []string
}

// NewHTTPHandler returns the calc server as a streamable-HTTP handler
// (sdk.NewStreamableHTTPHandler). Close it before closing the HTTP server
// when a hang call may be running.
func NewHTTPHandler(opts HTTPOptions) *HTTPHandler {
	h := &HTTPHandler{auth: opts.Authorization, quit: make(chan struct{})}
	h.srv = NewCalc(opts.Options, h.quit)
	h.h = sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return h.srv },
		// A stateless server learns of a cancelled call from its request's
		// end, not from notifications/cancelled.
		&sdk.StreamableHTTPOptions{Stateless: opts.Stateless, PropagateRequestCancellation: true})
	return h
}

func (h *HTTPHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	auth := r.Header.Get("Authorization")
	h.mu.Lock()
	h.auths = append(h.auths, auth)
	h.mu.Unlock()
	if h.auth != "" && auth != h.auth {
		http.Error(w, "missing or bad token", http.StatusUnauthorized)
		return
	}
	h.h.ServeHTTP(w, r)
}

// Authorizations returns the Authorization header of every request so far.
func (h *HTTPHandler) Authorizations() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.auths...)
}

// Close ends the running hang calls and closes the server's sessions.
func (h *HTTPHandler) Close() {
	h.close.Do(func() {
		close(h.quit)
		for ss := range h.srv.Sessions() {
			_ = ss.Close()
		}
	})
}

// Log is a calc server's log file.
type Log struct {
	Path string
}

// NewLog returns a log file in a temporary directory of t (not created
// until the server writes to it).
func NewLog(t testing.TB) *Log {
	return &Log{Path: filepath.Join(t.TempDir(), "calc.log")}
}

// Entries returns what the server logged so far (none when the file does
// not exist yet).
func (l *Log) Entries() []Entry {
	es, err := ReadLog(l.Path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		panic(err)
	}
	return es
}

// Calls returns the logged calls of tool ("" for every tool).
func (l *Log) Calls(tool string) []Entry {
	var out []Entry
	for _, e := range l.Entries() {
		if e.Event == EventCall && (tool == "" || e.Tool == tool) {
			out = append(out, e)
		}
	}
	return out
}

// Has reports whether the log has an entry of event for tool.
func (l *Log) Has(event, tool string) bool {
	for _, e := range l.Entries() {
		if e.Event == event && e.Tool == tool {
			return true
		}
	}
	return false
}

// ReadLog parses a log file. A last line without its newline (being
// written) is skipped.
func ReadLog(path string) ([]Entry, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []Entry
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	complete := bytes.HasSuffix(b, []byte("\n"))
	var lines [][]byte
	for sc.Scan() {
		lines = append(lines, append([]byte(nil), sc.Bytes()...))
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if !complete && len(lines) > 0 {
		lines = lines[:len(lines)-1]
	}
	for i, line := range lines {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var e Entry
		if err := json.Unmarshal(line, &e); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, i+1, err)
		}
		out = append(out, e)
	}
	return out, nil
}
