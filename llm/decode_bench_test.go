package llm

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// benchStream renders a realistic stream of n one-word deltas in format f.
func benchStream(f Format, n int) []byte {
	var b bytes.Buffer
	word := func(i int) string { return fmt.Sprintf(" w%d", i%100) }
	switch f {
	case FormatChat:
		for i := range n {
			fmt.Fprintf(&b, "data: {\"id\":\"chatcmpl-abc123\",\"object\":\"chat.completion.chunk\",\"created\":1760000000,\"model\":\"gpt-4o-mini\",\"system_fingerprint\":null,\"choices\":[{\"index\":0,\"delta\":{\"content\":%q},\"logprobs\":null,\"finish_reason\":null}]}\n\n", word(i))
		}
		b.WriteString("data: {\"id\":\"chatcmpl-abc123\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n")
		b.WriteString("data: {\"id\":\"chatcmpl-abc123\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o-mini\",\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":1000}}\n\ndata: [DONE]\n\n")
	case FormatResponses:
		for i := range n {
			fmt.Fprintf(&b, "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":%d,\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,\"delta\":%q}\n\n", i, word(i))
		}
		b.WriteString("event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"status\":\"completed\",\"model\":\"gpt-5\",\"usage\":{\"input_tokens\":10,\"output_tokens\":1000}}}\n\n")
	case FormatAnthropic:
		b.WriteString("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"claude-sonnet-4-5\",\"usage\":{\"input_tokens\":10,\"output_tokens\":1}}}\n\n")
		for i := range n {
			fmt.Fprintf(&b, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":%q}}\n\n", word(i))
		}
		b.WriteString("event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":1000}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
	case FormatGemini:
		for i := range n {
			fmt.Fprintf(&b, "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":%q}],\"role\":\"model\"},\"index\":0}],\"modelVersion\":\"gemini-2.5-flash\",\"responseId\":\"abc\"}\r\n\r\n", word(i))
		}
		b.WriteString("data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"\"}],\"role\":\"model\"},\"finishReason\":\"STOP\",\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":10,\"candidatesTokenCount\":1000,\"totalTokenCount\":1010},\"modelVersion\":\"gemini-2.5-flash\"}\r\n\r\n")
	}
	return b.Bytes()
}

func TestBenchStreamsDecode(t *testing.T) {
	c, _ := NewClient(Config{})
	for _, f := range []Format{FormatChat, FormatResponses, FormatAnthropic, FormatGemini} {
		var got strings.Builder
		st := &streamState{c: c, onDelta: func(d Delta) error { got.WriteString(d.Text); return nil }}
		if err := c.readStream(context.Background(), wireFor(f), bytes.NewReader(benchStream(f, 50)), st); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		r := st.finish()
		if r.Usage.OutputTokens != 1000 || !strings.HasPrefix(got.String(), " w0 w1 w2") || r.StopReason == "" {
			t.Errorf("%s: %q %+v", f, got.String()[:20], r)
		}
	}
}

// BenchmarkDecodeStream measures SSE parsing plus JSON decoding of a
// 1000-delta stream in each format: throughput (MB/s) and allocations per delta.
func BenchmarkDecodeStream(b *testing.B) {
	c, _ := NewClient(Config{})
	const n = 1000
	for _, f := range []Format{FormatChat, FormatResponses, FormatAnthropic, FormatGemini} {
		b.Run(string(f), func(b *testing.B) {
			in := benchStream(f, n)
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			r := bytes.NewReader(in)
			ctx := context.Background()
			var ms0, ms1 runtime.MemStats
			runtime.ReadMemStats(&ms0)
			iters := 0
			for b.Loop() {
				r.Reset(in)
				st := &streamState{c: c, onDelta: func(Delta) error { return nil }}
				if err := c.readStream(ctx, wireFor(f), r, st); err != nil {
					b.Fatal(err)
				}
				iters++
			}
			runtime.ReadMemStats(&ms1)
			b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/float64(iters*n), "allocs/delta")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(iters*n), "ns/delta")
		})
	}
}

// benchToolStream renders a stream in format f whose answer is one tool
// call with n argument fragments (Gemini, which sends calls whole: n calls,
// one per chunk), each fragment a key and an escaped string value, as a
// model writing a long argument would send them.
func benchToolStream(f Format, n int) []byte {
	var b bytes.Buffer
	frag := func(i int) string {
		s := fmt.Sprintf(`"k%d":"line\n\"%d\"",`, i, i%100)
		if i == 0 {
			s = "{" + s
		}
		if i == n-1 {
			s = fmt.Sprintf(`"k%d":"end"}`, i)
		}
		q, _ := json.Marshal(s)
		return string(q)
	}
	switch f {
	case FormatChat:
		b.WriteString("data: {\"id\":\"chatcmpl-abc123\",\"object\":\"chat.completion.chunk\",\"created\":1760000000,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"index\":0,\"id\":\"call_abc\",\"type\":\"function\",\"function\":{\"name\":\"write\",\"arguments\":\"\"}}]},\"logprobs\":null,\"finish_reason\":null}]}\n\n")
		for i := range n {
			fmt.Fprintf(&b, "data: {\"id\":\"chatcmpl-abc123\",\"object\":\"chat.completion.chunk\",\"created\":1760000000,\"model\":\"gpt-4o-mini\",\"system_fingerprint\":null,\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":%s}}]},\"logprobs\":null,\"finish_reason\":null}]}\n\n", frag(i))
		}
		b.WriteString("data: {\"id\":\"chatcmpl-abc123\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n")
		b.WriteString("data: {\"id\":\"chatcmpl-abc123\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o-mini\",\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":1000}}\n\ndata: [DONE]\n\n")
	case FormatResponses:
		b.WriteString("event: response.output_item.added\ndata: {\"type\":\"response.output_item.added\",\"sequence_number\":0,\"output_index\":0,\"item\":{\"type\":\"function_call\",\"id\":\"fc_1\",\"call_id\":\"call_abc\",\"name\":\"write\",\"arguments\":\"\",\"status\":\"in_progress\"}}\n\n")
		for i := range n {
			fmt.Fprintf(&b, "event: response.function_call_arguments.delta\ndata: {\"type\":\"response.function_call_arguments.delta\",\"sequence_number\":%d,\"item_id\":\"fc_1\",\"output_index\":0,\"delta\":%s,\"obfuscation\":\"x\"}\n\n", i+1, frag(i))
		}
		b.WriteString("event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"status\":\"completed\",\"model\":\"gpt-5\",\"usage\":{\"input_tokens\":10,\"output_tokens\":1000}}}\n\n")
	case FormatAnthropic:
		b.WriteString("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"claude-sonnet-4-5\",\"usage\":{\"input_tokens\":10,\"output_tokens\":1}}}\n\n")
		b.WriteString("event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_abc\",\"name\":\"write\",\"input\":{}}}\n\n")
		for i := range n {
			fmt.Fprintf(&b, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":%s}}\n\n", frag(i))
		}
		b.WriteString("event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n")
		b.WriteString("event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},\"usage\":{\"output_tokens\":1000}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
	case FormatGemini:
		for i := range n {
			fmt.Fprintf(&b, "data: {\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":{\"name\":\"write\",\"args\":{\"k\":%d,\"v\":\"line\\n\"}}}],\"role\":\"model\"},\"index\":0}],\"modelVersion\":\"gemini-2.5-flash\",\"responseId\":\"abc\"}\r\n\r\n", i)
		}
		b.WriteString("data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"\"}],\"role\":\"model\"},\"finishReason\":\"STOP\",\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":10,\"candidatesTokenCount\":1000,\"totalTokenCount\":1010},\"modelVersion\":\"gemini-2.5-flash\"}\r\n\r\n")
	}
	return b.Bytes()
}

func TestBenchToolStreamsDecode(t *testing.T) {
	c, _ := NewClient(Config{})
	for _, f := range []Format{FormatChat, FormatResponses, FormatAnthropic, FormatGemini} {
		st := &streamState{c: c, onDelta: func(Delta) error { return nil }}
		if err := c.readStream(context.Background(), wireFor(f), bytes.NewReader(benchToolStream(f, 50)), st); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		r := st.finish()
		if f == FormatGemini {
			if len(r.ToolCalls) != 50 || string(r.ToolCalls[49].Arguments) != `{"k":49,"v":"line\n"}` {
				t.Errorf("%s: %d calls", f, len(r.ToolCalls))
			}
			continue
		}
		var args map[string]string
		if len(r.ToolCalls) != 1 || json.Unmarshal(r.ToolCalls[0].Arguments, &args) != nil || len(args) != 50 || args["k7"] != "line\n\"7\"" || args["k49"] != "end" {
			t.Errorf("%s: %+v", f, r.ToolCalls)
		}
		if r.StopReason != StopToolCalls || r.Usage.OutputTokens != 1000 {
			t.Errorf("%s: stop %q usage %+v", f, r.StopReason, r.Usage)
		}
	}
}

// BenchmarkDecodeToolCallStream measures decoding a tool call streamed in
// 1000 argument fragments (Gemini: 1000 whole calls, one per chunk):
// allocations and time per chunk.
func BenchmarkDecodeToolCallStream(b *testing.B) {
	c, _ := NewClient(Config{})
	const n = 1000
	for _, f := range []Format{FormatChat, FormatResponses, FormatAnthropic, FormatGemini} {
		b.Run(string(f), func(b *testing.B) {
			in := benchToolStream(f, n)
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			r := bytes.NewReader(in)
			ctx := context.Background()
			var ms0, ms1 runtime.MemStats
			runtime.ReadMemStats(&ms0)
			iters := 0
			for b.Loop() {
				r.Reset(in)
				st := &streamState{c: c, onDelta: func(Delta) error { return nil }}
				if err := c.readStream(ctx, wireFor(f), r, st); err != nil {
					b.Fatal(err)
				}
				st.finish()
				iters++
			}
			runtime.ReadMemStats(&ms1)
			b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/float64(iters*n), "allocs/chunk")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(iters*n), "ns/chunk")
		})
	}
}
