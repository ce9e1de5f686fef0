package slack

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/socketmode"

	"github.com/cometbot/cometbot/bot"
)

// runSocketMode runs the Socket Mode client and its event loop until ctx ends.
func (a *Adapter) runSocketMode(ctx context.Context) error {
	smc := socketmode.New(a.api,
		socketmode.OptionPingInterval(a.cfg.SocketPingTimeout),
		socketmode.OptionLog(slogOutput{a.log}),
	)
	runErr := make(chan error, 1)
	go func() { runErr <- smc.RunContext(ctx) }()
	for {
		select {
		case <-ctx.Done():
			<-runErr
			return nil
		case err := <-runErr:
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("slack: socket mode: %w (check SLACK_APP_TOKEN and that Socket Mode is enabled)", err)
		case evt := <-smc.Events:
			a.handleSocketEvent(ctx, smc, evt)
		}
	}
}

func (a *Adapter) handleSocketEvent(ctx context.Context, smc *socketmode.Client, evt socketmode.Event) {
	switch evt.Type {
	case socketmode.EventTypeConnecting:
		a.ready.Store(false)
		a.log.Debug("slack: socket mode connecting")
	case socketmode.EventTypeConnectionError:
		a.ready.Store(false)
		if ce, ok := evt.Data.(*slack.ConnectionErrorEvent); ok {
			a.log.Warn("slack: socket mode connection failed", "attempt", ce.Attempt, "backoff", ce.Backoff, "err", ce.ErrorObj)
		}
	case socketmode.EventTypeInvalidAuth:
		a.log.Error("slack: socket mode refused the app-level token (SLACK_APP_TOKEN)")
	case socketmode.EventTypeConnected:
		a.log.Debug("slack: socket mode websocket open")
	case socketmode.EventTypeHello:
		if !a.ready.Swap(true) {
			a.log.Info("slack: connected (Socket Mode)")
		}
	case socketmode.EventTypeDisconnect:
		a.ready.Store(false)
	case socketmode.EventTypeIncomingError, socketmode.EventTypeErrorBadMessage, socketmode.EventTypeErrorWriteFailed:
		a.log.Warn("slack: socket mode problem", "type", evt.Type)
	case socketmode.EventTypeEventsAPI:
		// The envelope is acknowledged once the message is accepted (its
		// turn durable) or known not to be for the bot — so a crash before
		// that makes Slack redeliver it — and at the latest after
		// ackDeadline, inside Slack's 3-second window.
		ack := sync.OnceFunc(func() { a.ack(ctx, smc, evt.Request, nil) })
		timer := time.AfterFunc(ackDeadline, ack)
		done := func() { timer.Stop(); ack() }
		ev, ok := evt.Data.(slackevents.EventsAPIEvent)
		if !ok {
			done()
			return
		}
		retry := 0
		if evt.Request != nil {
			retry = evt.Request.RetryAttempt
		}
		a.dispatchEvent(ctx, ev, retry, done)
	case socketmode.EventTypeSlashCommand:
		sc, ok := evt.Data.(slack.SlashCommand)
		if !ok {
			a.ack(ctx, smc, evt.Request, nil)
			return
		}
		payload, follow := a.slashCommand(ctx, sc)
		a.ack(ctx, smc, evt.Request, payload)
		a.goBackground(ctx, follow)
	case socketmode.EventTypeInteractive:
		cb, ok := evt.Data.(slack.InteractionCallback)
		if !ok {
			a.ack(ctx, smc, evt.Request, nil)
			return
		}
		payload, follow := a.interaction(ctx, cb)
		a.ack(ctx, smc, evt.Request, payload)
		a.goBackground(ctx, follow)
	}
}

// ack acknowledges an envelope within Slack's 3-second window.
func (a *Adapter) ack(ctx context.Context, smc *socketmode.Client, req *socketmode.Request, payload any) {
	if req == nil || req.EnvelopeID == "" {
		return
	}
	actx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := smc.AckCtx(actx, req.EnvelopeID, payload); err != nil {
		a.log.Warn("slack: ack failed", "envelope", req.EnvelopeID, "err", err)
		if payload != nil {
			// Too large or refused: acknowledge without payload at least.
			_ = smc.AckCtx(actx, req.EnvelopeID, nil)
		}
	}
}

// incoming is a message-like event before normalization.
type incoming struct {
	team         string
	eventID      string
	kind         string // "app_mention" or "message"
	channel      string
	channelType  string
	user         string
	botID        string
	subtype      string
	text         string
	ts           string
	threadTS     string
	parentUserID string
	content      eventContent // files and attachments
	retry        int
}

// acceptedSubtype reports whether a message subtype is a new message by a
// person; edits, deletions, joins and bot messages are not.
func acceptedSubtype(st string) bool {
	switch st {
	case "", "thread_broadcast", "file_share", "me_message":
		return true
	}
	return false
}

// dispatchEvent queues an Events API event for processing; events of one
// channel are processed in order.
func (a *Adapter) dispatchEvent(ctx context.Context, ev slackevents.EventsAPIEvent, retry int, accepted func()) {
	handed := false
	defer func() {
		if !handed {
			accepted()
		}
	}()
	if ev.Type != slackevents.CallbackEvent {
		return
	}
	in := incoming{team: ev.TeamID, retry: retry}
	var raw []byte
	if cb, ok := ev.Data.(*slackevents.EventsAPICallbackEvent); ok {
		in.eventID = cb.EventID
		if cb.InnerEvent != nil {
			raw = *cb.InnerEvent
		}
	}
	switch e := ev.InnerEvent.Data.(type) {
	case *slackevents.AppMentionEvent:
		in.kind = "app_mention"
		in.channel, in.user, in.botID, in.text = e.Channel, e.User, e.BotID, e.Text
		in.ts, in.threadTS = e.TimeStamp, e.ThreadTimeStamp
		if e.Edited != nil {
			return // a mention added by editing: not a new message
		}
	case *slackevents.MessageEvent:
		in.kind = "message"
		in.channel, in.channelType, in.user, in.botID = e.Channel, e.ChannelType, e.User, e.BotID
		in.subtype, in.text, in.ts, in.threadTS = e.SubType, e.Text, e.TimeStamp, e.ThreadTimeStamp
		if e.Message != nil {
			in.parentUserID = e.Message.ParentUserId
			if in.botID == "" {
				in.botID = e.Message.BotID
			}
		}
	default:
		return
	}
	if !acceptedSubtype(in.subtype) || in.botID != "" || in.user == "" || in.channel == "" || in.ts == "" {
		return // edits, deletions, joins, bot messages
	}
	// Files and shared messages: a message may be nothing else (no text).
	in.content = decodeContent(raw)
	handed = true
	a.serial.Do(in.channel, func() {
		defer accepted() // the engine has the turn on disk, or no turn was made
		a.processIncoming(ctx, in)
	})
}

// ackDeadline is the latest an event is acknowledged, accepted or not:
// Slack redelivers what is not acknowledged within 3 seconds.
const ackDeadline = 2500 * time.Millisecond

// slackbotUserID is Slackbot, whose system notices (in the bot's DM too)
// carry a user id but no bot_id.
const slackbotUserID = "USLACKBOT"

// processIncoming normalizes one message and hands it to the engine.
func (a *Adapter) processIncoming(ctx context.Context, in incoming) {
	if a.afterIncoming != nil {
		defer a.afterIncoming(in.channel, in.ts)
	}
	if ctx.Err() != nil || in.user == slackbotUserID {
		return
	}
	id, err := a.identity(ctx)
	if err != nil {
		a.log.Warn("slack: cannot identify the bot (auth.test)", "err", err)
		return
	}
	if in.user == id.userID {
		return
	}
	if in.team == "" {
		in.team = id.teamID
	}
	dm := in.channelType == "im" || (in.channelType == "" && strings.HasPrefix(in.channel, "D"))
	mentioned := in.kind == "app_mention" || mentionsUser(in.text, id.userID)
	thread := in.threadTS
	if !dm {
		if !mentioned {
			if thread == "" || a.cfg.MentionRequiredInThreads {
				return // channel chatter not addressed to the bot
			}
		}
		if thread == "" {
			thread = in.ts // answer in a thread under the mention
		}
	}
	continuesBot := in.parentUserID != "" && in.parentUserID == id.userID
	if !dm && !mentioned && !continuesBot && !a.addressed(ctx, in, thread) {
		return // someone else's thread: no mention lookups for it
	}
	key := "slack:" + in.team + ":" + in.channel + ":" + in.ts
	text := a.resolveText(ctx, in.text, id.userID)
	author := a.users.get(ctx, a.api, in.user)
	out := &output{a: a, team: in.team, channel: in.channel, thread: thread, user: in.user, dm: dm, source: in.ts}

	if name, args, ok := a.textCommand(text); ok && (dm || mentioned) {
		if !a.handled.Add(key) {
			return
		}
		a.runTextCommand(ctx, out, bot.Command{
			Name: name, Args: args, Platform: Platform, Workspace: in.team, Channel: in.channel,
			Thread: thread, DM: dm, User: bot.User{ID: in.user, Name: author.name, IsBot: author.isBot},
		})
		return
	}

	msg := bot.Message{
		Platform:  Platform,
		Workspace: in.team,
		Channel:   in.channel,
		Thread:    thread,
		ID:        in.ts,
		EventID:   key,
		Author:    bot.User{ID: in.user, Name: author.name, IsBot: author.isBot},
		Mentioned: mentioned,
		DM:        dm,
		// A thread under one of the bot's own messages continues with it;
		// threads the bot answers in are known to the engine.
		ContinuesBot: continuesBot,
		Text:         text,
		Attachments:  attachmentsOf(in.content.Files, a.download),
		Forwards:     a.forwards(ctx, sharedMessages(in.content.Attachments), id.userID),
		Time:         tsTime(in.ts),
	}
	err = a.engine.HandleMessage(ctx, msg, out)
	switch {
	case err == nil:
		a.log.Debug("slack: message accepted", "channel", in.channel, "ts", in.ts, "thread", thread, "retry", in.retry,
			"files", len(msg.Attachments), "shares", len(msg.Forwards))
	case errors.Is(err, bot.ErrIgnored), errors.Is(err, bot.ErrDuplicate), errors.Is(err, bot.ErrShuttingDown):
		a.log.Debug("slack: message not answered", "channel", in.channel, "ts", in.ts, "reason", err)
	default:
		a.log.Warn("slack: engine refused message", "channel", in.channel, "ts", in.ts, "err", err)
	}
}

// addressed asks the engine, once, whether a thread message that is neither
// a direct message, a mention nor a reply under the bot's message is
// addressed to the bot (a thread it takes part in). Only then are the
// message's mentions looked up.
func (a *Adapter) addressed(ctx context.Context, in incoming, thread string) bool {
	ok, err := a.engine.Addressed(ctx, bot.Message{
		Platform: Platform, Workspace: in.team, Channel: in.channel, Thread: thread, ID: in.ts,
		Author: bot.User{ID: in.user},
	})
	if err != nil {
		a.log.Warn("slack: cannot tell whether a thread message is for the bot", "channel", in.channel, "ts", in.ts, "err", err)
		return false
	}
	return ok
}

func mentionsUser(text, userID string) bool {
	return userID != "" && (strings.Contains(text, "<@"+userID+">") || strings.Contains(text, "<@"+userID+"|"))
}

// tsTime converts a Slack ts ("1700000000.000100") to a time.
func tsTime(ts string) time.Time {
	sec, frac, _ := strings.Cut(ts, ".")
	s, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		return time.Time{}
	}
	var us int64
	if frac != "" {
		frac = (frac + "000000")[:6]
		us, _ = strconv.ParseInt(frac, 10, 64)
	}
	return time.Unix(s, us*1000)
}

var reSlackToken = regexp.MustCompile(`<([^<>\n]+)>`)

const (
	// maxMentionLookups bounds the users.info calls for one message: the
	// first users it mentions are named, the rest keep their ids.
	maxMentionLookups = 20
	// mentionLookupWorkers is how many users.info calls of one message run
	// at once (users.info is Tier 4, 100+ per minute).
	mentionLookupWorkers = 4
)

// resolveText turns Slack message markup into plain text for the model: the
// bot's own mention is removed, user mentions become @display names, channel
// links #names, links "label (url)", and entities are unescaped.
func (a *Adapter) resolveText(ctx context.Context, text, botUserID string) string {
	names := a.mentionNames(ctx, text, botUserID)
	text = reSlackToken.ReplaceAllStringFunc(text, func(tok string) string {
		inner := tok[1 : len(tok)-1]
		target, label, hasLabel := strings.Cut(inner, "|")
		switch {
		case strings.HasPrefix(target, "@"):
			uid := target[1:]
			if uid == botUserID {
				return ""
			}
			if hasLabel && label != "" {
				return "@" + strings.TrimPrefix(label, "@")
			}
			if name, ok := names[uid]; ok {
				return "@" + name
			}
			return "@" + uid
		case strings.HasPrefix(target, "#"):
			if hasLabel && label != "" {
				return "#" + label
			}
			return target
		case strings.HasPrefix(target, "!"):
			special := target[1:]
			switch {
			case special == "here" || special == "channel" || special == "everyone":
				return "@" + special
			case hasLabel && label != "":
				return label
			default:
				name, _, _ := strings.Cut(special, "^")
				return "@" + name
			}
		default:
			if hasLabel && label != "" && label != target {
				return label + " (" + target + ")"
			}
			return target
		}
	})
	text = strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&").Replace(text)
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		lines[i] = strings.Join(strings.FieldsFunc(l, func(r rune) bool { return r == ' ' || r == '\t' }), " ")
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}

// mentionNames returns display names of the users text mentions without a
// label: cached ones, and at most maxMentionLookups looked up concurrently.
func (a *Adapter) mentionNames(ctx context.Context, text, botUserID string) map[string]string {
	names := map[string]string{}
	var lookups []string
	for _, m := range reSlackToken.FindAllStringSubmatch(text, -1) {
		target, label, _ := strings.Cut(m[1], "|")
		uid, ok := strings.CutPrefix(target, "@")
		if !ok || uid == "" || uid == botUserID || label != "" {
			continue
		}
		if _, done := names[uid]; done || slices.Contains(lookups, uid) {
			continue
		}
		if u, ok := a.users.cached(uid); ok {
			names[uid] = u.name
		} else if len(lookups) < maxMentionLookups {
			lookups = append(lookups, uid)
		}
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	work := make(chan string)
	for range min(mentionLookupWorkers, len(lookups)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for uid := range work {
				u := a.users.get(ctx, a.api, uid)
				mu.Lock()
				names[uid] = u.name
				mu.Unlock()
			}
		}()
	}
	for _, uid := range lookups {
		work <- uid
	}
	close(work)
	wg.Wait()
	return names
}

// ---- users ----

type userInfo struct {
	name    string
	isBot   bool
	expires time.Time
}

// userCache caches users.info lookups.
type userCache struct {
	ttl time.Duration
	max int
	mu  sync.Mutex
	m   map[string]userInfo
}

func newUserCache(ttl time.Duration, maxEntries int) *userCache {
	return &userCache{ttl: ttl, max: maxEntries, m: map[string]userInfo{}}
}

// cached returns a user from the cache without asking Slack.
func (c *userCache) cached(id string) (userInfo, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	u, ok := c.m[id]
	return u, ok && time.Now().Before(u.expires)
}

// get returns a user's display name (falling back to the id when Slack
// cannot tell) and whether the user is a bot.
func (c *userCache) get(ctx context.Context, api *slack.Client, id string) userInfo {
	now := time.Now()
	c.mu.Lock()
	if u, ok := c.m[id]; ok && now.Before(u.expires) {
		c.mu.Unlock()
		return u
	}
	c.mu.Unlock()
	u := userInfo{name: id, expires: now.Add(5 * time.Minute)}
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if info, err := api.GetUserInfoContext(lctx, id, slack.GetUserInfoOptionIncludeLocale(false)); err == nil {
		u.isBot = info.IsBot
		u.expires = now.Add(c.ttl)
		for _, n := range []string{info.Profile.DisplayName, info.Profile.RealName, info.RealName, info.Name} {
			if strings.TrimSpace(n) != "" {
				u.name = strings.TrimSpace(n)
				break
			}
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		for k, v := range c.m {
			if now.After(v.expires) || len(c.m) >= c.max {
				delete(c.m, k)
			}
		}
	}
	c.m[id] = u
	return u
}

// ---- serial queue ----

// serialQueue runs functions one at a time per key (a channel), in order,
// on goroutines tracked by wg that exit when their key's queue is empty.
type serialQueue struct {
	wg *sync.WaitGroup
	mu sync.Mutex
	q  map[string][]func()
}

func newSerialQueue(wg *sync.WaitGroup) *serialQueue {
	return &serialQueue{wg: wg, q: map[string][]func(){}}
}

// Do queues fn behind earlier functions of the same key.
func (s *serialQueue) Do(key string, fn func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q, running := s.q[key]
	s.q[key] = append(q, fn)
	if !running {
		s.wg.Add(1)
		go s.run(key)
	}
}

func (s *serialQueue) run(key string) {
	defer s.wg.Done()
	for {
		s.mu.Lock()
		q := s.q[key]
		if len(q) == 0 {
			delete(s.q, key)
			s.mu.Unlock()
			return
		}
		fn := q[0]
		s.q[key] = q[1:]
		s.mu.Unlock()
		fn()
	}
}

// ---- recent set ----

// recentSet remembers the last n keys.
type recentSet struct {
	mu   sync.Mutex
	n    int
	set  map[string]struct{}
	ring []string
	pos  int
}

func newRecentSet(n int) *recentSet {
	return &recentSet{n: n, set: map[string]struct{}{}, ring: make([]string, n)}
}

// Add records key and reports whether it was new.
func (r *recentSet) Add(key string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.set[key]; ok {
		return false
	}
	if old := r.ring[r.pos]; old != "" {
		delete(r.set, old)
	}
	r.ring[r.pos] = key
	r.pos = (r.pos + 1) % r.n
	r.set[key] = struct{}{}
	return true
}
