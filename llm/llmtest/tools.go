package llmtest

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/cometbot/cometbot/llm"
)

// The kinds of ToolPart.
const (
	PartToolCall   = "tool_call"
	PartToolResult = "tool_result"
)

// ToolPart is a tool call or a tool result of a recorded message in its
// format's native shape (the same call or result is in the message's
// ToolCalls or ToolResults in neutral form).
type ToolPart struct {
	// Kind is PartToolCall or PartToolResult.
	Kind string
	// Shape is the native shape: chat "tool_calls" (an element of an
	// assistant message's tool_calls) or "tool" (a role "tool" message);
	// responses "function_call" or "function_call_output" (input items);
	// anthropic "tool_use" or "tool_result" (content blocks); gemini
	// "functionCall" or "functionResponse" (parts; snake_case spellings are
	// reported under the same names).
	Shape string
	// Native is the JSON object as sent: the tool_calls element, the tool
	// message, the input item, the content block or the part.
	Native map[string]any
}

// ToolDef is a function tool a request offers.
type ToolDef struct {
	Name        string
	Description string
	// Parameters is the JSON Schema as sent (chat function.parameters,
	// responses parameters, anthropic input_schema, gemini parameters);
	// nil when absent.
	Parameters map[string]any
	// Native is the tool's definition as sent (for gemini, the function
	// declaration).
	Native map[string]any
}

// Tool returns the offered tool with this name.
func (p Prompt) Tool(name string) (ToolDef, bool) {
	for _, t := range p.Tools {
		if t.Name == name {
			return t, true
		}
	}
	return ToolDef{}, false
}

// validToolName is the rule every format applies to tool names here.
func validToolName(name string) bool {
	return llm.ValidToolName(name)
}

// geminiGeneration returns the major version of a Gemini model id
// ("gemini-3-pro-preview" → 3), or 0.
func geminiGeneration(model string) int {
	rest, ok := strings.CutPrefix(strings.ToLower(strings.TrimPrefix(model, "models/")), "gemini-")
	if !ok {
		return 0
	}
	n := 0
	for i := 0; i < len(rest) && rest[i] >= '0' && rest[i] <= '9' && n < 1000; i++ {
		n = n*10 + int(rest[i]-'0')
	}
	return n
}

// argsOf renders a call's arguments as JSON text.
func argsOf(v any) json.RawMessage {
	if v == nil {
		return json.RawMessage("{}")
	}
	b, _ := json.Marshal(v)
	return b
}

// ---- Chat Completions ----

// chatTools decodes the tools of a chat request; web search has no place
// there.
func chatTools(p *Prompt, raw map[string]any) error {
	if _, ok := raw["web_search_options"]; ok {
		return invalid("web_search_options", "invalid_request_error", "Web search options not supported with this model.")
	}
	list, _ := raw["tools"].([]any)
	for i, t := range list {
		at := fmt.Sprintf("tools[%d]", i)
		tm, _ := t.(map[string]any)
		typ, _ := tm["type"].(string)
		switch typ {
		case "function":
		case "custom":
			cm, _ := tm["custom"].(map[string]any)
			name, _ := cm["name"].(string)
			p.Tools = append(p.Tools, ToolDef{Name: name, Native: tm})
			continue
		default:
			return invalid(at+".type", "invalid_value", "Invalid value: '%s'. Supported values are: 'function' and 'custom'.", typ)
		}
		fm, ok := tm["function"].(map[string]any)
		if !ok {
			return invalid(at+".function", "missing_required_parameter", "Missing required parameter: '%s.function'.", at)
		}
		name, _ := fm["name"].(string)
		if !validToolName(name) {
			return invalid(at+".function.name", "invalid_value", "Invalid '%s.function.name': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]{1,64}$'.", at)
		}
		d := ToolDef{Name: name, Native: tm}
		d.Description, _ = fm["description"].(string)
		if pv, ok := fm["parameters"]; ok && pv != nil {
			if d.Parameters, ok = pv.(map[string]any); !ok {
				return invalid(at+".function.parameters", "invalid_type", "Invalid type for '%s.function.parameters': expected an object, but got %s instead.", at, jsonType(pv))
			}
		}
		p.Tools = append(p.Tools, d)
	}
	return nil
}

// chatToolCalls decodes an assistant message's tool_calls.
func chatToolCalls(v any, where string) ([]llm.ToolCall, []ToolPart, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, nil, invalid(where+".tool_calls", "invalid_type", "Invalid type for '%s.tool_calls': expected an array, but got %s instead.", where, jsonType(v))
	}
	var calls []llm.ToolCall
	var tps []ToolPart
	for j, tc := range list {
		at := fmt.Sprintf("%s.tool_calls[%d]", where, j)
		tm, _ := tc.(map[string]any)
		id, _ := tm["id"].(string)
		if id == "" {
			return nil, nil, invalid(at+".id", "missing_required_parameter", "Missing required parameter: '%s.id'.", at)
		}
		if typ, _ := tm["type"].(string); typ != "function" {
			return nil, nil, invalid(at+".type", "invalid_value", "Invalid value: '%s'. Supported values are: 'function'.", typ)
		}
		fm, _ := tm["function"].(map[string]any)
		name, _ := fm["name"].(string)
		if name == "" {
			return nil, nil, invalid(at+".function.name", "missing_required_parameter", "Missing required parameter: '%s.function.name'.", at)
		}
		args, ok := fm["arguments"].(string)
		if !ok {
			return nil, nil, invalid(at+".function.arguments", "invalid_type", "Invalid type for '%s.function.arguments': expected a string, but got %s instead.", at, jsonType(fm["arguments"]))
		}
		calls = append(calls, llm.ToolCall{ID: id, Name: name, Arguments: json.RawMessage(args)})
		tps = append(tps, ToolPart{Kind: PartToolCall, Shape: "tool_calls", Native: tm})
	}
	return calls, tps, nil
}

// chatPending checks that every call of the last assistant message was
// answered before message i (the end when i is len(messages)).
func chatPending(pending []string, i int) error {
	if len(pending) == 0 {
		return nil
	}
	return invalid(fmt.Sprintf("messages.[%d].role", i), "", "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: %s", strings.Join(pending, ", "))
}

// ---- Responses ----

// responsesTools decodes the tools of a Responses request.
func responsesTools(p *Prompt, raw map[string]any) error {
	list, _ := raw["tools"].([]any)
	for i, t := range list {
		at := fmt.Sprintf("tools[%d]", i)
		tm, _ := t.(map[string]any)
		typ, _ := tm["type"].(string)
		switch typ {
		case "function":
			name, _ := tm["name"].(string)
			if !validToolName(name) {
				return invalid(at+".name", "invalid_value", "Invalid '%s.name': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]{1,64}$'.", at)
			}
			pv, ok := tm["parameters"]
			if !ok {
				return invalid(at+".parameters", "missing_required_parameter", "Missing required parameter: '%s.parameters'.", at)
			}
			d := ToolDef{Name: name, Native: tm}
			d.Description, _ = tm["description"].(string)
			if pv != nil {
				if d.Parameters, ok = pv.(map[string]any); !ok {
					return invalid(at+".parameters", "invalid_type", "Invalid type for '%s.parameters': expected an object, but got %s instead.", at, jsonType(pv))
				}
			}
			if strict, _ := tm["strict"].(bool); strict || tm["strict"] == nil {
				// The format's default: every property required, no others.
				if err := strictSchema(d.Parameters, name); err != nil {
					return err
				}
			}
			p.Tools = append(p.Tools, d)
		case "web_search", "web_search_preview", "web_search_2025_08_26", "web_search_preview_2025_03_11":
			p.WebSearch, p.WebSearchTool = true, typ
		case "file_search", "image_generation", "code_interpreter", "mcp", "computer_use_preview", "local_shell", "custom":
		default:
			return invalid(at+".type", "invalid_value", "Invalid value: '%s'. Supported values are: 'function', 'file_search', 'web_search', 'web_search_preview', 'image_generation', 'code_interpreter', 'mcp' and 'custom'.", typ)
		}
	}
	return nil
}

// strictSchema checks what strict function calling requires of a schema.
func strictSchema(s map[string]any, name string) error {
	if s == nil {
		return nil
	}
	if ap, ok := s["additionalProperties"].(bool); !ok || ap {
		return invalid("tools", "invalid_function_parameters", "Invalid schema for function '%s': In context=(), 'additionalProperties' is required to be supplied and to be false.", name)
	}
	return nil
}

// ---- Anthropic Messages ----

// anthropicTools decodes the tools of a Messages request.
func anthropicTools(p *Prompt, raw map[string]any) error {
	list, _ := raw["tools"].([]any)
	seen := map[string]bool{}
	for i, t := range list {
		tm, _ := t.(map[string]any)
		typ, _ := tm["type"].(string)
		name, _ := tm["name"].(string)
		switch {
		case typ == "" || typ == "custom":
			if !validToolName(name) {
				return invalid("", "invalid_request_error", "tools.%d.custom.name: String should match pattern '^[a-zA-Z0-9_-]{1,64}$'", i)
			}
			sch, ok := tm["input_schema"].(map[string]any)
			if !ok {
				return invalid("", "invalid_request_error", "tools.%d.custom.input_schema: Field required", i)
			}
			if st, _ := sch["type"].(string); st != "object" {
				return invalid("", "invalid_request_error", "tools.%d.custom.input_schema.type: Input should be 'object'", i)
			}
			d := ToolDef{Name: name, Parameters: sch, Native: tm}
			d.Description, _ = tm["description"].(string)
			p.Tools = append(p.Tools, d)
		case strings.HasPrefix(typ, "web_search_"):
			if name != "web_search" {
				return invalid("", "invalid_request_error", "tools.%d.%s.name: Input should be 'web_search'", i, typ)
			}
			p.WebSearch, p.WebSearchTool = true, typ
		case strings.HasPrefix(typ, "bash_"), strings.HasPrefix(typ, "text_editor_"), strings.HasPrefix(typ, "code_execution_"),
			strings.HasPrefix(typ, "web_fetch_"), strings.HasPrefix(typ, "computer_"):
		default:
			return invalid("", "invalid_request_error", "tools.%d: Input tag '%s' found using 'type' does not match any of the expected tags", i, typ)
		}
		if seen[name] {
			return invalid("", "invalid_request_error", "tools: Tool names must be unique.")
		}
		seen[name] = true
	}
	return nil
}

// anthropicToolBlock decodes a tool_use or tool_result block into d.
func anthropicToolBlock(d *decodedMsg, bm map[string]any, typ, role, at string) error {
	switch typ {
	case "tool_use":
		if role != "assistant" {
			return invalid("", "invalid_request_error", "%s.type: Input tag 'tool_use' found using 'type' does not match any of the expected tags: 'text', 'image', 'document', 'tool_result', 'search_result'", at)
		}
		id, _ := bm["id"].(string)
		if id == "" || strings.IndexFunc(id, func(r rune) bool { return !validToolName(string(r)) }) >= 0 {
			return invalid("", "invalid_request_error", "%s.tool_use.id: String should match pattern '^[a-zA-Z0-9_-]+$'", at)
		}
		name, _ := bm["name"].(string)
		if name == "" {
			return invalid("", "invalid_request_error", "%s.tool_use.name: Field required", at)
		}
		in, ok := bm["input"].(map[string]any)
		if !ok {
			return invalid("", "invalid_request_error", "%s.tool_use.input: Input should be a valid dictionary", at)
		}
		d.msg.ToolCalls = append(d.msg.ToolCalls, llm.ToolCall{ID: id, Name: name, Arguments: argsOf(in)})
		d.tools = append(d.tools, ToolPart{Kind: PartToolCall, Shape: "tool_use", Native: bm})
	case "tool_result":
		if role != "user" {
			return invalid("", "invalid_request_error", "%s.type: Input tag 'tool_result' found using 'type' does not match any of the expected tags: 'text', 'thinking', 'redacted_thinking', 'tool_use', 'server_tool_use', 'web_search_tool_result'", at)
		}
		if d.nonTool {
			return invalid("", "invalid_request_error", "%s: `tool_result` blocks must come first in the user message, before any other content", at)
		}
		id, _ := bm["tool_use_id"].(string)
		if id == "" {
			return invalid("", "invalid_request_error", "%s.tool_result.tool_use_id: Field required", at)
		}
		r := llm.ToolResult{CallID: id}
		r.IsError, _ = bm["is_error"].(bool)
		switch c := bm["content"].(type) {
		case nil:
		case string:
			r.Content = c
		case []any:
			for k, b := range c {
				cm, _ := b.(map[string]any)
				switch ct, _ := cm["type"].(string); ct {
				case "text":
					t, _ := cm["text"].(string)
					r.Content += t
				case "image", "document", "search_result":
				default:
					return invalid("", "invalid_request_error", "%s.tool_result.content.%d.type: Input tag '%s' found using 'type' does not match any of the expected tags: 'text', 'image', 'search_result', 'document'", at, k, ct)
				}
			}
		default:
			return invalid("", "invalid_request_error", "%s.tool_result.content: Input should be a valid string or list", at)
		}
		d.msg.ToolResults = append(d.msg.ToolResults, r)
		d.tools = append(d.tools, ToolPart{Kind: PartToolResult, Shape: "tool_result", Native: bm})
	}
	return nil
}

// anthropicPairs checks that every tool_use is answered by a tool_result in
// the next message, and every tool_result answers a tool_use of the
// previous one; tool_use ids must be unique.
func anthropicPairs(p *Prompt) error {
	seen := map[string]bool{}
	for i, m := range p.Messages {
		var ids []string
		for _, c := range m.ToolCalls {
			if seen[c.ID] {
				return invalid("", "invalid_request_error", "messages.%d: `tool_use` ids must be unique: %s", i, c.ID)
			}
			seen[c.ID] = true
			ids = append(ids, c.ID)
		}
		if len(m.ToolResults) > 0 {
			var prev []string
			if i > 0 && p.Messages[i-1].Role == llm.RoleAssistant {
				for _, c := range p.Messages[i-1].ToolCalls {
					prev = append(prev, c.ID)
				}
			}
			for _, r := range m.ToolResults {
				if !slices.Contains(prev, r.CallID) {
					return invalid("", "invalid_request_error", "messages.%d.content.0: unexpected `tool_use_id` found in `tool_result` blocks: %s. Each `tool_result` block must have a corresponding `tool_use` block in the previous message.", i, r.CallID)
				}
			}
		}
		if len(ids) == 0 {
			continue
		}
		var answered []string
		if i+1 < len(p.Messages) {
			for _, r := range p.Messages[i+1].ToolResults {
				answered = append(answered, r.CallID)
			}
		}
		var missing []string
		for _, id := range ids {
			if !slices.Contains(answered, id) {
				missing = append(missing, id)
			}
		}
		if len(missing) > 0 {
			return invalid("", "invalid_request_error", "messages.%d: `tool_use` ids were found without `tool_result` blocks immediately after: %s. Each `tool_use` block must have a corresponding `tool_result` block in the next message.", i, strings.Join(missing, ", "))
		}
	}
	return nil
}

// ---- Gemini ----

// geminiSchemaFields are the fields of Gemini's Schema.
var geminiSchemaFields = map[string]bool{
	"type": true, "format": true, "title": true, "description": true, "nullable": true, "enum": true,
	"maxItems": true, "minItems": true, "properties": true, "required": true, "minProperties": true,
	"maxProperties": true, "minLength": true, "maxLength": true, "pattern": true, "example": true,
	"anyOf": true, "propertyOrdering": true, "default": true, "items": true, "minimum": true, "maximum": true,
}

// geminiSchemaCheck refuses what Gemini's Schema cannot hold.
func geminiSchemaCheck(s map[string]any, at string, top bool) error {
	for k, v := range s {
		if !geminiSchemaFields[k] {
			return invalid("", "INVALID_ARGUMENT", "Invalid JSON payload received. Unknown name %q at '%s': Cannot find field.", k, at)
		}
		switch k {
		case "type":
			t, ok := v.(string)
			if !ok {
				return invalid("", "INVALID_ARGUMENT", "Invalid value at '%s.type' (type.googleapis.com/google.ai.generativelanguage.v1beta.Type), %s", at, jsonType(v))
			}
			switch strings.ToUpper(t) {
			case "STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY", "OBJECT", "NULL", "TYPE_UNSPECIFIED":
			default:
				return invalid("", "INVALID_ARGUMENT", "Invalid value at '%s.type' (type.googleapis.com/google.ai.generativelanguage.v1beta.Type), %q", at, t)
			}
		case "properties":
			pm, _ := v.(map[string]any)
			for name, ps := range pm {
				psm, _ := ps.(map[string]any)
				if err := geminiSchemaCheck(psm, at+".properties["+name+"].value", false); err != nil {
					return err
				}
			}
		case "items":
			im, _ := v.(map[string]any)
			if err := geminiSchemaCheck(im, at+".items", false); err != nil {
				return err
			}
		case "anyOf":
			list, _ := v.([]any)
			for j, a := range list {
				am, _ := a.(map[string]any)
				if err := geminiSchemaCheck(am, fmt.Sprintf("%s.any_of[%d]", at, j), false); err != nil {
					return err
				}
			}
		}
	}
	if t, _ := s["type"].(string); top && strings.EqualFold(t, "object") {
		if pm, _ := s["properties"].(map[string]any); len(pm) == 0 {
			return invalid("", "INVALID_ARGUMENT", "* GenerateContentRequest.%s.properties: should be non-empty for OBJECT type", strings.TrimPrefix(at, "GenerateContentRequest."))
		}
	}
	return nil
}

// geminiTools decodes the tools of a generateContent request.
func geminiTools(p *Prompt, raw map[string]any) error {
	list, _ := raw["tools"].([]any)
	for i, t := range list {
		tm, _ := t.(map[string]any)
		for k, v := range tm {
			at := fmt.Sprintf("tools[%d]", i)
			switch k {
			case "functionDeclarations", "function_declarations":
				decls, _ := v.([]any)
				for j, dv := range decls {
					dat := fmt.Sprintf("%s.function_declarations[%d]", at, j)
					dm, _ := dv.(map[string]any)
					name, _ := dm["name"].(string)
					if !validToolName(name) || !(name[0] == '_' || name[0] >= 'a' && name[0] <= 'z' || name[0] >= 'A' && name[0] <= 'Z') {
						return invalid("", "INVALID_ARGUMENT", "* GenerateContentRequest.%s.name: Invalid function name. Must start with a letter or an underscore. Must be alphameric (a-z, A-Z, 0-9), underscores (_), dots (.), colons (:), or dashes (-), with a maximum length of 64.", dat)
					}
					d := ToolDef{Name: name, Native: dm}
					d.Description, _ = dm["description"].(string)
					if pv, ok := dm["parameters"]; ok {
						pm, ok := pv.(map[string]any)
						if !ok {
							return invalid("", "INVALID_ARGUMENT", "Invalid value at '%s.parameters' (type.googleapis.com/google.ai.generativelanguage.v1beta.Schema), %s", dat, jsonType(pv))
						}
						if err := geminiSchemaCheck(pm, dat+".parameters", true); err != nil {
							return err
						}
						d.Parameters = pm
					}
					p.Tools = append(p.Tools, d)
				}
			case "google_search", "googleSearch":
				p.WebSearch, p.WebSearchTool = true, "google_search"
			case "google_search_retrieval", "googleSearchRetrieval", "code_execution", "codeExecution", "url_context", "urlContext":
			default:
				return invalid("", "INVALID_ARGUMENT", "Invalid JSON payload received. Unknown name %q at '%s': Cannot find field.", k, at)
			}
		}
	}
	return nil
}

// geminiToolPart decodes a functionCall or functionResponse part into d;
// ok is false for other parts.
func geminiToolPart(d *decodedMsg, pm map[string]any, role, at string) (bool, error) {
	if fc, name, _ := field(pm, "function_call", "functionCall", at); fc != nil {
		if role != "model" {
			return true, invalid("", "INVALID_ARGUMENT", "Please ensure that function call turns are model turns: %s.%s is in a %s turn.", at, name, role)
		}
		fm, _ := fc.(map[string]any)
		n, _ := fm["name"].(string)
		if n == "" {
			return true, invalid("", "INVALID_ARGUMENT", "* GenerateContentRequest.%s.function_call.name: Name cannot be empty.", at)
		}
		args, ok := fm["args"]
		if _, isObj := args.(map[string]any); ok && args != nil && !isObj {
			return true, invalid("", "INVALID_ARGUMENT", "Invalid value at '%s.function_call.args' (type.googleapis.com/google.protobuf.Struct), %s", at, jsonType(args))
		}
		c := llm.ToolCall{Name: n, Arguments: argsOf(args)}
		c.ID, _ = fm["id"].(string)
		sig, _, _ := field(pm, "thought_signature", "thoughtSignature", at)
		c.Signature, _ = sig.(string)
		d.msg.ToolCalls = append(d.msg.ToolCalls, c)
		d.tools = append(d.tools, ToolPart{Kind: PartToolCall, Shape: "functionCall", Native: pm})
		return true, nil
	}
	if fr, name, _ := field(pm, "function_response", "functionResponse", at); fr != nil {
		if role != "user" {
			return true, invalid("", "INVALID_ARGUMENT", "Please ensure that function response turns are user turns: %s.%s is in a %s turn.", at, name, role)
		}
		fm, _ := fr.(map[string]any)
		n, _ := fm["name"].(string)
		if n == "" {
			return true, invalid("", "INVALID_ARGUMENT", "* GenerateContentRequest.%s.function_response.name: Name cannot be empty.", at)
		}
		resp, ok := fm["response"].(map[string]any)
		if !ok {
			return true, invalid("", "INVALID_ARGUMENT", "Invalid value at '%s.function_response.response' (type.googleapis.com/google.protobuf.Struct), %s", at, jsonType(fm["response"]))
		}
		r := llm.ToolResult{Name: n}
		r.CallID, _ = fm["id"].(string)
		switch {
		case resp["error"] != nil && resp["result"] == nil && len(resp) == 1:
			r.IsError = true
			r.Content = textOf(resp["error"])
		case resp["result"] != nil && len(resp) == 1:
			r.Content = textOf(resp["result"])
		default:
			r.Content = string(argsOf(resp))
		}
		d.msg.ToolResults = append(d.msg.ToolResults, r)
		d.tools = append(d.tools, ToolPart{Kind: PartToolResult, Shape: "functionResponse", Native: pm})
		return true, nil
	}
	return false, nil
}

// textOf renders a JSON value as text: strings as they are, others as JSON.
func textOf(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// geminiPairs checks the order of function call and response turns: a call
// turn comes after a user turn or a response turn, a response turn right
// after a call turn with one response per call, by name; Gemini 3 models
// want the first call of each call turn signed.
func geminiPairs(p *Prompt) error {
	gen := geminiGeneration(p.Model)
	for i, m := range p.Messages {
		if len(m.ToolCalls) > 0 {
			if i == 0 || p.Messages[i-1].Role != llm.RoleUser {
				return invalid("", "INVALID_ARGUMENT", "Please ensure that function call turn comes immediately after a user turn or after a function response turn.")
			}
			if gen >= 3 && m.ToolCalls[0].Signature == "" {
				return invalid("", "INVALID_ARGUMENT", "Function call is missing a thought_signature in functionCall parts. This is required for tools to work correctly, and missing thought_signature may lead to degraded model performance. Additional data, function call `default_api:%s` , position %d. Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures for more details.", m.ToolCalls[0].Name, i+1)
			}
			if i+1 < len(p.Messages) && len(p.Messages[i+1].ToolResults) == 0 {
				return invalid("", "INVALID_ARGUMENT", "Please ensure that function response turn comes immediately after a function call turn.")
			}
		}
		if len(m.ToolResults) == 0 {
			continue
		}
		if i == 0 || len(p.Messages[i-1].ToolCalls) == 0 {
			return invalid("", "INVALID_ARGUMENT", "Please ensure that function response turn comes immediately after a function call turn.")
		}
		calls := p.Messages[i-1].ToolCalls
		if len(calls) != len(m.ToolResults) {
			return invalid("", "INVALID_ARGUMENT", "Please ensure that the number of function response parts is equal to the number of function call parts of the function call turn.")
		}
		names := make([]string, 0, len(calls))
		for _, c := range calls {
			names = append(names, c.Name)
		}
		for _, r := range m.ToolResults {
			k := slices.Index(names, r.Name)
			if k < 0 {
				return invalid("", "INVALID_ARGUMENT", "Please ensure that function response %q answers a function call of the previous turn (function calls: %s).", r.Name, strings.Join(names, ", "))
			}
			names = slices.Delete(names, k, k+1)
		}
	}
	return nil
}
