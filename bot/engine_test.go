package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cometbot/cometbot/llm"
	"github.com/cometbot/cometbot/storage"
)

// fakeModel answers from a function, optionally blocking per call.
type fakeModel struct {
	mu     sync.Mutex
	calls  []llm.Request
	answer func(ctx context.Context, req llm.Request) (string, error)
}

func (f *fakeModel) Stream(ctx context.Context, req llm.Request, onDelta func(llm.Delta) error) (*llm.Response, error) {
	f.mu.Lock()
	f.calls = append(f.calls, req)
	f.mu.Unlock()
	text := "answer: " + req.Messages[len(req.Messages)-1].Content
	if f.answer != nil {
		var err error
		if text, err = f.answer(ctx, req); err != nil {
			return nil, err
		}
	}
	for _, w := range strings.SplitAfter(text, " ") {
		if err := onDelta(llm.Delta{Text: w}); err != nil {
			return nil, err
		}
	}
	return &llm.Response{Text: text, Usage: llm.Usage{InputTokens: 1000, OutputTokens: 500}}, nil
}

func (f *fakeModel) requests() []llm.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]llm.Request(nil), f.calls...)
}

// recOut records what the engine sent to one reply.
type recOut struct {
	mu       sync.Mutex
	started  bool
	deltas   []string
	final    string
	failed   string
	done     chan struct{}
	doneOnce sync.Once
}

func newOut() *recOut { return &recOut{done: make(chan struct{})} }

func (o *recOut) Start(context.Context) (Reply, error) {
	o.mu.Lock()
	o.started = true
	o.mu.Unlock()
	return o, nil
}
func (o *recOut) Append(_ context.Context, d string) error {
	o.mu.Lock()
	o.deltas = append(o.deltas, d)
	o.mu.Unlock()
	return nil
}
func (o *recOut) Finish(_ context.Context, s string) error {
	o.mu.Lock()
	o.final = s
	o.mu.Unlock()
	o.doneOnce.Do(func() { close(o.done) })
	return nil
}
func (o *recOut) Fail(_ context.Context, s string) error {
	o.mu.Lock()
	o.failed = s
	o.mu.Unlock()
	o.doneOnce.Do(func() { close(o.done) })
	return nil
}

func (o *recOut) wait(t *testing.T) (final, failed string) {
	t.Helper()
	select {
	case <-o.done:
	case <-time.After(10 * time.Second):
		t.Fatal("reply never finished")
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.final, o.failed
}

type fakeCatalog map[string]llm.ModelInfo

func (c fakeCatalog) Loaded() bool { return len(c) > 0 }

func (c fakeCatalog) Lookup(id string) (llm.ModelInfo, bool) {
	m, ok := c[strings.ToLower(id)]
	return m, ok
}
func (c fakeCatalog) Search(q string, limit int) []llm.ModelInfo {
	var out []llm.ModelInfo
	for _, k := range slices.Sorted(maps.Keys(c)) {
		if c[k].IsText() && strings.Contains(k, strings.ToLower(q)) && (limit <= 0 || len(out) < limit) {
			out = append(out, c[k])
		}
	}
	return out
}

func (c fakeCatalog) Suggest(id string, n int) []string {
	var out []string
	for _, m := range c.Search(id[:min(3, len(id))], n) {
		out = append(out, m.ID)
	}
	return out
}

var testCatalog = fakeCatalog{
	"gpt-4o-mini":       {ID: "gpt-4o-mini", Provider: "OpenAI", Type: "text", Pricing: llm.Pricing{Input: 0.15, Output: 0.6}},
	"gpt-4o":            {ID: "gpt-4o", Provider: "OpenAI", Type: "text", Pricing: llm.Pricing{Input: 2.5, Output: 10}},
	"claude-sonnet-4-5": {ID: "claude-sonnet-4-5", Provider: "Anthropic", Type: "text", Pricing: llm.Pricing{Input: 3, Output: 15}},
	"dall-e-3":          {ID: "dall-e-3", Provider: "OpenAI", Type: "image"},
}

type harness struct {
	e     *Engine
	store *storage.Store
	model *fakeModel
	path  string
}

func newHarness(t *testing.T, mod func(*Options)) *harness {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bot.db")
	st, err := storage.Open(path, storage.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{store: st, model: &fakeModel{}, path: path}
	opts := Options{Store: st, Model: h.model, Catalog: testCatalog, Defaults: Defaults{Model: "gpt-4o-mini"}, Logger: slog.New(slog.DiscardHandler)}
	if mod != nil {
		mod(&opts)
	}
	h.e, err = New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = h.e.Shutdown(ctx)
		_ = st.Close()
	})
	return h
}

func dm(text, id string) Message {
	return Message{Platform: "test", Workspace: "W1", Channel: "D1", DM: true, ID: id, EventID: "ev-" + id, Author: User{ID: "U1", Name: "Ann"}, Text: text}
}

func (h *harness) say(t *testing.T, m Message) (string, string) {
	t.Helper()
	out := newOut()
	if err := h.e.HandleMessage(context.Background(), m, out); err != nil {
		t.Fatalf("HandleMessage: %v", err)
	}
	final, failed := out.wait(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.e.quiesceConversation(ctx, m.Scope().ConversationKey()); err != nil {
		t.Fatalf("turn not stored: %v", err)
	}
	return final, failed
}

func TestTurnCarriesHistory(t *testing.T) {
	h := newHarness(t, nil)
	if final, failed := h.say(t, dm("hello", "1")); final != "answer: hello" || failed != "" {
		t.Fatalf("final=%q failed=%q", final, failed)
	}
	h.say(t, dm("again", "2"))
	reqs := h.model.requests()
	last := reqs[len(reqs)-1]
	if len(last.Messages) != 3 || last.Messages[0].Content != "hello" || last.Messages[1].Content != "answer: hello" || last.Model != "gpt-4o-mini" {
		t.Fatalf("second request = %+v", last)
	}
}

func TestIgnoreRules(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	chanMsg := Message{Platform: "test", Workspace: "W1", Channel: "C1", ID: "1", Author: User{ID: "U1"}, Text: "hi"}
	tests := []struct {
		name string
		mod  func(m *Message)
		want error
	}{
		{"own message", func(m *Message) { m.Author.IsSelf = true; m.DM = true }, ErrIgnored},
		{"other bot", func(m *Message) { m.Author.IsBot = true; m.Mentioned = true }, ErrIgnored},
		{"channel without mention", func(m *Message) {}, ErrIgnored},
		{"unknown thread without mention", func(m *Message) { m.Thread = "t9" }, ErrIgnored},
		{"empty text", func(m *Message) { m.Text = ""; m.DM = true }, ErrIgnored},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := chanMsg
			tt.mod(&m)
			if err := h.e.HandleMessage(ctx, m, newOut()); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestThreadFollowUpWithoutMention(t *testing.T) {
	for _, required := range []bool{false, true} {
		t.Run(fmt.Sprint("mention_required=", required), func(t *testing.T) {
			h := newHarness(t, func(o *Options) { o.MentionRequiredInThreads = required })
			m := Message{Platform: "test", Workspace: "W1", Channel: "C1", Thread: "100.1", ID: "100.1", Author: User{ID: "U1"}, Text: "hi", Mentioned: true}
			h.say(t, m)
			f := m
			f.ID, f.Mentioned, f.Text = "100.2", false, "follow"
			err := h.e.HandleMessage(context.Background(), f, newOut())
			if required && !errors.Is(err, ErrIgnored) || !required && err != nil {
				t.Fatalf("follow-up err = %v", err)
			}
		})
	}
}

func TestDuplicateEventAcrossRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bot.db")
	run := func(id string) error {
		st, err := storage.Open(path, storage.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		e, err := New(Options{Store: st, Model: &fakeModel{}, Defaults: Defaults{Model: "m"}})
		if err != nil {
			t.Fatal(err)
		}
		out := newOut()
		err = e.HandleMessage(context.Background(), dm("hi", id), out)
		if err == nil {
			out.wait(t)
		}
		_ = e.Shutdown(context.Background())
		return err
	}
	if err := run("1"); err != nil {
		t.Fatal(err)
	}
	if err := run("1"); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("redelivered event after restart: err = %v, want ErrDuplicate", err)
	}
}

// TestOrderingAndParallelism: turns of one conversation run in order while a
// slow turn in one conversation does not hold up another.
func TestOrderingAndParallelism(t *testing.T) {
	release := make(chan struct{})
	h := newHarness(t, nil)
	var mu sync.Mutex
	var order []string
	h.model.answer = func(ctx context.Context, req llm.Request) (string, error) {
		last := req.Messages[len(req.Messages)-1].Content
		if last == "slow-1" {
			<-release
		}
		mu.Lock()
		order = append(order, last)
		mu.Unlock()
		return "ok " + last, nil
	}
	slowConv := func(text, id string) Message {
		m := dm(text, id)
		m.Author.ID, m.Channel = "U-slow", "D-slow"
		return m
	}
	outs := []*recOut{newOut(), newOut(), newOut()}
	ctx := context.Background()
	for i, text := range []string{"slow-1", "slow-2", "slow-3"} {
		if err := h.e.HandleMessage(ctx, slowConv(text, fmt.Sprint("s", i)), outs[i]); err != nil {
			t.Fatal(err)
		}
	}
	// Another conversation completes while slow-1 is blocked.
	if final, _ := h.say(t, dm("fast", "f1")); final != "ok fast" {
		t.Fatalf("fast conversation: %q", final)
	}
	close(release)
	for _, o := range outs {
		o.wait(t)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"fast", "slow-1", "slow-2", "slow-3"}
	if fmt.Sprint(order) != fmt.Sprint(want) {
		t.Fatalf("order = %v, want %v", order, want)
	}
	// Each slow turn saw the previous one's history.
	reqs := h.model.requests()
	if n := len(reqs[len(reqs)-1].Messages); n != 5 {
		t.Errorf("slow-3 request carried %d messages, want 5", n)
	}
}

func TestConcurrencyBound(t *testing.T) {
	var mu sync.Mutex
	cur, peak := 0, 0
	h := newHarness(t, func(o *Options) { o.MaxConcurrent = 3 })
	h.model.answer = func(ctx context.Context, req llm.Request) (string, error) {
		mu.Lock()
		cur++
		peak = max(peak, cur)
		mu.Unlock()
		time.Sleep(20 * time.Millisecond)
		mu.Lock()
		cur--
		mu.Unlock()
		return "ok", nil
	}
	var outs []*recOut
	for i := range 12 {
		m := dm("x", fmt.Sprint(i))
		m.Author.ID, m.Channel = fmt.Sprint("U", i), fmt.Sprint("D", i)
		o := newOut()
		outs = append(outs, o)
		if err := h.e.HandleMessage(context.Background(), m, o); err != nil {
			t.Fatal(err)
		}
	}
	for _, o := range outs {
		o.wait(t)
	}
	if peak > 3 {
		t.Fatalf("peak concurrent model calls = %d, want <= 3", peak)
	}
}

func TestShutdownFinalizesInFlight(t *testing.T) {
	h := newHarness(t, nil)
	started := make(chan struct{})
	h.model.answer = func(ctx context.Context, req llm.Request) (string, error) {
		close(started)
		<-ctx.Done()
		return "", ctx.Err()
	}
	out := newOut()
	if err := h.e.HandleMessage(context.Background(), dm("hang", "1"), out); err != nil {
		t.Fatal(err)
	}
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := h.e.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if _, failed := out.wait(t); !strings.Contains(failed, "Interrupted") {
		t.Fatalf("in-flight reply failed with %q, want the interrupted notice", failed)
	}
	if err := h.e.HandleMessage(context.Background(), dm("late", "2"), newOut()); !errors.Is(err, ErrShuttingDown) {
		t.Fatalf("after shutdown: %v", err)
	}
	_, recs, _ := h.store.History(context.Background(), dm("", "").Scope().ConversationKey(), 10)
	if len(recs) != 2 || recs[1].Status != storage.StatusCancelled {
		t.Fatalf("stored turn = %+v, want user+assistant marked cancelled", recs)
	}
}

func TestFailedTurnRecordedAndSkipped(t *testing.T) {
	h := newHarness(t, nil)
	h.model.answer = func(ctx context.Context, req llm.Request) (string, error) {
		if req.Messages[len(req.Messages)-1].Content == "boom" {
			return "", &llm.Error{Kind: llm.KindServer, Status: 500}
		}
		return "fine", nil
	}
	if _, failed := h.say(t, dm("boom", "1")); failed == "" || strings.Contains(failed, "500") {
		t.Fatalf("failure message = %q", failed)
	}
	h.say(t, dm("next", "2"))
	reqs := h.model.requests()
	if n := len(reqs[1].Messages); n != 1 {
		t.Fatalf("failed turn leaked into history: %d messages", n)
	}
}

func TestTrimToBudget(t *testing.T) {
	long := strings.Repeat("x", 4000) // ~1000 tokens
	msgs := []llm.Message{{Role: llm.RoleUser, Content: long}, {Role: llm.RoleAssistant, Content: long}, {Role: llm.RoleUser, Content: long}, {Role: llm.RoleAssistant, Content: long}, {Role: llm.RoleUser, Content: "new"}}
	tests := []struct {
		budget, want int
	}{{100000, 5}, {1100, 1}, {2100, 3}, {3100, 3}, {10, 1}}
	for _, tt := range tests {
		got := TrimToBudget("sys", msgs, tt.budget)
		if len(got) != tt.want || got[len(got)-1].Content != "new" || got[0].Role != llm.RoleUser {
			t.Errorf("budget %d: kept %d (first role %s), want %d", tt.budget, len(got), got[0].Role, tt.want)
		}
	}
}

func TestEstimateTokens(t *testing.T) {
	tests := []struct {
		text string
		want int
	}{{"", 0}, {"abcd", 1}, {"hello world!", 3}, {"日本語のテキスト", 8}, {"héllo", 2}}
	for _, tt := range tests {
		if got := EstimateTokens(tt.text); got != tt.want {
			t.Errorf("EstimateTokens(%q) = %d, want %d", tt.text, got, tt.want)
		}
	}
}

// slowOut's Finish and Fail fail when their context has already expired.
type ctxCheckOut struct{ *recOut }

func (o ctxCheckOut) Start(ctx context.Context) (Reply, error) { return o, nil }
func (o ctxCheckOut) Finish(ctx context.Context, s string) error {
	if err := ctx.Err(); err != nil {
		return o.recOut.Fail(ctx, "context expired before Finish")
	}
	return o.recOut.Finish(ctx, s)
}

func TestSlowReplyStillDeliveredAndStored(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.DeliveryTimeout = 50 * time.Millisecond })
	h.model.answer = func(ctx context.Context, req llm.Request) (string, error) {
		time.Sleep(150 * time.Millisecond) // longer than the delivery timeout
		return "late but whole", nil
	}
	out := ctxCheckOut{newOut()}
	if err := h.e.HandleMessage(context.Background(), dm("slow", "1"), out); err != nil {
		t.Fatal(err)
	}
	if final, failed := out.wait(t); final != "late but whole" {
		t.Fatalf("final=%q failed=%q", final, failed)
	}
	if err := h.e.quiesceConversation(context.Background(), dm("", "").Scope().ConversationKey()); err != nil {
		t.Fatal(err)
	}
	if _, recs, _ := h.store.History(context.Background(), dm("", "").Scope().ConversationKey(), 10); len(recs) != 2 || recs[1].Status != storage.StatusOK {
		t.Fatalf("slow turn not stored: %+v", recs)
	}
}

func TestShutdownTellsQueuedTurns(t *testing.T) {
	h := newHarness(t, nil)
	started := make(chan struct{})
	h.model.answer = func(ctx context.Context, req llm.Request) (string, error) {
		close(started)
		<-ctx.Done()
		return "", ctx.Err()
	}
	first, queued := newOut(), newOut()
	if err := h.e.HandleMessage(context.Background(), dm("one", "1"), first); err != nil {
		t.Fatal(err)
	}
	<-started
	if err := h.e.HandleMessage(context.Background(), dm("two", "2"), queued); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_ = h.e.Shutdown(ctx)
	for i, o := range []*recOut{first, queued} {
		if _, failed := o.wait(t); failed != interruptedMessage {
			t.Errorf("turn %d got %q, want the interrupted notice", i+1, failed)
		}
	}
}
