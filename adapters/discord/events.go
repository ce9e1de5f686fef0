package discord

import (
	"context"
	"errors"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/cometbot/cometbot/bot"
)

// addHandlers registers the gateway event handlers. They run on discordgo's
// reader goroutine (SyncEvents), so they only update caches and hand work to
// the adapter's own goroutines.
func (a *Adapter) addHandlers() {
	s := a.session
	s.AddHandler(func(_ *discordgo.Session, r *discordgo.Ready) { a.onReady(r) })
	s.AddHandler(func(_ *discordgo.Session, _ *discordgo.Resumed) {
		a.ready.Store(true)
		a.log.Info("gateway session resumed")
	})
	s.AddHandler(func(_ *discordgo.Session, _ *discordgo.Disconnect) {
		a.ready.Store(false)
		select {
		case a.discCh <- struct{}{}:
		default:
		}
	})
	s.AddHandler(func(_ *discordgo.Session, g *discordgo.GuildCreate) { a.onGuild(g.Guild) })
	s.AddHandler(func(_ *discordgo.Session, g *discordgo.GuildUpdate) { a.onGuild(g.Guild) })
	s.AddHandler(func(_ *discordgo.Session, g *discordgo.GuildDelete) {
		if g.Guild != nil && !g.Unavailable {
			a.mu.Lock()
			delete(a.guilds, g.ID)
			a.mu.Unlock()
		}
	})
	putChan := func(c *discordgo.Channel) {
		if c != nil && c.ID != "" {
			a.chans.Put(c.ID, infoOf(c))
		}
	}
	dropChan := func(c *discordgo.Channel) {
		if c != nil {
			a.chans.Delete(c.ID)
		}
	}
	s.AddHandler(func(_ *discordgo.Session, c *discordgo.ChannelCreate) { putChan(c.Channel) })
	s.AddHandler(func(_ *discordgo.Session, c *discordgo.ChannelUpdate) { putChan(c.Channel) })
	s.AddHandler(func(_ *discordgo.Session, c *discordgo.ChannelDelete) { dropChan(c.Channel) })
	s.AddHandler(func(_ *discordgo.Session, c *discordgo.ThreadCreate) { putChan(c.Channel) })
	s.AddHandler(func(_ *discordgo.Session, c *discordgo.ThreadUpdate) { putChan(c.Channel) })
	s.AddHandler(func(_ *discordgo.Session, c *discordgo.ThreadDelete) { dropChan(c.Channel) })
	s.AddHandler(func(_ *discordgo.Session, t *discordgo.ThreadListSync) {
		for _, c := range t.Threads {
			putChan(c)
		}
	})
	s.AddHandler(func(_ *discordgo.Session, r *discordgo.GuildRoleCreate) { a.onRole(r.GuildRole) })
	s.AddHandler(func(_ *discordgo.Session, r *discordgo.GuildRoleUpdate) { a.onRole(r.GuildRole) })
	// MESSAGE_CREATE, and the role tags discordgo drops: see raw.go.
	s.AddHandler(func(_ *discordgo.Session, e *discordgo.Event) { a.onRawEvent(e) })
	s.AddHandler(func(_ *discordgo.Session, i *discordgo.InteractionCreate) { a.onInteraction(i.Interaction) })
}

func (a *Adapter) onReady(r *discordgo.Ready) {
	a.mu.Lock()
	if r.User != nil {
		a.botID, a.botName = r.User.ID, r.User.Username
	}
	switch {
	case r.Application != nil && r.Application.ID != "":
		a.appID = r.Application.ID
	case a.appID == "":
		a.appID = a.botID // the application id equals the bot user id for bots made since 2020
	}
	for _, g := range r.Guilds {
		a.guilds[g.ID] = true
	}
	a.mu.Unlock()
	a.ready.Store(true)
	select {
	case a.readyCh <- struct{}{}:
	default:
	}
}

func (a *Adapter) onGuild(g *discordgo.Guild) {
	if g == nil || g.ID == "" {
		return
	}
	for _, c := range g.Channels {
		info := infoOf(c)
		info.Guild = g.ID
		a.chans.Put(c.ID, info)
	}
	for _, c := range g.Threads {
		info := infoOf(c)
		info.Guild = g.ID
		a.chans.Put(c.ID, info)
	}
	a.mu.Lock()
	a.guilds[g.ID] = true
	a.mu.Unlock()
	for _, r := range g.Roles {
		a.putRole(r)
	}
}

func (a *Adapter) onRole(gr *discordgo.GuildRole) {
	if gr == nil || gr.Role == nil {
		return
	}
	a.putRole(gr.Role)
}

// putRole caches a role's name. Whether it is the bot's own managed role
// (a mention of it addresses the bot) is read from its tags (noteRoleTags).
func (a *Adapter) putRole(r *discordgo.Role) {
	if r == nil || r.ID == "" {
		return
	}
	a.roles.Put(r.ID, roleInfo{Name: r.Name, Managed: r.Managed})
}

// onMessage filters what the bot never answers (its own and other bots'
// messages, webhooks, system messages such as joins and pins) and queues
// the rest for the channel's worker.
func (a *Adapter) onMessage(m *discordgo.Message) {
	if m == nil || m.Author == nil {
		return
	}
	// Remember who wrote what, so that a forward of it can be attributed.
	a.authors.Put(m.ID, userName(m.Author, m.Member))
	if m.Author.Bot || m.WebhookID != "" {
		return
	}
	if m.Type != discordgo.MessageTypeDefault && m.Type != discordgo.MessageTypeReply {
		return
	}
	a.mu.Lock()
	self := m.Author.ID == a.botID
	a.mu.Unlock()
	if self {
		return
	}
	a.enqueue(m)
}

// handleMessage normalizes one message and gives it to the engine.
func (a *Adapter) handleMessage(ctx context.Context, m *discordgo.Message) {
	if a.afterMessage != nil {
		defer a.afterMessage(m.ID)
	}
	msg, tgt, ok := a.normalize(ctx, m)
	if !ok {
		return
	}
	if mayBeAnswered(msg) {
		a.fillForwardAuthors(ctx, m, msg.Forwards)
	}
	err := a.engine.HandleMessage(ctx, msg, &output{a: a, t: tgt})
	switch {
	case err == nil:
	case errors.Is(err, bot.ErrIgnored), errors.Is(err, bot.ErrDuplicate), errors.Is(err, bot.ErrShuttingDown):
		a.log.Debug("message not answered", "message", m.ID, "reason", err)
	default:
		a.log.Warn("engine refused a message", "message", m.ID, "err", err)
	}
}

type identity struct {
	botID, botName string
	botRoles       map[string]bool
}

func (a *Adapter) identity() identity {
	a.mu.Lock()
	defer a.mu.Unlock()
	roles := make(map[string]bool, len(a.botRoles))
	for k, v := range a.botRoles {
		roles[k] = v
	}
	return identity{botID: a.botID, botName: a.botName, botRoles: roles}
}

// normalize turns a Discord message into a bot.Message and decides where the
// reply goes. ok is false for messages the bot must not see.
//
// Conversations: a DM is the user's rolling conversation; a message in a
// thread belongs to that thread (Channel = its parent); a mention in a
// channel starts a conversation keyed by the message id — the id of the
// thread the reply opens (Discord gives a thread started from a message the
// message's id), or, when replying in place, a virtual thread that replies
// to the bot's messages continue (bot message id -> key, kept in memory).
func (a *Adapter) normalize(ctx context.Context, m *discordgo.Message) (bot.Message, target, bool) {
	id := a.identity()
	users := make(map[string]string, len(m.Mentions))
	mentioned := false
	for _, u := range m.Mentions {
		if u == nil {
			continue
		}
		users[u.ID] = userName(u, nil)
		if u.ID == id.botID {
			mentioned = true
		}
	}
	for _, r := range m.MentionRoles {
		if id.botRoles[r] {
			mentioned = true
		}
	}
	res := a.resolver(users)
	res.botID, res.botRoles = id.botID, id.botRoles
	text, self := res.resolveText(m.Content)
	mentioned = mentioned || self

	continuesBot := false
	refID := ""
	if ref := m.MessageReference; ref != nil && ref.Type == discordgo.MessageReferenceTypeDefault && ref.MessageID != "" {
		refID = ref.MessageID
		if rm := m.ReferencedMessage; rm != nil && rm.Author != nil && rm.Author.ID == id.botID {
			continuesBot = true
		} else if _, ok := a.convs.Get(refID); ok {
			continuesBot = true
		}
	}

	var roles []string
	if m.Member != nil {
		roles = m.Member.Roles
	}
	msg := bot.Message{
		Platform:     "discord",
		Workspace:    m.GuildID,
		Channel:      m.ChannelID,
		ID:           m.ID,
		EventID:      "discord:" + m.ID,
		Author:       bot.User{ID: m.Author.ID, Name: userName(m.Author, m.Member), IsBot: m.Author.Bot, Roles: roles},
		Mentioned:    mentioned,
		DM:           m.GuildID == "",
		ContinuesBot: continuesBot,
		Text:         text,
		Time:         m.Timestamp,
	}
	msg.Attachments = a.attachments(m.Attachments)
	msg.Forwards = a.forwards(m, id)
	// Without the Message Content intent Discord blanks messages that are
	// not addressed to the bot (text, files and forwards): nothing to answer.
	// A message with only files or only a forward goes wherever it would go
	// with text.
	if text == "" && len(msg.Attachments) == 0 && len(msg.Forwards) == 0 && !mentioned && !continuesBot {
		return msg, target{}, false
	}
	tgt := target{channel: m.ChannelID, source: m.ID, guild: m.GuildID}
	if msg.DM {
		return msg, tgt, true
	}

	info, known := a.channelInfo(ctx, m.ChannelID)
	if known && info.isThread() {
		if info.Parent != "" {
			msg.Channel = info.Parent
		}
		msg.Thread = m.ChannelID
		if a.cfg.MentionRequiredInThreads && !mentioned && !continuesBot {
			return msg, tgt, false
		}
		return msg, tgt, true
	}
	switch {
	case continuesBot:
		msg.Thread = a.conversationOf(refID, m.ReferencedMessage)
		tgt.replyRef, tgt.conv = true, msg.Thread
	case mentioned:
		msg.Thread = m.ID
		tgt.conv = m.ID
		if a.cfg.OpenThreads && (!known || info.threadable()) && !a.threadsBlocked(m.ChannelID) {
			tgt.openThread = true
			tgt.text, tgt.botName = text, id.botName // the thread is named when opened
			if text == "" && len(msg.Forwards) > 0 {
				tgt.text = msg.Forwards[0].Text
			}
		} else {
			tgt.replyRef = true
		}
	}
	return msg, tgt, true
}

// conversationOf finds the conversation a reply to the bot's message
// belongs to: the in-memory map first; after a restart, the message the
// bot's message itself replied to (right for the first answer of a
// conversation); else the bot's message id.
func (a *Adapter) conversationOf(refID string, rm *discordgo.Message) string {
	if k, ok := a.convs.Get(refID); ok {
		return k
	}
	if rm != nil && rm.MessageReference != nil && rm.MessageReference.MessageID != "" {
		return rm.MessageReference.MessageID
	}
	return refID
}

// channelInfo returns what is known about a channel: from the caches fed by
// GUILD_CREATE / CHANNEL_* / THREAD_* events, else one REST lookup (cached).
func (a *Adapter) channelInfo(ctx context.Context, id string) (chanInfo, bool) {
	if c, ok := a.chans.Get(id); ok {
		return c, true
	}
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	ch, err := a.session.Channel(id, discordgo.WithContext(ctx), discordgo.WithRetryOnRatelimit(false))
	if err != nil {
		a.log.Warn("channel lookup failed", "channel", id, "err", err)
		return chanInfo{}, false
	}
	info := infoOf(ch)
	a.chans.Put(id, info)
	return info, true
}

func (a *Adapter) threadsBlocked(channel string) bool {
	until, ok := a.noThreads.Get(channel)
	return ok && time.Now().Before(until)
}

// resolver turns mentions into names with the adapter's channel and role
// caches and the given user names.
func (a *Adapter) resolver(users map[string]string) resolver {
	return resolver{
		users: users,
		channel: func(cid string) (string, bool) {
			c, ok := a.chans.Get(cid)
			return c.Name, ok
		},
		role: func(rid string) (string, bool) {
			r, ok := a.roles.Get(rid)
			return r.Name, ok
		},
	}
}
