package bot

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cometbot/cometbot/llm"
)

// TestReconfigureUnderLoad: a reload while turns are running changes the
// default model, aliases and budgets for the next turn; the turns in flight
// finish with the model they started with and no reply is lost.
func TestReconfigureUnderLoad(t *testing.T) {
	release := make(chan struct{})
	h := newHarness(t, func(o *Options) {
		o.Policy.Aliases = map[string]string{"fast": "gpt-4o"}
		o.MaxQueue = 100
	})
	h.model.answer = func(ctx context.Context, req llm.Request) (string, error) {
		if strings.HasPrefix(req.Messages[len(req.Messages)-1].Content, "load") {
			select {
			case <-release:
			case <-ctx.Done():
				return "", ctx.Err()
			}
		}
		return "ok from " + req.Model, nil
	}
	const n = 10
	outs := make([]*recOut, n)
	for i := range outs {
		outs[i] = newOut()
		if err := h.e.HandleMessage(context.Background(), chanMsg("U1", fmt.Sprint("load ", i), fmt.Sprint("T", i)), outs[i]); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(h.model.requests()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d turns reached the model", len(h.model.requests()), n)
		}
		time.Sleep(time.Millisecond)
	}

	next := Reconfig{
		Defaults: Defaults{Model: "claude-sonnet-4-5"},
		Policy:   Policy{Aliases: map[string]string{"Fast": "gpt-4o-mini"}},
	}
	if err := h.e.Reconfigure(next); err != nil {
		t.Fatal(err)
	}
	if err := h.e.Reconfigure(Reconfig{}); err == nil {
		t.Error("a reconfiguration without a default model was accepted")
	}
	close(release)
	for i, o := range outs {
		if final, failed := o.wait(t); final != "ok from gpt-4o-mini" || failed != "" {
			t.Errorf("in-flight turn %d: final %q, failed %q", i, final, failed)
		}
	}
	if final, _ := h.say(t, chanMsg("U1", "after", "T100")); final != "ok from claude-sonnet-4-5" {
		t.Errorf("next turn after the reload: %q", final)
	}

	next.Policy.Budgets.User = Limit{Daily: 0.000001}
	if err := h.e.Reconfigure(next); err != nil {
		t.Fatal(err)
	}
	if _, failed := h.say(t, chanMsg("U1", "over budget", "T101")); !strings.Contains(failed, "daily budget") {
		t.Errorf("new budget not applied: failed %q", failed)
	}
	if got := h.run(t, cmd("U1", "model", "fast", "")); !strings.Contains(got, "now uses `gpt-4o-mini`") {
		t.Errorf("new alias not applied: %q", got)
	}
}

func TestRecentErrors(t *testing.T) {
	var l errorLog
	now := time.Date(2026, 11, 25, 12, 30, 0, 0, time.UTC)
	l.add(now.Add(-30*time.Hour), "old")
	l.add(now.Add(-2*time.Hour), "timeout")
	l.add(now, "timeout")
	l.add(now, ErrKindStore)
	for i := range 100 {
		l.add(now, fmt.Sprint("k", i)) // bounded: extra kinds fold into "other"
	}
	got := l.since(now, 24*time.Hour)
	if got[0] != (ErrorCount{"other", 70}) || got[1] != (ErrorCount{"timeout", 2}) {
		t.Errorf("since = %v", got[:3])
	}
	for _, c := range got {
		if c.Kind == "old" {
			t.Error("an error older than a day was counted")
		}
	}
}
