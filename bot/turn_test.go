package bot

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cometbot/cometbot/llm"
	"github.com/cometbot/cometbot/storage"
)

// refOut is a recOut whose reply has a platform reference once started.
type refOut struct {
	*recOut
	ref string
}

func (o *refOut) Start(ctx context.Context) (Reply, error) { _, _ = o.recOut.Start(ctx); return o, nil }
func (o *refOut) OnRef(fn func(string))                    { fn(o.ref) }

// lateRefOut is a reply whose first message is made only by Fail (a
// platform reply that had shown nothing yet).
type lateRefOut struct {
	*recOut
	ref string
	fns []func(string)
}

func (o *lateRefOut) Start(ctx context.Context) (Reply, error) {
	_, _ = o.recOut.Start(ctx)
	return o, nil
}
func (o *lateRefOut) OnRef(fn func(string)) { o.fns = append(o.fns, fn) }
func (o *lateRefOut) Fail(ctx context.Context, msg string) error {
	for _, fn := range o.fns {
		fn(o.ref)
	}
	return o.recOut.Fail(ctx, msg)
}

// fakeResumer records which messages replies were resumed into.
type fakeResumer struct {
	mu   sync.Mutex
	refs []string
	outs []*recOut
}

func (r *fakeResumer) ResumeOutput(m Message, ref string) Output {
	r.mu.Lock()
	defer r.mu.Unlock()
	o := newOut()
	r.refs = append(r.refs, ref)
	r.outs = append(r.outs, o)
	return o
}

func (r *fakeResumer) get() ([]string, []*recOut) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.refs...), append([]*recOut(nil), r.outs...)
}

// waitPending waits until the store lists n pending turns whose references
// are all set, and returns them.
func waitPending(t *testing.T, st *storage.Store, n int) []storage.PendingTurn {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ps, err := st.PendingTurns(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		ok := len(ps) == n
		for _, p := range ps {
			ok = ok && p.Ref != ""
		}
		if ok {
			return ps
		}
		if time.Now().After(deadline) {
			t.Fatalf("pending turns = %+v, want %d with references", ps, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// crash leaves the harness's turns running against a closed store, as if
// the process had died: nothing it does afterwards reaches the file.
func crash(t *testing.T, h *harness) {
	t.Helper()
	if err := h.store.Close(); err != nil {
		t.Fatal(err)
	}
}

// restart opens the database again with a new engine.
func restart(t *testing.T, path string, mod func(*Options)) *harness {
	t.Helper()
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

type llmRequest = llm.Request

func TestCrashedTurnResumesInItsMessage(t *testing.T) {
	tests := []struct {
		name       string
		age        time.Duration
		wantFinal  string
		wantFailed string
		wantStatus string
	}{
		{"young turn is answered again in place", time.Minute, "answer: hello there", "", storage.StatusOK},
		{"old turn is marked interrupted in place", 11 * time.Minute, "", resumeInterrupted, storage.StatusCancelled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newHarness(t, nil)
			hold := make(chan struct{})
			t.Cleanup(func() { close(hold) })
			a.model.answer = func(ctx context.Context, _ llmRequest) (string, error) {
				select {
				case <-hold:
				case <-ctx.Done():
				}
				return "", ctx.Err()
			}
			m := Message{Platform: "test", Workspace: "W1", Channel: "C1", Thread: "T1", Mentioned: true, ID: "1", EventID: "ev-1", Author: User{ID: "U1", Name: "Ann"}, Text: "hello there"}
			if err := a.e.HandleMessage(context.Background(), m, &refOut{recOut: newOut(), ref: "C1/171.000"}); err != nil {
				t.Fatal(err)
			}
			waitPending(t, a.store, 1)
			crash(t, a)

			now := time.Now().Add(tt.age)
			b := restart(t, a.path, func(o *Options) { o.Now = func() time.Time { return now } })
			key := m.Scope().ConversationKey()
			if ok, err := b.store.ConversationExists(context.Background(), key); err != nil || !ok {
				t.Fatalf("the thread was forgotten in the crash: %v %v", ok, err)
			}
			// A follow-up without a mention is still the bot's.
			res := &fakeResumer{}
			resumed, interrupted, err := b.e.ResumePending(context.Background(), "test", res)
			if err != nil || resumed+interrupted != 1 {
				t.Fatalf("ResumePending = %d, %d, %v", resumed, interrupted, err)
			}
			refs, outs := res.get()
			if len(refs) != 1 || refs[0] != "C1/171.000" {
				t.Fatalf("resumed into %v, want the existing message", refs)
			}
			final, failed := outs[0].wait(t)
			if final != tt.wantFinal || failed != tt.wantFailed {
				t.Fatalf("final=%q failed=%q", final, failed)
			}
			if err := b.e.quiesceConversation(context.Background(), key); err != nil {
				t.Fatal(err)
			}
			waitNoPending(t, b.store)
			_, recs, _ := b.store.History(context.Background(), key, 10)
			if len(recs) != 2 || recs[0].Text != "hello there" || recs[0].Status != tt.wantStatus || recs[1].Status != tt.wantStatus {
				t.Fatalf("history = %+v", recs)
			}
			// Resuming again finds nothing.
			if r, i, _ := b.e.ResumePending(context.Background(), "test", res); r+i != 0 {
				t.Fatalf("resumed twice: %d %d", r, i)
			}
		})
	}
}

func waitNoPending(t *testing.T, st *storage.Store) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ps, err := st.PendingTurns(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(ps) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("turns still pending: %+v", ps)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestShutdownLeavesResumableTurnsPending(t *testing.T) {
	a := newHarness(t, nil)
	started := make(chan struct{})
	a.model.answer = func(ctx context.Context, _ llmRequest) (string, error) {
		close(started)
		<-ctx.Done()
		return "", ctx.Err()
	}
	// The running reply has shown nothing yet: its message is made by the
	// notice itself.
	running, queued := &lateRefOut{recOut: newOut(), ref: "m-1"}, &refOut{recOut: newOut(), ref: "m-2"}
	if err := a.e.HandleMessage(context.Background(), dm("one", "1"), running); err != nil {
		t.Fatal(err)
	}
	<-started
	if err := a.e.HandleMessage(context.Background(), dm("two", "2"), queued); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_ = a.e.Shutdown(ctx)
	for i, o := range []*recOut{running.recOut, queued.recOut} {
		if _, failed := o.wait(t); failed != restartingMessage {
			t.Errorf("turn %d got %q, want the restarting notice", i+1, failed)
		}
	}
	ps := waitPending(t, a.store, 2)
	if ps[0].Ref != "m-1" || ps[1].Ref != "m-2" {
		t.Fatalf("pending = %+v", ps)
	}
	_ = a.store.Close()

	b := restart(t, a.path, nil)
	res := &fakeResumer{}
	if n, _, err := b.e.ResumePending(context.Background(), "test", res); err != nil || n != 2 {
		t.Fatalf("resumed %d: %v", n, err)
	}
	refs, outs := res.get()
	for i, o := range outs {
		if final, _ := o.wait(t); !strings.HasPrefix(final, "answer: ") {
			t.Errorf("resumed turn %d: %q", i, final)
		}
	}
	if strings.Join(refs, ",") != "m-1,m-2" {
		t.Fatalf("resumed into %v", refs)
	}
	if err := b.e.quiesceConversation(context.Background(), dm("", "").Scope().ConversationKey()); err != nil {
		t.Fatal(err)
	}
	_, recs, _ := b.store.History(context.Background(), dm("", "").Scope().ConversationKey(), 10)
	if len(recs) != 4 || recs[0].Text != "one" || recs[2].Text != "two" || recs[3].Status != storage.StatusOK {
		t.Fatalf("history = %+v", recs)
	}
}

func TestTerminalPendingTurnsCloseSilently(t *testing.T) {
	a := newHarness(t, nil)
	hold := make(chan struct{})
	t.Cleanup(func() { close(hold) })
	a.model.answer = func(ctx context.Context, _ llmRequest) (string, error) {
		select {
		case <-hold:
		case <-ctx.Done():
		}
		return "", ctx.Err()
	}
	if err := a.e.HandleMessage(context.Background(), dm("hi", "1"), newOut()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		ps, _ := a.store.PendingTurns(context.Background())
		if len(ps) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("turn never became durable")
		}
		time.Sleep(5 * time.Millisecond)
	}
	crash(t, a)
	b := restart(t, a.path, nil)
	if r, i, err := b.e.ResumePending(context.Background(), "test", nil); err != nil || r != 0 || i != 1 {
		t.Fatalf("ResumePending(nil) = %d %d %v", r, i, err)
	}
	waitNoPending(t, b.store)
}
