package bot

import (
	"context"
	"errors"
)

// Errors returned by Engine.HandleMessage. None of them needs a user-facing
// answer: the engine already replied, or the message is not for the bot.
var (
	// ErrIgnored: the message is not addressed to the bot (another bot, no mention, ...).
	ErrIgnored = errors.New("bot: message ignored")
	// ErrDuplicate: the event id was already processed.
	ErrDuplicate = errors.New("bot: duplicate event")
	// ErrShuttingDown: the engine no longer takes events.
	ErrShuttingDown = errors.New("bot: shutting down")
)

// HandleMessage takes one incoming message. It returns at once: the turn is
// queued behind earlier turns of the same conversation and runs in the
// background, streaming its reply to out. A nil error means a reply is on
// its way; ErrIgnored, ErrDuplicate and ErrShuttingDown mean no reply.
func (e *Engine) HandleMessage(ctx context.Context, m Message, out Output) error {
	return e.handleMessage(ctx, m, out)
}

// HandleCommand runs one slash command and returns its answer. It is fast
// (no model call), so adapters may call it inside a 3-second ack window.
func (e *Engine) HandleCommand(ctx context.Context, c Command) Answer {
	return e.handleCommand(ctx, c)
}

// ModelChoices returns up to limit text models matching query, for pickers
// (Discord autocomplete, Slack external selects).
func (e *Engine) ModelChoices(ctx context.Context, query string, limit int) []Choice {
	return e.modelChoices(ctx, query, limit)
}
