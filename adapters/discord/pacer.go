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
	every  time.Duration // one write per this interval, burst 1
	budget int           // writes allowed per guard window
	guard  time.Duration // the window (plus margin) checked at send time

	mu    sync.Mutex
	chans map[string]*channelPace
}

type channelPace struct {
	lim          *rate.Limiter
	blockedUntil time.Time   // guarded by pacer.mu
	lastUsed     time.Time   // guarded by pacer.mu
	sent         []time.Time // ring of the last budget send times; guarded by pacer.mu
	next         int
}

// pacerSweepAt is the number of tracked channels above which idle ones are dropped.
const pacerSweepAt = 4096

// newPacer allows budget writes per window in every channel, with a 10%
// margin so that jitter between our clock and Discord's never tips a window
// over the budget. Burst 1 spreads the writes evenly: at most budget writes
// fall in any window.
//
// The limiter decides when a reply may write; admit, called by the
// transport just before a write goes on the wire, is the hard cap: it
// delays a write that would make budget+1 writes inside one window (plus
// the margin), which can happen when requests granted in time are held up
// and then leave together.
func newPacer(budget int, window time.Duration) *pacer {
	guard := window * 11 / 10
	return &pacer{every: guard / time.Duration(budget), budget: budget, guard: guard, chans: make(map[string]*channelPace)}
}

func (p *pacer) get(ch string) *channelPace {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	cp := p.getLocked(ch, now)
	cp.lastUsed = now
	return cp
}

func (p *pacer) getLocked(ch string, now time.Time) *channelPace {
	cp := p.chans[ch]
	if cp == nil {
		if len(p.chans) >= pacerSweepAt {
			p.sweepLocked(now)
		}
		cp = &channelPace{lim: rate.NewLimiter(rate.Every(p.every), 1), sent: make([]time.Time, p.budget)}
		p.chans[ch] = cp
	}
	return cp
}

// admit records a write about to be sent to the channel, first waiting
// while budget writes already went out within the guard window.
func (p *pacer) admit(ctx context.Context, ch string) error {
	for {
		p.mu.Lock()
		now := time.Now()
		cp := p.getLocked(ch, now)
		cp.lastUsed = now
		wait := cp.sent[cp.next].Add(p.guard).Sub(now) // the budget-th most recent write
		if wait <= 0 {
			cp.sent[cp.next] = now
			cp.next = (cp.next + 1) % len(cp.sent)
			p.mu.Unlock()
			return nil
		}
		p.mu.Unlock()
		if err := sleepCtx(ctx, wait); err != nil {
			return err
		}
	}
}

// sweepLocked drops channels idle for a minute; their limiters are full again
// by then, so forgetting them changes nothing.
func (p *pacer) sweepLocked(now time.Time) {
	idle := time.Minute
	if 2*p.guard > idle {
		idle = 2 * p.guard
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
