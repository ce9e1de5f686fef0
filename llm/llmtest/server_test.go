package llmtest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cometbot/cometbot/llm"
	"github.com/cometbot/cometbot/llm/llmtest"
)

func TestSplitWords(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		n    int
		want []string
	}{
		{"", 1, nil},
		{"one", 1, []string{"one"}},
		{"a b c", 1, []string{"a", " b", " c"}},
		{"a b c", 2, []string{"a b", " c"}},
		{"  lead\nand\ttabs  ", 1, []string{"  lead", "\nand", "\ttabs  "}},
		{"emoji 🦊 ok", 1, []string{"emoji", " 🦊", " ok"}},
	}
	for _, tt := range tests {
		got := llmtest.SplitWords(tt.in, tt.n)
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("SplitWords(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
		if strings.Join(got, "") != tt.in {
			t.Errorf("SplitWords(%q) does not join back", tt.in)
		}
	}
}

func TestCatalogRoundTrip(t *testing.T) {
	t.Parallel()
	s := llmtest.New(t)
	resp, err := http.Get(s.CatalogURL())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var doc struct {
		Success bool `json:"success"`
		Total   int  `json:"total"`
	}
	if err := json.Unmarshal(b, &doc); err != nil || !doc.Success || doc.Total != len(llmtest.DefaultModels()) {
		t.Fatalf("doc %+v err %v", doc, err)
	}
	ms, err := llm.ParseCatalog(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ms, llmtest.DefaultModels()) {
		t.Errorf("round trip:\n got %+v\nwant %+v", ms, llmtest.DefaultModels())
	}
	if llm.CatalogURLFor(s.URL()) != s.CatalogURL() {
		t.Errorf("CatalogURLFor(URL()) = %s, CatalogURL() = %s", llm.CatalogURLFor(s.URL()), s.CatalogURL())
	}
	if n := len(llmtest.GenerateModels(320)); n != 320 {
		t.Errorf("GenerateModels(320) = %d", n)
	}
}

func post(t *testing.T, url, body string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestRawEndpoints(t *testing.T) {
	t.Parallel()
	s := llmtest.New(t, llmtest.Options{Reply: "hi there"})
	resp, body := post(t, s.URL()+"/nope", `{}`)
	if resp.StatusCode != 404 || !strings.Contains(body, `"error"`) {
		t.Errorf("unknown path: %d %s", resp.StatusCode, body)
	}
	resp, body = post(t, s.HostURL()+"/v1beta/models/gemini-2.5-flash:streamGenerateContent", `{"contents":[{"role":"user","parts":[{"text":"q"}]}]}`)
	var arr []map[string]any
	if err := json.Unmarshal([]byte(body), &arr); err != nil || len(arr) != 3 {
		t.Errorf("gemini without alt=sse: %d %s", resp.StatusCode, body)
	}
	resp, body = post(t, s.URL()+"/chat/completions", `{"model":"m","stream":true,"messages":[{"role":"user","content":"q"}]}`)
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") || !strings.HasSuffix(body, "data: [DONE]\n\n") || strings.Contains(body, `"usage"`) {
		t.Errorf("chat stream without include_usage:\n%s", body)
	}
	resp, body = post(t, s.URL()+"/chat/completions", `not json`)
	if resp.StatusCode != 400 {
		t.Errorf("bad JSON: %d %s", resp.StatusCode, body)
	}
	r, err := http.Get(s.URL() + "/models")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if !strings.Contains(string(b), `"id":"gpt-4o-mini"`) {
		t.Errorf("/v1/models: %s", b)
	}
}

func TestScriptsPathFilterAndRecorder(t *testing.T) {
	t.Parallel()
	s := llmtest.New(t, llmtest.Options{MaxRecorded: 2})
	s.Enqueue(llmtest.Script{Path: "/messages", Status: 500}, llmtest.Script{Text: "for anyone"})
	resp, body := post(t, s.URL()+"/chat/completions", `{"model":"m","messages":[{"role":"user","content":"q"}]}`)
	if resp.StatusCode != 200 || !strings.Contains(body, "for anyone") {
		t.Errorf("chat got %d %s", resp.StatusCode, body)
	}
	resp, _ = post(t, s.URL()+"/messages", `{"model":"claude","max_tokens":5,"messages":[{"role":"user","content":"q"}]}`)
	if resp.StatusCode != 500 {
		t.Errorf("anthropic got %d", resp.StatusCode)
	}
	post(t, s.URL()+"/responses", `{"model":"gpt-5","input":"just a string"}`)
	reqs := s.Requests()
	if len(reqs) != 2 || reqs[1].Path != "/v1/responses" {
		t.Fatalf("recorder: %d requests", len(reqs))
	}
	p := reqs[1].MustDecode()
	if p.LastUser() != "just a string" || p.Format != llm.FormatResponses || p.Model != "gpt-5" {
		t.Errorf("decoded %+v", p)
	}
	if m := reqs[1].Map(); m["model"] != "gpt-5" {
		t.Errorf("Map() = %v", m)
	}
	s.Reset()
	if len(s.Requests()) != 0 || s.Calls() != 0 || s.Pending() != 0 {
		t.Errorf("Reset left state")
	}
}

func TestCloseEndsStalledStreams(t *testing.T) {
	t.Parallel()
	s := llmtest.NewServer(llmtest.Options{})
	s.Enqueue(llmtest.Script{Stall: true, ErrorAfter: 1})
	resp, err := http.Post(s.URL()+"/chat/completions", "application/json", strings.NewReader(`{"model":"m","stream":true,"messages":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 1024)
	if _, err := resp.Body.Read(buf); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("Close hung on a stalled stream")
	}
	io.Copy(io.Discard, resp.Body)
}

func TestPacing(t *testing.T) {
	t.Parallel()
	s := llmtest.New(t, llmtest.Options{TTFT: 100 * time.Millisecond, TokensPerSecond: 50, Reply: "a b c d e f g h i j"})
	start := time.Now()
	_, body := post(t, s.URL()+"/chat/completions", `{"model":"m","stream":true,"messages":[]}`)
	el := time.Since(start)
	// 100ms TTFT + 9 intervals of 20ms = 280ms.
	if el < 250*time.Millisecond || el > 2*time.Second {
		t.Errorf("paced stream took %v", el)
	}
	if strings.Count(body, `"content":`) != 11 { // role chunk + 10 words
		t.Errorf("chunks:\n%s", body)
	}
}
