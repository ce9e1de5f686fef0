package bot

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cometbot/cometbot/llm"
	"github.com/cometbot/cometbot/storage"
)

func chanMsg(user, text, thread string) Message {
	return Message{Platform: "test", Workspace: "W1", Channel: "C1", Thread: thread, ID: text, Author: User{ID: user}, Text: text, Mentioned: true}
}

func cmd(user, name, args, thread string) Command {
	return Command{Platform: "test", Workspace: "W1", Channel: "C1", Thread: thread, Name: name, Args: args, User: User{ID: user}}
}

func (h *harness) run(t *testing.T, c Command) string {
	t.Helper()
	return h.e.HandleCommand(context.Background(), c).Text
}

func TestSettingsResolutionOrder(t *testing.T) {
	ctx := context.Background()
	s := Scope{Platform: "test", Workspace: "W1", Channel: "C1", Thread: "T1"}
	type layer struct{ level, model, system string }
	tests := []struct {
		name       string
		stored     []layer
		cfgChan    Defaults
		cfgWS      Defaults
		wantModel  string
		wantFrom   string
		wantSystem string
	}{
		{"env default only", nil, Defaults{}, Defaults{}, "gpt-4o-mini", scopeDefault, "default prompt"},
		{"config workspace", nil, Defaults{}, Defaults{Model: "ws-cfg", SystemPrompt: "ws"}, "ws-cfg", scopeConfig, "ws"},
		{"config channel beats config workspace", nil, Defaults{Model: "ch-cfg"}, Defaults{Model: "ws-cfg", SystemPrompt: "ws"}, "ch-cfg", scopeConfig, "ws"},
		{"server beats config", []layer{{ScopeWorkspace, "srv", "srv prompt"}}, Defaults{Model: "ch-cfg"}, Defaults{}, "srv", ScopeWorkspace, "srv prompt"},
		{"channel beats server", []layer{{ScopeWorkspace, "srv", "srv prompt"}, {ScopeChannel, "chan", ""}}, Defaults{}, Defaults{}, "chan", ScopeChannel, "srv prompt"},
		{"thread beats channel", []layer{{ScopeChannel, "chan", "c"}, {ScopeThread, "thr", "t"}}, Defaults{}, Defaults{}, "thr", ScopeThread, "t"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(o *Options) {
				o.Defaults.SystemPrompt = "default prompt"
				o.Channels = map[string]Defaults{"C1": tt.cfgChan}
				o.Workspaces = map[string]Defaults{"W1": tt.cfgWS}
			})
			for _, l := range tt.stored {
				err := h.store.UpdateSettings(ctx, scopeKey(s, l.level), func(st *storage.Settings) {
					st.Model = l.model
					if l.system != "" {
						p := l.system
						st.SystemPrompt = &p
					}
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			r, err := h.e.resolve(ctx, s, nil)
			if err != nil {
				t.Fatal(err)
			}
			if r.Model != tt.wantModel || r.ModelFrom != tt.wantFrom || r.SystemPrompt != tt.wantSystem {
				t.Fatalf("resolved %q from %q, system %q; want %q from %q, system %q", r.Model, r.ModelFrom, r.SystemPrompt, tt.wantModel, tt.wantFrom, tt.wantSystem)
			}
		})
	}
}

func TestModelCommand(t *testing.T) {
	h := newHarness(t, func(o *Options) {
		o.Policy.Aliases = map[string]string{"fast": "gpt-4o-mini", "smart": "claude-sonnet-4-5"}
	})
	tests := []struct {
		name, args string
		want       []string
		wantModel  string // model the channel uses afterwards ("" = unchanged check skipped)
	}{
		{"show", "", []string{"Model here: `gpt-4o-mini`", "the bot's default", "Aliases"}, ""},
		{"switch", "gpt-4o", []string{"now uses `gpt-4o`", "OpenAI", "$2.5"}, "gpt-4o"},
		{"case-insensitive id", "GPT-4O-MINI", []string{"`gpt-4o-mini`"}, "gpt-4o-mini"},
		{"alias", "smart", []string{"`claude-sonnet-4-5`"}, "claude-sonnet-4-5"},
		{"unknown suggests", "gpt-4x", []string{"don't know the model `gpt-4x`", "Did you mean", "`gpt-4o`"}, "claude-sonnet-4-5"},
		{"non-text refused", "dall-e-3", []string{"is an image model, not a text model"}, "claude-sonnet-4-5"},
		{"options", "gpt-4o temperature=0.3 max_tokens=500", []string{"Temperature 0.3", "Max output 500 tokens."}, "gpt-4o"},
		{"one token", "max_tokens=1", []string{"Max output 1 token."}, "gpt-4o"},
		{"bad temperature", "gpt-4o temperature=9", []string{"between 0 and 2"}, "gpt-4o"},
		{"list", "list", []string{"Text models", "`claude-sonnet-4-5` — Anthropic — $3 / $15"}, ""},
		{"list filter", "list claude", []string{"matching `claude`", "claude-sonnet-4-5"}, ""},
		{"list no match", "list zzz", []string{"No text model matches"}, ""},
		{"thread scope outside thread", "gpt-4o thread", []string{"no thread here"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := h.run(t, cmd("U1", "model", tt.args, ""))
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("/model %s = %q, want it to contain %q", tt.args, got, w)
				}
			}
			if tt.wantModel != "" {
				r, _ := h.e.resolve(context.Background(), cmd("U1", "", "", "").Scope(), nil)
				if r.Model != tt.wantModel {
					t.Errorf("channel model = %q, want %q", r.Model, tt.wantModel)
				}
			}
		})
	}
	if list := h.run(t, cmd("U1", "model", "list", "")); strings.Contains(list, "dall-e-3") {
		t.Error("/model list shows a non-text model")
	}
}

func TestModelListPaginates(t *testing.T) {
	cat := fakeCatalog{}
	for i := range 45 {
		id := fmt.Sprintf("m-%02d", i)
		cat[id] = testCatalog["gpt-4o"]
		m := cat[id]
		m.ID = id
		cat[id] = m
	}
	h := newHarness(t, func(o *Options) { o.Catalog = cat; o.Defaults.Model = "m-00" })
	p1 := h.run(t, cmd("U1", "model", "list", ""))
	p3 := h.run(t, cmd("U1", "model", "list 3", ""))
	if !strings.Contains(p1, "page 1/3") || !strings.Contains(p1, "More: `/model list 2`") || strings.Contains(p1, "m-20") {
		t.Errorf("page 1:\n%s", p1)
	}
	if !strings.Contains(p3, "page 3/3") || !strings.Contains(p3, "m-44") || strings.Contains(p3, "More:") {
		t.Errorf("page 3:\n%s", p3)
	}
}

func TestThreadKeepsItsModel(t *testing.T) {
	h := newHarness(t, nil)
	h.say(t, chanMsg("U1", "start", "T1"))
	// The channel switches model: the running thread keeps gpt-4o-mini.
	h.run(t, cmd("U1", "model", "gpt-4o", ""))
	h.say(t, chanMsg("U1", "more", "T1"))
	h.say(t, chanMsg("U1", "new thread", "T2"))
	reqs := h.model.requests()
	if reqs[1].Model != "gpt-4o-mini" || reqs[2].Model != "gpt-4o" {
		t.Fatalf("models used: thread T1 %q, new thread T2 %q", reqs[1].Model, reqs[2].Model)
	}
	// A switch made inside the thread applies to it.
	h.run(t, cmd("U1", "model", "claude-sonnet-4-5 thread", "T1"))
	h.say(t, chanMsg("U1", "again", "T1"))
	if m := h.model.requests()[3].Model; m != "claude-sonnet-4-5" {
		t.Fatalf("after a thread switch the thread uses %q", m)
	}
}

func TestCostOfReply(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	h := newHarness(t, func(o *Options) { o.Now = func() time.Time { return now }; o.Policy.UsageFooter = true })
	final, _ := h.say(t, chanMsg("U1", "price me", "T1"))
	// 1000 input × $0.15/M + 500 output × $0.60/M = $0.00045
	const want = 1000*0.15/1e6 + 500*0.6/1e6
	c, err := h.store.Usage(context.Background(), storage.Day(now), "test/W1", storage.KindUser, "U1")
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(c.Cost-want) > 1e-5 || c.InputTokens != 1000 || c.OutputTokens != 500 || c.Replies != 1 {
		t.Fatalf("usage = %+v, want cost %.5f", c, want)
	}
	if !strings.HasSuffix(final, "_gpt-4o-mini · 1.5k tokens · $0.00045_") {
		t.Fatalf("footer: %q", final)
	}
	for _, kind := range []string{storage.KindChannel, storage.KindModel, storage.KindAll} {
		id := map[string]string{storage.KindChannel: "C1", storage.KindModel: "gpt-4o-mini", storage.KindAll: "*"}[kind]
		if c, _ := h.store.Usage(context.Background(), storage.Month(now), "test/W1", kind, id); c.Replies != 1 {
			t.Errorf("%s counter = %+v", kind, c)
		}
	}
	u := h.run(t, cmd("U1", "usage", "", ""))
	if !strings.Contains(u, "You — today: 1 reply, 1.5k tokens") || !strings.Contains(u, "Top models") {
		t.Errorf("/usage = %q", u)
	}
}

func TestBudgets(t *testing.T) {
	day := time.Date(2026, 11, 25, 20, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		limit   Limit
		spent   float64
		at      time.Time
		refused bool
		want    string
	}{
		{"under the limit", Limit{Daily: 0.01}, 0.009, day, false, ""},
		{"exactly at the limit", Limit{Daily: 0.01}, 0.01, day, true, "daily budget of $0.01 is used up"},
		{"one cent over", Limit{Daily: 0.01}, 0.02, day, true, "resets at Nov 26 00:00 UTC (in 4h 0m)"},
		{"next day resets", Limit{Daily: 0.01}, 0.02, day.Add(5 * time.Hour), false, ""},
		{"monthly", Limit{Monthly: 1}, 1, day, true, "monthly budget of $1.00"},
		{"monthly resets next month", Limit{Monthly: 1}, 1, time.Date(2026, 12, 1, 0, 1, 0, 0, time.UTC), false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &testClock{t: day}
			h := newHarness(t, func(o *Options) {
				o.Now = clk.Now
				o.Policy.Budgets.User = tt.limit
			})
			if err := h.store.AddUsage(context.Background(), storage.UsageEntry{Time: day, Workspace: "test/W1", Channel: "C1", User: "U1", Model: "x", Counter: storage.Counter{Cost: tt.spent}}); err != nil {
				t.Fatal(err)
			}
			clk.Set(tt.at)
			final, failed := h.say(t, chanMsg("U1", "hi", "T1"))
			if tt.refused != (failed != "") {
				t.Fatalf("refused=%v (final %q, failed %q)", failed != "", final, failed)
			}
			if tt.refused && !strings.Contains(failed, tt.want) {
				t.Errorf("refusal %q lacks %q", failed, tt.want)
			}
			if tt.refused && len(h.model.requests()) != 0 {
				t.Error("the model was called despite the budget")
			}
		})
	}
}

func TestBudgetNoOverspendUnderConcurrency(t *testing.T) {
	// Each reply costs $0.00045; the daily limit admits exactly 2 replies' worth
	// ($0.0009). 20 concurrent messages in 20 conversations from one user.
	h := newHarness(t, func(o *Options) {
		o.Policy.Budgets.User = Limit{Daily: 0.0009}
		o.MaxQueue = 100
	})
	var wg sync.WaitGroup
	var mu sync.Mutex
	answered := 0
	for i := range 20 {
		wg.Go(func() {
			out := newOut()
			m := chanMsg("U1", fmt.Sprint("q", i), fmt.Sprint("T", i))
			if err := h.e.HandleMessage(context.Background(), m, out); err != nil {
				t.Error(err)
				return
			}
			if final, _ := out.wait(t); final != "" {
				mu.Lock()
				answered++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	c, _ := h.store.Usage(context.Background(), storage.Day(time.Now()), "test/W1", storage.KindUser, "U1")
	if answered != 2 || c.Cost > 0.0009+1e-9 {
		t.Fatalf("answered %d replies costing $%.5f; want exactly 2 within the $0.0009 budget", answered, c.Cost)
	}
}

func TestAccessControl(t *testing.T) {
	tests := []struct {
		name   string
		policy Policy
		msg    Message
		want   string // "" = answered
	}{
		{"open by default", Policy{}, chanMsg("U1", "hi", "T"), ""},
		{"deny user", Policy{DenyUsers: []string{"U1"}}, chanMsg("U1", "hi", "T"), refuseAccess},
		{"allow list excludes others", Policy{AllowUsers: []string{"U2"}}, chanMsg("U1", "hi", "T"), refuseAccess},
		{"allow list admits member", Policy{AllowUsers: []string{"U1"}}, chanMsg("U1", "hi", "T"), ""},
		{"deny beats allow", Policy{AllowUsers: []string{"U1"}, DenyUsers: []string{"U1"}}, chanMsg("U1", "hi", "T"), refuseAccess},
		{"channel not allowed", Policy{AllowChannels: []string{"C9"}}, chanMsg("U1", "hi", "T"), refuseAccess},
		{"channel denied", Policy{DenyChannels: []string{"C1"}}, chanMsg("U1", "hi", "T"), refuseAccess},
		{"workspace not allowed", Policy{AllowWorkspaces: []string{"W9"}}, chanMsg("U1", "hi", "T"), refuseAccess},
		{"workspace denied", Policy{DenyWorkspaces: []string{"W1"}}, chanMsg("U1", "hi", "T"), refuseAccess},
		{"role allowed", Policy{AllowRoles: []string{"R1"}}, func() Message { m := chanMsg("U1", "hi", "T"); m.Author.Roles = []string{"R1"}; return m }(), ""},
		{"role denied", Policy{DenyRoles: []string{"R1"}}, func() Message { m := chanMsg("U1", "hi", "T"); m.Author.Roles = []string{"R1"}; return m }(), refuseAccess},
		{"DMs off", Policy{DisableDMs: true}, dm("hi", "1"), refuseDMs},
		{"DMs ignore channel allow list", Policy{AllowChannels: []string{"C9"}}, dm("hi", "1"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(o *Options) { o.Policy = tt.policy })
			final, failed := h.say(t, tt.msg)
			if tt.want == "" && (failed != "" || final == "") || tt.want != "" && failed != tt.want {
				t.Fatalf("final=%q failed=%q, want refusal %q", final, failed, tt.want)
			}
			if tt.want != "" && len(h.model.requests()) > 0 {
				t.Fatal("refused message reached the model")
			}
			if tt.want == refuseAccess {
				if a := h.e.HandleCommand(context.Background(), Command{Platform: "test", Workspace: tt.msg.Workspace, Channel: tt.msg.Channel, Name: "usage", User: tt.msg.Author}); a.Text != refuseAccess {
					t.Errorf("command not refused: %q", a.Text)
				}
			}
		})
	}
}

func TestAdminRules(t *testing.T) {
	tests := []struct {
		name    string
		policy  Policy
		user    User
		command Command
		allowed bool
	}{
		{"no admins configured: anyone", Policy{}, User{ID: "U1"}, cmd("U1", "system", "be brief", ""), true},
		{"admin sets channel prompt", Policy{Admins: []string{"A1"}}, User{ID: "A1"}, cmd("A1", "system", "be brief", ""), true},
		{"non-admin channel prompt refused", Policy{Admins: []string{"A1"}}, User{ID: "U1"}, cmd("U1", "system", "be brief", ""), false},
		{"non-admin thread prompt allowed", Policy{Admins: []string{"A1"}}, User{ID: "U1"}, cmd("U1", "system", "thread: be brief", "T1"), true},
		{"non-admin server model refused", Policy{Admins: []string{"A1"}}, User{ID: "U1"}, cmd("U1", "model", "gpt-4o server", ""), false},
		{"non-admin channel model allowed by default", Policy{Admins: []string{"A1"}}, User{ID: "U1"}, cmd("U1", "model", "gpt-4o", ""), true},
		{"admins-only model switch", Policy{Admins: []string{"A1"}, AdminsOnlyModelSwitch: true}, User{ID: "U1"}, cmd("U1", "model", "gpt-4o", ""), false},
		{"admin role", Policy{AdminRoles: []string{"R1"}}, User{ID: "U1", Roles: []string{"R1"}}, cmd("U1", "system", "x", ""), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(o *Options) { o.Policy = tt.policy })
			c := tt.command
			c.User = tt.user
			got := h.e.HandleCommand(context.Background(), c).Text
			if refused := got == refuseAdmin; refused == tt.allowed {
				t.Fatalf("answer %q; allowed=%v", got, tt.allowed)
			}
		})
	}
}

func TestPerUserRateLimit(t *testing.T) {
	clk := &testClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	h := newHarness(t, func(o *Options) {
		o.Now = clk.Now
		o.Policy.RatePerMinute, o.Policy.RateBurst = 1, 2
	})
	ctx := context.Background()
	for i := range 2 {
		if final, _ := h.say(t, chanMsg("U1", fmt.Sprint("ok", i), fmt.Sprint("T", i))); final == "" {
			t.Fatalf("message %d within the burst was not answered", i)
		}
	}
	_, failed := h.say(t, chanMsg("U1", "third", "T9"))
	if failed != refuseRate {
		t.Fatalf("third message: %q, want the slow-down notice", failed)
	}
	if err := h.e.HandleMessage(ctx, chanMsg("U1", "fourth", "T9"), newOut()); !errors.Is(err, ErrIgnored) {
		t.Fatalf("fourth message: %v, want silently ignored after the one notice", err)
	}
	// Another user is unaffected; after a minute the bucket refills.
	if final, _ := h.say(t, chanMsg("U2", "other", "T8")); final == "" {
		t.Fatal("other user throttled")
	}
	clk.Set(clk.Now().Add(61 * time.Second))
	if final, _ := h.say(t, chanMsg("U1", "later", "T7")); final == "" {
		t.Fatal("user still throttled after the bucket refilled")
	}
}

func TestForgetCommand(t *testing.T) {
	h := newHarness(t, nil)
	h.say(t, chanMsg("U1", "mine", "T1"))
	h.say(t, chanMsg("U2", "theirs", "T1"))
	h.say(t, chanMsg("U1", "elsewhere", "T2"))
	if got := h.run(t, cmd("U1", "forget", "", "")); !strings.Contains(got, "/forget confirm") {
		t.Fatalf("/forget without confirm: %q", got)
	}
	_, recs, _ := h.store.History(context.Background(), chanMsg("U1", "", "T1").Scope().ConversationKey(), 10)
	if len(recs) != 4 {
		t.Fatalf("unconfirmed /forget deleted something: %d records", len(recs))
	}
	got := h.run(t, cmd("U1", "forget", "confirm", ""))
	if !strings.Contains(got, "deleted 4 stored messages") {
		t.Fatalf("/forget confirm: %q", got)
	}
	_, recs, _ = h.store.History(context.Background(), chanMsg("U1", "", "T1").Scope().ConversationKey(), 10)
	if len(recs) != 2 || recs[0].Text != "theirs" {
		t.Fatalf("T1 after forget: %+v", recs)
	}
	if c, _ := h.store.Usage(context.Background(), storage.Month(time.Now()), "test/W1", storage.KindUser, "U1"); c.Replies != 0 {
		t.Errorf("U1 usage survived: %+v", c)
	}
	if c, _ := h.store.Usage(context.Background(), storage.Month(time.Now()), "test/W1", storage.KindUser, "U2"); c.Replies != 1 {
		t.Errorf("U2 usage lost: %+v", c)
	}
}

func TestSystemAndResetCommands(t *testing.T) {
	h := newHarness(t, nil)
	if got := h.run(t, cmd("U1", "system", "", "")); !strings.Contains(got, "No system prompt") {
		t.Fatalf("/system empty: %q", got)
	}
	h.run(t, cmd("U1", "system", "You are a pirate.", ""))
	h.say(t, chanMsg("U1", "hello", "T1"))
	if s := h.model.requests()[0].System; s != "You are a pirate." {
		t.Fatalf("system prompt sent = %q", s)
	}
	if got := h.run(t, cmd("U1", "system", "", "")); !strings.Contains(got, "You are a pirate.") || !strings.Contains(got, "this channel") {
		t.Fatalf("/system show: %q", got)
	}
	h.run(t, cmd("U1", "reset", "", "T1"))
	h.say(t, chanMsg("U1", "fresh", "T1"))
	if n := len(h.model.requests()[1].Messages); n != 1 {
		t.Fatalf("after /reset the turn carried %d messages", n)
	}
	h.run(t, cmd("U1", "system", "clear", ""))
	h.say(t, chanMsg("U1", "x", "T5"))
	if s := h.model.requests()[2].System; s != "" {
		t.Fatalf("system prompt after clear = %q", s)
	}
	if got := h.run(t, cmd("U1", "bogus", "", "")); !strings.Contains(got, "don't know the command") {
		t.Fatalf("unknown command: %q", got)
	}
}

func TestModelChoices(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.Policy.Aliases = map[string]string{"smart": "claude-sonnet-4-5"} })
	got := h.e.ModelChoices(context.Background(), "claude", 25)
	if len(got) != 1 || got[0].Value != "claude-sonnet-4-5" || !strings.Contains(got[0].Label, "$3/$15") {
		t.Fatalf("choices = %+v", got)
	}
	if got := h.e.ModelChoices(context.Background(), "", 2); len(got) != 2 || got[0].Value != "smart" {
		t.Fatalf("limited choices = %+v", got)
	}
}

// testClock is a settable clock safe for concurrent use.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

func TestModelInThreadDefaultsToThread(t *testing.T) {
	h := newHarness(t, nil)
	if got := h.run(t, cmd("U1", "model", "gpt-4o", "T1")); !strings.Contains(got, "This thread now uses `gpt-4o`") {
		t.Fatalf("/model in a thread: %q", got)
	}
	h.say(t, chanMsg("U1", "in thread", "T1"))
	h.say(t, chanMsg("U1", "elsewhere", "T2"))
	reqs := h.model.requests()
	if reqs[0].Model != "gpt-4o" || reqs[1].Model != "gpt-4o-mini" {
		t.Fatalf("thread used %q, other thread %q", reqs[0].Model, reqs[1].Model)
	}
}

func TestFollowUpWhileFirstTurnRuns(t *testing.T) {
	release := make(chan struct{})
	h := newHarness(t, nil)
	h.model.answer = func(ctx context.Context, req llm.Request) (string, error) {
		if req.Messages[len(req.Messages)-1].Content == "first" {
			<-release
		}
		return "ok", nil
	}
	first := newOut()
	if err := h.e.HandleMessage(context.Background(), chanMsg("U1", "first", "T1"), first); err != nil {
		t.Fatal(err)
	}
	follow := chanMsg("U2", "second", "T1")
	follow.Mentioned = false
	second := newOut()
	if err := h.e.HandleMessage(context.Background(), follow, second); err != nil {
		t.Fatalf("follow-up during the first turn: %v", err)
	}
	close(release)
	first.wait(t)
	if final, _ := second.wait(t); final != "ok" {
		t.Fatalf("follow-up answer %q", final)
	}
}

func TestChannelBudgetCountsRepliesInFlight(t *testing.T) {
	// Each reply costs $0.00045. After one reply ($0.00045 spent) the channel
	// cap of $0.00135 leaves room for exactly two more; 20 users then ask at
	// once while every model call is held until all have been admitted.
	gate := make(chan struct{})
	h := newHarness(t, func(o *Options) { o.Policy.Budgets.Channel = Limit{Daily: 0.00135} })
	h.say(t, chanMsg("U0", "warm up", "T0"))
	var admitted atomic.Int32
	h.model.answer = func(ctx context.Context, req llm.Request) (string, error) {
		admitted.Add(1)
		<-gate
		return "ok", nil
	}
	var outs []*recOut
	for i := range 20 {
		o := newOut()
		outs = append(outs, o)
		if err := h.e.HandleMessage(context.Background(), chanMsg(fmt.Sprint("U", i+1), "q", fmt.Sprint("T", i+1)), o); err != nil {
			t.Fatal(err)
		}
	}
	// Barrier: every turn has passed its budget check — it is either held
	// in the model call or already refused.
	deadline := time.Now().Add(20 * time.Second)
	for {
		refused := 0
		for _, o := range outs {
			select {
			case <-o.done:
				refused++
			default:
			}
		}
		if int(admitted.Load())+refused == len(outs) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d admitted and %d refused of %d", admitted.Load(), refused, len(outs))
		}
		time.Sleep(time.Millisecond)
	}
	close(gate)
	answered := 0
	for _, o := range outs {
		if final, failed := o.wait(t); final != "" {
			answered++
		} else if !strings.Contains(failed, "channel's daily budget") {
			t.Errorf("refusal %q", failed)
		}
	}
	if answered != 2 {
		t.Fatalf("answered %d concurrent replies, want 2 (the room left in the channel budget)", answered)
	}
}

func TestReviewRegressions(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.Policy.Aliases = map[string]string{"Fast": "gpt-4o"} })
	if got := h.run(t, cmd("U1", "model", "FAST", "")); !strings.Contains(got, "now uses `gpt-4o`") {
		t.Errorf("upper-case alias: %q", got)
	}
	if got := h.run(t, cmd("U1", "reset", "", "")); !strings.Contains(got, "run the command inside that thread") {
		t.Errorf("/reset in a channel outside threads: %q", got)
	}
	h.run(t, cmd("U1", "system", "Be kind.", ""))
	if got := h.run(t, cmd("U1", "system", "channel", "")); !strings.Contains(got, "Be kind.") {
		t.Errorf("/system channel should show the prompt: %q", got)
	}
	if got := h.run(t, cmd("U1", "system", "", "")); !strings.Contains(got, "Be kind.") {
		t.Errorf("the prompt was cleared by a scope word: %q", got)
	}
	h.say(t, chanMsg("U1", "spend", "T1"))
	if got := h.run(t, cmd("U1", "usage", "", "")); strings.Contains(got, "<@") {
		t.Errorf("/usage must not contain raw mentions: %q", got)
	}
}
