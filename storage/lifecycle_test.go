package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// prefill writes n user records (authored by author(i)) spread evenly over
// span before now, round-robin over convs conversations (so each
// conversation's records are in time order), in large transactions.
func prefill(t testing.TB, s *Store, n, convs int, span time.Duration, now time.Time, author func(i int) string) {
	t.Helper()
	const per = 10000
	for lo := 0; lo < n; lo += per {
		err := s.db.Update(func(tx *bolt.Tx) error {
			for i := lo; i < min(n, lo+per); i++ {
				r := Record{Role: "user", Author: author(i), Text: fmt.Sprint("message ", i),
					Time: now.Add(-span + time.Duration(i)*(span/time.Duration(n)))}
				v, _ := json.Marshal(r)
				if err := appendRecords(tx, prefillKey(i, convs), 0, [][]byte{v}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func prefillKey(i, convs int) string {
	c := i % convs
	return fmt.Sprintf("slack/T1/C%d/t%d", c%10, c)
}

// countRecords counts the records of every generation of every conversation.
func countRecords(t testing.TB, s *Store) int {
	t.Helper()
	n := 0
	err := s.db.View(func(tx *bolt.Tx) error {
		convs := tx.Bucket(bucketConvs)
		return convs.ForEachBucket(func(k []byte) error {
			cb := convs.Bucket(k)
			return cb.ForEachBucket(func(g []byte) error { n += cb.Bucket(g).Stats().KeyN; return nil })
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestBackupWhileWriting(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")
	var done atomic.Int64 // turns committed so far (turn i is committed before turn i+1 starts)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := s.AppendTurn(ctx, "slack/T1/C1/t", 0, Record{Role: "user", Author: "U1", Text: fmt.Sprint(i)}); err != nil {
				t.Error(err)
				return
			}
			done.Store(int64(i + 1))
		}
	})
	for done.Load() < 50 {
		time.Sleep(time.Millisecond) // wait for some history (not proving absence)
	}
	before := done.Load()
	dst := filepath.Join(t.TempDir(), "backup.db")
	f, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Backup(ctx, f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	if _, err := VerifyFile(dst); err != nil {
		t.Fatalf("backup does not verify: %v", err)
	}
	cp := openTest(t, dst)
	_, recs, err := cp.History(ctx, "slack/T1/C1/t", 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(recs)) < before {
		t.Fatalf("backup holds %d turns, %d were committed before it started", len(recs), before)
	}
	for i, r := range recs {
		if r.Text != fmt.Sprint(i) {
			t.Fatalf("record %d = %q", i, r.Text)
		}
	}
	t.Logf("%d turns committed before the backup, %d in it", before, len(recs))
}

func TestBackupFileAndRestore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "live.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AppendTurn(ctx, "c", 0, Record{Role: "user", Text: "kept"}); err != nil {
		t.Fatal(err)
	}
	backup := filepath.Join(dir, "backup.db")
	if _, err := BackupFile(path, backup); !errors.Is(err, ErrLocked) {
		t.Fatalf("BackupFile of an open store = %v, want ErrLocked", err)
	}
	if err := Restore(backup, path); err == nil {
		t.Fatal("Restore from a missing file succeeded")
	}
	f, _ := os.Create(backup)
	if _, err := s.Backup(ctx, f); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	if err := Restore(backup, path); !errors.Is(err, ErrLocked) {
		t.Fatalf("Restore over a running store = %v, want ErrLocked", err)
	}
	if err := s.AppendTurn(ctx, "c", 0, Record{Role: "user", Text: "after the backup"}); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()

	// Offline backup of the newer state, then restore the older one.
	offline := filepath.Join(dir, "offline.db")
	if _, err := BackupFile(path, offline); err != nil {
		t.Fatal(err)
	}
	if err := Restore(backup, path); err != nil {
		t.Fatal(err)
	}
	check := func(p string, want ...string) {
		t.Helper()
		s := openTest(t, p)
		_, recs, err := s.History(ctx, "c", 10)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range recs {
			got = append(got, r.Text)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%s holds %q, want %q", filepath.Base(p), got, want)
		}
		_ = s.Close()
	}
	check(path, "kept")
	check(path+".bak", "kept", "after the backup")
	check(offline, "kept", "after the backup")

	// A newer schema and a damaged file are refused, leaving the database alone.
	newer := filepath.Join(dir, "newer.db")
	ns := openTest(t, newer)
	if err := ns.setSchemaVersion(SchemaVersion + 1); err != nil {
		t.Fatal(err)
	}
	_ = ns.Close()
	if err := Restore(newer, path); !errors.Is(err, ErrNewerSchema) {
		t.Fatalf("Restore of a newer schema = %v", err)
	}
	junk := filepath.Join(dir, "junk.db")
	if err := os.WriteFile(junk, make([]byte, 64<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Restore(junk, path); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Restore of a damaged file = %v", err)
	}
	check(path, "kept")
}

func TestExportForget(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	ref, err := s.PutBlob(ctx, "slack/T1/C1/t1", []byte("a picture"))
	if err != nil {
		t.Fatal(err)
	}
	turn := func(conv, user, text string, att ...AttachmentRef) {
		t.Helper()
		u := UsageEntry{Time: now, Workspace: strings.Join(strings.SplitN(conv, "/", 3)[:2], "/"), Channel: "C1", User: user, Model: "m", Counter: Counter{Replies: 1, Cost: 0.5}}
		if err := s.CommitTurn(ctx, conv, 0, &u,
			Record{Role: "user", Author: user, Text: text, Time: now, Attachments: att},
			Record{Role: "assistant", Text: "re: " + text, Time: now, Status: StatusOK}); err != nil {
			t.Fatal(err)
		}
	}
	turn("slack/T1/C1/t1", "U1", "one", AttachmentRef{Name: "p.png", MIMEType: "image/png", Size: 9, Ref: ref})
	turn("slack/T1/C1/t1", "U2", "two")
	turn("slack/T1/C2/t2", "U1", "three")
	turn("slack/T9/C1/t3", "U1", "elsewhere")

	ex, err := s.ExportUser(ctx, "slack/T1", "U1")
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, m := range ex.Messages {
		texts = append(texts, m.Conversation+":"+m.Role+":"+m.Text)
	}
	want := []string{"slack/T1/C1/t1:user:one", "slack/T1/C1/t1:assistant:re: one", "slack/T1/C2/t2:user:three", "slack/T1/C2/t2:assistant:re: three"}
	if !slices.Equal(texts, want) {
		t.Fatalf("export messages = %q, want %q", texts, want)
	}
	if a := ex.Messages[0].Attachments; len(a) != 1 || a[0].Ref != ref || a[0].Name != "p.png" {
		t.Fatalf("attachments = %+v", a)
	}
	if len(ex.Usage) != 2 || ex.Usage[0].Cost != 1 || ex.Usage[0].Workspace != "slack/T1" {
		t.Fatalf("usage = %+v", ex.Usage)
	}
	if _, err := json.Marshal(ex); err != nil {
		t.Fatal(err)
	}
	all, _ := s.ExportUser(ctx, "", "U1")
	if len(all.Messages) != 6 || len(all.Usage) != 4 {
		t.Fatalf("export across workspaces: %d messages, %d counters", len(all.Messages), len(all.Usage))
	}

	if n, err := s.ForgetUser(ctx, "slack/T1/", "U1"); err != nil || n != 4 {
		t.Fatalf("ForgetUser = %d, %v", n, err)
	}
	if n, err := s.ForgetUsage(ctx, "slack/T1", "U1"); err != nil || n != 2 {
		t.Fatalf("ForgetUsage = %d, %v", n, err)
	}
	after, _ := s.ExportUser(ctx, "slack/T1", "U1")
	if len(after.Messages) != 0 || len(after.Usage) != 0 {
		t.Fatalf("after /forget: %+v", after)
	}
	if _, err := s.Blob(ctx, ref); !errors.Is(err, ErrBlobNotFound) {
		t.Fatalf("the forgotten attachment is still stored: %v", err)
	}
	other, _ := s.ExportUser(ctx, "slack/T1", "U2")
	if len(other.Messages) != 2 || len(other.Usage) != 2 {
		t.Fatalf("U2 lost data: %+v", other)
	}
	elsewhere, _ := s.ExportUser(ctx, "slack/T9", "U1")
	if len(elsewhere.Messages) != 2 {
		t.Fatalf("another workspace lost data: %+v", elsewhere)
	}
}

func TestPruneRetention(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")
	n := 100_000
	if testing.Short() {
		n = 10_000
	}
	now := time.Now()
	s.now = func() time.Time { return now }
	const span = 400 * 24 * time.Hour
	prefill(t, s, n, 500, span, now, func(int) string { return "U1" })
	r := Retention{Default: 90 * 24 * time.Hour, Channels: map[string]time.Duration{"C3": 30 * 24 * time.Hour, "C4": 0}}
	want := 0
	for i := 0; i < n; i++ {
		at := now.Add(-span + time.Duration(i)*(span/time.Duration(n)))
		if w := r.window([]byte(prefillKey(i, 500))); w == 0 || !at.Before(now.Add(-w)) {
			want++
		}
	}
	// An expired attachment goes; one a kept record references stays.
	oldRef, _ := s.PutBlob(ctx, "slack/T1/C1/att", []byte("old"))
	keptRef, _ := s.PutBlob(ctx, "slack/T1/C1/att", []byte("kept"))
	old := now.Add(-200 * 24 * time.Hour)
	if err := s.AppendTurn(ctx, "slack/T1/C1/att", 0,
		Record{Role: "user", Time: old, Attachments: []AttachmentRef{{Ref: oldRef}, {Ref: keptRef}}}); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendTurn(ctx, "slack/T1/C1/att", 0, Record{Role: "user", Time: now, Attachments: []AttachmentRef{{Ref: keptRef}}}); err != nil {
		t.Fatal(err)
	}
	want++
	// A reset conversation: its old generation goes whatever its age.
	if err := s.AppendTurn(ctx, "slack/T1/C4/reset", 0, Record{Role: "user", Time: now}); err != nil {
		t.Fatal(err)
	}
	if err := s.ResetConversation(ctx, "slack/T1/C4/reset"); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendTurn(ctx, "slack/T1/C4/reset", 1, Record{Role: "user", Time: now, Text: "new"}); err != nil {
		t.Fatal(err)
	}
	want++

	start := time.Now()
	st, err := s.Prune(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("prune of %d records: %+v in %v", n, st, time.Since(start))
	if got := countRecords(t, s); got != want {
		t.Fatalf("%d records left, want %d", got, want)
	}
	if st.OldGenerations != 1 {
		t.Fatalf("old generation records deleted = %d", st.OldGenerations)
	}
	if st.Transactions < st.Expired/chunkRecords {
		t.Fatalf("%d deletions in %d transactions", st.Expired, st.Transactions)
	}
	if _, err := s.Blob(ctx, oldRef); !errors.Is(err, ErrBlobNotFound) {
		t.Fatalf("expired attachment: %v", err)
	}
	if _, err := s.Blob(ctx, keptRef); err != nil {
		t.Fatalf("kept attachment: %v", err)
	}
	if _, recs, _ := s.History(ctx, "slack/T1/C4/reset", 10); len(recs) != 1 || recs[0].Text != "new" {
		t.Fatalf("reset conversation: %+v", recs)
	}
	// A second pass finds nothing more.
	if st, err := s.Prune(ctx, r); err != nil || st.Expired+st.OldGenerations != 0 {
		t.Fatalf("second pass: %+v, %v", st, err)
	}
}

// forgetUnderLoad prefills n records of U1 (and as many of U2), then runs
// ForgetUser for U1 while a writer commits turns, and returns the writer's
// commit latencies during it.
func forgetUnderLoad(t testing.TB, s *Store, n int) (lat []time.Duration, forgot int, took time.Duration) {
	ctx := context.Background()
	prefill(t, s, 2*n, 200, 24*time.Hour, time.Now(), func(i int) string { return fmt.Sprint("U", 1+i%2) })
	var (
		stop = make(chan struct{})
		wg   sync.WaitGroup
		mu   sync.Mutex
	)
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			t0 := time.Now()
			if err := s.AppendTurn(ctx, "slack/T1/C1/live", 0, Record{Role: "user", Author: "U3", Text: fmt.Sprint(i)}); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			lat = append(lat, time.Since(t0))
			mu.Unlock()
		}
	})
	t0 := time.Now()
	forgot, err := s.ForgetUser(ctx, "slack/T1/", "U1")
	took = time.Since(t0)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	return lat, forgot, took
}

func percentile(lat []time.Duration, p float64) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	s := slices.Clone(lat)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

func TestForgetChunkedUnderLoad(t *testing.T) {
	s := openTest(t, "")
	n := 20_000
	lat, forgot, took := forgetUnderLoad(t, s, n)
	if forgot != n {
		t.Fatalf("forgot %d records, want %d", forgot, n)
	}
	if got := countRecords(t, s); got != n+len(lat) {
		t.Fatalf("%d records left, want %d (U2's) + %d (committed meanwhile)", got, n, len(lat))
	}
	t.Logf("forget %d of %d records in %v; %d concurrent commits, p50 %v, p99 %v, max %v",
		n, 2*n, took, len(lat), percentile(lat, 0.5), percentile(lat, 0.99), percentile(lat, 1))
}

// BenchmarkForgetUnderLoad reports the commit latency of turns while
// /forget deletes 100k records (run with -benchtime=1x).
func BenchmarkForgetUnderLoad(b *testing.B) {
	for range b.N {
		s := openBench(b, filepath.Join(b.TempDir(), "forget.db"), false)
		lat, forgot, took := forgetUnderLoad(b, s, 100_000)
		b.ReportMetric(float64(percentile(lat, 0.99).Microseconds())/1000, "p99-commit-ms")
		b.ReportMetric(float64(percentile(lat, 1).Microseconds())/1000, "max-commit-ms")
		b.ReportMetric(float64(len(lat)), "commits")
		b.ReportMetric(took.Seconds(), "forget-s")
		b.ReportMetric(float64(forgot), "forgotten")
		_ = s.Close()
	}
}

// BenchmarkPrune100k is one janitor pass over 100k records spread over
// 400 days with a 90-day window (run with -benchtime=1x).
func BenchmarkPrune100k(b *testing.B) {
	for range b.N {
		b.StopTimer()
		s := openBench(b, filepath.Join(b.TempDir(), "prune.db"), false)
		now := time.Now()
		prefill(b, s, 100_000, 500, 400*24*time.Hour, now, func(int) string { return "U1" })
		b.StartTimer()
		st, err := s.Prune(context.Background(), Retention{Default: 90 * 24 * time.Hour})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(st.Transactions), "txs")
		_ = s.Close()
	}
}

func TestCompactShrinks(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "c.db")
	s := openTest(t, path)
	now := time.Now()
	s.now = func() time.Time { return now }
	prefill(t, s, 20_000, 50, 400*24*time.Hour, now, func(int) string { return "U1" })
	if _, err := Compact(path); !errors.Is(err, ErrLocked) {
		t.Fatalf("Compact of an open store = %v, want ErrLocked", err)
	}
	if _, err := s.Prune(ctx, Retention{Default: 10 * 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	left := countRecords(t, s)
	_ = s.Close()
	res, err := Compact(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("compact: %d -> %d bytes", res.Before, res.After)
	if res.After >= res.Before/2 {
		t.Fatalf("compact: %d -> %d bytes", res.Before, res.After)
	}
	s2 := openTest(t, path)
	if got := countRecords(t, s2); got != left {
		t.Fatalf("%d records after compaction, want %d", got, left)
	}
}
