package discord

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cometbot/cometbot/adapters/discord/discordtest"
	"github.com/cometbot/cometbot/bot"
)

// captureEngine hands every message the adapter accepts, with its output,
// to the test, which plays the engine's part itself.
type captureEngine struct{ got chan captured }

type captured struct {
	m   bot.Message
	out bot.Output
}

func (e captureEngine) HandleMessage(_ context.Context, m bot.Message, out bot.Output) error {
	if m.Author.IsBot {
		return bot.ErrIgnored
	}
	e.got <- captured{m, out}
	return nil
}
func (captureEngine) HandleCommand(context.Context, bot.Command) bot.Answer  { return bot.Answer{} }
func (captureEngine) ModelChoices(context.Context, string, int) []bot.Choice { return nil }

func (e captureEngine) next(t *testing.T) captured {
	t.Helper()
	select {
	case c := <-e.got:
		return c
	case <-time.After(15 * time.Second):
		t.Fatal("the adapter handed no message to the engine")
		return captured{}
	}
}

type refRecorder struct {
	mu  sync.Mutex
	ref string
}

func (rr *refRecorder) record(ref string) { rr.mu.Lock(); rr.ref = ref; rr.mu.Unlock() }
func (rr *refRecorder) get() string       { rr.mu.Lock(); defer rr.mu.Unlock(); return rr.ref }

func TestResumeOutput(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("A sentence that fills Discord's two thousand characters. ", 50) // ~2,850 chars
	tests := []struct {
		name string
		post func(e *env) discordtest.Post
		// crash: what the killed process got done: "" nothing, "thread" the
		// thread opened, "partial" a first message with partial text, "long"
		// two messages of a long partial text.
		crash string
		// lostRef: the process died before the reference reached the
		// database: the resumed reply gets none.
		lostRef bool
		final   string
		fail    string
		// where the answer must be: the thread opened on the message, or the
		// channel it was written in.
		inThread bool
	}{
		{name: "mention: partial text edited into the answer", post: mentionIn(general), crash: "partial", final: "The answer.", inThread: true},
		{name: "mention: thread opened, nothing posted: answer posted there once", post: mentionIn(general), crash: "thread", final: "The answer.", inThread: true},
		{name: "mention: nothing done: thread opened, answer posted once", post: mentionIn(general), final: "The answer.", inThread: true},
		{name: "mention where threads are refused: in place, edited", post: mentionIn(locked), crash: "partial", final: "The answer."},
		{name: "mention where threads are refused: in place, posted once", post: mentionIn(locked), final: "The answer."},
		{name: "DM: partial text edited into the answer", post: dmFrom, crash: "partial", final: "The answer."},
		{name: "overflow parts posted after the edited first one", post: dmFrom, crash: "partial", final: long},
		{name: "notice edited in", post: dmFrom, crash: "partial", fail: "⚠️ Interrupted — ask again."},
		{name: "DM: reference lost: the message is found again by its nonce", post: dmFrom, crash: "partial", lostRef: true, final: "The answer."},
		{name: "mention: reference lost: the thread's message is found again", post: mentionIn(general), crash: "partial", lostRef: true, final: "The answer.", inThread: true},
		{name: "two parts shown: both are taken over", post: dmFrom, crash: "long", final: long + " And more."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			eng := captureEngine{got: make(chan captured, 4)}
			e := start(t, eng, envOpts{})
			um := e.srv.UserMessage(tt.post(e))
			c := eng.next(t)
			where := um.ChannelID
			if tt.inThread {
				where = um.ID // Discord names a thread opened on a message after it
			}

			ref := ""
			switch tt.crash {
			case "thread", "partial", "long":
				ctx, cancel := context.WithCancel(context.Background())
				r, err := c.out.Start(ctx)
				if err != nil {
					t.Fatal(err)
				}
				var rr refRecorder
				r.(bot.Resumable).OnRef(rr.record)
				if tt.crash == "thread" {
					e.waitFor("thread", func() bool { _, ok := e.srv.Channel(um.ID); return ok })
				} else if tt.crash == "long" {
					_ = r.Append(ctx, long)
					e.waitFor("two messages", func() bool { return len(e.srv.BotMessages(where)) == 2 })
				} else {
					_ = r.Append(ctx, "Partial")
					e.waitFor("partial text", func() bool { return rr.get() != "" })
				}
				cancel() // the process dies: nothing is finalized
				if !tt.lostRef {
					ref = rr.get()
				}
			}
			before := e.srv.BotMessages(where)
			if want := map[string]int{"partial": 1, "long": 2}[tt.crash]; len(before) != want {
				t.Fatalf("before resuming: ref %q, messages %+v", ref, before)
			}

			ctx := context.Background()
			r, err := e.a.ResumeOutput(c.m, ref).Start(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var rr refRecorder
			r.(bot.Resumable).OnRef(rr.record)
			if rr.get() != ref {
				t.Errorf("resumed reply reports %q at once, want %q", rr.get(), ref)
			}
			_ = r.Append(ctx, "Streaming again")
			want := splitMessage(tt.final)
			if tt.fail != "" {
				err = r.Fail(ctx, tt.fail)
				want = []string{"Streaming again\n\n" + tt.fail}
			} else {
				err = r.Finish(ctx, tt.final)
			}
			if err != nil {
				t.Fatal(err)
			}
			got := e.srv.BotMessages(where)
			var bodies []string
			for _, m := range got {
				bodies = append(bodies, m.Content)
			}
			if strings.Join(bodies, "|") != strings.Join(want, "|") {
				t.Fatalf("messages in %s = %q, want %q", where, bodies, want)
			}
			for i := range before {
				if got[i].ID != before[i].ID {
					t.Errorf("part %d is in %s, not in the message %s the crashed reply had", i, got[i].ID, before[i].ID)
				}
			}
			if ref == "" && um.ChannelID == locked && got[0].ReferenceID != um.ID {
				t.Errorf("an answer in place references %q, want the user's message %s", got[0].ReferenceID, um.ID)
			}
			posts := 0
			for _, c := range e.srv.CallsTo("POST", "/channels/"+where+"/messages") {
				if !strings.HasSuffix(c.Path, "/threads") {
					posts++
				}
			}
			if posts != len(want) && before == nil {
				t.Errorf("%d posts in %s, want %d (one per part)", posts, where, len(want))
			}
			if want := where + "/" + got[0].ID; !strings.HasPrefix(rr.get(), want) {
				t.Errorf("ref = %q, want it to start with %q", rr.get(), want)
			}
		})
	}
}

func mentionIn(channel string) func(*env) discordtest.Post {
	return func(*env) discordtest.Post {
		return discordtest.Post{ChannelID: channel, Content: mention(botID) + " what is a monad?"}
	}
}

func dmFrom(e *env) discordtest.Post {
	return discordtest.Post{ChannelID: e.srv.DMChannel(discordtest.AliceID), Content: "what is a monad?"}
}

// TestResumeTargetOfThreadFollowUp: a follow-up written in a thread is
// answered in that thread when resumed without a message.
func TestResumeTargetOfThreadFollowUp(t *testing.T) {
	t.Parallel()
	eng := captureEngine{got: make(chan captured, 4)}
	e := start(t, eng, envOpts{})
	um := e.srv.UserMessage(mentionIn(general)(e))
	first := eng.next(t)
	r, err := first.out.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Finish(context.Background(), "First answer."); err != nil {
		t.Fatal(err)
	}
	e.srv.UserMessage(discordtest.Post{ChannelID: um.ID, Content: "and a follow-up"})
	c := eng.next(t)
	if c.m.Thread != um.ID || c.m.Channel != general {
		t.Fatalf("follow-up normalized to %+v", c.m)
	}
	r, err = e.a.ResumeOutput(c.m, "").Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Finish(context.Background(), "Second answer."); err != nil {
		t.Fatal(err)
	}
	got := e.srv.BotMessages(um.ID)
	if len(got) != 2 || got[1].Content != "Second answer." {
		t.Fatalf("thread = %+v", got)
	}
}

// TestUploadOnceTheMessageExists: the engine posts generated images before
// the final edit when the reply's message exists; Upload works then, and
// only then, before Finish.
func TestUploadOnceTheMessageExists(t *testing.T) {
	t.Parallel()
	eng := captureEngine{got: make(chan captured, 4)}
	e := start(t, eng, envOpts{})
	dm := e.srv.DMChannel(discordtest.AliceID)
	e.srv.UserMessage(discordtest.Post{ChannelID: dm, Content: "draw a cat"})
	c := eng.next(t)
	ctx := context.Background()
	r, err := c.out.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	files := []bot.File{{Name: "cat.png", MIMEType: "image/png", Data: []byte("\x89PNG\r\n\x1a\nfake")}}
	up := r.(bot.FileUploader)
	var rr refRecorder
	r.(bot.Resumable).OnRef(rr.record)
	if rr.get() == "" {
		if err := up.Upload(ctx, files); err == nil {
			t.Error("Upload before the reply had a message succeeded")
		}
	}
	_ = r.Append(ctx, "Here is a cat.")
	e.waitFor("the first message", func() bool { return rr.get() != "" })
	if err := up.Upload(ctx, files); err != nil {
		t.Fatal(err)
	}
	if err := r.Finish(ctx, "Here is a cat."); err != nil {
		t.Fatal(err)
	}
	ms := e.srv.BotMessages(dm)
	if len(ms) != 2 || ms[0].Content != "Here is a cat." || len(ms[1].Files) != 1 {
		t.Fatalf("DM = %+v, want the answer, then the image", ms)
	}
}
