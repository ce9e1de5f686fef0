package llm_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

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

// MaxAnswerChars cuts the answer at the limit (counted in runes) and stops
// reading; an answer exactly at the limit is whole.
func TestMaxAnswerChars(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		script llmtest.Script
		max    int
		want   string
		cut    bool
	}{
		{"endless stream", llmtest.Script{Chunks: []string{"abcdefghij"}, Repeat: -1}, 25, "abcdefghijabcdefghijabcde", true},
		{"cut between runes", llmtest.Script{Chunks: []string{"hé🦊", "wörld"}, Repeat: -1}, 6, "hé🦊wör", true},
		{"exactly at the limit", llmtest.Script{Chunks: []string{"abc", "de"}}, 5, "abcde", false},
		{"below the limit", llmtest.Script{Text: "short"}, 100, "short", false},
		{"reasoning is not the answer", llmtest.Script{Reasoning: strings.Repeat("think ", 20), Text: "ok"}, 5, "ok", false},
	}
	for _, fc := range formats {
		for _, tt := range tests {
			t.Run(fc.name+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				s := llmtest.New(t)
				c := newClient(t, s)
				s.Enqueue(tt.script)
				var streamed strings.Builder
				resp, err := c.Stream(context.Background(), llm.Request{Model: fc.model, Messages: q, MaxAnswerChars: tt.max},
					func(d llm.Delta) error { streamed.WriteString(d.Text); return nil })
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				if resp.Text != tt.want || streamed.String() != tt.want {
					t.Errorf("text = %q, streamed %q, want %q", resp.Text, streamed.String(), tt.want)
				}
				if resp.Cut() != tt.cut || (tt.cut && resp.StopReason != llm.StopMaxAnswerChars) || resp.Truncated() {
					t.Errorf("Cut %v StopReason %q, want cut %v", resp.Cut(), resp.StopReason, tt.cut)
				}
				if n := utf8.RuneCountInString(resp.Reasoning); n > tt.max {
					t.Errorf("kept %d runes of reasoning, limit %d", n, tt.max)
				}
			})
		}
	}
	// A whole (non-streamed) answer is cut the same way.
	s := llmtest.New(t)
	c := newClient(t, s)
	s.Enqueue(llmtest.Script{Text: strings.Repeat("word ", 100)})
	resp, err := c.Complete(context.Background(), llm.Request{Model: "gpt-4o", Messages: q, MaxAnswerChars: 12})
	if err != nil || resp.Text != "word word wo" || !resp.Cut() {
		t.Fatalf("Complete: resp %+v err %v", resp, err)
	}
}

// countingClient is an HTTP client that counts the response body bytes the
// llm client reads.
func countingClient() (*http.Client, *atomic.Int64) {
	n := new(atomic.Int64)
	return &http.Client{Transport: countingTransport{http.DefaultTransport.(*http.Transport).Clone(), n}}, n
}

type countingTransport struct {
	rt http.RoundTripper
	n  *atomic.Int64
}

func (c countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.rt.RoundTrip(r)
	if resp != nil {
		resp.Body = &countingBody{resp.Body, c.n}
	}
	return resp, err
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// memWatch samples the heap while a test runs; stop returns the peak
// HeapAlloc seen and the bytes allocated since the start.
func memWatch() (stop func() (peakHeap, allocated uint64)) {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	start := m.TotalAlloc
	peak := m.HeapAlloc
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tk := time.NewTicker(5 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-done:
				return
			case <-tk.C:
				var m runtime.MemStats
				runtime.ReadMemStats(&m)
				peak = max(peak, m.HeapAlloc)
			}
		}
	})
	return func() (uint64, uint64) {
		close(done)
		wg.Wait()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return max(peak, m.HeapAlloc), m.TotalAlloc - start
	}
}

// A 400 MB stream (generated lazily by the fake) with MaxAnswerChars 40,000
// stops being read at the limit: little is read, little is allocated. Not
// parallel, so that the memory figures are this test's own.
func TestHugeStreamStopsAtMaxAnswerChars(t *testing.T) {
	const limit = 40_000
	chunk := strings.Repeat("lorem ipsum ", 100) // 1,200 bytes
	repeat := 400 << 20 / len(chunk)
	for _, fc := range formats {
		s := llmtest.New(t)
		hc, read := countingClient()
		c := newClient(t, s, func(cfg *llm.Config) { cfg.HTTPClient = hc })
		s.Enqueue(llmtest.Script{Chunks: []string{chunk}, Repeat: repeat})
		stop := memWatch()
		start := time.Now()
		resp, err := c.Stream(context.Background(), llm.Request{Model: fc.model, Messages: q, MaxAnswerChars: limit}, nil)
		el := time.Since(start)
		peak, allocated := stop()
		if err != nil || !resp.Cut() || len(resp.Text) != limit {
			t.Fatalf("%s: err %v, cut %v, %d chars", fc.name, err, resp != nil && resp.Cut(), len(resp.Text))
		}
		t.Logf("%s: read %d KiB in %v; heap peak %d MiB, allocated %d MiB", fc.name, read.Load()>>10, el, peak>>20, allocated>>20)
		if read.Load() > 8<<20 {
			t.Errorf("%s: read %d MiB of a stream that should stop at %d chars", fc.name, read.Load()>>20, limit)
		}
		if peak > 50<<20 || allocated > 50<<20 {
			t.Errorf("%s: heap peak %d MiB, allocated %d MiB", fc.name, peak>>20, allocated>>20)
		}
		if el > 30*time.Second {
			t.Errorf("%s: took %v", fc.name, el)
		}
	}
}

// A single 100 MB SSE line is refused with an error, not buffered, and the
// refusal is not retried.
func TestHugeEventRefused(t *testing.T) {
	var calls atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"")
		block := bytes.Repeat([]byte("a"), 64<<10)
		for range 100 << 20 / len(block) {
			if _, err := w.Write(block); err != nil {
				return
			}
		}
		io.WriteString(w, "\"}}]}\n\n")
	}))
	defer ts.Close()
	hc, read := countingClient()
	c, err := llm.NewClient(llm.Config{BaseURL: ts.URL + "/v1", APIKey: testKey, HTTPClient: hc, RetryBase: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	stop := memWatch()
	_, err = c.Stream(context.Background(), llm.Request{Model: "gpt-4o", Messages: q}, nil)
	peak, allocated := stop()
	var e *llm.Error
	if !errors.As(err, &e) || e.Kind != llm.KindServer || e.Retryable() {
		t.Fatalf("err = %v", err)
	}
	t.Logf("read %d MiB; heap peak %d MiB, allocated %d MiB", read.Load()>>20, peak>>20, allocated>>20)
	if read.Load() > 16<<20 || peak > 50<<20 || allocated > 50<<20 {
		t.Errorf("read %d MiB, heap peak %d MiB, allocated %d MiB", read.Load()>>20, peak>>20, allocated>>20)
	}
	if calls.Load() != 1 {
		t.Errorf("retried: %d calls", calls.Load())
	}
}

// A key embedded in the base URL — user info or query — never shows in an
// error, a log line or a printed Config, and is never sent in the URL.
func TestBaseURLSecretsRedacted(t *testing.T) {
	t.Parallel()
	const secret = "sk-userinfo-secret-0003"
	leaks := func(s string) bool { return strings.Contains(s, "secret-000") }

	for _, base := range []string{
		"https://api.cometapi.com/v1?key=sk-query-secret-0001",
		"https://api.cometapi.com/v1?",
		"ftp://sk-user-secret-0002@api.cometapi.com/v1",
		"https://api.cometapi.com/v1#sk-frag-secret-0004",
	} {
		if _, err := llm.NewClient(llm.Config{BaseURL: base}); err == nil || leaks(err.Error()) {
			t.Errorf("NewClient(%q): err = %v", base, err)
		}
	}

	s := llmtest.New(t, llmtest.Options{APIKey: testKey})
	var logs strings.Builder
	var mu sync.Mutex
	cfg := llm.Config{
		BaseURL: strings.Replace(s.URL(), "http://", "http://"+secret+":pw-secret-0005@", 1),
		APIKey:  testKey, StallTimeout: 200 * time.Millisecond, RetryDeadline: 2 * time.Second, RetryBase: 10 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(syncWriter{&mu, &logs}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	c, err := llm.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	texts := []string{cfg.String(), fmt.Sprintf("%v %+v %#v", cfg, cfg, cfg)}
	s.Enqueue(
		llmtest.Script{Status: 429, ErrorMessage: "slow down, " + secret, Header: http.Header{"Retry-After": {"0.01"}}},
		llmtest.Script{Status: 400, ErrorMessage: "user " + secret + " / pw-secret-0005 rejected"},
		llmtest.Script{Status: 302, Header: http.Header{"Location": {"https://" + secret + "@elsewhere.example/login?key=" + secret}}},
		llmtest.Script{Text: "a b", ErrorAfter: 1, MidStreamError: "boom for " + secret},
		llmtest.Script{Stall: true},
	)
	for range 4 {
		_, err := c.Stream(context.Background(), llm.Request{Model: "gpt-4o", Messages: q}, nil)
		if err == nil {
			t.Fatal("scripted failure succeeded")
		}
		texts = append(texts, err.Error(), fmt.Sprintf("%+v %#v", err, err), llm.UserMessage(err))
	}
	for _, r := range s.Requests() {
		if got := r.Header.Get("Authorization"); got != "Bearer "+testKey {
			t.Errorf("Authorization = %q", got)
		}
	}
	// A connection failure prints the request URL.
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	c2, err := llm.NewClient(llm.Config{BaseURL: "http://" + secret + "@" + closed.Listener.Addr().String() + "/v1", RetryDeadline: time.Millisecond, Logger: cfg.Logger})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c2.Stream(context.Background(), llm.Request{Model: "gpt-4o", Messages: q}, nil)
	if !errors.Is(err, llm.ErrServer) {
		t.Errorf("err = %v", err)
	}
	texts = append(texts, fmt.Sprint(err), llm.CatalogURLFor(cfg.BaseURL), llm.CatalogURLFor("https://api.cometapi.com/v1?key=sk-query-secret-0001"))
	mu.Lock()
	texts = append(texts, logs.String())
	mu.Unlock()
	for _, txt := range texts {
		if leaks(txt) {
			t.Errorf("secret leaked: %s", txt)
		}
	}

	// With no APIKey, the user info is the key.
	c3, err := llm.NewClient(llm.Config{BaseURL: strings.Replace(s.URL(), "http://", "http://"+testKey+"@", 1)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c3.Stream(context.Background(), llm.Request{Model: "gpt-4o", Messages: q}, nil); err != nil {
		t.Errorf("key from user info: %v", err)
	}
}

type syncWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (s syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
