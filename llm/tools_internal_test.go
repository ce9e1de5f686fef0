package llm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// sseData renders data-only SSE events (chat, gemini) from JSON lines.
func sseData(lines ...string) string {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString("data: ")
		b.WriteString(l)
		b.WriteString("\n\n")
	}
	return b.String()
}

// sseTyped renders "event:" + "data:" SSE events (responses, anthropic)
// from JSON lines, the event name taken from each line's "type".
func sseTyped(lines ...string) string {
	var b strings.Builder
	for _, l := range lines {
		var probe struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal([]byte(l), &probe); err != nil {
			panic(l)
		}
		b.WriteString("event: " + probe.Type + "\ndata: " + l + "\n\n")
	}
	return b.String()
}

// decodeFixture reads a recorded-style stream through the format's decoder.
func decodeFixture(t *testing.T, f Format, stream string) (*Response, []Delta, error) {
	t.Helper()
	c, _ := NewClient(Config{})
	var deltas []Delta
	st := &streamState{c: c, onDelta: func(d Delta) error { deltas = append(deltas, d); return nil }}
	err := c.readStream(context.Background(), wireFor(f), strings.NewReader(stream), st)
	if err != nil {
		return nil, deltas, err
	}
	return st.finish(), deltas, nil
}

// announced returns the names of the calls announced in deltas.
func announced(ds []Delta) []string {
	var out []string
	for _, d := range ds {
		if d.ToolCall != nil {
			out = append(out, d.ToolCall.Name+"#"+d.ToolCall.ID)
		}
	}
	return out
}

func texts(ds []Delta) string {
	var b strings.Builder
	for _, d := range ds {
		b.WriteString(d.Text)
	}
	return b.String()
}

type wantCall struct{ id, name, args string }

func checkCalls(t *testing.T, got []ToolCall, want []wantCall) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("calls = %+v, want %d", got, len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.ID != w.id || g.Name != w.name || string(g.Arguments) != w.args {
			t.Errorf("call %d = %s %s %s, want %s %s %s", i, g.ID, g.Name, g.Arguments, w.id, w.name, w.args)
		}
		if !json.Valid(g.Arguments) || g.Arguments[0] != '{' {
			t.Errorf("call %d: arguments %s are not a JSON object", i, g.Arguments)
		}
	}
}

const chatFixHead = `{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","system_fingerprint":"fp","choices":[{"index":0,"delta":`

func chatFix(delta, finish string) string {
	if finish == "" {
		finish = "null"
	} else {
		finish = `"` + finish + `"`
	}
	return chatFixHead + delta + `,"logprobs":null,"finish_reason":` + finish + `}]}`
}

func chatTC(index int, rest string) string {
	return `{"tool_calls":[{"index":` + string(rune('0'+index)) + rest + `}]}`
}

// TestChatToolCallStreams decodes Chat Completions streams with tool
// calls: fragments merged by index (also interleaved), text around the
// calls, escapes cut between fragments, no index, and arguments that do
// not parse.
func TestChatToolCallStreams(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		stream string
		text   string
		stop   string
		calls  []wantCall
	}{
		{
			name: "text then parallel calls, interleaved fragments",
			stream: sseData(
				chatFix(`{"role":"assistant","content":"Let me "}`, ""),
				chatFix(`{"content":"check."}`, ""),
				chatFix(chatTC(0, `,"id":"call_a","type":"function","function":{"name":"add","arguments":""}`), ""),
				chatFix(chatTC(1, `,"id":"call_b","type":"function","function":{"name":"mul","arguments":"{\"x\""}`), ""),
				chatFix(chatTC(0, `,"function":{"arguments":"{\"a\":"}`), ""),
				chatFix(chatTC(1, `,"function":{"arguments":": 4}"}`), ""),
				chatFix(chatTC(0, `,"function":{"arguments":"2,\"b\":3}"}`), ""),
				chatFix(`{}`, "tool_calls"),
				`{"id":"chatcmpl-1","object":"chat.completion.chunk","model":"gpt-4o","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":20}}`,
				"[DONE]"),
			text:  "Let me check.",
			stop:  StopToolCalls,
			calls: []wantCall{{"call_a", "add", `{"a":2,"b":3}`}, {"call_b", "mul", `{"x":4}`}},
		},
		{
			name: "a call without text, an escape and a rune cut between fragments",
			stream: sseData(
				chatFix(`{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_s","type":"function","function":{"name":"say","arguments":"{\"s\":\"caf"}}]}`, ""),
				chatFix(chatTC(0, `,"function":{"arguments":"\u00e9\\"}`), ""),
				chatFix(chatTC(0, `,"function":{"arguments":"n\\ud83e\\udd8a\"}"}`), ""),
				chatFix(`{}`, "tool_calls"),
				"[DONE]"),
			stop:  StopToolCalls,
			calls: []wantCall{{"call_s", "say", `{"s":"café\n\ud83e\udd8a"}`}},
		},
		{
			name: "whole calls without index, empty arguments, finish_reason stop",
			stream: sseData(
				chatFix(`{"tool_calls":[{"id":"c1","type":"function","function":{"name":"now","arguments":""}},{"id":"c2","type":"function","function":{"name":"add","arguments":"{\"a\":1}"}}]}`, ""),
				chatFix(`{}`, "stop"),
				"[DONE]"),
			stop:  StopToolCalls,
			calls: []wantCall{{"c1", "now", `{}`}, {"c2", "add", `{"a":1}`}},
		},
		{
			name: "arguments cut at the output limit",
			stream: sseData(
				chatFix(chatTC(0, `,"id":"call_c","type":"function","function":{"name":"add","arguments":"{\"a\": 2,"}`), ""),
				chatFix(`{}`, "length"),
				"[DONE]"),
			stop:  StopLength,
			calls: []wantCall{{"call_c", "add", `{"_raw":"{\"a\": 2,"}`}},
		},
		{
			name: "a converter's empty input before the fragments",
			stream: sseData(
				chatFix(chatTC(0, `,"id":"toolu_1","type":"function","function":{"name":"add","arguments":"{}"}`), ""),
				chatFix(chatTC(0, `,"function":{"arguments":"{\"a\":"}`), ""),
				chatFix(chatTC(0, `,"function":{"arguments":"1}"}`), ""),
				chatFix(`{}`, "tool_calls"),
				"[DONE]"),
			stop:  StopToolCalls,
			calls: []wantCall{{"toolu_1", "add", `{"a":1}`}},
		},
		{
			name: "arguments sent as an object, a call without id",
			stream: sseData(
				chatFix(chatTC(0, `,"type":"function","function":{"name":"add","arguments":{"a":5}}`), ""),
				chatFix(`{}`, "tool_calls"),
				"[DONE]"),
			stop:  StopToolCalls,
			calls: []wantCall{{"call_1", "add", `{"a":5}`}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp, deltas, err := decodeFixture(t, FormatChat, tt.stream)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Text != tt.text || texts(deltas) != tt.text || resp.StopReason != tt.stop {
				t.Errorf("text %q (deltas %q), stop %q", resp.Text, texts(deltas), resp.StopReason)
			}
			checkCalls(t, resp.ToolCalls, tt.calls)
			var want []string
			for _, c := range tt.calls {
				want = append(want, c.name+"#"+c.id)
			}
			if got := announced(deltas); !reflect.DeepEqual(got, want) {
				t.Errorf("announced %v, want %v", got, want)
			}
		})
	}
}

// TestResponsesToolCallStreams decodes Responses streams: function_call
// items with argument deltas (the .done arguments win), parallel calls
// after text, calls only in the final output, and url_citation
// annotations deduplicated.
func TestResponsesToolCallStreams(t *testing.T) {
	t.Parallel()
	completed := func(output string) string {
		return `{"type":"response.completed","sequence_number":99,"response":{"id":"resp_1","status":"completed","model":"gpt-5","output":[` + output + `],"usage":{"input_tokens":5,"output_tokens":7}}}`
	}
	tests := []struct {
		name   string
		stream string
		text   string
		calls  []wantCall
		cites  []Citation
	}{
		{
			name: "text then two calls",
			stream: sseTyped(
				`{"type":"response.created","sequence_number":0,"response":{"id":"resp_1","status":"in_progress","model":"gpt-5","output":[]}}`,
				`{"type":"response.output_item.added","sequence_number":1,"output_index":0,"item":{"type":"message","id":"msg_1","status":"in_progress","role":"assistant","content":[]}}`,
				`{"type":"response.output_text.delta","sequence_number":2,"item_id":"msg_1","output_index":0,"content_index":0,"delta":"Adding."}`,
				`{"type":"response.output_item.done","sequence_number":3,"output_index":0,"item":{"type":"message","id":"msg_1","status":"completed","role":"assistant","content":[{"type":"output_text","annotations":[],"text":"Adding."}]}}`,
				`{"type":"response.output_item.added","sequence_number":4,"output_index":1,"item":{"type":"function_call","id":"fc_1","call_id":"call_1","name":"add","arguments":"","status":"in_progress"}}`,
				`{"type":"response.function_call_arguments.delta","sequence_number":5,"item_id":"fc_1","output_index":1,"delta":"{\"a\":"}`,
				`{"type":"response.output_item.added","sequence_number":6,"output_index":2,"item":{"type":"function_call","id":"fc_2","call_id":"call_2","name":"mul","arguments":"","status":"in_progress"}}`,
				`{"type":"response.function_call_arguments.delta","sequence_number":7,"item_id":"fc_1","output_index":1,"delta":"2,\"b\":3}"}`,
				`{"type":"response.function_call_arguments.done","sequence_number":8,"item_id":"fc_1","output_index":1,"arguments":"{\"a\":2,\"b\":3}"}`,
				`{"type":"response.output_item.done","sequence_number":9,"output_index":1,"item":{"type":"function_call","id":"fc_1","call_id":"call_1","name":"add","arguments":"{\"a\":2,\"b\":3}","status":"completed"}}`,
				`{"type":"response.function_call_arguments.delta","sequence_number":10,"item_id":"fc_2","output_index":2,"delta":"{\"x\":4}"}`,
				`{"type":"response.function_call_arguments.done","sequence_number":11,"item_id":"fc_2","output_index":2,"arguments":"{\"x\":4}"}`,
				completed(`{"type":"message","id":"msg_1","content":[{"type":"output_text","text":"Adding.","annotations":[]}]},{"type":"function_call","id":"fc_1","call_id":"call_1","name":"add","arguments":"{\"a\":2,\"b\":3}"},{"type":"function_call","id":"fc_2","call_id":"call_2","name":"mul","arguments":"{\"x\":4}"}`)),
			text:  "Adding.",
			calls: []wantCall{{"call_1", "add", `{"a":2,"b":3}`}, {"call_2", "mul", `{"x":4}`}},
		},
		{
			name: "calls only in the final output",
			stream: sseTyped(
				completed(`{"type":"function_call","id":"fc_9","call_id":"call_9","name":"now","arguments":""}`)),
			calls: []wantCall{{"call_9", "now", `{}`}},
		},
		{
			name: "web search citations, deduplicated",
			stream: sseTyped(
				`{"type":"response.output_item.added","sequence_number":1,"output_index":0,"item":{"type":"web_search_call","id":"ws_1","status":"in_progress"}}`,
				`{"type":"response.web_search_call.searching","sequence_number":2,"output_index":0,"item_id":"ws_1"}`,
				`{"type":"response.output_item.done","sequence_number":3,"output_index":0,"item":{"type":"web_search_call","id":"ws_1","status":"completed","action":{"type":"search","query":"go"}}}`,
				`{"type":"response.output_text.delta","sequence_number":4,"item_id":"msg_1","output_index":1,"content_index":0,"delta":"Go 1.26 is out."}`,
				`{"type":"response.output_text.annotation.added","sequence_number":5,"item_id":"msg_1","output_index":1,"content_index":0,"annotation_index":0,"annotation":{"type":"url_citation","start_index":0,"end_index":5,"url":"https://go.dev/doc/go1.26","title":"Go 1.26 Release Notes"}}`,
				`{"type":"response.output_text.annotation.added","sequence_number":6,"item_id":"msg_1","output_index":1,"content_index":0,"annotation_index":1,"annotation":{"type":"url_citation","start_index":6,"end_index":9,"url":"https://go.dev/blog","title":"The Go Blog"}}`,
				`{"type":"response.output_text.annotation.added","sequence_number":7,"item_id":"msg_1","output_index":1,"content_index":0,"annotation_index":2,"annotation":{"type":"url_citation","start_index":9,"end_index":12,"url":"https://go.dev/doc/go1.26","title":"Go 1.26 Release Notes"}}`,
				completed(`{"type":"web_search_call","id":"ws_1"},{"type":"message","id":"msg_1","content":[{"type":"output_text","text":"Go 1.26 is out.","annotations":[{"type":"url_citation","url":"https://go.dev/blog","title":"The Go Blog"},{"type":"url_citation","url":"https://pkg.go.dev","title":"Packages"}]}]}`)),
			text:  "Go 1.26 is out.",
			cites: []Citation{{"https://go.dev/doc/go1.26", "Go 1.26 Release Notes"}, {"https://go.dev/blog", "The Go Blog"}, {"https://pkg.go.dev", "Packages"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp, deltas, err := decodeFixture(t, FormatResponses, tt.stream)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Text != tt.text {
				t.Errorf("text %q", resp.Text)
			}
			checkCalls(t, resp.ToolCalls, tt.calls)
			if len(tt.calls) > 0 && (resp.StopReason != StopToolCalls || resp.RawStopReason != "stop") {
				t.Errorf("stop %q raw %q", resp.StopReason, resp.RawStopReason)
			}
			if len(tt.calls) == 0 && resp.StopReason != StopEnd {
				t.Errorf("stop %q", resp.StopReason)
			}
			if !reflect.DeepEqual(resp.Citations, tt.cites) {
				t.Errorf("citations %+v", resp.Citations)
			}
			if got := announced(deltas); len(got) != len(tt.calls) {
				t.Errorf("announced %v", got)
			}
		})
	}
}

// TestAnthropicToolCallStreams decodes Messages streams: tool_use blocks
// with input_json_delta fragments after text, and web search (server tool
// blocks that are neither text nor calls, citations_delta citations).
func TestAnthropicToolCallStreams(t *testing.T) {
	t.Parallel()
	start := `{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],"stop_reason":null,"usage":{"input_tokens":10,"output_tokens":1}}}`
	block := func(i, body string) string {
		return `{"type":"content_block_start","index":` + i + `,"content_block":` + body + `}`
	}
	delta := func(i, body string) string {
		return `{"type":"content_block_delta","index":` + i + `,"delta":` + body + `}`
	}
	stop := func(i string) string { return `{"type":"content_block_stop","index":` + i + `}` }
	end := func(reason string) []string {
		return []string{`{"type":"message_delta","delta":{"stop_reason":"` + reason + `","stop_sequence":null},"usage":{"output_tokens":30}}`, `{"type":"message_stop"}`}
	}
	tests := []struct {
		name   string
		events []string
		text   string
		stop   string
		calls  []wantCall
		cites  []Citation
	}{
		{
			name: "text then two tool_use blocks",
			events: append([]string{start, `{"type": "ping"}`,
				block("0", `{"type":"text","text":""}`),
				delta("0", `{"type":"text_delta","text":"I'll add them."}`),
				stop("0"),
				block("1", `{"type":"tool_use","id":"toolu_01","name":"add","input":{}}`),
				delta("1", `{"type":"input_json_delta","partial_json":""}`),
				delta("1", `{"type":"input_json_delta","partial_json":"{\"a\": 2"}`),
				delta("1", `{"type":"input_json_delta","partial_json":", \"b\": 3}"}`),
				stop("1"),
				block("2", `{"type":"tool_use","id":"toolu_02","name":"now","input":{}}`),
				stop("2"),
			}, end("tool_use")...),
			text:  "I'll add them.",
			stop:  StopToolCalls,
			calls: []wantCall{{"toolu_01", "add", `{"a":2,"b":3}`}, {"toolu_02", "now", `{}`}},
		},
		{
			name: "web search: server tool blocks and citations",
			events: append([]string{start,
				block("0", `{"type":"server_tool_use","id":"srvtoolu_1","name":"web_search","input":{}}`),
				delta("0", `{"type":"input_json_delta","partial_json":"{\"query\": \"go release\"}"}`),
				stop("0"),
				block("1", `{"type":"web_search_tool_result","tool_use_id":"srvtoolu_1","content":[{"type":"web_search_result","url":"https://go.dev/doc/go1.26","title":"Go 1.26","encrypted_content":"x"}]}`),
				stop("1"),
				block("2", `{"type":"text","text":""}`),
				delta("2", `{"type":"text_delta","text":"Per the notes, "}`),
				stop("2"),
				block("3", `{"type":"text","text":"","citations":[{"type":"web_search_result_location","url":"https://go.dev/doc/go1.26","title":"Go 1.26","cited_text":"...","encrypted_index":"x"}]}`),
				delta("3", `{"type":"citations_delta","citation":{"type":"web_search_result_location","url":"https://go.dev/blog","title":"Blog","cited_text":"...","encrypted_index":"y"}}`),
				delta("3", `{"type":"citations_delta","citation":{"type":"web_search_result_location","url":"https://go.dev/doc/go1.26","title":"Go 1.26","cited_text":"...","encrypted_index":"z"}}`),
				delta("3", `{"type":"text_delta","text":"Go 1.26 is out."}`),
				stop("3"),
			}, end("end_turn")...),
			text:  "Per the notes, Go 1.26 is out.",
			stop:  StopEnd,
			cites: []Citation{{"https://go.dev/doc/go1.26", "Go 1.26"}, {"https://go.dev/blog", "Blog"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp, deltas, err := decodeFixture(t, FormatAnthropic, sseTyped(tt.events...))
			if err != nil {
				t.Fatal(err)
			}
			if resp.Text != tt.text || resp.StopReason != tt.stop {
				t.Errorf("text %q stop %q", resp.Text, resp.StopReason)
			}
			checkCalls(t, resp.ToolCalls, tt.calls)
			if !reflect.DeepEqual(resp.Citations, tt.cites) {
				t.Errorf("citations %+v", resp.Citations)
			}
			if got := announced(deltas); len(got) != len(tt.calls) {
				t.Errorf("announced %v", got)
			}
		})
	}
}

// TestGeminiToolCallStreams decodes Gemini streams: whole functionCall
// parts (parallel, made-up ids, the thoughtSignature kept), text before
// them, and grounding citations.
func TestGeminiToolCallStreams(t *testing.T) {
	t.Parallel()
	chunk := func(parts, extra string) string {
		return `{"candidates":[{"content":{"parts":[` + parts + `],"role":"model"}` + extra + `,"index":0}],"modelVersion":"gemini-3-pro-preview","responseId":"r"}`
	}
	usage := `,"usageMetadata":{"promptTokenCount":5,"candidatesTokenCount":9,"totalTokenCount":14}`
	t.Run("parallel calls after text", func(t *testing.T) {
		t.Parallel()
		stream := sseData(
			chunk(`{"text":"Computing."}`, ""),
			chunk(`{"functionCall":{"name":"add","args":{"a":2,"b":3}},"thoughtSignature":"c2ln"},{"functionCall":{"name":"now","args":{}}},{"functionCall":{"id":"given","name":"mul","args":{"x":4}}}`, ""),
			`{"candidates":[{"content":{"parts":[{"text":""}],"role":"model"},"finishReason":"STOP","index":0}]`+usage+`}`)
		resp, deltas, err := decodeFixture(t, FormatGemini, stream)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Text != "Computing." || resp.StopReason != StopToolCalls || resp.RawStopReason != "STOP" {
			t.Errorf("text %q stop %q raw %q", resp.Text, resp.StopReason, resp.RawStopReason)
		}
		checkCalls(t, resp.ToolCalls, []wantCall{{"call_1", "add", `{"a":2,"b":3}`}, {"call_2", "now", `{}`}, {"given", "mul", `{"x":4}`}})
		if resp.ToolCalls[0].Signature != "c2ln" || resp.ToolCalls[1].Signature != "" {
			t.Errorf("signatures %q %q", resp.ToolCalls[0].Signature, resp.ToolCalls[1].Signature)
		}
		if got := announced(deltas); !reflect.DeepEqual(got, []string{"add#call_1", "now#call_2", "mul#given"}) {
			t.Errorf("announced %v", got)
		}
	})
	t.Run("grounding", func(t *testing.T) {
		t.Parallel()
		gm := `,"groundingMetadata":{"webSearchQueries":["go"],"groundingChunks":[{"web":{"uri":"https://a.example/x","title":"a.example"}},{"web":{"uri":"https://b.example/y","title":"b.example"}},{"web":{"uri":"https://a.example/x","title":"a.example"}}],"groundingSupports":[]}`
		stream := sseData(chunk(`{"text":"Answer."}`, ""), chunk(`{"text":""}`, `,"finishReason":"STOP"`+gm))
		resp, _, err := decodeFixture(t, FormatGemini, stream)
		if err != nil {
			t.Fatal(err)
		}
		want := []Citation{{"https://a.example/x", "a.example"}, {"https://b.example/y", "b.example"}}
		if resp.Text != "Answer." || resp.StopReason != StopEnd || !reflect.DeepEqual(resp.Citations, want) {
			t.Errorf("resp %+v", resp)
		}
	})
}

// TestToolCallOnlyStreamIsComplete: a stream that ends in tool calls and no
// text is a complete answer in every format, not an empty or cut one; the
// same calls cut before the stop reason are ErrIncomplete without calls.
func TestToolCallOnlyStreamIsComplete(t *testing.T) {
	t.Parallel()
	streams := map[Format][2]string{
		FormatChat: {
			sseData(chatFix(chatTC(0, `,"id":"c","type":"function","function":{"name":"now","arguments":"{}"}`), "")),
			sseData(chatFix(`{}`, "tool_calls"), "[DONE]"),
		},
		FormatResponses: {
			sseTyped(`{"type":"response.output_item.added","output_index":0,"item":{"type":"function_call","id":"fc","call_id":"c","name":"now","arguments":""}}`,
				`{"type":"response.function_call_arguments.done","output_index":0,"item_id":"fc","arguments":"{}"}`),
			sseTyped(`{"type":"response.completed","response":{"status":"completed","output":[]}}`),
		},
		FormatAnthropic: {
			sseTyped(`{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"c","name":"now","input":{}}}`, `{"type":"content_block_stop","index":0}`),
			sseTyped(`{"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":3}}`, `{"type":"message_stop"}`),
		},
		FormatGemini: {
			sseData(`{"candidates":[{"content":{"parts":[{"functionCall":{"name":"now","args":{}}}],"role":"model"},"index":0}]}`),
			sseData(`{"candidates":[{"content":{"parts":[{"text":""}],"role":"model"},"finishReason":"STOP","index":0}]}`),
		},
	}
	for f, s := range streams {
		resp, _, err := decodeFixture(t, f, s[0]+s[1])
		if err != nil || resp.Text != "" || resp.StopReason != StopToolCalls || len(resp.ToolCalls) != 1 || resp.ToolCalls[0].Name != "now" {
			t.Errorf("%s: resp %+v err %v", f, resp, err)
		}
		_, _, err = decodeFixture(t, f, s[0])
		if !errors.Is(err, ErrIncomplete) {
			t.Errorf("%s cut: err %v, want ErrIncomplete", f, err)
		}
	}
}

// TestToolArgsAreProgress: a call's start and its argument fragments count
// as content for the stall watchdog, like text.
func TestToolArgsAreProgress(t *testing.T) {
	t.Parallel()
	c, _ := NewClient(Config{})
	st := &streamState{c: c, onDelta: func(Delta) error { return nil }}
	probe := &progressProbe{}
	st.progressHook = probe.hit
	stream := sseData(
		chatFix(chatTC(0, `,"id":"c","type":"function","function":{"name":"add","arguments":""}`), ""),
		chatFix(chatTC(0, `,"function":{"arguments":"{\"a\":1}"}`), ""),
		chatFix(chatTC(0, `,"function":{"arguments":""}`), ""),
	)
	if err := c.readStream(context.Background(), chatWire{}, strings.NewReader(stream), st); !errors.Is(err, ErrIncomplete) {
		t.Fatalf("err = %v", err)
	}
	if probe.n != 2 { // the start and the non-empty fragment; not the empty one
		t.Errorf("progress %d times, want 2", probe.n)
	}
}

type progressProbe struct{ n int }

func (p *progressProbe) hit() { p.n++ }

// TestFragment decodes argument fragments like encoding/json decodes
// strings, reusing its buffer.
func TestFragment(t *testing.T) {
	for _, s := range []string{"", "plain", `{"a":"b\\n"}`, "tab\tnew\nline\r\b\f/\\\"", "é🦊\u2028", "\x01\x1f"} {
		lit, _ := json.Marshal(s)
		lit = bytes.ReplaceAll(lit, []byte(`\u003c`), []byte(`<`))
		var f fragment
		if err := f.UnmarshalJSON(lit); err != nil || string(f.b) != s {
			t.Errorf("%s: %q %v", lit, f.b, err)
		}
	}
	var f fragment
	if err := f.UnmarshalJSON([]byte(`"\ud83e\udd8a and \u00e9 and \/"`)); err != nil || string(f.b) != "🦊 and é and /" {
		t.Errorf("unicode escapes: %q %v", f.b, err)
	}
	if err := f.UnmarshalJSON([]byte(`"lone \ud83e"`)); err != nil || string(f.b) != "lone \uFFFD" {
		t.Errorf("lone surrogate: %q %v", f.b, err)
	}
	lit := []byte(`"{\"a\":\"x\"}"`)
	if allocs := testing.AllocsPerRun(100, func() { f.UnmarshalJSON(lit) }); allocs != 0 {
		t.Errorf("fragment allocates %v per decode", allocs)
	}
}

func TestNormArgs(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"":                   `{}`,
		"  ":                 `{}`,
		"null":               `{}`,
		`{ "a" : [1, 2] }`:   `{"a":[1,2]}`,
		`{"a":`:              `{"_raw":"{\"a\":"}`,
		`[1]`:                `{"_raw":"[1]"}`,
		`"text"`:             `{"_raw":"\"text\""}`,
		"I'd call add(2, 3)": `{"_raw":"I'd call add(2, 3)"}`,
	}
	for in, want := range tests {
		if got := string(normArgs([]byte(in))); got != want {
			t.Errorf("normArgs(%q) = %s, want %s", in, got, want)
		}
	}
}

// TestPairTools: every call gets exactly one result right after it, in the
// calls' order; orphan results are dropped, missing ones made up, user
// messages in between moved after the results, ids made unique; the
// caller's slices are left alone.
func TestPairTools(t *testing.T) {
	t.Parallel()
	calls := []ToolCall{{ID: "a", Name: "add", Arguments: json.RawMessage(`{"a":1}`)}, {ID: "b", Name: "now"}, {Name: "x"}, {ID: "c"}}
	in := []Message{
		{Role: RoleTool, ToolResults: []ToolResult{{CallID: "z", Content: "orphan"}}},
		{Role: RoleUser, Content: "go"},
		{Role: RoleAssistant, Content: "calling", ToolCalls: calls},
		{Role: RoleUser, Content: "meanwhile"},
		{Role: RoleTool, ToolResults: []ToolResult{{CallID: "b", Content: "noon"}, {CallID: "nope", Content: "stray"}}},
		{Role: RoleTool, Content: "see attached", Images: []Image{{URL: "u"}}, ToolResults: []ToolResult{{Name: "add", Content: "2"}}},
		{Role: RoleAssistant, ToolCalls: []ToolCall{{ID: "a", Name: "add", Arguments: json.RawMessage(`nope`)}}},
	}
	got := pairTools(in)
	type row struct {
		role    Role
		content string
		calls   string
		results string
	}
	var rows []row
	for _, m := range got {
		r := row{role: m.Role, content: m.Content}
		for _, c := range m.ToolCalls {
			r.calls += c.ID + ":" + c.Name + string(c.Arguments) + " "
		}
		for _, x := range m.ToolResults {
			r.results += x.CallID + ":" + x.Name + "=" + x.Content + " "
			if x.IsError {
				r.results += "(error) "
			}
		}
		rows = append(rows, r)
	}
	want := []row{
		{RoleUser, "go", "", ""},
		{RoleAssistant, "calling", `a:add{"a":1} b:now{} call_3:x{} `, ""},
		{RoleTool, "", "", "a:add=2 b:now=noon call_3:x=" + noResult + " (error) "},
		{RoleUser, "meanwhile", "", ""},
		{RoleUser, "see attached", "", ""},
		{RoleAssistant, "", `a_2:add{"_raw":"nope"} `, ""},
		{RoleTool, "", "", "a_2:add=" + noResult + " (error) "},
	}
	if !reflect.DeepEqual(rows, want) {
		t.Errorf("got\n%+v\nwant\n%+v", rows, want)
	}
	if len(got[4].Images) != 1 {
		t.Errorf("the tool message's image was lost: %+v", got[4])
	}
	if calls[2].ID != "" || string(calls[0].Arguments) != `{"a":1}` || len(in[2].ToolCalls) != 4 {
		t.Errorf("the caller's calls were changed: %+v", calls)
	}
	if out := pairTools(in[1:2]); &out[0] != &in[1] {
		t.Errorf("a conversation without tools is copied")
	}
}

// TestTurnsTools: merged turns (Anthropic, Gemini) carry results in a user
// turn joined with the user text after them; unmerged ones keep RoleTool.
func TestTurnsTools(t *testing.T) {
	t.Parallel()
	in := []Message{
		{Role: RoleUser, Content: "go"},
		{Role: RoleAssistant, Content: "calling", ToolCalls: []ToolCall{{ID: "a", Name: "add"}}},
		{Role: RoleUser, Content: "meanwhile"},
		{Role: RoleTool, ToolResults: []ToolResult{{CallID: "a", Content: "2"}}},
		{Role: RoleUser, Content: "thanks"},
	}
	m := turns(in, true)
	if len(m) != 3 || m[2].Role != RoleUser || m[2].Content != "meanwhile\n\nthanks" || len(m[2].ToolResults) != 1 || m[1].ToolCalls[0].ID != "a" {
		t.Errorf("merged %+v", m)
	}
	u := turns(in, false)
	if len(u) != 5 || u[2].Role != RoleTool || u[3].Content != "meanwhile" || u[4].Content != "thanks" {
		t.Errorf("unmerged %+v", u)
	}
	// An assistant message with calls and no text is kept.
	if m := turns([]Message{{Role: RoleAssistant, ToolCalls: []ToolCall{{ID: "a", Name: "add"}}}}, false); len(m) != 2 || m[0].Content != "" {
		t.Errorf("calls only: %+v", m)
	}
}

// TestGeminiSchema reduces MCP-style schemas to what Gemini takes.
func TestGeminiSchema(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{``, ``},
		{`{"type":"object","properties":{}}`, ``},
		{`{"type":"object","additionalProperties":false}`, ``},
		{`{"$schema":"x","type":"object","additionalProperties":false,"properties":{"a":{"type":"number","default":1,"examples":[2]}},"required":["a","gone"]}`,
			`{"properties":{"a":{"type":"number"}},"required":["a"],"type":"object"}`},
		{`{"type":"object","properties":{"s":{"type":["string","null"],"format":"uri","minLength":1},"t":{"type":"string","format":"date-time"},"n":{"type":"integer","format":"int64","enum":[1,2]}}}`,
			`{"properties":{"n":{"format":"int64","type":"integer"},"s":{"minLength":1,"nullable":true,"type":"string"},"t":{"format":"date-time","type":"string"}},"type":"object"}`},
		{`{"type":"object","properties":{"k":{"const":"on"},"o":{"anyOf":[{"type":"string"},{"type":"null"}]},"u":{"anyOf":[{"type":"string"},{"type":"number","$ref":"#/x"}]}}}`,
			`{"properties":{"k":{"enum":["on"]},"o":{"nullable":true,"type":"string"},"u":{"anyOf":[{"type":"string"},{"type":"number"}]}},"type":"object"}`},
		{`{"type":"object","properties":{"list":{"type":"array","items":{"type":"object","properties":{"x":{"type":"string","pattern":"^a"}},"additionalProperties":true}}}}`,
			`{"properties":{"list":{"items":{"properties":{"x":{"pattern":"^a","type":"string"}},"type":"object"},"type":"array"}},"type":"object"}`},
	}
	for _, tt := range tests {
		if got := string(geminiSchema(json.RawMessage(tt.in))); got != tt.want {
			t.Errorf("geminiSchema(%s)\n = %s\nwant %s", tt.in, got, tt.want)
		}
	}
}

// TestToolsRefusal classifies refused requests that used tools.
func TestToolsRefusal(t *testing.T) {
	t.Parallel()
	tools := &Request{Tools: []Tool{{Name: "add"}}}
	search := &Request{WebSearch: true}
	history := &Request{Messages: []Message{{Role: RoleTool, ToolResults: []ToolResult{{CallID: "a"}}}}}
	plain := &Request{}
	tests := []struct {
		req  *Request
		e    Error
		want ErrorKind
	}{
		{tools, Error{Param: "tools"}, KindTools},
		{tools, Error{Message: "This model does not support function calling"}, KindTools},
		{tools, Error{Message: "tools[0].function.parameters: invalid schema"}, KindTools},
		{history, Error{Message: "messages with role 'tool' must be a response to a preceeding message with 'tool_calls'"}, KindTools},
		{tools, Error{Param: "temperature", Message: "temperature is not supported with tools"}, KindUnknown},
		{tools, Error{Message: "Invalid image"}, KindUnknown},
		{plain, Error{Message: "tool something"}, KindUnknown},
		{search, Error{Message: "Tool 'web_search' is not supported with gpt-4.1-nano."}, KindWebSearch},
		{search, Error{Message: "Search Grounding is not supported."}, KindWebSearch},
		{search, Error{Message: "function calling is not supported"}, KindTools},
	}
	for _, tt := range tests {
		if got := toolsRefusal(&tt.e, tt.req); got != tt.want {
			t.Errorf("%+v: %v, want %v", tt.e, got, tt.want)
		}
	}
}

func TestAnthropicID(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"toolu_01Ab-9": "toolu_01Ab-9", "functions.add:0": "functions_add_0", "": "call", "call é": "call___"} {
		if got := anthropicID(in); got != want {
			t.Errorf("anthropicID(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestGeminiGeneration(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int{"gemini-3-pro-preview": 3, "models/gemini-2.5-flash": 2, "gemini-10-x": 10, "Gemini-3.1-Pro": 3, "gpt-4o": 0, "gemini-pro": 0} {
		if got := geminiGeneration(in); got != want {
			t.Errorf("geminiGeneration(%q) = %d, want %d", in, got, want)
		}
	}
}

// TestGeminiSignatureFallback: Gemini 3 refuses function calls without a
// thoughtSignature; a history that lost it gets Google's documented skip
// value on the first call of the turn; older models get nothing.
func TestGeminiSignatureFallback(t *testing.T) {
	t.Parallel()
	msgs := []Message{
		{Role: RoleUser, Content: "go"},
		{Role: RoleAssistant, ToolCalls: []ToolCall{{ID: "a", Name: "add"}, {ID: "b", Name: "add"}}},
		{Role: RoleTool, ToolResults: []ToolResult{{CallID: "a", Content: "1"}, {CallID: "b", Content: "2"}}},
		{Role: RoleAssistant, ToolCalls: []ToolCall{{ID: "c", Name: "add", Signature: "real"}}},
		{Role: RoleTool, ToolResults: []ToolResult{{CallID: "c", Content: "3"}}},
	}
	for model, want := range map[string][]string{
		"gemini-3-flash":   {geminiSkipSignature, "", "real"},
		"gemini-2.5-flash": {"", "", "real"},
	} {
		body, err := geminiWire{}.encode(&Request{Model: model, Messages: msgs}, true, 0)
		if err != nil {
			t.Fatal(err)
		}
		var r geminiRequest
		if err := json.Unmarshal(body.bytes(), &r); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, c := range r.Contents {
			for _, p := range c.Parts {
				if p.FunctionCall != nil {
					got = append(got, p.ThoughtSignature)
				}
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: signatures %q, want %q", model, got, want)
		}
	}
}

// TestChatSearchCitations: the search models of Chat Completions annotate
// their text with url_citation annotations; they are citations too.
func TestChatSearchCitations(t *testing.T) {
	t.Parallel()
	ann := `"annotations":[{"type":"url_citation","url_citation":{"start_index":0,"end_index":3,"url":"https://go.dev","title":"Go"}}]`
	resp, _, err := decodeFixture(t, FormatChat, sseData(
		chatFix(`{"content":"Go!",`+ann+`}`, ""),
		chatFix(`{`+ann+`}`, "stop"),
		"[DONE]"))
	if err != nil || !reflect.DeepEqual(resp.Citations, []Citation{{"https://go.dev", "Go"}}) || resp.Text != "Go!" {
		t.Errorf("resp %+v err %v", resp, err)
	}
}
