package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cometbot/cometbot/bot"
)

// protocols are the protocol versions the integration tests run with: the
// SDK's latest (stateless, subscriptions/listen) and the 2025-11-25 one most
// servers speak (initialize, sessions, standalone SSE stream).
var protocols = []string{"", "2025-11-25"}

func protoName(p string) string {
	if p == "" {
		return "latest"
	}
	return p
}

// tlog is a slog destination for t.Log that goes quiet once the test ends.
type tlog struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
}

func (w *tlog) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func testOptions(t *testing.T, protocol string) Options {
	w := &tlog{t: t}
	t.Cleanup(func() { w.mu.Lock(); w.done = true; w.mu.Unlock() })
	return Options{
		Logger:          slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})),
		CallTimeout:     10 * time.Second,
		ConnectTimeout:  10 * time.Second,
		PingInterval:    100 * time.Millisecond,
		MinBackoff:      10 * time.Millisecond,
		MaxBackoff:      200 * time.Millisecond,
		StopTimeout:     time.Second,
		MaxImageBytes:   1024,
		ProtocolVersion: protocol,
	}
}

// start runs a Manager until the test ends (and checks that Run returns).
func start(t *testing.T, servers []Server, opts Options) *Manager {
	t.Helper()
	if err := Validate(servers); err != nil {
		t.Fatal(err)
	}
	m := New(servers, opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Run returned %v, want context.Canceled", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("Run did not return after its context ended")
		}
	})
	return m
}

// waitFor polls cond until it holds (failing the test after 20s).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func status(m *Manager, name string) ServerStatus {
	for _, s := range m.Status() {
		if s.Name == name {
			return s
		}
	}
	return ServerStatus{}
}

func connected(m *Manager, name string) func() bool {
	return func() bool { return status(m, name).Connected }
}

func tool(t *testing.T, m *Manager, spec string) bot.Tool {
	t.Helper()
	for _, tl := range m.Tools() {
		if tl.Spec.Name == spec {
			return tl
		}
	}
	t.Fatalf("no tool %q among %v", spec, specNames(m))
	return bot.Tool{}
}

func specNames(m *Manager) []string {
	var names []string
	for _, tl := range m.Tools() {
		names = append(names, tl.Spec.Name)
	}
	return names
}

func call(t *testing.T, m *Manager, spec, args string) bot.ToolOutput {
	t.Helper()
	out, err := tool(t, m, spec).Call(context.Background(), json.RawMessage(args))
	if err != nil {
		t.Fatalf("%s(%s): %v", spec, args, err)
	}
	return out
}

// calcTools are the calc tools in the order it lists them (by name).
var calcTools = []string{"add", "env", "exit", "fail", "grow", "hang", "image", "mixed"}

// exercise runs the calls every calc server must answer, through the
// Manager, checking the server's log.
func exercise(t *testing.T, m *Manager, name string, log func() string) {
	t.Helper()
	var want []string
	for _, n := range calcTools {
		want = append(want, name+"_"+n)
	}
	var got []string
	for _, tl := range m.Tools() {
		if tl.Server != name {
			continue
		}
		got = append(got, tl.Spec.Name)
		if tl.Spec.Name != name+"_"+tl.Name {
			t.Errorf("tool %s has spec name %s", tl.Name, tl.Spec.Name)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("tools of %s: %v, want %v", name, got, want)
	}
	add := tool(t, m, name+"_add")
	if add.Spec.Description != "Adds a and b." {
		t.Errorf("add description %q", add.Spec.Description)
	}
	var schema struct {
		Type       string                     `json:"type"`
		Properties map[string]json.RawMessage `json:"properties"`
	}
	if err := json.Unmarshal(add.Spec.Parameters, &schema); err != nil || schema.Type != "object" || len(schema.Properties) != 2 {
		t.Errorf("add parameters %s (%v)", add.Spec.Parameters, err)
	}

	if out := call(t, m, name+"_add", `{"a":2,"b":3}`); out.Text != "5" || out.IsError || len(out.Images) > 0 {
		t.Errorf("add(2,3) = %+v, want 5", out)
	}
	if !strings.Contains(log(), "add 2 3\n") {
		t.Errorf("the server did not log the call; its log:\n%s", log())
	}
	if out := call(t, m, name+"_fail", `{}`); out.Text != "boom" || !out.IsError {
		t.Errorf("fail = %+v, want IsError boom", out)
	}
	out := call(t, m, name+"_image", ``)
	if out.Text != "a picture" || len(out.Images) != 1 || out.Images[0].MIMEType != "image/png" || !bytes.Equal(out.Images[0].Data, testPNG()) {
		t.Errorf("image = %+v, want the PNG", out)
	}
	out = call(t, m, name+"_mixed", `null`)
	wantMixed := "[audio: audio/wav, 100 B, not shown]\n" +
		"[resource link: report.txt <file:///srv/report.txt> text/plain, 42 B: the report]\n" +
		"[resource mem://note (text/plain)]\nhello note\n" +
		"[resource mem://bin: application/octet-stream, 10 B, not shown]\n" +
		"[image: image/png, 2 KiB, not shown: larger than the 1 KiB limit]"
	if out.Text != wantMixed || len(out.Images) != 0 {
		t.Errorf("mixed = %q (%d images), want\n%s", out.Text, len(out.Images), wantMixed)
	}
	if _, err := add.Call(context.Background(), json.RawMessage(`[1,2]`)); err == nil || !strings.Contains(err.Error(), "JSON object") {
		t.Errorf("add([1,2]) error %v, want one about a JSON object", err)
	}
	// A protocol-level error (invalid arguments) is an error, not an output.
	if out, err := add.Call(context.Background(), json.RawMessage(`{"a":"x"}`)); err == nil && !out.IsError {
		t.Errorf(`add({"a":"x"}) = %+v, want an error`, out)
	}

	// The engine's context cuts a call: the server sees the cancellation.
	hang := tool(t, m, name+"_hang")
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := hang.Call(ctx, nil)
		errc <- err
	}()
	waitFor(t, "the hang call to start", func() bool { return strings.Count(log(), "hang start") == 1 })
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled hang: %v, want context.Canceled", err)
	}
	waitFor(t, "the server to see the cancellation", func() bool { return strings.Count(log(), "hang cancelled") == 1 })
}

// TestCallTimeout checks that CallTimeout cuts a call the server never
// answers, and that the server is told.
func TestCallTimeout(t *testing.T) {
	cfg, log := stdioCalc(t, "calc")
	opts := testOptions(t, "")
	opts.CallTimeout = 200 * time.Millisecond
	m := start(t, []Server{cfg}, opts)
	waitFor(t, "calc to connect", connected(m, "calc"))
	t0 := time.Now()
	_, err := tool(t, m, "calc_hang").Call(context.Background(), json.RawMessage(`{}`))
	if !errors.Is(err, ErrCallTimeout) {
		t.Fatalf("hang: %v, want ErrCallTimeout", err)
	}
	if d := time.Since(t0); d > 5*time.Second {
		t.Errorf("the timeout took %v", d)
	}
	t.Log(err)
	waitFor(t, "the server to see the cancellation", func() bool { return strings.Contains(log(), "hang cancelled") })
	// The connection is still good.
	if out := call(t, m, "calc_add", `{"a":1,"b":1}`); out.Text != "2" {
		t.Errorf("add after a timeout: %+v", out)
	}
}

func TestStdio(t *testing.T) {
	t.Setenv("COMETAPI_KEY", "sk-must-not-leak")
	for _, p := range protocols {
		t.Run(protoName(p), func(t *testing.T) {
			cfg, log := stdioCalc(t, "calc")
			m := start(t, []Server{cfg}, testOptions(t, p))
			waitFor(t, "calc to connect", connected(m, "calc"))
			if st := status(m, "calc"); st.Tools != len(calcTools) || st.Err != "" || st.Transport != "stdio" || st.Since.IsZero() {
				t.Errorf("status %+v", st)
			}
			exercise(t, m, "calc", log)

			// The child's environment: the minimal inherited set plus Env.
			for v, want := range map[string]string{"EXTRA": "from-config", "COMETAPI_KEY": "(unset)", "PATH": os.Getenv("PATH")} {
				if out := call(t, m, "calc_env", `{"name":"`+v+`"}`); out.Text != want {
					t.Errorf("the server's %s = %q, want %q", v, out.Text, want)
				}
			}
		})
	}
}

func TestHTTP(t *testing.T) {
	for _, p := range protocols {
		t.Run(protoName(p), func(t *testing.T) {
			h := newHTTPCalc(t, true, p)
			m := start(t, []Server{
				h.config("web", map[string]string{"Authorization": token}),
				h.config("anon", nil),
			}, testOptions(t, p))
			waitFor(t, "web to connect", connected(m, "web"))
			exercise(t, m, "web", h.log)

			// Without the header the server refuses: the error shows in
			// Status, calls say the server is not connected, web is unaffected.
			waitFor(t, "anon to fail", func() bool { return status(m, "anon").Err != "" })
			st := status(m, "anon")
			if st.Connected || !strings.Contains(st.Err, "Unauthorized") || st.Target != strings.TrimSuffix(h.ts.URL, "/") {
				t.Errorf("anon status %+v, want Unauthorized", st)
			}
			for _, tl := range m.Tools() {
				if tl.Server == "anon" {
					t.Errorf("tool %s of a disconnected server offered", tl.Spec.Name)
				}
			}
		})
	}
}

// TestLateServer starts an HTTP server after Run began: the others work
// meanwhile, and it is connected once it is up.
func TestLateServer(t *testing.T) {
	for _, p := range protocols {
		t.Run(protoName(p), func(t *testing.T) {
			h := newHTTPCalc(t, false, p)
			cfg, _ := stdioCalc(t, "calc")
			m := start(t, []Server{h.config("late", map[string]string{"Authorization": token}), cfg}, testOptions(t, p))
			waitFor(t, "calc to connect", connected(m, "calc"))
			waitFor(t, "late to fail", func() bool { return status(m, "late").Err != "" })
			if out := call(t, m, "calc_add", `{"a":2,"b":3}`); out.Text != "5" {
				t.Errorf("calc while late is down: %+v", out)
			}
			late := status(m, "late")
			t.Logf("late while down: %+v", late)
			if late.Connected || late.Tools != 0 {
				t.Errorf("late status %+v", late)
			}
			// A tool of the server taken while it was up fails clearly when
			// it is down.
			h.up()
			waitFor(t, "late to connect", connected(m, "late"))
			lateAdd := tool(t, m, "late_add")
			if out := call(t, m, "late_add", `{"a":2,"b":3}`); out.Text != "5" {
				t.Errorf("late add: %+v", out)
			}
			if st := status(m, "late"); st.Err != "" || st.Tools != len(calcTools) {
				t.Errorf("late status once up %+v", st)
			}

			// It drops: the ping notices, calls fail clearly, and it comes back.
			h.down()
			waitFor(t, "late to be seen down", func() bool { return !status(m, "late").Connected })
			_, err := lateAdd.Call(context.Background(), json.RawMessage(`{"a":1,"b":2}`))
			if !errors.Is(err, ErrNotConnected) || !strings.Contains(err.Error(), `"late"`) {
				t.Errorf("a call while down: %v, want ErrNotConnected naming late", err)
			}
			t.Log(err)
			h.up()
			waitFor(t, "late to reconnect", connected(m, "late"))
			if out := call(t, m, "late_add", `{"a":1,"b":2}`); out.Text != "3" {
				t.Errorf("late add after reconnecting: %+v", out)
			}
		})
	}
}

// TestStdioCrash: a stdio server that exits is started again.
func TestStdioCrash(t *testing.T) {
	cfg, log := stdioCalc(t, "calc")
	m := start(t, []Server{cfg}, testOptions(t, ""))
	waitFor(t, "calc to connect", connected(m, "calc"))
	if _, err := tool(t, m, "calc_exit").Call(context.Background(), nil); err == nil {
		t.Error("exit returned no error")
	}
	waitFor(t, "a second server process", func() bool { return strings.Count(log(), "start ") == 2 })
	waitFor(t, "calc to reconnect", connected(m, "calc"))
	if out := call(t, m, "calc_add", `{"a":2,"b":3}`); out.Text != "5" {
		t.Errorf("add after the restart: %+v", out)
	}
}

// TestListChanged: a tool added at run time is offered.
func TestListChanged(t *testing.T) {
	for _, p := range protocols {
		t.Run(protoName(p), func(t *testing.T) {
			h := newHTTPCalc(t, true, p)
			cfg, log := stdioCalc(t, "calc")
			opts := testOptions(t, p)
			opts.PingInterval = -1 // no ping may hide a missed notification
			m := start(t, []Server{cfg, h.config("web", map[string]string{"Authorization": token})}, opts)
			waitFor(t, "both to connect", func() bool { return status(m, "calc").Connected && status(m, "web").Connected })
			for _, name := range []string{"calc", "web"} {
				call(t, m, name+"_grow", `{}`)
				waitFor(t, name+"_mul to be offered", func() bool { return slices.Contains(specNames(m), name+"_mul") })
				if out := call(t, m, name+"_mul", `{"a":4,"b":5}`); out.Text != "20" {
					t.Errorf("%s mul: %+v", name, out)
				}
				if st := status(m, name); st.Tools != len(calcTools)+1 {
					t.Errorf("%s status %+v", name, st)
				}
			}
			if !strings.Contains(log(), "mul 4 5") || !strings.Contains(h.log(), "mul 4 5") {
				t.Error("the servers did not log mul")
			}
		})
	}
}

// TestShutdown: cancelling Run's context closes everything, even with a
// call in flight and a server down: Run returns, the stdio child is gone
// and no goroutine is left.
func TestShutdown(t *testing.T) {
	for _, p := range protocols {
		t.Run(protoName(p), func(t *testing.T) {
			before := runtime.NumGoroutine()
			h := newHTTPCalc(t, true, p)
			down := newHTTPCalc(t, false, p)
			cfg, log := stdioCalc(t, "calc")

			m := New([]Server{cfg, h.config("web", map[string]string{"Authorization": token}), down.config("down", nil)}, testOptions(t, p))
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- m.Run(ctx) }()
			waitFor(t, "calc and web to connect", func() bool { return status(m, "calc").Connected && status(m, "web").Connected })
			waitFor(t, "down to fail", func() bool { return status(m, "down").Err != "" })
			pid := serverPID(t, log())

			errc := make(chan error, 2)
			for _, name := range []string{"calc_hang", "web_hang"} {
				go func() {
					_, err := tool(t, m, name).Call(context.Background(), nil)
					errc <- err
				}()
			}
			waitFor(t, "both hang calls to start", func() bool {
				return strings.Contains(log(), "hang start") && strings.Contains(h.log(), "hang start")
			})
			t0 := time.Now()
			cancel()
			select {
			case err := <-done:
				if !errors.Is(err, context.Canceled) {
					t.Errorf("Run: %v", err)
				}
				t.Logf("Run returned %v after cancel", time.Since(t0).Round(time.Millisecond))
			case <-time.After(20 * time.Second):
				t.Fatal("Run did not return")
			}
			for range 2 {
				select {
				case err := <-errc:
					if err == nil {
						t.Error("a hang call returned no error")
					}
					t.Logf("in-flight call: %v", err)
				case <-time.After(20 * time.Second):
					t.Fatal("an in-flight call did not end")
				}
			}
			if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
				t.Errorf("the stdio server (pid %d) is still there: %v", pid, err)
			}
			for _, st := range m.Status() {
				if st.Connected {
					t.Errorf("%s still connected", st.Name)
				}
			}
			if tools := m.Tools(); len(tools) != 0 {
				t.Errorf("%d tools offered after Run", len(tools))
			}
			// No goroutine of the client is left, while the servers are
			// still up; once they are closed, the count is back.
			waitGoroutines(t, "client goroutines to end", func(stacks string) bool {
				return !clientFrame.MatchString(stacks)
			})
			h.close()
			down.close()
			waitGoroutines(t, "the goroutine count to fall back", func(string) bool { return runtime.NumGoroutine() <= before })
		})
	}
}

var startLine = regexp.MustCompile(`start (\d+)\n`)

func serverPID(t *testing.T, log string) int {
	t.Helper()
	m := startLine.FindStringSubmatch(log)
	if m == nil {
		t.Fatalf("no start line in the server log:\n%s", log)
	}
	pid, _ := strconv.Atoi(m[1])
	return pid
}

// clientFrame matches a stack frame of the client side: this package (not
// its tests), the SDK's client session and transports (this process runs
// no stdio server), and HTTP client connections (the tests make no other
// requests).
var clientFrame = regexp.MustCompile(`cometbot/internal/mcp\.\(\*(Manager|server|headerTransport|stderrLog)\)|` +
	`go-sdk/mcp\.\(\*(ClientSession|Client|streamableClientConn|ioConn|pipeRWC)\)|net/http\.\(\*persistConn\)`)

// waitGoroutines waits (up to 20s) until ok holds for the stacks of every
// goroutine, and prints them when it does not.
func waitGoroutines(t *testing.T, what string, ok func(stacks string) bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		buf := make([]byte, 4<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		if ok(stacks) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; goroutines:\n%s", what, stacks)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestNoTools: a server without the tools capability is connected with no
// tools (it is not asked for a list it does not have).
func TestNoTools(t *testing.T) {
	cfg, _ := stdioCalc(t, "empty")
	cfg.Env["MCP_TEST_SERVER"] = "empty"
	m := start(t, []Server{cfg}, testOptions(t, ""))
	waitFor(t, "empty to connect", connected(m, "empty"))
	if st := status(m, "empty"); st.Tools != 0 || st.Err != "" {
		t.Errorf("status %+v", st)
	}
	if n := len(m.Tools()); n != 0 {
		t.Errorf("%d tools", n)
	}
}

// TestBrokenServer: a stdio server that exits at once is retried, and its
// last stderr line says why in Status; a missing program is reported too.
func TestBrokenServer(t *testing.T) {
	cfg, _ := stdioCalc(t, "broken")
	cfg.Env["MCP_TEST_SERVER"] = "broken"
	m := start(t, []Server{cfg, {Name: "missing", Command: "cometbot-no-such-mcp-server"}}, testOptions(t, ""))
	waitFor(t, "broken to fail", func() bool { return status(m, "broken").Err != "" && status(m, "missing").Err != "" })
	st := status(m, "broken")
	t.Log(st.Err)
	if st.Connected || !strings.HasPrefix(st.Err, "connect: ") || !strings.HasSuffix(st.Err, `(stderr: "broken: GITHUB_TOKEN is not set")`) {
		t.Errorf("broken status %+v", st)
	}
	if st := status(m, "missing"); !strings.Contains(st.Err, "executable file not found") {
		t.Errorf("missing status %+v", st)
	}
}

func TestRunTwice(t *testing.T) {
	m := New(nil, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := m.Run(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
	if err := m.Run(ctx); err == nil || errors.Is(err, context.Canceled) {
		t.Fatalf("second Run: %v, want an error", err)
	}
}

// TestNotConnectedYet: before Run, a tool list is empty and Status shows
// every server disconnected with no error.
func TestNotConnectedYet(t *testing.T) {
	cfg, _ := stdioCalc(t, "calc")
	m := New([]Server{cfg}, testOptions(t, ""))
	if n := len(m.Tools()); n != 0 {
		t.Errorf("%d tools before Run", n)
	}
	st := m.Status()
	if len(st) != 1 || st[0].Connected || st[0].Err != "" || st[0].Since.IsZero() || st[0].Target != cfg.Command {
		t.Errorf("status %+v", st)
	}
	s := m.servers[0]
	if _, err := s.call(context.Background(), "add", nil); !errors.Is(err, ErrNotConnected) {
		t.Errorf("call before Run: %v", err)
	}
}
