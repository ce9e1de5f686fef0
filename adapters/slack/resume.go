package slack

import (
	"context"
	"strings"

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
// (or DM) m came from.
func (a *Adapter) ResumeOutput(m bot.Message, ref string) bot.Output {
	out := &output{a: a, team: m.Workspace, channel: m.Channel, thread: m.Thread, user: m.Author.ID, dm: m.DM, source: m.ID}
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
	r.noteRef()
}
