package bot

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cometbot/cometbot/llm"
	"github.com/cometbot/cometbot/storage"
)

// failingStore is a real store whose turn writes (and probes) fail on demand.
type failingStore struct {
	*storage.Store
	fail atomic.Bool
}

var errDiskFull = errors.New("write /data/cometbot.db: no space left on device")

func (f *failingStore) BeginTurn(ctx context.Context, p storage.PendingTurn) error {
	if f.fail.Load() {
		return errDiskFull
	}
	return f.Store.BeginTurn(ctx, p)
}

func (f *failingStore) EndTurn(ctx context.Context, p storage.PendingTurn, gen uint64, u *storage.UsageEntry, recs ...storage.Record) error {
	if f.fail.Load() {
		return errDiskFull
	}
	return f.Store.EndTurn(ctx, p, gen, u, recs...)
}

func (f *failingStore) Probe(ctx context.Context) error {
	if f.fail.Load() {
		return errDiskFull
	}
	return f.Store.Probe(ctx)
}

// storeFaultSteps drives an engine through a store failure and its end:
// StoreError reports it, replies say their turn may not be remembered,
// budgeted turns are refused while the store fails, and a later successful
// write clears it all. A turn is stored after its reply is delivered, so
// the first reply learns of the failure only when the write of its accepted
// message already failed (firstNoted: it must say so); the following ones
// always do.
func storeFaultSteps(t *testing.T, h *harness, breakStore, fixStore func(), firstNoted bool) {
	t.Helper()
	ctx := context.Background()
	const admin, user = "UADMIN", "U1" // the admin is exempt from budgets
	say := func(u, text, thread string) (string, string) {
		return h.say(t, chanMsg(u, text, thread))
	}
	if final, _ := say(user, "before", "T0"); final == "" || strings.Contains(final, saveFailedNote) {
		t.Fatalf("healthy store: reply %q", final)
	}
	breakStore()
	final, failed := say(admin, "while full", "T1")
	if final == "" || failed != "" || firstNoted && !strings.HasSuffix(final, "\n\n"+saveFailedNote) {
		t.Fatalf("first unsaved turn: final %q failed %q; want the answer (with the note: %v)", final, failed, firstNoted)
	}
	if err := h.e.StoreError(ctx); err == nil || !strings.Contains(err.Error(), "store failing") {
		t.Fatalf("StoreError while failing = %v", err)
	}
	if final, _ := say(admin, "still full", "T2"); !strings.HasSuffix(final, "\n\n"+saveFailedNote) {
		t.Fatalf("a turn while the store is known to fail: %q; want the note", final)
	}
	calls := len(h.model.requests())
	if _, failed := say(user, "budgeted while full", "T3"); failed != refuseStoreFailing {
		t.Fatalf("budgeted turn while the store fails: %q", failed)
	}
	if len(h.model.requests()) != calls {
		t.Fatal("the model was called for a budgeted turn whose usage can't be recorded")
	}
	fixStore()
	final, failed = say(user, "budgeted after", "T4")
	if final == "" || strings.Contains(final, saveFailedNote) {
		t.Fatalf("after the store recovered: final %q failed %q", final, failed)
	}
	if err := h.e.StoreError(ctx); err != nil {
		t.Fatalf("StoreError after recovery = %v", err)
	}
}

func faultHarness(t *testing.T, st Store, path string) *harness {
	t.Helper()
	h := &harness{model: &fakeModel{}, path: path}
	e, err := New(Options{Store: st, Model: h.model, Catalog: testCatalog, Defaults: Defaults{Model: "gpt-4o-mini"},
		Logger: slog.New(slog.DiscardHandler),
		Policy: Policy{Admins: []string{"UADMIN"}, Budgets: Budgets{User: Limit{Daily: 5}, AdminsExempt: true}}})
	if err != nil {
		t.Fatal(err)
	}
	e.health.probeEvery = -1 // probe at every check: no waiting in tests
	h.e = e
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = e.Shutdown(ctx)
	})
	return h
}

func TestStoreFaultsAreVisible(t *testing.T) {
	st, err := storage.Open(filepath.Join(t.TempDir(), "bot.db"), storage.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	fs := &failingStore{Store: st}
	h := faultHarness(t, fs, "")
	h.store = st
	storeFaultSteps(t, h, func() { fs.fail.Store(true) }, func() { fs.fail.Store(false) }, true)
}

// TestStoreFaultsOnAFullDisk runs the same steps on a real full file system:
// a 2 MiB tmpfs filled up by another file.
func TestStoreFaultsOnAFullDisk(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=2m"); err != nil {
		t.Skipf("cannot mount a tmpfs to fill up (needs root): %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	path := filepath.Join(dir, "bot.db")
	st, err := storage.Open(path, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h := faultHarness(t, st, path)
	h.store = st
	filler := filepath.Join(dir, "filler")
	fill := func() {
		f, err := os.Create(filler)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		chunk := make([]byte, 64<<10)
		for {
			if _, err := f.Write(chunk); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatalf("filling the disk: %v", err)
				}
				break
			}
		}
		// Fill the last bytes too.
		for _, err := f.Write(chunk[:1]); err == nil; _, err = f.Write(chunk[:1]) {
		}
	}
	// A small accepted-message write may still fit in the file's free
	// pages; whether the first reply knows is up to the disk.
	storeFaultSteps(t, h, fill, func() {
		if err := os.Remove(filler); err != nil {
			t.Fatal(err)
		}
	}, false)
}

// TestShutdownWaitsAtMostInterruptWait: a turn that ignores cancellation
// holds Shutdown no longer than Options.InterruptWait after ctx ends.
func TestShutdownWaitsAtMostInterruptWait(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	h := newHarness(t, func(o *Options) { o.InterruptWait = 200 * time.Millisecond })
	started := make(chan struct{})
	h.model.answer = func(ctx context.Context, req llm.Request) (string, error) {
		close(started)
		<-release // deaf to ctx
		return "late", nil
	}
	if err := h.e.HandleMessage(context.Background(), dm("hang", "1"), newOut()); err != nil {
		t.Fatal(err)
	}
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	begin := time.Now()
	err := h.e.Shutdown(ctx)
	if took := time.Since(begin); err == nil || took > 5*time.Second {
		t.Fatalf("Shutdown = %v after %s; want an error within about 300ms", err, took)
	}
}
