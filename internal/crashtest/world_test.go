package crashtest

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// world is a fake platform that outlives the bot's processes: it delivers
// users' messages and shows what the bot posted.
type world interface {
	// env is the platform's part of the bot's environment.
	env() []string
	// ready waits until the current process can take messages (on top of
	// /readyz, e.g. Socket Mode's hello on a new connection).
	ready(ctx context.Context, run int) error
	// send writes m (its kind and text set) where its conversation is and
	// delivers it to the bot; it sets m.id, and the conversation's where and
	// key on its first message.
	send(m *userMsg)
	// delivered reports whether the bot acknowledged m (Slack: the
	// envelope's ack or an HTTP 200; Discord: dispatched on a live
	// connection) and when it first did.
	delivered(m *userMsg) (time.Time, bool)
	// replies returns the bot's visible messages at a conversation's
	// location (conv.where), oldest first.
	replies(where string) []botMsg
	// settled reports whether every event the platform owes the bot was
	// acknowledged (Slack redelivers un-acked events; Discord does not).
	settled() bool
	// leftovers lists platform state a finished reply must not leave
	// behind (Slack: thread statuses still set).
	leftovers(convs []*conv) []string
	// refMessage returns the message id inside a reply reference.
	refMessage(ref string) string
	// findsAgain reports whether the bot can find a message it posted at
	// where without having recorded it (so none may be left behind there).
	findsAgain(where string) bool
	close()
}

// botMsg is one visible bot message.
type botMsg struct {
	id   string // Slack ts, Discord message id
	text string
}

// conv is one conversation: a thread opened by a mention, or a DM.
type conv struct {
	n      int
	thread bool
	user   int    // index of the user who writes in it (DMs: one per user)
	where  string // the platform's location (Slack channel/thread, Discord channel)
	key    string // the engine's conversation key
	opener *userMsg
	msgs   []*userMsg
}

// userMsg is one message a user wrote.
type userMsg struct {
	n       int
	conv    *conv
	mention bool
	tag     string // unique word, e.g. "q017"
	plain   string // the text as the engine sees it (mention removed)
	id      string // platform message id (Slack ts, Discord snowflake)
	cycle   int    // the run it was sent in

	// From the store, read between runs.
	durable   bool   // its turn was found pending or in the history
	ref       string // the last reply reference seen with its pending turn
	pendingNo bool   // seen pending without a reference (no message yet)
}

// answer is the final text the fake gateway's echo gives m.
func (m *userMsg) answer() string { return "echo: " + m.plain }

// poll waits until cond is true or the cap passes; it reports which.
func poll(ctx context.Context, limit time.Duration, cond func() bool) bool {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for {
		if cond() {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(3 * time.Millisecond):
		}
	}
}

// words gives each message a few filler words after its tag, so that a
// streamed answer takes several chunks.
var words = []string{"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo", "lima", "mike", "november", "oscar", "papa"}

func body(tag string, n int) string {
	s := tag
	for i := range 10 + n%6 {
		s += " " + words[(n+i)%len(words)]
	}
	return s
}

// counter is a set of named counts safe for concurrent use.
type counter struct {
	mu sync.Mutex
	m  map[string]int
}

func (c *counter) add(k string, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]int{}
	}
	c.m[k] += n
}

func (c *counter) get(k string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[k]
}

func (c *counter) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return fmt.Sprint(c.m)
}
