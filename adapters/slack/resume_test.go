package slack

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/cometbot/cometbot/adapters/slack/slacktest"
	"github.com/cometbot/cometbot/bot"
)

// refRecorder collects the references a reply reports through OnRef.
type refRecorder struct {
	mu   sync.Mutex
	refs []string
}

func (rr *refRecorder) record(ref string) {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	rr.refs = append(rr.refs, ref)
}

func (rr *refRecorder) last() string {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	if len(rr.refs) == 0 {
		return ""
	}
	return rr.refs[len(rr.refs)-1]
}

// crashedReply starts a reply for m as a process would, streams partial
// text until Slack shows it, and abandons it as a killed process does. It
// returns the reference the reply reported.
func crashedReply(t *testing.T, a *Adapter, fake *slacktest.Server, m bot.Message, partial string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // the abandoned reply's flusher stops; nothing is finalized
	r, err := a.ResumeOutput(m, "").Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var rr refRecorder
	r.(bot.Resumable).OnRef(rr.record)
	if partial != "" {
		_ = r.Append(ctx, partial)
		waitFake(t, fake, "partial text", func() bool {
			ms := fake.BotReplies(m.Channel, m.Thread)
			return len(ms) == 1 && strings.Contains(ms[0].Body(), strings.TrimSpace(partial))
		})
	}
	waitFake(t, fake, "a reference", func() bool { return rr.last() != "" })
	return rr.last()
}

func TestResumeOutput(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("A paragraph that fills the message quickly, again and again. ", 70) // ~4,300 chars
	dm := bot.Message{Platform: Platform, Workspace: "T1", Channel: "D1", ID: "1700000000.000001", Author: bot.User{ID: "U1"}, DM: true}
	thread := bot.Message{Platform: Platform, Workspace: "T1", Channel: "C1", Thread: "1700000000.000002", ID: "1700000000.000002", Author: bot.User{ID: "U1"}, Mentioned: true}
	tests := []struct {
		name    string
		m       bot.Message
		native  bool
		partial string // what the crashed process showed ("" = only its placeholder)
		fail    string // the resumed reply fails with this instead of finishing
		final   string
		want    []string // the bot's visible messages afterwards, in order
	}{
		{name: "DM placeholder edited into the answer", m: dm, final: "The answer.", want: []string{"The answer."}},
		{name: "DM partial text replaced by the answer", m: dm, partial: "Half an ans", final: "The whole answer.", want: []string{"The whole answer."}},
		{name: "thread (status, no placeholder): first streamed part edited", m: thread, partial: "Half", final: "All of it.", want: []string{"All of it."}},
		{name: "native stream left open: closed, then edited", m: thread, native: true, partial: "Streamed ", final: "Done now.", want: []string{"Done now."}},
		{name: "overflow parts are posted after the edited first one", m: dm, partial: "Start", final: long, want: renderMrkdwn(long, 3500, 3900)},
		{name: "notice edited in", m: dm, partial: "Half", fail: "⚠️ Interrupted — ask again.", want: []string{"⚠️ Interrupted — ask again."}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a, fake := newOutputEnv(t, func(c *Config) { c.NativeStreaming = tt.native })
			ref := crashedReply(t, a, fake, tt.m, tt.partial)
			before := fake.BotReplies(tt.m.Channel, tt.m.Thread)
			if len(before) != 1 || ref != tt.m.Channel+"/"+before[0].TS {
				t.Fatalf("ref %q for messages %+v", ref, before)
			}
			posts := len(fake.Calls("chat.postMessage", "chat.startStream"))

			ctx := context.Background()
			r, err := a.ResumeOutput(tt.m, ref).Start(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var rr refRecorder
			r.(bot.Resumable).OnRef(rr.record)
			if got := rr.last(); got != ref {
				t.Errorf("resumed reply reports %q at once, want %q", got, ref)
			}
			_ = r.Append(ctx, "Streaming again")
			if tt.fail != "" {
				err = r.Fail(ctx, tt.fail)
			} else {
				err = r.Finish(ctx, tt.final)
			}
			if err != nil {
				t.Fatal(err)
			}
			got := fake.BotReplies(tt.m.Channel, tt.m.Thread)
			var bodies []string
			for _, m := range got {
				bodies = append(bodies, m.Body())
			}
			if len(got) == 0 || got[0].TS != before[0].TS {
				t.Fatalf("the first message is no longer %s: %q", before[0].TS, bodies)
			}
			want := tt.want
			if tt.fail != "" {
				want = []string{"Streaming again\n\n" + tt.fail}
			}
			if strings.Join(bodies, "|") != strings.Join(want, "|") {
				t.Errorf("messages = %q, want %q", bodies, want)
			}
			if extra := len(fake.Calls("chat.postMessage", "chat.startStream")) - posts; extra != len(want)-1 {
				t.Errorf("%d posts after resuming, want %d (overflow parts only)", extra, len(want)-1)
			}
		})
	}
}

func TestResumeOutputWithoutRefPostsOnce(t *testing.T) {
	t.Parallel()
	a, fake := newOutputEnv(t, nil)
	m := bot.Message{Platform: Platform, Workspace: "T1", Channel: "C1", Thread: "1700000000.000003", ID: "1700000000.000004", Author: bot.User{ID: "U1"}}
	ctx := context.Background()
	r, err := a.ResumeOutput(m, "").Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var rr refRecorder
	r.(bot.Resumable).OnRef(rr.record)
	if err := r.Finish(ctx, "Fresh answer."); err != nil {
		t.Fatal(err)
	}
	got := fake.BotReplies("C1", m.Thread)
	if len(got) != 1 || got[0].Text != "Fresh answer." {
		t.Fatalf("thread = %+v", got)
	}
	if want := "C1/" + got[0].TS; rr.last() != want {
		t.Errorf("ref = %q, want %q", rr.last(), want)
	}
	if n := len(fake.Calls("chat.postMessage")); n != 1 {
		t.Errorf("%d posts, want 1", n)
	}
}

func TestOnRefFollowsTheFirstMessage(t *testing.T) {
	t.Parallel()
	// A DM: the placeholder is the first message at once; its reference is
	// reported to functions registered before and after it existed.
	a, fake := newOutputEnv(t, nil)
	out := &output{a: a, team: "T1", channel: "D1", user: "U1", dm: true}
	ctx := context.Background()
	r, err := out.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var rr refRecorder
	r.(bot.Resumable).OnRef(rr.record)
	ph := fake.BotReplies("D1", "")
	if len(ph) != 1 || rr.last() != "D1/"+ph[0].TS {
		t.Fatalf("ref %q, placeholder %+v", rr.last(), ph)
	}
	if err := r.Finish(ctx, "Answer."); err != nil {
		t.Fatal(err)
	}
	if rr.refs[0] != rr.last() || len(rr.refs) != 1 {
		t.Errorf("refs = %q: the first message did not change, so neither should the ref", rr.refs)
	}
}
