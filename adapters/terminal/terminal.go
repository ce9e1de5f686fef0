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
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/cometbot/cometbot/bot"
)

// Engine is what the terminal adapter needs from the conversation engine.
type Engine interface {
	HandleMessage(ctx context.Context, m bot.Message, out bot.Output) error
	HandleCommand(ctx context.Context, c bot.Command) bot.Answer
	// Quiesce waits until every accepted turn is delivered and stored.
	Quiesce(ctx context.Context) error
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
	// MaxFileBytes refuses /attach of larger files before reading them
	// (default 20 MiB, the engine's attachment limit).
	MaxFileBytes int64
	// SaveDir is where images the model generates are saved (default
	// $TMPDIR/cometbot-chat).
	SaveDir string
}

// Platform is the platform name terminal conversations are stored under.
const Platform = "terminal"

// Run reads messages until end of input or ctx ends. Each answer is printed
// completely before the next line is read, so piped input stays in order.
func Run(ctx context.Context, e Engine, cfg Config) error {
	if cfg.User == "" {
		cfg.User = "local"
	}
	if cfg.MaxFileBytes <= 0 {
		cfg.MaxFileBytes = 20 << 20
	}
	if cfg.SaveDir == "" {
		cfg.SaveDir = filepath.Join(os.TempDir(), "cometbot-chat")
	}
	var pending []bot.Attachment
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
		if p, ok := strings.CutPrefix(line, "/attach"); ok && (p == "" || p[0] == ' ') {
			a, err := attach(strings.TrimSpace(p), cfg.MaxFileBytes)
			if err != nil {
				w.print("📎 " + err.Error() + "\n")
				continue
			}
			pending = append(pending, a)
			w.print(fmt.Sprintf("📎 %s (%d bytes) goes with your next message.\n", a.Name, len(a.Data)))
			continue
		}
		if strings.HasPrefix(line, "/") {
			name, args, _ := strings.Cut(line[1:], " ")
			a := e.HandleCommand(ctx, bot.Command{Name: strings.ToLower(name), Args: strings.TrimSpace(args),
				Platform: Platform, Workspace: "local", Channel: "terminal", DM: true, User: bot.User{ID: cfg.User, Name: cfg.User}})
			w.print(a.Text + "\n")
			continue
		}
		n++
		out := newOutput(w, cfg.SaveDir)
		m := bot.Message{Platform: Platform, Workspace: "local", Channel: "terminal", DM: true,
			ID: fmt.Sprint(n), Author: bot.User{ID: cfg.User, Name: cfg.User}, Text: line, Attachments: pending}
		pending = nil
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
		// The turn is stored (and any generated image saved) before the
		// next line: /usage right after a reply counts it.
		if err := e.Quiesce(ctx); err != nil {
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

// attach reads a local file for the next message (the same pipeline as a
// platform file: the engine sniffs, classifies and limits it).
func attach(path string, limit int64) (bot.Attachment, error) {
	if path == "" {
		return bot.Attachment{}, errors.New("usage: /attach PATH, then type your message")
	}
	st, err := os.Stat(path)
	if err != nil {
		return bot.Attachment{}, fmt.Errorf("can't attach %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return bot.Attachment{}, fmt.Errorf("can't attach %s: not a regular file", path)
	}
	if st.Size() > limit {
		return bot.Attachment{}, fmt.Errorf("can't attach %s: it is %d bytes, over the %d-byte limit", path, st.Size(), limit)
	}
	f, err := os.Open(path)
	if err != nil {
		return bot.Attachment{}, fmt.Errorf("can't attach %s: %w", path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return bot.Attachment{}, fmt.Errorf("can't attach %s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return bot.Attachment{}, fmt.Errorf("can't attach %s: it is over the %d-byte limit", path, limit)
	}
	if data == nil {
		data = []byte{}
	}
	return bot.Attachment{Name: filepath.Base(path), Size: int64(len(data)), Data: data}, nil
}

// output prints one streamed answer.
type output struct {
	saveDir  string
	w        *syncWriter
	mu       sync.Mutex
	streamed strings.Builder
	done     chan struct{}
	once     sync.Once
}

func newOutput(w *syncWriter, saveDir string) *output {
	return &output{w: w, saveDir: saveDir, done: make(chan struct{})}
}

// Upload saves files the model generated and prints where they are.
func (o *output) Upload(_ context.Context, files []bot.File) error {
	if err := os.MkdirAll(o.saveDir, 0o750); err != nil {
		return fmt.Errorf("terminal: %w", err)
	}
	for _, f := range files {
		p, err := os.CreateTemp(o.saveDir, "*-"+filepath.Base(f.Name))
		if err != nil {
			return fmt.Errorf("terminal: %w", err)
		}
		_, werr := p.Write(f.Data)
		if cerr := p.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return fmt.Errorf("terminal: save %s: %w", f.Name, werr)
		}
		o.w.print("🖼️ saved " + p.Name() + "\n")
	}
	return nil
}

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
