package discord

import (
	"context"
	"strings"

	"github.com/cometbot/cometbot/bot"
)

// Replies are found again after a restart by their first message: the
// reference the engine keeps with a pending turn is "channel/message", plus
// "/conversation" for a reply in place (not in a thread), so that replies to
// it continue the same conversation.

var (
	_ bot.Resumable = (*reply)(nil)
	_ bot.Resumer   = (*Adapter)(nil)
)

// OnRef implements bot.Resumable: fn learns the reply's first message as
// soon as Discord created it, and again if it is replaced.
func (r *reply) OnRef(fn func(ref string)) { r.ref.OnRef(fn) }

// noteRef reports the reply's first message. Called by the goroutine that
// owns the delivery state, after it changed.
func (r *reply) noteRef() {
	if len(r.msgs) == 0 {
		return
	}
	ref := r.t.channel + "/" + r.msgs[0].id
	if r.t.conv != "" {
		ref += "/" + r.t.conv
	}
	r.ref.Set(ref)
}

// parseRef splits a reference made by noteRef.
func parseRef(ref string) (channel, message, conv string, ok bool) {
	parts := strings.Split(ref, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return "", "", "", false
	}
	if len(parts) == 3 {
		conv = parts[2]
	}
	return parts[0], parts[1], conv, true
}

// ResumeOutput implements bot.Resumer: the output for m continues in the
// message ref (a previous process's reply), editing it instead of posting.
// With ref "" (or one it cannot read) it answers m where a fresh reply
// would go: in the DM, in the thread m was written in, in the thread opened
// on m (found again when a previous process opened it already), or in place
// with a reply reference; a message the previous process posted but could
// not record is found again by its nonce (see replyIDFor).
func (a *Adapter) ResumeOutput(m bot.Message, ref string) bot.Output {
	if ch, id, conv, ok := parseRef(ref); ok {
		return &output{a: a, t: target{channel: ch, source: m.ID, guild: m.Workspace, conv: conv, resume: id}}
	}
	if ref != "" {
		a.log.Warn("unreadable reply reference; answering in a new message", "ref", ref)
	}
	return &output{a: a, t: a.targetOf(m)}
}

// targetOf finds where a fresh reply to m goes, from what normalize put in
// m: a DM answers in its channel; a message whose Thread is its own id was
// a mention that opens a thread on it (or replies in place where threads
// are not possible); any other Thread is a thread channel, or the key of a
// conversation held in place in m.Channel.
func (a *Adapter) targetOf(m bot.Message) target {
	tgt := target{channel: m.Channel, source: m.ID, guild: m.Workspace}
	switch {
	case m.DM || m.Thread == "":
	case m.Thread == m.ID:
		tgt.conv = m.ID
		info, known := a.channelInfo(a.lookupContext(), m.Channel)
		if a.cfg.OpenThreads && (!known || info.threadable()) && !a.threadsBlocked(m.Channel) {
			a.mu.Lock()
			tgt.openThread, tgt.text, tgt.botName = true, m.Text, a.botName
			a.mu.Unlock()
		} else {
			tgt.replyRef = true
		}
	default:
		if info, known := a.channelInfo(a.lookupContext(), m.Thread); known && info.isThread() {
			tgt.channel = m.Thread
		} else {
			tgt.replyRef, tgt.conv = true, m.Thread
		}
	}
	return tgt
}

// lookupContext is the context of lookups made while resuming: Run's, or a
// background one before Run started.
func (a *Adapter) lookupContext() context.Context {
	if ctx := a.currentRunCtx(); ctx != nil {
		return ctx
	}
	return context.Background()
}

// continueIn makes the reply continue in the message id of its channel: the
// first part edits it (whatever it shows), a notice replaces it. The
// message took the reply's first nonce; later posts go on from there, so a
// part the dead process had posted already is returned, not made again.
func (r *reply) continueIn(id string) {
	r.setup = true
	r.msgs = []posted{{id: id}}
	r.posts = 1
	r.noteRef()
}
