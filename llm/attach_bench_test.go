package llm_test

import (
	"context"
	"encoding/base64"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/cometbot/cometbot/llm"
	"github.com/cometbot/cometbot/llm/llmtest"
)

// heapInuse reads the runtime's HeapInuse (object bytes plus the free space
// of in-use spans) without stopping the world.
type heapInuse struct{ s []metrics.Sample }

func newHeapInuse() *heapInuse {
	return &heapInuse{s: []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/unused:bytes"},
		{Name: "/gc/heap/allocs:bytes"},
	}}
}

func (h *heapInuse) read() (inuse, totalAlloc uint64) {
	metrics.Read(h.s)
	return h.s[0].Value.Uint64() + h.s[1].Value.Uint64(), h.s[2].Value.Uint64()
}

// samplePeak samples HeapInuse every 100µs until stop is called, and
// returns the highest value seen.
func samplePeak() (stop func() uint64) {
	done := make(chan struct{})
	res := make(chan uint64)
	go func() {
		h := newHeapInuse()
		var peak uint64
		t := time.NewTicker(100 * time.Microsecond)
		defer t.Stop()
		for {
			v, _ := h.read()
			peak = max(peak, v)
			select {
			case <-done:
				v, _ := h.read()
				res <- max(peak, v)
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 { close(done); return <-res }
}

// BenchmarkAttachmentRequestHeap sends a turn with a 20 MiB image through a
// real Client to the fake gateway (which discards bodies, so that it does
// not weigh on the measurement) and reports:
//
//   - heapX: peak HeapInuse during the call, above the heap before the
//     attachment existed, divided by the attachment size (the attachment
//     itself counts 1);
//   - allocX: bytes allocated per call divided by the attachment size.
//
// Run: go test -run '^$' -bench AttachmentRequestHeap -benchtime 5x ./llm/
func BenchmarkAttachmentRequestHeap(b *testing.B) {
	const size = 20 << 20
	s := llmtest.NewServer(llmtest.Options{Reply: "a picture of noise", DisableRecording: true, SkipBodies: true})
	defer s.Close()
	for _, fc := range formats {
		b.Run(fc.name, func(b *testing.B) {
			c, err := llm.NewClient(llm.Config{BaseURL: s.URL(), APIKey: testKey})
			if err != nil {
				b.Fatal(err)
			}
			h := newHeapInuse()
			runtime.GC()
			base, _ := h.read()
			img := make([]byte, size)
			copy(img, "\x89PNG\r\n\x1a\n")
			for i := 8; i < len(img); i++ {
				img[i] = byte(i*7 + i>>9)
			}
			req := llm.Request{Model: fc.model, Messages: []llm.Message{{Role: llm.RoleUser, Content: "what is this?",
				Images: []llm.Image{{MIMEType: "image/png", Data: img}}}}}
			var peak, allocs uint64
			ops := 0
			b.SetBytes(size)
			for b.Loop() {
				b.StopTimer()
				runtime.GC()
				_, a0 := h.read()
				stop := samplePeak()
				b.StartTimer()
				resp, err := c.Stream(context.Background(), req, nil)
				b.StopTimer()
				p := stop()
				_, a1 := h.read()
				b.StartTimer()
				if err != nil {
					b.Fatal(err)
				}
				if resp.Text != "a picture of noise" {
					b.Fatalf("text = %q", resp.Text)
				}
				peak = max(peak, p)
				allocs += a1 - a0
				ops++
			}
			runtime.KeepAlive(img)
			b.ReportMetric(float64(peak-min(peak, base))/size, "heapX")
			b.ReportMetric(float64(allocs)/float64(ops)/size, "allocX")
		})
	}
}

// BenchmarkGeneratedImageHeap receives a 20 MiB generated image (a Gemini
// inlineData part in one SSE event, prepared before the measurement) and
// reports heapX and allocX as BenchmarkAttachmentRequestHeap does.
//
// Run: go test -run '^$' -bench GeneratedImageHeap -benchtime 5x ./llm/
func BenchmarkGeneratedImageHeap(b *testing.B) {
	const size = llm.MaxImageBytes
	s := llmtest.NewServer(llmtest.Options{DisableRecording: true})
	defer s.Close()
	c, err := llm.NewClient(llm.Config{BaseURL: s.URL(), APIKey: testKey})
	if err != nil {
		b.Fatal(err)
	}
	h := newHeapInuse()
	runtime.GC()
	base, _ := h.read()
	img := make([]byte, size)
	body := "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Here.\"},{\"inlineData\":{\"mimeType\":\"image/png\",\"data\":\"" +
		base64.StdEncoding.EncodeToString(img) + "\"}}]},\"finishReason\":\"STOP\"}]}\n\n"
	img = nil
	req := llm.Request{Model: "gemini-2.5-flash-image", Messages: []llm.Message{{Role: llm.RoleUser, Content: "draw"}}}
	var peak, allocs uint64
	ops := 0
	b.SetBytes(size)
	for b.Loop() {
		b.StopTimer()
		s.Enqueue(llmtest.Script{ContentType: "text/event-stream", Body: body})
		runtime.GC()
		_, a0 := h.read()
		stop := samplePeak()
		b.StartTimer()
		resp, err := c.Stream(context.Background(), req, nil)
		b.StopTimer()
		p := stop()
		_, a1 := h.read()
		b.StartTimer()
		if err != nil {
			b.Fatal(err)
		}
		if len(resp.Images) != 1 || len(resp.Images[0].Data) != size {
			b.Fatalf("%d images", len(resp.Images))
		}
		peak = max(peak, p)
		allocs += a1 - a0
		ops++
	}
	// The prepared body (4/3 of the image) is not the client's.
	b.ReportMetric((float64(peak-min(peak, base))-float64(len(body)))/size, "heapX")
	b.ReportMetric(float64(allocs)/float64(ops)/size, "allocX")
}
