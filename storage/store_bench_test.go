package storage

// Store benchmarks (issue 7). Run them with
//
//	go test -run '^$' -bench . -benchmem ./storage
//
// The "1M" store is built once per test binary run (NoSync, 100,000 records
// per transaction) in a temporary directory that TestMain removes; building
// it takes a few seconds. Sub-benchmarks named "fsync" reopen it with fsync
// on, as production runs.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

const (
	benchConvs      = 9000    // conversations of benchShort messages each
	benchShort      = 100     // messages of a short thread
	benchLong       = 100_000 // messages of the long thread
	benchTotal      = benchConvs*benchShort + benchLong
	benchLongKey    = "slack/T1/CLONG/1700000000.000001"
	benchWindow     = 50  // History limit in the window benchmark
	benchConcurrent = 500 // concurrent writers in the parallel benchmarks
)

var (
	benchDir     string
	benchDirOnce sync.Once
	benchDirErr  error

	bigOnce sync.Once
	bigPath string
	bigErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if benchDir != "" {
		_ = os.RemoveAll(benchDir)
	}
	os.Exit(code)
}

func benchTempDir(b *testing.B) string {
	b.Helper()
	benchDirOnce.Do(func() { benchDir, benchDirErr = os.MkdirTemp("", "cometbot-storage-bench-") })
	if benchDirErr != nil {
		b.Fatal(benchDirErr)
	}
	return benchDir
}

func benchConvKey(i int) string { return fmt.Sprintf("slack/T1/C%05d/1700000000.%06d", i%97, i) }

// benchRecord is a realistic stored message: about 300 bytes of JSON.
func benchRecord(i int) []byte {
	r := Record{Role: "user", Author: "U0123456789", AuthorName: "Ada Lovelace", MessageID: "1700000000.000100",
		Time: time.Unix(1700000000+int64(i), 0).UTC(), Status: StatusOK,
		Text: "Could you explain how the analytical engine would compute Bernoulli numbers, step by step, please? #" + fmt.Sprint(i)}
	if i%2 == 1 {
		r = Record{Role: "assistant", Model: "gpt-4o-mini", Time: r.Time, Status: StatusOK, InputTokens: 812, OutputTokens: 164, Cost: 0.000221,
			Text: "Sure. The engine stores the previous numbers in its store columns, then the mill combines them in a loop. #" + fmt.Sprint(i)}
	}
	v, _ := json.Marshal(r)
	return v
}

// fillConv writes n records into conversation key (generation 0) with raw
// bbolt puts, committing every 100,000 records.
func fillConv(db *bolt.DB, key string, n int) error {
	for done := 0; done < n; {
		err := db.Update(func(tx *bolt.Tx) error {
			cb, err := tx.Bucket(bucketConvs).CreateBucketIfNotExists([]byte(key))
			if err != nil {
				return err
			}
			if cb.Get(keyGen) == nil {
				if err := cb.Put(keyGen, u64(0)); err != nil {
					return err
				}
			}
			msgs, err := cb.CreateBucketIfNotExists(genKey(0))
			if err != nil {
				return err
			}
			msgs.FillPercent = 0.9 // sequential keys
			for ; done < n; done++ {
				seq, _ := msgs.NextSequence()
				if err := msgs.Put(u64(seq), benchRecord(done)); err != nil {
					return err
				}
				if done%100_000 == 99_999 {
					done++
					break
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// bigStore returns the path of a store holding benchTotal messages:
// benchConvs conversations of benchShort messages and one conversation of
// benchLong messages.
func bigStore(b *testing.B) string {
	b.Helper()
	dir := benchTempDir(b)
	bigOnce.Do(func() {
		start := time.Now()
		bigPath = filepath.Join(dir, "big.db")
		s, err := Open(bigPath, Options{NoSync: true})
		if err != nil {
			bigErr = err
			return
		}
		defer s.Close()
		const perTx = 1000 // conversations per transaction (100,000 records)
		for c := 0; c < benchConvs && bigErr == nil; c += perTx {
			bigErr = s.db.Update(func(tx *bolt.Tx) error {
				convs := tx.Bucket(bucketConvs)
				for i := c; i < min(c+perTx, benchConvs); i++ {
					cb, err := convs.CreateBucket([]byte(benchConvKey(i)))
					if err != nil {
						return err
					}
					if err := cb.Put(keyGen, u64(0)); err != nil {
						return err
					}
					msgs, err := cb.CreateBucket(genKey(0))
					if err != nil {
						return err
					}
					for j := range benchShort {
						seq, _ := msgs.NextSequence()
						if err := msgs.Put(u64(seq), benchRecord(j)); err != nil {
							return err
						}
					}
				}
				return nil
			})
		}
		if bigErr == nil {
			bigErr = fillConv(s.db, benchLongKey, benchLong)
		}
		if bigErr == nil {
			fi, _ := os.Stat(bigPath)
			b.Logf("built a store of %d messages (%d MiB) in %v", benchTotal, fi.Size()>>20, time.Since(start).Round(time.Millisecond))
		}
	})
	if bigErr != nil {
		b.Fatalf("build big store: %v", bigErr)
	}
	return bigPath
}

// smallStore returns a fresh store holding 1,000 conversations of perConv
// messages.
func smallStore(b *testing.B, name string, nosync bool, perConv int) *Store {
	b.Helper()
	path := filepath.Join(b.TempDir(), name+".db")
	s, err := Open(path, Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	for i := range 1000 {
		if err := fillConv(s.db, benchConvKey(i), perConv); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	return openBench(b, path, nosync)
}

func openBench(b *testing.B, path string, nosync bool) *Store {
	b.Helper()
	s, err := Open(path, Options{NoSync: nosync})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

func syncName(nosync bool) string {
	if nosync {
		return "nosync"
	}
	return "fsync"
}

func turnRecords(i int) (Record, Record) {
	now := time.Unix(1800000000+int64(i), 0)
	return Record{Role: "user", Text: "What is the capital of France, and why did it become the capital?", Author: "U0123456789", AuthorName: "Ada", MessageID: "1800000000.000001", Time: now, Status: StatusOK},
		Record{Role: "assistant", Text: "Paris. It became the capital under Clovis I around 508, and stayed the seat of the kings thereafter.", Time: now, Model: "gpt-4o-mini", Status: StatusOK, InputTokens: 40, OutputTokens: 30, Cost: 0.00002}
}

func reportTurns(b *testing.B) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, "turns/s")
	}
}

// cpuTime is this process's user+system CPU (system includes fsync work).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportCPU(b *testing.B, cpu0 time.Duration) {
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}

// BenchmarkAppendTurn appends one turn (user + assistant record) to one of
// 1,000 existing 100-message conversations, on a store holding 100,000
// messages ("small") and one holding 1M messages ("1M"), with fsync off and
// on. "serial" is one
// writer; "parallel" is 500 concurrent writers (group commit).
func BenchmarkAppendTurn(b *testing.B) {
	ctx := context.Background()
	for _, size := range []string{"small", "1M"} {
		for _, nosync := range []bool{true, false} {
			for _, mode := range []string{"serial", "parallel"} {
				b.Run(fmt.Sprintf("%s/%s/%s", size, syncName(nosync), mode), func(b *testing.B) {
					// Both stores get appends to the same 1,000 existing
					// conversations: only the store's size differs.
					var s *Store
					const nconv = 1000
					if size == "1M" {
						s = openBench(b, bigStore(b), nosync)
					} else {
						s = smallStore(b, "append", nosync, benchShort)
					}
					b.ReportAllocs()
					b.ResetTimer()
					cpu0 := cpuTime()
					if mode == "serial" {
						for i := 0; b.Loop(); i++ {
							u, a := turnRecords(i)
							if err := s.AppendTurn(ctx, benchConvKey(i%nconv), 0, u, a); err != nil {
								b.Fatal(err)
							}
						}
					} else {
						var n atomic.Int64
						b.SetParallelism(parallelism(benchConcurrent))
						b.RunParallel(func(pb *testing.PB) {
							for pb.Next() {
								i := int(n.Add(1))
								u, a := turnRecords(i)
								if err := s.AppendTurn(ctx, benchConvKey(i%nconv), 0, u, a); err != nil {
									b.Error(err)
									return
								}
							}
						})
					}
					reportTurns(b)
					reportCPU(b, cpu0)
				})
			}
		}
	}
}

// parallelism returns the b.SetParallelism factor that runs about n goroutines.
func parallelism(n int) int { return max(1, (n+runtime.GOMAXPROCS(0)-1)/runtime.GOMAXPROCS(0)) }

// BenchmarkHistoryWindow reads the last 50 messages of a 100-message thread
// and of a 100,000-message thread, in the same 1M-message store. The target
// is long ≤ 1.5 × short.
//
// "uncached" reads and decodes the window from bbolt every time (history
// cache off); "cached" is the steady state of a live conversation, where the
// decoded window is kept and only new records are decoded; "cached+turn"
// appends a turn before every read, as consecutive turns do.
func BenchmarkHistoryWindow(b *testing.B) {
	ctx := context.Background()
	for _, mode := range []string{"uncached", "cached", "cached+turn"} {
		for _, c := range []struct {
			name string
			key  string
		}{{"thread=100", benchConvKey(4242)}, {"thread=100000", benchLongKey}} {
			b.Run(mode+"/"+c.name, func(b *testing.B) {
				path := bigStore(b)
				cache := int64(0)
				if mode == "uncached" {
					cache = -1
				}
				s, err := Open(path, Options{NoSync: true, HistoryCacheBytes: cache})
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { _ = s.Close() })
				b.ReportAllocs()
				for i := 0; b.Loop(); i++ {
					if mode == "cached+turn" {
						b.StopTimer()
						u, a := turnRecords(i)
						if err := s.AppendTurn(ctx, c.key, 0, u, a); err != nil {
							b.Fatal(err)
						}
						b.StartTimer()
					}
					_, recs, err := s.History(ctx, c.key, benchWindow)
					if err != nil || len(recs) != benchWindow {
						b.Fatalf("History = %d records, %v", len(recs), err)
					}
				}
			})
		}
	}
}

// BenchmarkSettings looks up a scope's settings (stored, and absent as most
// scopes are) in a store with 10,000 settings entries.
func BenchmarkSettings(b *testing.B) {
	ctx := context.Background()
	s := smallStore(b, "settings", true, 2)
	err := s.db.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketSettings)
		for i := range 10_000 {
			p := "Be concise."
			v, _ := json.Marshal(Settings{Model: "gpt-4o", SystemPrompt: &p, UpdatedBy: "U1", UpdatedAt: time.Now()})
			if err := bk.Put([]byte(fmt.Sprintf("channel/slack/T1/C%05d", i)), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct{ name, scope string }{{"hit", "channel/slack/T1/C04242"}, {"miss", "thread/slack/T1/C04242/1.2"}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, ok, err := s.Settings(ctx, c.scope); err != nil || ok != (c.name == "hit") {
					b.Fatalf("Settings = %v, %v", ok, err)
				}
			}
		})
	}
}

// BenchmarkSeen is the check on the event path: is this event id known?
// (a read; the engine persists new ids with MarkSeen in the background).
func BenchmarkSeen(b *testing.B) {
	ctx := context.Background()
	s := smallStore(b, "seen-read", true, 2)
	for i := range 100 {
		if _, err := s.MarkSeen(ctx, fmt.Sprintf("Ev%08d", i), time.Hour); err != nil {
			b.Fatal(err)
		}
	}
	for _, c := range []struct {
		name string
		want bool
	}{{"known", true}, {"new", false}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				id := fmt.Sprintf("Ev%08d", i%100)
				if !c.want {
					id = fmt.Sprintf("EvNew%09d", i)
				}
				if seen, err := s.Seen(ctx, id); err != nil || seen != c.want {
					b.Fatalf("Seen = %v, %v", seen, err)
				}
			}
		})
	}
}

// BenchmarkMarkSeen records new event ids (a write) and checks duplicates
// (a read), with fsync off and on; "parallel" is 500 concurrent callers.
// A new id is a lazy write: alone it waits up to 50 ms for an ordinary
// write to share its commit (serial ≈ 50 ms/op by design; in the bot the
// turn's commit carries it within milliseconds).
func BenchmarkMarkSeen(b *testing.B) {
	ctx := context.Background()
	for _, nosync := range []bool{true, false} {
		for _, mode := range []string{"new/serial", "new/parallel", "duplicate"} {
			b.Run(syncName(nosync)+"/"+mode, func(b *testing.B) {
				s := smallStore(b, "seen", nosync, 2)
				for i := range 100 {
					if _, err := s.MarkSeen(ctx, fmt.Sprintf("Ev%08d", i), time.Hour); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportAllocs()
				b.ResetTimer()
				switch mode {
				case "new/serial":
					for i := 0; b.Loop(); i++ {
						if first, err := s.MarkSeen(ctx, fmt.Sprintf("EvNew%09d", i), time.Hour); err != nil || !first {
							b.Fatalf("MarkSeen = %v, %v", first, err)
						}
					}
				case "new/parallel":
					var n atomic.Int64
					b.SetParallelism(parallelism(benchConcurrent))
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							if first, err := s.MarkSeen(ctx, fmt.Sprintf("EvNew%09d", n.Add(1)), time.Hour); err != nil || !first {
								b.Errorf("MarkSeen = %v, %v", first, err)
								return
							}
						}
					})
				case "duplicate":
					for i := 0; b.Loop(); i++ {
						if first, err := s.MarkSeen(ctx, fmt.Sprintf("Ev%08d", i%100), time.Hour); err != nil || first {
							b.Fatalf("MarkSeen = %v, %v", first, err)
						}
					}
				}
			})
		}
	}
}

// BenchmarkBoltCeiling is raw bbolt with fsync on, doing what a turn needs
// at minimum: two appends (user and assistant record) to a conversation
// bucket. "update" commits each turn alone (one fsync per turn); "batch" is
// 500 concurrent writers through bbolt's own db.Batch (group commit), the
// ceiling the engine's durable throughput is compared with.
func BenchmarkBoltCeiling(b *testing.B) {
	u, a := turnRecords(0)
	uv, _ := json.Marshal(u)
	av, _ := json.Marshal(a)
	put := func(tx *bolt.Tx, conv int) error {
		bk, err := tx.CreateBucketIfNotExists([]byte(benchConvKey(conv)))
		if err != nil {
			return err
		}
		for _, v := range [][]byte{uv, av} {
			seq, _ := bk.NextSequence()
			if err := bk.Put(u64(seq), v); err != nil {
				return err
			}
		}
		return nil
	}
	open := func(b *testing.B) *bolt.DB {
		db, err := bolt.Open(filepath.Join(b.TempDir(), "raw.db"), 0o600, &bolt.Options{FreelistType: bolt.FreelistMapType})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = db.Close() })
		return db
	}
	b.Run("update/serial", func(b *testing.B) {
		db := open(b)
		cpu0 := cpuTime()
		for i := 0; b.Loop(); i++ {
			if err := db.Update(func(tx *bolt.Tx) error { return put(tx, i%1000) }); err != nil {
				b.Fatal(err)
			}
		}
		reportTurns(b)
		reportCPU(b, cpu0)
	})
	b.Run("batch/parallel", func(b *testing.B) {
		db := open(b)
		cpu0 := cpuTime()
		var n atomic.Int64
		b.SetParallelism(parallelism(benchConcurrent))
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := int(n.Add(1))
				if err := db.Batch(func(tx *bolt.Tx) error { return put(tx, i%1000) }); err != nil {
					b.Error(err)
					return
				}
			}
		})
		reportTurns(b)
		reportCPU(b, cpu0)
	})
}
