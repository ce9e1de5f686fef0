package discord

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cometbot/cometbot/adapters/discord/discordtest"
	"github.com/cometbot/cometbot/bot"
	"github.com/cometbot/cometbot/bot/bottest"
	"github.com/cometbot/cometbot/internal/metrics"
	"github.com/cometbot/cometbot/llm/llmtest"
)

func TestRouteLabel(t *testing.T) {
	for path, want := range map[string]string{
		"/channels/112233445566778899/messages":                         "/channels/:id/messages",
		"/channels/1122/messages/3344?wait=true":                        "/channels/:id/messages/:id",
		"/webhooks/99887766/aW50ZXJhY3Rpb24tdG9rZW4/messages/@original": "/webhooks/:id/:id/messages/@original",
		"/channels/1/messages/2/reactions/%F0%9F%91%8D/@me":             "/channels/:id/messages/:id/reactions/:id/@me",
		"/gateway/bot": "/gateway/bot",
	} {
		if got := routeLabel(path); got != want {
			t.Errorf("routeLabel(%q) = %q, want %q", path, got, want)
		}
	}
}

// TestE2EMetrics: a reply whose edit fake Discord answers 429 shows the 429
// under its route in cometbot_platform_requests_total, the turn is counted
// once, and no label carries an id.
func TestE2EMetrics(t *testing.T) {
	t.Parallel()
	m := metrics.New(metrics.Options{NoProcess: true})
	answer := strings.TrimSpace(strings.Repeat("streaming words arrive one by one ", 12))
	h := bottest.New(t, bottest.Options{
		Gateway:    llmtest.Options{Reply: answer, TTFT: 20 * time.Millisecond, TokensPerSecond: 60},
		LLMMetrics: m,
		Engine:     func(o *bot.Options) { o.Metrics = m },
	})
	e := start(t, h.Engine, envOpts{config: func(c *Config) { c.OpenThreads = false; c.Metrics = m }})
	e.srv.RateLimitNext("PATCH", "/channels/"+general+"/messages/", 300*time.Millisecond)
	e.srv.UserMessage(discordtest.Post{ChannelID: general, Content: mention(botID) + " go"})
	e.waitFor("complete reply", func() bool {
		ms := e.srv.BotMessages(general)
		return len(ms) == 1 && ms[0].Content == answer
	})
	body := func() string {
		rec := httptest.NewRecorder()
		m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		return rec.Body.String()
	}
	e.waitFor("turn counted", func() bool {
		return strings.Contains(body(), `cometbot_turns_total{outcome="ok",platform="discord"} 1`+"\n")
	})
	b := body()
	for _, want := range []string{
		`cometbot_platform_requests_total{code="429",method="PATCH /channels/:id/messages/:id",platform="discord"} 1` + "\n",
		`cometbot_platform_requests_total{code="200",method="POST /channels/:id/messages",platform="discord"}`,
		`cometbot_gateway_requests_total{code="200",format="chat"} 1` + "\n",
		`cometbot_first_visible_seconds_count 1` + "\n",
	} {
		if !strings.Contains(b, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
	if !strings.Contains(b, `cometbot_platform_wait_seconds_count{platform="discord"}`) {
		t.Error("no pacing waits observed")
	}
	for _, line := range strings.Split(b, "\n") {
		if strings.HasPrefix(line, "cometbot_") && (strings.Contains(line, general) || strings.Contains(line, botID)) {
			t.Errorf("a label carries an id: %s", line)
		}
	}
}
