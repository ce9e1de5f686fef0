package slack

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// priority orders callers waiting for the same lane.
type priority int

const (
	// prioHigh is for calls a user is waiting on: placeholders and final text.
	prioHigh priority = iota
	// prioLow is for interim streaming updates, which coalesce while waiting.
	prioLow
	numPriorities
)

// lane paces one class of Web API calls (e.g. chat.update for a workspace)
// that all concurrent replies share. Tokens come from a rate.Limiter; a
// dispatcher hands each token to the oldest waiter of the highest priority,
// so final answers overtake interim updates. A 429 pauses the whole lane for
// its Retry-After. The dispatcher goroutine runs only while someone waits and
// exits as soon as the queue is empty.
type lane struct {
	lim      *rate.Limiter
	interval time.Duration

	mu          sync.Mutex
	queues      [numPriorities][]*ticket
	running     bool
	pausedUntil time.Time
	wake        chan struct{} // capacity 1: queue emptied or pause changed
	lastUsed    time.Time

	waited func(time.Duration) // told each granted token's wait (metrics); nil: not timed
}

type ticket struct {
	ch      chan struct{}
	granted bool
}

// newLane returns a lane that grants at most one call per interval (no burst
// beyond burst).
func newLane(interval time.Duration, burst int) *lane {
	return &lane{
		lim:      rate.NewLimiter(rate.Every(interval), max(burst, 1)),
		interval: interval,
		wake:     make(chan struct{}, 1),
		lastUsed: time.Now(),
	}
}

// budgetInterval spreads budget calls per window evenly, keeping 10% headroom
// so that network jitter never pushes a window over the budget.
func budgetInterval(budget int, window time.Duration) time.Duration {
	if budget <= 0 {
		budget = 1
	}
	return window * 10 / time.Duration(budget*9)
}

// acquire waits for a token. It returns ctx.Err() if ctx ends first.
func (l *lane) acquire(ctx context.Context, p priority) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	t := &ticket{ch: make(chan struct{})}
	var began time.Time
	if l.waited != nil {
		began = time.Now()
	}
	l.mu.Lock()
	l.queues[p] = append(l.queues[p], t)
	l.lastUsed = time.Now()
	if !l.running {
		l.running = true
		go l.dispatch()
	}
	l.mu.Unlock()
	select {
	case <-t.ch:
		if l.waited != nil {
			l.waited(time.Since(began))
		}
		return nil
	case <-ctx.Done():
		l.mu.Lock()
		if !t.granted {
			l.removeLocked(t)
		}
		l.mu.Unlock()
		l.poke()
		return ctx.Err()
	}
}

// pause stops granting tokens for d (a 429's Retry-After).
func (l *lane) pause(d time.Duration) {
	if d <= 0 {
		d = time.Second
	}
	until := time.Now().Add(d)
	l.mu.Lock()
	if until.After(l.pausedUntil) {
		l.pausedUntil = until
	}
	l.mu.Unlock()
	l.poke()
}

// pausedFor reports how long the lane is still paused.
func (l *lane) pausedFor() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return time.Until(l.pausedUntil)
}

// backlog estimates how long a new caller of priority p would wait: the
// callers ahead of it times the interval, plus any pause.
func (l *lane) backlog(p priority) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for q := priority(0); q <= p; q++ {
		n += len(l.queues[q])
	}
	return time.Duration(n)*l.interval + max(0, time.Until(l.pausedUntil))
}

// idle reports whether nobody waits and the lane was unused for d.
func (l *lane) idle(d time.Duration) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.running && time.Since(l.lastUsed) > d
}

func (l *lane) poke() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

func (l *lane) removeLocked(t *ticket) {
	for p := range l.queues {
		q := l.queues[p]
		for i, x := range q {
			if x == t {
				l.queues[p] = append(q[:i:i], q[i+1:]...)
				return
			}
		}
	}
}

func (l *lane) waitingLocked() int {
	n := 0
	for _, q := range l.queues {
		n += len(q)
	}
	return n
}

// sleep waits for d or until poked; it reports whether d elapsed.
func (l *lane) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-l.wake:
		return false
	}
}

func (l *lane) dispatch() {
	for {
		l.mu.Lock()
		if l.waitingLocked() == 0 {
			l.running = false
			l.mu.Unlock()
			return
		}
		wait := time.Until(l.pausedUntil)
		l.mu.Unlock()
		if wait > 0 {
			l.sleep(wait)
			continue
		}
		r := l.lim.Reserve()
		if d := r.Delay(); d > 0 && !l.sleep(d) {
			// Woken early (a waiter left or a 429 paused the lane): give
			// the token back and re-check.
			r.Cancel()
			continue
		}
		l.mu.Lock()
		if time.Now().Before(l.pausedUntil) {
			l.mu.Unlock()
			continue
		}
		for p := range l.queues {
			if q := l.queues[p]; len(q) > 0 {
				t := q[0]
				l.queues[p] = q[1:]
				t.granted = true
				close(t.ch)
				break
			}
		}
		l.mu.Unlock()
	}
}

// fileCallsPerMinute is the workspace budget for files.getUploadURLExternal
// (Tier 4: 100+ per minute).
const fileCallsPerMinute = 100

// pacing is the one pacing layer of a workspace: every reply streaming in it
// shares these lanes.
type pacing struct {
	update *lane // chat.update (Tier 3)
	delete *lane // chat.delete (Tier 3, a budget of its own)
	stream *lane // chat.startStream / appendStream / stopStream (Tier 4)
	files  *lane // files.getUploadURLExternal (Tier 4)

	postInterval time.Duration
	postBurst    int
	waited       func(time.Duration) // each lane's waited
	mu           sync.Mutex
	posts        map[string]*lane // chat.postMessage, per channel

	// noStatus / noNative remember that assistant.threads.setStatus or
	// native streaming was refused, separately for channels [0] and DMs [1]
	// (Slack may allow them in assistant DM threads only).
	noStatus [2]atomic.Bool
	noNative [2]atomic.Bool
}

// kind indexes noStatus and noNative.
func kind(dm bool) int {
	if dm {
		return 1
	}
	return 0
}

func newPacing(cfg *Config) *pacing {
	p := &pacing{
		update:       newLane(budgetInterval(cfg.UpdatesPerMinute, cfg.PacingWindow), 1),
		delete:       newLane(budgetInterval(cfg.UpdatesPerMinute, cfg.PacingWindow), 1),
		stream:       newLane(budgetInterval(cfg.StreamCallsPerMinute, cfg.PacingWindow), 1),
		files:        newLane(budgetInterval(fileCallsPerMinute, cfg.PacingWindow), 1),
		postInterval: cfg.PostInterval,
		postBurst:    cfg.PostBurst,
		posts:        map[string]*lane{},
	}
	if mx := cfg.Metrics; mx != nil {
		p.waited = func(d time.Duration) { mx.PlatformWait(Platform, d) }
		p.update.waited, p.delete.waited, p.stream.waited, p.files.waited = p.waited, p.waited, p.waited, p.waited
	}
	return p
}

// post returns the chat.postMessage lane of a channel.
func (p *pacing) post(channel string) *lane {
	p.mu.Lock()
	defer p.mu.Unlock()
	if l, ok := p.posts[channel]; ok {
		return l
	}
	if len(p.posts) > 1000 {
		for ch, l := range p.posts {
			if l.idle(time.Minute) {
				delete(p.posts, ch)
			}
		}
	}
	l := newLane(p.postInterval, p.postBurst)
	l.waited = p.waited
	p.posts[channel] = l
	return l
}
