package llm_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cometbot/cometbot/llm"
	"github.com/cometbot/cometbot/llm/llmtest"
)

// A stream cut before the format's stop reason is an ErrIncomplete carrying
// the partial text and whatever usage the gateway had reported.
func TestCutStreamIsIncomplete(t *testing.T) {
	t.Parallel()
	usage := &llm.Usage{InputTokens: 7, OutputTokens: 3}
	tests := []struct {
		name      string
		script    llmtest.Script
		wantUsage bool // the gateway reported usage before the cut
	}{
		{"body ends before the end", llmtest.Script{Truncate: true}, false},
		{"end marker without a stop reason", llmtest.Script{NoStopReason: true}, true},
	}
	for _, fc := range formats {
		for _, tt := range tests {
			t.Run(fc.name+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				s := llmtest.New(t)
				c := newClient(t, s)
				sc := tt.script
				sc.Chunks, sc.Usage = []string{"partial ", "answer"}, usage
				s.Enqueue(sc)
				resp, err := c.Stream(context.Background(), llm.Request{Model: fc.model, Messages: q}, nil)
				if !errors.Is(err, llm.ErrIncomplete) {
					t.Fatalf("err = %v, want ErrIncomplete", err)
				}
				var e *llm.Error
				if !errors.As(err, &e) || e.Kind != llm.KindIncomplete || !e.Started() || e.Partial == nil {
					t.Fatalf("err = %#v", err)
				}
				if resp != e.Partial || resp.Text != "partial answer" || resp.Format != fc.format {
					t.Errorf("partial = %+v (returned %p, in error %p)", e.Partial, resp, e.Partial)
				}
				if tt.wantUsage && resp.Usage != *usage {
					t.Errorf("usage = %+v, want %+v", resp.Usage, *usage)
				}
				if s.Calls() != 1 {
					t.Errorf("retried after text: %d calls", s.Calls())
				}
				if llm.UserMessage(err) == llm.UserMessage(errors.New("x")) {
					t.Errorf("generic user message for a cut answer")
				}
			})
		}
	}
}

func TestResponsesIncompleteForOtherReasonsIsIncomplete(t *testing.T) {
	t.Parallel()
	s := llmtest.New(t)
	c := newClient(t, s)
	s.Enqueue(llmtest.Script{Text: "half", StopReason: "server_shutdown", Usage: &llm.Usage{InputTokens: 5, OutputTokens: 1}})
	resp, err := c.Stream(context.Background(), llm.Request{Model: formats[1].model, Messages: q}, nil)
	if !errors.Is(err, llm.ErrIncomplete) || resp == nil || resp.Text != "half" || resp.Usage.InputTokens != 5 {
		t.Fatalf("resp %+v err %v", resp, err)
	}
}

// A cut stream before any text reached the caller is retried, in every format.
func TestCutStreamBeforeTextIsRetried(t *testing.T) {
	t.Parallel()
	for _, fc := range formats {
		for _, cut := range []llmtest.Script{{Chunks: []string{}, Truncate: true}, {Chunks: []string{}, NoStopReason: true}} {
			s := llmtest.New(t)
			c := newClient(t, s)
			s.Enqueue(cut, llmtest.Script{Text: "second try"})
			resp, err := c.Stream(context.Background(), llm.Request{Model: fc.model, Messages: q}, nil)
			if err != nil || resp.Text != "second try" || s.Calls() != 2 {
				t.Errorf("%s %+v: resp %+v err %v calls %d", fc.name, cut, resp, err, s.Calls())
			}
		}
	}
}

// Stopping at the output token limit or at the content filter is a normal
// completion with a normalised StopReason.
func TestStopReasonsNormalised(t *testing.T) {
	t.Parallel()
	tests := []struct {
		fc        formatCase
		stop      string
		want      string
		truncated bool
	}{
		{formats[0], "", llm.StopEnd, false},
		{formats[1], "", llm.StopEnd, false},
		{formats[2], "", llm.StopEnd, false},
		{formats[3], "", llm.StopEnd, false},
		{formats[0], "length", llm.StopLength, true},
		{formats[1], "max_output_tokens", llm.StopLength, true},
		{formats[2], "max_tokens", llm.StopLength, true},
		{formats[3], "MAX_TOKENS", llm.StopLength, true},
		{formats[0], "content_filter", llm.StopContentFilter, false},
		{formats[1], "content_filter", llm.StopContentFilter, false},
		{formats[2], "refusal", llm.StopContentFilter, false},
		{formats[3], "SAFETY", llm.StopContentFilter, false},
		{formats[0], "tool_calls", llm.StopToolCalls, false},
		{formats[2], "tool_use", llm.StopToolCalls, false},
	}
	for _, tt := range tests {
		s := llmtest.New(t)
		c := newClient(t, s)
		s.Enqueue(llmtest.Script{Text: "some text", StopReason: tt.stop})
		resp, err := c.Stream(context.Background(), llm.Request{Model: tt.fc.model, Messages: q}, nil)
		if err != nil {
			t.Errorf("%s %q: %v", tt.fc.name, tt.stop, err)
			continue
		}
		if resp.StopReason != tt.want || resp.Truncated() != tt.truncated || resp.Cut() || resp.Text != "some text" {
			t.Errorf("%s %q: StopReason %q Truncated %v Cut %v text %q", tt.fc.name, tt.stop, resp.StopReason, resp.Truncated(), resp.Cut(), resp.Text)
		}
		if tt.stop != "" && resp.RawStopReason != tt.stop {
			t.Errorf("%s: RawStopReason = %q, want %q", tt.fc.name, resp.RawStopReason, tt.stop)
		}
	}
}

// The stall watchdog counts only content: a stream that sends nothing but
// keep-alive comments, pings or empty (or whitespace-only) chunks is cut
// after StallTimeout.
func TestWatchdogCountsOnlyContent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		script llmtest.Script
	}{
		{"comments", llmtest.Script{Stall: true, StallKeepAlive: 20 * time.Millisecond}},
		{"pings", llmtest.Script{Stall: true, StallKeepAlive: 20 * time.Millisecond, StallPings: true}},
		{"text then comments", llmtest.Script{Text: "hello there", ErrorAfter: 1, Stall: true, StallKeepAlive: 20 * time.Millisecond}},
		{"whitespace chunks", llmtest.Script{Chunks: []string{" ", "\n", "\t"}, Repeat: -1, TokensPerSecond: 50}},
	}
	for _, fc := range formats {
		for _, tt := range tests {
			t.Run(fc.name+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				s := llmtest.New(t)
				c := newClient(t, s, func(cfg *llm.Config) { cfg.StallTimeout = 200 * time.Millisecond })
				s.Enqueue(tt.script)
				// A backstop that is not a deadline: if the watchdog never
				// fired the call would end as cancelled, not as a timeout.
				ctx, cancel := context.WithCancel(context.Background())
				defer time.AfterFunc(30*time.Second, cancel).Stop()
				start := time.Now()
				resp, err := c.Stream(ctx, llm.Request{Model: fc.model, Messages: q}, nil)
				if !errors.Is(err, llm.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("err = %v after %v, want the stall timeout", err, time.Since(start))
				}
				if s.Calls() != 1 {
					t.Errorf("calls = %d", s.Calls())
				}
				if tt.name == "text then comments" && (resp == nil || resp.Text != "hello") {
					t.Errorf("partial = %+v", resp)
				}
			})
		}
	}
}
