package mcptest

import (
	"encoding/json"
	"strings"

	"github.com/cometbot/cometbot/llm"
	"github.com/cometbot/cometbot/llm/llmtest"
)

// CallShapes and ResultShapes are where each format carries a tool call
// and a tool result (llmtest.ToolPart.Shape).
var (
	CallShapes = map[llm.Format]string{
		llm.FormatChat: "tool_calls", llm.FormatResponses: "function_call",
		llm.FormatAnthropic: "tool_use", llm.FormatGemini: "functionCall",
	}
	ResultShapes = map[llm.Format]string{
		llm.FormatChat: "tool", llm.FormatResponses: "function_call_output",
		llm.FormatAnthropic: "tool_result", llm.FormatGemini: "functionResponse",
	}
)

// Exchange is a tool call and its result as a recorded model request
// carries them (the history the client sent).
type Exchange struct {
	Call   llm.ToolCall
	Result llm.ToolResult
	// CallPart and ResultPart are the call and the result in the format's
	// native shape.
	CallPart, ResultPart llmtest.ToolPart
	// Answered is false for a call without a result in the request.
	Answered bool
}

// NativeResult is the result's native JSON object as text.
func (x Exchange) NativeResult() string {
	b, _ := json.Marshal(x.ResultPart.Native)
	return string(b)
}

// Arg returns an argument of the call, decoded from JSON (nil when absent).
func (x Exchange) Arg(name string) any {
	var m map[string]any
	if json.Unmarshal(x.Call.Arguments, &m) != nil {
		return nil
	}
	return m[name]
}

// Exchanges returns the tool calls of p, in order, each with its result:
// the result with the call's id, or (Gemini, whose calls usually have no
// id) the next unused result of the same name in the messages that follow.
func Exchanges(p llmtest.Prompt) []Exchange {
	type result struct {
		r    llm.ToolResult
		part llmtest.ToolPart
		msg  int
		used bool
	}
	var results []*result
	for i, m := range p.Messages {
		parts := partsOf(p, i, llmtest.PartToolResult)
		for k, r := range m.ToolResults {
			var tp llmtest.ToolPart
			if k < len(parts) {
				tp = parts[k]
			}
			results = append(results, &result{r: r, part: tp, msg: i})
		}
	}
	var out []Exchange
	for i, m := range p.Messages {
		parts := partsOf(p, i, llmtest.PartToolCall)
		for k, c := range m.ToolCalls {
			x := Exchange{Call: c}
			if k < len(parts) {
				x.CallPart = parts[k]
			}
			for _, r := range results {
				if r.used || r.msg <= i {
					continue
				}
				if c.ID != "" && r.r.CallID == c.ID || c.ID == "" && r.r.CallID == "" && r.r.Name == c.Name {
					r.used = true
					x.Result, x.ResultPart, x.Answered = r.r, r.part, true
					break
				}
			}
			out = append(out, x)
		}
	}
	return out
}

// partsOf returns the tool parts of kind of message i.
func partsOf(p llmtest.Prompt, i int, kind string) []llmtest.ToolPart {
	if i >= len(p.ToolParts) {
		return nil
	}
	var out []llmtest.ToolPart
	for _, tp := range p.ToolParts[i] {
		if tp.Kind == kind {
			out = append(out, tp)
		}
	}
	return out
}

// OfferedTools returns the names of the function tools p offers.
func OfferedTools(p llmtest.Prompt) []string {
	var out []string
	for _, t := range p.Tools {
		out = append(out, t.Name)
	}
	return out
}

// Offers reports whether p offers any tool whose name starts with prefix
// (e.g. "calc_").
func Offers(p llmtest.Prompt, prefix string) bool {
	for _, t := range p.Tools {
		if strings.HasPrefix(t.Name, prefix) {
			return true
		}
	}
	return false
}
