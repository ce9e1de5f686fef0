// Package llm talks to the CometAPI gateway (or any compatible gateway) in its
// four wire formats — OpenAI Chat Completions, OpenAI Responses, Anthropic
// Messages and Gemini native — behind one provider-neutral, streaming API. It
// also owns the model catalog, typed gateway errors, retries and format routing.
//
// # Calling a model
//
//	c, err := llm.NewClient(llm.Config{APIKey: key, Catalog: cat})
//	resp, err := c.Stream(ctx, llm.Request{
//		Model:    "claude-sonnet-4-5",
//		System:   "You are helpful.",
//		Messages: []llm.Message{{Role: llm.RoleUser, Content: "Hi"}},
//	}, func(d llm.Delta) error {
//		// d.Text is answer text, d.Reasoning is thinking text, kept apart.
//		return nil // an error here stops the call and is returned as is
//	})
//	if err != nil {
//		post(llm.UserMessage(err)) // one friendly sentence; no secrets, no JSON
//	}
//
// Complete is the non-streaming variant. Both honour ctx everywhere.
//
// # How an answer ends
//
// An answer is complete when the format's stop reason arrives (chat
// finish_reason, Responses response.completed, Anthropic stop_reason, Gemini
// finishReason); Response.StopReason holds it, normalised (StopEnd,
// StopLength, StopToolCalls, StopContentFilter). Stopping at the model's
// output token limit is a completion: Response.Truncated. A stream that ends
// without its stop reason — even on [DONE] or message_stop — is a cut answer:
// ErrIncomplete, with the partial text and usage in Error.Partial. With
// Request.MaxAnswerChars the client stops reading at that many characters and
// returns the answer cut there: Response.Cut, not an error. One SSE event is
// limited to 4 MiB (for models that generate images, enough for one image of
// MaxImageBytes); a larger one is refused.
//
// # Attachments
//
// User messages carry Images (png, jpeg, gif, webp; inline bytes or a URL)
// and Files (PDF), sent in each format's native shape: chat image_url and
// file parts, responses input_image and input_file, anthropic image and
// document blocks, gemini inline_data. The request body streams them as
// base64 while it is sent, so a turn holds about its attachments' own size
// in memory, not three base64 copies. Images the model generates (Gemini
// image models, the Responses image_generation tool) come back in
// Response.Images, each up to MaxImageBytes. ModelInfo.Accepts tells from
// the catalog whether a model takes image or file input; a model that
// refuses one fails with ErrAttachment, never silently without it.
//
// # Tools and web search
//
// Request.Tools offers functions (name within [A-Za-z0-9_-]{1,64},
// description, JSON Schema parameters), encoded per format: chat
// tools[].function, responses function tools (strict off), anthropic
// input_schema tools, gemini functionDeclarations with the schema reduced
// to what Gemini takes (no $schema, additionalProperties, $ref, default,
// ...). The model's calls come back in Response.ToolCalls, whole, in order,
// with StopReason StopToolCalls; while streaming, each call is announced
// once as it starts (Delta.ToolCall) and its argument fragments count as
// progress for the stall watchdog. Arguments are always a JSON object:
// "{}" when empty, {"_raw": text} (RawArgsKey) when the model's text did not
// parse. Gemini gives no ids: the client makes up "call_<n>" and keeps the
// call's thoughtSignature (ToolCall.Signature), which Gemini 3 needs back.
//
// A tool loop appends the assistant Message (Text and ToolCalls) and a
// RoleTool Message with one ToolResult per call, then calls again:
//
//	for {
//		resp, err := c.Stream(ctx, req, onDelta)
//		if err != nil || len(resp.ToolCalls) == 0 {
//			break
//		}
//		req.Messages = append(req.Messages, llm.Message{Role: llm.RoleAssistant, Content: resp.Text, ToolCalls: resp.ToolCalls})
//		var results []llm.ToolResult
//		for _, tc := range resp.ToolCalls {
//			text, failed := run(ctx, tc.Name, tc.Arguments) // a failure's text says why
//			results = append(results, llm.ToolResult{CallID: tc.ID, Name: tc.Name, Content: text, IsError: failed})
//		}
//		req.Messages = append(req.Messages, llm.Message{Role: llm.RoleTool, ToolResults: results})
//	}
//
// The history travels in each format's shape: chat assistant tool_calls and
// role "tool" messages; responses function_call and function_call_output
// items; anthropic tool_use blocks, then tool_result blocks first in the next
// user turn (is_error for failures); gemini functionCall parts, then
// functionResponse parts {"result": text} or {"error": text}; chat and
// responses, which have no error flag, prefix a failure's text with
// "Error: ". A Gemini 3 call whose signature was lost (a history from
// another model) is sent with Google's documented skip value. Every format
// wants each call answered right after it, so the client repairs a history
// that is not: a call without a result gets an error result, a result whose
// call was trimmed away is dropped, user messages in between move after the
// results, and repeated ids are made unique.
//
// Request.WebSearch adds the built-in search: responses {"type":"web_search"},
// anthropic's web_search server tool (max_uses AnthropicWebSearchMaxUses),
// gemini {"google_search":{}}. Chat Completions has none: the call fails
// with ErrNoWebSearch before anything is sent (also when a native format
// fell back to chat). The sources the answer cites come back in
// Response.Citations, once per URL in order of first citation (responses
// url_citation annotations, anthropic web_search_result_location citations,
// gemini groundingChunks, chat search models' url_citation annotations).
//
// A model or provider that refuses the tools fails with ErrTools (or
// ErrNoWebSearch for the search), never retried without them; so do tool
// definitions no format takes, before sending.
//
// # Formats and routing
//
// FormatFor decides the wire format per model:
//
//	Config.Routes (exact id or path.Match glob, first match) → that format
//	a native format failed with 404/405/3xx/HTML for the model → chat (remembered)
//	catalog provider Anthropic/Claude and id contains "claude"  → anthropic  POST {host}/v1/messages
//	catalog provider Google/Gemini and id contains "gemini"     → gemini     POST {host}/v1beta/models/{m}:streamGenerateContent?alt=sse
//	provider OpenAI, id o1*/o3*/o4*/gpt-5* (not *-chat*) or a
//	  catalog feature containing "reasoning"/"thinking"        → responses  POST {base}/responses
//	no catalog entry, or another provider: the same rules on the id alone
//	  ("claude…" → anthropic, "gemini…" → gemini, o1/o3/o4/gpt-5 → responses)
//	everything else                                             → chat       POST {base}/chat/completions
//
// {base} is Config.BaseURL (default https://api.cometapi.com/v1); {host} is
// the base with a trailing /v1 removed. Chat and Responses authenticate with
// "Authorization: Bearer"; Anthropic also sends x-api-key and
// "anthropic-version: 2023-06-01"; Gemini also sends x-goog-api-key. Chat
// streams ask for usage with stream_options.include_usage. All four streams
// are read by the one spec-compliant SSE reader in package llm/sse.
//
// # Errors and retries
//
// Every failure is an *Error with a Kind (see the Err* sentinels for
// errors.Is), the HTTP status, the gateway's message (API key scrubbed),
// request id and named parameter. UserMessage turns any error into one short
// sentence for the chat.
//
//   - 429, 500, 502, 503, 504, 520–524, 529, an HTML 5xx page, an error
//     event or a broken stream before any text, and connection failures are
//     retried with jittered exponential backoff (RetryBase·2^n, capped at
//     RetryMaxDelay, jitter 50–100%) or the gateway's Retry-After, while the
//     total stays within RetryDeadline. Nothing is retried once text has
//     reached onDelta: the error is returned with Started() true.
//   - A 429 also halves the global concurrency limit (AIMD; it climbs back by
//     one per `limit` successes up to MaxConcurrency).
//   - A 400 naming an optional parameter (temperature, top_p, max tokens,
//     stream_options) is retried once without any optional parameter; the
//     named one is remembered per model and left out of later requests.
//     Images and files are never dropped: a refusal about them (or a 413)
//     is ErrAttachment at once. Nor are tools or web search: a refusal
//     about them is ErrTools or ErrNoWebSearch at once.
//   - 401/403 → ErrAuth; 404/405, 3xx and HTML pages → ErrBaseURL (after the
//     native-format fallback, when one applies); 402 or exhausted quota →
//     ErrQuota; unknown model → ErrModel; other 4xx → ErrBadRequest.
//   - The stall watchdog cancels an attempt that receives no headers, or then
//     no content (text, reasoning, tool calls and their argument fragments,
//     web search activity, new usage; not keep-alive comments, pings or
//     empty chunks), for StallTimeout (ErrTimeout; not retried — the user
//     is told).
//   - A failed catalog fetch is a *CatalogError naming the URL (without user
//     info or query), what it answered and the fix. A key in the base URL's
//     user info never appears in an error or a log.
//
// # Catalog
//
// Catalog fetches GET {host}/api/models (CatalogURLFor), keeps it in memory,
// refreshes it in the background (Run), persists the last good document
// through a CatalogCache (FileCache, or the bbolt store) and answers Lookup,
// Search (which also matches capabilities: "vision", "pdf"), Suggest and
// TextModels. ModelInfo.Cost prices a reply's Usage; ModelInfo.Accepts reads
// image and file input support from features and input modalities.
//
// # Testing
//
// Package llm/llmtest is a loopback fake gateway that speaks all four formats
// and the catalog, scriptable per call (statuses, Retry-After, HTML bodies,
// mid-stream errors, stalls with or without keep-alives, cut streams, long
// or endless streams generated lazily, latency, usage, generated images,
// tool calls with fragmented arguments, web search citations) with a
// request recorder that decodes every format's image and file parts, tool
// definitions, calls and results (neutral and native), refusing malformed
// ones like the real service.
package llm
