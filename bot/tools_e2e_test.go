package bot_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/cometbot/cometbot/bot"
	"github.com/cometbot/cometbot/bot/bottest"
	"github.com/cometbot/cometbot/llm"
	"github.com/cometbot/cometbot/llm/llmtest"
)

// adder is a ToolSource with one tool, calc.add, that logs its calls.
type adder struct {
	mu    sync.Mutex
	calls []string
}

func (a *adder) Tools() []bot.Tool {
	return []bot.Tool{{Server: "calc", Name: "add",
		Spec: llm.Tool{Name: "calc_add", Description: "Add two numbers", Parameters: json.RawMessage(`{"type":"object","properties":{"a":{"type":"number"},"b":{"type":"number"}},"required":["a","b"]}`)},
		Call: func(_ context.Context, args json.RawMessage) (bot.ToolOutput, error) {
			var in struct{ A, B float64 }
			if err := json.Unmarshal(args, &in); err != nil {
				return bot.ToolOutput{}, err
			}
			a.mu.Lock()
			a.calls = append(a.calls, string(args))
			a.mu.Unlock()
			return bot.ToolOutput{Text: fmt.Sprint(in.A + in.B)}, nil
		}}}
}

// resultShapes is where each format carries a tool result.
var resultShapes = map[string]string{"chat": "tool", "responses": "function_call_output", "anthropic": "tool_result", "gemini": "functionResponse"}

// TestToolLoopInEveryFormat: through the real llm client and the fake
// gateway, the model calls calc.add({"a":2,"b":3}), the tool runs, the next
// request carries the result 5 in the format's own shape, the final answer
// is delivered, and a follow-up still carries the call and its result.
func TestToolLoopInEveryFormat(t *testing.T) {
	for _, f := range formatModels {
		t.Run(f.format, func(t *testing.T) {
			tools := &adder{}
			h := bottest.New(t, bottest.Options{Engine: func(o *bot.Options) {
				o.Defaults.Model = f.model
				o.Tools.Source = tools
			}})
			h.Gateway.Enqueue(
				llmtest.Script{ToolCalls: []llm.ToolCall{{ID: "call_1", Name: "calc_add", Arguments: json.RawMessage(`{"a":2,"b":3}`)}}},
				llmtest.Script{Text: "2 + 3 = 5."},
			)
			final, failed := sayWith(t, h, bot.Message{Platform: "t", Workspace: "W", Channel: "D", DM: true, Author: bot.User{ID: "U"}, ID: "1", EventID: "e1", Text: "what is 2+3?"})
			if failed != "" || !strings.HasPrefix(final, "2 + 3 = 5.") || !strings.Contains(final, "Used calc.add") {
				t.Fatalf("final=%q failed=%q", final, failed)
			}
			if len(tools.calls) != 1 || tools.calls[0] != `{"a":2,"b":3}` {
				t.Fatalf("tool calls %v", tools.calls)
			}
			ps := h.Prompts()
			if len(ps) != 2 {
				t.Fatalf("%d model calls", len(ps))
			}
			if _, ok := ps[0].Tool("calc_add"); !ok {
				t.Fatalf("the tool was not offered: %+v", ps[0].Tools)
			}
			assertResult(t, ps[1], f.format, "5")
			// A follow-up keeps the exchange.
			h.Gateway.SetReply("ok")
			if _, failed := sayWith(t, h, bot.Message{Platform: "t", Workspace: "W", Channel: "D", DM: true, Author: bot.User{ID: "U"}, ID: "2", EventID: "e2", Text: "thanks"}); failed != "" {
				t.Fatalf("follow-up failed: %q", failed)
			}
			assertResult(t, h.Prompts()[2], f.format, "5")
		})
	}
}

func assertResult(t *testing.T, p llmtest.Prompt, format, want string) {
	t.Helper()
	for _, parts := range p.ToolParts {
		for _, tp := range parts {
			if tp.Shape == resultShapes[format] {
				if b, _ := json.Marshal(tp.Native); strings.Contains(string(b), want) {
					return
				}
			}
		}
	}
	t.Fatalf("%s request lacks a %s carrying %q: %+v", format, resultShapes[format], want, p.ToolParts)
}

// TestWebSearchPerFormat: web search maps to each format's native tool;
// citations become links; Chat Completions answers without it and says so.
func TestWebSearchPerFormat(t *testing.T) {
	native := map[string]string{"responses": "web_search", "anthropic": "web_search_20250305", "gemini": "google_search"}
	for _, f := range formatModels {
		t.Run(f.format, func(t *testing.T) {
			h := bottest.New(t, bottest.Options{Engine: func(o *bot.Options) { o.Defaults.Model = f.model; o.Tools.WebSearch = true }})
			h.Gateway.Enqueue(llmtest.Script{Text: "It rained.", Citations: []llm.Citation{{URL: "https://news.example/rain", Title: "Rain @everyone"}, {URL: "https://news.example/rain", Title: "dup"}}})
			final, failed := sayWith(t, h, bot.Message{Platform: "t", Workspace: "W", Channel: "D", DM: true, Author: bot.User{ID: "U"}, ID: "1", EventID: "e1", Text: "weather yesterday?"})
			if failed != "" {
				t.Fatalf("failed %q", failed)
			}
			p, _ := h.LastPrompt()
			if f.format == "chat" {
				if p.WebSearch || !strings.Contains(final, "Web search needs a Responses, Claude or Gemini model") {
					t.Fatalf("chat: search=%v final=%q", p.WebSearch, final)
				}
				return
			}
			if !p.WebSearch || p.WebSearchTool != native[f.format] {
				t.Fatalf("search tool %q (%v), want %q", p.WebSearchTool, p.WebSearch, native[f.format])
			}
			if !strings.Contains(final, "Sources: [Rain @everyone](https://news.example/rain)") || strings.Count(final, "news.example") != 1 {
				t.Fatalf("citations not rendered once: %q", final)
			}
		})
	}
}
