package llm

// Role is who wrote a message in a conversation.
type Role string

// The roles a Message may carry. The system prompt travels in Request.System,
// not as a message.
const (
	RoleUser      Role = "user"
	RoleAssistant Role = "assistant"
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

// Message is one turn of a conversation.
type Message struct {
	Role    Role
	Content string
	Images  []Image
	Files   []File
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
}

// Delta is one streamed increment of a reply. Reasoning text (from models
// that expose their thinking) is kept apart from the answer text.
type Delta struct {
	Text      string
	Reasoning string
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
	// StopReason is the provider's finish/stop reason, normalised to lower
	// case ("stop", "length", "end_turn", ...); empty when unknown.
	StopReason string
	// Usage is the token usage; zero when the gateway did not report it.
	Usage Usage
	// Model is the model id the gateway says answered (may differ from the request).
	Model string
	// Format is the wire format that served the call.
	Format Format
	// Images are images the model generated (Gemini inline_data parts,
	// Responses image_generation_call results), with their bytes.
	Images []Image
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
