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
	// Files are attached files (see AddFile and WithFiles).
	Files []FileObject `json:"files,omitempty"`
	// Upload is true on the file_share message of a fresh upload.
	Upload bool `json:"upload,omitempty"`
	// Attachments are message attachments, e.g. shared messages (Share).
	Attachments []Attachment `json:"attachments,omitempty"`
	// Blocks is the raw blocks JSON of the message, if any.
	Blocks json.RawMessage `json:"blocks,omitempty"`
}

// WithFiles returns the event with files attached, as Slack sends a
// message with uploads: a message event gets subtype file_share and
// upload true; an app_mention just carries files[].
func (e MessageEvent) WithFiles(files ...FileObject) MessageEvent {
	e.Files = append(append([]FileObject(nil), e.Files...), files...)
	if e.Type == "message" {
		e.SubType, e.Upload = "file_share", true
	}
	return e
}

// WithShares returns the event with message attachments added (shared
// messages from Share).
func (e MessageEvent) WithShares(atts ...Attachment) MessageEvent {
	e.Attachments = append(append([]Attachment(nil), e.Attachments...), atts...)
	return e
}

// Attachment is a legacy message attachment as Slack puts it on a message
// that shares (forwards) another message or unfurls a link to one.
type Attachment struct {
	ID            int            `json:"id"`
	TS            string         `json:"ts,omitempty"`
	ChannelID     string         `json:"channel_id,omitempty"`
	ChannelTeam   string         `json:"channel_team,omitempty"`
	ChannelName   string         `json:"channel_name,omitempty"`
	IsMsgUnfurl   bool           `json:"is_msg_unfurl,omitempty"`
	IsShare       bool           `json:"is_share,omitempty"`
	IsReplyUnfurl bool           `json:"is_reply_unfurl"`
	MessageBlocks []MessageBlock `json:"message_blocks,omitempty"`
	OriginalURL   string         `json:"original_url,omitempty"`
	FromURL       string         `json:"from_url,omitempty"`
	Fallback      string         `json:"fallback,omitempty"`
	Pretext       string         `json:"pretext,omitempty"`
	Text          string         `json:"text,omitempty"`
	AuthorID      string         `json:"author_id,omitempty"`
	AuthorName    string         `json:"author_name,omitempty"`
	AuthorSubname string         `json:"author_subname,omitempty"`
	AuthorLink    string         `json:"author_link,omitempty"`
	AuthorIcon    string         `json:"author_icon,omitempty"`
	MrkdwnIn      []string       `json:"mrkdwn_in,omitempty"`
	Color         string         `json:"color,omitempty"`
	Footer        string         `json:"footer,omitempty"`
	Files         []FileObject   `json:"files,omitempty"`
}

// MessageBlock is the original message's blocks inside a shared message.
type MessageBlock struct {
	Team    string `json:"team"`
	Channel string `json:"channel"`
	TS      string `json:"ts"`
	Message struct {
		Blocks json.RawMessage `json:"blocks"`
	} `json:"message"`
}

// Share builds the attachment Slack adds to a message that shares another
// one: the original text (mrkdwn, and as rich_text blocks), its author as
// the fake's users know them, the channel it came from, and its files. A
// fresh ts is allocated for the original message.
func (s *Server) Share(author, channel, text string, files ...FileObject) Attachment {
	ts := s.NextTS()
	s.mu.Lock()
	u, ok := s.users[author]
	s.mu.Unlock()
	name, sub := author, author
	if ok {
		name, sub = firstNonEmpty(u.RealName, u.Name, author), firstNonEmpty(u.DisplayName, u.RealName, u.Name, author)
	}
	link := fmt.Sprintf("https://test.slack.com/archives/%s/p%s", channel, strings.ReplaceAll(ts, ".", ""))
	a := Attachment{
		ID: 1, TS: ts, ChannelID: channel, ChannelTeam: s.opts.TeamID, ChannelName: "general",
		IsMsgUnfurl: true, IsShare: true, OriginalURL: link, FromURL: link,
		Fallback: fmt.Sprintf("[%s] %s: %s", tsTime(ts).UTC().Format("January 2nd, 2006 3:04 PM"), sub, text),
		Text:     text, AuthorID: author, AuthorName: name, AuthorSubname: sub,
		AuthorLink: "https://test.slack.com/team/" + author, AuthorIcon: "https://avatars.slack-edge.com/" + author + "_48.png",
		MrkdwnIn: []string{"text"}, Color: "D0D0D0", Footer: "Posted in #general", Files: files,
	}
	blocks, _ := json.Marshal([]map[string]any{{
		"type": "rich_text", "block_id": "b" + ts,
		"elements": []map[string]any{{"type": "rich_text_section", "elements": []map[string]any{{"type": "text", "text": text}}}},
	}})
	mb := MessageBlock{Team: s.opts.TeamID, Channel: channel, TS: ts}
	mb.Message.Blocks = blocks
	a.MessageBlocks = []MessageBlock{mb}
	return a
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

func tsTime(ts string) time.Time {
	sec, _, _ := strings.Cut(ts, ".")
	n, _ := strconv.ParseInt(sec, 10, 64)
	return time.Unix(n, 0)
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
