package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cometbot/cometbot/llm"
	"github.com/cometbot/cometbot/storage"
)

// scriptModel answers each call from a function of the call number and
// records the requests.
type scriptModel struct {
	mu    sync.Mutex
	calls []llm.Request
	step  func(n int, req llm.Request) *llm.Response
}

func (m *scriptModel) Stream(ctx context.Context, req llm.Request, onDelta func(llm.Delta) error) (*llm.Response, error) {
	m.mu.Lock()
	m.calls = append(m.calls, req)
	n := len(m.calls)
	m.mu.Unlock()
	resp := m.step(n, req)
	for i := range resp.ToolCalls {
		if err := onDelta(llm.Delta{ToolCall: &llm.ToolCall{ID: resp.ToolCalls[i].ID, Name: resp.ToolCalls[i].Name}}); err != nil {
			return nil, err
		}
	}
	if resp.Text != "" {
		if err := onDelta(llm.Delta{Text: resp.Text}); err != nil {
			return nil, err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	resp.Usage = llm.Usage{InputTokens: 100, OutputTokens: 10}
	return resp, nil
}

func (m *scriptModel) requests() []llm.Request {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]llm.Request(nil), m.calls...)
}

// toolKit is a static ToolSource with a calculator and misbehaving tools.
type toolKit struct {
	mu    sync.Mutex
	calls []string
	hang  chan struct{} // closed when the hang tool started
}

func (k *toolKit) log(s string) {
	k.mu.Lock()
	k.calls = append(k.calls, s)
	k.mu.Unlock()
}

func (k *toolKit) Tools() []Tool {
	schema := json.RawMessage(`{"type":"object","properties":{"a":{"type":"number"},"b":{"type":"number"}}}`)
	return []Tool{
		{Server: "calc", Name: "add", Spec: llm.Tool{Name: "calc_add", Description: "add two numbers", Parameters: schema},
			Call: func(_ context.Context, args json.RawMessage) (ToolOutput, error) {
				var in struct{ A, B float64 }
				if err := json.Unmarshal(args, &in); err != nil {
					return ToolOutput{}, err
				}
				k.log("add " + string(args))
				return ToolOutput{Text: fmt.Sprint(in.A + in.B)}, nil
			}},
		{Server: "calc", Name: "hang", Spec: llm.Tool{Name: "calc_hang"},
			Call: func(ctx context.Context, _ json.RawMessage) (ToolOutput, error) {
				if k.hang != nil {
					close(k.hang)
				}
				<-ctx.Done()
				k.log("hang cancelled")
				return ToolOutput{}, ctx.Err()
			}},
		{Server: "calc", Name: "fail", Spec: llm.Tool{Name: "calc_fail"},
			Call: func(context.Context, json.RawMessage) (ToolOutput, error) {
				return ToolOutput{}, errors.New("disk on fire")
			}},
		{Server: "secret", Name: "read", Spec: llm.Tool{Name: "secret_read"},
			Call: func(context.Context, json.RawMessage) (ToolOutput, error) { return ToolOutput{Text: "classified"}, nil }},
	}
}

// callThen calls the named tools in the first round, then answers.
func callThen(answer string, calls ...llm.ToolCall) func(int, llm.Request) *llm.Response {
	return func(n int, req llm.Request) *llm.Response {
		if n == 1 {
			return &llm.Response{Text: "Let me check.", ToolCalls: calls, StopReason: llm.StopToolCalls}
		}
		return &llm.Response{Text: answer, StopReason: llm.StopEnd}
	}
}

func toolHarness(t *testing.T, model *scriptModel, kit *toolKit, mod func(*Options)) *harness {
	return newHarness(t, func(o *Options) {
		o.Model = model
		o.Tools.Source = kit
		o.Tools.Allow = []string{"calc"}
		o.Tools.Roles = map[string]ToolScope{"R-ops": {Allow: []string{"secret.read"}}}
		if mod != nil {
			mod(o)
		}
	})
}

func TestToolLoop(t *testing.T) {
	kit := &toolKit{}
	model := &scriptModel{step: callThen("2 + 3 = 5", llm.ToolCall{ID: "c1", Name: "calc_add", Arguments: json.RawMessage(`{"a":2,"b":3}`)},
		llm.ToolCall{ID: "c2", Name: "calc_fail", Arguments: json.RawMessage(`{}`)})}
	h := toolHarness(t, model, kit, nil)
	final, failed := h.say(t, dm("what is 2+3?", "1"))
	if failed != "" || !strings.HasPrefix(final, "2 + 3 = 5") || !strings.Contains(final, "🔧 Used calc.add, calc.fail") {
		t.Fatalf("final=%q failed=%q", final, failed)
	}
	reqs := model.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d model calls, want 2", len(reqs))
	}
	var names []string
	for _, tl := range reqs[0].Tools {
		names = append(names, tl.Name)
	}
	if strings.Join(names, ",") != "calc_add,calc_hang,calc_fail" {
		t.Fatalf("tools offered: %v (secret.read needs a role)", names)
	}
	msgs := reqs[1].Messages
	a, r := msgs[len(msgs)-2], msgs[len(msgs)-1]
	if a.Role != llm.RoleAssistant || len(a.ToolCalls) != 2 || r.Role != llm.RoleTool || len(r.ToolResults) != 2 {
		t.Fatalf("second request ends with %+v, %+v", a, r)
	}
	if res := r.ToolResults[0]; res.CallID != "c1" || res.Content != "5" || res.IsError {
		t.Fatalf("add result %+v", res)
	}
	if res := r.ToolResults[1]; !res.IsError || !strings.Contains(res.Content, "disk on fire") {
		t.Fatalf("fail result %+v", res)
	}
	// A follow-up keeps the call and its result in history.
	h.say(t, dm("and times 2?", "2"))
	msgs = model.requests()[2].Messages
	var sawCall, sawResult bool
	for _, m := range msgs {
		sawCall = sawCall || (len(m.ToolCalls) == 2 && m.ToolCalls[0].ID == "c1")
		sawResult = sawResult || (len(m.ToolResults) == 2 && m.ToolResults[0].Content == "5")
	}
	if !sawCall || !sawResult {
		t.Fatalf("follow-up lost the tool exchange: %+v", msgs)
	}
	_, recs, _ := h.store.History(context.Background(), dm("", "").Scope().ConversationKey(), 10)
	if len(recs) != 4 || len(recs[1].Steps) != 1 || recs[1].Steps[0].Results[0].Content != "5" {
		t.Fatalf("stored turn = %+v", recs)
	}
}

func TestToolTimeoutAndRoundsBound(t *testing.T) {
	t.Run("a hanging tool is cut by its timeout", func(t *testing.T) {
		kit := &toolKit{}
		model := &scriptModel{step: callThen("done", llm.ToolCall{ID: "h", Name: "calc_hang"})}
		h := toolHarness(t, model, kit, func(o *Options) { o.Tools.Timeout = 100 * time.Millisecond })
		if final, _ := h.say(t, dm("wait", "1")); !strings.HasPrefix(final, "done") {
			t.Fatalf("final=%q", final)
		}
		res := model.requests()[1].Messages
		if r := res[len(res)-1].ToolResults[0]; !r.IsError || !strings.Contains(r.Content, "did not answer within 100ms") {
			t.Fatalf("hang result %+v", r)
		}
	})
	t.Run("max_rounds ends a loop that never stops", func(t *testing.T) {
		kit := &toolKit{}
		model := &scriptModel{step: func(n int, _ llm.Request) *llm.Response {
			return &llm.Response{Text: fmt.Sprintf("step %d", n), ToolCalls: []llm.ToolCall{{ID: fmt.Sprint(n), Name: "calc_add", Arguments: json.RawMessage(`{"a":1,"b":1}`)}}}
		}}
		h := toolHarness(t, model, kit, func(o *Options) { o.Tools.MaxRounds = 3 })
		final, _ := h.say(t, dm("loop", "1"))
		if n := len(model.requests()); n != 4 {
			t.Fatalf("%d model calls, want 4", n)
		}
		if !strings.Contains(final, "I stopped after 3 rounds of tool calls") || !strings.Contains(final, "step 4") {
			t.Fatalf("final=%q", final)
		}
	})
}

func TestToolAllowLists(t *testing.T) {
	tests := []struct {
		name  string
		mod   func(*Options)
		roles []string
		dm    bool
		want  string
	}{
		{"default allow-list", nil, nil, false, "calc_add,calc_hang,calc_fail"},
		{"a role adds a tool", nil, []string{"R-ops"}, false, "calc_add,calc_hang,calc_fail,secret_read"},
		{"a channel narrows to one tool", func(o *Options) { o.Tools.Channels = map[string]ToolScope{"C1": {Allow: []string{"calc.add"}}} }, nil, false, "calc_add"},
		{"a workspace turns tools off", func(o *Options) { o.Tools.Workspaces = map[string]ToolScope{"W1": {Allow: []string{}}} }, nil, false, ""},
		{"a DM gets the workspace default, not a channel's", func(o *Options) { o.Tools.Channels = map[string]ToolScope{"D1": {Allow: []string{}}} }, nil, true, "calc_add,calc_hang,calc_fail"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			model := &scriptModel{step: func(int, llm.Request) *llm.Response { return &llm.Response{Text: "ok"} }}
			h := toolHarness(t, model, &toolKit{}, tt.mod)
			m := Message{Platform: "test", Workspace: "W1", Channel: "C1", Thread: "T1", Mentioned: true, ID: "1", Author: User{ID: "U1", Roles: tt.roles}, Text: "hi"}
			if tt.dm {
				m = dm("hi", "1")
				m.Author.Roles = tt.roles
			}
			h.say(t, m)
			var names []string
			for _, tl := range model.requests()[0].Tools {
				names = append(names, tl.Name)
			}
			if got := strings.Join(names, ","); got != tt.want {
				t.Fatalf("tools offered %q, want %q", got, tt.want)
			}
		})
	}
}

func TestResetStopsRunningTools(t *testing.T) {
	kit := &toolKit{hang: make(chan struct{})}
	model := &scriptModel{step: callThen("never", llm.ToolCall{ID: "h", Name: "calc_hang"})}
	h := toolHarness(t, model, kit, func(o *Options) { o.Tools.Timeout = time.Minute })
	out := newOut()
	if err := h.e.HandleMessage(context.Background(), dm("wait", "1"), out); err != nil {
		t.Fatal(err)
	}
	<-kit.hang
	h.run(t, Command{Name: CmdReset, Platform: "test", Workspace: "W1", Channel: "D1", DM: true, User: User{ID: "U1"}})
	if _, failed := out.wait(t); !strings.Contains(failed, "the conversation was reset") {
		t.Fatalf("failed=%q", failed)
	}
	kit.mu.Lock()
	defer kit.mu.Unlock()
	if len(kit.calls) != 1 || kit.calls[0] != "hang cancelled" {
		t.Fatalf("tool calls %v", kit.calls)
	}
}

func TestSourcesLine(t *testing.T) {
	got := sourcesLine([]llm.Citation{{URL: "https://a.example/x", Title: "A [draft]"}, {URL: "https://b.example", Title: ""}})
	if got != "Sources: [A (draft)](https://a.example/x) · [https://b.example](https://b.example)" {
		t.Fatalf("sourcesLine = %q", got)
	}
}

// BenchmarkToolRound measures the tool loop's own cost per round: an
// instant in-process model that calls one instant tool per round for eight
// rounds, then answers (no store, no platform).
func BenchmarkToolRound(b *testing.B) {
	const rounds = 8
	kit := &toolKit{}
	args := json.RawMessage(`{"a":2,"b":3}`)
	model := &scriptModel{}
	st0, err := storage.Open(filepath.Join(b.TempDir(), "b.db"), storage.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer st0.Close()
	e, err := New(Options{Store: st0, Model: model, Defaults: Defaults{Model: "m"}, Logger: slog.New(slog.DiscardHandler), Tools: ToolOptions{Source: kit, MaxRounds: rounds}})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Shutdown(context.Background()) //nolint:errcheck
	tools := kit.Tools()[:1]
	st := &pendingStart{done: make(chan struct{}), reply: nopReply{}}
	close(st.done)
	req := llm.Request{Model: "m", Messages: []llm.Message{{Role: llm.RoleUser, Content: "add"}}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		model.mu.Lock()
		model.calls = model.calls[:0]
		model.mu.Unlock()
		model.step = func(n int, _ llm.Request) *llm.Response {
			if n <= rounds {
				return &llm.Response{ToolCalls: []llm.ToolCall{{ID: fmt.Sprint(n), Name: "calc_add", Arguments: args}}}
			}
			return &llm.Response{Text: "5"}
		}
		if _, err := e.converse(context.Background(), e.log, req, tools, st); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/rounds, "ns/round")
}

type nopReply struct{}

func (nopReply) Append(context.Context, string) error { return nil }
func (nopReply) Finish(context.Context, string) error { return nil }
func (nopReply) Fail(context.Context, string) error   { return nil }

// TestToolsCommandChangesTheChannel: /tools disable in a channel removes the
// tool from what the model is offered there (read with the channel's other
// settings), and /tools lists what is left.
func TestToolsCommandChangesTheChannel(t *testing.T) {
	model := &scriptModel{step: func(int, llm.Request) *llm.Response { return &llm.Response{Text: "ok"} }}
	h := toolHarness(t, model, &toolKit{}, func(o *Options) { o.Tools.Allow = []string{"*"} })
	cmd := Command{Name: CmdTools, Args: "disable calc.hang", Platform: "test", Workspace: "W1", Channel: "C1", User: User{ID: "U1"}}
	if got := h.run(t, cmd); !strings.Contains(got, "Disabled `calc.hang`") {
		t.Fatalf("/tools disable: %q", got)
	}
	cmd.Args = ""
	if got := h.run(t, cmd); strings.Contains(got, "calc.hang") || !strings.Contains(got, "calc.add") {
		t.Fatalf("/tools: %q", got)
	}
	h.say(t, Message{Platform: "test", Workspace: "W1", Channel: "C1", Thread: "T1", Mentioned: true, ID: "1", Author: User{ID: "U1"}, Text: "hi"})
	var names []string
	for _, tl := range model.requests()[0].Tools {
		names = append(names, tl.Name)
	}
	if got := strings.Join(names, ","); got != "calc_add,calc_fail,secret_read" {
		t.Fatalf("tools offered %q after /tools disable", got)
	}
}
