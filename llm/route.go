package llm

import (
	"path"
	"regexp"
	"strings"
)

// FormatFor returns the wire format the client uses for model, in this order:
//
//  1. the first Config.Routes entry whose pattern matches (exact id or glob,
//     case-insensitive);
//  2. Chat Completions, if a native format failed for this model with a
//     path/format problem earlier (remembered for the client's lifetime);
//  3. by provider — from the catalog when it knows the model (and the
//     provider is one of these), else from the model id: Anthropic/Claude →
//     Anthropic Messages; Google/Gemini → Gemini native; OpenAI reasoning
//     models (o1, o3, o4 and gpt-5 families except *-chat*, or catalog
//     features mentioning reasoning/thinking) → Responses;
//  4. Chat Completions for everything else.
func (c *Client) FormatFor(model string) Format {
	lm := strings.ToLower(model)
	for _, r := range c.routes {
		p := strings.ToLower(r.Pattern)
		if p == lm {
			return r.Format
		}
		if ok, _ := path.Match(p, lm); ok {
			return r.Format
		}
	}
	c.mu.Lock()
	f, ok := c.fallback[lm]
	c.mu.Unlock()
	if ok {
		return f
	}
	if c.catalog != nil {
		if m, ok := c.catalog.Lookup(model); ok {
			return routeByInfo(m)
		}
	}
	return routeByID(model)
}

// routeByInfo picks the format from catalog data.
func routeByInfo(m ModelInfo) Format {
	prov := strings.ToLower(m.Provider)
	id := baseID(m.ID)
	switch {
	case strings.Contains(prov, "anthropic") || strings.Contains(prov, "claude"):
		if strings.Contains(id, "claude") {
			return FormatAnthropic
		}
	case strings.Contains(prov, "google") || strings.Contains(prov, "gemini"):
		if strings.Contains(id, "gemini") {
			return FormatGemini
		}
	case strings.Contains(prov, "openai"):
		if openAIReasoning(id) {
			return FormatResponses
		}
		for _, f := range m.Features {
			lf := strings.ToLower(f)
			if strings.Contains(lf, "reasoning") || strings.Contains(lf, "thinking") {
				return FormatResponses
			}
		}
		return FormatChat
	}
	return routeByID(m.ID)
}

var openAIReasoningRe = regexp.MustCompile(`^(o1|o3|o4)(-|$)|^gpt-5`)

func openAIReasoning(id string) bool {
	return openAIReasoningRe.MatchString(id) && !strings.Contains(id, "-chat")
}

// routeByID picks the format from the model id alone (no catalog entry).
func routeByID(model string) Format {
	id := baseID(model)
	switch {
	case strings.HasPrefix(id, "claude"):
		return FormatAnthropic
	case strings.HasPrefix(id, "gemini"):
		return FormatGemini
	case openAIReasoning(id):
		return FormatResponses
	}
	return FormatChat
}

// baseID lower-cases an id and drops a vendor prefix ("openai/gpt-5" → "gpt-5").
func baseID(id string) string {
	id = strings.ToLower(id)
	if i := strings.LastIndexByte(id, '/'); i >= 0 {
		id = id[i+1:]
	}
	return id
}
