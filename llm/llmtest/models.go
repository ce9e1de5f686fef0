package llmtest

import (
	"fmt"

	"github.com/cometbot/cometbot/llm"
)

func price(v float64) *float64 { return &v }

// DefaultModels returns the default catalog: a handful of realistic text
// models with prices (USD per million tokens) and one image model.
func DefaultModels() []llm.ModelInfo {
	usd := "USD / M Tokens"
	return []llm.ModelInfo{
		{ID: "gpt-4o-mini", Provider: "OpenAI", Type: "text", Features: []string{"function_calling", "vision"},
			Pricing: llm.Pricing{Currency: usd, Input: 0.12, Output: 0.48}, APIDocURL: "https://apidoc.cometapi.com/chat"},
		{ID: "gpt-4o", Provider: "OpenAI", Type: "text", Features: []string{"function_calling", "vision"},
			Pricing: llm.Pricing{Currency: usd, Input: 2, Output: 8}, APIDocURL: "https://apidoc.cometapi.com/chat"},
		{ID: "gpt-5-mini", Provider: "OpenAI", Type: "text", Features: []string{"reasoning", "function_calling", "vision"},
			Pricing: llm.Pricing{Currency: usd, Input: 0.2, Output: 1.6}, APIDocURL: "https://apidoc.cometapi.com/responses"},
		{ID: "claude-sonnet-4-5", Provider: "Anthropic", Type: "text", Features: []string{"thinking", "vision", "prompt_caching"},
			Pricing: llm.Pricing{Currency: usd, Input: 2.4, Output: 12}, APIDocURL: "https://apidoc.cometapi.com/anthropic"},
		{ID: "gemini-2.5-flash", Provider: "Google", Type: "text", Features: []string{"thinking", "vision"},
			Pricing: llm.Pricing{Currency: usd, Input: 0.24, Output: 2}, APIDocURL: "https://apidoc.cometapi.com/gemini"},
		{ID: "deepseek-chat", Provider: "DeepSeek", Type: "text", Features: []string{"function_calling"},
			Pricing: llm.Pricing{Currency: usd, Input: 0.216, Output: 0.88}, APIDocURL: "https://apidoc.cometapi.com/chat"},
		{ID: "gpt-image-1", Provider: "OpenAI", Type: "image", Features: []string{"image_generation"},
			Pricing: llm.Pricing{Currency: "USD / request", PerRequest: price(0.04)}, APIDocURL: "https://apidoc.cometapi.com/images"},
	}
}

// GenerateModels returns the default models followed by synthetic ones, n in
// all, spread over providers and types like the real ~300-model catalog (for
// benchmarks and load tools).
func GenerateModels(n int) []llm.ModelInfo {
	ms := DefaultModels()
	families := []struct{ prefix, provider, typ string }{
		{"gpt-4.1", "OpenAI", "text"}, {"o3", "OpenAI", "text"}, {"claude-opus-4", "Anthropic", "text"},
		{"claude-haiku-4-5", "Anthropic", "text"}, {"gemini-2.5-pro", "Google", "text"}, {"qwen3", "Alibaba", "text"},
		{"llama-4", "Meta", "text"}, {"grok-4", "xAI", "text"}, {"mistral-large", "Mistral", "text"},
		{"kimi-k2", "Moonshot", "text"}, {"flux", "Black Forest Labs", "image"}, {"veo3", "Google", "video"},
		{"suno", "Suno", "audio"},
	}
	for i := 0; len(ms) < n; i++ {
		f := families[i%len(families)]
		m := llm.ModelInfo{
			ID:       fmt.Sprintf("%s-%d-%s", f.prefix, i/len(families), []string{"preview", "latest", "2025-06-01", "mini", "turbo"}[i%5]),
			Provider: f.provider, Type: f.typ, Features: []string{"function_calling"},
			Pricing: llm.Pricing{Currency: "USD / M Tokens", Input: float64(i%20) * 0.1, Output: float64(i%20) * 0.4},
		}
		if f.typ == "video" {
			m.Pricing = llm.Pricing{Currency: "USD / second", PerSecond: price(0.1)}
		}
		ms = append(ms, m)
	}
	return ms[:n]
}
