package slack

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/cometbot/cometbot/adapters/slack/slacktest"
	"github.com/cometbot/cometbot/llm/llmtest"
)

// post sends a signed request to the adapter's HTTP handler.
func (e *env) post(path, contentType string, body []byte, secret string, ts time.Time, header http.Header) (int, string) {
	e.t.Helper()
	req, err := slacktest.NewSignedRequest(context.Background(), e.srv.URL+path, secret, contentType, body, ts)
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestHTTPEventsAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{http: true, gateway: llmtest.Options{Echo: true}})
	if !e.a.Ready() {
		t.Fatal("not ready after auth.test")
	}
	const form = "application/x-www-form-urlencoded"
	const js = "application/json"
	now := time.Now()

	t.Run("url_verification", func(t *testing.T) {
		code, body := e.post("/slack/events", js, []byte(`{"token":"x","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}`), testSecret, now, nil)
		if code != 200 || body != "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" {
			t.Fatalf("url_verification: %d %q", code, body)
		}
	})

	t.Run("forged and stale requests are refused", func(t *testing.T) {
		ev := e.slack.Mention("U1", "C1", "<@UBOT> forged", "")
		body, _ := e.slack.EventCallback(ev)
		cases := []struct {
			name   string
			secret string
			ts     time.Time
			mutate func(*http.Request)
		}{
			{"wrong secret", "not-the-secret", now, nil},
			{"stale timestamp", testSecret, now.Add(-6 * time.Minute), nil},
			{"future timestamp", testSecret, now.Add(6 * time.Minute), nil},
		}
		for _, c := range cases {
			if code, _ := e.post("/slack/events", js, body, c.secret, c.ts, nil); code != http.StatusUnauthorized {
				t.Errorf("%s: status %d, want 401", c.name, code)
			}
		}
		// Tampered body with a signature of the original.
		req, _ := slacktest.NewSignedRequest(context.Background(), e.srv.URL+"/slack/events", testSecret, js, body, now)
		req.Body = io.NopCloser(strings.NewReader(strings.Replace(string(body), "forged", "tampered", 1)))
		req.ContentLength = -1
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("tampered body: status %d", resp.StatusCode)
		}
		// Unsigned slash commands and interactions are refused too.
		unsigned, _ := http.Post(e.srv.URL+"/slack/commands", form, strings.NewReader("command=%2Fmodel&text=list"))
		unsigned.Body.Close()
		if unsigned.StatusCode != http.StatusUnauthorized {
			t.Errorf("unsigned command: status %d", unsigned.StatusCode)
		}
		e.barrier("C1")
		if n := e.prompts(); n != 0 {
			t.Fatalf("model calls = %d after refused requests", n)
		}
		if n := len(e.slack.Calls("chat.postMessage", "assistant.threads.setStatus", "users.info")); n != 0 {
			t.Fatalf("%d Slack calls after refused requests", n)
		}
	})

	t.Run("valid event is answered once", func(t *testing.T) {
		ev := e.slack.Mention("U1", "C1", "<@UBOT> over http", "")
		body, _ := e.slack.EventCallback(ev)
		start := time.Now()
		code, _ := e.post("/slack/events", js, body, testSecret, time.Now(), nil)
		if code != 200 {
			t.Fatalf("status %d", code)
		}
		if el := time.Since(start); el > 3*time.Second {
			t.Errorf("ack took %v, beyond Slack's 3 s", el)
		}
		e.waitThread("C1", ev.TS, []string{"echo: over http"})
		// Slack's retry of the same event.
		code, _ = e.post("/slack/events", js, body, testSecret, time.Now(), http.Header{"X-Slack-Retry-Num": {"1"}, "X-Slack-Retry-Reason": {"http_timeout"}})
		if code != 200 {
			t.Fatalf("retry status %d", code)
		}
		e.barrier("C1")
		if n := e.prompts(); n != 1 {
			t.Fatalf("model calls = %d, want 1", n)
		}
	})

	t.Run("slash command", func(t *testing.T) {
		cmd := e.slack.SlashCommand(slack.SlashCommand{Command: "/model", Text: "list", UserID: "U1", UserName: "alice", ChannelID: "C1"})
		code, body := e.post("/slack/commands", form, []byte(slacktest.SlashCommandForm(cmd).Encode()), testSecret, time.Now(), nil)
		var m ackMessage
		if err := json.Unmarshal([]byte(body), &m); err != nil || code != 200 {
			t.Fatalf("status %d body %q: %v", code, body, err)
		}
		if m.ResponseType != "ephemeral" || !strings.Contains(m.Text, "gpt-4o-mini") {
			t.Fatalf("/model list over HTTP = %+v", m)
		}
	})

	t.Run("ssl_check", func(t *testing.T) {
		// Slack checks a slash command's request URL with a form POST that
		// carries ssl_check=1 and a token instead of a command.
		body := []byte("ssl_check=1&token=gIkuvaNzQIHg97ATvDxqgjtO")
		for _, c := range []struct {
			name   string
			signed bool
		}{{"signed", true}, {"unsigned", false}} {
			var code int
			var got string
			if c.signed {
				code, got = e.post("/slack/commands", form, body, testSecret, time.Now(), nil)
			} else {
				resp, err := http.Post(e.srv.URL+"/slack/commands", form, strings.NewReader(string(body)))
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				code, got = resp.StatusCode, string(b)
			}
			if code != http.StatusOK || got != "" {
				t.Errorf("%s ssl_check: %d %q, want a plain 200", c.name, code, got)
			}
		}
		if r := e.slack.Responses(); len(r) != 0 {
			t.Errorf("ssl_check was answered like a command: %+v", r)
		}
	})

	t.Run("interactivity", func(t *testing.T) {
		f, err := slacktest.InteractionForm(map[string]any{
			"type": "block_suggestion", "action_id": modelActionID, "block_id": "cometbot_model", "value": "gpt",
			"user": map[string]any{"id": "U1"}, "team": map[string]any{"id": "T1"}, "channel": map[string]any{"id": "C1"},
		})
		if err != nil {
			t.Fatal(err)
		}
		code, body := e.post("/slack/interactivity", form, []byte(f.Encode()), testSecret, time.Now(), nil)
		var m ackMessage
		if err := json.Unmarshal([]byte(body), &m); err != nil || code != 200 || len(m.Options) == 0 {
			t.Fatalf("block_suggestion over HTTP: %d %q", code, body)
		}
		for _, o := range m.Options {
			if !strings.Contains(o.Value, "gpt") {
				t.Errorf("option %q does not match the query", o.Value)
			}
		}
	})
}

func TestHTTPHandlerNeedsRun(t *testing.T) {
	t.Parallel()
	fake := slacktest.Start(t, slacktest.Options{})
	a, err := New(Config{BotToken: fake.Options().BotToken, APIURL: fake.APIURL(), SigningSecret: testSecret, Logger: testLogger()}, &nopEngine{})
	if err != nil {
		t.Fatal(err)
	}
	srv := newHTTPTestServer(t, a.HTTPHandler())
	body, _ := fake.EventCallback(fake.Mention("U1", "C1", "<@UBOT> hi", ""))
	req, _ := slacktest.NewSignedRequest(context.Background(), srv+"/slack/events", testSecret, "application/json", body, time.Now())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503 so that Slack retries", resp.StatusCode)
	}
	if a.Ready() {
		t.Fatal("ready without Run")
	}
}

// TestHTTPRefusalsAreLoggedOncePerInterval: a flood of forged and oversized
// requests is refused every time but logged once per kind per interval.
func TestHTTPRefusalsAreLoggedOncePerInterval(t *testing.T) {
	t.Parallel()
	fake := slacktest.Start(t, slacktest.Options{})
	var logs lockedLog
	a, err := New(Config{BotToken: fake.Options().BotToken, APIURL: fake.APIURL(), SigningSecret: testSecret,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))}, &nopEngine{})
	if err != nil {
		t.Fatal(err)
	}
	srv := newHTTPTestServer(t, a.HTTPHandler())
	send := func(secret string, body []byte) int {
		req, _ := slacktest.NewSignedRequest(context.Background(), srv+"/slack/events", secret, "application/json", body, time.Now())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for range 50 {
		if code := send("not-the-secret", []byte(`{"type":"event_callback"}`)); code != http.StatusUnauthorized {
			t.Fatalf("forged request: %d", code)
		}
		if code := send(testSecret, []byte(strings.Repeat("x", maxRequestBytes+1))); code != http.StatusRequestEntityTooLarge {
			t.Fatalf("oversized request: %d", code)
		}
	}
	out := logs.String()
	if n := strings.Count(out, "bad or stale signature"); n != 1 {
		t.Errorf("%d lines for 50 forged requests, want 1:\n%s", n, out)
	}
	if n := strings.Count(out, "refused: body too large"); n != 1 {
		t.Errorf("%d lines for 50 oversized requests, want 1:\n%s", n, out)
	}
}

// lockedLog is a log sink safe for concurrent writers.
type lockedLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
