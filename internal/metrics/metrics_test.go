package metrics_test

import (
	"context"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/cometbot/cometbot/bot"
	"github.com/cometbot/cometbot/bot/bottest"
	"github.com/cometbot/cometbot/internal/metrics"
	"github.com/cometbot/cometbot/llm"
	"github.com/cometbot/cometbot/llm/llmtest"
	"github.com/cometbot/cometbot/storage"
)

// out is an Output whose reply reports its end on done.
type out struct{ done chan string }

func (o *out) Start(context.Context) (bot.Reply, error)    { return o, nil }
func (o *out) Append(context.Context, string) error        { return nil }
func (o *out) Finish(_ context.Context, text string) error { o.done <- "ok: " + text; return nil }
func (o *out) Fail(_ context.Context, text string) error   { o.done <- "fail: " + text; return nil }

// newHarness is an engine and gateway client reporting to m.
func newHarness(t *testing.T, m *metrics.Metrics) *bottest.Harness {
	return bottest.New(t, bottest.Options{
		LLMMetrics: m,
		Engine:     func(o *bot.Options) { o.Metrics = m },
	})
}

func newMetrics(h **bottest.Harness) *metrics.Metrics {
	return metrics.New(metrics.Options{NoProcess: true, KnownModel: func(id string) bool {
		_, ok := (*h).Catalog.Lookup(id)
		return ok
	}})
}

// value is the value of the counter or gauge name whose label values,
// in the order of the label names, are lv (0 when there is none).
func value(t *testing.T, m *metrics.Metrics, name string, lv ...string) float64 {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	series:
		for _, s := range f.GetMetric() {
			ls := s.GetLabel()
			if len(ls) != len(lv) {
				continue
			}
			byName := map[string]string{}
			for _, l := range ls {
				byName[l.GetName()] = l.GetValue()
			}
			for i, n := range labelNames[name] {
				if byName[n] != lv[i] {
					continue series
				}
			}
			if c := s.GetCounter(); c != nil {
				return c.GetValue()
			}
			return s.GetGauge().GetValue()
		}
	}
	return 0
}

// labelNames are the label names of each labelled metric, in order.
var labelNames = map[string][]string{
	"cometbot_turns_total":             {"platform", "outcome"},
	"cometbot_gateway_requests_total":  {"format", "code"},
	"cometbot_gateway_retries_total":   {"reason"},
	"cometbot_tokens_total":            {"model", "kind"},
	"cometbot_cost_usd_total":          {"model"},
	"cometbot_platform_requests_total": {"platform", "method", "code"},
}

// histCount is the sample count of the histogram name (its one series).
func histCount(t *testing.T, m *metrics.Metrics, name string) uint64 {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, f := range fams {
		if f.GetName() == name {
			for _, s := range f.GetMetric() {
				n += s.GetHistogram().GetSampleCount()
			}
		}
	}
	return n
}

// labels returns every label value of every cometbot_ series.
func labels(t *testing.T, m *metrics.Metrics) []*dto.LabelPair {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []*dto.LabelPair
	for _, f := range fams {
		for _, s := range f.GetMetric() {
			out = append(out, s.GetLabel()...)
		}
	}
	return out
}

// TestEngineTurn runs one turn through the real engine and llm client
// against the fake gateway (a 429 first, then the answer) and checks that
// every counter moved by exactly what the turn did.
func TestEngineTurn(t *testing.T) {
	var h *bottest.Harness
	m := newMetrics(&h)
	h = newHarness(t, m)
	usage := llm.Usage{InputTokens: 1234, OutputTokens: 567}
	h.Gateway.Enqueue(
		llmtest.Script{Status: 429, Header: http.Header{"Retry-After": {"0"}}, ErrorMessage: "slow down"},
		llmtest.Script{Text: "Hello there, from the fake gateway.", Usage: &usage},
	)
	o := &out{done: make(chan string, 1)}
	msg := bot.Message{Platform: "slack", Workspace: "T9", Channel: "C77777", ID: "1.1", EventID: "Ev1", DM: true,
		Author: bot.User{ID: "U12345", Name: "Ann"}, Text: "hi"}
	if err := h.Engine.HandleMessage(context.Background(), msg, o); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-o.done:
		if !strings.HasPrefix(r, "ok: ") {
			t.Fatalf("reply: %s", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no reply")
	}
	// The turn is counted after it is stored; wait for it.
	turns := func() float64 { return value(t, m, "cometbot_turns_total", "slack", "ok") }
	for deadline := time.Now().Add(5 * time.Second); turns() < 1 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}

	p, ok := h.Catalog.Price(bottest.DefaultModel)
	if !ok {
		t.Fatal("default model not priced")
	}
	wantCost := p.Cost(usage)
	checks := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"cometbot_turns_total", []string{"slack", "ok"}, 1},
		{"cometbot_gateway_requests_total", []string{"chat", "429"}, 1},
		{"cometbot_gateway_requests_total", []string{"chat", "200"}, 1},
		{"cometbot_gateway_retries_total", []string{"rate-limited"}, 1},
		{"cometbot_tokens_total", []string{bottest.DefaultModel, "input"}, 1234},
		{"cometbot_tokens_total", []string{bottest.DefaultModel, "output"}, 567},
		{"cometbot_cost_usd_total", []string{bottest.DefaultModel}, wantCost},
	}
	for _, c := range checks {
		got := value(t, m, c.name, c.labels...)
		if math.Abs(got-c.want) > 1e-6 {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if wantCost <= 0 {
		t.Errorf("cost %v: the test model should be priced", wantCost)
	}
	for _, name := range []string{"cometbot_turns_total", "cometbot_gateway_retries_total"} {
		if n := testutil.CollectAndCount(m.Registry(), name); n != 1 {
			t.Errorf("%s has %d series, want 1", name, n)
		}
	}
	for _, name := range []string{"cometbot_first_token_seconds", "cometbot_first_visible_seconds", "cometbot_turn_seconds"} {
		if n := histCount(t, m, name); n != 1 {
			t.Errorf("%s has %d observations, want 1", name, n)
		}
	}
	if n := histCount(t, m, "cometbot_db_commit_seconds"); n != 0 {
		// The harness store is opened without ObserveCommit: nothing.
		t.Errorf("db commits observed without the hook: %d", n)
	}
	if g := value(t, m, "cometbot_inflight_turns"); g != 0 {
		t.Errorf("inflight = %v after the turn, want 0", g)
	}
	if g := value(t, m, "cometbot_queued_turns"); g != 0 {
		t.Errorf("queued = %v after the turn, want 0", g)
	}
	for _, l := range labels(t, m) {
		if v := l.GetValue(); strings.Contains(v, "U12345") || strings.Contains(v, "C77777") || strings.Contains(v, "T9") {
			t.Errorf("label %s=%q carries an id", l.GetName(), v)
		}
	}
}

// TestUnknownModelIsOther: a model the catalog does not know is counted as
// "other", so the model label stays bounded.
func TestUnknownModelIsOther(t *testing.T) {
	m := metrics.New(metrics.Options{NoProcess: true, KnownModel: func(id string) bool { return id == "known" }})
	m.Usage("known", 10, 5, 0.25)
	m.Usage("user-typed/anything", 7, 3, 0.5)
	if got := value(t, m, "cometbot_tokens_total", "known", "input"); got != 10 {
		t.Errorf("known input = %v", got)
	}
	if got := value(t, m, "cometbot_tokens_total", metrics.OtherModel, "input"); got != 7 {
		t.Errorf("other input = %v", got)
	}
	if got := value(t, m, "cometbot_cost_usd_total", metrics.OtherModel); got != 0.5 {
		t.Errorf("other cost = %v", got)
	}
	m.GatewayRequest("chat", 0)
	if got := value(t, m, "cometbot_gateway_requests_total", "chat", "error"); got != 1 {
		t.Errorf("transport error = %v", got)
	}
}

// TestHandler serves the text format with the process collectors.
func TestHandler(t *testing.T) {
	m := metrics.New(metrics.Options{})
	m.TurnDone("discord", "ok", time.Second)
	m.DBCommit(3 * time.Millisecond)
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	body := string(b)
	for _, want := range []string{
		`cometbot_turns_total{outcome="ok",platform="discord"} 1`,
		`cometbot_turn_seconds_count 1`,
		`cometbot_db_commit_seconds_count 1`,
		"go_goroutines", "process_",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
}

// TestStoreCommits: the store's group committer times every commit.
func TestStoreCommits(t *testing.T) {
	m := metrics.New(metrics.Options{NoProcess: true})
	st, err := storage.Open(filepath.Join(t.TempDir(), "m.db"), storage.Options{NoSync: true, ObserveCommit: m.DBCommit})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for i := range 3 {
		if _, err := st.MarkSeen(context.Background(), "Ev"+strconv.Itoa(i), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if n := histCount(t, m, "cometbot_db_commit_seconds"); n < 1 || n > 3 {
		t.Errorf("%d commits observed for 3 writes, want 1..3", n)
	}
}
