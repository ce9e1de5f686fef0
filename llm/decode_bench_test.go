package llm

import (
	"bytes"
	"context"
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
