package bot

import (
	"errors"
	"sort"
	"sync"
	"time"

	"github.com/cometbot/cometbot/llm"
)

// Error kinds the engine records besides the gateway's (llm.ErrorKind names).
const (
	ErrKindStore    = "store"    // history, settings, budget or turn could not be read or saved
	ErrKindDelivery = "delivery" // the reply could not be posted
	ErrKindOther    = "other"
)

// errorLog counts failures per kind in hourly slots over the last day: a
// fixed 24 slots, each with at most maxKinds kinds, so it stays bounded.
type errorLog struct {
	mu    sync.Mutex
	slots [24]errorSlot
}

type errorSlot struct {
	hour  int64 // unix hour the slot counts
	kinds map[string]int
}

const maxErrorKinds = 32

// add counts one failure of kind at t.
func (l *errorLog) add(t time.Time, kind string) {
	h := t.Unix() / 3600
	l.mu.Lock()
	defer l.mu.Unlock()
	s := &l.slots[h%24]
	if s.hour != h || s.kinds == nil {
		*s = errorSlot{hour: h, kinds: make(map[string]int)}
	}
	if _, ok := s.kinds[kind]; !ok && len(s.kinds) >= maxErrorKinds {
		kind = ErrKindOther
	}
	s.kinds[kind]++
}

// ErrorCount is how many failures of one kind happened.
type ErrorCount struct {
	Kind  string
	Count int
}

// since returns the counts of the slots from the hour of since on, largest first.
func (l *errorLog) since(now time.Time, d time.Duration) []ErrorCount {
	from := now.Add(-d).Unix() / 3600
	to := now.Unix() / 3600
	sum := map[string]int{}
	l.mu.Lock()
	for _, s := range l.slots {
		if s.hour >= from && s.hour <= to {
			for k, n := range s.kinds {
				sum[k] += n
			}
		}
	}
	l.mu.Unlock()
	out := make([]ErrorCount, 0, len(sum))
	for k, n := range sum {
		out = append(out, ErrorCount{k, n})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Kind < out[j].Kind
	})
	return out
}

// RecentErrors returns the failures of the last 24 hours (counted per
// hour, so up to an hour more) by kind, largest first: gateway failures
// by their llm error kind, and store and delivery failures.
func (e *Engine) RecentErrors() []ErrorCount {
	return e.errors.since(e.opts.Now(), 24*time.Hour)
}

// recordError counts a failure for RecentErrors.
func (e *Engine) recordError(kind string) { e.errors.add(e.opts.Now(), kind) }

// errorKind names the kind of a turn's failure.
func errorKind(err error) string {
	var le *llm.Error
	if errors.As(err, &le) {
		return le.Kind.String()
	}
	return ErrKindOther
}
