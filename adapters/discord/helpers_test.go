package discord

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cometbot/cometbot/adapters/discord/discordtest"
	"github.com/cometbot/cometbot/bot"
)

// fakeEngine stands in for bot.Engine in adapter tests: it applies the
// engine's answering rules, de-duplicates event ids and streams scripted
// replies.
type fakeEngine struct {
	mu      sync.Mutex
	msgs    []bot.Message
	cmds    []bot.Command
	seen    map[string]bool
	threads map[string]bool
	turnErr []error

	// reply returns the deltas to stream for a message; the final text is their concatenation.
	reply    func(m bot.Message) []string
	delay    time.Duration // between deltas
	first    time.Duration // before the first delta (time to first token)
	cmdDelay time.Duration
	answer   func(c bot.Command) bot.Answer
	choices  []bot.Choice
	// files returns files to Upload after Finish; uploads records the results.
	files   func(m bot.Message) []bot.File
	uploads []error

	wg       sync.WaitGroup
	inFlight atomic.Int32
}

func newFakeEngine() *fakeEngine {
	return &fakeEngine{
		seen:    map[string]bool{},
		threads: map[string]bool{},
		reply:   func(m bot.Message) []string { return []string{"echo: ", m.Text} },
		answer:  func(c bot.Command) bot.Answer { return bot.Answer{Text: "ok " + c.Name + " " + c.Args} },
	}
}

func (e *fakeEngine) HandleMessage(ctx context.Context, m bot.Message, out bot.Output) error {
	e.mu.Lock()
	if e.seen[m.EventID] {
		e.mu.Unlock()
		return bot.ErrDuplicate
	}
	e.seen[m.EventID] = true
	key := m.Scope().ConversationKey()
	if m.Author.IsBot || m.Author.IsSelf || !(m.DM || m.Mentioned || m.ContinuesBot || (m.Thread != "" && e.threads[key])) {
		e.mu.Unlock()
		return bot.ErrIgnored
	}
	e.threads[key] = true
	e.msgs = append(e.msgs, m)
	deltas := e.reply(m)
	delay, first := e.delay, e.first
	var files []bot.File
	if e.files != nil {
		files = e.files(m)
	}
	e.wg.Add(1)
	e.inFlight.Add(1)
	e.mu.Unlock()
	go func() {
		defer e.wg.Done()
		defer e.inFlight.Add(-1)
		ctx := context.Background()
		r, err := out.Start(ctx)
		if err != nil {
			e.fail(err)
			return
		}
		var full strings.Builder
		if first > 0 {
			time.Sleep(first)
		}
		for _, d := range deltas {
			full.WriteString(d)
			if err := r.Append(ctx, d); err != nil {
				e.fail(err)
			}
			if delay > 0 {
				time.Sleep(delay)
			}
		}
		if err := r.Finish(ctx, full.String()); err != nil {
			e.fail(err)
		}
		if len(files) > 0 {
			up, ok := r.(bot.FileUploader)
			if !ok {
				e.fail(errors.New("the reply is not a bot.FileUploader"))
				return
			}
			err := up.Upload(ctx, files)
			e.mu.Lock()
			e.uploads = append(e.uploads, err)
			e.mu.Unlock()
		}
	}()
	return nil
}

// InFlight returns the number of turns still running.
func (e *fakeEngine) InFlight() int { return int(e.inFlight.Load()) }

func (e *fakeEngine) fail(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.turnErr = append(e.turnErr, err)
}

func (e *fakeEngine) HandleCommand(ctx context.Context, c bot.Command) bot.Answer {
	e.mu.Lock()
	e.cmds = append(e.cmds, c)
	d := e.cmdDelay
	e.mu.Unlock()
	if d > 0 {
		time.Sleep(d)
	}
	return e.answer(c)
}

func (e *fakeEngine) ModelChoices(ctx context.Context, query string, limit int) []bot.Choice {
	var out []bot.Choice
	for _, c := range e.choices {
		if strings.Contains(c.Value, query) && len(out) < limit {
			out = append(out, c)
		}
	}
	return out
}

func (e *fakeEngine) messages() []bot.Message {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]bot.Message(nil), e.msgs...)
}

// uploadResults returns the errors of the Upload calls made so far.
func (e *fakeEngine) uploadResults() []error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]error(nil), e.uploads...)
}

func (e *fakeEngine) commands() []bot.Command {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]bot.Command(nil), e.cmds...)
}

// waitTurns waits until the engine accepted n messages and every started
// turn finished, and fails on turn errors.
func (e *fakeEngine) waitTurns(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for len(e.messages()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("engine got %d messages, want %d", len(e.messages()), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	done := make(chan struct{})
	go func() {
		e.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("turns did not finish")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, err := range e.turnErr {
		t.Errorf("turn error: %v", err)
	}
}

// testLogger logs to t until the test ends.
func testLogger(t *testing.T) *slog.Logger {
	w := &tlog{t: t}
	t.Cleanup(w.stop) // registered first: runs after everything else
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tlog struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
}

func (w *tlog) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *tlog) stop() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}

// env is one adapter running against one fake Discord.
type env struct {
	t   *testing.T
	srv *discordtest.Server
	a   *Adapter
	eng Engine

	mu      sync.Mutex
	handled map[string]bool // ids of messages the workers dealt with
}

type envOpts struct {
	fake   discordtest.Options
	config func(*Config)
	quiet  bool // discard logs
	noWait bool // do not wait for READY and command registration
}

// start runs an adapter against a new fake Discord; both stop at cleanup
// (the adapter first).
func start(t *testing.T, eng Engine, o envOpts) *env {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if !o.quiet {
		logger = testLogger(t)
	}
	// Tests run Discord's per-channel budget (5 writes per 5 s) five times
	// faster: 5 per second, at the fake and in the adapter.
	if o.fake.WriteWindow == 0 {
		o.fake.WriteWindow = time.Second
	}
	srv := discordtest.NewTest(t, o.fake)
	cfg := DefaultConfig()
	cfg.Token = srv.Token()
	cfg.APIURL = srv.APIURL()
	cfg.Logger = logger
	cfg.EditWindow = time.Second
	if o.config != nil {
		o.config(&cfg)
	}
	a, err := New(cfg, eng)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e := &env{t: t, srv: srv, a: a, eng: eng, handled: map[string]bool{}}
	a.afterMessage = e.noteHandled
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("Run did not return")
		}
	})
	if !o.noWait {
		e.waitFor("adapter ready with commands registered", func() bool {
			return a.Ready() && len(srv.CallsTo("PUT", "/commands")) > 0
		})
	}
	return e
}

func (e *env) noteHandled(id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.handled[id] = true
}

func (e *env) wasHandled(id string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.handled[id]
}

// barrier returns when everything dispatched to the adapter so far in the
// given channels has been dealt with and the engine has no turn running:
// then anything that was going to be answered (twice) has been. It sends a
// blank message (as Discord delivers them without the message content
// intent) to each channel behind the events under test, on the same ordered
// path (gateway, then the channel's worker), and waits until the adapter has
// dealt with it.
func (e *env) barrier(channels ...string) {
	e.t.Helper()
	for _, ch := range channels {
		m := e.srv.UserMessage(discordtest.Post{ChannelID: ch})
		e.waitFor("barrier in "+ch, func() bool { return e.wasHandled(m.ID) })
	}
	if eng, ok := e.eng.(interface{ InFlight() int }); ok {
		e.waitFor("engine idle", func() bool { return eng.InFlight() == 0 })
	}
}

func (e *env) waitFor(what string, cond func() bool) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := e.srv.WaitUntil(ctx, cond); err != nil {
		e.t.Fatalf("waiting for %s: %v", what, err)
	}
}

// checkAllowedMentions fails unless every message post and edit carries
// allowed_mentions with an empty parse list.
func checkAllowedMentions(t *testing.T, srv *discordtest.Server) {
	t.Helper()
	n := 0
	for _, c := range srv.Calls() {
		isMsgWrite := (c.Method == "POST" || c.Method == "PATCH") && strings.Contains(c.Path, "/messages") && !strings.HasSuffix(c.Path, "/threads")
		isWebhook := strings.HasPrefix(c.Path, "/webhooks/") && c.Method != "DELETE"
		isCallback := strings.HasSuffix(c.Path, "/callback")
		if !isMsgWrite && !isWebhook && !isCallback {
			continue
		}
		var body struct {
			Type            int             `json:"type"`
			AllowedMentions json.RawMessage `json:"allowed_mentions"`
			Data            struct {
				AllowedMentions json.RawMessage `json:"allowed_mentions"`
			} `json:"data"`
		}
		if err := json.Unmarshal(c.Payload, &body); err != nil {
			t.Errorf("%s %s: payload %q: %v", c.Method, c.Path, c.Payload, err)
			continue
		}
		am := body.AllowedMentions
		if isCallback {
			if body.Type != 4 {
				continue // deferred and autocomplete answers carry no content
			}
			am = body.Data.AllowedMentions
		}
		if err := noParse(am); err != nil {
			t.Errorf("%s %s: %v (body %s)", c.Method, c.Path, err, c.Body)
		}
		n++
	}
	if n == 0 {
		t.Error("no message writes to check")
	}
}

func noParse(raw json.RawMessage) error {
	if len(raw) == 0 {
		return errors.New("allowed_mentions missing")
	}
	var am struct {
		Parse       *[]string `json:"parse"`
		Users       []string  `json:"users"`
		Roles       []string  `json:"roles"`
		RepliedUser bool      `json:"replied_user"`
	}
	if err := json.Unmarshal(raw, &am); err != nil {
		return err
	}
	if am.Parse == nil || len(*am.Parse) != 0 || len(am.Users) != 0 || len(am.Roles) != 0 || am.RepliedUser {
		return fmt.Errorf("allowed_mentions %s allows pings", raw)
	}
	return nil
}

func mention(id string) string { return "<@" + id + ">" }

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
