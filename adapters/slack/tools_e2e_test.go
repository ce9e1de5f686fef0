package slack

// End to end with tools: the real slack-go client against slacktest, the
// real engine and llm client against the fake gateway, and a real MCP
// client (internal/mcp) connected to the mcptest calc server, over stdio
// (this test binary run again, see TestMain) or streamable HTTP.

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cometbot/cometbot/bot"
	"github.com/cometbot/cometbot/internal/mcp"
	"github.com/cometbot/cometbot/internal/mcp/mcptest"
	"github.com/cometbot/cometbot/llm"
	"github.com/cometbot/cometbot/llm/llmtest"
)

func TestMain(m *testing.M) {
	mcptest.ServeStdio() // the calc server, when run again as one
	os.Exit(m.Run())
}

// toolFormats are a model of each wire format.
var toolFormats = []struct {
	format llm.Format
	model  string
}{
	{llm.FormatChat, "gpt-4o-mini"},
	{llm.FormatResponses, "gpt-5-mini"},
	{llm.FormatAnthropic, "claude-sonnet-4-5"},
	{llm.FormatGemini, "gemini-2.5-flash"},
}

// stdioCalc configures the calc server over stdio, logging to a new file.
func stdioCalc(t *testing.T) (mcp.Server, *mcptest.Log) {
	log := mcptest.NewLog(t)
	return mcp.Server{Name: "calc", Command: mcptest.Executable(t), Env: mcptest.StdioEnv(log.Path)}, log
}

// startMCP runs a Manager for servers until the test ends and waits until
// every server is connected. Start it before the engine so that it stops
// after the engine.
func startMCP(t *testing.T, servers ...mcp.Server) *mcp.Manager {
	t.Helper()
	m := mcp.New(servers, mcp.Options{Logger: testLogger(), MinBackoff: 50 * time.Millisecond, MaxBackoff: time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Errorf("mcp Manager.Run did not return")
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		up := true
		for _, st := range m.Status() {
			up = up && st.Connected
		}
		if up {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("MCP servers not connected: %+v", m.Status())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// addCall is the model's call of calc.add(2, 3).
var addCall = llm.ToolCall{Name: "calc_add", Arguments: json.RawMessage(`{"a":2,"b":3}`)}

// checkAddExchange fails unless p carries one calc_add call with a=2, b=3
// and its result 5, in the format's native shapes.
func checkAddExchange(t *testing.T, p llmtest.Prompt, format llm.Format) {
	t.Helper()
	if p.Format != format {
		t.Fatalf("request format %q, want %q", p.Format, format)
	}
	xs := mcptest.Exchanges(p)
	if len(xs) != 1 {
		t.Fatalf("%d tool calls in the request, want 1: %+v", len(xs), p.ToolParts)
	}
	x := xs[0]
	if x.Call.Name != "calc_add" || x.Arg("a") != 2.0 || x.Arg("b") != 3.0 || x.CallPart.Shape != mcptest.CallShapes[format] {
		t.Errorf("call %s %s in shape %q, want calc_add {a:2,b:3} in %q", x.Call.Name, x.Call.Arguments, x.CallPart.Shape, mcptest.CallShapes[format])
	}
	if !x.Answered || x.Result.Content != "5" || x.Result.IsError || x.ResultPart.Shape != mcptest.ResultShapes[format] || !strings.Contains(x.NativeResult(), "5") {
		t.Errorf("result %+v in shape %q (%s), want 5 in %q", x.Result, x.ResultPart.Shape, x.NativeResult(), mcptest.ResultShapes[format])
	}
}

// checkAddLogged fails unless the calc server logged exactly one add call,
// with a=2 and b=3.
func checkAddLogged(t *testing.T, log *mcptest.Log) {
	t.Helper()
	adds := log.Calls("add")
	if len(adds) != 1 || adds[0].Arg("a") != 2.0 || adds[0].Arg("b") != 3.0 {
		t.Fatalf("the MCP server logged %+v, want one add with a=2, b=3", log.Entries())
	}
}

// toolRoundTrip: a mention asks what 2+3 is; the model calls calc_add, the
// MCP server runs it, the next request carries the result, the answer
// reaches the thread; a follow-up in the thread (no mention) still carries
// the call and its result.
func toolRoundTrip(t *testing.T, e *env, log *mcptest.Log, format llm.Format) {
	t.Helper()
	e.h.Gateway.Enqueue(llmtest.Script{ToolCalls: []llm.ToolCall{addCall}}, llmtest.Script{Text: "2 + 3 = 5."})
	ev := e.slack.Mention("U1", "C1", "<@UBOT> what is 2+3?", "")
	e.slack.SendEvent(ev)
	e.waitThread("C1", ev.TS, e.expectClassic("2 + 3 = 5.\n\n🔧 Used calc.add"))
	checkAddLogged(t, log)
	ps := e.h.Prompts()
	if len(ps) != 2 {
		t.Fatalf("%d model calls, want 2", len(ps))
	}
	if _, ok := ps[0].Tool("calc_add"); !ok || ps[0].LastUser() != "what is 2+3?" {
		t.Fatalf("first request: tools %v, user %q", mcptest.OfferedTools(ps[0]), ps[0].LastUser())
	}
	if len(mcptest.Exchanges(ps[0])) != 0 {
		t.Fatalf("the first request already carries tool calls: %+v", ps[0].ToolParts)
	}
	checkAddExchange(t, ps[1], format)

	e.h.Gateway.Enqueue(llmtest.Script{Text: "You're welcome."})
	e.slack.SendEvent(e.slack.ChannelMessage("U1", "C1", "thanks!", ev.TS))
	e.waitThread("C1", ev.TS, append(e.expectClassic("2 + 3 = 5.\n\n🔧 Used calc.add"), e.expectClassic("You're welcome.")...))
	p := e.lastPrompt()
	if p.LastUser() != "thanks!" {
		t.Fatalf("follow-up request ends with %q", p.LastUser())
	}
	checkAddExchange(t, p, format)
	if n := len(log.Calls("")); n != 1 {
		t.Errorf("the follow-up called the server again: %+v", log.Entries())
	}
}

// TestSlackToolCallEveryFormat runs the round trip in each wire format with
// the stdio calc server.
func TestSlackToolCallEveryFormat(t *testing.T) {
	t.Parallel()
	for _, f := range toolFormats {
		t.Run(string(f.format), func(t *testing.T) {
			t.Parallel()
			srv, log := stdioCalc(t)
			tools := startMCP(t, srv)
			e := newEnv(t, envOptions{engine: func(o *bot.Options) {
				o.Defaults.Model = f.model
				o.Tools.Source = tools
			}})
			toolRoundTrip(t, e, log, f.format)
		})
	}
}

// TestSlackToolCallOverHTTP runs the round trip once with the calc server
// over streamable HTTP (in-process), behind an Authorization check.
func TestSlackToolCallOverHTTP(t *testing.T) {
	t.Parallel()
	const token = "Bearer s3cret"
	log := mcptest.NewLog(t)
	h := mcptest.NewHTTPHandler(mcptest.HTTPOptions{Options: mcptest.Options{LogPath: log.Path}, Authorization: token})
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	t.Cleanup(h.Close)
	tools := startMCP(t, mcp.Server{Name: "calc", URL: ts.URL + "/mcp", Headers: map[string]string{"Authorization": token}})
	if st := tools.Status()[0]; st.Transport != "http" || st.Tools != len(mcptest.ToolNames) {
		t.Fatalf("status %+v", st)
	}
	e := newEnv(t, envOptions{engine: func(o *bot.Options) {
		o.Defaults.Model = "claude-sonnet-4-5"
		o.Tools.Source = tools
	}})
	toolRoundTrip(t, e, log, llm.FormatAnthropic)
	for _, a := range h.Authorizations() {
		if a != token {
			t.Fatalf("a request to the MCP server had Authorization %q", a)
		}
	}
}

// TestSlackToolAllowListPerChannel: with no tool allowed by default and
// calc.add allowed in C2, a user in C1 is offered no tool, a user in C2
// only calc_add; a call of a tool not offered is refused to the model and
// never reaches the server.
func TestSlackToolAllowListPerChannel(t *testing.T) {
	t.Parallel()
	srv, log := stdioCalc(t)
	tools := startMCP(t, srv)
	if n := len(tools.Tools()); n != 3 {
		t.Fatalf("the server offers %d tools, want 3", n)
	}
	e := newEnv(t, envOptions{engine: func(o *bot.Options) {
		o.Tools.Source = tools
		o.Tools.Allow = []string{}
		o.Tools.Channels = map[string]bot.ToolScope{"C2": {Allow: []string{"calc.add"}}}
	}})

	e.h.Gateway.Enqueue(llmtest.Script{Text: "I have no tools here."})
	ev := e.slack.Mention("U1", "C1", "<@UBOT> what is 2+3?", "")
	e.slack.SendEvent(ev)
	e.waitThread("C1", ev.TS, e.expectClassic("I have no tools here."))
	if p := e.lastPrompt(); len(p.Tools) != 0 {
		t.Fatalf("C1 was offered %v", mcptest.OfferedTools(p))
	}

	// In C2 the model (wrongly) calls calc_fail, which C2 does not allow.
	e.h.Gateway.Enqueue(
		llmtest.Script{ToolCalls: []llm.ToolCall{{Name: "calc_fail", Arguments: json.RawMessage(`{}`)}}},
		llmtest.Script{Text: "That tool is not available."})
	ev2 := e.slack.Mention("U2", "C2", "<@UBOT> try the fail tool", "")
	e.slack.SendEvent(ev2)
	e.waitFor("the answer in C2", 15*time.Second, func() bool {
		return strings.Contains(joinBodies(e.slack.BotReplies("C2", ev2.TS)), "That tool is not available.")
	})
	ps := e.h.Prompts()
	if len(ps) != 3 {
		t.Fatalf("%d model calls, want 3", len(ps))
	}
	if got := mcptest.OfferedTools(ps[1]); !slices.Equal(got, []string{"calc_add"}) {
		t.Fatalf("C2 was offered %v, want only calc_add", got)
	}
	xs := mcptest.Exchanges(ps[2])
	if len(xs) != 1 || !xs[0].Answered || !strings.Contains(xs[0].Result.Content, `no tool named "calc_fail"`) {
		t.Fatalf("the refused call's result: %+v", xs)
	}
	if got := mcptest.OfferedTools(ps[2]); !slices.Equal(got, []string{"calc_add"}) {
		t.Fatalf("the second round offered %v", got)
	}
	if calls := log.Calls(""); len(calls) != 0 {
		t.Fatalf("the MCP server was called: %+v", calls)
	}
}

// TestSlackToolTimeoutAndFailure: in one round the model calls calc_hang
// and calc_fail. The hanging call is cut by the engine's tool timeout (the
// server sees it cancelled), the failing one's isError result is reported:
// the next request carries both as error results, and the answer arrives.
func TestSlackToolTimeoutAndFailure(t *testing.T) {
	t.Parallel()
	srv, log := stdioCalc(t)
	tools := startMCP(t, srv)
	e := newEnv(t, envOptions{engine: func(o *bot.Options) {
		o.Defaults.Model = "claude-sonnet-4-5"
		o.Tools.Source = tools
		o.Tools.Timeout = 2 * time.Second
	}})
	e.h.Gateway.Enqueue(
		llmtest.Script{ToolCalls: []llm.ToolCall{
			{Name: "calc_hang", Arguments: json.RawMessage(`{}`)},
			{Name: "calc_fail", Arguments: json.RawMessage(`{}`)},
		}},
		llmtest.Script{Text: "Both tools failed."})
	ev := e.slack.Mention("U1", "C1", "<@UBOT> run them", "")
	e.slack.SendEvent(ev)
	e.waitThread("C1", ev.TS, e.expectClassic("Both tools failed.\n\n🔧 Used calc.hang, calc.fail"))

	ps := e.h.Prompts()
	if len(ps) != 2 {
		t.Fatalf("%d model calls, want 2", len(ps))
	}
	xs := mcptest.Exchanges(ps[1])
	if len(xs) != 2 || !xs[0].Answered || !xs[1].Answered {
		t.Fatalf("exchanges %+v", xs)
	}
	hang, fail := xs[0], xs[1]
	if hang.Call.Name != "calc_hang" || !hang.Result.IsError || !strings.Contains(hang.Result.Content, "did not answer within 2s") {
		t.Errorf("hang's result: %+v", hang.Result)
	}
	if fail.Call.Name != "calc_fail" || !fail.Result.IsError || fail.Result.Content != "boom" || fail.ResultPart.Shape != "tool_result" {
		t.Errorf("fail's result: %+v (%s)", fail.Result, fail.NativeResult())
	}
	if v, _ := fail.ResultPart.Native["is_error"].(bool); !v {
		t.Errorf("fail's tool_result lacks is_error: %s", fail.NativeResult())
	}
	// The server saw both calls, and the hanging one cancelled.
	e.waitFor("the server to see hang cancelled", 15*time.Second, func() bool { return log.Has(mcptest.EventCancelled, "hang") })
	if len(log.Calls("hang")) != 1 || len(log.Calls("fail")) != 1 {
		t.Fatalf("server log %+v", log.Entries())
	}
}
