package llmtest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/cometbot/cometbot/llm"
	"github.com/cometbot/cometbot/llm/llmtest"
)

// TestToolStrictness posts hand-written bodies: the fake refuses tool
// definitions, calls and results the real services refuse, in the
// format's own error shape, and decodes what they accept.
func TestToolStrictness(t *testing.T) {
	t.Parallel()
	s := llmtest.New(t, llmtest.Options{Reply: "ok"})
	const (
		chat  = "/v1/chat/completions"
		resp  = "/v1/responses"
		anth  = "/v1/messages"
		gem   = "/v1beta/models/gemini-2.5-flash:generateContent"
		gem3  = "/v1beta/models/gemini-3-pro-preview:generateContent"
		add   = `{"type":"function","function":{"name":"add","parameters":{"type":"object","properties":{"a":{"type":"number"}}}}}`
		call  = `{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"add","arguments":"{\"a\":1}"}}]}`
		rcall = `{"type":"function_call","call_id":"call_1","name":"add","arguments":"{\"a\":1}"}`
		ause  = `{"role":"assistant","content":[{"type":"text","text":"adding"},{"type":"tool_use","id":"toolu_1","name":"add","input":{"a":1}}]}`
		gcall = `{"role":"model","parts":[{"functionCall":{"name":"add","args":{"a":1}}}]}`
	)
	chatBody := func(tools string, msgs ...string) string {
		return `{"model":"m","tools":[` + tools + `],"messages":[{"role":"user","content":"hi"}` + prefixed(msgs) + `]}`
	}
	respBody := func(tools string, items ...string) string {
		return `{"model":"m","tools":[` + tools + `],"input":[{"role":"user","content":"hi"}` + prefixed(items) + `]}`
	}
	anthBody := func(tools string, msgs ...string) string {
		return `{"model":"m","max_tokens":5,"tools":[` + tools + `],"messages":[{"role":"user","content":"hi"}` + prefixed(msgs) + `]}`
	}
	gemBody := func(tools string, contents ...string) string {
		return `{"tools":[` + tools + `],"contents":[{"role":"user","parts":[{"text":"hi"}]}` + prefixed(contents) + `]}`
	}
	tests := []struct {
		name, path, body string
		want             string // substring of the 400 error; "" means accepted
		check            func(t *testing.T, p llmtest.Prompt)
	}{
		// Chat Completions
		{"chat round", chat, chatBody(add, call, `{"role":"tool","tool_call_id":"call_1","content":"1"}`, `{"role":"user","content":"thanks"}`), "",
			func(t *testing.T, p llmtest.Prompt) {
				if len(p.Tools) != 1 || p.Tools[0].Name != "add" || p.Messages[1].ToolCalls[0].ID != "call_1" || string(p.Messages[1].ToolCalls[0].Arguments) != `{"a":1}` ||
					p.Messages[2].Role != llm.RoleTool || p.Messages[2].ToolResults[0].Content != "1" || p.ToolParts[2][0].Shape != "tool" {
					t.Errorf("%+v %+v", p.Messages, p.ToolParts)
				}
			}},
		{"chat result without its call", chat, chatBody(add, `{"role":"tool","tool_call_id":"call_9","content":"1"}`), "must be a response to a preceeding message with 'tool_calls'", nil},
		{"chat result for another call", chat, chatBody(add, call, `{"role":"tool","tool_call_id":"call_2","content":"1"}`), "must be a response to a preceeding message", nil},
		{"chat call without result", chat, chatBody(add, call, `{"role":"user","content":"and?"}`), "did not have response messages: call_1", nil},
		{"chat call at the end", chat, chatBody(add, call), "did not have response messages: call_1", nil},
		{"chat arguments as an object", chat, chatBody(add, `{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"add","arguments":{"a":1}}}]}`, `{"role":"tool","tool_call_id":"c","content":"1"}`), "expected a string, but got an object", nil},
		{"chat bad tool name", chat, chatBody(`{"type":"function","function":{"name":"calc.add"}}`), "does not match pattern", nil},
		{"chat web search tool", chat, chatBody(`{"type":"web_search"}`), "Invalid value: 'web_search'", nil},
		{"chat web_search_options", chat, `{"model":"m","web_search_options":{},"messages":[{"role":"user","content":"hi"}]}`, "Web search options not supported", nil},
		// Responses
		{"responses round", resp, respBody(`{"type":"function","name":"add","parameters":{"type":"object","properties":{}},"strict":false},{"type":"web_search"}`,
			`{"role":"assistant","content":[{"type":"output_text","text":"adding"}]}`, rcall, `{"type":"function_call_output","call_id":"call_1","output":"1"}`), "",
			func(t *testing.T, p llmtest.Prompt) {
				if !p.WebSearch || p.WebSearchTool != "web_search" || len(p.Tools) != 1 || len(p.Messages) != 3 ||
					p.Messages[1].Content != "adding" || p.Messages[1].ToolCalls[0].ID != "call_1" || p.Messages[2].ToolResults[0].Content != "1" {
					t.Errorf("%+v", p.Messages)
				}
			}},
		{"responses output without call", resp, respBody("", `{"type":"function_call_output","call_id":"call_1","output":"1"}`), "No tool call found for function call output with call_id call_1", nil},
		{"responses call without output", resp, respBody("", rcall), "No tool output found for function call call_1", nil},
		{"responses strict by default", resp, respBody(`{"type":"function","name":"add","parameters":{"type":"object","properties":{"a":{"type":"number"}}}}`), "'additionalProperties' is required", nil},
		{"responses tool without parameters", resp, respBody(`{"type":"function","name":"add","strict":false}`), "tools[0].parameters", nil},
		{"responses bad tool name", resp, respBody(`{"type":"function","name":"a b","parameters":{},"strict":false}`), "does not match pattern", nil},
		// Anthropic
		{"anthropic round", anth, anthBody(`{"name":"add","input_schema":{"type":"object"}},{"type":"web_search_20250305","name":"web_search","max_uses":5}`,
			ause, `{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"1","is_error":true},{"type":"text","text":"go on"}]}`), "",
			func(t *testing.T, p llmtest.Prompt) {
				r := p.Messages[2]
				if !p.WebSearch || p.WebSearchTool != "web_search_20250305" || r.Role != llm.RoleUser || r.Content != "go on" ||
					len(r.ToolResults) != 1 || !r.ToolResults[0].IsError || p.ToolParts[1][0].Shape != "tool_use" {
					t.Errorf("%+v", p.Messages)
				}
			}},
		{"anthropic tool_result not first", anth, anthBody("", ause, `{"role":"user","content":[{"type":"text","text":"go on"},{"type":"tool_result","tool_use_id":"toolu_1","content":"1"}]}`), "must come first", nil},
		{"anthropic unexpected tool_use_id", anth, anthBody("", ause, `{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"1"},{"type":"tool_result","tool_use_id":"toolu_9","content":"1"}]}`), "unexpected `tool_use_id` found in `tool_result` blocks: toolu_9", nil},
		{"anthropic tool_use without result", anth, anthBody("", ause, `{"role":"user","content":"and?"}`), "`tool_use` ids were found without `tool_result` blocks immediately after: toolu_1", nil},
		{"anthropic result a turn late", anth, anthBody("", ause, `{"role":"user","content":"and?"}`, `{"role":"assistant","content":"?"}`, `{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"1"}]}`), "without `tool_result` blocks", nil},
		{"anthropic tool_use id with a dot", anth, anthBody("", `{"role":"assistant","content":[{"type":"tool_use","id":"functions.add:0","name":"add","input":{}}]}`), "tool_use.id", nil},
		{"anthropic bad tool name", anth, anthBody(`{"name":"calc.add","input_schema":{"type":"object"}}`), "tools.0.custom.name", nil},
		{"anthropic tool without schema", anth, anthBody(`{"name":"add"}`), "input_schema: Field required", nil},
		{"anthropic duplicate tools", anth, anthBody(`{"name":"web_search","input_schema":{"type":"object"}},{"type":"web_search_20250305","name":"web_search"}`), "Tool names must be unique", nil},
		// Gemini
		{"gemini round", gem, gemBody(`{"functionDeclarations":[{"name":"add","parameters":{"type":"object","properties":{"a":{"type":"number"}}}}]},{"google_search":{}}`,
			gcall, `{"role":"user","parts":[{"functionResponse":{"name":"add","response":{"result":"1"}}}]}`), "",
			func(t *testing.T, p llmtest.Prompt) {
				if !p.WebSearch || p.WebSearchTool != "google_search" || p.Tools[0].Name != "add" || p.Messages[1].ToolCalls[0].Name != "add" ||
					p.Messages[2].ToolResults[0].Content != "1" || p.Messages[2].ToolResults[0].Name != "add" {
					t.Errorf("%+v", p.Messages)
				}
			}},
		{"gemini response without call", gem, gemBody("", `{"role":"model","parts":[{"text":"hm"}]}`, `{"role":"user","parts":[{"functionResponse":{"name":"add","response":{"result":"1"}}}]}`), "comes immediately after a function call turn", nil},
		{"gemini response to another function", gem, gemBody("", gcall, `{"role":"user","parts":[{"functionResponse":{"name":"mul","response":{"result":"1"}}}]}`), `function response "mul"`, nil},
		{"gemini fewer responses than calls", gem, gemBody("", `{"role":"model","parts":[{"functionCall":{"name":"add","args":{}}},{"functionCall":{"name":"add","args":{}}}]}`, `{"role":"user","parts":[{"functionResponse":{"name":"add","response":{"result":"1"}}}]}`), "number of function response parts is equal", nil},
		{"gemini response not an object", gem, gemBody("", gcall, `{"role":"user","parts":[{"functionResponse":{"name":"add","response":"1"}}]}`), "function_response.response", nil},
		{"gemini call in a user turn", gem, gemBody("", `{"role":"user","parts":[{"functionCall":{"name":"add","args":{}}}]}`), "function call turns are model turns", nil},
		{"gemini 3 call without signature", gem3, gemBody("", gcall, `{"role":"user","parts":[{"functionResponse":{"name":"add","response":{"result":"1"}}}]}`), "missing a thought_signature", nil},
		{"gemini 3 call with signature", gem3, gemBody("", `{"role":"model","parts":[{"functionCall":{"name":"add","args":{}},"thoughtSignature":"c2ln"}]}`, `{"role":"user","parts":[{"functionResponse":{"name":"add","response":{"error":"no"}}}]}`), "",
			func(t *testing.T, p llmtest.Prompt) {
				if p.Messages[1].ToolCalls[0].Signature != "c2ln" || !p.Messages[2].ToolResults[0].IsError || p.Messages[2].ToolResults[0].Content != "no" {
					t.Errorf("%+v", p.Messages)
				}
			}},
		{"gemini additionalProperties", gem, gemBody(`{"functionDeclarations":[{"name":"add","parameters":{"type":"object","properties":{"a":{"type":"number"}},"additionalProperties":false}}]}`), `Unknown name "additionalProperties"`, nil},
		{"gemini $schema deep down", gem, gemBody(`{"functionDeclarations":[{"name":"add","parameters":{"type":"object","properties":{"a":{"type":"object","properties":{"x":{"type":"string","$schema":"x"}}}}}}]}`), `Unknown name "$schema"`, nil},
		{"gemini object without properties", gem, gemBody(`{"functionDeclarations":[{"name":"now","parameters":{"type":"object","properties":{}}}]}`), "should be non-empty for OBJECT type", nil},
		{"gemini bad tool name", gem, gemBody(`{"functionDeclarations":[{"name":"1add"}]}`), "Invalid function name", nil},
		{"gemini unknown tool", gem, gemBody(`{"web_search":{}}`), `Unknown name "web_search"`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := http.Post(s.HostURL()+tt.path, "application/json", strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(r.Body)
			r.Body.Close()
			if tt.want == "" {
				if r.StatusCode != 200 {
					t.Fatalf("status %d: %s", r.StatusCode, b)
				}
				rec, _ := s.LastRequest()
				p, err := rec.Decode()
				if err != nil {
					t.Fatal(err)
				}
				if tt.check != nil {
					tt.check(t, p)
				}
				return
			}
			var shape map[string]any
			json.Unmarshal(b, &shape)
			if msg, _ := path(shape, "error", "message").(string); r.StatusCode != 400 || !strings.Contains(msg, tt.want) {
				t.Errorf("status %d body %s, want 400 with %q", r.StatusCode, b, tt.want)
			}
			switch {
			case tt.path == anth && shape["type"] != "error":
				t.Errorf("anthropic error shape %s", b)
			case strings.HasPrefix(tt.path, "/v1beta") && path(shape, "error", "status") != "INVALID_ARGUMENT":
				t.Errorf("gemini error shape %s", b)
			}
		})
	}
}

func prefixed(items []string) string {
	if len(items) == 0 {
		return ""
	}
	return "," + strings.Join(items, ",")
}

func path(v any, keys ...string) any {
	for _, k := range keys {
		m, _ := v.(map[string]any)
		v = m[k]
	}
	return v
}

// TestToolStreamShapes reads the fake's tool-call streams raw: arguments
// arrive in several fragments in the formats that fragment them, and
// joined they are the script's arguments.
func TestToolStreamShapes(t *testing.T) {
	t.Parallel()
	s := llmtest.New(t)
	args := `{"city":"Zürich","days":3,"units":"metric"}`
	for _, tc := range []struct {
		path, body, fragKey string
	}{
		{"/v1/chat/completions", `{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`, `"arguments":`},
		{"/v1/responses", `{"model":"m","stream":true,"input":"hi"}`, `"response.function_call_arguments.delta"`},
		{"/v1/messages", `{"model":"m","max_tokens":5,"stream":true,"messages":[{"role":"user","content":"hi"}]}`, `"input_json_delta"`},
	} {
		s.Enqueue(llmtest.Script{ToolCalls: []llm.ToolCall{{Name: "weather", Arguments: json.RawMessage(args)}}})
		r, err := http.Post(s.HostURL()+tc.path, "application/json", strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if n := strings.Count(string(b), tc.fragKey); n < 4 {
			t.Errorf("%s: %d argument events:\n%s", tc.path, n, b)
		}
		if strings.Contains(string(b), "fake gateway") {
			t.Errorf("%s: a tool-call-only answer has the default text", tc.path)
		}
	}
}
