package discord

import (
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// pacer spaces message posts, edits and deletes per channel. Discord allows
// about 5 per 5 s per channel, shared by everything the bot does there, so
// every reply streaming into one channel draws from the same limiter. A 429
// or an exhausted bucket (seen in headers) pauses the whole channel.
type pacer struct {
	every time.Duration // one write per this interval, burst 1

	mu    sync.Mutex
	chans map[string]*channelPace
}

type channelPace struct {
	lim          *rate.Limiter
	blockedUntil time.Time // guarded by pacer.mu
	lastUsed     time.Time // guarded by pacer.mu
}

// pacerSweepAt is the number of tracked channels above which idle ones are dropped.
const pacerSweepAt = 4096

// newPacer allows budget writes per window in every channel, with a 10%
// margin so that jitter between our clock and Discord's never tips a window
// over the budget. Burst 1 spreads the writes evenly: at most budget writes
// fall in any window.
func newPacer(budget int, window time.Duration) *pacer {
	every := window * 11 / 10 / time.Duration(budget)
	return &pacer{every: every, chans: make(map[string]*channelPace)}
}

func (p *pacer) get(ch string) *channelPace {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	cp := p.chans[ch]
	if cp == nil {
		if len(p.chans) >= pacerSweepAt {
			p.sweepLocked(now)
		}
		cp = &channelPace{lim: rate.NewLimiter(rate.Every(p.every), 1)}
		p.chans[ch] = cp
	}
	cp.lastUsed = now
	return cp
}

// sweepLocked drops channels idle for a minute; their limiters are full again
// by then, so forgetting them changes nothing.
func (p *pacer) sweepLocked(now time.Time) {
	idle := time.Minute
	if 4*p.every > idle {
		idle = 4 * p.every
	}
	for id, cp := range p.chans {
		if now.Sub(cp.lastUsed) > idle && now.After(cp.blockedUntil) {
			delete(p.chans, id)
		}
	}
}

// wait blocks until the channel may take one more write, or ctx ends.
func (p *pacer) wait(ctx context.Context, ch string) error {
	cp := p.get(ch)
	if err := cp.lim.Wait(ctx); err != nil {
		return err
	}
	for {
		p.mu.Lock()
		d := time.Until(cp.blockedUntil)
		p.mu.Unlock()
		if d <= 0 {
			return nil
		}
		if err := sleepCtx(ctx, d); err != nil {
			return err
		}
	}
}

// block pauses writes to the channel for d (after a 429 or an exhausted bucket).
func (p *pacer) block(ch string, d time.Duration) {
	cp := p.get(ch)
	until := time.Now().Add(d)
	p.mu.Lock()
	if until.After(cp.blockedUntil) {
		cp.blockedUntil = until
	}
	p.mu.Unlock()
}
