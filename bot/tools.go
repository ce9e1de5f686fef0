package bot

import (
	"context"
	"encoding/json"

	"github.com/cometbot/cometbot/llm"
)

// Tool is a function the model may call: a tool of an MCP server, or one
// built in.
type Tool struct {
	// Server names where the tool comes from ("calc"); allow-lists name
	// "server" or "server.tool".
	Server string
	// Name is the tool's own name ("add").
	Name string
	// Spec is what the model is offered; Spec.Name is unique among the
	// tools offered and within every format's rules ([A-Za-z0-9_-]{1,64}).
	Spec llm.Tool
	// Call runs the tool with the model's JSON arguments. It must honour
	// ctx (the engine bounds each call with a timeout and cancels it on
	// shutdown and /reset). An error is reported to the model as the result.
	Call func(ctx context.Context, args json.RawMessage) (ToolOutput, error)
}

// ToolOutput is what a tool returned.
type ToolOutput struct {
	// Text is the result as text (passed to the model as is).
	Text string
	// Images are images the tool returned (shown to the model where the
	// format allows, else described).
	Images []llm.Image
	// IsError marks a result that reports a failure.
	IsError bool
}

// ToolSource lists the tools available now (an MCP client keeps its list
// fresh as servers come, go and change their tools).
type ToolSource interface {
	Tools() []Tool
}
