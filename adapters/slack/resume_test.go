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
// text until Slack shows it (in shown messages), and abandons it as a
// killed process does. It returns the reference the reply reported.
func crashedReply(t *testing.T, a *Adapter, fake *slacktest.Server, m bot.Message, partial string, shown int) string {
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
		tail := strings.TrimSpace(partial[max(0, len(partial)-20):])
		waitFake(t, fake, "partial text", func() bool {
			ms := fake.BotReplies(m.Channel, m.Thread)
			return len(ms) == shown && strings.Contains(ms[len(ms)-1].Body(), tail)
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
		shown   int    // in how many messages (default 1)
		lostRef bool   // the process died before the reference reached the database
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
		{name: "DM: placeholder posted, reference lost: found again", m: dm, lostRef: true, final: "The answer.", want: []string{"The answer."}},
		{name: "DM: partial text posted, reference lost: found again", m: dm, partial: "Half an ans", lostRef: true, final: "The answer.", want: []string{"The answer."}},
		{name: "DM: two parts shown: both taken over", m: dm, partial: long, shown: 2, final: long + "More.", want: renderMrkdwn(long+"More.", 3500, 3900)},
		// Slack lets bot tokens read threads only in DMs: a first message whose
		// reference was lost stays, and the answer comes in a new one.
		{name: "channel thread: reference lost: answered in a second message", m: thread, partial: "Half", lostRef: true, final: "All of it.", want: []string{"Half", "All of it."}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a, fake := newOutputEnv(t, func(c *Config) { c.NativeStreaming = tt.native })
			tt.m.ID = fake.NextTS() // the user's message comes before the bot's
			if tt.m.Thread != "" {
				tt.m.Thread = tt.m.ID
			}
			shown := max(tt.shown, 1)
			ref := crashedReply(t, a, fake, tt.m, tt.partial, shown)
			before := fake.BotReplies(tt.m.Channel, tt.m.Thread)
			if len(before) != shown || ref != tt.m.Channel+"/"+before[0].TS {
				t.Fatalf("ref %q for messages %+v", ref, before)
			}
			if tt.lostRef {
				ref = ""
			}
			posts := len(fake.Calls("chat.postMessage", "chat.startStream"))

			ctx := context.Background()
			r, err := a.ResumeOutput(tt.m, ref).Start(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var rr refRecorder
			r.(bot.Resumable).OnRef(rr.record)
			if got := rr.last(); got != ref && ref != "" {
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
			for i := range before {
				if len(got) <= i || got[i].TS != before[i].TS {
					t.Fatalf("message %d is no longer %s: %q", i, before[i].TS, bodies)
				}
			}
			want := tt.want
			if tt.fail != "" {
				want = []string{"Streaming again\n\n" + tt.fail}
			}
			if strings.Join(bodies, "|") != strings.Join(want, "|") {
				t.Errorf("messages = %q, want %q", bodies, want)
			}
			if extra := len(fake.Calls("chat.postMessage", "chat.startStream")) - posts; extra != len(want)-shown {
				t.Errorf("%d posts after resuming, want %d (new parts only)", extra, len(want)-shown)
			}
			if want := "D1/" + got[0].TS; tt.m.DM && rr.last() != want {
				t.Errorf("ref = %q, want %q", rr.last(), want)
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
