package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/cometbot/cometbot/llm"
	"github.com/cometbot/cometbot/storage"
)

// ToolOptions configures the tool loop: which tools exist, where they may be
// used, and how long they may run.
type ToolOptions struct {
	// Source lists the tools (MCP servers); nil means no tools.
	Source ToolSource
	// MaxRounds bounds the rounds of tool calls in one turn (default 8);
	// then the model answers with what it has.
	MaxRounds int
	// Timeout bounds one tool call (default 30s).
	Timeout time.Duration
	// MaxResultChars cuts a tool's result for the model and the store
	// (default 16,000 characters).
	MaxResultChars int
	// Allow is the default allow-list: entries "server", "server.tool" or
	// "*". Nil allows every tool; an empty list allows none.
	Allow []string
	// WebSearch turns the providers' built-in web search on by default.
	WebSearch bool
	// Workspaces, Channels and Roles override or extend the defaults per
	// workspace/guild id, channel id and role id. A channel's list replaces
	// the workspace's, which replaces the default; a role's list adds to it.
	Workspaces map[string]ToolScope
	Channels   map[string]ToolScope
	Roles      map[string]ToolScope
}

// ToolScope is the tool policy of one workspace, channel or role.
type ToolScope struct {
	// Allow, when not nil, is the allow-list here (see ToolOptions.Allow).
	Allow []string
	// WebSearch, when set, turns web search on or off here.
	WebSearch *bool
}

// toolsFor returns the tools the author of m may use where m was said, and
// whether web search is on there (set carries the channel's stored tool
// settings, see resolve). A tool the user may not use is never offered to
// the model.
func (e *Engine) toolsFor(s Scope, roles []string, set Resolved) ([]Tool, bool) {
	o := e.conf().Tools
	allow, search := o.Allow, o.WebSearch
	if ws, ok := o.Workspaces[s.Workspace]; ok && s.Workspace != "" {
		if ws.Allow != nil {
			allow = ws.Allow
		}
		if ws.WebSearch != nil {
			search = *ws.WebSearch
		}
	}
	if !s.DM {
		if ch, ok := o.Channels[s.Channel]; ok {
			if ch.Allow != nil {
				allow = ch.Allow
			}
			if ch.WebSearch != nil {
				search = *ch.WebSearch
			}
		}
		if set.ChannelTools != nil {
			allow = *set.ChannelTools
		}
		if set.ChannelWebSearch != nil {
			search = *set.ChannelWebSearch
		}
	}
	var extra []string
	for _, r := range roles {
		if rs, ok := o.Roles[r]; ok {
			extra = append(extra, rs.Allow...)
		}
	}
	if o.Source == nil {
		return nil, search
	}
	var out []Tool
	for _, t := range o.Source.Tools() {
		if allowed(allow, t) || (len(extra) > 0 && allowed(extra, t)) {
			out = append(out, t)
		}
	}
	return out, search
}

// allowed reports whether an allow-list admits t (nil admits everything).
func allowed(list []string, t Tool) bool {
	if list == nil {
		return true
	}
	for _, a := range list {
		a = strings.TrimSpace(a)
		if a == "*" || strings.EqualFold(a, t.Server) || strings.EqualFold(a, t.Server+"."+t.Name) {
			return true
		}
	}
	return false
}

// turnResult is what the model produced over all rounds of a turn.
type turnResult struct {
	resp     *llm.Response // the last round's response, usage summed over rounds
	streamed string        // answer text that streamed (for a failed turn)
	steps    []storage.ToolStep
	used     []string // tools called, in order of first use ("server.tool")
	notes    []string
}

// converse runs the model and, while it calls tools, the tools: call → run
// them in parallel (each with a timeout) → send the results → continue, up
// to MaxRounds. Progress shows in the streaming reply.
func (e *Engine) converse(ctx context.Context, log *slog.Logger, req llm.Request, tools []Tool, st *pendingStart) (turnResult, error) {
	var res turnResult
	byName := make(map[string]Tool, len(tools))
	for _, t := range tools {
		req.Tools = append(req.Tools, t.Spec)
		byName[t.Spec.Name] = t
	}
	var usage llm.Usage
	var streamed strings.Builder
	var texts []string
	for round := 1; ; round++ {
		resp, text, err := e.callModel(ctx, req, st, func(c *llm.ToolCall) {
			label := c.Name
			if t, ok := byName[c.Name]; ok {
				label = t.Server + "." + t.Name
			}
			e.appendReply(ctx, st, "\n🔧 "+label+"…\n")
		})
		if err != nil && req.WebSearch && errors.Is(err, llm.ErrNoWebSearch) && text == "" {
			// Chat Completions has no built-in search: answer without it.
			req.WebSearch = false
			res.notes = append(res.notes, "🔎 Web search needs a Responses, Claude or Gemini model (or an MCP search server); I answered without it.")
			resp, text, err = e.callModel(ctx, req, st, nil)
		}
		streamed.WriteString(text)
		if resp != nil {
			usage.InputTokens += resp.Usage.InputTokens
			usage.OutputTokens += resp.Usage.OutputTokens
			resp.Usage = usage
		}
		res.resp, res.streamed = resp, streamed.String()
		if err != nil {
			return res, err
		}
		if t := strings.TrimSpace(resp.Text); t != "" {
			texts = append(texts, t)
		}
		if len(resp.ToolCalls) == 0 || len(tools) == 0 {
			if resp.Text == "" && len(texts) > 0 {
				resp.Text = strings.Join(texts, "\n\n")
			}
			return res, nil
		}
		if round > e.conf().Tools.MaxRounds {
			log.Warn("tool rounds exhausted", "rounds", e.conf().Tools.MaxRounds)
			resp.Text = strings.Join(texts, "\n\n")
			resp.ToolCalls = nil
			res.notes = append(res.notes, fmt.Sprintf("🔧 I stopped after %d rounds of tool calls; this is what I have so far.", e.conf().Tools.MaxRounds))
			return res, nil
		}
		results, images := e.runTools(ctx, log, byName, resp.ToolCalls)
		step := storage.ToolStep{Text: resp.Text}
		for i, c := range resp.ToolCalls {
			step.Calls = append(step.Calls, storage.ToolCall{ID: c.ID, Name: c.Name, Args: c.Arguments, Signature: c.Signature})
			r := results[i]
			step.Results = append(step.Results, storage.ToolResult{CallID: r.CallID, Name: r.Name, Content: r.Content, IsError: r.IsError})
			label := c.Name
			if t, ok := byName[c.Name]; ok {
				label = t.Server + "." + t.Name
			}
			if !slices.Contains(res.used, label) {
				res.used = append(res.used, label)
			}
		}
		res.steps = append(res.steps, step)
		req.Messages = append(req.Messages,
			llm.Message{Role: llm.RoleAssistant, Content: resp.Text, ToolCalls: resp.ToolCalls},
			llm.Message{Role: llm.RoleTool, ToolResults: results})
		if len(images) > 0 {
			req.Messages = append(req.Messages, llm.Message{Role: llm.RoleUser, Content: "(images returned by the tools above)", Images: images})
		}
	}
}

// appendReply shows progress text in the streaming reply (not part of the
// answer: the final text replaces it).
func (e *Engine) appendReply(ctx context.Context, st *pendingStart, text string) {
	if reply, ok := st.get(); ok {
		if err := reply.Append(ctx, text); err != nil {
			e.log.Debug("append to reply", "err", err)
		}
	}
}

// runTools runs one round's calls in parallel, each under the tool timeout.
// A failing, hanging or unknown tool becomes an error result for the model;
// nothing here fails the turn.
func (e *Engine) runTools(ctx context.Context, log *slog.Logger, byName map[string]Tool, calls []llm.ToolCall) ([]llm.ToolResult, []llm.Image) {
	results := make([]llm.ToolResult, len(calls))
	imgs := make([][]llm.Image, len(calls))
	var wg sync.WaitGroup
	for i, c := range calls {
		wg.Go(func() {
			out, err := e.runTool(ctx, byName, c)
			r := llm.ToolResult{CallID: c.ID, Name: c.Name, Content: out.Text, IsError: out.IsError}
			if err != nil {
				log.Warn("tool call failed", "tool", c.Name, "err", err)
				r.Content, r.IsError = "error: "+err.Error(), true
			}
			if r.Content == "" && len(out.Images) > 0 {
				r.Content = fmt.Sprintf("(%s, shown below)", plural(len(out.Images), "image"))
			}
			r.Content = clipResult(r.Content, e.conf().Tools.MaxResultChars)
			results[i], imgs[i] = r, out.Images
		})
	}
	wg.Wait()
	var images []llm.Image
	for _, im := range imgs {
		images = append(images, im...)
	}
	return results, images
}

func (e *Engine) runTool(ctx context.Context, byName map[string]Tool, c llm.ToolCall) (out ToolOutput, err error) {
	t, ok := byName[c.Name]
	if !ok {
		return out, fmt.Errorf("there is no tool named %q", c.Name)
	}
	args := c.Arguments
	if len(args) == 0 {
		args = json.RawMessage("{}")
	}
	cctx, cancel := context.WithTimeout(ctx, e.conf().Tools.Timeout)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("the tool crashed: %v", p)
		}
	}()
	out, err = t.Call(cctx, args)
	if err != nil && errors.Is(cctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
		return out, fmt.Errorf("the tool did not answer within %s", e.conf().Tools.Timeout)
	}
	return out, err
}

// clipResult cuts a tool result to max characters with a visible note.
func clipResult(s string, max int) string {
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	n := 0
	for i := range s {
		if n == max {
			return s[:i] + fmt.Sprintf("\n[… cut: the result had %d characters]", utf8.RuneCountInString(s))
		}
		n++
	}
	return s
}

// toolMessages turns a stored turn's tool rounds back into model messages.
func toolMessages(steps []storage.ToolStep) []llm.Message {
	var out []llm.Message
	for _, st := range steps {
		a := llm.Message{Role: llm.RoleAssistant, Content: st.Text}
		for _, c := range st.Calls {
			a.ToolCalls = append(a.ToolCalls, llm.ToolCall{ID: c.ID, Name: c.Name, Arguments: c.Args, Signature: c.Signature})
		}
		t := llm.Message{Role: llm.RoleTool}
		for _, r := range st.Results {
			t.ToolResults = append(t.ToolResults, llm.ToolResult{CallID: r.CallID, Name: r.Name, Content: r.Content, IsError: r.IsError})
		}
		out = append(out, a, t)
	}
	return out
}

// sourcesLine renders a web search's citations as links: deduplicated
// (the llm client already does) and never pinging (adapters neutralize
// mentions in every text).
func sourcesLine(cs []llm.Citation) string {
	if len(cs) == 0 {
		return ""
	}
	parts := make([]string, 0, len(cs))
	for i, c := range cs {
		if i == 10 {
			parts = append(parts, fmt.Sprintf("and %d more", len(cs)-10))
			break
		}
		title := strings.TrimSpace(c.Title)
		if title == "" {
			title = c.URL
		}
		title = strings.NewReplacer("[", "(", "]", ")", "\n", " ").Replace(title)
		parts = append(parts, fmt.Sprintf("[%s](%s)", title, c.URL))
	}
	return "Sources: " + strings.Join(parts, " · ")
}
