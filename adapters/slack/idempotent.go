package slack

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack"
)

// Calls that create a message (chat.postMessage, chat.startStream) are not
// idempotent: when their answer is lost (a timeout, a reset connection, an
// undecodable 200, a 5xx) the message may exist or not. Sending it again
// blindly is how one answer became eight messages against a misbehaving
// server. Instead every post carries message metadata with a post id unique
// to that message of the reply, and after an unclear failure the thread (or
// the channel's top level) is read back: a message found is adopted, and
// only a message known to be missing is sent again. When the conversation
// cannot be read (Slack lets bot tokens read threads only in direct
// messages), the post is not repeated: one reply is at most one visible
// message per part, whatever the transport did.

// Metadata of the messages the adapter posts.
const (
	replyEventType = "cometbot_reply"
	postIDKey      = "post_id"
)

const (
	// maxPostAttempts bounds the attempts of one post at high priority.
	maxPostAttempts = 4
	// lookupPageSize stays within what every app may read per page (15 for
	// commercially distributed non-Marketplace apps).
	lookupPageSize = 15
	// lookupPages bounds how far back a lookup reads.
	lookupPages = 10
	// lookupDelay lets a post whose answer was lost land before the thread
	// is read back.
	lookupDelay = 250 * time.Millisecond
)

// unsureError marks a failure after which a call may or may not have taken
// effect. It is never retried blindly (transient reports false).
type unsureError struct{ err error }

func (e *unsureError) Error() string { return "outcome unknown: " + e.err.Error() }
func (e *unsureError) Unwrap() error { return e.err }

// markUnsure wraps err when it leaves open whether Slack carried out the call.
func markUnsure(err error) error {
	if err == nil || !outcomeUnknown(err) {
		return err
	}
	return &unsureError{err}
}

func isUnsure(err error) bool {
	var u *unsureError
	return errors.As(err, &u)
}

// outcomeUnknown reports whether Slack may have carried out a call that
// failed with err: everything except a Slack error answer, a rate limit, a
// 4xx, and a connection that was never made.
func outcomeUnknown(err error) bool {
	var se slack.SlackErrorResponse
	var rl *slack.RateLimitedError
	var sce slack.StatusCodeError
	var op *net.OpError
	switch {
	case errors.As(err, &se), errors.As(err, &rl):
		return false
	case errors.As(err, &sce):
		return sce.Code >= 500
	case errors.As(err, &op) && op.Op == "dial":
		return false
	}
	return true
}

// replyIDFor returns the id of the post ids of the reply to the message
// source: the message's ts, so that a process resuming the reply after a
// crash makes the post ids the dead one made, and can find its messages
// (see adoptPost). Without a source the id is random.
func replyIDFor(source string) string {
	if source != "" {
		return "r" + source
	}
	return strings.ToLower(rand.Text()[:12])
}

// nextPostID returns the id of the reply's next new message.
func (r *reply) nextPostID() string {
	r.posts++
	return r.id + "." + strconv.Itoa(r.posts)
}

func postMetadata(postID string) slack.SlackMetadata {
	return slack.SlackMetadata{EventType: replyEventType, EventPayload: map[string]any{postIDKey: postID}}
}

// hasPostID matches the message posted with postID.
func hasPostID(postID string) func(slack.Message) bool {
	return func(m slack.Message) bool {
		id, _ := m.Metadata.EventPayload[postIDKey].(string)
		return m.Metadata.EventType == replyEventType && id == postID
	}
}

// sharesFile matches the message that shares the uploaded file id.
func sharesFile(id string) func(slack.Message) bool {
	return func(m slack.Message) bool {
		return slices.ContainsFunc(m.Files, func(f slack.File) bool { return f.ID == id })
	}
}

// isStreamed matches a message the bot created without the adapter's
// metadata: chat.startStream takes none. Turns of one conversation never
// overlap, so after the reply's own last message it is this reply's stream.
func isStreamed(m slack.Message) bool { return m.Metadata.EventType != replyEventType }

// lastTS returns the ts after which the reply's next message must appear:
// its newest message, else the message it answers, else the thread's start.
func (r *reply) lastTS() string {
	last := r.o.source
	if last == "" {
		last = r.o.thread
	}
	for _, s := range r.slots {
		if tsBefore(last, s.ts) {
			last = s.ts
		}
	}
	if tsBefore(last, r.placeholder) {
		last = r.placeholder
	}
	return last
}

// createMessage runs do, a call that creates one message and returns its
// ts, so that the message is created at most once. An unclear failure is
// followed by a lookup for a message match accepts: found, it is adopted;
// known missing, the call is made again (at high priority; interim posts
// leave that to the next flush); undecidable, the reply is stuck: it
// creates no more messages.
func (r *reply) createMessage(callCtx, waitCtx context.Context, l *lane, prio priority, match func(slack.Message) bool,
	do func(context.Context) (string, error)) (string, error) {
	after := r.lastTS()
	backoff := lookupDelay
	for attempt := 1; ; attempt++ {
		var ts string
		err := r.call(callCtx, waitCtx, l, prio, func(c context.Context) error {
			var err error
			ts, err = do(c)
			return markUnsure(err)
		})
		if err == nil || !isUnsure(err) {
			return ts, err
		}
		if !sleepCtx(callCtx, backoff) {
			return "", callCtx.Err()
		}
		backoff *= 2
		found, ferr := r.o.findPost(callCtx, after, match)
		switch {
		case ferr != nil:
			r.o.a.log.Warn("slack: a post's outcome is unknown and the conversation cannot be read back; this reply creates no more messages",
				"channel", r.o.channel, "thread", r.o.thread, "err", err, "lookup_err", ferr)
			r.stuck = fmt.Errorf("%w (lookup: %v)", err, ferr)
			return "", r.stuck
		case found != "":
			r.o.a.log.Info("slack: a post whose answer was lost had arrived; continuing with it",
				"channel", r.o.channel, "thread", r.o.thread, "ts", found, "err", err)
			return found, nil
		case prio != prioHigh || attempt >= maxPostAttempts:
			return "", err
		}
		r.o.a.log.Debug("slack: a post whose answer was lost did not arrive; sending it again", "channel", r.o.channel, "err", err)
	}
}

// findPost reads the reply's thread (conversations.replies) or, for a reply
// at the top level, the channel (conversations.history) after the message
// after, with metadata, and returns the ts of the bot's first message that
// match accepts ("" when there is none).
func (o *output) findPost(ctx context.Context, after string, match func(slack.Message) bool) (string, error) {
	id, err := o.a.identity(ctx)
	if err != nil {
		return "", err
	}
	cursor := ""
	for range lookupPages {
		var msgs []slack.Message
		var next string
		err := o.a.retryRateLimited(ctx, func() error {
			if o.thread != "" {
				var err error
				msgs, _, next, err = o.a.api.GetConversationRepliesContext(ctx, &slack.GetConversationRepliesParameters{
					ChannelID: o.channel, Timestamp: o.thread, Oldest: after, Limit: lookupPageSize,
					Cursor: cursor, IncludeAllMetadata: true,
				})
				return err
			}
			h, err := o.a.api.GetConversationHistoryContext(ctx, &slack.GetConversationHistoryParameters{
				ChannelID: o.channel, Oldest: after, Limit: lookupPageSize, Cursor: cursor, IncludeAllMetadata: true,
			})
			if err != nil {
				return err
			}
			msgs, next = h.Messages, h.ResponseMetaData.NextCursor
			return nil
		})
		if err != nil {
			return "", err
		}
		for _, m := range msgs {
			mine := (id.botID != "" && m.BotID == id.botID) || (id.userID != "" && m.User == id.userID)
			if mine && tsBefore(after, m.Timestamp) && match(m) {
				return m.Timestamp, nil
			}
		}
		if next == "" {
			return "", nil
		}
		cursor = next
	}
	return "", errors.New("slack: too many messages to check")
}

// retryRateLimited runs fn, waiting out up to three 429s of at most 30 s.
func (a *Adapter) retryRateLimited(ctx context.Context, fn func() error) error {
	for attempt := 0; ; attempt++ {
		err := fn()
		d, limited := retryAfter(err)
		if !limited || attempt >= 3 || d > 30*time.Second {
			return err
		}
		if !sleepCtx(ctx, d) {
			return ctx.Err()
		}
	}
}

// tsBefore reports whether Slack timestamp a is before b; "" is before
// everything.
func tsBefore(a, b string) bool {
	if b == "" {
		return false
	}
	if a == "" {
		return true
	}
	as, af, _ := strings.Cut(a, ".")
	bs, bf, _ := strings.Cut(b, ".")
	if len(as) != len(bs) {
		return len(as) < len(bs)
	}
	if as != bs {
		return as < bs
	}
	const width = 6
	return (af + strings.Repeat("0", max(0, width-len(af)))) < (bf + strings.Repeat("0", max(0, width-len(bf))))
}
