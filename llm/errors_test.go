package llm_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cometbot/cometbot/llm"
	"github.com/cometbot/cometbot/llm/llmtest"
)

var q = []llm.Message{{Role: llm.RoleUser, Content: "question"}}

func TestErrorKinds(t *testing.T) {
	t.Parallel()
	html := "<!DOCTYPE html><html><body>Welcome to our website</body></html>"
	tests := []struct {
		name     string
		scripts  []llmtest.Script
		model    string
		sentinel error
		kind     llm.ErrorKind
		calls    int
		user     string // substring of UserMessage
		param    string
	}{
		{"401", []llmtest.Script{{Status: 401, ErrorMessage: "Invalid token"}}, "gpt-4o", llm.ErrAuth, llm.KindAuth, 1, "key is missing or wrong", ""},
		{"403", []llmtest.Script{{Status: 403, ErrorMessage: "forbidden"}}, "gpt-4o", llm.ErrAuth, llm.KindAuth, 1, "key is missing or wrong", ""},
		{"404 invalid url", []llmtest.Script{{Status: 404, ErrorMessage: "Invalid URL (POST /v2/chat/completions)"}}, "gpt-4o", llm.ErrBaseURL, llm.KindBaseURL, 1, "https://api.cometapi.com/v1", ""},
		{"301 redirect", []llmtest.Script{{Status: 301, Header: http.Header{"Location": {"https://www.cometapi.com/"}}, Body: "moved", ContentType: "text/plain"}}, "gpt-4o", llm.ErrBaseURL, llm.KindBaseURL, 1, "base URL looks wrong", ""},
		{"302 redirect", []llmtest.Script{{Status: 302, Header: http.Header{"Location": {"/login"}}}}, "gpt-4o", llm.ErrBaseURL, llm.KindBaseURL, 1, "base URL looks wrong", ""},
		{"HTML 200", []llmtest.Script{{Body: html}}, "gpt-4o", llm.ErrBaseURL, llm.KindBaseURL, 1, "base URL looks wrong", ""},
		{"HTML 404", []llmtest.Script{{Status: 404, Body: html}}, "gpt-4o", llm.ErrBaseURL, llm.KindBaseURL, 1, "base URL looks wrong", ""},
		{"400 plain", []llmtest.Script{{Status: 400, ErrorMessage: "messages: content too long", ErrorCode: "invalid_request"}}, "gpt-4o", llm.ErrBadRequest, llm.KindBadRequest, 1, "refused this request", ""},
		{"400 unknown model", []llmtest.Script{{Status: 400, ErrorMessage: "model gpt-9 not found", ErrorCode: "model_not_found"}}, "gpt-9", llm.ErrModel, llm.KindModel, 1, "pick another", ""},
		{"503 no channel", []llmtest.Script{{Status: 503, ErrorMessage: "no available channel for model xyz under group default"}}, "xyz", llm.ErrModel, llm.KindModel, 1, "isn't available", ""},
		{"402 quota", []llmtest.Script{{Status: 402, ErrorMessage: "insufficient balance"}}, "gpt-4o", llm.ErrQuota, llm.KindQuota, 1, "out of credit", ""},
		{"429 insufficient_quota", []llmtest.Script{{Status: 429, ErrorMessage: "You exceeded your current quota", ErrorCode: "insufficient_quota"}}, "gpt-4o", llm.ErrQuota, llm.KindQuota, 1, "out of credit", ""},
		{"500 then 500 then 200", []llmtest.Script{{Status: 500}, {Status: 500}, {Text: "ok"}}, "gpt-4o", nil, 0, 3, "", ""},
		{"HTML 502 is transient", []llmtest.Script{{Status: 502, Body: html}, {Text: "ok"}}, "gpt-4o", nil, 0, 2, "", ""},
		{"503 504 524 then ok", []llmtest.Script{{Status: 503}, {Status: 504}, {Status: 524}, {Text: "ok"}}, "gpt-4o", nil, 0, 4, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := llmtest.New(t)
			c := newClient(t, s)
			s.Enqueue(tt.scripts...)
			resp, err := c.Stream(context.Background(), llm.Request{Model: tt.model, Messages: q}, nil)
			if s.Calls() != tt.calls {
				t.Errorf("calls = %d, want %d", s.Calls(), tt.calls)
			}
			if tt.sentinel == nil {
				if err != nil || resp.Text != "ok" {
					t.Fatalf("resp %+v, err %v", resp, err)
				}
				return
			}
			if !errors.Is(err, tt.sentinel) {
				t.Fatalf("err = %v, want %v", err, tt.sentinel)
			}
			var e *llm.Error
			if !errors.As(err, &e) || e.Kind != tt.kind {
				t.Fatalf("err = %#v", err)
			}
			if e.Started() {
				t.Errorf("Started() = true before any text")
			}
			if um := llm.UserMessage(err); !strings.Contains(um, tt.user) {
				t.Errorf("UserMessage = %q, want it to contain %q", um, tt.user)
			}
			if e.Status == 0 {
				t.Errorf("no status in %v", e)
			}
			if strings.Contains(err.Error(), "{") || strings.Contains(err.Error(), "<html") {
				t.Errorf("raw body in error: %v", err)
			}
		})
	}
}

func TestErrorCarriesRequestIDAndParam(t *testing.T) {
	t.Parallel()
	s := llmtest.New(t)
	c := newClient(t, s)
	s.Enqueue(llmtest.Script{Status: 400, ErrorMessage: "bad messages", ErrorParam: "messages", ErrorCode: "invalid_request"})
	_, err := c.Stream(context.Background(), llm.Request{Model: "gpt-4o", Messages: q}, nil)
	var e *llm.Error
	if !errors.As(err, &e) {
		t.Fatal(err)
	}
	if !strings.HasPrefix(e.RequestID, "fake-") || e.Param != "messages" || e.Code != "invalid_request" || e.Status != 400 {
		t.Errorf("error = %+v", e)
	}
	if s.Calls() != 1 {
		t.Errorf("a 400 naming a non-optional parameter was retried: %d calls", s.Calls())
	}
}

func TestUserMessageEveryKind(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for k := llm.KindUnknown; k <= llm.KindAttachment; k++ {
		err := &llm.Error{Kind: k, Message: "secret sk-abcdefghijklmnop {\"error\":1}", Status: 500}
		um := llm.UserMessage(err)
		if um == "" || strings.Contains(um, "sk-") || strings.Contains(um, "{") || strings.Contains(um, "500") || strings.Count(um, ".") > 3 {
			t.Errorf("%v: %q", k, um)
		}
		if seen[um] && k != llm.KindUnknown {
			t.Errorf("%v: sentence shared with another kind: %q", k, um)
		}
		seen[um] = true
	}
	if llm.UserMessage(errors.New("weird")) != llm.UserMessage(&llm.Error{}) {
		t.Errorf("unknown errors should get the generic sentence")
	}
	if llm.UserMessage(nil) != "" {
		t.Errorf("nil error has a message")
	}
	if llm.UserMessage(fmt.Errorf("wrapped: %w", context.Canceled)) != "The request was cancelled." {
		t.Errorf("context.Canceled not recognised")
	}
}

func TestAPIKeyNeverInErrorsOrLogs(t *testing.T) {
	t.Parallel()
	s := llmtest.New(t)
	var logs bytes.Buffer
	c := newClient(t, s, func(cfg *llm.Config) {
		cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	s.Enqueue(
		llmtest.Script{Status: 429, ErrorMessage: "rate limited for key " + testKey, Header: http.Header{"Retry-After": {"0.01"}}},
		llmtest.Script{Status: 401, ErrorMessage: "Invalid token: Bearer " + testKey},
	)
	_, err := c.Stream(context.Background(), llm.Request{Model: "gpt-4o", Messages: q}, nil)
	if !errors.Is(err, llm.ErrAuth) {
		t.Fatalf("err = %v", err)
	}
	for _, txt := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err), logs.String(), llm.UserMessage(err)} {
		if strings.Contains(txt, testKey) || strings.Contains(txt, testKey[3:]) {
			t.Errorf("API key leaked: %s", txt)
		}
	}
	if !strings.Contains(logs.String(), "retrying") {
		t.Errorf("retry not logged: %s", logs.String())
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	t.Parallel()
	s := llmtest.New(t)
	c := newClient(t, s, func(cfg *llm.Config) { cfg.RetryDeadline = 5 * time.Second })
	s.Enqueue(llmtest.Script{Status: 429, Header: http.Header{"Retry-After": {"1"}}, ErrorMessage: "slow down"}, llmtest.Script{Text: "after wait"})
	start := time.Now()
	resp, err := c.Stream(context.Background(), llm.Request{Model: "gpt-4o", Messages: q}, nil)
	el := time.Since(start)
	if err != nil || resp.Text != "after wait" {
		t.Fatalf("resp %+v err %v", resp, err)
	}
	if s.Calls() != 2 {
		t.Errorf("calls = %d, want exactly 2", s.Calls())
	}
	if el < time.Second || el > 2*time.Second {
		t.Errorf("waited %v, want about 1s (Retry-After: 1)", el)
	}
	reqs := s.Requests()
	if gap := reqs[1].Time.Sub(reqs[0].Time); gap < time.Second {
		t.Errorf("second request only %v after the first", gap)
	}
}

func TestPersistent429GivesUpWithinDeadline(t *testing.T) {
	t.Parallel()
	s := llmtest.New(t)
	c := newClient(t, s, func(cfg *llm.Config) {
		cfg.RetryDeadline = 400 * time.Millisecond
		cfg.RetryBase = 20 * time.Millisecond
	})
	for range 100 {
		s.Enqueue(llmtest.Script{Status: 429, ErrorMessage: "too many requests"})
	}
	start := time.Now()
	_, err := c.Stream(context.Background(), llm.Request{Model: "gpt-4o", Messages: q}, nil)
	el := time.Since(start)
	if !errors.Is(err, llm.ErrRateLimited) {
		t.Fatalf("err = %v", err)
	}
	// r.Time is when the fake received the attempt; under -race on a busy
	// 2-core machine that can trail the client's decision by a few hundred
	// ms, so allow that much slack past the 400 ms deadline.
	for _, r := range s.Requests() {
		if r.Time.Sub(start) > 400*time.Millisecond+350*time.Millisecond {
			t.Errorf("an attempt started %v after the call, past the 400ms deadline", r.Time.Sub(start))
		}
	}
	if el > 1500*time.Millisecond {
		t.Errorf("gave up after %v, deadline 400ms", el)
	}
	if s.Calls() < 3 {
		t.Errorf("only %d attempts", s.Calls())
	}
	var e *llm.Error
	errors.As(err, &e)
	if e.Attempts != s.Calls() {
		t.Errorf("Attempts = %d, server saw %d", e.Attempts, s.Calls())
	}
	if !strings.Contains(llm.UserMessage(err), "too many requests") {
		t.Errorf("user message = %q", llm.UserMessage(err))
	}
}

func TestRetryAfterBeyondDeadlineGivesUpAtOnce(t *testing.T) {
	t.Parallel()
	s := llmtest.New(t)
	c := newClient(t, s, func(cfg *llm.Config) { cfg.RetryDeadline = 2 * time.Second })
	s.Enqueue(llmtest.Script{Status: 429, Header: http.Header{"Retry-After": {"30"}}})
	start := time.Now()
	_, err := c.Stream(context.Background(), llm.Request{Model: "gpt-4o", Messages: q}, nil)
	var e *llm.Error
	if !errors.As(err, &e) || e.Kind != llm.KindRateLimited || e.RetryAfter != 30*time.Second {
		t.Fatalf("err = %#v", err)
	}
	if time.Since(start) > 500*time.Millisecond || s.Calls() != 1 {
		t.Errorf("waited %v with %d calls", time.Since(start), s.Calls())
	}
}

func TestConnectionFailureRetriedThenReported(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: connection refused
	c, err := llm.NewClient(llm.Config{BaseURL: "http://" + addr + "/v1", APIKey: testKey, RetryDeadline: 300 * time.Millisecond, RetryBase: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Stream(context.Background(), llm.Request{Model: "gpt-4o", Messages: q}, nil)
	var e *llm.Error
	if !errors.As(err, &e) || e.Kind != llm.KindServer || e.Attempts < 2 {
		t.Fatalf("err = %#v", err)
	}
	if strings.Contains(err.Error(), testKey) {
		t.Errorf("key in error")
	}
}

func TestConnectionResetBeforeFirstByteRetried(t *testing.T) {
	t.Parallel()
	s := llmtest.New(t)
	// The first attempt's server drops the connection without answering.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		first := true
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			if first {
				first = false
				buf := make([]byte, 4096)
				conn.Read(buf)
				conn.Close()
				continue
			}
			// Proxy later connections to the fake gateway.
			go proxy(conn, strings.TrimPrefix(s.HostURL(), "http://"))
		}
	}()
	c, err := llm.NewClient(llm.Config{BaseURL: "http://" + ln.Addr().String() + "/v1", APIKey: testKey, RetryBase: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Stream(context.Background(), llm.Request{Model: "gpt-4o", Messages: q}, nil)
	if err != nil || resp.Text != llmtest.DefaultReply {
		t.Fatalf("resp %+v err %v", resp, err)
	}
}

func proxy(in net.Conn, target string) {
	defer in.Close()
	out, err := net.Dial("tcp", target)
	if err != nil {
		return
	}
	defer out.Close()
	done := make(chan struct{}, 2)
	go func() { copyConn(out, in); done <- struct{}{} }()
	go func() { copyConn(in, out); done <- struct{}{} }()
	<-done
}

func copyConn(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func TestUnknownHostIsBaseURL(t *testing.T) {
	t.Parallel()
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		return nil, &net.DNSError{Err: "no such host", Name: "api.cometapi.invalid", IsNotFound: true}
	}}}
	c, err := llm.NewClient(llm.Config{BaseURL: "https://api.cometapi.invalid/v1", APIKey: testKey, HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Stream(context.Background(), llm.Request{Model: "gpt-4o", Messages: q}, nil)
	if !errors.Is(err, llm.ErrBaseURL) {
		t.Fatalf("err = %v", err)
	}
}

func TestParameterRetry(t *testing.T) {
	t.Parallel()
	s := llmtest.New(t)
	c := newClient(t, s)
	temp, topP := 0.7, 0.9
	req := llm.Request{Model: "o3-pro-weird", Messages: q, Temperature: &temp, TopP: &topP, MaxOutputTokens: 100}
	s.Enqueue(
		llmtest.Script{Status: 400, ErrorMessage: "Unsupported parameter: 'temperature' is not supported with this model.", ErrorParam: "temperature", ErrorCode: "unsupported_parameter"},
		llmtest.Script{Text: "without params"},
	)
	resp, err := c.Stream(context.Background(), req, nil)
	if err != nil || resp.Text != "without params" {
		t.Fatalf("resp %+v err %v", resp, err)
	}
	reqs := s.Requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2", len(reqs))
	}
	first, second := reqs[0].MustDecode(), reqs[1].MustDecode()
	if len(first.Params) != 3 {
		t.Errorf("first request params = %v", first.Params)
	}
	if len(second.Params) != 0 {
		t.Errorf("retry still sent optional params: %v", second.Params)
	}
	// The next call remembers only the rejected parameter.
	if _, err := c.Stream(context.Background(), req, nil); err != nil {
		t.Fatal(err)
	}
	third := s.Requests()[2].MustDecode()
	if _, ok := third.Params["temperature"]; ok || third.Params["top_p"] != 0.9 || third.Params["max_tokens"] != float64(100) {
		t.Errorf("third request params = %v, want all but temperature", third.Params)
	}
	// A parameter named only in the message is recognised too.
	s.Enqueue(llmtest.Script{Status: 400, ErrorMessage: "top_p is not supported for this model"})
	if _, err := c.Stream(context.Background(), req, nil); err != nil || s.Calls() != 5 {
		t.Fatalf("calls %d err %v", s.Calls(), err)
	}
	if p := s.Requests()[4].MustDecode(); len(p.Params) != 0 {
		t.Errorf("fifth params = %v", p.Params)
	}
	if _, err := c.Stream(context.Background(), req, nil); err != nil {
		t.Fatal(err)
	}
	if p := s.Requests()[5].MustDecode(); len(p.Params) != 1 || p.Params["max_tokens"] != float64(100) {
		t.Errorf("sixth params = %v, want only max_tokens", p.Params)
	}
}

func TestParameterRetryNotRepeated(t *testing.T) {
	t.Parallel()
	s := llmtest.New(t)
	c := newClient(t, s)
	temp := 0.7
	s.Enqueue(
		llmtest.Script{Status: 400, ErrorParam: "temperature", ErrorMessage: "bad temperature"},
		llmtest.Script{Status: 400, ErrorParam: "max_tokens", ErrorMessage: "bad max_tokens"},
	)
	_, err := c.Stream(context.Background(), llm.Request{Model: "gpt-4o", Messages: q, Temperature: &temp}, nil)
	if !errors.Is(err, llm.ErrBadRequest) || s.Calls() != 2 {
		t.Fatalf("err %v calls %d", err, s.Calls())
	}
}

func TestNativeFormatFallback(t *testing.T) {
	t.Parallel()
	for _, fc := range formats[1:] {
		t.Run(fc.name, func(t *testing.T) {
			t.Parallel()
			s := llmtest.New(t)
			c := newClient(t, s)
			s.SetUnsupported(fc.format)
			resp, err := c.Stream(context.Background(), llm.Request{Model: fc.model, Messages: q}, nil)
			if err != nil || resp.Format != llm.FormatChat || resp.Text != llmtest.DefaultReply {
				t.Fatalf("resp %+v err %v", resp, err)
			}
			reqs := s.Requests()
			if len(reqs) != 2 || reqs[0].Format != fc.format || reqs[1].Format != llm.FormatChat {
				t.Fatalf("requests: %v", paths(reqs))
			}
			if c.FormatFor(fc.model) != llm.FormatChat {
				t.Errorf("fallback not remembered")
			}
			if _, err := c.Stream(context.Background(), llm.Request{Model: fc.model, Messages: q}, nil); err != nil {
				t.Fatal(err)
			}
			if reqs := s.Requests(); len(reqs) != 3 || reqs[2].Format != llm.FormatChat {
				t.Errorf("second call: %v", paths(reqs))
			}
		})
	}
	t.Run("405", func(t *testing.T) {
		t.Parallel()
		s := llmtest.New(t)
		c := newClient(t, s)
		s.Enqueue(llmtest.Script{Path: "/messages", Status: 405, ErrorMessage: "method not allowed"})
		resp, err := c.Stream(context.Background(), llm.Request{Model: "claude-sonnet-4-5", Messages: q}, nil)
		if err != nil || resp.Format != llm.FormatChat {
			t.Fatalf("resp %+v err %v", resp, err)
		}
	})
	t.Run("chat failing too is a base URL error", func(t *testing.T) {
		t.Parallel()
		s := llmtest.New(t)
		c := newClient(t, s)
		s.SetUnsupported(llm.FormatAnthropic, llm.FormatChat)
		_, err := c.Stream(context.Background(), llm.Request{Model: "claude-sonnet-4-5", Messages: q}, nil)
		if !errors.Is(err, llm.ErrBaseURL) || s.Calls() != 2 {
			t.Fatalf("err %v calls %d", err, s.Calls())
		}
	})
}

func paths(rs []llmtest.Recorded) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Method+" "+r.Path)
	}
	return out
}

func TestAuthAgainstKeyedServer(t *testing.T) {
	t.Parallel()
	s := llmtest.New(t, llmtest.Options{APIKey: testKey})
	for _, fc := range formats {
		good := newClient(t, s)
		if _, err := good.Stream(context.Background(), llm.Request{Model: fc.model, Messages: q}, nil); err != nil {
			t.Errorf("%s with the right key: %v", fc.name, err)
		}
		bad := newClient(t, s, func(cfg *llm.Config) { cfg.APIKey = "sk-wrong-key-000000" })
		if _, err := bad.Stream(context.Background(), llm.Request{Model: fc.model, Messages: q}, nil); !errors.Is(err, llm.ErrAuth) {
			t.Errorf("%s with a wrong key: %v", fc.name, err)
		}
	}
}

func TestNewClientValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  llm.Config
		ok   bool
	}{
		{"defaults", llm.Config{}, true},
		{"trailing slash", llm.Config{BaseURL: "https://api.cometapi.com/v1/"}, true},
		{"no scheme", llm.Config{BaseURL: "api.cometapi.com/v1"}, false},
		{"ftp", llm.Config{BaseURL: "ftp://api.cometapi.com/v1"}, false},
		{"query", llm.Config{BaseURL: "https://api.cometapi.com/v1?x=1"}, false},
		{"bad route format", llm.Config{Routes: []llm.Route{{Pattern: "gpt-*", Format: "grpc"}}}, false},
		{"bad route glob", llm.Config{Routes: []llm.Route{{Pattern: "gpt-[", Format: llm.FormatChat}}}, false},
		{"good route", llm.Config{Routes: []llm.Route{{Pattern: "gpt-*", Format: llm.FormatResponses}}}, true},
	}
	for _, tt := range tests {
		_, err := llm.NewClient(tt.cfg)
		if (err == nil) != tt.ok {
			t.Errorf("%s: err = %v", tt.name, err)
		}
	}
}

func TestCatalogURLFor(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"":                                         "https://api.cometapi.com/api/models",
		"https://api.cometapi.com/v1":              "https://api.cometapi.com/api/models",
		"https://api.cometapi.com/v1/":             "https://api.cometapi.com/api/models",
		"http://127.0.0.1:8080/v1":                 "http://127.0.0.1:8080/api/models",
		"https://proxy.example/comet":              "https://proxy.example/comet/api/models",
		"https://proxy.example/x/v1///":            "https://proxy.example/x/api/models",
		"https://sk-key@api.cometapi.com/v1":       "https://api.cometapi.com/api/models",
		"https://api.cometapi.com/v1?key=sk-key":   "https://api.cometapi.com/api/models",
		"https://u:sk-pw@api.cometapi.com/v1#frag": "https://api.cometapi.com/api/models",
	} {
		if got := llm.CatalogURLFor(in); got != want {
			t.Errorf("CatalogURLFor(%q) = %q, want %q", in, got, want)
		}
	}
}
