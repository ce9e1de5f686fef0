package llm_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cometbot/cometbot/llm"
	"github.com/cometbot/cometbot/llm/llmtest"
)

const testKey = "sk-test-0123456789abcdef"

func newClient(t *testing.T, s *llmtest.Server, mod ...func(*llm.Config)) *llm.Client {
	t.Helper()
	cfg := llm.Config{BaseURL: s.URL(), APIKey: testKey, StallTimeout: 2 * time.Second, RetryDeadline: 3 * time.Second, RetryBase: 10 * time.Millisecond}
	for _, m := range mod {
		m(&cfg)
	}
	c, err := llm.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// formatCase is one wire format: a model that routes to it by default, the
// path it must hit and a check of the headers it must send.
type formatCase struct {
	name   string
	model  string
	format llm.Format
	path   string
}

var formats = []formatCase{
	{"chat", "gpt-4o-mini", llm.FormatChat, "/v1/chat/completions"},
	{"responses", "gpt-5-mini", llm.FormatResponses, "/v1/responses"},
	{"anthropic", "claude-sonnet-4-5", llm.FormatAnthropic, "/v1/messages"},
	{"gemini", "gemini-2.5-flash", llm.FormatGemini, "/v1beta/models/gemini-2.5-flash:streamGenerateContent"},
}

func checkHeaders(t *testing.T, f llm.Format, rec llmtest.Recorded) {
	t.Helper()
	h := rec.Header
	if got := h.Get("Authorization"); got != "Bearer "+testKey {
		t.Errorf("Authorization = %q", got)
	}
	if got := h.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q", got)
	}
	switch f {
	case llm.FormatAnthropic:
		if got := h.Get("anthropic-version"); got != "2023-06-01" {
			t.Errorf("anthropic-version = %q", got)
		}
		if got := h.Get("x-api-key"); got != testKey {
			t.Errorf("x-api-key = %q", got)
		}
	case llm.FormatGemini:
		if got := h.Get("x-goog-api-key"); got != testKey {
			t.Errorf("x-goog-api-key = %q", got)
		}
	}
}

func TestStreamEveryFormat(t *testing.T) {
	t.Parallel()
	answer := "Bonjour — the \"quick\" brown 🦊\njumps\tover\\the lazy dog. "
	for _, fc := range formats {
		t.Run(fc.name, func(t *testing.T) {
			t.Parallel()
			s := llmtest.New(t)
			c := newClient(t, s)
			temp := 0.3
			s.Enqueue(llmtest.Script{Text: answer, Reasoning: "let me think", Usage: &llm.Usage{InputTokens: 17, OutputTokens: 23}, KeepAlive: true})
			var got, reasoning strings.Builder
			deltas := 0
			resp, err := c.Stream(context.Background(), llm.Request{
				Model:  fc.model,
				System: "be brief",
				Messages: []llm.Message{
					{Role: llm.RoleUser, Content: "hi"},
					{Role: llm.RoleAssistant, Content: "hello"},
					{Role: llm.RoleUser, Content: "say it", Images: []llm.Image{{MIMEType: "image/png", Data: []byte("\x89PNG")}}},
				},
				Temperature:     &temp,
				MaxOutputTokens: 300,
			}, func(d llm.Delta) error {
				deltas++
				got.WriteString(d.Text)
				reasoning.WriteString(d.Reasoning)
				return nil
			})
			if err != nil {
				t.Fatalf("Stream: %v", err)
			}
			if got.String() != answer || resp.Text != answer {
				t.Errorf("text = %q / %q, want %q", got.String(), resp.Text, answer)
			}
			if reasoning.String() != "let me think" || resp.Reasoning != "let me think" {
				t.Errorf("reasoning = %q / %q", reasoning.String(), resp.Reasoning)
			}
			if deltas < 5 {
				t.Errorf("only %d deltas: not streamed", deltas)
			}
			if resp.Usage != (llm.Usage{InputTokens: 17, OutputTokens: 23}) {
				t.Errorf("usage = %+v", resp.Usage)
			}
			if resp.Format != fc.format {
				t.Errorf("format = %q, want %q", resp.Format, fc.format)
			}
			if resp.StopReason == "" {
				t.Errorf("no stop reason")
			}
			reqs := s.Requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests", len(reqs))
			}
			rec := reqs[0]
			if rec.Path != fc.path {
				t.Errorf("path = %q, want %q", rec.Path, fc.path)
			}
			if fc.format == llm.FormatGemini && rec.Query.Get("alt") != "sse" {
				t.Errorf("gemini query = %v, want alt=sse", rec.Query)
			}
			checkHeaders(t, fc.format, rec)
			p := rec.MustDecode()
			if p.Model != fc.model || !p.Stream || p.System != "be brief" {
				t.Errorf("decoded = model %q stream %v system %q", p.Model, p.Stream, p.System)
			}
			if len(p.Messages) != 3 || p.LastUser() != "say it" || p.Messages[1].Role != llm.RoleAssistant {
				t.Errorf("messages = %+v", p.Messages)
			}
			if imgs := p.Messages[2].Images; len(imgs) != 1 || string(imgs[0].Data) != "\x89PNG" || imgs[0].MIMEType != "image/png" {
				t.Errorf("image = %+v", imgs)
			}
			if p.Params["temperature"] != 0.3 || p.Params["max_tokens"] != float64(300) {
				t.Errorf("params = %v", p.Params)
			}
			if fc.format == llm.FormatChat && !p.IncludeUsage {
				t.Errorf("chat stream without stream_options.include_usage")
			}
		})
	}
}

func TestCompleteEveryFormat(t *testing.T) {
	t.Parallel()
	for _, fc := range formats {
		t.Run(fc.name, func(t *testing.T) {
			t.Parallel()
			s := llmtest.New(t)
			c := newClient(t, s)
			s.Enqueue(llmtest.Script{Text: "whole answer", Reasoning: "hmm", Usage: &llm.Usage{InputTokens: 5, OutputTokens: 7}})
			resp, err := c.Complete(context.Background(), llm.Request{Model: fc.model, Messages: []llm.Message{{Role: llm.RoleUser, Content: "q"}}})
			if err != nil {
				t.Fatal(err)
			}
			if resp.Text != "whole answer" || resp.Reasoning != "hmm" || resp.Usage != (llm.Usage{InputTokens: 5, OutputTokens: 7}) {
				t.Errorf("resp = %+v", resp)
			}
			rec, _ := s.LastRequest()
			p := rec.MustDecode()
			if p.Stream {
				t.Errorf("non-streaming call sent stream=true")
			}
			if fc.format == llm.FormatGemini && !strings.HasSuffix(rec.Path, ":generateContent") {
				t.Errorf("gemini path = %s", rec.Path)
			}
			checkHeaders(t, fc.format, rec)
		})
	}
}

func TestEchoAndDefaultReply(t *testing.T) {
	t.Parallel()
	s := llmtest.New(t, llmtest.Options{Echo: true})
	c := newClient(t, s)
	for _, fc := range formats {
		resp, err := c.Stream(context.Background(), llm.Request{Model: fc.model, Messages: []llm.Message{
			{Role: llm.RoleUser, Content: "first"}, {Role: llm.RoleAssistant, Content: "x"}, {Role: llm.RoleUser, Content: "second one"}}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Text != "echo: second one" {
			t.Errorf("%s: echo = %q", fc.name, resp.Text)
		}
	}
	s.SetReply("fixed")
	resp, err := c.Stream(context.Background(), llm.Request{Model: "gpt-4o", Messages: []llm.Message{{Role: llm.RoleUser, Content: "q"}}}, nil)
	if err != nil || resp.Text != "fixed" {
		t.Fatalf("reply = %v %v", resp, err)
	}
}

func TestMidStreamErrorEveryFormat(t *testing.T) {
	t.Parallel()
	for _, fc := range formats {
		t.Run(fc.name, func(t *testing.T) {
			t.Parallel()
			s := llmtest.New(t)
			c := newClient(t, s)
			s.Enqueue(llmtest.Script{Text: "one two three four", ErrorAfter: 2, MidStreamError: "upstream exploded"})
			var got strings.Builder
			resp, err := c.Stream(context.Background(), llm.Request{Model: fc.model, Messages: []llm.Message{{Role: llm.RoleUser, Content: "q"}}},
				func(d llm.Delta) error { got.WriteString(d.Text); return nil })
			var e *llm.Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v, want *llm.Error", err)
			}
			if !e.Started() || !strings.Contains(e.Message, "upstream exploded") {
				t.Errorf("err = %v (started %v)", e, e.Started())
			}
			if got.String() != "one two" || resp == nil || resp.Text != "one two" {
				t.Errorf("partial = %q / %+v", got.String(), resp)
			}
			if s.Calls() != 1 {
				t.Errorf("retried after text started: %d calls", s.Calls())
			}
		})
	}
}

func TestMidStreamErrorBeforeTextIsRetried(t *testing.T) {
	t.Parallel()
	for _, fc := range formats {
		t.Run(fc.name, func(t *testing.T) {
			t.Parallel()
			s := llmtest.New(t)
			c := newClient(t, s)
			s.Enqueue(llmtest.Script{Text: "x", ErrorAfter: 0, MidStreamError: "overloaded"}, llmtest.Script{Text: "fine"})
			resp, err := c.Stream(context.Background(), llm.Request{Model: fc.model, Messages: []llm.Message{{Role: llm.RoleUser, Content: "q"}}}, nil)
			if err != nil || resp.Text != "fine" {
				t.Fatalf("resp %+v err %v", resp, err)
			}
			if s.Calls() != 2 {
				t.Errorf("calls = %d, want 2", s.Calls())
			}
		})
	}
}

func TestStallEveryFormat(t *testing.T) {
	t.Parallel()
	for _, fc := range formats {
		t.Run(fc.name, func(t *testing.T) {
			t.Parallel()
			s := llmtest.New(t)
			c := newClient(t, s, func(cfg *llm.Config) { cfg.StallTimeout = 200 * time.Millisecond })
			s.Enqueue(llmtest.Script{Text: "a b c d", ErrorAfter: 2, Stall: true})
			start := time.Now()
			var got strings.Builder
			_, err := c.Stream(context.Background(), llm.Request{Model: fc.model, Messages: []llm.Message{{Role: llm.RoleUser, Content: "q"}}},
				func(d llm.Delta) error { got.WriteString(d.Text); return nil })
			if !errors.Is(err, llm.ErrTimeout) {
				t.Fatalf("err = %v, want ErrTimeout", err)
			}
			if el := time.Since(start); el > 2*time.Second {
				t.Errorf("stall detected after %v", el)
			}
			if got.String() != "a b" {
				t.Errorf("partial = %q", got.String())
			}
			if llm.UserMessage(err) == "" || strings.Contains(llm.UserMessage(err), "200ms") {
				t.Errorf("user message = %q", llm.UserMessage(err))
			}
		})
	}
}

func TestCancelEveryFormat(t *testing.T) {
	t.Parallel()
	for _, fc := range formats {
		t.Run(fc.name, func(t *testing.T) {
			t.Parallel()
			s := llmtest.New(t, llmtest.Options{TokensPerSecond: 50})
			c := newClient(t, s)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			n := 0
			_, err := c.Stream(ctx, llm.Request{Model: fc.model, Messages: []llm.Message{{Role: llm.RoleUser, Content: "q"}}},
				func(d llm.Delta) error {
					if n++; n == 2 {
						cancel()
					}
					return nil
				})
			if !errors.Is(err, llm.ErrCancelled) || !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want ErrCancelled wrapping context.Canceled", err)
			}
			if llm.UserMessage(err) != "The request was cancelled." {
				t.Errorf("user message = %q", llm.UserMessage(err))
			}
		})
	}
}

func TestOnDeltaErrorAborts(t *testing.T) {
	t.Parallel()
	s := llmtest.New(t)
	c := newClient(t, s)
	stop := errors.New("enough")
	_, err := c.Stream(context.Background(), llm.Request{Model: "gpt-4o", Messages: []llm.Message{{Role: llm.RoleUser, Content: "q"}}},
		func(llm.Delta) error { return stop })
	if err != stop {
		t.Fatalf("err = %v, want the onDelta error as is", err)
	}
}

func TestConcurrencyLimitHeld(t *testing.T) {
	t.Parallel()
	s := llmtest.New(t, llmtest.Options{TTFT: 20 * time.Millisecond, TokensPerSecond: 500})
	c := newClient(t, s, func(cfg *llm.Config) { cfg.MaxConcurrency = 4 })
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Go(func() {
			_, err := c.Stream(context.Background(), llm.Request{Model: "gpt-4o-mini", Messages: []llm.Message{{Role: llm.RoleUser, Content: "q"}}}, nil)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if s.MaxInFlight() > 4 || s.MaxInFlight() < 2 {
		t.Errorf("server saw %d in flight, limit 4", s.MaxInFlight())
	}
	if _, _, peak := c.ConcurrencyStats(); peak > 4 {
		t.Errorf("client peak %d", peak)
	}
	if s.Calls() != 50 {
		t.Errorf("calls = %d", s.Calls())
	}
}
