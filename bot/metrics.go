package bot

import (
	"time"

	"github.com/cometbot/cometbot/storage"
)

// Metrics receives the engine's reports for monitoring
// (internal/metrics implements it). Options.Metrics nil reports nothing.
// Labels are the platform name, an outcome and a model id: never a user,
// channel or conversation id.
type Metrics interface {
	// TurnQueued moves the count of accepted turns waiting to run by delta.
	TurnQueued(delta int)
	// TurnRunning moves the count of running turns by delta.
	TurnRunning(delta int)
	// TurnDone reports a finished turn: its platform, its outcome (ok,
	// failed, cancelled, refused or interrupted) and the time since the
	// engine took its event.
	TurnDone(platform, outcome string, d time.Duration)
	// FirstToken reports the time from a model call's start to its first
	// answer text.
	FirstToken(d time.Duration)
	// FirstVisible reports the time from the engine taking an event to
	// the first answer text handed to the platform's reply.
	FirstVisible(d time.Duration)
	// Usage reports the tokens and cost of a turn's model calls.
	Usage(model string, input, output int, costUSD float64)
}

// Turn outcomes reported to Metrics.TurnDone.
const (
	outcomeOK          = "ok"
	outcomeFailed      = "failed"
	outcomeCancelled   = "cancelled"
	outcomeRefused     = "refused"
	outcomeInterrupted = "interrupted"
)

// outcomeOf maps a stored turn status to its outcome.
func outcomeOf(status string) string {
	switch status {
	case storage.StatusOK:
		return outcomeOK
	case storage.StatusCancelled:
		return outcomeCancelled
	}
	return outcomeFailed
}

// firstVisible reports, once per turn, the first answer text handed to
// the reply.
func (e *Engine) firstVisible(st *pendingStart) {
	if e.mx == nil || st.shown {
		return
	}
	st.shown = true
	if !st.since.IsZero() {
		e.mx.FirstVisible(time.Since(st.since))
	}
}
