package crashtest

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cometbot/cometbot/adapters/slack/slacktest"
)

// slackWorld is a fake Slack workspace: channels C1–C3 where mentions open
// threads, and one DM channel per user. Events reach the bot over Socket
// Mode (the fake redelivers envelopes that were not acked, on the next
// connection at the latest, as Slack does), or over the HTTP Events API,
// where this world plays Slack: it POSTs signed events and retries those
// that got no 200 (connection refused while the bot is down, or cut by a
// kill) with X-Slack-Retry-Num and X-Slack-Retry-Reason, up to three
// retries as Slack does, spaced a second apart instead of minutes.
type slackWorld struct {
	fake *slacktest.Server
	http bool
	addr string // the bot's COMETBOT_HTTP_ADDR (HTTP mode)

	mu     sync.Mutex
	envs   map[*userMsg][]string // Socket Mode envelopes carrying a message
	events []*httpEvent          // HTTP mode deliveries
	stop   chan struct{}
	wg     sync.WaitGroup
}

const slackSecret = "crash-test-signing-secret"

// httpEvent is one event this world POSTs to the bot until it gets a 200.
type httpEvent struct {
	m        *userMsg
	body     []byte
	attempts int
	last     time.Time
	acked    time.Time
}

func newSlackWorld(httpMode bool, addr string) (*slackWorld, error) {
	fake, err := slacktest.New(slacktest.Options{RedeliverAfter: 2 * time.Second})
	if err != nil {
		return nil, err
	}
	for i := range 3 {
		id := fmt.Sprintf("U%d", i+1)
		fake.AddUser(slacktest.User{ID: id, Name: "user" + id, RealName: "User " + id, DisplayName: "user" + id})
	}
	w := &slackWorld{fake: fake, http: httpMode, addr: addr, envs: map[*userMsg][]string{}, stop: make(chan struct{})}
	if httpMode {
		w.wg.Add(1)
		go w.redeliver()
	}
	return w, nil
}

func (w *slackWorld) env() []string {
	o := w.fake.Options()
	env := []string{"SLACK_BOT_TOKEN=" + o.BotToken, "SLACK_API_URL=" + w.fake.APIURL()}
	if w.http {
		return append(env, "SLACK_SIGNING_SECRET="+slackSecret)
	}
	return append(env, "SLACK_APP_TOKEN="+o.AppToken)
}

func (w *slackWorld) ready(ctx context.Context, run int) error {
	if w.http {
		return nil // /readyz: auth.test passed, the events endpoint serves
	}
	return w.fake.WaitConnected(ctx, run+1)
}

func user(i int) string             { return fmt.Sprintf("U%d", i+1) }
func dmChannel(i int) string        { return fmt.Sprintf("D%d", i+1) }
func (w *slackWorld) botID() string { return w.fake.Options().BotUserID }

func (w *slackWorld) send(m *userMsg) {
	c := m.conv
	team := w.fake.Options().TeamID
	var events []slacktest.MessageEvent
	switch {
	case !c.thread:
		ev := w.fake.DM(user(c.user), dmChannel(c.user), m.plain, "")
		m.id, c.where, c.key = ev.TS, dmChannel(c.user)+"/", "slack/"+team+"/"+dmChannel(c.user)+"/dm:"+user(c.user)
		events = append(events, ev)
	case m.mention:
		// An app subscribed to app_mention and message.channels gets both
		// for one mention: one answer is right.
		// Threads are spread over three channels: chat.postMessage is
		// paced per channel (about one a second), as Slack limits it.
		ch := fmt.Sprintf("C%d", c.n%3+1)
		ev := w.fake.Mention(user(c.user), ch, "<@"+w.botID()+"> "+m.plain, "")
		m.id = ev.TS
		c.where, c.key = ch+"/"+ev.TS, "slack/"+team+"/"+ch+"/"+ev.TS
		dup := ev
		dup.Type, dup.ChannelType = "message", "channel"
		events = append(events, ev, dup)
	default:
		ch, thread, _ := strings.Cut(c.where, "/")
		ev := w.fake.ChannelMessage(user(c.user), ch, m.plain, thread)
		ev.ParentUserID = user(c.user)
		m.id = ev.TS
		events = append(events, ev)
	}
	for _, ev := range events {
		if !w.http {
			env, _ := w.fake.SendEvent(ev)
			w.mu.Lock()
			w.envs[m] = append(w.envs[m], env)
			w.mu.Unlock()
			continue
		}
		body, _ := w.fake.EventCallback(ev)
		e := &httpEvent{m: m, body: body}
		w.mu.Lock()
		w.events = append(w.events, e)
		w.mu.Unlock()
		w.post(e)
	}
}

// post delivers an HTTP event once (with retry headers after the first
// attempt) and records a 200.
func (w *slackWorld) post(e *httpEvent) {
	w.mu.Lock()
	e.attempts++
	e.last = time.Now()
	n := e.attempts
	w.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second) // Slack's 3 s
	defer cancel()
	req, err := slacktest.NewSignedRequest(ctx, "http://"+w.addr+"/slack/events", slackSecret, "application/json", e.body, time.Now())
	if err != nil {
		return
	}
	if n > 1 {
		req.Header.Set("X-Slack-Retry-Num", strconv.Itoa(n-1))
		req.Header.Set("X-Slack-Retry-Reason", "http_error")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		w.mu.Lock()
		e.acked = time.Now()
		w.mu.Unlock()
	}
}

// redeliver retries events without a 200, a second apart, at most three times.
func (w *slackWorld) redeliver() {
	defer w.wg.Done()
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
		}
		var due []*httpEvent
		w.mu.Lock()
		for _, e := range w.events {
			if e.acked.IsZero() && e.attempts < 4 && time.Since(e.last) > time.Second {
				due = append(due, e)
			}
		}
		w.mu.Unlock()
		for _, e := range due {
			w.post(e)
		}
	}
}

func (w *slackWorld) delivered(m *userMsg) (time.Time, bool) {
	var first time.Time
	if w.http {
		w.mu.Lock()
		defer w.mu.Unlock()
		for _, e := range w.events {
			if e.m == m && !e.acked.IsZero() && (first.IsZero() || e.acked.Before(first)) {
				first = e.acked
			}
		}
		return first, !first.IsZero()
	}
	w.mu.Lock()
	ids := append([]string(nil), w.envs[m]...)
	w.mu.Unlock()
	for _, id := range ids {
		if e, ok := w.fake.Envelope(id); ok && e.Acked && (first.IsZero() || e.AckedAt.Before(first)) {
			first = e.AckedAt
		}
	}
	return first, !first.IsZero()
}

func (w *slackWorld) settled() bool {
	if w.http {
		w.mu.Lock()
		defer w.mu.Unlock()
		for _, e := range w.events {
			if e.acked.IsZero() && e.attempts < 4 {
				return false
			}
		}
		return true
	}
	for _, e := range w.fake.Envelopes() {
		if !e.Acked {
			return false
		}
	}
	return true
}

func (w *slackWorld) replies(where string) []botMsg {
	ch, thread, _ := strings.Cut(where, "/")
	var out []botMsg
	for _, m := range w.fake.BotReplies(ch, thread) {
		out = append(out, botMsg{id: m.TS, text: m.Body()})
	}
	return out
}

func (w *slackWorld) leftovers(convs []*conv) []string {
	var out []string
	for _, c := range convs {
		if ch, thread, _ := strings.Cut(c.where, "/"); thread != "" {
			if st := w.fake.Status(ch, thread); st != "" {
				out = append(out, fmt.Sprintf("thread %s still shows the status %q", c.where, st))
			}
		}
	}
	return out
}

func (w *slackWorld) refMessage(ref string) string {
	_, ts, _ := strings.Cut(ref, "/")
	return ts
}

// findsAgain: a bot token reads threads back only in DMs.
func (w *slackWorld) findsAgain(where string) bool { return strings.HasPrefix(where, "D") }

func (w *slackWorld) close() {
	close(w.stop)
	w.wg.Wait()
	w.fake.Close()
}
