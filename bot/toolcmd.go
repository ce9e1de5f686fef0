package bot

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/cometbot/cometbot/storage"
)

// CmdTools lists the tools available here; admins enable and disable them
// per channel.
const CmdTools = "tools"

// cmdTools answers /tools, /tools enable|disable <server|server.tool|*> and
// /tools web on|off.
func (e *Engine) cmdTools(ctx context.Context, c Command, args string) Answer {
	s := c.Scope()
	verb, rest, _ := strings.Cut(args, " ")
	rest = strings.TrimSpace(rest)
	switch strings.ToLower(verb) {
	case "":
		return e.listTools(ctx, c)
	case "enable", "disable", "web":
	default:
		return Answer{Text: "Usage: `/tools` lists the tools here; admins: `/tools enable <server|server.tool|*>`, `/tools disable <…>`, `/tools web on|off`.", Private: true}
	}
	if c.DM {
		return Answer{Text: "Tools in direct messages follow the workspace's defaults; run `/tools enable …` in a channel.", Private: true}
	}
	if !e.gate.isAdmin(c.User) {
		return Answer{Text: "🔒 Only admins can change which tools are enabled in a channel.", Private: true}
	}
	if rest == "" {
		return Answer{Text: "Name a server (`calc`), a tool (`calc.add`) or `*`.", Private: true}
	}
	key := scopeKey(s, ScopeChannel)
	var msg string
	err := e.opts.Store.UpdateSettings(ctx, key, func(st *storage.Settings) {
		if strings.EqualFold(verb, "web") {
			on := strings.EqualFold(rest, "on") || strings.EqualFold(rest, "true")
			st.WebSearch = &on
			msg = fmt.Sprintf("🔎 Web search is now %s in this channel.", map[bool]string{true: "on", false: "off"}[on])
			return
		}
		cur := e.effectiveAllow(ctx, s, st)
		if strings.EqualFold(verb, "enable") {
			if !slices.ContainsFunc(cur, func(a string) bool { return strings.EqualFold(a, rest) }) {
				cur = append(cur, rest)
			}
			msg = fmt.Sprintf("🔧 Enabled `%s` in this channel.", rest)
		} else {
			if server, _, ok := strings.Cut(rest, "."); ok {
				// One tool of a server (or of "*") that is allowed whole:
				// spell the server out tool by tool, then drop the one.
				cur = e.expandServer(cur, server)
			}
			cur = slices.DeleteFunc(cur, func(a string) bool {
				return strings.EqualFold(a, rest) || strings.EqualFold(rest, "*") || strings.HasPrefix(strings.ToLower(a), strings.ToLower(rest)+".")
			})
			msg = fmt.Sprintf("🔧 Disabled `%s` in this channel.", rest)
		}
		st.Tools = &cur
		st.UpdatedBy = c.User.ID
	})
	if err != nil {
		return storeFailed(e, err)
	}
	return Answer{Text: msg}
}

// effectiveAllow is the channel's allow-list as an explicit list (a nil
// list, "everything", is spelled out as the servers known now).
func (e *Engine) effectiveAllow(ctx context.Context, s Scope, st *storage.Settings) []string {
	if st.Tools != nil {
		return slices.Clone(*st.Tools)
	}
	o := e.conf().Tools
	allow := o.Allow
	if ws, ok := o.Workspaces[s.Workspace]; ok && ws.Allow != nil {
		allow = ws.Allow
	}
	if ch, ok := o.Channels[s.Channel]; ok && ch.Allow != nil {
		allow = ch.Allow
	}
	if allow != nil {
		return slices.Clone(allow)
	}
	var out []string
	if o.Source != nil {
		for _, t := range o.Source.Tools() {
			if !slices.Contains(out, t.Server) {
				out = append(out, t.Server)
			}
		}
	}
	return out
}

// expandServer replaces an allow-list's entry for server (or "*", for that
// server's part) by the server's tools known now, one entry each.
func (e *Engine) expandServer(list []string, server string) []string {
	whole := slices.ContainsFunc(list, func(a string) bool { return a == "*" || strings.EqualFold(a, server) })
	if !whole || e.opts.Tools.Source == nil {
		return list
	}
	tools := e.opts.Tools.Source.Tools()
	out := slices.DeleteFunc(slices.Clone(list), func(a string) bool { return a == "*" || strings.EqualFold(a, server) })
	if slices.Contains(list, "*") { // every other server stays allowed whole
		for _, t := range tools {
			if !strings.EqualFold(t.Server, server) && !slices.Contains(out, t.Server) {
				out = append(out, t.Server)
			}
		}
	}
	for _, t := range tools {
		if strings.EqualFold(t.Server, server) {
			if name := t.Server + "." + t.Name; !slices.Contains(out, name) {
				out = append(out, name)
			}
		}
	}
	return out
}

// listTools shows the tools the caller may use here.
func (e *Engine) listTools(ctx context.Context, c Command) Answer {
	set, err := e.resolve(ctx, c.Scope(), nil)
	if err != nil {
		return storeFailed(e, err)
	}
	tools, search := e.toolsFor(c.Scope(), c.User.Roles, set)
	var b strings.Builder
	if len(tools) == 0 {
		b.WriteString("🔧 No tools are enabled for you here.")
	} else {
		fmt.Fprintf(&b, "🔧 *Tools here* (%d):", len(tools))
		for _, t := range tools {
			desc := strings.TrimSpace(t.Spec.Description)
			if i := strings.IndexAny(desc, "\n"); i >= 0 {
				desc = desc[:i]
			}
			if len(desc) > 120 {
				desc = desc[:117] + "…"
			}
			fmt.Fprintf(&b, "\n• `%s.%s`", t.Server, t.Name)
			if desc != "" {
				b.WriteString(" — " + desc)
			}
		}
	}
	if search {
		b.WriteString("\n🔎 Web search is on (with Responses, Claude and Gemini models).")
	} else {
		b.WriteString("\n🔎 Web search is off.")
	}
	return Answer{Text: b.String(), Private: true}
}
