package storage

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func openTest(t testing.TB, path string) *Store {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "test.db")
	}
	s, err := Open(path, Options{Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestReopenPersists(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sub", "dir", "c.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AppendTurn(ctx, "conv", 0, Record{Role: "user", Text: "hi"}, Record{Role: "assistant", Text: "hello", Status: StatusOK}); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateSettings(ctx, "slack/T1/C1", func(st *Settings) { st.Model = "gpt-4o" }); err != nil {
		t.Fatal(err)
	}
	if first, err := s.MarkSeen(ctx, "ev1", time.Hour); err != nil || !first {
		t.Fatalf("MarkSeen = %v, %v", first, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, path)
	_, recs, err := s.History(ctx, "conv", 10)
	if err != nil || len(recs) != 2 || recs[0].Text != "hi" || recs[1].Text != "hello" {
		t.Fatalf("History after reopen = %+v, %v", recs, err)
	}
	st, ok, err := s.Settings(ctx, "slack/T1/C1")
	if err != nil || !ok || st.Model != "gpt-4o" {
		t.Fatalf("Settings after reopen = %+v %v %v", st, ok, err)
	}
	if first, _ := s.MarkSeen(ctx, "ev1", time.Hour); first {
		t.Fatal("event id seen before the restart was not remembered")
	}
}

func TestSchemaGuard(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := s.SchemaVersionOf(); v != SchemaVersion {
		t.Fatalf("schema = %d", v)
	}
	if err := s.setSchemaVersion(SchemaVersion + 1); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	_, err = Open(path, Options{})
	if !errors.Is(err, ErrNewerSchema) {
		t.Fatalf("Open newer schema: err = %v, want ErrNewerSchema", err)
	}
	if !strings.Contains(err.Error(), "upgrade cometbot") {
		t.Errorf("error should say what to do: %v", err)
	}
}

func TestLockedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.db")
	openTest(t, path)
	_, err := Open(path, Options{Timeout: 50 * time.Millisecond})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "COMETBOT_DB") {
		t.Fatalf("second Open: %v, want ErrLocked naming COMETBOT_DB", err)
	}
}

func TestHistoryLastN(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")
	for i := range 30 {
		if err := s.AppendTurn(ctx, "c", 0, Record{Role: "user", Text: fmt.Sprint("u", i)}, Record{Role: "assistant", Text: fmt.Sprint("a", i)}); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		limit     int
		wantLen   int
		wantFirst string
	}{{0, 0, ""}, {1, 1, "a29"}, {4, 4, "u28"}, {60, 60, "u0"}, {100, 60, "u0"}}
	for _, tt := range tests {
		_, recs, err := s.History(ctx, "c", tt.limit)
		if err != nil || len(recs) != tt.wantLen {
			t.Fatalf("History(%d) = %d records, %v", tt.limit, len(recs), err)
		}
		if tt.wantLen > 0 && (recs[0].Text != tt.wantFirst || recs[len(recs)-1].Text != "a29") {
			t.Errorf("History(%d) first=%q last=%q", tt.limit, recs[0].Text, recs[len(recs)-1].Text)
		}
	}
	if _, recs, _ := s.History(ctx, "missing", 10); len(recs) != 0 {
		t.Errorf("missing conversation has %d records", len(recs))
	}
}

func TestResetConversation(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")
	_ = s.AppendTurn(ctx, "c", 0, Record{Role: "user", Text: "old"})
	if ok, _ := s.ConversationExists(ctx, "c"); !ok {
		t.Fatal("conversation should exist")
	}
	if err := s.ResetConversation(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	gen, recs, _ := s.History(ctx, "c", 10)
	if gen != 1 || len(recs) != 0 {
		t.Fatalf("after reset gen=%d records=%d", gen, len(recs))
	}
	if ok, _ := s.ConversationExists(ctx, "c"); !ok {
		t.Fatal("a reset conversation is still the bot's")
	}
	// A turn that started before the reset lands in the old generation.
	_ = s.AppendTurn(ctx, "c", 0, Record{Role: "user", Text: "late"})
	_ = s.AppendTurn(ctx, "c", gen, Record{Role: "user", Text: "new"})
	if _, recs, _ := s.History(ctx, "c", 10); len(recs) != 1 || recs[0].Text != "new" {
		t.Fatalf("history = %+v", recs)
	}
}

func TestMarkSeenExpiryAndPrune(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")
	now := time.Unix(1_700_000_000, 0)
	s.now = func() time.Time { return now }
	for _, id := range []string{"a", "b", "c"} {
		if first, err := s.MarkSeen(ctx, id, time.Minute); err != nil || !first {
			t.Fatalf("MarkSeen(%s) = %v %v", id, first, err)
		}
	}
	if first, _ := s.MarkSeen(ctx, "a", time.Minute); first {
		t.Fatal("duplicate not detected")
	}
	now = now.Add(2 * time.Minute)
	if first, _ := s.MarkSeen(ctx, "a", time.Minute); !first {
		t.Fatal("expired id should count as new")
	}
	n, err := s.PruneSeen(ctx, 0)
	if err != nil || n != 2 { // b and c expired
		t.Fatalf("PruneSeen = %d, %v; want 2 (b, c)", n, err)
	}
	if first, _ := s.MarkSeen(ctx, "a", time.Minute); first {
		t.Fatal("prune removed a live id")
	}
}

func TestMarkSeenConcurrent(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")
	var wg sync.WaitGroup
	var mu sync.Mutex
	firsts := 0
	for range 20 {
		wg.Go(func() {
			if first, err := s.MarkSeen(ctx, "same", time.Hour); err == nil && first {
				mu.Lock()
				firsts++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if firsts != 1 {
		t.Fatalf("%d callers saw the same id first, want 1", firsts)
	}
}

func TestUsageCounters(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")
	day := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	add := func(user, model string, cost float64, at time.Time) {
		t.Helper()
		if err := s.AddUsage(ctx, UsageEntry{Time: at, Workspace: "slack/T1", Channel: "C1", User: user, Model: model,
			Counter: Counter{Replies: 1, InputTokens: 100, OutputTokens: 50, Cost: cost}}); err != nil {
			t.Fatal(err)
		}
	}
	add("U1", "m1", 0.5, day)
	add("U1", "m2", 0.25, day)
	add("U2", "m1", 1, day)
	add("U1", "m1", 2, day.AddDate(0, 0, 1))
	c, _ := s.Usage(ctx, Day(day), "slack/T1", KindUser, "U1")
	if c.Replies != 2 || c.Cost != 0.75 || c.InputTokens != 200 {
		t.Errorf("U1 today = %+v", c)
	}
	c, _ = s.Usage(ctx, Month(day), "slack/T1", KindAll, "*")
	if c.Replies != 4 || c.Cost != 3.75 {
		t.Errorf("workspace month = %+v", c)
	}
	top, _ := s.TopUsage(ctx, Month(day), "slack/T1", KindUser, 1)
	if len(top) != 1 || top[0].ID != "U1" {
		t.Errorf("top users = %+v", top)
	}
	n, err := s.ForgetUsage(ctx, "slack/T1", "U1")
	if err != nil || n != 3 { // two days + one month
		t.Fatalf("ForgetUsage = %d, %v", n, err)
	}
	if c, _ := s.Usage(ctx, Month(day), "slack/T1", KindUser, "U1"); c.Replies != 0 {
		t.Errorf("U1 usage survived forget: %+v", c)
	}
	if c, _ := s.Usage(ctx, Month(day), "slack/T1", KindUser, "U2"); c.Replies != 1 {
		t.Errorf("U2 usage lost: %+v", c)
	}
}

func TestForgetUser(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")
	_ = s.AppendTurn(ctx, "slack/T1/C1/t1", 0, Record{Role: "user", Author: "U1", Text: "mine"}, Record{Role: "assistant", Text: "reply to mine"})
	_ = s.AppendTurn(ctx, "slack/T1/C1/t1", 0, Record{Role: "user", Author: "U2", Text: "theirs"}, Record{Role: "assistant", Text: "reply to theirs"})
	_ = s.AppendTurn(ctx, "slack/T1/C2/t2", 0, Record{Role: "user", Author: "U1", Text: "other channel"}, Record{Role: "assistant", Text: "x"})
	n, err := s.ForgetUser(ctx, "slack/T1/C1/", "U1")
	if err != nil || n != 2 {
		t.Fatalf("ForgetUser = %d, %v", n, err)
	}
	_, recs, _ := s.History(ctx, "slack/T1/C1/t1", 10)
	if len(recs) != 2 || recs[0].Text != "theirs" {
		t.Fatalf("C1 history = %+v", recs)
	}
	if _, recs, _ := s.History(ctx, "slack/T1/C2/t2", 10); len(recs) != 2 {
		t.Fatalf("C2 history touched: %+v", recs)
	}
}

func TestCatalogCache(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")
	if v, _ := s.LoadCatalog(ctx); v != nil {
		t.Fatalf("empty store has a catalog: %q", v)
	}
	_ = s.SaveCatalog(ctx, []byte(`{"data":[]}`))
	if v, _ := s.LoadCatalog(ctx); string(v) != `{"data":[]}` {
		t.Fatalf("LoadCatalog = %q", v)
	}
}

func TestCancelledContext(t *testing.T) {
	s := openTest(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.AppendTurn(ctx, "c", 0, Record{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("AppendTurn with cancelled ctx: %v", err)
	}
}

func TestCommitTurnWithUsage(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	u := &UsageEntry{Time: at, Workspace: "slack/T1", Channel: "C1", User: "U1", Model: "m", Counter: Counter{Replies: 1, Cost: 0.5}}
	if err := s.CommitTurn(ctx, "k", 0, u, Record{Role: "user", Text: "q"}, Record{Role: "assistant", Text: "a"}); err != nil {
		t.Fatal(err)
	}
	if _, recs, _ := s.History(ctx, "k", 10); len(recs) != 2 {
		t.Fatalf("history = %+v", recs)
	}
	if c, _ := s.Usage(ctx, Day(at), "slack/T1", KindModel, "m"); c.Cost != 0.5 {
		t.Fatalf("usage = %+v", c)
	}
	if first, _ := s.MarkSeen(ctx, "x", time.Hour); !first {
		t.Fatal("MarkSeen")
	}
	if seen, _ := s.Seen(ctx, "x"); !seen {
		t.Fatal("Seen after MarkSeen = false")
	}
	if seen, _ := s.Seen(ctx, "y"); seen {
		t.Fatal("Seen of unknown id = true")
	}
}
