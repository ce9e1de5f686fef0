package slack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/cometbot/cometbot/bot"
)

// placeholderText is shown while the model thinks when no thread status can be set.
const placeholderText = ":hourglass_flowing_sand: _Thinking…_"

// emptyAnswer replaces an empty final answer.
const emptyAnswer = "_(empty answer)_"

var (
	errReplyClosed       = errors.New("slack: reply already finished")
	errNativeUnavailable = errors.New("slack: native streaming unavailable")
)

// output is where the reply to one incoming message goes: a channel and the
// thread to answer in ("" = top level, for DMs outside threads).
type output struct {
	a       *Adapter
	team    string
	channel string
	thread  string
	user    string // the author, recipient of native streams
	dm      bool
	source  string // ts of the message answered ("" if unknown)
	// resume is the ts of a message a previous process posted for this
	// reply: Start continues in it instead of posting (see ResumeOutput).
	resume string
	// resumed: a previous process worked on this reply; messages it posted
	// without recording them are looked for before posting (adoptPost).
	resumed bool
}

var _ bot.Output = (*output)(nil)

// Start shows progress at once (thread status, or a placeholder message) and
// starts the reply's background flusher.
func (o *output) Start(ctx context.Context) (bot.Reply, error) {
	p := o.a.pacingFor(o.team)
	r := &reply{o: o, p: p, id: replyIDFor(o.source), dirty: make(chan struct{}, 1), flusherDone: make(chan struct{})}
	if o.resume != "" {
		r.continueIn(ctx, o.resume)
		r.startFlusher(ctx)
		return r, nil
	}
	r.native = o.a.cfg.NativeStreaming && o.thread != "" && !p.noNative[kind(o.dm)].Load()
	if o.thread != "" && !o.a.cfg.DisableThreadStatus && !p.noStatus[kind(o.dm)].Load() {
		err := o.a.api.SetAssistantThreadsStatusContext(ctx, slack.AssistantThreadsSetStatusParameters{
			ChannelID: o.channel, ThreadTS: o.thread, Status: o.a.cfg.ThinkingText,
		})
		switch {
		case err == nil:
			r.statusSet = true
		case featureUnavailable(err):
			if !p.noStatus[kind(o.dm)].Swap(true) {
				o.a.log.Info("slack: assistant.threads.setStatus unavailable, using placeholder messages", "team", o.team, "err", slackCode(err))
			}
		default:
			o.a.log.Debug("slack: set thread status failed", "channel", o.channel, "err", err)
		}
	}
	if !r.statusSet {
		ts, err := r.postText(ctx, ctx, placeholderText, prioHigh)
		if err != nil {
			return nil, fmt.Errorf("slack: start reply: %w", err)
		}
		r.placeholder = ts
		if !r.native {
			r.slots = []slot{{ts: ts, content: placeholderText}}
		}
		r.noteRef()
	}
	r.startFlusher(ctx)
	return r, nil
}

// startFlusher starts the background flusher; Finish and Fail stop it.
func (r *reply) startFlusher(ctx context.Context) {
	fctx, cancel := context.WithCancel(ctx)
	r.cancelFlush = cancel
	go r.flushLoop(ctx, fctx)
}

// slot is one message of a reply.
type slot struct {
	ts      string
	content string // what the message shows (mrkdwn, or markdown when streamed)
	native  bool   // created by chat.startStream
	open    bool   // stream not yet stopped
}

// reply is one streamed answer. Append only records text; a background
// flusher renders the text so far and reconciles the thread's messages with
// it through the workspace's pacing lanes; Finish does the same with the
// authoritative final text at high priority.
type reply struct {
	o  *output
	p  *pacing
	id string // random; with posts it makes each new message's post id

	mu     sync.Mutex
	buf    strings.Builder
	closed bool

	dirty       chan struct{}
	cancelFlush context.CancelFunc
	flusherDone chan struct{}

	// Delivery state: owned by the flusher goroutine until it has exited,
	// then by Finish or Fail.
	native      bool
	slots       []slot
	placeholder string // ts of the placeholder message, "" if none
	statusSet   bool
	synced      string // text of the last successful interim sync
	posts       int    // messages created so far (see nextPostID)
	// stuck is set when a message may or may not have been created and the
	// conversation could not be read back: no further message is created,
	// lest a part show twice.
	stuck error

	ref bot.RefNotifier // the first message, for a restart (bot.Resumable)
}

var _ bot.Reply = (*reply)(nil)

// Append records delta and wakes the flusher; it never waits for Slack.
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
	r.mu.Unlock()
	r.markDirty()
	return nil
}

func (r *reply) markDirty() {
	select {
	case r.dirty <- struct{}{}:
	default:
	}
}

func (r *reply) snapshot() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.String()
}

// close marks the reply finished; it reports false if it already was.
func (r *reply) close() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.closed = true
	return true
}

func (r *reply) stopFlusher() {
	r.cancelFlush()
	<-r.flusherDone
}

// Finish delivers the complete final text, split into as many thread
// messages as needed, and returns when it is delivered or ctx ends.
func (r *reply) Finish(ctx context.Context, final string) error {
	if !r.close() {
		return errReplyClosed
	}
	r.stopFlusher()
	if err := r.sync(ctx, ctx, final, true); err != nil {
		r.o.a.log.Warn("slack: delivering the final answer failed", "channel", r.o.channel, "thread", r.o.thread, "err", err)
		return fmt.Errorf("slack: finish reply: %w", err)
	}
	return nil
}

// Fail ends the reply with one short notice. Text already shown stays and
// the notice is edited in under it; without text the notice replaces the
// placeholder, or is posted when there is none.
func (r *reply) Fail(ctx context.Context, userMessage string) error {
	if !r.close() {
		return errReplyClosed
	}
	r.stopFlusher()
	if shown := strings.TrimSpace(r.snapshot()); shown != "" {
		err := r.sync(ctx, ctx, shown+"\n\n"+noticeLine(userMessage), true)
		if err == nil {
			return nil
		}
		r.o.a.log.Warn("slack: editing the notice in failed; posting it", "channel", r.o.channel, "err", err)
	}
	text := failText(userMessage)
	for i := range r.slots {
		if r.slots[i].open {
			_ = r.stopStream(ctx, ctx, i, "", prioHigh)
		}
	}
	onlyPlaceholder := r.placeholder != "" &&
		(len(r.slots) == 0 || (len(r.slots) == 1 && r.slots[0].ts == r.placeholder && r.slots[0].content == placeholderText))
	if onlyPlaceholder {
		ts := r.placeholder
		err := r.call(ctx, ctx, r.p.update, prioHigh, func(c context.Context) error {
			_, _, _, err := r.o.a.api.UpdateMessageContext(c, r.o.channel, ts, slack.MsgOptionText(text, false))
			return err
		})
		if err == nil {
			return nil
		}
	}
	ts, err := r.postText(ctx, ctx, text, prioHigh)
	if err != nil {
		if r.statusSet {
			r.clearStatus(ctx)
		}
		return fmt.Errorf("slack: fail reply: %w", err)
	}
	if len(r.slots) == 0 {
		r.slots = []slot{{ts: ts, content: text}}
		r.noteRef()
	}
	return nil
}

// failText makes the one-line error message shown to users, as mrkdwn.
func failText(msg string) string {
	return neutralizeBroadcasts(escapeSlack(noticeLine(msg)))
}

// noticeLine makes the one line of a failure notice: the first line of msg,
// at most 300 characters, with an emoji.
func noticeLine(msg string) string {
	msg = strings.TrimSpace(msg)
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = strings.TrimSpace(msg[:i])
	}
	if msg == "" {
		msg = "Something went wrong while answering."
	}
	if utf8.RuneCountInString(msg) > 300 {
		msg = string([]rune(msg)[:300]) + "…"
	}
	if first, _ := utf8.DecodeRuneInString(msg); unicode.IsLetter(first) || unicode.IsDigit(first) {
		msg = ":warning: " + msg // the engine's messages usually bring their own emoji
	}
	return msg
}

func (r *reply) clearStatus(ctx context.Context) {
	_ = r.o.a.api.SetAssistantThreadsStatusContext(ctx, slack.AssistantThreadsSetStatusParameters{
		ChannelID: r.o.channel, ThreadTS: r.o.thread, Status: "",
	})
}

// flushLoop pushes interim text to Slack whenever there is news and the
// pacing lanes allow. Calls run with callCtx; waiting for a lane stops as
// soon as waitCtx ends (Finish/Fail took over).
func (r *reply) flushLoop(callCtx, waitCtx context.Context) {
	defer close(r.flusherDone)
	for {
		select {
		case <-waitCtx.Done():
			return
		case <-r.dirty:
		}
		text := r.snapshot()
		if r.native {
			// Hold back a partial last word: neutralization of "@here" or
			// "<!here>" must see it whole, or the stream would need a rewrite.
			if i := strings.LastIndexAny(text, " \n\t"); i >= 0 {
				text = text[:i+1]
			} else {
				text = ""
			}
		}
		if strings.TrimSpace(text) == "" || text == r.synced {
			continue
		}
		err := r.sync(callCtx, waitCtx, text, false)
		switch {
		case err == nil:
			r.synced = text
		case waitCtx.Err() != nil:
			return
		case rateLimited(err):
			r.markDirty() // the lane is paused; try again with newer text
		default:
			r.o.a.log.Debug("slack: interim update failed", "channel", r.o.channel, "err", err)
		}
	}
}

// render splits and converts text into the contents of the reply's messages.
func (r *reply) render(text string, final bool) []string {
	cfg := &r.o.a.cfg
	if strings.TrimSpace(text) == "" {
		if !final {
			return nil
		}
		text = emptyAnswer
	}
	if r.native {
		var parts []string
		for _, p := range bot.Split(text, cfg.StreamPartRunes) {
			if strings.TrimSpace(p) != "" {
				parts = append(parts, neutralizeMarkdown(p))
			}
		}
		return parts
	}
	return renderMrkdwn(text, cfg.MessagePartRunes, cfg.MaxTextRunes)
}

// renderMrkdwn splits Markdown into parts of at most partRunes and converts
// each to mrkdwn; a part whose conversion exceeds maxRunes is split again.
func renderMrkdwn(text string, partRunes, maxRunes int) []string {
	var out []string
	for _, p := range bot.Split(text, partRunes) {
		out = append(out, renderPart(p, partRunes, maxRunes)...)
	}
	return out
}

func renderPart(p string, partRunes, maxRunes int) []string {
	if strings.TrimSpace(p) == "" {
		return nil
	}
	m := toMrkdwn(p)
	if utf8.RuneCountInString(m) <= maxRunes || partRunes < 100 {
		return []string{m}
	}
	var out []string
	for _, q := range bot.Split(p, partRunes/2) {
		out = append(out, renderPart(q, partRunes/2, maxRunes)...)
	}
	return out
}

// sync makes the thread show text: existing messages are updated (or
// appended to, when streaming natively), missing ones created. With final
// set, every message is completed and leftovers are removed.
func (r *reply) sync(callCtx, waitCtx context.Context, text string, final bool) error {
	prio := prioLow
	if final {
		prio = prioHigh
	}
	parts := r.render(text, final)
	for i, part := range parts {
		complete := final || i < len(parts)-1
		var err error
		if i < len(r.slots) {
			err = r.ensure(callCtx, waitCtx, i, part, complete, prio)
		} else {
			err = r.create(callCtx, waitCtx, part, complete, prio)
		}
		if errors.Is(err, errNativeUnavailable) {
			r.native = false
			if len(r.slots) == 0 && r.placeholder != "" {
				r.slots = []slot{{ts: r.placeholder, content: placeholderText}}
			}
			return r.sync(callCtx, waitCtx, text, final)
		}
		if err != nil {
			return err
		}
	}
	if !final {
		return nil
	}
	for _, s := range r.slots[len(parts):] {
		if err := r.deleteMessage(callCtx, waitCtx, s.ts); err != nil {
			r.o.a.log.Debug("slack: deleting a leftover message failed", "err", err)
		}
	}
	r.slots = r.slots[:len(parts)]
	if r.placeholder != "" && !r.isSlot(r.placeholder) {
		_ = r.deleteMessage(callCtx, waitCtx, r.placeholder)
		r.placeholder = ""
	}
	return nil
}

func (r *reply) isSlot(ts string) bool {
	for _, s := range r.slots {
		if s.ts == ts {
			return true
		}
	}
	return false
}

// create adds a message with content to the thread.
func (r *reply) create(callCtx, waitCtx context.Context, content string, complete bool, prio priority) error {
	if r.stuck != nil {
		return r.stuck
	}
	if !r.native {
		ts, err := r.postText(callCtx, waitCtx, content, prio)
		if err != nil {
			return err
		}
		r.slots = append(r.slots, slot{ts: ts, content: content})
		r.noteRef()
		return nil
	}
	ts, err := r.startStream(callCtx, waitCtx, content, prio)
	if err != nil {
		if isUnsure(err) || rateLimited(err) || transient(err) || waitCtx.Err() != nil || callCtx.Err() != nil {
			return err
		}
		if featureUnavailable(err) {
			if !r.p.noNative[kind(r.o.dm)].Swap(true) {
				r.o.a.log.Info("slack: native streaming unavailable, using chat.postMessage + chat.update", "team", r.o.team, "err", slackCode(err))
			}
		} else {
			r.o.a.log.Debug("slack: chat.startStream refused, using chat.update for this reply", "err", err)
		}
		return errNativeUnavailable
	}
	r.slots = append(r.slots, slot{ts: ts, content: content, native: true, open: true})
	r.noteRef()
	if r.placeholder != "" {
		_ = r.deleteMessage(callCtx, waitCtx, r.placeholder)
		r.placeholder = ""
	}
	if complete {
		return r.stopStream(callCtx, waitCtx, len(r.slots)-1, "", prio)
	}
	return nil
}

// ensure makes message i show content.
func (r *reply) ensure(callCtx, waitCtx context.Context, i int, content string, complete bool, prio priority) error {
	s := &r.slots[i]
	if s.native && s.open {
		if strings.HasPrefix(content, s.content) {
			delta := content[len(s.content):]
			if complete {
				return r.stopStream(callCtx, waitCtx, i, delta, prio)
			}
			if delta == "" {
				return nil
			}
			return r.appendStream(callCtx, waitCtx, i, delta, prio)
		}
		if !complete {
			return nil // rewritten at the end
		}
		if err := r.stopStream(callCtx, waitCtx, i, "", prio); err != nil {
			return err
		}
	}
	if s.content == content {
		return nil
	}
	return r.update(callCtx, waitCtx, i, content, prio)
}

// ---- paced Web API calls ----

// call runs fn after a token from lane l (nil: unpaced). High-priority
// calls are retried after 429s (the whole lane pauses for Retry-After) and
// transient errors.
func (r *reply) call(callCtx, waitCtx context.Context, l *lane, prio priority, fn func(context.Context) error) error {
	backoff := 250 * time.Millisecond
	for attempt := 0; ; attempt++ {
		if l != nil {
			if err := l.acquire(waitCtx, prio); err != nil {
				return err
			}
		} else if err := waitCtx.Err(); err != nil {
			return err
		}
		err := fn(callCtx)
		if err == nil {
			return nil
		}
		if d, ok := retryAfter(err); ok {
			r.o.a.log.Debug("slack: rate limited", "channel", r.o.channel, "retry_after", d)
			if l != nil {
				l.pause(d) // the next acquire waits it out
			}
			if prio != prioHigh || attempt >= 10 || (l == nil && !sleepCtx(callCtx, d)) {
				return err
			}
			continue
		}
		if prio == prioHigh && transient(err) && attempt < 4 {
			if !sleepCtx(callCtx, backoff) {
				return err
			}
			backoff *= 2
			continue
		}
		return err
	}
}

// sleepCtx waits for d; it reports false if ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// postText posts a new message of the reply, at most once (see createMessage).
func (r *reply) postText(callCtx, waitCtx context.Context, text string, prio priority) (string, error) {
	postID := r.nextPostID()
	if ts := r.adoptPost(callCtx, waitCtx, postID, text, prio); ts != "" {
		return ts, nil
	}
	opts := []slack.MsgOption{slack.MsgOptionText(text, false), slack.MsgOptionDisableLinkUnfurl(),
		slack.MsgOptionMetadata(postMetadata(postID))}
	if r.o.thread != "" {
		opts = append(opts, slack.MsgOptionTS(r.o.thread))
	}
	ts, err := r.createMessage(callCtx, waitCtx, r.p.post(r.o.channel), prio, hasPostID(postID), func(c context.Context) (string, error) {
		_, ts, err := r.o.a.api.PostMessageContext(c, r.o.channel, opts...)
		return ts, err
	})
	if err != nil {
		return "", fmt.Errorf("slack: post message: %w", err)
	}
	return ts, nil
}

// update replaces message i's content; if Slack no longer lets us edit it,
// the content is posted as a new message instead (final text only).
func (r *reply) update(callCtx, waitCtx context.Context, i int, content string, prio priority) error {
	s := &r.slots[i]
	if prio == prioHigh && !r.native && i == len(r.slots)-1 && r.p.update.backlog(prioHigh) > r.o.a.cfg.FinalUpdateMaxWait {
		// Many answers are finishing at once and chat.update's budget is
		// booked up: post the final text as a new message (chat.postMessage
		// has a per-channel budget) and remove the interim one.
		nts, err := r.postText(callCtx, waitCtx, content, prio)
		if err == nil {
			old := s.ts
			*s = slot{ts: nts, content: content}
			if r.placeholder == old {
				r.placeholder = ""
			}
			r.noteRef()
			r.deleteLater(callCtx, old)
			return nil
		}
	}
	opts := []slack.MsgOption{slack.MsgOptionText(content, false)}
	if r.native {
		opts = []slack.MsgOption{
			slack.MsgOptionText(previewText(content), false),
			slack.MsgOptionBlocks(slack.NewMarkdownBlock("", content)),
		}
	}
	ts := s.ts
	err := r.call(callCtx, waitCtx, r.p.update, prio, func(c context.Context) error {
		_, _, _, err := r.o.a.api.UpdateMessageContext(c, r.o.channel, ts, opts...)
		return err
	})
	if err == nil {
		s.content = content
		return nil
	}
	if prio == prioHigh && cannotEdit(err) {
		var nts string
		nts, err = r.postText(callCtx, waitCtx, contentAsText(content, r.native), prio)
		if err == nil {
			*s = slot{ts: nts, content: content}
			r.noteRef()
			return nil
		}
	}
	return fmt.Errorf("slack: update message: %w", err)
}

// previewText is the notification fallback of a markdown-block message.
func previewText(md string) string {
	if utf8.RuneCountInString(md) > 200 {
		md = string([]rune(md)[:200]) + "…"
	}
	return escapeSlack(md)
}

func contentAsText(content string, native bool) string {
	if native {
		return toMrkdwn(content)
	}
	return content
}

// deleteLater removes a superseded message without making the caller wait
// for chat.delete's budget: in the background of Run when it is running.
func (r *reply) deleteLater(ctx context.Context, ts string) {
	del := func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		if err := r.deleteMessage(ctx, ctx, ts); err != nil {
			r.o.a.log.Debug("slack: deleting a superseded message failed", "err", err)
		}
	}
	if runCtx := r.o.a.runContext(); runCtx != nil {
		r.o.a.goBackground(runCtx, del)
		return
	}
	del(ctx)
}

func (r *reply) deleteMessage(callCtx, waitCtx context.Context, ts string) error {
	return r.call(callCtx, waitCtx, r.p.delete, prioHigh, func(c context.Context) error {
		_, _, err := r.o.a.api.DeleteMessageContext(c, r.o.channel, ts)
		return err
	})
}

// startStream creates a streamed message, at most once (see createMessage).
func (r *reply) startStream(callCtx, waitCtx context.Context, content string, prio priority) (string, error) {
	return r.createMessage(callCtx, waitCtx, r.p.stream, prio, isStreamed, func(c context.Context) (string, error) {
		_, ts, err := r.o.a.api.StartStreamContext(c, r.o.channel,
			slack.MsgOptionTS(r.o.thread),
			slack.MsgOptionMarkdownText(content),
			slack.MsgOptionRecipientUserID(r.o.user),
			slack.MsgOptionRecipientTeamID(r.o.team),
		)
		return ts, err
	})
}

func (r *reply) appendStream(callCtx, waitCtx context.Context, i int, delta string, prio priority) error {
	s := &r.slots[i]
	ts := s.ts
	err := r.call(callCtx, waitCtx, r.p.stream, prio, func(c context.Context) error {
		_, _, err := r.o.a.api.AppendStreamContext(c, r.o.channel, ts, slack.MsgOptionMarkdownText(delta))
		return err
	})
	if err != nil {
		if slackCode(err) == "message_not_in_streaming_state" {
			s.open = false
		}
		return fmt.Errorf("slack: append stream: %w", err)
	}
	s.content += delta
	return nil
}

func (r *reply) stopStream(callCtx, waitCtx context.Context, i int, delta string, prio priority) error {
	s := &r.slots[i]
	ts := s.ts
	var opts []slack.MsgOption
	if delta != "" {
		opts = append(opts, slack.MsgOptionMarkdownText(delta))
	}
	err := r.call(callCtx, waitCtx, r.p.stream, prio, func(c context.Context) error {
		_, _, err := r.o.a.api.StopStreamContext(c, r.o.channel, ts, opts...)
		return err
	})
	switch {
	case err == nil:
		s.content += delta
		s.open = false
		return nil
	case slackCode(err) == "message_not_in_streaming_state":
		s.open = false
		return nil
	default:
		return fmt.Errorf("slack: stop stream: %w", err)
	}
}

// ---- error classification ----

// slackCode returns the Slack error code of err ("" if none).
func slackCode(err error) string {
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		return se.Err
	}
	return ""
}

// retryAfter reports whether err is a rate limit and how long to wait.
func retryAfter(err error) (time.Duration, bool) {
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		return max(rl.RetryAfter, time.Second), true
	}
	if slackCode(err) == "ratelimited" {
		return time.Second, true
	}
	return 0, false
}

func rateLimited(err error) bool {
	_, ok := retryAfter(err)
	return ok
}

// transient reports errors worth retrying: network trouble and 5xx, unless
// the call may have taken effect (unsureError).
func transient(err error) bool {
	if isUnsure(err) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var sce slack.StatusCodeError
	if errors.As(err, &sce) {
		return sce.Code >= 500
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	switch slackCode(err) {
	case "internal_error", "fatal_error", "service_unavailable", "request_timeout":
		return true
	}
	return false
}

// featureUnavailable reports errors that mean the workspace or app does not
// offer a method at all (so there is no point in trying it again).
func featureUnavailable(err error) bool {
	switch slackCode(err) {
	case "fake_method_not_implemented", "unknown_method", "missing_scope", "not_allowed_token_type",
		"no_permission", "method_deprecated", "feature_not_enabled", "not_allowed", "access_denied",
		"team_not_allowed", "not_supported", "invalid_auth":
		return true
	}
	return false
}

// cannotEdit reports errors after which a message can no longer be edited.
func cannotEdit(err error) bool {
	switch slackCode(err) {
	case "message_not_found", "cant_update_message", "edit_window_closed", "msg_blocks_too_long", "invalid_blocks", "msg_too_long":
		return true
	}
	return false
}
