package bot

import "context"

// Engine is the conversation engine. (Implementation in progress.)
type Engine struct{}

func (e *Engine) handleMessage(ctx context.Context, m Message, out Output) error { return ErrIgnored }
func (e *Engine) handleCommand(ctx context.Context, c Command) Answer           { return Answer{} }
func (e *Engine) modelChoices(ctx context.Context, q string, limit int) []Choice { return nil }
