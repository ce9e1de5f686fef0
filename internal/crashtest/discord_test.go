package crashtest

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/cometbot/cometbot/adapters/discord/discordtest"
)

// discordWorld is a fake Discord server: mentions in #general open threads
// (named after the mention's id), follow-ups are written in those threads
// without a mention, and each user has a DM channel.
//
// Discord does not redeliver: a message dispatched on the gateway is gone
// if the process that received it dies before handling it, and a new
// process starts a new session (IDENTIFY), so nothing is replayed. A
// message counts as delivered when it was dispatched on a live connection;
// it is accepted only if the bot got as far as storing its turn.
type discordWorld struct {
	srv *discordtest.Server

	mu         sync.Mutex
	dispatched map[*userMsg]time.Time
}

func newDiscordWorld() (*discordWorld, error) {
	srv, err := discordtest.New(discordtest.Options{Users: discordUsers})
	if err != nil {
		return nil, err
	}
	return &discordWorld{srv: srv, dispatched: map[*userMsg]time.Time{}}, nil
}

func (w *discordWorld) env() []string {
	return []string{"DISCORD_BOT_TOKEN=" + w.srv.Token(), "DISCORD_API_URL=" + w.srv.APIURL()}
}

func (w *discordWorld) ready(ctx context.Context, run int) error {
	return w.srv.WaitUntil(ctx, func() bool { return w.srv.Identifies() >= run+1 && w.srv.Connected() })
}

var discordUsers = []discordtest.User{
	{ID: discordtest.AliceID, Username: "alice", GlobalName: "Alice"},
	{ID: discordtest.BobID, Username: "bob", GlobalName: "Bob"},
	{ID: "700000000000000003", Username: "carol", GlobalName: "Carol"},
}

func (w *discordWorld) send(m *userMsg) {
	c := m.conv
	u := discordUsers[c.user]
	post := discordtest.Post{Author: u, Content: m.plain}
	switch {
	case !c.thread:
		post.ChannelID = w.srv.DMChannel(u.ID)
		c.where, c.key = post.ChannelID, "discord//"+post.ChannelID+"/dm:"+u.ID
	case m.mention:
		post.ChannelID = discordtest.GeneralChannel
		post.Content = "<@" + w.srv.BotID() + "> " + m.plain
	default:
		post.ChannelID = c.where
	}
	live := w.srv.Connected()
	um := w.srv.UserMessage(post)
	m.id = um.ID
	if c.thread && m.mention {
		c.where = um.ID // the thread opened on a message has the message's id
		c.key = "discord/" + discordtest.DefaultGuildID + "/" + discordtest.GeneralChannel + "/" + um.ID
	}
	if live {
		w.mu.Lock()
		w.dispatched[m] = time.Now()
		w.mu.Unlock()
	}
}

func (w *discordWorld) delivered(m *userMsg) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	t, ok := w.dispatched[m]
	return t, ok
}

func (w *discordWorld) settled() bool { return true }

func (w *discordWorld) replies(where string) []botMsg {
	var out []botMsg
	for _, m := range w.srv.BotMessages(where) {
		out = append(out, botMsg{id: m.ID, text: m.Content})
	}
	return out
}

func (w *discordWorld) leftovers([]*conv) []string { return nil }

func (w *discordWorld) refMessage(ref string) string {
	parts := strings.Split(ref, "/")
	if len(parts) < 2 {
		return ""
	}
	return parts[1]
}

// findsAgain: a post's nonce, derived from the user's message, finds it.
func (w *discordWorld) findsAgain(string) bool { return true }

func (w *discordWorld) close() { w.srv.Close() }
