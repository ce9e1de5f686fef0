package llm

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	t.Parallel()
	l := newLimiter(4)
	ctx := context.Background()
	for range 4 {
		if err := l.acquire(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// A fifth caller waits; its context ending removes it from the queue.
	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := l.acquire(cctx); err == nil {
		t.Fatal("acquired beyond the limit")
	}
	got := make(chan struct{})
	go func() {
		if l.acquire(ctx) == nil {
			close(got)
		}
	}()
	select {
	case <-got:
		t.Fatal("acquired beyond the limit")
	case <-time.After(20 * time.Millisecond):
	}
	l.release()
	select {
	case <-got:
	case <-time.After(time.Second):
		t.Fatal("waiter not woken by release")
	}
	// 429 halves the limit (once per second), successes raise it back.
	now := time.Now()
	l.rateLimited(now)
	l.rateLimited(now.Add(10 * time.Millisecond))
	if lim, inUse, peak := l.stats(); lim != 2 || inUse != 4 || peak != 4 {
		t.Fatalf("after 429: limit %d inUse %d peak %d", lim, inUse, peak)
	}
	for range 4 {
		l.release()
	}
	for range 2 {
		l.succeeded()
	}
	if lim, _, _ := l.stats(); lim != 3 {
		t.Fatalf("after 2 successes: limit %d, want 3", lim)
	}
	for range 10 {
		l.succeeded()
	}
	if lim, _, _ := l.stats(); lim != 4 {
		t.Fatalf("limit %d, want back at the maximum 4", lim)
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		h    http.Header
		want time.Duration
	}{
		{http.Header{"Retry-After": {"1"}}, time.Second},
		{http.Header{"Retry-After": {"1.5"}}, 1500 * time.Millisecond},
		{http.Header{"Retry-After": {"0"}}, 0},
		{http.Header{"Retry-After": {"-3"}}, 0},
		{http.Header{"Retry-After": {"soon"}}, 0},
		{http.Header{"Retry-After": {now.Add(7 * time.Second).Format(http.TimeFormat)}}, 7 * time.Second},
		{http.Header{"Retry-After-Ms": {"250"}, "Retry-After": {"9"}}, 250 * time.Millisecond},
		{http.Header{}, 0},
	}
	for _, tt := range tests {
		if got := parseRetryAfter(tt.h, now); got != tt.want {
			t.Errorf("%v: %v, want %v", tt.h, got, tt.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	c := &Client{retryBase: time.Second, retryMax: 30 * time.Second}
	for n, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second} {
		for range 20 {
			d := c.backoff(n, 0)
			if d < want/2 || d > want {
				t.Fatalf("backoff(%d) = %v, want in [%v, %v]", n, d, want/2, want)
			}
		}
	}
	if d := c.backoff(3, 2*time.Second); d < 2*time.Second || d > 2*time.Second+201*time.Millisecond {
		t.Errorf("Retry-After 2s gave %v", d)
	}
}

func TestParamBit(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]paramSet{
		"temperature": pTemperature, "generationConfig.temperature": pTemperature, "top_p": pTopP, "topP": pTopP,
		"max_tokens": pMaxTokens, "max_output_tokens": pMaxTokens, "maxOutputTokens": pMaxTokens, "max_completion_tokens": pMaxTokens,
		"stream_options": pStreamOptions, "messages": 0, "model": 0, "messages[0].content": 0,
	} {
		if got := paramBit(name); got != want {
			t.Errorf("paramBit(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestScrubber(t *testing.T) {
	t.Parallel()
	s := newScrubber("my-secret-key-123", "", "ab")
	for in, bad := range map[string]string{
		"invalid key my-secret-key-123 given":         "my-secret-key-123",
		"Incorrect API key provided: sk-abcdef123456": "sk-abcdef123456",
		"header was Bearer abcdefghijklmnop":          "abcdefghijklmnop",
	} {
		if out := s.clean(in); strings.Contains(out, bad) {
			t.Errorf("clean(%q) = %q", in, out)
		}
	}
	if out := s.clean(strings.Repeat("x", 2000)); len(out) > 600 {
		t.Errorf("long message not shortened: %d", len(out))
	}
}

func TestTurns(t *testing.T) {
	t.Parallel()
	in := []Message{
		{Role: RoleAssistant, Content: "earlier answer"},
		{Role: RoleUser, Content: "a"},
		{Role: RoleUser, Content: "  "},
		{Role: RoleUser, Content: "b"},
		{Role: RoleAssistant, Content: ""},
		{Role: "system", Content: "odd role"},
	}
	got := turns(in, true)
	if len(got) != 3 || got[0].Role != RoleUser || got[1].Role != RoleAssistant || got[2].Content != "a\n\nb\n\nodd role" {
		t.Errorf("merged = %+v", got)
	}
	if got := turns(in, false); len(got) != 4 {
		t.Errorf("unmerged = %+v", got)
	}
}

func TestSticky(t *testing.T) {
	var s sticky
	for _, in := range []string{`"a"`, `"a"`, `"b\"c"`, `null`, `"é"`} {
		if err := s.UnmarshalJSON([]byte(in)); err != nil {
			t.Fatal(err)
		}
	}
	if s != "é" {
		t.Errorf("s = %q", s)
	}
	same := []byte(`"é"`)
	if allocs := testing.AllocsPerRun(100, func() { s.UnmarshalJSON(same) }); allocs != 0 {
		t.Errorf("unchanged sticky allocates %v", allocs)
	}
}
