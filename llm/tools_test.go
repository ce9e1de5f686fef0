package llm_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/cometbot/cometbot/llm"
	"github.com/cometbot/cometbot/llm/llmtest"
)

// addTool is a tool with a schema as MCP servers write them: $schema and
// additionalProperties included (Gemini refuses both).
var addTool = llm.Tool{
	Name:        "add",
	Description: "Adds two numbers.",
	Parameters: json.RawMessage(`{"$schema":"http://json-schema.org/draft-07/schema#","type":"object",` +
		`"properties":{"a":{"type":"number","description":"first"},"b":{"type":"number"}},"required":["a","b"],"additionalProperties":false}`),
}

var toolFormats = append(append([]formatCase(nil), formats...),
	formatCase{"gemini-3", "gemini-3-pro-preview", llm.FormatGemini, "/v1beta/models/gemini-3-pro-preview:streamGenerateContent"})

// caller returns Stream or Complete as one function, counting announced
// tool calls.
func caller(c *llm.Client, stream bool, announced *[]llm.ToolCall) func(llm.Request) (*llm.Response, error) {
	return func(r llm.Request) (*llm.Response, error) {
		if !stream {
			return c.Complete(context.Background(), r)
		}
		return c.Stream(context.Background(), r, func(d llm.Delta) error {
			if d.ToolCall != nil {
				*announced = append(*announced, *d.ToolCall)
			}
			return nil
		})
	}
}

// jsonEqual reports whether two JSON texts hold the same value.
func jsonEqual(a, b []byte) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && reflect.DeepEqual(x, y)
}

// path walks a decoded JSON value by keys and indexes.
func path(v any, keys ...any) any {
	for _, k := range keys {
		switch k := k.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			l, _ := v.([]any)
			if k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

// TestToolRoundTrip: in every format, streamed and whole, the model calls
// add({"a":2,"b":3}); the client returns the call (announced once while
// streaming); the next request carries the call and the result "5" in the
// format's own shape, which the strict fake accepts, and the model answers.
func TestToolRoundTrip(t *testing.T) {
	t.Parallel()
	for _, fc := range toolFormats {
		for _, stream := range []bool{true, false} {
			name := fc.name + map[bool]string{true: "/stream", false: "/complete"}[stream]
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				s := llmtest.New(t)
				c := newClient(t, s)
				var ann []llm.ToolCall
				call := caller(c, stream, &ann)
				s.Enqueue(
					llmtest.Script{Text: "Let me add them.", ToolCalls: []llm.ToolCall{{Name: "add", Arguments: json.RawMessage(`{"a":2,"b":3}`)}}},
					llmtest.Script{Text: "2 + 3 = 5."})
				req := llm.Request{Model: fc.model, Tools: []llm.Tool{addTool}, Messages: []llm.Message{{Role: llm.RoleUser, Content: "What is 2+3?"}}}
				resp, err := call(req)
				if err != nil {
					t.Fatal(err)
				}
				if resp.Text != "Let me add them." || resp.StopReason != llm.StopToolCalls || len(resp.ToolCalls) != 1 {
					t.Fatalf("first answer %+v", resp)
				}
				tc := resp.ToolCalls[0]
				if tc.Name != "add" || tc.ID == "" || !jsonEqual(tc.Arguments, []byte(`{"a":2,"b":3}`)) {
					t.Errorf("call %+v (%s)", tc, tc.Arguments)
				}
				if (fc.model == "gemini-3-pro-preview") != (tc.Signature != "") {
					t.Errorf("signature %q", tc.Signature)
				}
				if stream && (len(ann) != 1 || ann[0].Name != "add" || ann[0].ID != tc.ID) {
					t.Errorf("announced %+v", ann)
				}

				req.Messages = append(req.Messages,
					llm.Message{Role: llm.RoleAssistant, Content: resp.Text, ToolCalls: resp.ToolCalls},
					llm.Message{Role: llm.RoleTool, ToolResults: []llm.ToolResult{{CallID: tc.ID, Name: tc.Name, Content: "5"}}})
				resp, err = call(req)
				if err != nil {
					t.Fatal(err)
				}
				if resp.Text != "2 + 3 = 5." || resp.StopReason != llm.StopEnd || resp.ToolCalls != nil {
					t.Errorf("second answer %+v", resp)
				}

				recs := s.Requests()
				if len(recs) != 2 {
					t.Fatalf("%d requests", len(recs))
				}
				p1 := recs[0].MustDecode()
				td, ok := p1.Tool("add")
				if !ok || len(p1.Tools) != 1 || td.Description != "Adds two numbers." || path(td.Parameters, "properties", "a", "type") != "number" {
					t.Errorf("tools %+v", p1.Tools)
				}
				if fc.format == llm.FormatGemini && (td.Parameters["additionalProperties"] != nil || td.Parameters["$schema"] != nil) {
					t.Errorf("gemini schema not reduced: %v", td.Parameters)
				}
				if fc.format == llm.FormatResponses && td.Native["strict"] != false {
					t.Errorf("responses strict = %v", td.Native["strict"])
				}
				p := recs[1].MustDecode()
				checkToolHistory(t, fc.format, p, tc, "5", false)
			})
		}
	}
}

// checkToolHistory checks that p's last messages are the assistant's text
// and call, then its result, in format f's shape.
func checkToolHistory(t *testing.T, f llm.Format, p llmtest.Prompt, tc llm.ToolCall, result string, isErr bool) {
	t.Helper()
	n := len(p.Messages)
	if n < 3 {
		t.Fatalf("messages %+v", p.Messages)
	}
	a, r := p.Messages[n-2], p.Messages[n-1]
	if a.Role != llm.RoleAssistant || a.Content != "Let me add them." || len(a.ToolCalls) != 1 {
		t.Fatalf("assistant message %+v", a)
	}
	got := a.ToolCalls[0]
	if got.Name != tc.Name || !jsonEqual(got.Arguments, tc.Arguments) || got.Signature != tc.Signature {
		t.Errorf("echoed call %+v, want %+v", got, tc)
	}
	if f != llm.FormatGemini && got.ID != tc.ID {
		t.Errorf("echoed call id %q, want %q", got.ID, tc.ID)
	}
	if len(r.ToolResults) != 1 {
		t.Fatalf("result message %+v", r)
	}
	res := r.ToolResults[0]
	if f != llm.FormatGemini && res.CallID != tc.ID {
		t.Errorf("result for %q, want %q", res.CallID, tc.ID)
	}
	cp, rp := p.ToolParts[n-2][0], p.ToolParts[n-1][0]
	if cp.Kind != llmtest.PartToolCall || rp.Kind != llmtest.PartToolResult {
		t.Errorf("kinds %s %s", cp.Kind, rp.Kind)
	}
	nc, nr := cp.Native, rp.Native
	switch f {
	case llm.FormatChat:
		wantText := result
		if isErr {
			wantText = "Error: " + result
		}
		if r.Role != llm.RoleTool || rp.Shape != "tool" || nr["role"] != "tool" || nr["tool_call_id"] != tc.ID || nr["content"] != wantText {
			t.Errorf("chat result %s %v", rp.Shape, nr)
		}
		if cp.Shape != "tool_calls" || nc["id"] != tc.ID || path(nc, "function", "name") != "add" {
			t.Errorf("chat call %s %v", cp.Shape, nc)
		}
		if args, ok := path(nc, "function", "arguments").(string); !ok || !jsonEqual([]byte(args), tc.Arguments) {
			t.Errorf("chat arguments %v", path(nc, "function", "arguments"))
		}
	case llm.FormatResponses:
		wantText := result
		if isErr {
			wantText = "Error: " + result
		}
		if r.Role != llm.RoleTool || rp.Shape != "function_call_output" || nr["type"] != "function_call_output" || nr["call_id"] != tc.ID || nr["output"] != wantText {
			t.Errorf("responses result %s %v", rp.Shape, nr)
		}
		if cp.Shape != "function_call" || nc["call_id"] != tc.ID || nc["name"] != "add" || nc["id"] != nil {
			t.Errorf("responses call %s %v", cp.Shape, nc)
		}
		if args, ok := nc["arguments"].(string); !ok || !jsonEqual([]byte(args), tc.Arguments) {
			t.Errorf("responses arguments %v", nc["arguments"])
		}
	case llm.FormatAnthropic:
		if r.Role != llm.RoleUser || rp.Shape != "tool_result" || nr["tool_use_id"] != tc.ID || nr["content"] != result || (nr["is_error"] == true) != isErr {
			t.Errorf("anthropic result %s %v", rp.Shape, nr)
		}
		if cp.Shape != "tool_use" || nc["id"] != tc.ID || nc["name"] != "add" || path(nc, "input", "a") != 2.0 {
			t.Errorf("anthropic call %s %v", cp.Shape, nc)
		}
	case llm.FormatGemini:
		key := "result"
		if isErr {
			key = "error"
		}
		if r.Role != llm.RoleUser || rp.Shape != "functionResponse" || path(nr, "functionResponse", "name") != "add" ||
			path(nr, "functionResponse", "response", key) != result || len(path(nr, "functionResponse", "response").(map[string]any)) != 1 {
			t.Errorf("gemini result %s %v", rp.Shape, nr)
		}
		if cp.Shape != "functionCall" || path(nc, "functionCall", "name") != "add" || path(nc, "functionCall", "args", "b") != 3.0 ||
			path(nc, "functionCall", "id") != nil {
			t.Errorf("gemini call %s %v", cp.Shape, nc)
		}
		if tc.Signature != "" && nc["thoughtSignature"] != tc.Signature {
			t.Errorf("gemini signature %v, want %q", nc["thoughtSignature"], tc.Signature)
		}
	}
}

// TestParallelToolCallsAndErrorResult: two calls in one step come back in
// order, and their results — one of them a failure — go back in the
// format's shape for a failed call.
func TestParallelToolCallsAndErrorResult(t *testing.T) {
	t.Parallel()
	for _, fc := range toolFormats {
		t.Run(fc.name, func(t *testing.T) {
			t.Parallel()
			s := llmtest.New(t)
			c := newClient(t, s)
			s.Enqueue(llmtest.Script{Text: "Let me add them.", ToolCalls: []llm.ToolCall{
				{Name: "clock"}, {Name: "add", Arguments: json.RawMessage(`{"a":2,"b":3,"note":"é \"q\" \n 🦊"}`)}}})
			req := llm.Request{Model: fc.model, Tools: []llm.Tool{addTool, {Name: "clock", Description: "Tells the time."}},
				Messages: []llm.Message{{Role: llm.RoleUser, Content: "time, and 2+3?"}}}
			var ann []llm.ToolCall
			resp, err := caller(c, true, &ann)(req)
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.ToolCalls) != 2 || resp.ToolCalls[0].Name != "clock" || string(resp.ToolCalls[0].Arguments) != "{}" ||
				resp.ToolCalls[1].Name != "add" || !jsonEqual(resp.ToolCalls[1].Arguments, []byte(`{"a":2,"b":3,"note":"é \"q\" \n 🦊"}`)) ||
				resp.ToolCalls[0].ID == resp.ToolCalls[1].ID || len(ann) != 2 {
				t.Fatalf("calls %+v announced %+v", resp.ToolCalls, ann)
			}
			cl, ad := resp.ToolCalls[0], resp.ToolCalls[1]
			req.Messages = append(req.Messages,
				llm.Message{Role: llm.RoleAssistant, Content: resp.Text, ToolCalls: resp.ToolCalls},
				// Results in another order than the calls.
				llm.Message{Role: llm.RoleTool, ToolResults: []llm.ToolResult{
					{CallID: ad.ID, Name: "add", Content: "5"},
					{CallID: cl.ID, Name: "clock", Content: "clock unavailable", IsError: true}}})
			if _, err := caller(c, true, &ann)(req); err != nil {
				t.Fatal(err)
			}
			rec, _ := s.LastRequest()
			p := rec.MustDecode()
			last := p.Messages[len(p.Messages)-1]
			var results []llm.ToolResult
			for _, m := range p.Messages[len(p.Messages)-2:] {
				if m.Role != llm.RoleAssistant {
					results = append(results, m.ToolResults...)
				}
			}
			if len(results) != 2 {
				t.Fatalf("results %+v (last %+v)", results, last)
			}
			// The client sends results in the calls' order.
			if fc.format != llm.FormatGemini && (results[0].CallID != cl.ID || results[1].CallID != ad.ID) {
				t.Errorf("results %+v", results)
			}
			switch fc.format {
			case llm.FormatChat, llm.FormatResponses:
				if results[0].Content != "Error: clock unavailable" || results[1].Content != "5" {
					t.Errorf("results %+v", results)
				}
			default:
				if !results[0].IsError || results[0].Content != "clock unavailable" || results[1].IsError || results[1].Content != "5" {
					t.Errorf("results %+v", results)
				}
			}
		})
	}
}

// TestToolHistoryRepaired: a history that breaks the formats' pairing
// rules — a result whose call was trimmed away, a user message between a
// call and its result, a call never answered, ids repeated from step to
// step (Gemini's made-up ones) or with characters Anthropic refuses — is
// sent in a shape every strict fake accepts.
func TestToolHistoryRepaired(t *testing.T) {
	t.Parallel()
	msgs := []llm.Message{
		{Role: llm.RoleTool, ToolResults: []llm.ToolResult{{CallID: "gone", Name: "add", Content: "1"}}},
		{Role: llm.RoleUser, Content: "add 2 and 3"},
		{Role: llm.RoleAssistant, ToolCalls: []llm.ToolCall{{ID: "call_1", Name: "add", Arguments: json.RawMessage(`{"a":2,"b":3}`)}}},
		{Role: llm.RoleUser, Content: "hurry up"},
		{Role: llm.RoleTool, ToolResults: []llm.ToolResult{{CallID: "call_1", Name: "add", Content: "5"}}},
		{Role: llm.RoleAssistant, Content: "5. Now the time.", ToolCalls: []llm.ToolCall{{ID: "call_1", Name: "clock"}}},
		{Role: llm.RoleUser, Content: "never mind the time"},
		{Role: llm.RoleAssistant, ToolCalls: []llm.ToolCall{{ID: "functions.add:0", Name: "add", Arguments: json.RawMessage(`{"a":`)}}},
		{Role: llm.RoleTool, Content: "(the user attached this)", ToolResults: []llm.ToolResult{{CallID: "functions.add:0", Content: "bad arguments", IsError: true}}},
	}
	for _, fc := range toolFormats {
		t.Run(fc.name, func(t *testing.T) {
			t.Parallel()
			s := llmtest.New(t, llmtest.Options{Reply: "ok"})
			c := newClient(t, s)
			resp, err := c.Stream(context.Background(), llm.Request{Model: fc.model, Tools: []llm.Tool{addTool}, Messages: msgs}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Text != "ok" {
				t.Errorf("text %q", resp.Text)
			}
			rec, _ := s.LastRequest()
			p := rec.MustDecode()
			var calls []llm.ToolCall
			var results []llm.ToolResult
			var userText []string
			for _, m := range p.Messages {
				calls = append(calls, m.ToolCalls...)
				results = append(results, m.ToolResults...)
				if m.Role == llm.RoleUser && m.Content != "" {
					userText = append(userText, m.Content)
				}
			}
			if len(calls) != 3 || len(results) != 3 {
				t.Fatalf("calls %+v results %+v", calls, results)
			}
			if results[0].Content != "5" || !strings.Contains(results[1].Content, "no result") || !strings.Contains(results[2].Content, "bad arguments") {
				t.Errorf("results %+v", results)
			}
			if !jsonEqual(calls[2].Arguments, []byte(`{"_raw":"{\"a\":"}`)) {
				t.Errorf("unparsable arguments sent as %s", calls[2].Arguments)
			}
			if fc.format != llm.FormatGemini && (calls[0].ID == calls[1].ID || calls[2].ID == "") {
				t.Errorf("ids %q %q %q", calls[0].ID, calls[1].ID, calls[2].ID)
			}
			joined := strings.Join(userText, "|")
			if !strings.Contains(joined, "hurry up") || !strings.Contains(joined, "never mind the time") || !strings.Contains(joined, "(the user attached this)") ||
				strings.Index(joined, "add 2 and 3") > strings.Index(joined, "hurry up") {
				t.Errorf("user text %q", userText)
			}
		})
	}
}

// TestWebSearch: the request carries each native format's search tool and
// the answer's citations come back deduplicated, in order; Chat
// Completions refuses before sending (ErrNoWebSearch), also after a native
// format fell back to it.
func TestWebSearch(t *testing.T) {
	t.Parallel()
	cites := []llm.Citation{{URL: "https://go.dev/doc/go1.26", Title: "Go 1.26 Release Notes"}, {URL: "https://go.dev/blog", Title: "The Go Blog"}}
	tools := map[llm.Format]string{llm.FormatResponses: "web_search", llm.FormatAnthropic: "web_search_20250305", llm.FormatGemini: "google_search"}
	for _, fc := range formats {
		for _, stream := range []bool{true, false} {
			name := fc.name + map[bool]string{true: "/stream", false: "/complete"}[stream]
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				s := llmtest.New(t)
				c := newClient(t, s)
				s.Enqueue(llmtest.Script{Text: "Go 1.26 is out.", Citations: append(cites, cites[0])})
				var ann []llm.ToolCall
				resp, err := caller(c, stream, &ann)(llm.Request{Model: fc.model, WebSearch: true, Tools: []llm.Tool{addTool},
					Messages: []llm.Message{{Role: llm.RoleUser, Content: "what's new in Go?"}}})
				if fc.format == llm.FormatChat {
					if !errors.Is(err, llm.ErrNoWebSearch) || resp != nil || s.Calls() != 0 {
						t.Fatalf("resp %+v err %v calls %d", resp, err, s.Calls())
					}
					if !strings.Contains(llm.UserMessage(err), "search the web") {
						t.Errorf("user message %q", llm.UserMessage(err))
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if resp.Text != "Go 1.26 is out." || resp.StopReason != llm.StopEnd || !reflect.DeepEqual(resp.Citations, cites) || len(ann) != 0 {
					t.Errorf("resp %+v announced %v", resp, ann)
				}
				rec, _ := s.LastRequest()
				p := rec.MustDecode()
				if !p.WebSearch || p.WebSearchTool != tools[fc.format] || len(p.Tools) != 1 {
					t.Errorf("web search %v %q, tools %d", p.WebSearch, p.WebSearchTool, len(p.Tools))
				}
				if fc.format == llm.FormatAnthropic && path(p.Raw, "tools", 1, "max_uses") != float64(llm.AnthropicWebSearchMaxUses) {
					t.Errorf("anthropic tools %v", p.Raw["tools"])
				}
			})
		}
	}
	t.Run("after a fallback to chat", func(t *testing.T) {
		t.Parallel()
		s := llmtest.New(t)
		s.SetUnsupported(llm.FormatAnthropic)
		c := newClient(t, s)
		_, err := c.Stream(context.Background(), llm.Request{Model: "claude-sonnet-4-5", WebSearch: true, Messages: q}, nil)
		var e *llm.Error
		if !errors.Is(err, llm.ErrNoWebSearch) || !errors.As(err, &e) || e.Format != llm.FormatChat || s.Calls() != 1 {
			t.Fatalf("err %v, calls %d", err, s.Calls())
		}
	})
}

// TestToolsRefused: a provider that refuses the tools is ErrTools at once,
// never answered without them; a refused optional parameter is retried
// without it, tools kept; bad definitions are refused before sending.
func TestToolsRefused(t *testing.T) {
	t.Parallel()
	req := func(model string) llm.Request {
		temp := 0.5
		return llm.Request{Model: model, Temperature: &temp, Tools: []llm.Tool{addTool}, Messages: q}
	}
	t.Run("refused tools", func(t *testing.T) {
		t.Parallel()
		s := llmtest.New(t)
		c := newClient(t, s)
		s.Enqueue(llmtest.Script{Status: 400, ErrorMessage: "This model does not support tools", ErrorParam: "tools", ErrorCode: "invalid_request_error"})
		_, err := c.Stream(context.Background(), req("gpt-4o-mini"), nil)
		var e *llm.Error
		if !errors.Is(err, llm.ErrTools) || !errors.As(err, &e) || e.Attempts != 1 || s.Calls() != 1 {
			t.Fatalf("err %v calls %d", err, s.Calls())
		}
		if !strings.Contains(llm.UserMessage(err), "tools") {
			t.Errorf("user message %q", llm.UserMessage(err))
		}
	})
	t.Run("refused search", func(t *testing.T) {
		t.Parallel()
		s := llmtest.New(t)
		c := newClient(t, s)
		s.Enqueue(llmtest.Script{Status: 400, ErrorMessage: "Tool 'web_search' is not supported with gpt-4.1-nano."})
		r := req("gpt-5-mini")
		r.WebSearch = true
		_, err := c.Stream(context.Background(), r, nil)
		if !errors.Is(err, llm.ErrNoWebSearch) || s.Calls() != 1 {
			t.Fatalf("err %v calls %d", err, s.Calls())
		}
	})
	t.Run("refused temperature keeps the tools", func(t *testing.T) {
		t.Parallel()
		s := llmtest.New(t, llmtest.Options{Reply: "fine"})
		c := newClient(t, s)
		s.Enqueue(llmtest.Script{Status: 400, ErrorMessage: "Unsupported parameter: 'temperature' is not supported with this model.", ErrorParam: "temperature"})
		resp, err := c.Stream(context.Background(), req("gpt-5-mini"), nil)
		if err != nil || resp.Text != "fine" {
			t.Fatalf("resp %+v err %v", resp, err)
		}
		recs := s.Requests()
		p := recs[len(recs)-1].MustDecode()
		if len(recs) != 2 || len(p.Tools) != 1 || p.Params["temperature"] != nil {
			t.Errorf("%d requests; retry tools %d params %v", len(recs), len(p.Tools), p.Params)
		}
	})
	bad := map[string][]llm.Tool{
		"name with a dot":          {{Name: "calc.add"}},
		"empty name":               {{Name: ""}},
		"long name":                {{Name: strings.Repeat("x", 65)}},
		"twice":                    {{Name: "add"}, {Name: "add"}},
		"parameters not an object": {{Name: "add", Parameters: json.RawMessage(`[1]`)}},
		"parameters not JSON":      {{Name: "add", Parameters: json.RawMessage(`{`)}},
	}
	for name, tools := range bad {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := llmtest.New(t)
			c := newClient(t, s)
			for _, fc := range formats {
				_, err := c.Stream(context.Background(), llm.Request{Model: fc.model, Tools: tools, Messages: q}, nil)
				if !errors.Is(err, llm.ErrTools) {
					t.Errorf("%s: err %v", fc.name, err)
				}
			}
			if s.Calls() != 0 {
				t.Errorf("%d calls sent", s.Calls())
			}
		})
	}
}
