package slack

import (
	"context"
	"encoding/json"
	"strings"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/cometbot/cometbot/bot"
)

// modelActionID identifies the model picker's external select.
const modelActionID = "cometbot_model_select"

// Limits for command answers: an ack payload must stay under 20 KB and a
// response_url may be used five times.
const (
	commandPartRunes = 2800
	commandMaxRunes  = 2900
	maxResponseParts = 5
	maxChoices       = 50
	maxAckBytes      = 18 << 10
)

// commandMessage is the ack payload / response_url body of a command answer.
type commandMessage struct {
	ResponseType    string        `json:"response_type,omitempty"`
	Text            string        `json:"text"`
	Blocks          []slack.Block `json:"blocks,omitempty"`
	ReplaceOriginal bool          `json:"replace_original,omitempty"`
}

func responseType(private bool) string {
	if private {
		return slack.ResponseTypeEphemeral
	}
	return slack.ResponseTypeInChannel
}

func isDMChannel(id string) bool { return strings.HasPrefix(id, "D") }

// slashCommand runs a slash command. It returns the ack payload (answered
// within Slack's 3 seconds) and, for long answers, a follow-up that posts
// the rest to the response_url.
func (a *Adapter) slashCommand(ctx context.Context, sc slack.SlashCommand) (any, func(context.Context)) {
	name, ok := a.commands[strings.ToLower(strings.TrimSpace(sc.Command))]
	if !ok {
		return commandMessage{ResponseType: slack.ResponseTypeEphemeral, Text: "Unknown command " + escapeSlack(sc.Command) + "."}, nil
	}
	cmd := bot.Command{
		Name:      name,
		Args:      strings.TrimSpace(sc.Text),
		Platform:  Platform,
		Workspace: sc.TeamID,
		Channel:   sc.ChannelID,
		DM:        isDMChannel(sc.ChannelID),
		User:      bot.User{ID: sc.UserID, Name: sc.UserName},
	}
	ans := a.engine.HandleCommand(ctx, cmd)
	a.log.Debug("slack: command", "command", name, "channel", sc.ChannelID)
	return a.commandAnswer(ans, name == "model" && cmd.Args == "", sc.ResponseURL, false)
}

// commandAnswer renders an answer as an ack payload plus response_url
// follow-ups for further parts.
func (a *Adapter) commandAnswer(ans bot.Answer, picker bool, responseURL string, replace bool) (any, func(context.Context)) {
	parts := renderMrkdwn(ans.Text, commandPartRunes, commandMaxRunes)
	if len(parts) == 0 {
		parts = []string{"Done."}
	}
	rt := responseType(ans.Private)
	first := commandMessage{ResponseType: rt, Text: parts[0], ReplaceOriginal: replace}
	if picker {
		first.Blocks = modelPickerBlocks(parts[0])
	}
	if b, err := json.Marshal(first); err == nil && len(b) > maxAckBytes {
		first.Blocks = nil
	}
	rest := parts[1:]
	if len(rest) > maxResponseParts-1 {
		rest = append(rest[:maxResponseParts-2:maxResponseParts-2], "_(answer truncated: Slack allows five replies to a command; narrow it down, e.g. `/model list gpt`)_")
	}
	if len(rest) == 0 || responseURL == "" {
		return first, nil
	}
	return first, func(ctx context.Context) {
		for _, p := range rest {
			if err := a.postResponse(ctx, responseURL, commandMessage{ResponseType: rt, Text: p}); err != nil {
				a.log.Warn("slack: response_url post failed", "err", err)
				return
			}
		}
	}
}

// postResponse posts a message to a response_url with slack-go.
func (a *Adapter) postResponse(ctx context.Context, responseURL string, m commandMessage) error {
	opts := []slack.MsgOption{slack.MsgOptionText(m.Text, false)}
	if m.ReplaceOriginal {
		opts = append(opts, slack.MsgOptionReplaceOriginal(responseURL))
	} else {
		opts = append(opts, slack.MsgOptionResponseURL(responseURL, m.ResponseType))
	}
	if len(m.Blocks) > 0 {
		opts = append(opts, slack.MsgOptionBlocks(m.Blocks...))
	}
	_, _, err := a.api.PostMessageContext(ctx, "", opts...)
	return err
}

// modelPickerBlocks shows text with an external select of models.
func modelPickerBlocks(text string) []slack.Block {
	if utf8.RuneCountInString(text) > 2900 {
		text = string([]rune(text)[:2900]) + "…"
	}
	minLen := 0
	sel := &slack.SelectBlockElement{
		Type:           slack.OptTypeExternal,
		ActionID:       modelActionID,
		Placeholder:    slack.NewTextBlockObject(slack.PlainTextType, "Switch model…", false, false),
		MinQueryLength: &minLen,
	}
	return []slack.Block{
		slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, text, false, false), nil, nil),
		slack.NewActionBlock("cometbot_model", sel),
	}
}

// interaction handles interactivity payloads: block_suggestion feeds the
// model picker from the catalog; block_actions applies the choice by running
// the "model" command and replacing the picker message with the answer.
func (a *Adapter) interaction(ctx context.Context, cb slack.InteractionCallback) (any, func(context.Context)) {
	switch cb.Type {
	case slack.InteractionTypeBlockSuggestion:
		if cb.ActionID != modelActionID {
			return slack.OptionsResponse{Options: []*slack.OptionBlockObject{}}, nil
		}
		return modelOptions(a.engine.ModelChoices(ctx, strings.TrimSpace(cb.Value), maxChoices)), nil
	case slack.InteractionTypeBlockActions:
		for _, act := range cb.ActionCallback.BlockActions {
			if act == nil || act.ActionID != modelActionID || act.SelectedOption.Value == "" {
				continue
			}
			channel := cb.Channel.ID
			if channel == "" {
				channel = cb.Container.ChannelID
			}
			team := cb.Team.ID
			if team == "" {
				team = cb.User.TeamID
			}
			cmd := bot.Command{
				Name: "model", Args: act.SelectedOption.Value, Platform: Platform, Workspace: team,
				Channel: channel, DM: isDMChannel(channel), User: bot.User{ID: cb.User.ID, Name: cb.User.Name},
			}
			responseURL := cb.ResponseURL
			return nil, func(ctx context.Context) {
				ans := a.engine.HandleCommand(ctx, cmd)
				msg, follow := a.commandAnswer(ans, false, responseURL, true)
				if responseURL == "" {
					return
				}
				if err := a.postResponse(ctx, responseURL, msg.(commandMessage)); err != nil {
					a.log.Warn("slack: answering the model picker failed", "err", err)
					return
				}
				if follow != nil {
					follow(ctx)
				}
			}
		}
	}
	return nil, nil
}

// modelOptions builds the options of the external select, within Slack's
// limits (75 characters of text, 150 of value, ack under 20 KB).
func modelOptions(choices []bot.Choice) slack.OptionsResponse {
	resp := slack.OptionsResponse{Options: []*slack.OptionBlockObject{}}
	size := 32
	for _, c := range choices {
		if c.Value == "" || len(c.Value) > 150 {
			continue
		}
		label := c.Label
		if label == "" {
			label = c.Value
		}
		if utf8.RuneCountInString(label) > 75 {
			label = string([]rune(label)[:74]) + "…"
		}
		opt := slack.NewOptionBlockObject(c.Value, slack.NewTextBlockObject(slack.PlainTextType, label, false, false), nil)
		size += len(label)*2 + len(c.Value) + 64
		if size > maxAckBytes || len(resp.Options) >= 100 {
			break
		}
		resp.Options = append(resp.Options, opt)
	}
	return resp
}

// textCommand recognises a command typed as text (e.g. "@cometbot /reset"
// in a channel, or "/model" in an assistant thread where Slack does not
// fire slash commands).
func (a *Adapter) textCommand(text string) (name, args string, ok bool) {
	text = strings.TrimSpace(text)
	if !strings.HasPrefix(text, "/") {
		return "", "", false
	}
	head, rest, _ := strings.Cut(text, " ")
	if i := strings.IndexByte(head, '\n'); i >= 0 {
		head, rest = head[:i], head[i+1:]+" "+rest
	}
	name, ok = a.commands[strings.ToLower(head)]
	if !ok {
		return "", "", false
	}
	return name, strings.TrimSpace(rest), true
}

// runTextCommand answers a text command in the conversation's thread;
// private answers in channels are ephemeral.
func (a *Adapter) runTextCommand(ctx context.Context, out *output, cmd bot.Command) {
	ans := a.engine.HandleCommand(ctx, cmd)
	parts := renderMrkdwn(ans.Text, a.cfg.MessagePartRunes, a.cfg.MaxTextRunes)
	if len(parts) == 0 {
		parts = []string{"Done."}
	}
	lane := a.pacingFor(out.team).post(out.channel)
	for _, p := range parts {
		opts := []slack.MsgOption{slack.MsgOptionText(p, false)}
		if out.thread != "" {
			opts = append(opts, slack.MsgOptionTS(out.thread))
		}
		if err := lane.acquire(ctx, prioHigh); err != nil {
			return
		}
		var err error
		if ans.Private && !out.dm {
			_, err = a.api.PostEphemeralContext(ctx, out.channel, out.user, opts...)
		} else {
			_, _, err = a.api.PostMessageContext(ctx, out.channel, opts...)
		}
		if err != nil {
			a.log.Warn("slack: answering a text command failed", "command", cmd.Name, "err", err)
			return
		}
	}
}
