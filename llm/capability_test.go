package llm_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/cometbot/cometbot/llm"
	"github.com/cometbot/cometbot/llm/llmtest"
)

func TestModelAccepts(t *testing.T) {
	t.Parallel()
	type want struct{ accepts, known bool }
	yes, no, silent := want{true, true}, want{false, true}, want{false, false}
	tests := []struct {
		name       string
		m          llm.ModelInfo
		image, pdf want
	}{
		{"no data", llm.ModelInfo{}, silent, silent},
		{"unrelated features", llm.ModelInfo{Features: []string{"function_calling", "reasoning"}}, silent, silent},
		{"vision", llm.ModelInfo{Features: []string{"function_calling", "vision"}}, yes, silent},
		{"Vision capitalised", llm.ModelInfo{Features: []string{"Vision"}}, yes, silent},
		{"image_input", llm.ModelInfo{Features: []string{"image_input"}}, yes, silent},
		{"image-understanding", llm.ModelInfo{Features: []string{"Image-Understanding"}}, yes, silent},
		{"multimodal", llm.ModelInfo{Features: []string{"multimodal"}}, yes, silent},
		{"multi_modal", llm.ModelInfo{Features: []string{"multi_modal"}}, yes, silent},
		{"image", llm.ModelInfo{Features: []string{"image"}}, yes, silent},
		{"image_to_text", llm.ModelInfo{Features: []string{"image_to_text"}}, yes, silent},
		{"image_generation is output", llm.ModelInfo{Features: []string{"image_generation"}}, silent, silent},
		{"text_to_image is output", llm.ModelInfo{Features: []string{"text-to-image"}}, silent, silent},
		{"image_output is output", llm.ModelInfo{Features: []string{"image_output"}}, silent, silent},
		{"image editing is output", llm.ModelInfo{Features: []string{"image_edit"}}, silent, silent},
		{"pdf", llm.ModelInfo{Features: []string{"vision", "pdf"}}, yes, yes},
		{"pdf_input", llm.ModelInfo{Features: []string{"PDF input"}}, silent, yes},
		{"file", llm.ModelInfo{Features: []string{"file"}}, silent, yes},
		{"file_input", llm.ModelInfo{Features: []string{"file_input"}}, silent, yes},
		{"document", llm.ModelInfo{Features: []string{"document_understanding"}}, silent, yes},
		{"file_search is a tool", llm.ModelInfo{Features: []string{"file_search"}}, silent, silent},
		{"document generation is output", llm.ModelInfo{Features: []string{"document_generation"}}, silent, silent},
		{"text only", llm.ModelInfo{Features: []string{"text-only"}}, no, no},
		{"bare text tag says nothing", llm.ModelInfo{Features: []string{"text", "function_calling"}}, silent, silent},
		{"text and vision tags", llm.ModelInfo{Features: []string{"text", "vision"}}, yes, silent},
		{"modalities decide", llm.ModelInfo{Features: []string{"vision"}, InputModalities: []string{"text"}}, no, no},
		{"modalities with image", llm.ModelInfo{InputModalities: []string{"text", "image"}}, yes, no},
		{"modalities with file", llm.ModelInfo{InputModalities: []string{"text", "image", "file"}}, yes, yes},
		{"modalities with pdf", llm.ModelInfo{InputModalities: []string{"text", "pdf"}}, no, yes},
	}
	for _, tt := range tests {
		for _, k := range []struct {
			kind string
			want want
		}{{"image", tt.image}, {"vision", tt.image}, {"file", tt.pdf}, {"PDF", tt.pdf}} {
			a, known := tt.m.Accepts(k.kind)
			if (want{a, known}) != k.want {
				t.Errorf("%s: Accepts(%q) = %v, %v; want %v, %v", tt.name, k.kind, a, known, k.want.accepts, k.want.known)
			}
		}
	}
	if a, known := (llm.ModelInfo{Features: []string{"vision"}}).Accepts("audio"); a || known {
		t.Errorf("unknown kind: %v, %v", a, known)
	}
}

func TestParseCatalogModalities(t *testing.T) {
	t.Parallel()
	tests := []struct {
		rec  string
		want []string
	}{
		{`{"id":"m"}`, nil},
		{`{"id":"m","input_modalities":["Text","Image"]}`, []string{"text", "image"}},
		{`{"id":"m","input_modalities":null,"modalities":["text","image","file"]}`, []string{"text", "image", "file"}},
		{`{"id":"m","modalities":{"input":["text","image"],"output":["text"]}}`, []string{"text", "image"}},
		{`{"id":"m","modalities":"text,image"}`, []string{"text", "image"}},
		{`{"id":"m","architecture":{"modality":"text+image->text"}}`, []string{"text", "image"}},
		{`{"id":"m","architecture":{"input_modalities":["text","file"],"modality":"text->text"}}`, []string{"text", "file"}},
		{`{"id":"m","modalities":{"input":{"weird":true}}}`, nil},
		{`{"id":"m","modalities":42,"architecture":"x"}`, nil},
	}
	for _, tt := range tests {
		ms, err := llm.ParseCatalog([]byte(`{"success":true,"data":[` + tt.rec + `]}`))
		if err != nil {
			t.Errorf("%s: %v", tt.rec, err)
			continue
		}
		if !slices.Equal(ms[0].InputModalities, tt.want) {
			t.Errorf("%s: modalities %q, want %q", tt.rec, ms[0].InputModalities, tt.want)
		}
	}
	// The fake's catalog document carries them through.
	in := []llm.ModelInfo{{ID: "a", Type: "text", Features: []string{}, InputModalities: []string{"text", "image"}}}
	ms, err := llm.ParseCatalog(llmtest.CatalogJSON(in))
	if err != nil || !slices.Equal(ms[0].InputModalities, []string{"text", "image"}) {
		t.Errorf("round trip: %+v %v", ms, err)
	}
}

// TestSearchCapabilities: "/model list vision" (and "image", "pdf") finds
// the models that take them, after models whose id matches.
func TestSearchCapabilities(t *testing.T) {
	t.Parallel()
	models := append(llmtest.GenerateModels(320),
		llm.ModelInfo{ID: "llama-3.2-90b-vision-instruct", Provider: "Meta", Type: "text"},
		llm.ModelInfo{ID: "qwen-vl-max", Provider: "Alibaba", Type: "text", InputModalities: []string{"text", "image"}},
		llm.ModelInfo{ID: "claude-opus-4-1", Provider: "Anthropic", Type: "text", Features: []string{"vision", "pdf"}},
		llm.ModelInfo{ID: "doc-reader", Provider: "X", Type: "text", Features: []string{"document_input"}},
		llm.ModelInfo{ID: "flux-vision-gen", Provider: "BFL", Type: "image", Features: []string{"vision"}}, // not a text model
	)
	cat := llm.NewCatalog(llm.CatalogConfig{})
	cat.SetModels(models)
	var vision []string
	for _, m := range cat.TextModels() {
		if ok, _ := m.Accepts(llm.InputImage); ok {
			vision = append(vision, m.ID)
		}
	}
	tests := []struct {
		query string
		first string
		all   []string // exactly these, in any order
	}{
		{"vision", "llama-3.2-90b-vision-instruct", append(vision, "llama-3.2-90b-vision-instruct")},
		{"image", "", vision},
		{"pdf", "", []string{"claude-opus-4-1", "doc-reader"}},
		{"document", "doc-reader", []string{"claude-opus-4-1", "doc-reader"}},
		{"anthropic vision", "", []string{"claude-opus-4-1", "claude-sonnet-4-5"}},
		{"claude pdf", "claude-opus-4-1", []string{"claude-opus-4-1"}},
	}
	for _, tt := range tests {
		got := ids(cat.Search(tt.query, 0))
		if !sameSet(got, tt.all) {
			t.Errorf("Search(%q) = %v, want %v", tt.query, got, tt.all)
		}
		if tt.first != "" && (len(got) == 0 || got[0] != tt.first) {
			t.Errorf("Search(%q) = %v, want %q first", tt.query, got, tt.first)
		}
	}
	if ok, known := cat.Accepts("Claude-Opus-4-1", "file"); !ok || !known {
		t.Errorf("Catalog.Accepts = %v, %v", ok, known)
	}
	if ok, known := cat.Accepts("no-such-model", "image"); ok || known {
		t.Errorf("Catalog.Accepts(unknown model) = %v, %v", ok, known)
	}
}

func sameSet(a, b []string) bool {
	return fmt.Sprint(slices.Sorted(slices.Values(a))) == fmt.Sprint(slices.Sorted(slices.Values(b)))
}
