package bot

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/cometbot/cometbot/llm"
	"github.com/cometbot/cometbot/storage"
)

// Command names the engine understands.
const (
	CmdModel  = "model"
	CmdReset  = "reset"
	CmdSystem = "system"
	CmdUsage  = "usage"
	CmdForget = "forget"
	CmdHelp   = "help"
)

// CommandNames lists the canonical command names, for adapters that register them.
var CommandNames = []string{CmdModel, CmdReset, CmdSystem, CmdUsage, CmdForget, CmdTools, CmdHelp}

// listPageSize is how many models /model list shows per page.
const listPageSize = 20

// HandleCommand runs one slash command and returns its answer. It is fast
// (no model call), so adapters may call it inside a 3-second ack window.
func (e *Engine) HandleCommand(ctx context.Context, c Command) Answer {
	s := c.Scope()
	if c.DM && e.conf().Policy.DisableDMs {
		return Answer{Text: refuseDMs, Private: true}
	}
	if !e.gate.allowed(s, c.User) {
		return Answer{Text: refuseAccess, Private: true}
	}
	args := strings.TrimSpace(c.Args)
	switch strings.ToLower(strings.TrimPrefix(c.Name, "/")) {
	case CmdModel:
		return e.cmdModel(ctx, c, args)
	case CmdReset:
		return e.cmdReset(ctx, c)
	case CmdSystem:
		return e.cmdSystem(ctx, c, args)
	case CmdUsage:
		return e.cmdUsage(ctx, c)
	case CmdForget:
		return e.cmdForget(ctx, c, args)
	case CmdTools:
		return e.cmdTools(ctx, c, args)
	case CmdHelp, "":
		return Answer{Text: helpText, Private: true}
	default:
		return Answer{Text: fmt.Sprintf("I don't know the command `%s`. %s", c.Name, shortHelp), Private: true}
	}
}

const shortHelp = "Try `/model`, `/reset`, `/system`, `/usage`, `/forget`, `/tools` or `/help`."

const helpText = "*cometbot commands*\n" +
	"• `/model` — show the model used here and where it was set\n" +
	"• `/model list [filter] [page]` — text models with prices (USD per million tokens in/out)\n" +
	"• `/model <id or alias> [thread|channel|server]` — switch model (default: this thread if you're in one, else this channel or DM)\n" +
	"• `/model <id> temperature=0.3 max_tokens=800` — also set sampling options\n" +
	"• `/system [thread:|channel:|server:] <prompt>` — set the system prompt; `/system` shows it, `/system clear` removes it\n" +
	"• `/reset` — start a new conversation here\n" +
	"• `/usage` — tokens and cost today and this month\n" +
	"• `/forget` — delete your messages and usage records in this workspace (asks to confirm)\n" +
	"• `/tools` — the tools the model may use here; admins: `/tools enable|disable <server|server.tool>`, `/tools web on|off`"

// settingsScope picks the scope level a setting command writes: an explicit
// word wins; otherwise the channel (in a DM: the user's DM).
func settingsScope(c Command, word string) (string, string) {
	switch strings.TrimSuffix(strings.ToLower(word), ":") {
	case "thread":
		if c.Thread == "" {
			return "", "There is no thread here — run the command inside a thread, or use `channel`."
		}
		return ScopeThread, ""
	case "channel", "here", "dm":
		return ScopeChannel, ""
	case "server", "workspace", "guild":
		if c.DM {
			return "", "Server-wide settings can't be changed from a direct message."
		}
		return ScopeWorkspace, ""
	}
	return "", ""
}

// defaultLevel is where a setting command writes without a scope word: the
// thread it was issued in, else the channel (in a DM: the user's DM).
func defaultLevel(c Command) string {
	if c.Thread != "" {
		return ScopeThread
	}
	return ScopeChannel
}

func isScopeWord(w string) bool {
	switch strings.TrimSuffix(strings.ToLower(w), ":") {
	case "thread", "channel", "here", "dm", "server", "workspace", "guild":
		return true
	}
	return false
}

// mayChange reports whether the user may write settings at level.
func (e *Engine) mayChange(c Command, level, what string) bool {
	if c.DM || level == ScopeThread {
		return true
	}
	if what == CmdModel && level == ScopeChannel && !e.conf().Policy.AdminsOnlyModelSwitch {
		return true
	}
	return e.gate.isAdmin(c.User)
}

const refuseAdmin = "🔒 Only admins can change that here. You can still change it for this thread with the `thread` scope."

func describeScope(level string) string {
	switch level {
	case ScopeThread:
		return "this thread"
	case ScopeChannel:
		return "this channel"
	case ScopeWorkspace:
		return "this server"
	case scopePinned:
		return "the start of this thread"
	case scopeConfig:
		return "the config file"
	default:
		return "the bot's default"
	}
}

func (e *Engine) cmdModel(ctx context.Context, c Command, args string) Answer {
	fields := strings.Fields(args)
	if len(fields) == 0 {
		return e.showModel(ctx, c)
	}
	if strings.EqualFold(fields[0], "list") || strings.EqualFold(fields[0], "ls") {
		return e.listModels(fields[1:])
	}
	// Leading or trailing scope word; key=value options.
	var level, id string
	var temp *float64
	var maxTok *int
	for i, f := range fields {
		switch {
		case isScopeWord(f) && (i == 0 || i == len(fields)-1) && level == "":
			l, msg := settingsScope(c, f)
			if msg != "" {
				return Answer{Text: msg, Private: true}
			}
			level = l
		case strings.Contains(f, "="):
			k, v, _ := strings.Cut(f, "=")
			switch strings.ToLower(k) {
			case "temperature", "temp":
				x, err := strconv.ParseFloat(v, 64)
				if err != nil || x < 0 || x > 2 {
					return Answer{Text: "Temperature must be a number between 0 and 2, e.g. `temperature=0.3`.", Private: true}
				}
				temp = &x
			case "max_tokens", "max_output_tokens":
				n, err := strconv.Atoi(v)
				if err != nil || n < 1 || n > 1_000_000 {
					return Answer{Text: "max_tokens must be a positive whole number, e.g. `max_tokens=800`.", Private: true}
				}
				maxTok = &n
			default:
				return Answer{Text: fmt.Sprintf("Unknown option `%s`. Options: `temperature=`, `max_tokens=`.", k), Private: true}
			}
		case id == "":
			id = f
		default:
			return Answer{Text: "Usage: `/model <id or alias> [thread|channel|server]` — " + shortHelp, Private: true}
		}
	}
	if level == "" {
		level = defaultLevel(c)
	}
	if !e.mayChange(c, level, CmdModel) {
		return Answer{Text: refuseAdmin, Private: true}
	}
	if strings.EqualFold(id, "default") || strings.EqualFold(id, "reset") {
		err := e.opts.Store.UpdateSettings(ctx, scopeKey(c.Scope(), level), func(st *storage.Settings) {
			st.Model, st.Temperature, st.MaxOutputTokens, st.UpdatedBy = "", nil, nil, c.User.ID
		})
		if err != nil {
			return storeFailed(e, err)
		}
		return Answer{Text: fmt.Sprintf("Model setting for %s cleared.", describeScope(level))}
	}
	model := id
	if model != "" {
		var refusal string
		model, refusal = e.validateModel(model)
		if refusal != "" {
			return Answer{Text: refusal, Private: true}
		}
	}
	err := e.opts.Store.UpdateSettings(ctx, scopeKey(c.Scope(), level), func(st *storage.Settings) {
		if model != "" {
			st.Model = model
		}
		if temp != nil {
			st.Temperature = temp
		}
		if maxTok != nil {
			st.MaxOutputTokens = maxTok
		}
		st.UpdatedBy = c.User.ID
	})
	if err != nil {
		return storeFailed(e, err)
	}
	var b strings.Builder
	if model != "" {
		fmt.Fprintf(&b, "✅ %s now uses `%s`", capitalize(describeScope(level)), model)
		if info, ok := e.lookup(model); ok {
			fmt.Fprintf(&b, " (%s, %s in / %s out per million tokens)", orDash(info.Provider), price(info.Pricing.Input), price(info.Pricing.Output))
		} else {
			b.WriteString(" (not verified: the model catalog isn't available right now)")
		}
		b.WriteString(".")
		if e.conf().Policy.Budgets.any() && !e.priced(model) {
			b.WriteString(" Note: I can't price this model, so while spending limits apply, replies with it are refused.")
		}
	} else {
		fmt.Fprintf(&b, "✅ Options saved for %s.", describeScope(level))
	}
	if temp != nil {
		fmt.Fprintf(&b, " Temperature %.2g.", *temp)
	}
	if maxTok != nil {
		fmt.Fprintf(&b, " Max output %s.", plural(*maxTok, "token", "tokens"))
	}
	return Answer{Text: b.String()}
}

// validateModel resolves aliases and checks the id against the catalog.
func (e *Engine) validateModel(id string) (string, string) {
	if target, ok := e.conf().Policy.Aliases[strings.ToLower(id)]; ok {
		id = target
	}
	if e.opts.Catalog == nil || !e.opts.Catalog.Loaded() {
		return id, "" // nothing to check against: accept it unverified
	}
	info, ok := e.opts.Catalog.Lookup(id)
	if !ok {
		msg := fmt.Sprintf("I don't know the model `%s`.", id)
		if sug := e.opts.Catalog.Suggest(id, 3); len(sug) > 0 {
			msg += " Did you mean " + quoteList(sug) + "?"
		}
		return "", msg + " See `/model list`."
	}
	if !info.IsText() {
		return "", fmt.Sprintf("`%s` is %s model, not a text model, so it can't chat. Pick a text model from `/model list`.", info.ID, withArticle(orDash(info.Type)))
	}
	return info.ID, ""
}

func (e *Engine) lookup(id string) (llm.ModelInfo, bool) {
	if e.opts.Catalog == nil {
		return llm.ModelInfo{}, false
	}
	return e.opts.Catalog.Lookup(id)
}

func quoteList(ids []string) string {
	q := make([]string, len(ids))
	for i, s := range ids {
		q[i] = "`" + s + "`"
	}
	if len(q) == 1 {
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// price renders a per-million price like $0.15.
func price(v float64) string {
	if v == 0 {
		return "$0"
	}
	s := strconv.FormatFloat(v, 'f', -1, 64)
	if dot := strings.IndexByte(s, '.'); dot >= 0 && len(s)-dot > 5 {
		s = strconv.FormatFloat(v, 'f', 4, 64)
	}
	return "$" + s
}

func storeFailed(e *Engine, err error) Answer {
	e.log.Error("command store error", "err", err)
	return Answer{Text: "⚠️ I couldn't save that. Please try again.", Private: true}
}

func (e *Engine) showModel(ctx context.Context, c Command) Answer {
	s := c.Scope()
	var hist []storage.Record
	if s.Thread != "" {
		var err error
		if _, hist, err = e.opts.Store.History(ctx, s.ConversationKey(), e.opts.HistoryMessages); err != nil {
			return storeFailed(e, err)
		}
	}
	r, err := e.resolve(ctx, s, hist)
	if err != nil {
		return storeFailed(e, err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Model here: `%s` (set by %s)", r.Model, describeScope(r.ModelFrom))
	if info, ok := e.lookup(r.Model); ok {
		fmt.Fprintf(&b, " — %s, %s in / %s out per million tokens", orDash(info.Provider), price(info.Pricing.Input), price(info.Pricing.Output))
	}
	b.WriteString(".\nSwitch with `/model <id>`; browse with `/model list [filter]`.")
	if len(e.conf().Policy.Aliases) > 0 {
		b.WriteString(" Aliases: ")
		first := true
		for _, k := range slices.Sorted(maps.Keys(e.conf().Policy.Aliases)) {
			if !first {
				b.WriteString(", ")
			}
			first = false
			fmt.Fprintf(&b, "`%s` → `%s`", k, e.conf().Policy.Aliases[k])
		}
		b.WriteString(".")
	}
	return Answer{Text: b.String(), Private: true}
}

func (e *Engine) listModels(args []string) Answer {
	if e.opts.Catalog == nil || !e.opts.Catalog.Loaded() {
		return Answer{Text: "The model catalog isn't available right now — try again in a minute. You can still switch with `/model <id>`.", Private: true}
	}
	page := 1
	if n := len(args); n > 0 {
		if p, err := strconv.Atoi(args[n-1]); err == nil && p > 0 {
			page, args = p, args[:n-1]
		}
	}
	filter := strings.Join(args, " ")
	all := e.opts.Catalog.Search(filter, 0)
	if len(all) == 0 {
		if filter == "" {
			return Answer{Text: "The model catalog is empty or still loading — try again in a moment.", Private: true}
		}
		return Answer{Text: fmt.Sprintf("No text model matches `%s`.", filter), Private: true}
	}
	pages := (len(all) + listPageSize - 1) / listPageSize
	if page > pages {
		page = pages
	}
	var b strings.Builder
	fmt.Fprintf(&b, "*Text models*")
	if filter != "" {
		fmt.Fprintf(&b, " matching `%s`", filter)
	}
	fmt.Fprintf(&b, " — %d found, page %d/%d (USD per million tokens, in / out)\n", len(all), page, pages)
	for _, m := range all[(page-1)*listPageSize : min(page*listPageSize, len(all))] {
		fmt.Fprintf(&b, "• `%s` — %s — %s / %s\n", m.ID, orDash(m.Provider), price(m.Pricing.Input), price(m.Pricing.Output))
	}
	if page < pages {
		next := "/model list "
		if filter != "" {
			next += filter + " "
		}
		fmt.Fprintf(&b, "More: `%s%d`", next, page+1)
	}
	return Answer{Text: strings.TrimRight(b.String(), "\n"), Private: true}
}

// ModelChoices returns up to limit text models (and matching aliases) for
// pickers: Discord autocomplete, Slack external selects.
func (e *Engine) ModelChoices(_ context.Context, query string, limit int) []Choice {
	if e.opts.Catalog == nil || limit <= 0 {
		return nil
	}
	var out []Choice
	q := strings.ToLower(strings.TrimSpace(query))
	for _, k := range slices.Sorted(maps.Keys(e.conf().Policy.Aliases)) {
		if len(out) < limit && (q == "" || strings.Contains(k, q)) {
			out = append(out, Choice{Value: k, Label: k + " → " + e.conf().Policy.Aliases[k]})
		}
	}
	for _, m := range e.opts.Catalog.Search(query, limit) {
		if len(out) >= limit {
			break
		}
		out = append(out, Choice{Value: m.ID, Label: fmt.Sprintf("%s · %s · %s/%s per M", m.ID, orDash(m.Provider), price(m.Pricing.Input), price(m.Pricing.Output))})
	}
	return out
}

func (e *Engine) cmdReset(ctx context.Context, c Command) Answer {
	if !c.DM && c.Thread == "" {
		// Channel conversations live in threads: each mention starts its own.
		return Answer{Text: "Conversations here live in threads, and every new mention starts a fresh one. To reset a thread's conversation, run the command inside that thread (on Slack: mention me there with `/reset`).", Private: true}
	}
	if err := e.opts.Store.ResetConversation(ctx, c.Scope().ConversationKey()); err != nil {
		return storeFailed(e, err)
	}
	e.cancelRunning(c.Scope().ConversationKey(), errReset)
	where := "this channel"
	switch {
	case c.Thread != "":
		where = "this thread"
	case c.DM:
		where = "our direct messages"
	}
	return Answer{Text: fmt.Sprintf("🧹 Started a new conversation in %s. Earlier messages won't be used as context.", where)}
}

func (e *Engine) cmdSystem(ctx context.Context, c Command, args string) Answer {
	level := ""
	if w, rest, _ := strings.Cut(args, " "); strings.HasSuffix(w, ":") && isScopeWord(w) || (isScopeWord(w) && strings.TrimSpace(rest) == "") {
		l, msg := settingsScope(c, w)
		if msg != "" {
			return Answer{Text: msg, Private: true}
		}
		level, args = l, strings.TrimSpace(rest)
	}
	if args == "" { // show: a scope word alone shows that scope's prompt, never clears it
		r, err := e.resolve(ctx, c.Scope(), nil)
		if err != nil {
			return storeFailed(e, err)
		}
		if r.SystemPrompt == "" {
			return Answer{Text: "No system prompt is set here. Set one with `/system <prompt>`.", Private: true}
		}
		return Answer{Text: fmt.Sprintf("System prompt here (set by %s):\n> %s", describeScope(r.SystemFrom), strings.ReplaceAll(r.SystemPrompt, "\n", "\n> ")), Private: true}
	}
	if level == "" {
		level = defaultLevel(c)
	}
	if !e.mayChange(c, level, CmdSystem) {
		return Answer{Text: refuseAdmin, Private: true}
	}
	if len(args) > 8000 {
		return Answer{Text: "That system prompt is too long (over 8,000 characters).", Private: true}
	}
	clear := strings.EqualFold(args, "clear") || strings.EqualFold(args, "reset")
	err := e.opts.Store.UpdateSettings(ctx, scopeKey(c.Scope(), level), func(st *storage.Settings) {
		if clear {
			st.SystemPrompt = nil
		} else {
			p := args
			st.SystemPrompt = &p
		}
		st.UpdatedBy = c.User.ID
	})
	if err != nil {
		return storeFailed(e, err)
	}
	if clear {
		return Answer{Text: fmt.Sprintf("System prompt for %s cleared.", describeScope(level))}
	}
	return Answer{Text: fmt.Sprintf("✅ System prompt for %s set (%s).", describeScope(level), plural(len([]rune(args)), "character", "characters"))}
}

func (e *Engine) cmdUsage(ctx context.Context, c Command) Answer {
	now := e.opts.Now()
	ws := c.Platform + "/" + c.Workspace
	type row struct {
		label, kind, id string
	}
	rows := []row{{"You", storage.KindUser, c.User.ID}}
	if !c.DM {
		rows = append(rows, row{"This channel", storage.KindChannel, c.Channel})
	}
	admin := e.gate.hasAdmins() && e.gate.isAdmin(c.User) || !e.gate.hasAdmins() && !c.DM
	if admin {
		rows = append(rows, row{"Whole server", storage.KindAll, "*"})
	}
	var b strings.Builder
	b.WriteString("*Usage* (UTC)\n")
	for _, r := range rows {
		day, err := e.opts.Store.Usage(ctx, storage.Day(now), ws, r.kind, r.id)
		if err != nil {
			return storeFailed(e, err)
		}
		month, err := e.opts.Store.Usage(ctx, storage.Month(now), ws, r.kind, r.id)
		if err != nil {
			return storeFailed(e, err)
		}
		fmt.Fprintf(&b, "• %s — today: %s · this month: %s\n", r.label, usageLine(day), usageLine(month))
	}
	if admin {
		for _, top := range []struct{ label, kind string }{{"Top users this month", storage.KindUser}, {"Top models this month", storage.KindModel}} {
			list, err := e.opts.Store.TopUsage(ctx, storage.Month(now), ws, top.kind, 5)
			if err != nil {
				return storeFailed(e, err)
			}
			if len(list) == 0 {
				continue
			}
			fmt.Fprintf(&b, "%s:\n", top.label)
			for _, nc := range list {
				fmt.Fprintf(&b, "  • `%s` — %s\n", nc.ID, usageLine(nc.Counter))
			}
		}
	}
	if lim := e.conf().Policy.Budgets.User; lim.Daily > 0 || lim.Monthly > 0 {
		b.WriteString("Your budget: ")
		if lim.Daily > 0 {
			fmt.Fprintf(&b, "%s/day ", money(lim.Daily))
		}
		if lim.Monthly > 0 {
			fmt.Fprintf(&b, "%s/month", money(lim.Monthly))
		}
		b.WriteString("\n")
	}
	return Answer{Text: strings.TrimRight(b.String(), "\n"), Private: true}
}

func usageLine(c storage.Counter) string {
	return fmt.Sprintf("%s, %s, %s", plural(c.Replies, "reply", "replies"), tokens(int(c.InputTokens+c.OutputTokens)), money(c.Cost))
}

func (e *Engine) cmdForget(ctx context.Context, c Command, args string) Answer {
	if !strings.EqualFold(strings.TrimSpace(args), "confirm") {
		return Answer{Text: "This deletes every message you sent me in this workspace (and my replies to them) and your usage records. It can't be undone. To go ahead, run `/forget confirm`.", Private: true}
	}
	prefix := c.Platform + "/" + c.Workspace + "/"
	n, err := e.opts.Store.ForgetUser(ctx, prefix, c.User.ID)
	if err != nil {
		return storeFailed(e, err)
	}
	u, err := e.opts.Store.ForgetUsage(ctx, c.Platform+"/"+c.Workspace, c.User.ID)
	if err != nil {
		return storeFailed(e, err)
	}
	return Answer{Text: fmt.Sprintf("🗑️ Done: deleted %s and %s of yours in this workspace.", plural(n, "stored message", "stored messages"), plural(u, "usage record", "usage records")), Private: true}
}
