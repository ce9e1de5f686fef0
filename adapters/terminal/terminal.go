// Package terminal is the adapter behind `cometbot chat`: a conversation in
// the terminal through the same engine, store and commands as Slack and
// Discord. It reads one message per line (interactive or piped), prints each
// answer as it streams, and handles /commands.
package terminal

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/cometbot/cometbot/bot"
)

// Engine is what the terminal adapter needs from the conversation engine.
type Engine interface {
	HandleMessage(ctx context.Context, m bot.Message, out bot.Output) error
	HandleCommand(ctx context.Context, c bot.Command) bot.Answer
}

// Config configures a terminal session.
type Config struct {
	// In is read one line per message; Out receives answers.
	In  io.Reader
	Out io.Writer
	// User is the local user's id and name (default "local").
	User string
	// Prompt is printed before each line when interactive (e.g. "you> ").
	Prompt string
}

// Platform is the platform name terminal conversations are stored under.
const Platform = "terminal"

// Run reads messages until end of input or ctx ends. Each answer is printed
// completely before the next line is read, so piped input stays in order.
func Run(ctx context.Context, e Engine, cfg Config) error {
	if cfg.User == "" {
		cfg.User = "local"
	}
	w := &syncWriter{w: cfg.Out}
	lines, readErr := readLines(ctx, cfg.In)
	n := 0
	for {
		if cfg.Prompt != "" {
			w.print(cfg.Prompt)
		}
		var line string
		var ok bool
		select {
		case <-ctx.Done(): // Ctrl-C at the prompt
			return nil
		case line, ok = <-lines:
		}
		if !ok {
			break
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if line == "/quit" || line == "/exit" {
			return nil
		}
		if strings.HasPrefix(line, "/") {
			name, args, _ := strings.Cut(line[1:], " ")
			a := e.HandleCommand(ctx, bot.Command{Name: strings.ToLower(name), Args: strings.TrimSpace(args),
				Platform: Platform, Workspace: "local", Channel: "terminal", DM: true, User: bot.User{ID: cfg.User, Name: cfg.User}})
			w.print(a.Text + "\n")
			continue
		}
		n++
		out := newOutput(w)
		m := bot.Message{Platform: Platform, Workspace: "local", Channel: "terminal", DM: true,
			ID: fmt.Sprint(n), Author: bot.User{ID: cfg.User, Name: cfg.User}, Text: line}
		if err := e.HandleMessage(ctx, m, out); err != nil {
			if errors.Is(err, bot.ErrIgnored) || errors.Is(err, bot.ErrDuplicate) {
				continue
			}
			return fmt.Errorf("terminal: %w", err)
		}
		select {
		case <-out.done:
		case <-ctx.Done():
			return nil
		}
	}
	if err := <-readErr; err != nil {
		return fmt.Errorf("terminal: read input: %w", err)
	}
	return nil
}

// readLines reads r line by line in a goroutine so Run can stop on ctx
// while a read blocks. The goroutine ends at end of input, when ctx ends
// (after its current read returns), or with the process; readErr receives
// the read error (nil at a clean end of input) before lines is closed.
func readLines(ctx context.Context, r io.Reader) (<-chan string, <-chan error) {
	lines := make(chan string)
	readErr := make(chan error, 1)
	go func() {
		defer close(readErr)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		defer close(lines)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
		readErr <- sc.Err()
	}()
	return lines, readErr
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) print(text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, _ = io.WriteString(s.w, text)
}

// output prints one streamed answer.
type output struct {
	w        *syncWriter
	mu       sync.Mutex
	streamed strings.Builder
	done     chan struct{}
	once     sync.Once
}

func newOutput(w *syncWriter) *output { return &output{w: w, done: make(chan struct{})} }

// Start implements bot.Output.
func (o *output) Start(context.Context) (bot.Reply, error) { return o, nil }

// Append prints streamed text as it arrives.
func (o *output) Append(_ context.Context, delta string) error {
	o.mu.Lock()
	o.streamed.WriteString(delta)
	o.mu.Unlock()
	o.w.print(delta)
	return nil
}

// Finish prints whatever of the final text did not stream (e.g. a footer).
func (o *output) Finish(_ context.Context, final string) error {
	o.mu.Lock()
	streamed := o.streamed.String()
	o.mu.Unlock()
	if rest, ok := strings.CutPrefix(final, streamed); ok {
		o.w.print(rest + "\n")
	} else {
		if streamed != "" {
			o.w.print("\n")
		}
		o.w.print(final + "\n")
	}
	o.once.Do(func() { close(o.done) })
	return nil
}

// Fail prints the user-facing error on its own line.
func (o *output) Fail(_ context.Context, msg string) error {
	o.mu.Lock()
	streamed := o.streamed.Len() > 0
	o.mu.Unlock()
	if streamed {
		o.w.print("\n")
	}
	o.w.print(msg + "\n")
	o.once.Do(func() { close(o.done) })
	return nil
}
