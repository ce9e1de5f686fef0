package bottest

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cometbot/cometbot/bot"
)

type out struct {
	mu    sync.Mutex
	final string
	fail  string
	done  chan struct{}
}

func (o *out) Start(context.Context) (bot.Reply, error) { return o, nil }
func (o *out) Append(context.Context, string) error     { return nil }
func (o *out) Finish(_ context.Context, s string) error {
	o.mu.Lock()
	o.final = s
	o.mu.Unlock()
	close(o.done)
	return nil
}
func (o *out) Fail(_ context.Context, s string) error {
	o.mu.Lock()
	o.fail = s
	o.mu.Unlock()
	close(o.done)
	return nil
}

func TestHarnessEndToEnd(t *testing.T) {
	h := New(t, Options{})
	h.Gateway.SetReply("Hi from the fake")
	o := &out{done: make(chan struct{})}
	m := bot.Message{Platform: "t", Workspace: "W", Channel: "D", DM: true, Author: bot.User{ID: "U"}, Text: "hello", EventID: "e1"}
	if err := h.Engine.HandleMessage(context.Background(), m, o); err != nil {
		t.Fatal(err)
	}
	select {
	case <-o.done:
	case <-time.After(10 * time.Second):
		t.Fatal("no reply")
	}
	if o.final != "Hi from the fake" || o.fail != "" {
		t.Fatalf("final=%q fail=%q", o.final, o.fail)
	}
	p, ok := h.LastPrompt()
	if !ok || p.Model != DefaultModel || p.LastUser() != "hello" {
		t.Fatalf("prompt = %+v", p)
	}
	a := h.Engine.HandleCommand(context.Background(), bot.Command{Name: "model", Args: "list", Platform: "t", Workspace: "W", Channel: "D", DM: true, User: bot.User{ID: "U"}})
	if !strings.Contains(a.Text, "gpt-4o-mini") {
		t.Fatalf("/model list = %q", a.Text)
	}
}
