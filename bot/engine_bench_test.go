package bot

// Engine benchmarks (issue 7). Run them with
//
//	go test -run '^$' -bench 'Turn|InFlight' -benchmem ./bot
//
// A turn is HandleMessage → queue → history read → settings → model call
// (an instant in-process fake streaming 20 deltas) → durable append → usage
// → Finish on a no-op Output. The store is real bbolt with fsync on, as in
// production (the "nosync" variants show what fsync costs).
// Metrics: turns/s, ns/op (= wall time per turn), cpu-ns/turn (user+system
// CPU of the whole process per turn, from getrusage), allocs/op.

import (
	"context"
	"log/slog"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/cometbot/cometbot/internal/metrics"
	"github.com/cometbot/cometbot/llm"
	"github.com/cometbot/cometbot/storage"
)

// benchAnswer is streamed in 20 deltas.
var benchDeltas = strings.SplitAfter(strings.Repeat("The quick brown fox jumps over the lazy dog; ", 10)[:400], " ")

// instantModel answers at once. While a gate is set, every call blocks
// after half of its deltas (calling gate.reached.Done) until gate.release is
// closed or ctx ends.
type instantModel struct {
	gate atomic.Pointer[modelGate]
}

type modelGate struct {
	release chan struct{}
	reached sync.WaitGroup
}

func (m *instantModel) Stream(ctx context.Context, req llm.Request, onDelta func(llm.Delta) error) (*llm.Response, error) {
	g := m.gate.Load()
	for i, d := range benchDeltas {
		if g != nil && i == len(benchDeltas)/2 {
			g.reached.Done()
			select {
			case <-g.release:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		if err := onDelta(llm.Delta{Text: d}); err != nil {
			return nil, err
		}
	}
	return &llm.Response{Text: strings.Join(benchDeltas, ""), Usage: llm.Usage{InputTokens: 120, OutputTokens: 80}}, nil
}

// nopOut is a no-op Output and Reply; done receives one value per finished
// turn.
type nopOut struct {
	done   chan struct{}
	failed atomic.Int64
}

func newNopOut() *nopOut                               { return &nopOut{done: make(chan struct{}, 1)} }
func (o *nopOut) Start(context.Context) (Reply, error) { return o, nil }
func (o *nopOut) Append(context.Context, string) error { return nil }
func (o *nopOut) Finish(context.Context, string) error { o.done <- struct{}{}; return nil }
func (o *nopOut) Fail(_ context.Context, _ string) error {
	o.failed.Add(1)
	o.done <- struct{}{}
	return nil
}

func newBenchEngine(b *testing.B, nosync bool, model Model, mod func(*Options)) *Engine {
	b.Helper()
	st, err := storage.Open(filepath.Join(b.TempDir(), "bench.db"), storage.Options{NoSync: nosync})
	if err != nil {
		b.Fatal(err)
	}
	opts := Options{Store: st, Model: model, Catalog: testCatalog, Logger: slog.New(slog.DiscardHandler),
		Defaults: Defaults{Model: "gpt-4o-mini", SystemPrompt: "You are a helpful assistant."}}
	if mod != nil {
		mod(&opts)
	}
	e, err := New(opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = e.Shutdown(ctx)
		_ = st.Close()
	})
	return e
}

// benchMessage is a channel mention in thread conv (a Slack-like thread).
func benchMessage(conv, turn int) Message {
	c := strconv.Itoa(conv)
	id := c + "." + strconv.Itoa(turn)
	return Message{Platform: "slack", Workspace: "T1", Channel: "C" + strconv.Itoa(conv%50), Thread: "1700000000." + c,
		ID: id, EventID: "Ev" + id, Mentioned: true, Author: User{ID: "U" + strconv.Itoa(conv%300), Name: "Ann"},
		Text: "How do I reverse a linked list in Go, in place, without allocating?"}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkTurn runs full turns serially (one conversation at a time,
// rotating over 1,000 conversations) and with 500 concurrent conversations
// (each sends its next message when its previous reply finished).
func BenchmarkTurn(b *testing.B) {
	for _, nosync := range []bool{false, true} {
		mode := "fsync"
		if nosync {
			mode = "nosync"
		}
		b.Run(mode+"/serial", func(b *testing.B) {
			e := newBenchEngine(b, nosync, &instantModel{}, nil)
			out := newNopOut()
			ctx := context.Background()
			b.ReportAllocs()
			cpu0 := cpuTime()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if err := e.HandleMessage(ctx, benchMessage(i%1000, i), out); err != nil {
					b.Fatal(err)
				}
				<-out.done
			}
			b.StopTimer()
			reportTurn(b, cpu0, out.failed.Load())
		})
		b.Run(mode+"/concurrent=500", func(b *testing.B) {
			const conc = 500
			e := newBenchEngine(b, nosync, &instantModel{}, nil)
			ctx := context.Background()
			var (
				next   atomic.Int64 // turns handed out
				failed atomic.Int64
				wg     sync.WaitGroup
			)
			b.ReportAllocs()
			cpu0 := cpuTime()
			b.ResetTimer()
			for c := range conc {
				wg.Add(1)
				go func() {
					defer wg.Done()
					out := newNopOut()
					for turn := 0; next.Add(1) <= int64(b.N); turn++ {
						if err := e.HandleMessage(ctx, benchMessage(c, turn), out); err != nil {
							b.Error(err)
							return
						}
						<-out.done
					}
					failed.Add(out.failed.Load())
				}()
			}
			wg.Wait()
			b.StopTimer()
			reportTurn(b, cpu0, failed.Load())
		})
	}
}

// BenchmarkTurnMetrics is BenchmarkTurn/nosync/serial with and without
// Options.Metrics (internal/metrics, as served): the overhead of metrics
// per turn.
//
//	go test -run '^$' -bench TurnMetrics -benchmem -count 6 ./bot
func BenchmarkTurnMetrics(b *testing.B) {
	for _, on := range []bool{false, true} {
		name := "off"
		if on {
			name = "on"
		}
		b.Run(name, func(b *testing.B) {
			e := newBenchEngine(b, true, &instantModel{}, func(o *Options) {
				if on {
					o.Metrics = metrics.New(metrics.Options{KnownModel: func(id string) bool { _, ok := testCatalog.Lookup(id); return ok }})
				}
			})
			out := newNopOut()
			ctx := context.Background()
			b.ReportAllocs()
			cpu0 := cpuTime()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if err := e.HandleMessage(ctx, benchMessage(i%1000, i), out); err != nil {
					b.Fatal(err)
				}
				<-out.done
			}
			b.StopTimer()
			reportTurn(b, cpu0, out.failed.Load())
		})
	}
}

func reportTurn(b *testing.B, cpu0 time.Duration, failed int64) {
	b.Helper()
	if failed > 0 {
		b.Fatalf("%d of %d turns failed", failed, b.N)
	}
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, "turns/s")
	}
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/turn")
}

// BenchmarkInFlightHeap measures the memory one streaming conversation holds
// in the engine: 1,000 conversations each get a turn whose model call blocks
// halfway through its stream; with all of them blocked, the live heap (after
// a GC) and the goroutine stacks are compared with before. The model and
// output are in-process fakes, so this is the engine's share only; the load
// tool measures the whole binary (HTTP client and Slack adapter included).
func BenchmarkInFlightHeap(b *testing.B) {
	const conc = 1000
	ctx := context.Background()
	var heapPer, stackPer float64
	runs := 0
	for b.Loop() {
		b.StopTimer()
		m := &instantModel{}
		e := newBenchEngine(b, true, m, func(o *Options) { o.MaxConcurrent = conc })
		// Warm the store and the engine's code paths once.
		warm := newNopOut()
		if err := e.HandleMessage(ctx, benchMessage(conc, 0), warm); err != nil {
			b.Fatal(err)
		}
		<-warm.done
		g := &modelGate{release: make(chan struct{})}
		g.reached.Add(conc)
		m.gate.Store(g)
		outs := make([]*nopOut, conc)
		before := memNow()
		b.StartTimer()
		for c := range conc {
			outs[c] = newNopOut()
			if err := e.HandleMessage(ctx, benchMessage(c, 1), outs[c]); err != nil {
				b.Fatal(err)
			}
		}
		g.reached.Wait()
		b.StopTimer()
		during := memNow()
		if e.InFlight() != conc {
			b.Fatalf("in flight = %d, want %d", e.InFlight(), conc)
		}
		heapPer += float64(int64(during.heap)-int64(before.heap)) / conc
		stackPer += float64(int64(during.stack)-int64(before.stack)) / conc
		runs++
		close(g.release)
		for _, o := range outs {
			<-o.done
		}
		b.StartTimer()
	}
	b.ReportMetric(heapPer/float64(runs), "heap-B/conv")
	b.ReportMetric(stackPer/float64(runs), "stack-B/conv")
}

type memSample struct{ heap, stack uint64 }

func memNow() memSample {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return memSample{heap: ms.HeapAlloc, stack: ms.StackInuse}
}

// BenchmarkBoltCeiling is raw bbolt with fsync on, 500 concurrent writers
// each appending two records (a turn's user and assistant message) through
// db.Batch: the ceiling BenchmarkTurn/fsync/concurrent=500 is compared with
// (same process, same disk, same run). storage has the same benchmark.
func BenchmarkBoltCeiling(b *testing.B) {
	db, err := bolt.Open(filepath.Join(b.TempDir(), "raw.db"), 0o600, &bolt.Options{FreelistType: bolt.FreelistMapType})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = db.Close() })
	rec := []byte(`{"role":"user","text":"How do I reverse a linked list in Go, in place, without allocating?","author":"U1","time":"2026-11-25T19:43:28Z","status":"ok"}`)
	var n atomic.Int64
	cpu0 := cpuTime()
	b.SetParallelism(max(1, 500/runtime.GOMAXPROCS(0)))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			conv := []byte("slack/T1/C1/" + strconv.Itoa(int(n.Add(1)%1000)))
			err := db.Batch(func(tx *bolt.Tx) error {
				bk, err := tx.CreateBucketIfNotExists(conv)
				if err != nil {
					return err
				}
				for range 2 {
					seq, _ := bk.NextSequence()
					if err := bk.Put([]byte(strconv.FormatUint(seq, 10)), rec); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportTurn(b, cpu0, 0)
}
