package llm

import (
	"context"
	"sync"
	"time"
)

// limiter is the global semaphore on in-flight gateway calls. Its limit is
// adaptive (AIMD): a 429 halves it (at most once per second, never below 1),
// and every `limit` successes raise it by one, up to the configured maximum.
// Waiters are served in FIFO order and leave the queue when their context ends.
type limiter struct {
	mu       sync.Mutex
	max      int
	limit    int
	inUse    int
	waiters  []chan struct{}
	lastDrop time.Time
	okCount  int
	peak     int
}

func newLimiter(n int) *limiter { return &limiter{max: n, limit: n} }

func (l *limiter) acquire(ctx context.Context) error {
	l.mu.Lock()
	if l.inUse < l.limit && len(l.waiters) == 0 {
		l.inUse++
		l.peak = max(l.peak, l.inUse)
		l.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	l.waiters = append(l.waiters, ch)
	l.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		l.mu.Lock()
		granted := true
		for i, w := range l.waiters {
			if w == ch {
				l.waiters = append(l.waiters[:i], l.waiters[i+1:]...)
				granted = false
				break
			}
		}
		l.mu.Unlock()
		if granted {
			l.release()
		}
		return ctx.Err()
	}
}

func (l *limiter) release() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inUse--
	l.grantLocked()
}

func (l *limiter) grantLocked() {
	for l.inUse < l.limit && len(l.waiters) > 0 {
		ch := l.waiters[0]
		l.waiters[0] = nil
		l.waiters = l.waiters[1:]
		l.inUse++
		l.peak = max(l.peak, l.inUse)
		close(ch)
	}
}

// rateLimited lowers the limit after a 429.
func (l *limiter) rateLimited(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastDrop) < time.Second {
		return
	}
	l.lastDrop = now
	l.limit = max(1, l.limit/2)
	l.okCount = 0
}

// succeeded raises the limit slowly back towards the maximum.
func (l *limiter) succeeded() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.limit >= l.max {
		return
	}
	l.okCount++
	if l.okCount >= l.limit {
		l.okCount = 0
		l.limit++
		l.grantLocked()
	}
}

// stats returns the current limit, in-flight count and peak in-flight count.
func (l *limiter) stats() (limit, inUse, peak int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.limit, l.inUse, l.peak
}
