package slack

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cometbot/cometbot/bot"
	"github.com/cometbot/cometbot/internal/metrics"
	"github.com/cometbot/cometbot/llm/llmtest"
)

func TestApiMethodLabel(t *testing.T) {
	api := "http://127.0.0.1:1/api/"
	for url, want := range map[string]string{
		"http://127.0.0.1:1/api/chat.postMessage":     "chat.postMessage",
		"http://127.0.0.1:1/api/chat.update?x=1":      "chat.update",
		"https://files.slack.com/upload/v1/ABC123xyz": "other",
		"http://127.0.0.1:1/api/../U123/secret":       "other",
		"http://127.0.0.1:1/api/":                     "other",
	} {
		req, err := newGet(url)
		if err != nil {
			t.Fatal(err)
		}
		if got := apiMethod(api, req); got != want {
			t.Errorf("apiMethod(%s) = %q, want %q", url, got, want)
		}
	}
}

// TestMetricsEndToEnd: a turn through fake Slack, the real adapter and
// engine and the fake gateway, with one chat.update answered 429, moves
// the counters by exactly what happened, and no label carries an id.
func TestMetricsEndToEnd(t *testing.T) {
	t.Parallel()
	m := metrics.New(metrics.Options{NoProcess: true})
	answer := strings.TrimSpace(strings.Repeat("streaming words arrive slowly here ", 8))
	e := newEnv(t, envOptions{
		gateway: llmtest.Options{Reply: answer, TokensPerSecond: 40},
		cfg:     func(c *Config) { c.Metrics = m },
		engine:  func(o *bot.Options) { o.Metrics = m },
	})
	e.slack.RateLimitNext("chat.update", time.Second)
	ev := e.slack.Mention("U1", "C1", "<@UBOT> go", "")
	e.slack.SendEvent(ev)
	e.waitThread("C1", ev.TS, []string{answer})
	e.waitFor("turn counted", 5*time.Second, func() bool {
		return scrape(t, m, "cometbot_turns_total", `outcome="ok",platform="slack"`) == 1
	})

	limited := 0
	for _, c := range e.slack.Calls("chat.update") {
		if c.Status == 429 {
			limited++
		}
	}
	if limited != 1 {
		t.Fatalf("fake Slack answered %d chat.update calls with 429, want 1", limited)
	}
	if got := scrape(t, m, "cometbot_platform_requests_total", `code="429",method="chat.update",platform="slack"`); got != 1 {
		t.Errorf("chat.update 429s counted = %v, want 1", got)
	}
	posts := len(e.slack.Calls("chat.postMessage"))
	if got := scrape(t, m, "cometbot_platform_requests_total", `code="200",method="chat.postMessage",platform="slack"`); int(got) != posts {
		t.Errorf("chat.postMessage counted = %v, fake Slack saw %d", got, posts)
	}
	if got := scrape(t, m, "cometbot_platform_wait_seconds_count", `platform="slack"`); got < 1 {
		t.Errorf("no pacing waits observed")
	}
	if got := scrape(t, m, "cometbot_first_visible_seconds_count", ""); got != 1 {
		t.Errorf("first visible observations = %v, want 1", got)
	}
	body := scrapeText(t, m)
	for _, id := range []string{"U1", "C1", "UBOT", ev.TS} {
		for _, line := range strings.Split(body, "\n") {
			if strings.HasPrefix(line, "cometbot_") && strings.Contains(line, `"`+id+`"`) {
				t.Errorf("a label carries the id %s: %s", id, line)
			}
		}
	}
}

func newGet(url string) (*http.Request, error) { return http.NewRequest(http.MethodGet, url, nil) }

// scrapeText is what GET /metrics serves.
func scrapeText(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	return rec.Body.String()
}

// scrape is the value of the series name{labels} in the scrape (labels in
// the text format's sorted order; "" for none), 0 when absent.
func scrape(t *testing.T, m *metrics.Metrics, name, labels string) float64 {
	t.Helper()
	series := name
	if labels != "" {
		series += "{" + labels + "}"
	}
	for _, line := range strings.Split(scrapeText(t, m), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	return 0
}
