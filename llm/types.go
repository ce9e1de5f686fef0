package llm

import (
	"encoding/json"
	"strings"
)

// Role is who wrote a message in a conversation.
type Role string

// The roles a Message may carry. The system prompt travels in Request.System,
// not as a message.
const (
	RoleUser      Role = "user"
	RoleAssistant Role = "assistant"
	// RoleTool marks a message carrying ToolResults (each format encodes it
	// in its own shape: chat role "tool", Responses function_call_output,
	// Anthropic tool_result in a user turn, Gemini functionResponse).
	RoleTool Role = "tool"
)

// Image is an optional image attached to a user message: either a URL the
// gateway can fetch or inline bytes with their MIME type.
type Image struct {
	URL      string
	MIMEType string
	Data     []byte
}

// File is a document attached to a user message (PDF), sent in each
// format's native document shape. Text files are inlined by the caller.
type File struct {
	Name     string
	MIMEType string
	Data     []byte
}

// Tool is a function the model may call: its name (within every format's
// rules, [A-Za-z0-9_-]{1,64}), a description and its parameters as a JSON
// Schema object.
type Tool struct {
	Name        string
	Description string
	// Parameters is a JSON Schema object ({"type":"object",...}); nil means
	// no parameters.
	Parameters json.RawMessage
}

// ToolCall is one call the model made.
type ToolCall struct {
	// ID ties the call to its result (chat tool_call_id, Responses call_id,
	// Anthropic tool_use id). Gemini has none: the client makes one up.
	ID string
	// Name is the tool's name as offered in Request.Tools.
	Name string
	// Arguments is the JSON object the model passed: "{}" when none, and
	// {"_raw": "..."} (RawArgsKey) when the model's text was not a JSON
	// object. Always a JSON object in a Response.
	Arguments json.RawMessage
	// Signature is opaque provider state that belongs to the call and must
	// travel back with it in the history: Gemini's thoughtSignature (which
	// Gemini 3 models require on the calls of the current turn). Keep it
	// with the call when storing a conversation; empty for other formats.
	Signature string
}

// ToolResult is the outcome of one tool call, sent back to the model.
type ToolResult struct {
	// CallID is the ToolCall.ID it answers; Name the tool's name (Gemini
	// matches results by name).
	CallID string
	Name   string
	// Content is the result as text (JSON or prose).
	Content string
	// IsError marks a failed call: Content explains the failure.
	IsError bool
}

// Citation is a source a built-in web search cited.
type Citation struct {
	URL   string
	Title string
}

// Message is one turn of a conversation.
type Message struct {
	Role    Role
	Content string
	Images  []Image
	Files   []File
	// ToolCalls are the calls an assistant message made (after its Content).
	ToolCalls []ToolCall
	// ToolResults are the results of the previous assistant message's
	// calls; a message carrying them has Role RoleTool and nothing else.
	// (Text or attachments on it are sent as a user message after the
	// results.) Every format requires one result per call right after the
	// call: the client sends an error result for a call without one, drops
	// a result whose call is not in the history (a trimmed conversation),
	// and moves user messages found between calls and results after them.
	ToolResults []ToolResult
}

// Request is one provider-neutral model call.
type Request struct {
	// Model is the gateway model id, e.g. "gpt-4o-mini" or "claude-sonnet-4-5".
	Model string
	// System is the system prompt; empty means none.
	System string
	// Messages are the conversation turns, oldest first.
	Messages []Message
	// Temperature is optional; nil leaves the provider's default.
	Temperature *float64
	// MaxOutputTokens is optional; 0 leaves the provider's default.
	MaxOutputTokens int
	// TopP is optional; nil leaves the provider's default.
	TopP *float64
	// Tools are the functions the model may call this step.
	Tools []Tool
	// WebSearch asks for the format's built-in web search tool (Responses
	// web_search, Anthropic web_search server tool, Gemini google_search).
	// Chat Completions has none: the call fails with ErrNoWebSearch.
	WebSearch bool
	// MaxAnswerChars bounds the answer text, in characters (runes); 0 means
	// no limit. When the answer grows past it the client stops reading (the
	// request is cancelled) and returns a Response whose Text is cut at the
	// limit, with StopReason StopMaxAnswerChars (see Response.Cut). It is not
	// an error. Kept reasoning text is bounded by the same number.
	MaxAnswerChars int
}

// Delta is one streamed increment of a reply. Reasoning text (from models
// that expose their thinking) is kept apart from the answer text.
type Delta struct {
	Text      string
	Reasoning string
	// ToolCall, when set, announces a call the model started (its Name and
	// ID; Arguments may still be arriving), once per call: for progress
	// display only, the complete calls are in Response.ToolCalls. An
	// announcement is not answer text: an attempt that fails after it (and
	// before any text) is still retried, and the call may be announced
	// again.
	ToolCall *ToolCall
}

// Usage is the token accounting of one reply, as the gateway reported it.
type Usage struct {
	InputTokens  int
	OutputTokens int
}

// Total returns input plus output tokens.
func (u Usage) Total() int { return u.InputTokens + u.OutputTokens }

// Response is the outcome of a completed (streamed or not) model call.
type Response struct {
	// Text is the full answer text (the concatenation of every Delta.Text).
	Text string
	// Reasoning is the full reasoning text, if the model exposed any.
	Reasoning string
	// StopReason is why the answer ended, normalised across formats to one of
	// the Stop* constants (StopEnd, StopLength, StopToolCalls,
	// StopContentFilter, StopMaxAnswerChars) when it is one of those, else the
	// provider's reason in lower case; empty when unknown.
	StopReason string
	// RawStopReason is the provider's stop reason as sent ("end_turn",
	// "MAX_TOKENS", "max_output_tokens", ...), for logs; empty when the provider
	// gave none (as when MaxAnswerChars cut the answer before its end).
	RawStopReason string
	// Usage is the token usage; zero when the gateway did not report it.
	Usage Usage
	// Model is the model id the gateway says answered (may differ from the request).
	Model string
	// Format is the wire format that served the call.
	Format Format
	// ToolCalls are the calls the model made in this step, in order, each
	// with an ID (made up, "call_<n>", where the format has none) and
	// Arguments that are a JSON object. When there are any, StopReason is
	// StopToolCalls (unless the model stopped at its output limit:
	// StopLength, where the last call's arguments may be cut). The caller
	// runs them, appends an assistant Message with these ToolCalls (and
	// Text) and a RoleTool Message with the results, and calls again. A
	// stream with tool calls and no text is a complete answer. Empty when
	// the answer was cut (Cut) or failed.
	ToolCalls []ToolCall
	// Citations are the sources a built-in web search cited, in order of
	// first citation, without duplicates.
	Citations []Citation
	// Images are images the model generated (Gemini inline_data parts,
	// Responses image_generation_call results), with their bytes and MIME
	// type, in the order they arrived.
	Images []Image
	// ImagesDropped counts generated images that were not kept: larger than
	// MaxImageBytes (or together beyond a few times that), or undecodable.
	ImagesDropped int
}

// Normalised values of Response.StopReason.
const (
	// StopEnd: the model finished its answer (chat "stop", Anthropic
	// "end_turn" or "stop_sequence", Gemini "STOP", Responses "completed").
	StopEnd = "stop"
	// StopLength: the answer was cut at the model's output token limit (chat
	// "length", Anthropic "max_tokens", Gemini "MAX_TOKENS", Responses
	// incomplete with reason "max_output_tokens"). This is a normal
	// completion, not an error: see Response.Truncated.
	StopLength = "length"
	// StopToolCalls: the model stopped to call tools (chat "tool_calls",
	// Anthropic "tool_use"; Gemini and Responses, which say "STOP" and
	// "completed", whenever the answer holds tool calls).
	StopToolCalls = "tool_calls"
	// StopContentFilter: the provider's safety filter ended the answer (chat
	// "content_filter", Anthropic "refusal", Gemini "SAFETY", "RECITATION",
	// "PROHIBITED_CONTENT", ..., Responses incomplete with reason
	// "content_filter"). A completion, not an error.
	StopContentFilter = "content_filter"
	// StopMaxAnswerChars: the client stopped reading at
	// Request.MaxAnswerChars. See Response.Cut.
	StopMaxAnswerChars = "max_answer_chars"
)

// Truncated reports whether the model stopped at its output token limit
// (StopReason is StopLength): the answer is whole as far as the gateway is
// concerned, but the model had more to say.
func (r *Response) Truncated() bool { return r.StopReason == StopLength }

// Cut reports whether the client stopped reading the answer at
// Request.MaxAnswerChars (StopReason is StopMaxAnswerChars).
func (r *Response) Cut() bool { return r.StopReason == StopMaxAnswerChars }

// normStop maps a provider's stop reason to a Stop* constant, or to its
// lower-case form when it is none of them.
func normStop(raw string) string {
	s := strings.ToLower(strings.TrimSpace(raw))
	switch s {
	case "stop", "end_turn", "stop_sequence", "completed", "end":
		return StopEnd
	case "length", "max_tokens", "max_output_tokens", "model_context_window_exceeded":
		return StopLength
	case "tool_calls", "tool_use", "function_call":
		return StopToolCalls
	case "content_filter", "refusal", "safety", "recitation", "blocklist", "prohibited_content", "spii", "image_safety":
		return StopContentFilter
	}
	return s
}

// Format is a gateway wire format.
type Format string

// The wire formats the gateway speaks.
const (
	FormatChat      Format = "chat"      // OpenAI Chat Completions, POST {base}/chat/completions
	FormatResponses Format = "responses" // OpenAI Responses, POST {base}/responses
	FormatAnthropic Format = "anthropic" // Anthropic Messages, POST {host}/v1/messages
	FormatGemini    Format = "gemini"    // Gemini native, POST {host}/v1beta/models/{model}:streamGenerateContent?alt=sse
)
