package bot_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/cometbot/cometbot/bot"
	"github.com/cometbot/cometbot/llm"
	"github.com/cometbot/cometbot/llm/llmtest"
	"github.com/cometbot/cometbot/storage"
)

// heapNow reads HeapInuse (object bytes plus free space in in-use spans)
// without stopping the world.
func heapNow(s []metrics.Sample) uint64 {
	metrics.Read(s)
	return s[0].Value.Uint64() + s[1].Value.Uint64()
}

// BenchmarkTurnHeapWithAttachment runs whole turns — engine, bbolt store
// (the attachment is kept as a blob), the real llm client streaming the
// request to the fake gateway — each with a fresh 20 MiB image, and reports
// heapX: peak HeapInuse during the turn above the heap before the image
// existed, divided by the image size (the image itself counts 1).
//
// HeapInuse includes garbage the collector has not reclaimed yet, so the
// figure depends on GOGC: run with GOGC=20 to see close to the live peak.
//
// Run: go test -run '^$' -bench TurnHeapWithAttachment -benchtime 5x ./bot/
func BenchmarkTurnHeapWithAttachment(b *testing.B) {
	const size = 20 << 20
	for _, f := range formatModels {
		b.Run(f.format, func(b *testing.B) {
			gw := llmtest.NewServer(llmtest.Options{Reply: "noise", DisableRecording: true, SkipBodies: true})
			defer gw.Close()
			st, err := storage.Open(filepath.Join(b.TempDir(), "b.db"), storage.Options{NoSync: true, MaxConversationBlobBytes: 3 * size})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			cat := llm.NewCatalog(llm.CatalogConfig{URL: gw.CatalogURL(), Cache: st})
			if err := cat.Refresh(context.Background()); err != nil {
				b.Fatal(err)
			}
			client, err := llm.NewClient(llm.Config{BaseURL: gw.URL(), APIKey: "k", Catalog: cat})
			if err != nil {
				b.Fatal(err)
			}
			e, err := bot.New(bot.Options{Store: st, Blobs: blobsFor(st), Model: client, Catalog: cat, Defaults: bot.Defaults{Model: f.model},
				Attachments: bot.AttachmentOptions{MaxBytes: 2 * size, ContextBytes: 2 * size}})
			if err != nil {
				b.Fatal(err)
			}
			defer e.Shutdown(context.Background()) //nolint:errcheck
			samples := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/unused:bytes"}}
			var worst float64
			n := 0
			for b.Loop() {
				b.StopTimer()
				runtime.GC()
				base := heapNow(samples)
				img := make([]byte, size)
				copy(img, "\x89PNG\r\n\x1a\n")
				for i := 8; i < len(img); i++ {
					img[i] = byte(i*7 + n + i>>9)
				}
				n++
				// The platform hands the bytes over once, as the fetcher would.
				fetchOnce := func(context.Context) ([]byte, error) { d := img; img = nil; return d, nil }
				done := make(chan struct{})
				peakc := make(chan uint64)
				go func() {
					var peak uint64
					t := time.NewTicker(100 * time.Microsecond)
					defer t.Stop()
					for {
						peak = max(peak, heapNow(samples))
						select {
						case <-done:
							peakc <- max(peak, heapNow(samples))
							return
						case <-t.C:
						}
					}
				}()
				o := newStreamOut()
				b.StartTimer()
				m := bot.Message{Platform: "t", Workspace: "W", Channel: "D", DM: true, Author: bot.User{ID: fmt.Sprint("U", n)}, Text: "what is this?",
					Attachments: []bot.Attachment{{Name: "shot.png", Fetch: fetchOnce}}}
				if err := e.HandleMessage(context.Background(), m, o); err != nil {
					b.Fatal(err)
				}
				<-o.done
				if err := e.Quiesce(context.Background()); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				close(done)
				peak := <-peakc
				if o.failed != "" {
					b.Fatalf("turn failed: %s", o.failed)
				}
				worst = max(worst, float64(peak-min(peak, base))/size)
				b.StartTimer()
			}
			b.ReportMetric(worst, "heapX")
		})
	}
}

func blobsFor(st *storage.Store) bot.BlobStore {
	if os.Getenv("NOBLOBS") != "" {
		return nil
	}
	return st
}
