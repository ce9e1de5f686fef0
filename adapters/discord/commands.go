package discord

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/bwmarrin/discordgo"

	"github.com/cometbot/cometbot/bot"
)

const (
	maxChoices        = 25 // Discord's cap on autocomplete choices
	choiceTextMax     = 100
	autocompleteLimit = 2500 * time.Millisecond
	doneText          = "Done."
)

// scopeChoices are the setting levels /model and /system accept.
var scopeChoices = []*discordgo.ApplicationCommandOptionChoice{
	{Name: "this thread", Value: "thread"},
	{Name: "this channel", Value: "channel"},
	{Name: "the whole server", Value: "server"},
}

// commands returns the slash commands the bot registers. /model has three
// subcommands: `set <model> [scope]` (autocomplete from the live catalog),
// `list [filter] [page]` and `show`; the engine receives them as Args
// "gpt-4o [scope]", "list [filter] [page]" and "".
func (a *Adapter) commands() []*discordgo.ApplicationCommand {
	n := a.cfg.commandName
	str := discordgo.ApplicationCommandOptionString
	one := 1.0
	scope := func(what string) *discordgo.ApplicationCommandOption {
		return &discordgo.ApplicationCommandOption{
			Type: str, Name: "scope", Description: "Where the " + what + " applies (default: this thread or channel, or this DM)",
			Choices: scopeChoices,
		}
	}
	return []*discordgo.ApplicationCommand{
		{
			Name:        n("model"),
			Description: "Show, set or list the model used here",
			Options: []*discordgo.ApplicationCommandOption{
				{
					Type: discordgo.ApplicationCommandOptionSubCommand, Name: "set",
					Description: "Use this model here",
					Options: []*discordgo.ApplicationCommandOption{
						{
							Type: str, Name: "model", Description: "Model id or alias (start typing to search the catalog)",
							Required: true, Autocomplete: true,
						},
						scope("model"),
					},
				},
				{
					Type: discordgo.ApplicationCommandOptionSubCommand, Name: "list",
					Description: "List available text models with prices",
					Options: []*discordgo.ApplicationCommandOption{
						{Type: str, Name: "filter", Description: "Only models whose id or provider contains this text"},
						{Type: discordgo.ApplicationCommandOptionInteger, Name: "page", Description: "Page number", MinValue: &one},
					},
				},
				{
					Type: discordgo.ApplicationCommandOptionSubCommand, Name: "show",
					Description: "Show the model used here and where it was set",
				},
			},
		},
		{Name: n("reset"), Description: "Start a new conversation here"},
		{
			Name: n("system"), Description: "Show or set the system prompt used here",
			Options: []*discordgo.ApplicationCommandOption{
				{Type: str, Name: "prompt", Description: "New system prompt, or \"clear\" (leave out to show the current one)"},
				scope("prompt"),
			},
		},
		{Name: n("usage"), Description: "Show your usage and cost today and this month"},
		{
			Name: n("forget"), Description: "Delete your stored messages and usage records in this server",
			Options: []*discordgo.ApplicationCommandOption{{
				Type: discordgo.ApplicationCommandOptionBoolean, Name: "confirm", Description: "Yes, delete them",
			}},
		},
		{
			Name: n("tools"), Description: "Show the tools the model may use here (admins: enable or disable them)",
			Options: []*discordgo.ApplicationCommandOption{
				{Type: str, Name: "action", Description: "enable <server|server.tool>, disable <…> or web on|off (admins)"},
			},
		},
		{Name: n("help"), Description: "What this bot can do"},
	}
}

// registerCommands bulk-overwrites the commands, per configured guild (they
// show up at once) or globally.
func (a *Adapter) registerCommands(ctx context.Context, appID string) error {
	if appID == "" {
		return errors.New("discord: register commands: no application id in READY")
	}
	cmds := a.commands()
	guilds := a.cfg.GuildIDs
	if len(guilds) == 0 {
		guilds = []string{""}
	}
	for _, g := range guilds {
		var err error
		for attempt := 0; attempt < 4; attempt++ {
			_, err = a.session.ApplicationCommandBulkOverwrite(appID, g, cmds, discordgo.WithContext(ctx), discordgo.WithRetryOnRatelimit(false))
			var rl *discordgo.RateLimitError
			if !errors.As(err, &rl) {
				break
			}
			if serr := sleepCtx(ctx, rl.RetryAfter); serr != nil {
				return serr
			}
		}
		if err != nil {
			where := "globally"
			if g != "" {
				where = "in guild " + g
			}
			return fmt.Errorf("discord: register commands %s: %w", where, err)
		}
	}
	a.log.Info("slash commands registered", "guilds", a.cfg.GuildIDs, "global", len(a.cfg.GuildIDs) == 0)
	return nil
}

// canonical maps a platform command name back to the engine's name.
func (a *Adapter) canonical(name string) string {
	for _, c := range canonicalCommands {
		if a.cfg.commandName(c) == name {
			return c
		}
	}
	return ""
}

// commandArgs turns the options of a command into the engine's Args text.
// Without a scope option the engine picks the default (the thread when the
// command was issued in one).
func commandArgs(canon string, opts []*discordgo.ApplicationCommandInteractionDataOption) string {
	join := func(parts ...string) string {
		var out []string
		for _, p := range parts {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
		return strings.Join(out, " ")
	}
	switch canon {
	case "model":
		for _, o := range opts {
			if o == nil || o.Type != discordgo.ApplicationCommandOptionSubCommand {
				continue
			}
			switch o.Name {
			case "set":
				return join(optionText(o.Options, "model"), optionText(o.Options, "scope"))
			case "list":
				return join("list", optionText(o.Options, "filter"), optionText(o.Options, "page"))
			default:
				return ""
			}
		}
		return optionText(opts, "model")
	case "system":
		prompt := optionText(opts, "prompt")
		if prompt == "" {
			return "" // show
		}
		if sc := optionText(opts, "scope"); sc != "" {
			return sc + ": " + prompt
		}
		return prompt
	case "tools":
		return optionText(opts, "action")
	case "forget":
		for _, o := range opts {
			if o != nil && o.Name == "confirm" {
				if b, ok := o.Value.(bool); ok && b {
					return "confirm"
				}
			}
		}
		return ""
	}
	var vals []string
	for _, o := range opts {
		if o != nil && o.Value != nil {
			vals = append(vals, fmt.Sprint(o.Value))
		}
	}
	return join(vals...)
}

func optionText(opts []*discordgo.ApplicationCommandInteractionDataOption, name string) string {
	for _, o := range opts {
		if o == nil || o.Name != name || o.Value == nil {
			continue
		}
		if f, ok := o.Value.(float64); ok { // JSON numbers (integer options)
			return strconv.FormatFloat(f, 'f', -1, 64)
		}
		return strings.TrimSpace(fmt.Sprint(o.Value))
	}
	return ""
}

// focusedValue returns the text typed into the option being autocompleted.
func focusedValue(opts []*discordgo.ApplicationCommandInteractionDataOption) (string, bool) {
	for _, o := range opts {
		if o == nil {
			continue
		}
		if o.Focused {
			if o.Value == nil {
				return "", true
			}
			return fmt.Sprint(o.Value), true
		}
		if v, ok := focusedValue(o.Options); ok {
			return v, true
		}
	}
	return "", false
}

func interactionUser(i *discordgo.Interaction) bot.User {
	if i.Member != nil && i.Member.User != nil {
		u := i.Member.User
		return bot.User{ID: u.ID, Name: userName(u, i.Member), IsBot: u.Bot, Roles: i.Member.Roles}
	}
	if i.User != nil {
		return bot.User{ID: i.User.ID, Name: userName(i.User, nil), IsBot: i.User.Bot}
	}
	return bot.User{}
}

// onInteraction starts handling one interaction. Interactions replayed
// after a RESUME are dropped: each id is answered once.
func (a *Adapter) onInteraction(i *discordgo.Interaction) {
	if i == nil || i.ID == "" || i.Token == "" {
		return
	}
	if !a.seen.PutIfAbsent(i.ID, struct{}{}) {
		return
	}
	a.mu.Lock()
	ctx := a.stopCtx
	a.mu.Unlock()
	if ctx == nil {
		return
	}
	switch i.Type {
	case discordgo.InteractionApplicationCommand:
		a.goTracked(func() { a.handleCommand(ctx, i) })
	case discordgo.InteractionApplicationCommandAutocomplete:
		a.goTracked(func() { a.handleAutocomplete(ctx, i) })
	}
}

// handleCommand runs a slash command. The answer is sent directly when the
// engine answers within CommandDeferAfter; otherwise the adapter sends a
// deferred (ephemeral) response first and edits it when the answer comes.
// Deferring has to choose visibility before the answer exists, so a slow
// answer is shown only to the caller.
func (a *Adapter) handleCommand(ctx context.Context, i *discordgo.Interaction) {
	data, ok := i.Data.(discordgo.ApplicationCommandInteractionData)
	if !ok {
		return
	}
	canon := a.canonical(data.Name)
	if canon == "" {
		a.respond(ctx, i, bot.Answer{Text: "Unknown command.", Private: true}, false)
		return
	}
	answers := make(chan bot.Answer, 1)
	started := a.goTracked(func() {
		cmd := bot.Command{
			Name:      canon,
			Platform:  "discord",
			Workspace: i.GuildID,
			Channel:   i.ChannelID,
			DM:        i.GuildID == "",
			User:      interactionUser(i),
		}
		if !cmd.DM {
			lctx, cancel := context.WithTimeout(ctx, a.cfg.CommandDeferAfter)
			if info, known := a.channelInfo(lctx, i.ChannelID); known && info.isThread() {
				cmd.Thread = i.ChannelID
				if info.Parent != "" {
					cmd.Channel = info.Parent
				}
			}
			cancel()
		}
		cmd.Args = commandArgs(canon, data.Options)
		answers <- a.engine.HandleCommand(ctx, cmd)
	})
	if !started {
		return
	}
	t := time.NewTimer(a.cfg.CommandDeferAfter)
	defer t.Stop()
	select {
	case ans := <-answers:
		a.respond(ctx, i, ans, false)
		return
	case <-t.C:
	case <-ctx.Done():
		return
	}
	err := a.session.InteractionRespond(i, &discordgo.InteractionResponse{
		Type: discordgo.InteractionResponseDeferredChannelMessageWithSource,
		Data: &discordgo.InteractionResponseData{Flags: discordgo.MessageFlagsEphemeral},
	}, discordgo.WithContext(ctx))
	if err != nil {
		a.log.Warn("deferring a command failed", "command", data.Name, "err", err)
	}
	select {
	case ans := <-answers:
		ans.Private = true
		a.respond(ctx, i, ans, true)
	case <-ctx.Done():
	}
}

// respond sends a command's answer: the first part as the interaction
// response (or an edit of the deferred one), the rest as follow-ups.
func (a *Adapter) respond(ctx context.Context, i *discordgo.Interaction, ans bot.Answer, deferred bool) {
	parts := splitMessage(ans.Text)
	if len(parts) == 0 {
		parts = []string{doneText}
	}
	var flags discordgo.MessageFlags
	if ans.Private {
		flags = discordgo.MessageFlagsEphemeral
	}
	var err error
	if deferred {
		_, err = a.session.InteractionResponseEdit(i, &discordgo.WebhookEdit{Content: &parts[0], AllowedMentions: noMentions()}, discordgo.WithContext(ctx))
	} else {
		err = a.session.InteractionRespond(i, &discordgo.InteractionResponse{
			Type: discordgo.InteractionResponseChannelMessageWithSource,
			Data: &discordgo.InteractionResponseData{Content: parts[0], Flags: flags, AllowedMentions: noMentions()},
		}, discordgo.WithContext(ctx))
	}
	if err != nil {
		a.log.Warn("answering a command failed", "err", err)
		return
	}
	for _, p := range parts[1:] {
		if _, err := a.session.FollowupMessageCreate(i, true, &discordgo.WebhookParams{Content: p, Flags: flags, AllowedMentions: noMentions()}, discordgo.WithContext(ctx)); err != nil {
			a.log.Warn("command follow-up failed", "err", err)
			return
		}
	}
}

// autocompleteResponse is written by hand so that an empty result still
// carries "choices": [] (discordgo omits an empty list).
type autocompleteResponse struct {
	Type discordgo.InteractionResponseType `json:"type"`
	Data struct {
		Choices []*discordgo.ApplicationCommandOptionChoice `json:"choices"`
	} `json:"data"`
}

// handleAutocomplete answers the model picker with up to 25 catalog matches,
// labelled with provider and price.
func (a *Adapter) handleAutocomplete(ctx context.Context, i *discordgo.Interaction) {
	data, ok := i.Data.(discordgo.ApplicationCommandInteractionData)
	if !ok {
		return
	}
	query, _ := focusedValue(data.Options)
	cctx, cancel := context.WithTimeout(ctx, autocompleteLimit)
	choices := a.engine.ModelChoices(cctx, strings.TrimSpace(query), maxChoices)
	cancel()
	resp := autocompleteResponse{Type: discordgo.InteractionApplicationCommandAutocompleteResult}
	resp.Data.Choices = make([]*discordgo.ApplicationCommandOptionChoice, 0, len(choices))
	for _, c := range choices {
		if len(resp.Data.Choices) == maxChoices {
			break
		}
		if c.Value == "" || utf8.RuneCountInString(c.Value) > choiceTextMax {
			continue
		}
		label := c.Label
		if label == "" {
			label = c.Value
		}
		resp.Data.Choices = append(resp.Data.Choices, &discordgo.ApplicationCommandOptionChoice{Name: truncate(label, choiceTextMax), Value: c.Value})
	}
	endpoint := discordgo.EndpointInteractionResponse(i.ID, i.Token)
	if _, err := a.session.RequestWithBucketID("POST", endpoint, resp, endpoint, discordgo.WithContext(ctx)); err != nil {
		a.log.Debug("autocomplete answer failed", "err", err)
	}
}

// truncate shortens s to at most n runes, marking the cut with an ellipsis.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
