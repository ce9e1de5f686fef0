package llm_test

import (
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cometbot/cometbot/llm"
	"github.com/cometbot/cometbot/llm/llmtest"
)

func loadedCatalog(t testing.TB, s *llmtest.Server, cache llm.CatalogCache) *llm.Catalog {
	t.Helper()
	cat := llm.NewCatalog(llm.CatalogConfig{URL: s.CatalogURL(), Cache: cache})
	if err := cat.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	return cat
}

func TestCatalogLookupAndText(t *testing.T) {
	t.Parallel()
	s := llmtest.New(t)
	cat := loadedCatalog(t, s, nil)
	if !cat.Loaded() || cat.Len() != len(llmtest.DefaultModels()) {
		t.Fatalf("loaded %v len %d", cat.Loaded(), cat.Len())
	}
	m, ok := cat.Lookup("Claude-Sonnet-4-5")
	if !ok || m.ID != "claude-sonnet-4-5" || m.Provider != "Anthropic" || !m.IsText() || m.Pricing.Output != 12 {
		t.Fatalf("lookup = %+v %v", m, ok)
	}
	if _, ok := cat.Lookup("nope"); ok {
		t.Errorf("unknown id found")
	}
	for _, m := range cat.TextModels() {
		if m.ID == "gpt-image-1" {
			t.Errorf("image model in TextModels")
		}
	}
	img, _ := cat.Lookup("gpt-image-1")
	if img.IsText() || img.Pricing.PerRequest == nil || *img.Pricing.PerRequest != 0.04 {
		t.Errorf("image model = %+v", img)
	}
}

func TestModelCost(t *testing.T) {
	t.Parallel()
	pr := 0.01
	tests := []struct {
		m    llm.ModelInfo
		u    llm.Usage
		want float64
	}{
		{llm.ModelInfo{Pricing: llm.Pricing{Input: 2, Output: 8}}, llm.Usage{InputTokens: 1000, OutputTokens: 500}, 0.002 + 0.004},
		{llm.ModelInfo{Pricing: llm.Pricing{Input: 0.416, Output: 0.832}}, llm.Usage{InputTokens: 1_000_000, OutputTokens: 1_000_000}, 1.248},
		{llm.ModelInfo{Pricing: llm.Pricing{PerRequest: &pr}}, llm.Usage{InputTokens: 10}, 0.01},
		{llm.ModelInfo{}, llm.Usage{InputTokens: 10}, 0},
	}
	for i, tt := range tests {
		if got := tt.m.Cost(tt.u); math.Abs(got-tt.want) > 1e-12 {
			t.Errorf("%d: cost = %v, want %v", i, got, tt.want)
		}
	}
}

func TestCatalogSearch(t *testing.T) {
	t.Parallel()
	cat := llm.NewCatalog(llm.CatalogConfig{})
	cat.SetModels(llmtest.GenerateModels(320))
	tests := []struct {
		query string
		first string
		none  bool
	}{
		{"gpt-4o", "gpt-4o", false},           // exact beats prefix (gpt-4o-mini)
		{"GPT-4O-MINI", "gpt-4o-mini", false}, // case-insensitive
		{"sonnet", "claude-sonnet-4-5", false},
		{"flash", "gemini-2.5-flash", false},
		{"anthropic haiku", "claude-haiku-4-5-0-mini", false}, // words over id and provider
		{"dpskchat", "deepseek-chat", false},                  // fuzzy subsequence
		{"flux", "", true},                                    // image models are not text
		{"zzzz-qqq", "", true},
	}
	for _, tt := range tests {
		got := cat.Search(tt.query, 5)
		if tt.none {
			if len(got) != 0 {
				t.Errorf("Search(%q) = %v, want nothing", tt.query, ids(got))
			}
			continue
		}
		if len(got) == 0 || got[0].ID != tt.first {
			t.Errorf("Search(%q) = %v, want %q first", tt.query, ids(got), tt.first)
		}
		if len(got) > 5 {
			t.Errorf("limit ignored")
		}
	}
	if all := cat.Search("", 0); len(all) != len(cat.TextModels()) {
		t.Errorf("empty query: %d of %d", len(all), len(cat.TextModels()))
	}
	if got := cat.Search("gpt", 3); len(got) != 3 || got[0].ID != "gpt-4o" {
		t.Errorf("Search(gpt) = %v", ids(got))
	}
}

func ids(ms []llm.ModelInfo) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.ID)
	}
	return out
}

func TestCatalogSuggest(t *testing.T) {
	t.Parallel()
	cat := llm.NewCatalog(llm.CatalogConfig{})
	cat.SetModels(llmtest.DefaultModels())
	tests := []struct {
		in   string
		want string
	}{
		{"gpt4o-mini", "gpt-4o-mini"},
		{"claude-sonet-4-5", "claude-sonnet-4-5"},
		{"gemini-2.5-flsh", "gemini-2.5-flash"},
		{"deepseek", "deepseek-chat"},
		{"gpt-4o-mini-2024", "gpt-4o-mini"},
	}
	for _, tt := range tests {
		got := cat.Suggest(tt.in, 3)
		if len(got) == 0 || got[0] != tt.want {
			t.Errorf("Suggest(%q) = %v, want %q first", tt.in, got, tt.want)
		}
	}
	if got := cat.Suggest("totally-unrelated-model-name", 3); len(got) != 0 {
		t.Errorf("Suggest(unrelated) = %v", got)
	}
	if got := cat.Suggest("gpt-4o", 3); slices.Contains(got, "gpt-4o") {
		t.Errorf("Suggest returns the id itself: %v", got)
	}
}

func TestCatalogCacheServedWhileCatalogFails(t *testing.T) {
	t.Parallel()
	s := llmtest.New(t)
	path := filepath.Join(t.TempDir(), "sub", "catalog.json")
	cache := llm.FileCache(path)
	loadedCatalog(t, s, cache) // saves the good copy
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("cache not written: %v", err)
	}

	s.SetCatalogStatus(500)
	// A fresh process: the catalog is down, the cached copy is served.
	cat := llm.NewCatalog(llm.CatalogConfig{URL: s.CatalogURL(), Cache: cache})
	if err := cat.Refresh(context.Background()); err == nil {
		t.Fatal("Refresh succeeded against a failing catalog")
	}
	if !cat.Loaded() {
		t.Fatal("cached copy not loaded")
	}
	if _, ok := cat.Lookup("gpt-4o-mini"); !ok {
		t.Errorf("cached model missing")
	}
	if _, err := cat.FetchedAt(); err == nil {
		t.Errorf("FetchedAt does not report the refresh error")
	}
	// A failing refresh keeps the current content.
	s.SetCatalogStatus(0)
	s.SetModels(llmtest.GenerateModels(310))
	if err := cat.Refresh(context.Background()); err != nil || cat.Len() != 310 {
		t.Fatalf("refresh: %v, len %d", err, cat.Len())
	}
	s.SetCatalogStatus(503)
	if err := cat.Refresh(context.Background()); err == nil || cat.Len() != 310 {
		t.Fatalf("failed refresh: %v, len %d", err, cat.Len())
	}
}

func TestCatalogRunRefreshesAndStops(t *testing.T) {
	t.Parallel()
	s := llmtest.New(t)
	cat := llm.NewCatalog(llm.CatalogConfig{URL: s.CatalogURL(), Refresh: 50 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cat.Run(ctx) }()
	deadline := time.Now().Add(2 * time.Second)
	for !cat.Loaded() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	s.SetModels(llmtest.DefaultModels()[:2])
	for cat.Len() != 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if cat.Len() != 2 {
		t.Errorf("background refresh did not pick up the change")
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v", err)
		}
	case <-time.After(time.Second):
		t.Fatal("Run did not stop")
	}
}

func TestParseCatalogTolerant(t *testing.T) {
	t.Parallel()
	doc := `{"success":true,"page":0,"page_size":0,"total":4,"data":[
	 {"id":"a-model","provider":"OpenAI","model_type":"text","features":["reasoning"],"pricing":{"currency":"USD / M Tokens","input":"0.5","output":1.5,"per_request":null,"per_second":null},"api_doc_url":"x","upcoming":false,"endpoints":[{"path":"/v1/chat"}]},
	 {"id":"b-model","provider":"X","model_type":"text","features":"vision, tools","pricing":null},
	 {"id":"","provider":"skip-me"},
	 {"id":"c-video","provider":"Google","model_type":"video","pricing":{"per_second":"0.25","input":"n/a"},"brand_new_field":{"x":[1,2]}}
	]}`
	ms, err := llm.ParseCatalog([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 3 {
		t.Fatalf("%d models", len(ms))
	}
	if ms[0].Pricing.Input != 0.5 || ms[0].Pricing.Output != 1.5 || ms[0].Features[0] != "reasoning" {
		t.Errorf("a = %+v", ms[0])
	}
	if !slices.Equal(ms[1].Features, []string{"vision", "tools"}) {
		t.Errorf("b features = %v", ms[1].Features)
	}
	if ms[2].Pricing.PerSecond == nil || *ms[2].Pricing.PerSecond != 0.25 || ms[2].IsText() {
		t.Errorf("c = %+v", ms[2])
	}
	for _, bad := range []string{`{"success":false,"message":"down"}`, `not json`, `{"data":[]}`, `[1,2]`, `{"data":"x"}`, `{"data":[{"id":"a"},7]}`, ``} {
		if _, err := llm.ParseCatalog([]byte(bad)); err == nil {
			t.Errorf("ParseCatalog(%s) succeeded", bad)
		}
	}
}

func TestRouting(t *testing.T) {
	t.Parallel()
	s := llmtest.New(t)
	cat := loadedCatalog(t, s, nil)
	cat2 := llm.NewCatalog(llm.CatalogConfig{})
	cat2.SetModels(append(llmtest.DefaultModels(),
		llm.ModelInfo{ID: "gpt-4.1-thinker", Provider: "OpenAI", Type: "text", Features: []string{"Reasoning"}},
		llm.ModelInfo{ID: "claude-via-bedrock", Provider: "Amazon", Type: "text"},
		llm.ModelInfo{ID: "gemma-3", Provider: "Google", Type: "text"},
	))
	tests := []struct {
		name   string
		cat    *llm.Catalog
		routes []llm.Route
		model  string
		want   llm.Format
	}{
		{"chat default", nil, nil, "gpt-4o-mini", llm.FormatChat},
		{"deepseek", nil, nil, "deepseek-chat", llm.FormatChat},
		{"claude by id", nil, nil, "claude-opus-4-1", llm.FormatAnthropic},
		{"gemini by id", nil, nil, "gemini-2.5-pro", llm.FormatGemini},
		{"o3 by id", nil, nil, "o3", llm.FormatResponses},
		{"o4-mini by id", nil, nil, "o4-mini", llm.FormatResponses},
		{"gpt-5 by id", nil, nil, "gpt-5", llm.FormatResponses},
		{"gpt-5-chat is chat", nil, nil, "gpt-5-chat-latest", llm.FormatChat},
		{"o1x is not o1", nil, nil, "o1x", llm.FormatChat},
		{"vendor prefix", nil, nil, "anthropic/claude-3-haiku", llm.FormatAnthropic},
		{"catalog anthropic", cat, nil, "claude-sonnet-4-5", llm.FormatAnthropic},
		{"catalog google", cat, nil, "gemini-2.5-flash", llm.FormatGemini},
		{"catalog openai reasoning", cat, nil, "gpt-5-mini", llm.FormatResponses},
		{"catalog openai plain", cat, nil, "gpt-4o", llm.FormatChat},
		{"catalog feature reasoning", cat2, nil, "gpt-4.1-thinker", llm.FormatResponses},
		{"catalog non-anthropic provider", cat2, nil, "claude-via-bedrock", llm.FormatAnthropic},
		{"catalog google non-gemini", cat2, nil, "gemma-3", llm.FormatChat},
		{"route exact", cat, []llm.Route{{Pattern: "claude-sonnet-4-5", Format: llm.FormatChat}}, "Claude-Sonnet-4-5", llm.FormatChat},
		{"route glob", nil, []llm.Route{{Pattern: "gpt-*", Format: llm.FormatResponses}}, "gpt-4o", llm.FormatResponses},
		{"first route wins", nil, []llm.Route{{Pattern: "gemini-*", Format: llm.FormatChat}, {Pattern: "*", Format: llm.FormatGemini}}, "gemini-2.5-pro", llm.FormatChat},
	}
	for _, tt := range tests {
		c, err := llm.NewClient(llm.Config{BaseURL: s.URL(), Catalog: tt.cat, Routes: tt.routes})
		if err != nil {
			t.Fatal(err)
		}
		if got := c.FormatFor(tt.model); got != tt.want {
			t.Errorf("%s: FormatFor(%q) = %q, want %q", tt.name, tt.model, got, tt.want)
		}
	}
}

// A failed catalog fetch says where (the URL without secrets), what happened
// and the fix, in its error and in UserMessage.
func TestCatalogErrorsSayWhatHappened(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		status      int
		contentType string
		body        string
		want        string // in the problem
	}{
		{"401", 401, "application/json", `{"error":{"message":"Invalid token"}}`, "answered HTTP 401"},
		{"500 html", 502, "text/html", "<html>bad gateway</html>", "answered HTTP 502"},
		{"html page", 200, "text/html; charset=utf-8", "<!DOCTYPE html><html><body>Welcome</body></html>", "answered an HTML page, not the model list"},
		{"html without content type", 200, "", "<html><body>Welcome</body></html>", "HTML page"},
		{"array of numbers", 200, "application/json", `[1,2,3]`, "the model list holds a number, not model records"},
		{"data is a string", 200, "application/json", `{"data":"x"}`, `"data" is a string, not a list of models`},
		{"data is an object", 200, "application/json", `{"success":true,"data":{"gpt-4o":{}}}`, `"data" is an object`},
		{"no data", 200, "application/json", `{"object":"list"}`, `no "data" list`},
		{"a JSON string", 200, "application/json", `"models"`, "the document is a string"},
		{"not JSON", 200, "text/plain", `hello`, "not JSON"},
		{"empty list", 200, "application/json", `{"success":true,"data":[]}`, "the model list is empty"},
		{"success false", 200, "application/json", `{"success":false,"message":"maintenance"}`, "success=false"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.contentType != "" {
					w.Header().Set("Content-Type", tt.contentType)
				}
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			}))
			defer ts.Close()
			u, _ := url.Parse(ts.URL)
			clean := "http://" + u.Host + "/api/models"
			// Secrets in user info and query must not show.
			cat := llm.NewCatalog(llm.CatalogConfig{URL: "http://admin:hunter2@" + u.Host + "/api/models?key=sk-catalogsecret123"})
			err := cat.Refresh(context.Background())
			var ce *llm.CatalogError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want *llm.CatalogError", err)
			}
			if ce.URL != clean || ce.Status != tt.status || !strings.Contains(ce.Problem, tt.want) {
				t.Errorf("CatalogError = %+v, want URL %s status %d problem containing %q", ce, clean, tt.status, tt.want)
			}
			um := llm.UserMessage(err)
			wantPrefix := "The model catalog at " + clean + " "
			if !strings.HasPrefix(um, wantPrefix) || !strings.HasSuffix(um, " — check COMETAPI_CATALOG_URL.") || !strings.Contains(um, tt.want) {
				t.Errorf("UserMessage = %q", um)
			}
			for _, s := range []string{err.Error(), um} {
				if strings.Contains(s, "hunter2") || strings.Contains(s, "catalogsecret") || strings.Contains(s, "admin") {
					t.Errorf("secret leaked: %s", s)
				}
			}
			if _, ferr := cat.FetchedAt(); !errors.As(ferr, &ce) {
				t.Errorf("FetchedAt error = %v", ferr)
			}
		})
	}
	if got := llm.UserMessage(&llm.CatalogError{URL: "https://api.cometapi.com/api/models", Status: 401, Problem: "answered HTTP 401"}); got != "The model catalog at https://api.cometapi.com/api/models answered HTTP 401 — check COMETAPI_CATALOG_URL." {
		t.Errorf("UserMessage = %q", got)
	}
}

func TestCatalogUnreachable(t *testing.T) {
	t.Parallel()
	ts := httptest.NewServer(http.NotFoundHandler())
	addr := ts.Listener.Addr().String()
	ts.Close()
	cat := llm.NewCatalog(llm.CatalogConfig{URL: "http://" + addr + "/api/models?token=s3cr3t"})
	err := cat.Refresh(context.Background())
	var ce *llm.CatalogError
	if !errors.As(err, &ce) || ce.Status != 0 || !strings.Contains(ce.Problem, "could not be reached") {
		t.Fatalf("err = %v", err)
	}
	if um := llm.UserMessage(err); strings.Contains(um, "s3cr3t") || !strings.Contains(um, "http://"+addr+"/api/models could not be reached") {
		t.Errorf("UserMessage = %q", um)
	}
}

// TestCatalogKeepsLastKnownPrices: a model an older (cached) catalog priced
// keeps that price when the fresh catalog lacks it or lists it unpriced, in
// this process and, through the cached copy, after a restart.
func TestCatalogKeepsLastKnownPrices(t *testing.T) {
	t.Parallel()
	s := llmtest.New(t)
	cache := llm.FileCache(filepath.Join(t.TempDir(), "catalog.json"))
	old := []llm.ModelInfo{
		{ID: "kept-model", Type: "text", Pricing: llm.Pricing{Input: 1, Output: 2}},
		{ID: "lost-price", Type: "text", Pricing: llm.Pricing{Input: 3, Output: 4}},
		{ID: "repriced", Type: "text", Pricing: llm.Pricing{Input: 5, Output: 6}},
	}
	s.SetModels(old)
	loadedCatalog(t, s, cache)

	// The fresh catalog drops kept-model, lists lost-price without a price,
	// changes repriced's price and adds a model that was never priced.
	s.SetModels([]llm.ModelInfo{
		{ID: "lost-price", Type: "text"},
		{ID: "repriced", Type: "text", Pricing: llm.Pricing{Input: 7, Output: 8}},
		{ID: "never-priced", Type: "text"},
	})
	fresh := llm.NewCatalog(llm.CatalogConfig{URL: s.CatalogURL(), Cache: cache})
	if err := fresh.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := fresh.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.SetCatalogStatus(500)
	restarted := llm.NewCatalog(llm.CatalogConfig{URL: s.CatalogURL(), Cache: cache})
	if err := restarted.Refresh(context.Background()); err == nil || !restarted.Loaded() {
		t.Fatalf("restart with the catalog down: err %v, loaded %v", err, restarted.Loaded())
	}
	tests := []struct {
		id     string
		ok     bool
		output float64
	}{
		{"kept-model", true, 2},
		{"KEPT-MODEL", true, 2},
		{"lost-price", true, 4},
		{"repriced", true, 8},
		{"never-priced", false, 0},
		{"unknown", false, 0},
	}
	for name, cat := range map[string]*llm.Catalog{"same process": fresh, "after restart": restarted} {
		for _, tt := range tests {
			p, ok := cat.Price(tt.id)
			if ok != tt.ok || p.Output != tt.output {
				t.Errorf("%s: Price(%q) = %+v, %v; want output %v, %v", name, tt.id, p, ok, tt.output, tt.ok)
			}
		}
		if _, ok := cat.Lookup("kept-model"); ok {
			t.Errorf("%s: a model the catalog dropped is listed again", name)
		}
	}
}

func TestPricingKnown(t *testing.T) {
	t.Parallel()
	zero := 0.0
	tests := []struct {
		p    llm.Pricing
		want bool
	}{
		{llm.Pricing{}, false},
		{llm.Pricing{Currency: "USD / M Tokens"}, false},
		{llm.Pricing{Input: 0.1}, true},
		{llm.Pricing{Output: 0.1}, true},
		{llm.Pricing{PerRequest: &zero}, true},
	}
	for i, tt := range tests {
		if got := tt.p.Known(); got != tt.want {
			t.Errorf("%d: %+v.Known() = %v, want %v", i, tt.p, got, tt.want)
		}
	}
}
