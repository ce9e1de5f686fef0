package discord

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf16"

	"github.com/bwmarrin/discordgo"

	"github.com/cometbot/cometbot/bot"
)

// target says where a reply goes.
type target struct {
	channel    string // channel (or thread, or DM) the reply is posted in
	source     string // the user's message
	guild      string
	openThread bool   // first open a public thread on source (in channel) and answer there
	text       string // the user's text and the bot's name, to name that thread
	botName    string
	threadName string // set when the thread is opened
	replyRef   bool   // the first reply message references source
	conv       string // conversation thread key; bot messages posted in channel map to it
	resume     string // id of a message (in channel) a previous process posted for this reply: continue in it
}

// output is the bot.Output for one incoming message.
type output struct {
	a *Adapter
	t target
}

// Start implements bot.Output. It returns at once: opening the thread, the
// typing indicator and all posting happen on the reply's own goroutine, so
// the engine's model request is never delayed by Discord round trips.
func (o *output) Start(ctx context.Context) (bot.Reply, error) {
	r := newReply(ctx, o.a, o.t)
	if o.t.resume != "" {
		r.continueIn(o.t.resume)
	}
	if !o.a.goTracked(r.run) {
		// The adapter has shut down: no streaming; Finish/Fail deliver.
		r.cancel()
		close(r.done)
	}
	return r, nil
}

// noMentions is set on every message the bot sends: model output can never
// ping @everyone, @here, roles or users, nor the author of a replied message.
func noMentions() *discordgo.MessageAllowedMentions {
	return &discordgo.MessageAllowedMentions{Parse: []discordgo.AllowedMentionType{}}
}

// splitMessage splits text into Discord messages. Discord counts UTF-16 code
// units; bot.Split counts runes, so text heavy in emoji is split again with a
// smaller limit until every part fits.
func splitMessage(text string) []string {
	limit := messageLimit
	for {
		parts := bot.Split(text, limit)
		ok := true
		for _, p := range parts {
			if utf16Len(p) > messageLimit {
				ok = false
				break
			}
		}
		if ok || limit <= 500 {
			return parts
		}
		limit = limit * 3 / 4
	}
}

func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}

const (
	typingEvery   = 8 * time.Second // Discord shows typing for ~10 s
	maxOpAttempts = 8
	emptyAnswer   = "_(no answer)_"
)

var errReplyClosed = errors.New("discord: reply already finished")

type posted struct {
	id      string
	content string
}

// reply streams one answer. A worker goroutine opens the thread, shows
// typing and edits the message at the channel's pace while text arrives;
// Finish/Fail stop it and deliver the authoritative final text themselves.
type reply struct {
	a *Adapter

	ctx        context.Context // base for REST calls of the worker
	cancel     context.CancelFunc
	waitCtx    context.Context // pacing waits; ends as soon as Finish/Fail start
	waitCancel context.CancelFunc

	mu      sync.Mutex
	buf     strings.Builder
	version int
	closed  bool

	wake chan struct{}
	done chan struct{}

	// Owned by the worker until done is closed, then by Finish/Fail.
	t        target
	setup    bool
	msgs     []posted
	rendered int            // version last rendered
	id       string         // random; with posts it makes the nonces
	posts    int            // nonces made so far
	nonces   map[int]string // part -> nonce of a post not yet confirmed

	ref bot.RefNotifier // the first message, for a restart (bot.Resumable)
}

// newReply makes a reply whose worker lives until the engine's turn context
// ends, Finish/Fail run, or the adapter stops (ShutdownGrace after Run's
// context). The worker context hangs off the adapter's stop context and is
// cancelled when the turn's context ends, so nothing stays registered on a
// long-lived context after the reply is done.
func newReply(ctx context.Context, a *Adapter, t target) *reply {
	a.mu.Lock()
	stop := a.stopCtx
	a.mu.Unlock()
	var rctx context.Context
	var cancel context.CancelFunc
	if stop != nil {
		var cancelCtx context.CancelFunc
		rctx, cancelCtx = context.WithCancel(stop)
		unwatch := context.AfterFunc(ctx, cancelCtx)
		cancel = func() {
			unwatch()
			cancelCtx()
		}
	} else {
		rctx, cancel = context.WithCancel(ctx)
	}
	wctx, wcancel := context.WithCancel(rctx)
	return &reply{
		a: a, t: t, id: replyIDFor(t.source),
		ctx: rctx, cancel: cancel,
		waitCtx: wctx, waitCancel: wcancel,
		wake: make(chan struct{}, 1),
		done: make(chan struct{}),
	}
}

// Append implements bot.Reply: it only buffers and wakes the worker.
func (r *reply) Append(_ context.Context, delta string) error {
	if delta == "" {
		return nil
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return errReplyClosed
	}
	r.buf.WriteString(delta)
	r.version++
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
	return nil
}

// Finish implements bot.Reply: it delivers the complete final text, split
// into as many messages as needed, and blocks until delivered or ctx ends.
func (r *reply) Finish(ctx context.Context, final string) error {
	return r.close(ctx, final)
}

// Fail implements bot.Reply: the text shown so far stays and one short
// notice explains what went wrong.
func (r *reply) Fail(ctx context.Context, userMessage string) error {
	r.mu.Lock()
	shown := strings.TrimSpace(r.buf.String())
	r.mu.Unlock()
	notice := strings.TrimSpace(userMessage)
	if notice == "" {
		notice = "⚠️ Something went wrong."
	}
	if shown != "" {
		notice = shown + "\n\n" + notice
	}
	return r.close(ctx, notice)
}

func (r *reply) close(ctx context.Context, text string) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return errReplyClosed
	}
	r.closed = true
	r.mu.Unlock()
	defer r.cancel()
	r.waitCancel() // interrupts a pending pacing wait; an edit in flight completes
	select {
	case <-r.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	r.prepare(ctx)
	parts := splitMessage(text)
	if len(parts) == 0 {
		parts = []string{emptyAnswer}
	}
	return r.render(ctx, ctx, parts)
}

// run is the worker: prepare the destination, show typing until the first
// message exists, and render the growing text whenever the pacer allows.
func (r *reply) run() {
	defer close(r.done)
	r.prepare(r.waitCtx)
	if r.waitCtx.Err() != nil {
		return
	}
	if r.pending() == 0 {
		// Typing goes out beside the stream so that a first token arriving
		// meanwhile is posted without waiting for it.
		typed := make(chan struct{})
		go func() {
			defer close(typed)
			r.typing()
		}()
		defer func() { <-typed }()
	}
	tick := time.NewTicker(typingEvery)
	defer tick.Stop()
	for {
		select {
		case <-r.waitCtx.Done():
			return
		case <-tick.C:
			if len(r.msgs) == 0 {
				r.typing()
			}
		case <-r.wake:
			if err := r.stream(); err != nil && r.waitCtx.Err() == nil {
				r.a.log.Debug("stream edit failed", "channel", r.t.channel, "err", err)
			}
		}
	}
}

// pending returns how many text versions arrived since the last render.
func (r *reply) pending() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.version - r.rendered
}

func (r *reply) stream() error {
	r.mu.Lock()
	if r.version == r.rendered {
		r.mu.Unlock()
		return nil
	}
	r.mu.Unlock()
	// Wait for the channel's next slot first, then take the newest text:
	// everything that arrived meanwhile goes out in this one edit.
	if err := r.a.pacer.wait(r.waitCtx, r.t.channel); err != nil {
		return err
	}
	r.mu.Lock()
	text, ver := r.buf.String(), r.version
	r.mu.Unlock()
	parts := splitMessage(text)
	if len(parts) == 0 {
		return nil
	}
	err := r.renderPaced(r.waitCtx, r.ctx, parts, true)
	if err == nil {
		r.mu.Lock()
		r.rendered = ver
		r.mu.Unlock()
	}
	return err
}

func (r *reply) typing() {
	ctx, cancel := context.WithTimeout(r.ctx, 5*time.Second)
	defer cancel()
	if err := r.a.session.ChannelTyping(r.t.channel, discordgo.WithContext(ctx), discordgo.WithRetryOnRatelimit(false)); err != nil {
		r.a.log.Debug("typing indicator failed", "channel", r.t.channel, "err", err)
	}
}

// prepare opens the thread the reply goes to, once. If the bot may not
// create threads there, it replies in place instead (with a reference to the
// user's message) and remembers not to try again in that channel for a while.
func (r *reply) prepare(ctx context.Context) {
	if r.setup {
		return
	}
	if !r.t.openThread {
		r.setup = true
		return
	}
	parent, src := r.t.channel, r.t.source
	fallback := "Chat"
	if r.t.botName != "" {
		fallback = "Chat with " + r.t.botName
	}
	r.t.threadName = threadName(r.t.text, fallback)
	for attempt := 0; ; attempt++ {
		if ctx.Err() != nil {
			return // not set up: Finish will try again with its own context
		}
		th, err := r.a.session.MessageThreadStartComplex(parent, src, &discordgo.ThreadStart{
			Name:                r.t.threadName,
			AutoArchiveDuration: r.a.cfg.ThreadAutoArchive,
		}, discordgo.WithContext(ctx), discordgo.WithRetryOnRatelimit(false))
		if err == nil {
			r.useThread(th.ID, parent)
			return
		}
		var rl *discordgo.RateLimitError
		if errors.As(err, &rl) && attempt < 3 {
			_ = sleepCtx(ctx, rl.RetryAfter)
			continue
		}
		if restCode(err) == discordgo.ErrCodeThreadAlreadyCreatedForThisMessage {
			r.useThread(src, parent) // a thread started on a message has the message's id
			return
		}
		if transient(err) && attempt < 2 {
			_ = sleepCtx(ctx, time.Duration(attempt+1)*300*time.Millisecond)
			continue
		}
		if ctx.Err() != nil {
			return
		}
		if st := restStatus(err); st == http.StatusForbidden || st == http.StatusBadRequest {
			r.a.noThreads.Put(parent, time.Now().Add(noThreadsFor))
		}
		r.a.log.Info("cannot open a thread; replying in the channel", "channel", parent, "err", err)
		r.t.openThread, r.t.replyRef = false, true
		r.setup = true
		return
	}
}

func (r *reply) useThread(id, parent string) {
	r.a.chans.Put(id, chanInfo{Type: discordgo.ChannelTypeGuildPublicThread, Guild: r.t.guild, Parent: parent, Name: r.t.threadName})
	r.t.channel = id
	r.t.openThread, r.t.replyRef, r.t.conv = false, false, ""
	r.setup = true
}

// render makes the posted messages show parts: it edits messages whose text
// changed, posts missing ones and deletes surplus ones, each write paced.
func (r *reply) render(waitCtx, opCtx context.Context, parts []string) error {
	return r.renderPaced(waitCtx, opCtx, parts, false)
}

func (r *reply) renderPaced(waitCtx, opCtx context.Context, parts []string, alreadyPaced bool) error {
	paced := alreadyPaced
	wait := func() error {
		if paced {
			paced = false
			return nil
		}
		return r.a.pacer.wait(waitCtx, r.t.channel)
	}
	for i, p := range parts {
		if i >= len(r.msgs) {
			if err := r.post(waitCtx, opCtx, wait, i, p); err != nil {
				return err
			}
		}
		if r.msgs[i].content == p {
			continue // a retried post may return the message with older text: edited below
		}
		err := r.write(waitCtx, wait, func() error {
			_, err := r.a.session.ChannelMessageEditComplex(&discordgo.MessageEdit{
				ID: r.msgs[i].id, Channel: r.t.channel, Content: &p, AllowedMentions: noMentions(),
			}, discordgo.WithContext(opCtx), discordgo.WithRetryOnRatelimit(false))
			return err
		})
		if restCode(err) == discordgo.ErrCodeUnknownMessage {
			// Someone deleted it: post the text again instead.
			r.msgs = append(r.msgs[:i:i], r.msgs[i+1:]...)
			if err = r.post(waitCtx, opCtx, wait, i, p); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		r.msgs[i].content = p
	}
	for len(r.msgs) > len(parts) {
		last := r.msgs[len(r.msgs)-1]
		err := r.write(waitCtx, wait, func() error {
			return r.a.session.ChannelMessageDelete(r.t.channel, last.id, discordgo.WithContext(opCtx), discordgo.WithRetryOnRatelimit(false))
		})
		if err != nil && restCode(err) != discordgo.ErrCodeUnknownMessage {
			return err
		}
		r.msgs = r.msgs[:len(r.msgs)-1]
	}
	return nil
}

// post sends part i as a new message and records it (with the text the
// message has: a retry with the part's nonce returns the message created by
// an earlier attempt, which may show older text).
func (r *reply) post(waitCtx, opCtx context.Context, wait func() error, i int, p string) error {
	send := &discordgo.MessageSend{Content: p, AllowedMentions: noMentions()}
	if i == 0 && r.t.replyRef && r.t.source != "" {
		no := false
		send.Reference = &discordgo.MessageReference{MessageID: r.t.source, ChannelID: r.t.channel, GuildID: r.t.guild, FailIfNotExists: &no}
	}
	nonce := r.nonceFor(i)
	var m *discordgo.Message
	err := r.write(waitCtx, wait, func() error {
		var err error
		m, err = r.a.sendMessage(opCtx, r.t.channel, send, nonce)
		return err
	})
	if err != nil {
		return err
	}
	delete(r.nonces, i)
	r.msgs = append(r.msgs, posted{})
	copy(r.msgs[i+1:], r.msgs[i:])
	r.msgs[i] = posted{id: m.ID, content: m.Content}
	if r.t.conv != "" {
		r.a.convs.Put(m.ID, r.t.conv)
	}
	if i == 0 {
		r.noteRef()
	}
	return nil
}

// write performs one paced channel write. A 429 pauses the whole channel for
// retry_after and the write is tried again; network errors and 5xx are
// retried a few times; other errors are returned.
func (r *reply) write(ctx context.Context, wait func() error, op func() error) error {
	for attempt := 1; ; attempt++ {
		if err := wait(); err != nil {
			return err
		}
		err := op()
		if err == nil {
			return nil
		}
		var rl *discordgo.RateLimitError
		switch {
		case errors.As(err, &rl):
			d := rl.RetryAfter
			if d <= 0 {
				d = time.Second
			}
			r.a.pacer.block(r.t.channel, d)
			r.a.log.Debug("rate limited; waiting", "channel", r.t.channel, "retry_after", d)
		case transient(err) && attempt < maxOpAttempts:
			if err := sleepCtx(ctx, time.Duration(attempt)*250*time.Millisecond); err != nil {
				return err
			}
		default:
			return err
		}
		if attempt >= maxOpAttempts {
			return err
		}
	}
}

// restStatus returns the HTTP status of a discordgo REST error, or 0.
func restStatus(err error) int {
	var re *discordgo.RESTError
	if errors.As(err, &re) && re.Response != nil {
		return re.Response.StatusCode
	}
	return 0
}

// restCode returns Discord's JSON error code of a REST error, or 0.
func restCode(err error) int {
	var re *discordgo.RESTError
	if errors.As(err, &re) && re.Message != nil {
		return re.Message.Code
	}
	return 0
}

// transient reports errors worth retrying: 5xx, network failures and
// undecodable answers. Posts are safe to retry because they carry a nonce.
func transient(err error) bool {
	if st := restStatus(err); st >= 500 || errors.Is(err, discordgo.ErrJSONUnmarshal) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	return strings.Contains(err.Error(), "Exceeded Max retries")
}
