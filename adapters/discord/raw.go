package discord

import (
	"bytes"
	"encoding/json"

	"github.com/bwmarrin/discordgo"
)

// Gateway events the adapter reads from their raw payload (discordgo's
// typed structs drop what it needs, or fail on it).
//
// MESSAGE_CREATE: discordgo decodes message components by type and fails
// on a type it does not know (Discord adds new ones); the whole message then
// arrives empty and would be dropped. A message discordgo could not decode
// is decoded again without its components: its text still reaches the bot.
//
// GUILD_CREATE, GUILD_ROLE_CREATE/UPDATE/DELETE: discordgo's Role has no
// tags. The bot's managed role is the one whose tags.bot_id is the bot's
// user id, whatever it is named; a mention of it addresses the bot.

// onRawEvent handles the events above; discordgo calls it after its typed
// handlers for every dispatch, on the reader goroutine.
func (a *Adapter) onRawEvent(e *discordgo.Event) {
	switch e.Type {
	case "MESSAGE_CREATE":
		if m := a.messageOf(e); m != nil {
			a.onMessage(m)
		}
	case "GUILD_CREATE":
		var g struct {
			Roles []rawRole `json:"roles"`
		}
		if err := json.Unmarshal(e.RawData, &g); err == nil {
			for _, r := range g.Roles {
				a.noteRoleTags(r)
			}
		}
	case "GUILD_ROLE_CREATE", "GUILD_ROLE_UPDATE":
		var ev struct {
			Role rawRole `json:"role"`
		}
		if err := json.Unmarshal(e.RawData, &ev); err == nil {
			a.noteRoleTags(ev.Role)
		}
	case "GUILD_ROLE_DELETE":
		var ev struct {
			RoleID string `json:"role_id"`
		}
		if err := json.Unmarshal(e.RawData, &ev); err == nil && ev.RoleID != "" {
			a.roles.Delete(ev.RoleID)
			a.mu.Lock()
			delete(a.botRoles, ev.RoleID)
			a.mu.Unlock()
		}
	}
}

// rawRole is the part of a role object discordgo does not decode.
type rawRole struct {
	ID   string `json:"id"`
	Tags struct {
		BotID string `json:"bot_id"`
	} `json:"tags"`
}

// noteRoleTags records whether a role is the bot's own managed role.
func (a *Adapter) noteRoleTags(r rawRole) {
	if r.ID == "" {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if r.Tags.BotID != "" && r.Tags.BotID == a.botID {
		a.botRoles[r.ID] = true
	} else {
		delete(a.botRoles, r.ID)
	}
}

// messageOf returns the message of a MESSAGE_CREATE: discordgo's decoding,
// or, when that failed (it leaves the message empty), a decoding of the
// payload without its components.
func (a *Adapter) messageOf(e *discordgo.Event) *discordgo.Message {
	if mc, ok := e.Struct.(*discordgo.MessageCreate); ok && mc.Message != nil && mc.ID != "" {
		return mc.Message
	}
	raw, err := withoutComponents(e.RawData)
	if err == nil {
		var m discordgo.Message
		if err = json.Unmarshal(raw, &m); err == nil && m.ID != "" {
			a.log.Info("decoded a message without its components (discordgo does not know one of them)", "message", m.ID, "channel", m.ChannelID)
			return &m
		}
	}
	a.log.Warn("dropped a message that cannot be decoded", "err", err, "payload_bytes", len(e.RawData))
	return nil
}

// withoutComponents removes every "components" member from a JSON document,
// at any depth (referenced and forwarded messages carry their own).
func withoutComponents(raw []byte) ([]byte, error) {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber() // ids and numbers come out exactly as they came in
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	return json.Marshal(strip(v))
}

func strip(v any) any {
	switch x := v.(type) {
	case map[string]any:
		delete(x, "components")
		for k, e := range x {
			x[k] = strip(e)
		}
	case []any:
		for i, e := range x {
			x[i] = strip(e)
		}
	}
	return v
}
