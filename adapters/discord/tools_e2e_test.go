package discord

// End to end with tools: the real discordgo client against discordtest,
// the real engine and llm client against the fake gateway, and a real MCP
// client (internal/mcp) connected to the mcptest calc server over stdio
// (this test binary run again, see TestMain).

import (
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/cometbot/cometbot/adapters/discord/discordtest"
	"github.com/cometbot/cometbot/bot"
	"github.com/cometbot/cometbot/bot/bottest"
	"github.com/cometbot/cometbot/internal/mcp"
	"github.com/cometbot/cometbot/internal/mcp/mcptest"
	"github.com/cometbot/cometbot/llm"
	"github.com/cometbot/cometbot/llm/llmtest"
)

func TestMain(m *testing.M) {
	mcptest.ServeStdio() // the calc server, when run again as one
	os.Exit(m.Run())
}

// startMCP runs a Manager for servers until the test ends and waits until
// every server is connected. Start it before the engine so that it stops
// after the engine.
func startMCP(t *testing.T, servers ...mcp.Server) *mcp.Manager {
	t.Helper()
	m := mcp.New(servers, mcp.Options{Logger: testLogger(t), MinBackoff: 50 * time.Millisecond, MaxBackoff: time.Second})
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

// A mention asks what 2+3 is; the model (Responses format) calls calc_add,
// the stdio MCP server runs it, the next request carries the result as a
// function_call_output, the answer reaches the thread; a follow-up in the
// thread (no mention) still carries the call and its result.
func TestE2EToolCallThroughMCP(t *testing.T) {
	t.Parallel()
	const format = llm.FormatResponses
	log := mcptest.NewLog(t)
	tools := startMCP(t, mcp.Server{Name: "calc", Command: mcptest.Executable(t), Env: mcptest.StdioEnv(log.Path)})
	h := bottest.New(t, bottest.Options{Engine: func(o *bot.Options) {
		o.Defaults.Model = "gpt-5-mini"
		o.Tools.Source = tools
	}})
	e := start(t, h.Engine, envOpts{})

	h.Gateway.Enqueue(
		llmtest.Script{ToolCalls: []llm.ToolCall{{Name: "calc_add", Arguments: json.RawMessage(`{"a":2,"b":3}`)}}},
		llmtest.Script{Text: "2 + 3 = 5."})
	um := e.srv.UserMessage(discordtest.Post{ChannelID: general, Content: mention(botID) + " what is 2+3?"})
	const answer = "2 + 3 = 5.\n\n🔧 Used calc.add"
	e.waitFor("the answer in the thread", func() bool {
		ms := e.srv.BotMessages(um.ID)
		return len(ms) == 1 && ms[0].Content == answer
	})
	adds := log.Calls("add")
	if len(adds) != 1 || adds[0].Arg("a") != 2.0 || adds[0].Arg("b") != 3.0 {
		t.Fatalf("the MCP server logged %+v, want one add with a=2, b=3", log.Entries())
	}
	ps := h.Prompts()
	if len(ps) != 2 {
		t.Fatalf("%d model calls, want 2", len(ps))
	}
	if _, ok := ps[0].Tool("calc_add"); !ok {
		t.Fatalf("calc_add not offered: %v", mcptest.OfferedTools(ps[0]))
	}
	checkAdd := func(p llmtest.Prompt) {
		t.Helper()
		xs := mcptest.Exchanges(p)
		if p.Format != format || len(xs) != 1 {
			t.Fatalf("%s request with tool parts %+v", p.Format, p.ToolParts)
		}
		x := xs[0]
		if x.Call.Name != "calc_add" || x.Arg("a") != 2.0 || x.Arg("b") != 3.0 || x.CallPart.Shape != "function_call" {
			t.Errorf("call %s %s in shape %q", x.Call.Name, x.Call.Arguments, x.CallPart.Shape)
		}
		if !x.Answered || x.Result.Content != "5" || x.ResultPart.Shape != "function_call_output" || x.ResultPart.Native["output"] != "5" {
			t.Errorf("result %+v in shape %q (%s)", x.Result, x.ResultPart.Shape, x.NativeResult())
		}
	}
	checkAdd(ps[1])

	h.Gateway.Enqueue(llmtest.Script{Text: "You're welcome."})
	e.srv.UserMessage(discordtest.Post{ChannelID: um.ID, Content: "thanks!"})
	e.waitFor("the follow-up answer", func() bool {
		ms := e.srv.BotMessages(um.ID)
		return len(ms) == 2 && ms[1].Content == "You're welcome."
	})
	p, _ := h.LastPrompt()
	if p.LastUser() != "thanks!" {
		t.Fatalf("follow-up request ends with %q", p.LastUser())
	}
	checkAdd(p)
	if n := len(log.Calls("")); n != 1 {
		t.Errorf("the follow-up called the server again: %+v", log.Entries())
	}
	checkAllowedMentions(t, e.srv)
}
