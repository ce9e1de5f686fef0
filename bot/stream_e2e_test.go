package bot_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cometbot/cometbot/bot"
	"github.com/cometbot/cometbot/bot/bottest"
	"github.com/cometbot/cometbot/llm/llmtest"
)

// streamOut records what one reply showed: streamed text, then the final
// text or the failure notice.
type streamOut struct {
	mu       sync.Mutex
	streamed strings.Builder
	final    string
	failed   string
	done     chan struct{}
}

func newStreamOut() *streamOut { return &streamOut{done: make(chan struct{})} }

func (o *streamOut) Start(context.Context) (bot.Reply, error) { return o, nil }
func (o *streamOut) Append(_ context.Context, d string) error {
	o.mu.Lock()
	o.streamed.WriteString(d)
	o.mu.Unlock()
	return nil
}
func (o *streamOut) Finish(_ context.Context, s string) error {
	o.mu.Lock()
	o.final = s
	o.mu.Unlock()
	close(o.done)
	return nil
}
func (o *streamOut) Fail(_ context.Context, s string) error {
	o.mu.Lock()
	o.failed = s
	o.mu.Unlock()
	close(o.done)
	return nil
}

func (o *streamOut) wait(t *testing.T) (streamed, final, failed string) {
	t.Helper()
	select {
	case <-o.done:
	case <-time.After(20 * time.Second):
		t.Fatal("reply never finished")
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.streamed.String(), o.final, o.failed
}

// formatModels picks one catalog model per wire format.
var formatModels = []struct{ format, model, lengthStop string }{
	{"chat", "gpt-4o-mini", "length"},
	{"responses", "gpt-5-mini", "max_output_tokens"},
	{"anthropic", "claude-sonnet-4-5", "max_tokens"},
	{"gemini", "gemini-2.5-flash", "MAX_TOKENS"},
}

func say(t *testing.T, h *bottest.Harness, text, id string) (string, string, string) {
	t.Helper()
	o := newStreamOut()
	m := bot.Message{Platform: "t", Workspace: "W", Channel: "D", DM: true, Author: bot.User{ID: "U"}, Text: text, ID: id, EventID: "e" + id}
	if err := h.Engine.HandleMessage(context.Background(), m, o); err != nil {
		t.Fatal(err)
	}
	s, f, x := o.wait(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.Engine.Quiesce(ctx); err != nil {
		t.Fatal(err)
	}
	return s, f, x
}

// TestCutStreamIsNeverComplete: per format, a stream that ends before its
// end marker (or without a stop reason) is shown with a notice, not stored
// as an answer, and left out of the next request's history.
func TestCutStreamIsNeverComplete(t *testing.T) {
	for _, f := range formatModels {
		for _, cut := range []struct {
			name   string
			script llmtest.Script
		}{
			{"no end marker", llmtest.Script{Text: "the first half of an answer", Truncate: true}},
			{"no stop reason", llmtest.Script{Text: "the first half of an answer", NoStopReason: true}},
		} {
			t.Run(f.format+"/"+cut.name, func(t *testing.T) {
				h := bottest.New(t, bottest.Options{Engine: func(o *bot.Options) { o.Defaults.Model = f.model }})
				h.Gateway.Enqueue(cut.script, cut.script, cut.script, cut.script)
				streamed, final, failed := say(t, h, "first", "1")
				if final != "" || !strings.Contains(failed, "cut off before the model finished") {
					t.Fatalf("final=%q failed=%q", final, failed)
				}
				if !strings.Contains(streamed, "first half") {
					t.Fatalf("partial text not shown: %q", streamed)
				}
				h.Gateway.Reset()
				h.Gateway.SetReply("fine")
				if _, final, _ := say(t, h, "second", "2"); final != "fine" {
					t.Fatalf("second reply %q", final)
				}
				p, _ := h.LastPrompt()
				if n := len(p.Messages); n != 1 {
					t.Fatalf("the cut turn was sent as history: %d messages: %+v", n, p.Messages)
				}
			})
		}
	}
}

func TestLengthStopSaysSo(t *testing.T) {
	for _, f := range formatModels {
		t.Run(f.format, func(t *testing.T) {
			h := bottest.New(t, bottest.Options{Engine: func(o *bot.Options) { o.Defaults.Model = f.model }})
			h.Gateway.Enqueue(llmtest.Script{Text: "a long answer that", StopReason: f.lengthStop})
			_, final, failed := say(t, h, "tell me everything", "1")
			if failed != "" || !strings.HasPrefix(final, "a long answer that") || !strings.Contains(final, "Cut at the model's output limit") {
				t.Fatalf("final=%q failed=%q", final, failed)
			}
		})
	}
}

// TestEndlessStreamStopsAtTheLimit: a stream that never ends is stopped at
// max_answer_chars and marked cut, whatever the format.
func TestEndlessStreamStopsAtTheLimit(t *testing.T) {
	for _, f := range formatModels {
		t.Run(f.format, func(t *testing.T) {
			h := bottest.New(t, bottest.Options{Engine: func(o *bot.Options) { o.Defaults.Model = f.model; o.MaxAnswerChars = 5000 }})
			h.Gateway.Enqueue(llmtest.Script{Text: "all work and no play ", Repeat: -1})
			_, final, failed := say(t, h, "go on", "1")
			if failed != "" || !strings.Contains(final, "I stopped this answer at 5000 characters") {
				t.Fatalf("final=%.200q… failed=%q", final, failed)
			}
			if n := len([]rune(final[:strings.Index(final, "\n\n✂️")])); n != 5000 {
				t.Fatalf("answer is %d characters, want 5000", n)
			}
		})
	}
}
