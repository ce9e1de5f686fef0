package llm_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cometbot/cometbot/llm"
	"github.com/cometbot/cometbot/llm/llmtest"
)

func TestStallBeforeHeadersAndDuringTTFT(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		script llmtest.Script
		stream bool
	}{
		{"no headers (non-streaming)", llmtest.Script{Stall: true}, false},
		{"headers then nothing", llmtest.Script{Stall: true, ErrorAfter: 0}, true},
		{"slow first token", llmtest.Script{TTFT: 10 * time.Second}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := llmtest.New(t)
			c := newClient(t, s, func(cfg *llm.Config) { cfg.StallTimeout = 150 * time.Millisecond })
			s.Enqueue(tt.script)
			start := time.Now()
			var err error
			if tt.stream {
				_, err = c.Stream(context.Background(), llm.Request{Model: "gpt-4o", Messages: q}, nil)
			} else {
				_, err = c.Complete(context.Background(), llm.Request{Model: "gpt-4o", Messages: q})
			}
			if !errors.Is(err, llm.ErrTimeout) {
				t.Fatalf("err = %v", err)
			}
			if el := time.Since(start); el > time.Second {
				t.Errorf("took %v", el)
			}
			if s.Calls() != 1 {
				t.Errorf("a stall was retried: %d calls", s.Calls())
			}
		})
	}
}

func TestKeepAlivesAreNotProgressForText(t *testing.T) {
	t.Parallel()
	s := llmtest.New(t)
	c := newClient(t, s, func(cfg *llm.Config) { cfg.StallTimeout = time.Second })
	s.Enqueue(llmtest.Script{Text: "slow but alive", TokensPerSecond: 20, KeepAlive: true, CRLF: true})
	resp, err := c.Stream(context.Background(), llm.Request{Model: "gpt-4o", Messages: q}, nil)
	if err != nil || resp.Text != "slow but alive" {
		t.Fatalf("resp %+v err %v", resp, err)
	}
}

func TestCallerDeadlineIsTimeout(t *testing.T) {
	t.Parallel()
	s := llmtest.New(t)
	c := newClient(t, s)
	s.Enqueue(llmtest.Script{TTFT: 5 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := c.Stream(ctx, llm.Request{Model: "gpt-4o", Messages: q}, nil)
	if !errors.Is(err, llm.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
}

func TestCancelWhileWaitingForRetry(t *testing.T) {
	t.Parallel()
	s := llmtest.New(t)
	c := newClient(t, s, func(cfg *llm.Config) { cfg.RetryDeadline = 10 * time.Second })
	s.Enqueue(llmtest.Script{Status: 429, Header: http.Header{"Retry-After": {"5"}}})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Stream(ctx, llm.Request{Model: "gpt-4o", Messages: q}, nil)
	if !errors.Is(err, llm.ErrTimeout) || time.Since(start) > time.Second {
		t.Fatalf("err = %v after %v", err, time.Since(start))
	}
}

func TestRateLimitLowersConcurrency(t *testing.T) {
	t.Parallel()
	s := llmtest.New(t)
	c := newClient(t, s, func(cfg *llm.Config) { cfg.MaxConcurrency = 8 })
	s.Enqueue(llmtest.Script{Status: 429, Header: http.Header{"Retry-After": {"0.01"}}})
	if _, err := c.Stream(context.Background(), llm.Request{Model: "gpt-4o", Messages: q}, nil); err != nil {
		t.Fatal(err)
	}
	if limit, _, _ := c.ConcurrencyStats(); limit != 4 {
		t.Errorf("limit after a 429 = %d, want 4", limit)
	}
}

func TestManyConcurrentStreams(t *testing.T) {
	t.Parallel()
	s := llmtest.New(t, llmtest.Options{TTFT: 30 * time.Millisecond, TokensPerSecond: 400, Echo: true, DisableRecording: true})
	c := newClient(t, s, func(cfg *llm.Config) {
		cfg.MaxConcurrency = 300
		cfg.StallTimeout = 20 * time.Second // CI runs this on 2 busy cores with -race
	})
	const n = 300
	var wg sync.WaitGroup
	errs := make(chan error, n)
	start := time.Now()
	for i := range n {
		wg.Go(func() {
			msg := strings.Repeat("word ", 20) + string(rune('a'+i%26))
			resp, err := c.Stream(context.Background(), llm.Request{Model: formats[i%4].model, Messages: []llm.Message{{Role: llm.RoleUser, Content: msg}}}, nil)
			if err == nil && resp.Text != "echo: "+msg {
				err = errors.New("wrong answer: " + resp.Text)
			}
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
	if el := time.Since(start); el > 10*time.Second {
		t.Errorf("%d streams took %v", n, el)
	}
	if s.MaxInFlight() < 30 {
		t.Errorf("only %d streams ran at once", s.MaxInFlight())
	}
	if len(s.Requests()) != 0 {
		t.Errorf("recording not disabled")
	}
}

func TestGatewayIgnoringStreamFlag(t *testing.T) {
	t.Parallel()
	s := llmtest.New(t)
	c := newClient(t, s)
	body := `{"id":"x","object":"chat.completion","model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"whole"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1}}`
	s.Enqueue(llmtest.Script{Body: body})
	var got string
	resp, err := c.Stream(context.Background(), llm.Request{Model: "gpt-4o", Messages: q}, func(d llm.Delta) error { got += d.Text; return nil })
	if err != nil || got != "whole" || resp.Usage.OutputTokens != 1 {
		t.Fatalf("resp %+v err %v got %q", resp, err, got)
	}
	// A 200 carrying a JSON error is an error.
	s.Enqueue(llmtest.Script{Body: `{"error":{"message":"model overloaded","type":"server_error"}}`}, llmtest.Script{Text: "ok"})
	resp, err = c.Stream(context.Background(), llm.Request{Model: "gpt-4o", Messages: q}, nil)
	if err != nil || resp.Text != "ok" || s.Calls() != 3 {
		t.Fatalf("resp %+v err %v calls %d", resp, err, s.Calls())
	}
}

func TestDataOnlyStreams(t *testing.T) {
	t.Parallel()
	for _, fc := range formats {
		s := llmtest.New(t)
		c := newClient(t, s)
		s.Enqueue(llmtest.Script{Text: "no event lines here", DataOnly: true, CRLF: true, KeepAlive: true})
		resp, err := c.Stream(context.Background(), llm.Request{Model: fc.model, Messages: q}, nil)
		if err != nil || resp.Text != "no event lines here" {
			t.Errorf("%s: resp %+v err %v", fc.name, resp, err)
		}
	}
}

func BenchmarkStreamLoopback(b *testing.B) {
	s := llmtest.NewServer(llmtest.Options{Reply: strings.Repeat("lorem ipsum ", 100), DisableRecording: true})
	defer s.Close()
	for _, fc := range formats {
		b.Run(fc.name, func(b *testing.B) {
			c, _ := llm.NewClient(llm.Config{BaseURL: s.URL(), APIKey: testKey})
			b.ReportAllocs()
			deltas := 0
			for b.Loop() {
				_, err := c.Stream(context.Background(), llm.Request{Model: fc.model, Messages: q}, func(llm.Delta) error { deltas++; return nil })
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(deltas)/b.Elapsed().Seconds(), "deltas/s")
		})
	}
}

func BenchmarkCatalog(b *testing.B) {
	cat := llm.NewCatalog(llm.CatalogConfig{})
	cat.SetModels(llmtest.GenerateModels(320))
	b.Run("Lookup", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := cat.Lookup("Claude-Sonnet-4-5"); !ok {
				b.Fatal("miss")
			}
		}
	})
	b.Run("Search", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if len(cat.Search("sonnet", 25)) == 0 {
				b.Fatal("none")
			}
		}
	})
	b.Run("SearchFuzzy", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			cat.Search("gmn flsh", 25)
		}
	})
	b.Run("Suggest", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if len(cat.Suggest("claude-sonet-4-5", 3)) == 0 {
				b.Fatal("none")
			}
		}
	})
	doc := llmtest.CatalogJSON(llmtest.GenerateModels(320))
	b.Run("Parse320", func(b *testing.B) {
		b.SetBytes(int64(len(doc)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := llm.ParseCatalog(doc); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestEventStreamWithWrongContentType(t *testing.T) {
	t.Parallel()
	s := llmtest.New(t)
	c := newClient(t, s)
	s.Enqueue(llmtest.Script{ContentType: "application/json", Body: "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\ndata: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n"})
	resp, err := c.Stream(context.Background(), llm.Request{Model: "gpt-4o", Messages: q}, nil)
	if err != nil || resp.Text != "hi" {
		t.Fatalf("resp %+v err %v", resp, err)
	}
}

func TestConfigNeverPrintsKey(t *testing.T) {
	t.Parallel()
	cfg := llm.Config{APIKey: testKey, BaseURL: "https://x/v1"}
	var logs strings.Builder
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("config", "cfg", cfg)
	for _, s := range []string{fmt.Sprint(cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg), logs.String()} {
		if strings.Contains(s, testKey) {
			t.Errorf("key printed: %s", s)
		}
	}
}
