package slack

import (
	"context"
	"strings"

	"github.com/slack-go/slack"

	"github.com/cometbot/cometbot/bot"
)

// Replies are found again after a restart by their first message: the
// reference the engine keeps with a pending turn is "channel/ts".

var (
	_ bot.Resumable = (*reply)(nil)
	_ bot.Resumer   = (*Adapter)(nil)
)

// OnRef implements bot.Resumable: fn learns the reply's first message
// (placeholder, first streamed part, or a notice) as soon as Slack created
// it, and again if it is replaced.
func (r *reply) OnRef(fn func(ref string)) { r.ref.OnRef(fn) }

// noteRef reports the reply's first message. Called by the goroutine that
// owns the delivery state, after it changed.
func (r *reply) noteRef() {
	ts := r.placeholder
	if len(r.slots) > 0 {
		ts = r.slots[0].ts
	}
	if ts != "" {
		r.ref.Set(r.o.channel + "/" + ts)
	}
}

// parseRef splits a reference made by noteRef.
func parseRef(ref string) (channel, ts string, ok bool) {
	channel, ts, ok = strings.Cut(ref, "/")
	return channel, ts, ok && channel != "" && ts != ""
}

// ResumeOutput implements bot.Resumer: the output for m continues in the
// message ref (a previous process's reply), editing it instead of posting;
// with ref "" (or one it cannot read) it answers m as usual, in the thread
// (or DM) m came from. In DMs, messages the previous process posted without
// recording them are found again by their post ids (see adoptPost).
func (a *Adapter) ResumeOutput(m bot.Message, ref string) bot.Output {
	out := &output{a: a, team: m.Workspace, channel: m.Channel, thread: m.Thread, user: m.Author.ID, dm: m.DM, source: m.ID, resumed: true}
	if ch, ts, ok := parseRef(ref); ok {
		out.channel, out.resume = ch, ts
	} else if ref != "" {
		a.log.Warn("slack: unreadable reply reference; answering in a new message", "ref", ref)
	}
	return out
}

// continueIn makes the reply continue in the message ts: it stands for the
// placeholder (a notice replaces it, the first streamed part edits it) and
// the reply streams with chat.update, whatever it was streamed with before.
func (r *reply) continueIn(ctx context.Context, ts string) {
	if r.o.a.cfg.NativeStreaming && r.o.thread != "" {
		// A native stream the previous process left open is closed first, or
		// Slack may refuse to edit it (best effort: usually it is not open).
		r.slots = []slot{{ts: ts, native: true, open: true}}
		_ = r.stopStream(ctx, ctx, 0, "", prioHigh)
	}
	r.native = false
	r.placeholder = ts
	r.slots = []slot{{ts: ts, content: placeholderText}}
	r.posts = 1 // the message took the reply's first post id
	r.noteRef()
}

// adoptPost returns a message of a resumed reply that the dead process
// posted with postID but could not record (it died before the reference
// reached the database, or before the later parts were taken over), edited
// to show text: the conversation is read back, so the message is used
// instead of posted twice. Slack lets bot tokens read threads only in
// direct messages; in channels nothing is looked up ("" is returned).
func (r *reply) adoptPost(callCtx, waitCtx context.Context, postID, text string, prio priority) string {
	if !r.o.resumed || !r.o.dm {
		return ""
	}
	after := r.o.source
	if after == "" {
		after = r.o.thread
	}
	ts, err := r.o.findPost(callCtx, after, hasPostID(postID))
	if err != nil || ts == "" {
		if err != nil {
			r.o.a.log.Debug("slack: looking for a message of a resumed reply failed", "channel", r.o.channel, "err", err)
		}
		return ""
	}
	err = r.call(callCtx, waitCtx, r.p.update, prio, func(c context.Context) error {
		_, _, _, err := r.o.a.api.UpdateMessageContext(c, r.o.channel, ts, slack.MsgOptionText(text, false))
		return err
	})
	if err != nil {
		r.o.a.log.Debug("slack: a message of a resumed reply was found but cannot be edited; posting anew", "channel", r.o.channel, "err", err)
		return ""
	}
	r.o.a.log.Info("slack: a message of a resumed reply had been posted; continuing with it", "channel", r.o.channel, "ts", ts)
	return ts
}
