// Package lograte keeps repetitive log lines from flooding the log: a
// client sending bad requests in a loop gets one line per reason per
// interval, carrying how many more there were.
package lograte

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// DefaultEvery is the interval of a zero Limiter.
const DefaultEvery = 10 * time.Second

// maxReasons bounds the reasons remembered; reasons are meant to be a
// small fixed set (constant messages), this is only a safety net.
const maxReasons = 1000

// Limiter lets through at most one log line per reason (the message) per
// interval. The zero value is ready to use, with DefaultEvery.
type Limiter struct {
	// Every is the interval per reason; 0 means DefaultEvery.
	Every time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu      sync.Mutex
	reasons map[string]*state
}

type state struct {
	last       time.Time
	suppressed int
}

// allow reports whether a line for reason may be logged now and, if so, how
// many lines for it were suppressed since the last one.
func (l *Limiter) allow(reason string) (ok bool, suppressed int) {
	now := time.Now
	if l.Now != nil {
		now = l.Now
	}
	every := l.Every
	if every <= 0 {
		every = DefaultEvery
	}
	t := now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.reasons == nil {
		l.reasons = make(map[string]*state)
	}
	s := l.reasons[reason]
	if s == nil {
		if len(l.reasons) >= maxReasons {
			clear(l.reasons)
		}
		l.reasons[reason] = &state{last: t}
		return true, 0
	}
	if t.Sub(s.last) < every {
		s.suppressed++
		return false, 0
	}
	n := s.suppressed
	s.last, s.suppressed = t, 0
	return true, n
}

// Log logs msg at level through log unless a line with the same msg was
// logged less than an interval ago; a line that follows suppressed ones
// carries their count as "suppressed".
func (l *Limiter) Log(log *slog.Logger, level slog.Level, msg string, args ...any) {
	if !log.Enabled(context.Background(), level) {
		return
	}
	ok, n := l.allow(msg)
	if !ok {
		return
	}
	if n > 0 {
		args = append(args, "suppressed", n)
	}
	log.Log(context.Background(), level, msg, args...)
}

// Warn is Log at warning level.
func (l *Limiter) Warn(log *slog.Logger, msg string, args ...any) {
	l.Log(log, slog.LevelWarn, msg, args...)
}
