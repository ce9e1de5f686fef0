package slacktest

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack"
)

// SlashCommand fills the workspace fields of cmd (team, a fresh response_url
// when empty) and returns it as Slack would send it.
func (s *Server) SlashCommand(cmd slack.SlashCommand) slack.SlashCommand {
	if cmd.TeamID == "" {
		cmd.TeamID = s.opts.TeamID
	}
	if cmd.APIAppID == "" {
		cmd.APIAppID = s.opts.AppID
	}
	if cmd.ResponseURL == "" {
		cmd.ResponseURL = s.NewResponseURL()
	}
	if cmd.TriggerID == "" {
		cmd.TriggerID = "trigger-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	}
	return cmd
}

// SendSlashCommand delivers a slash command over Socket Mode. It returns the
// envelope id and the command's response_url.
func (s *Server) SendSlashCommand(cmd slack.SlashCommand) (envelopeID, responseURL string) {
	cmd = s.SlashCommand(cmd)
	return s.SendEnvelope("slash_commands", cmd, true), cmd.ResponseURL
}

// SendInteraction delivers an interactivity payload (block_actions,
// block_suggestion, ...) over Socket Mode and returns the envelope id.
func (s *Server) SendInteraction(payload any) string {
	return s.SendEnvelope("interactive", payload, true)
}

// SlashCommandForm encodes a slash command as the form body Slack POSTs to
// a slash command's request URL.
func SlashCommandForm(cmd slack.SlashCommand) url.Values {
	return url.Values{
		"token":        {cmd.Token},
		"team_id":      {cmd.TeamID},
		"team_domain":  {cmd.TeamDomain},
		"channel_id":   {cmd.ChannelID},
		"channel_name": {cmd.ChannelName},
		"user_id":      {cmd.UserID},
		"user_name":    {cmd.UserName},
		"command":      {cmd.Command},
		"text":         {cmd.Text},
		"response_url": {cmd.ResponseURL},
		"trigger_id":   {cmd.TriggerID},
		"api_app_id":   {cmd.APIAppID},
	}
}

// InteractionForm encodes an interactivity payload as Slack POSTs it to the
// interactivity request URL (form field "payload").
func InteractionForm(payload any) (url.Values, error) {
	raw, err := json.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("slacktest: marshal interaction: %w", err)
	}
	return url.Values{"payload": {string(raw)}}, nil
}

// Sign computes Slack's request signature headers for body at time ts.
func Sign(secret string, ts time.Time, body []byte) (timestamp, signature string) {
	timestamp = strconv.FormatInt(ts.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "v0:%s:", timestamp)
	mac.Write(body)
	return timestamp, "v0=" + hex.EncodeToString(mac.Sum(nil))
}

// NewSignedRequest builds a POST to target signed with secret at time ts, as
// Slack sends Events API, slash command and interactivity requests.
func NewSignedRequest(ctx context.Context, target, secret, contentType string, body []byte, ts time.Time) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, strings.NewReader(string(body)))
	if err != nil {
		return nil, fmt.Errorf("slacktest: new request: %w", err)
	}
	timestamp, sig := Sign(secret, ts, body)
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("X-Slack-Request-Timestamp", timestamp)
	req.Header.Set("X-Slack-Signature", sig)
	return req, nil
}

// MessageEvent is a convenience type for message and app_mention events.
type MessageEvent struct {
	Type         string `json:"type"`
	User         string `json:"user,omitempty"`
	Text         string `json:"text"`
	TS           string `json:"ts"`
	ThreadTS     string `json:"thread_ts,omitempty"`
	Channel      string `json:"channel"`
	ChannelType  string `json:"channel_type,omitempty"`
	EventTS      string `json:"event_ts,omitempty"`
	SubType      string `json:"subtype,omitempty"`
	BotID        string `json:"bot_id,omitempty"`
	ParentUserID string `json:"parent_user_id,omitempty"`
	Team         string `json:"team,omitempty"`
}

// Mention builds an app_mention event for text (which should contain
// "<@BOTUSERID>") by user in channel; threadTS "" means not in a thread.
// A fresh ts is allocated.
func (s *Server) Mention(user, channel, text, threadTS string) MessageEvent {
	ts := s.NextTS()
	return MessageEvent{Type: "app_mention", User: user, Text: text, TS: ts, ThreadTS: threadTS, Channel: channel, EventTS: ts, Team: s.opts.TeamID}
}

// ChannelMessage builds a message event in a public channel (channel_type
// "channel"); threadTS "" means not in a thread.
func (s *Server) ChannelMessage(user, channel, text, threadTS string) MessageEvent {
	ts := s.NextTS()
	return MessageEvent{Type: "message", User: user, Text: text, TS: ts, ThreadTS: threadTS, Channel: channel, ChannelType: "channel", EventTS: ts, Team: s.opts.TeamID}
}

// DM builds a direct message event (channel_type "im").
func (s *Server) DM(user, channel, text, threadTS string) MessageEvent {
	ts := s.NextTS()
	return MessageEvent{Type: "message", User: user, Text: text, TS: ts, ThreadTS: threadTS, Channel: channel, ChannelType: "im", EventTS: ts, Team: s.opts.TeamID}
}
