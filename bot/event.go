// Package bot is cometbot's conversation engine. It knows no platform: adapters
// (Slack, Discord, the terminal) translate their events into the normalized
// Message and Command types defined here, and render replies through the
// Output and Reply interfaces they implement.
package bot

import (
	"context"
	"strings"
	"time"
)

// User is the author of a message or command.
type User struct {
	// ID is the platform's stable user id.
	ID string
	// Name is a display name, for logs and for the model; may be empty.
	Name string
	// IsBot is true for bots and apps (including cometbot itself).
	IsBot bool
	// IsSelf is true when the author is this bot.
	IsSelf bool
	// Roles are platform role ids (Discord), used by access control.
	Roles []string
}

// Attachment is a file attached to a message (or to a forwarded message).
// Adapters describe it and say how to download it; the engine decides what
// to read, within its limits, and how to give it to the model.
type Attachment struct {
	// Name is the file name as the user uploaded it.
	Name string
	// MIMEType is the media type the platform declared; the engine sniffs the
	// bytes and trusts those over this.
	MIMEType string
	// URL is where the platform serves the file, for logs only: the engine
	// never fetches it itself.
	URL string
	// Size is the size the platform declared, in bytes; 0 when unknown.
	Size int64
	// Fetch downloads the file through the shared safe fetcher
	// (internal/fetch), which enforces the host allow-list, the byte limit
	// on the wire and the timeout. Errors are *fetch.Error where the
	// fetcher could say why. Nil when Data is set.
	Fetch func(ctx context.Context) ([]byte, error)
	// Data holds the bytes of a file that is already local (the terminal's
	// /attach); nil for platform files.
	Data []byte
}

// Forward is a message the user forwarded or shared into the conversation
// (Discord message snapshots, Slack shared messages): quoted content for the
// model, with its original author.
type Forward struct {
	// Author is the original author's display name; may be empty.
	Author string
	// Text is the forwarded message's text.
	Text string
	// Attachments are the forwarded message's files.
	Attachments []Attachment
}

// Message is one normalized incoming message.
type Message struct {
	// Platform names the adapter, e.g. "slack", "discord", "terminal".
	Platform string
	// Workspace is the Slack team or Discord guild id; empty for DMs without one.
	Workspace string
	// Channel is the channel (or DM channel) id.
	Channel string
	// Thread is the thread the message belongs to (Slack thread_ts, Discord
	// thread channel id); empty when the message is not in a thread.
	Thread string
	// ID is the platform message id (Slack ts, Discord snowflake).
	ID string
	// EventID de-duplicates redelivered events; adapters choose a key that is
	// stable across redeliveries. Empty disables de-duplication.
	EventID string
	// Author wrote the message.
	Author User
	// Mentioned is true when the message addressed the bot by mention.
	Mentioned bool
	// DM is true for direct messages.
	DM bool
	// ContinuesBot is true when the platform says this message replies to one
	// of the bot's own messages (e.g. a Discord reply reference).
	ContinuesBot bool
	// Text is the message text with the bot's mention stripped and other
	// mentions resolved to readable names.
	Text string
	// Attachments lists files attached to the message.
	Attachments []Attachment
	// Forwards are messages forwarded or shared with this one.
	Forwards []Forward
	// Time is when the message was sent; zero means now.
	Time time.Time
}

// Scope returns where the message was said, for settings and access control.
func (m Message) Scope() Scope {
	return Scope{Platform: m.Platform, Workspace: m.Workspace, Channel: m.Channel, Thread: m.Thread, User: m.Author.ID, DM: m.DM}
}

// Command is one normalized slash command (or its terminal equivalent).
type Command struct {
	// Name is the command without its slash, lower case: "model", "reset", ...
	Name string
	// Args is the rest of the command line, trimmed.
	Args string
	// Platform, Workspace, Channel, Thread and DM say where it was issued.
	Platform  string
	Workspace string
	Channel   string
	Thread    string
	DM        bool
	// User issued the command.
	User User
}

// Scope returns where the command was issued.
func (c Command) Scope() Scope {
	return Scope{Platform: c.Platform, Workspace: c.Workspace, Channel: c.Channel, Thread: c.Thread, User: c.User.ID, DM: c.DM}
}

// Answer is the engine's response to a Command. Adapters render it; Private
// answers are shown only to the caller (ephemeral) where the platform allows.
type Answer struct {
	Text    string
	Private bool
}

// Choice is one suggestion for a model picker (Discord autocomplete, Slack
// external select).
type Choice struct {
	// Value is the model id to submit.
	Value string
	// Label is what the user sees, e.g. "gpt-4o-mini · OpenAI · $0.15/$0.60".
	Label string
}

// Scope locates a message or command: platform, workspace, channel, thread and user.
type Scope struct {
	Platform  string
	Workspace string
	Channel   string
	Thread    string
	User      string
	DM        bool
}

// ConversationKey is the stable base key of the conversation the scope
// belongs to: platform + workspace + channel + thread. A DM without a thread
// is one rolling conversation per user.
func (s Scope) ConversationKey() string {
	parts := []string{s.Platform, s.Workspace, s.Channel, s.Thread}
	if s.DM && s.Thread == "" {
		parts[3] = "dm:" + s.User
	}
	return strings.Join(parts, "/")
}
