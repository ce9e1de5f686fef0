package main

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cometbot/cometbot/bot"
	"github.com/cometbot/cometbot/internal/config"
)

type fakeReconf struct {
	mu  sync.Mutex
	got []bot.Reconfig
}

func (f *fakeReconf) Reconfigure(r bot.Reconfig) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, r)
	return nil
}

// TestReloader: a valid file replaces the engine's policy; a broken one is
// refused with its line number and the old configuration stays in force.
func TestReloader(t *testing.T) {
	p := filepath.Join(t.TempDir(), "cometbot.yaml")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("aliases:\n  fast: gpt-4o-mini\n")
	cfg, err := config.Load(func(k string) string { return map[string]string{"COMETBOT_CONFIG": p}[k] })
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	eng := &fakeReconf{}
	r := newReloader(cfg, eng, slog.New(slog.NewTextHandler(&logs, nil)))
	if r.changed() {
		t.Error("changed before any write")
	}

	write("aliases:\n  fast: gpt-4o\nbudgets:\n  channel:\n    daily: 3\n")
	if !r.changed() {
		t.Fatal("a rewritten file was not noticed")
	}
	if err := r.reload("test"); err != nil {
		t.Fatal(err)
	}
	if len(eng.got) != 1 || eng.got[0].Policy.Aliases["fast"] != "gpt-4o" || eng.got[0].Policy.Budgets.Channel.Daily != 3 {
		t.Fatalf("engine got %+v", eng.got)
	}
	if r.changed() {
		t.Error("changed right after a reload")
	}

	write("aliases:\n  fast: gpt-4o\nbudgets:\n  channel:\n    daily: 3\n    monthly: 1\n")
	err = r.reload("test")
	if err == nil || !strings.Contains(err.Error(), p+":4: budgets.channel") {
		t.Fatalf("broken file: %v", err)
	}
	if len(eng.got) != 1 || r.config().File.Budgets.Channel.Daily != 3 {
		t.Error("a broken file replaced the configuration")
	}
	if !strings.Contains(logs.String(), "previous one stays in force") || !strings.Contains(logs.String(), ":4: budgets.channel") {
		t.Errorf("log = %s", logs.String())
	}
}
