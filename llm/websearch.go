package llm

import "errors"

// ErrNoWebSearch: the request asked for web search on a route without a
// built-in search tool (Chat Completions).
var ErrNoWebSearch = errors.New("llm: web search needs a Responses, Anthropic or Gemini model")
