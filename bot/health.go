package bot

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// saveFailedNote ends a reply whose turn could not be stored.
const saveFailedNote = "⚠️ I couldn't save this conversation — the next reply may not remember it."

// refuseStoreFailing answers a budgeted turn while usage cannot be recorded.
const refuseStoreFailing = "💾 I can't record spending right now (my storage is failing), and spending limits apply here — please try again later or ask an admin."

// defaultProbeEvery is how often a failing store is probed with a small
// write while nothing else writes to it.
const defaultProbeEvery = 10 * time.Second

// prober is a Store that can make a small test write; *storage.Store is one.
type prober interface {
	Probe(ctx context.Context) error
}

// storeHealth remembers whether the store takes writes. Turn writes (the
// accepted message, the finished turn) report into it: a failure marks the
// store failing, a later success (a turn's, or a probe's) clears it. While it fails, budgeted turns are refused —
// their usage could not be recorded — and readiness says so.
type storeHealth struct {
	probeEvery time.Duration // 0: defaultProbeEvery; negative: probe every time

	mu        sync.Mutex
	err       error // the last write error; nil when healthy
	since     time.Time
	lastProbe time.Time
	probing   bool
}

// record notes a write's outcome. It returns true when the health changed.
func (h *storeHealth) record(err error) (changed bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case err != nil && h.err == nil:
		h.err, h.since, changed = err, time.Now(), true
	case err != nil:
		h.err = err
	case h.err != nil:
		h.err, changed = nil, true
	}
	return changed
}

// recordWrite notes the outcome of a turn write and logs the transitions.
func (e *Engine) recordWrite(err error) {
	if !e.health.record(err) {
		return
	}
	if err != nil {
		e.log.Error("the store is failing to save turns: budgeted turns are refused and /readyz reports it until a write succeeds", "err", err)
	} else {
		e.log.Info("the store saves turns again")
	}
}

// storeNote returns the line that ends a reply while the store fails to
// save turns (the accepted message could not be written, or earlier writes
// failed and none succeeded since): this turn will likely not be
// remembered. It returns "" while the store saves turns.
func (e *Engine) storeNote() string {
	e.health.mu.Lock()
	failing := e.health.err != nil
	e.health.mu.Unlock()
	if !failing {
		return ""
	}
	return "\n\n" + saveFailedNote
}

// StoreError returns nil while the store takes writes, else the error of the
// last failed write (with how long it has been failing). While it fails the
// store is probed with a small write at most every few seconds, so the
// state clears on its own once writes succeed again, even with no traffic.
func (e *Engine) StoreError(ctx context.Context) error {
	h := &e.health
	h.mu.Lock()
	if h.err == nil {
		h.mu.Unlock()
		return nil
	}
	every := h.probeEvery
	if every == 0 {
		every = defaultProbeEvery
	}
	p, canProbe := e.opts.Store.(prober)
	probe := canProbe && !h.probing && time.Since(h.lastProbe) >= every
	if probe {
		h.probing, h.lastProbe = true, time.Now()
	}
	h.mu.Unlock()
	if probe {
		err := p.Probe(ctx)
		h.mu.Lock()
		h.probing = false
		h.mu.Unlock()
		if ctx.Err() == nil {
			e.recordWrite(err)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err == nil {
		return nil
	}
	return fmt.Errorf("store failing for %s: %w", time.Since(h.since).Round(time.Second), h.err)
}
