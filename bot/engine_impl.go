package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cometbot/cometbot/internal/fetch"
	"github.com/cometbot/cometbot/llm"
	"github.com/cometbot/cometbot/storage"
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

// Store is the durable state the engine needs; *storage.Store implements it.
type Store interface {
	History(ctx context.Context, key string, limit int) (uint64, []storage.Record, error)
	AppendTurn(ctx context.Context, key string, gen uint64, recs ...storage.Record) error
	CommitTurn(ctx context.Context, key string, gen uint64, usage *storage.UsageEntry, recs ...storage.Record) error
	ConversationExists(ctx context.Context, key string) (bool, error)
	ResetConversation(ctx context.Context, key string) error
	MarkSeen(ctx context.Context, id string, ttl time.Duration) (bool, error)
	Seen(ctx context.Context, id string) (bool, error)
	PruneSeen(ctx context.Context, limit int) (int, error)
	Settings(ctx context.Context, scope string) (storage.Settings, bool, error)
	UpdateSettings(ctx context.Context, scope string, fn func(*storage.Settings)) error
	AddUsage(ctx context.Context, e storage.UsageEntry) error
	Usage(ctx context.Context, period, workspace, kind, id string) (storage.Counter, error)
	TopUsage(ctx context.Context, period, workspace, kind string, n int) ([]storage.NamedCounter, error)
	ForgetUser(ctx context.Context, prefix, user string) (int, error)
	ForgetUsage(ctx context.Context, workspace, user string) (int, error)
	BeginTurn(ctx context.Context, p storage.PendingTurn) error
	SetPendingRef(ctx context.Context, id, ref string) error
	EndTurn(ctx context.Context, p storage.PendingTurn, gen uint64, usage *storage.UsageEntry, recs ...storage.Record) error
	PendingTurns(ctx context.Context) ([]storage.PendingTurn, error)
}

// Model streams one model call; *llm.Client implements it.
type Model interface {
	Stream(ctx context.Context, req llm.Request, onDelta func(llm.Delta) error) (*llm.Response, error)
}

// Defaults are settings that apply unless a narrower scope overrides them.
type Defaults struct {
	Model           string
	SystemPrompt    string
	Temperature     *float64
	MaxOutputTokens int
}

// Options configures an Engine.
type Options struct {
	// Store is required.
	Store Store
	// Model is required.
	Model Model
	// Catalog is optional; without it models are not validated or priced.
	Catalog Catalog
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Defaults apply everywhere unless a workspace, channel or thread overrides them.
	Defaults Defaults
	// Workspaces and Channels are per-id defaults from the config file
	// (keyed by workspace/guild id and channel id).
	Workspaces map[string]Defaults
	Channels   map[string]Defaults
	// MaxConcurrent bounds model calls in flight across all conversations (default 64).
	MaxConcurrent int
	// MaxQueue bounds the turns waiting in one conversation (default 8).
	MaxQueue int
	// HistoryMessages is how many stored messages are loaded per turn (default 100).
	HistoryMessages int
	// ContextTokens is the input budget for system prompt + history + the new
	// message, estimated by EstimateTokens (default 24,000).
	ContextTokens int
	// MentionRequiredInThreads: when true, thread follow-ups need a new mention.
	MentionRequiredInThreads bool
	// SeenTTL is how long processed event ids are remembered (default 24h).
	SeenTTL time.Duration
	// TurnTimeout bounds one turn, model call and delivery included (default 10m).
	TurnTimeout time.Duration
	// DeliveryTimeout bounds delivering the final text (or a failure notice)
	// and persisting the turn, each counted from its start (default 30s).
	DeliveryTimeout time.Duration
	// MaxAnswerChars stops an answer past this many characters (marked cut;
	// default 40,000): a runaway or endless stream cannot grow without bound.
	MaxAnswerChars int
	// ResumeWindow: turns a previous process left pending are answered again
	// when younger than this, else marked interrupted (default 10m).
	ResumeWindow time.Duration
	// InterruptWait is how long Shutdown waits, once its ctx has ended and
	// the turns still running were cancelled, for them to finalize their
	// replies as interrupted (default 15s).
	InterruptWait time.Duration
	// Now is the clock (tests inject one); default time.Now.
	Now func() time.Time
	// Policy holds access control, budgets, rate limits and aliases (optional).
	Policy Policy
	// Tools configures the tool loop (MCP servers, allow-lists, web search).
	Tools ToolOptions
	// Blobs keeps attachment bytes so follow-ups still see them; optional
	// (without it, attachments are read for their own turn only).
	Blobs BlobStore
	// Attachments bounds what is read from attached files.
	Attachments AttachmentOptions
	// Metrics receives turn counts, latencies and usage for monitoring;
	// nil reports nothing.
	Metrics Metrics
}

// Engine is the conversation engine: it orders turns per conversation, runs
// different conversations in parallel, bounds model calls, and persists
// history, settings and usage.
type Engine struct {
	opts Options
	log  *slog.Logger
	sem  chan struct{}
	mx   Metrics // opts.Metrics

	runCtx    context.Context
	cancelRun context.CancelFunc

	mu      sync.Mutex
	closing bool
	queues  map[string]*convQueue
	wg      sync.WaitGroup

	gate        *gate
	stopJanitor chan struct{}

	seenMu      sync.Mutex
	pendingSeen map[string]struct{}

	resuming map[string]struct{}                // pending turns claimed by ResumePending (under mu)
	running  map[string]context.CancelCauseFunc // the running turn's cancel, per conversation (under mu)
	idle     chan struct{}                      // closed when the last queue drains; nil when none is waited for

	health storeHealth // whether turns (and their usage) can be saved

	live   atomic.Pointer[Reconfig] // the reloadable part of opts (Reconfigure swaps it)
	errors errorLog                 // recent failures by kind, for the dashboard
}

// Reconfig is the part of the configuration Reconfigure replaces while the
// engine runs: defaults, access and budget policy, aliases, rate limits and
// the tool policy. The tool source (MCP servers) is kept from Options.
type Reconfig struct {
	Defaults             Defaults
	Workspaces, Channels map[string]Defaults
	Policy               Policy
	Tools                ToolOptions
}

// normalizeReconfig applies the defaults of r and checks it.
func normalizeReconfig(r Reconfig) (Reconfig, error) {
	if r.Tools.MaxRounds <= 0 {
		r.Tools.MaxRounds = 8
	}
	if r.Tools.Timeout <= 0 {
		r.Tools.Timeout = 30 * time.Second
	}
	if r.Tools.MaxResultChars <= 0 {
		r.Tools.MaxResultChars = 16_000
	}
	if len(r.Policy.Aliases) > 0 { // aliases match case-insensitively
		aliases := make(map[string]string, len(r.Policy.Aliases))
		for k, v := range r.Policy.Aliases {
			aliases[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
		}
		r.Policy.Aliases = aliases
	}
	if r.Defaults.Model == "" {
		return r, errors.New("bot: a default model is required")
	}
	return r, nil
}

// conf returns the current reloadable configuration. Callers read it once
// per decision; a turn's model, budget reservation and tool list are fixed
// when the turn starts.
func (e *Engine) conf() *Reconfig { return e.live.Load() }

// Reconfigure replaces the defaults, policy (access, admins, budgets, rate
// limits, aliases) and tool policy for the turns that start from now on.
// Turns in flight finish with what they started with: their reservations
// and settings were taken before. The tool source is kept. Rate limiters
// restart when the rate changes; budget reservations in flight stay counted.
func (e *Engine) Reconfigure(r Reconfig) error {
	r.Tools.Source = e.opts.Tools.Source
	r, err := normalizeReconfig(r)
	if err != nil {
		return err
	}
	e.live.Store(&r)
	e.gate.setPolicy(r.Policy)
	return nil
}

type job struct {
	msg    Message
	out    Output
	key    string
	queued time.Time
	recv   time.Time  // when the engine took the event (monotonic; for metrics)
	turn   *turnState // the durable side; set when the job is accepted
	note   string     // a line for the reply (e.g. files not read again after a restart)
}

type convQueue struct {
	jobs []job
	done chan struct{} // closed when the queue drained and was removed
}

// New builds an engine. Call Shutdown to stop it.
func New(opts Options) (*Engine, error) {
	if opts.Store == nil {
		return nil, errors.New("bot: Options.Store is required")
	}
	if opts.Model == nil {
		return nil, errors.New("bot: Options.Model is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MaxConcurrent <= 0 {
		opts.MaxConcurrent = 64
	}
	if opts.MaxQueue <= 0 {
		opts.MaxQueue = 8
	}
	if opts.HistoryMessages <= 0 {
		opts.HistoryMessages = 100
	}
	if opts.ContextTokens <= 0 {
		opts.ContextTokens = 24000
	}
	if opts.SeenTTL <= 0 {
		opts.SeenTTL = 24 * time.Hour
	}
	if opts.TurnTimeout <= 0 {
		opts.TurnTimeout = 10 * time.Minute
	}
	if opts.DeliveryTimeout <= 0 {
		opts.DeliveryTimeout = 30 * time.Second
	}
	if opts.InterruptWait <= 0 {
		opts.InterruptWait = 15 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxAnswerChars <= 0 {
		opts.MaxAnswerChars = 40_000
	}
	if opts.ResumeWindow <= 0 {
		opts.ResumeWindow = 10 * time.Minute
	}
	if opts.Attachments.MaxFiles <= 0 {
		opts.Attachments.MaxFiles = 10
	}
	if opts.Attachments.MaxBytes <= 0 {
		opts.Attachments.MaxBytes = fetch.DefaultMaxBytes
	}
	if opts.Attachments.ContextBytes <= 0 {
		opts.Attachments.ContextBytes = 20 << 20
	}
	live, err := normalizeReconfig(Reconfig{Defaults: opts.Defaults, Workspaces: opts.Workspaces, Channels: opts.Channels, Policy: opts.Policy, Tools: opts.Tools})
	if err != nil {
		return nil, err
	}
	opts.Policy = live.Policy
	ctx, cancel := context.WithCancel(context.Background())
	e := &Engine{
		opts:      opts,
		log:       opts.Logger,
		mx:        opts.Metrics,
		sem:       make(chan struct{}, opts.MaxConcurrent),
		runCtx:    ctx,
		cancelRun: cancel,
		queues:    make(map[string]*convQueue),

		stopJanitor: make(chan struct{}),
		pendingSeen: make(map[string]struct{}),
	}
	e.live.Store(&live)
	e.gate = newGate(live.Policy, opts.Now)
	e.wg.Add(1)
	go e.janitor()
	return e, nil
}

// janitor prunes expired event ids every few minutes until shutdown.
func (e *Engine) janitor() {
	defer e.wg.Done()
	t := time.NewTicker(5 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-e.stopJanitor:
			return
		case <-t.C:
			if n, err := e.opts.Store.PruneSeen(e.runCtx, 10_000); err != nil {
				e.log.Warn("prune seen events", "err", err)
			} else if n > 0 {
				e.log.Debug("pruned seen events", "n", n)
			}
		}
	}
}

// Shutdown stops taking events, lets in-flight turns finish until ctx ends,
// then cancels the rest (their replies are finalized as interrupted) and
// waits up to Options.InterruptWait for them to wind up. It does not close
// the store.
func (e *Engine) Shutdown(ctx context.Context) error {
	e.mu.Lock()
	if !e.closing {
		e.closing = true
		close(e.stopJanitor)
	}
	e.mu.Unlock()
	done := make(chan struct{})
	go func() { e.wg.Wait(); close(done) }()
	select {
	case <-done:
		e.cancelRun()
		return nil
	case <-ctx.Done():
	}
	e.cancelRun()
	select {
	case <-done:
		return nil
	case <-time.After(e.opts.InterruptWait):
		return errors.New("bot: shutdown: turns still running after cancel")
	}
}

// Quiesce waits until no turn is queued or running (every accepted turn
// delivered and stored), or ctx ends.
func (e *Engine) Quiesce(ctx context.Context) error {
	e.mu.Lock()
	if len(e.queues) == 0 {
		e.mu.Unlock()
		return nil
	}
	if e.idle == nil {
		e.idle = make(chan struct{})
	}
	ch := e.idle
	e.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// errReset cancels a conversation's running turn when /reset empties it.
var errReset = errors.New("bot: conversation reset")

// setRunning records (or, with nil, forgets) the running turn's cancel.
func (e *Engine) setRunning(key string, cancel context.CancelCauseFunc) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if cancel == nil {
		delete(e.running, key)
		return
	}
	if e.running == nil {
		e.running = make(map[string]context.CancelCauseFunc)
	}
	e.running[key] = cancel
}

// cancelRunning stops the conversation's running turn (its model call and
// tools), if any.
func (e *Engine) cancelRunning(key string, cause error) {
	e.mu.Lock()
	cancel := e.running[key]
	e.mu.Unlock()
	if cancel != nil {
		cancel(cause)
	}
}

// quiesceConversation waits until the conversation has no queued or running turn.
func (e *Engine) quiesceConversation(ctx context.Context, key string) error {
	e.mu.Lock()
	q := e.queues[key]
	e.mu.Unlock()
	if q == nil {
		return nil
	}
	select {
	case <-q.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// InFlight returns the number of conversations with queued or running turns.
func (e *Engine) InFlight() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.queues)
}

// HandleMessage takes one incoming message. It returns at once: the turn is
// queued behind earlier turns of the same conversation and runs in the
// background, streaming its reply to out. A nil error means a reply is on
// its way; ErrIgnored, ErrDuplicate and ErrShuttingDown mean no reply.
func (e *Engine) HandleMessage(ctx context.Context, m Message, out Output) error {
	recv := time.Now()
	if e.isClosing() {
		return ErrShuttingDown
	}
	if m.Author.IsSelf || m.Author.IsBot {
		return ErrIgnored
	}
	if strings.TrimSpace(m.Text) == "" && len(m.Attachments) == 0 && len(m.Forwards) == 0 {
		return ErrIgnored
	}
	key := m.Scope().ConversationKey()
	if ok, err := e.Addressed(ctx, m); err != nil {
		return err
	} else if !ok {
		return ErrIgnored
	}
	if m.EventID != "" {
		first, err := e.firstSighting(ctx, m.EventID)
		if err != nil {
			return fmt.Errorf("bot: %w", err)
		}
		if !first {
			return ErrDuplicate
		}
	}
	if m.Time.IsZero() {
		m.Time = e.opts.Now()
	}
	if refusal := e.gate.admit(ctx, e, m); refusal != "" {
		if refusal == silent {
			return ErrIgnored
		}
		if !e.background(func(ctx context.Context) {
			e.refuse(ctx, out, refusal)
			e.turnDone(m.Platform, outcomeRefused, recv)
		}) {
			return ErrShuttingDown
		}
		return nil
	}
	return e.enqueue(job{msg: m, out: out, key: key, queued: e.opts.Now(), recv: recv})
}

// Addressed reports whether m is addressed to the bot: a direct message, a
// mention, a reply to the bot, or (unless mentions are required in threads)
// a message in a thread the bot takes part in. It is the addressing rule
// HandleMessage applies; adapters ask it before costly work on a message
// (resolving its mentions), after their own cheap checks.
func (e *Engine) Addressed(ctx context.Context, m Message) (bool, error) {
	if m.DM || m.Mentioned || m.ContinuesBot {
		return true, nil
	}
	if m.Thread == "" || e.opts.MentionRequiredInThreads {
		return false, nil
	}
	// A thread whose first turn is still running counts as the bot's.
	key := m.Scope().ConversationKey()
	if e.active(key) {
		return true, nil
	}
	ok, err := e.opts.Store.ConversationExists(ctx, key)
	if err != nil {
		return false, fmt.Errorf("bot: %w", err)
	}
	return ok, nil
}

// active reports whether the conversation has queued or running turns.
func (e *Engine) active(key string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.queues[key] != nil
}

func (e *Engine) isClosing() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.closing
}

// background runs fn in a goroutine owned by the engine. It returns false
// (and runs nothing) once shutdown has begun.
func (e *Engine) background(fn func(ctx context.Context)) bool {
	e.mu.Lock()
	if e.closing {
		e.mu.Unlock()
		return false
	}
	e.wg.Add(1)
	e.mu.Unlock()
	go func() {
		defer e.wg.Done()
		fn(e.runCtx)
	}()
	return true
}

// firstSighting reports whether event id is new. The check is in memory
// plus a read of the store; the id is made durable in the background
// (batched with other writes), so a redelivery is caught both while the
// write is pending and after a restart, without an fsync on the event path.
func (e *Engine) firstSighting(ctx context.Context, id string) (bool, error) {
	e.seenMu.Lock()
	if _, ok := e.pendingSeen[id]; ok {
		e.seenMu.Unlock()
		return false, nil
	}
	e.pendingSeen[id] = struct{}{}
	e.seenMu.Unlock()
	forget := func() {
		e.seenMu.Lock()
		delete(e.pendingSeen, id)
		e.seenMu.Unlock()
	}
	seen, err := e.opts.Store.Seen(ctx, id)
	if err != nil || seen {
		forget()
		return false, err
	}
	persist := func(ctx context.Context) {
		defer forget()
		if _, err := e.opts.Store.MarkSeen(context.WithoutCancel(ctx), id, e.opts.SeenTTL); err != nil {
			e.log.Error("persist event id", "event", id, "err", err)
		}
	}
	if !e.background(persist) {
		persist(ctx) // shutting down: write it now
	}
	return true, nil
}

func (e *Engine) enqueue(j job) error {
	e.mu.Lock()
	if e.closing {
		e.mu.Unlock()
		return ErrShuttingDown
	}
	q := e.queues[j.key]
	if q != nil && len(q.jobs) >= e.opts.MaxQueue {
		e.mu.Unlock()
		e.background(func(ctx context.Context) {
			e.refuse(ctx, j.out, "⏳ I'm still answering earlier messages here — please wait for those replies and ask again.")
			e.turnDone(j.msg.Platform, outcomeRefused, j.recv)
		})
		return nil
	}
	start := q == nil
	if start {
		q = &convQueue{done: make(chan struct{})}
		e.queues[j.key] = q
	}
	fresh := j.turn == nil
	if fresh {
		j.turn = e.newTurn(j)
	}
	if j.recv.IsZero() {
		j.recv = time.Now()
	}
	q.jobs = append(q.jobs, j)
	if e.mx != nil {
		e.mx.TurnQueued(1)
	}
	if start {
		e.wg.Add(1)
	}
	e.mu.Unlock()
	if fresh {
		j.turn.start()
		// Accepted means durable: the adapter acknowledges the event once
		// this returns, so a crash after the acknowledgement cannot lose
		// the message. (The model call does not wait for this write.)
		_ = j.turn.waitBegun()
	}
	if start {
		go e.drain(j.key, q)
	}
	return nil
}

// drain runs the queued turns of one conversation in order, then exits.
func (e *Engine) drain(key string, q *convQueue) {
	defer e.wg.Done()
	for {
		e.mu.Lock()
		if len(q.jobs) == 0 {
			delete(e.queues, key)
			close(q.done)
			if len(e.queues) == 0 && e.idle != nil {
				close(e.idle)
				e.idle = nil
			}
			e.mu.Unlock()
			return
		}
		j := q.jobs[0]
		q.jobs[0] = job{}
		q.jobs = q.jobs[1:]
		e.mu.Unlock()
		if e.mx != nil {
			e.mx.TurnQueued(-1)
		}
		e.runTurn(j)
	}
}

// refuse answers a message with a short notice instead of a model call.
func (e *Engine) refuse(ctx context.Context, out Output, text string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	r, err := out.Start(ctx)
	if err != nil {
		e.log.Warn("start reply failed", "err", err)
		return
	}
	if err := r.Fail(ctx, text); err != nil {
		e.log.Warn("send notice failed", "err", err)
	}
}

// interruptedMessage is what a reply says when shutdown cut it short.
const interruptedMessage = "⚠️ Interrupted — the bot is restarting. Please ask again in a moment."

// turnDone reports a finished turn to Metrics.
func (e *Engine) turnDone(platform, outcome string, recv time.Time) {
	if e.mx != nil {
		e.mx.TurnDone(platform, outcome, time.Since(recv))
	}
}

func (e *Engine) runTurn(j job) {
	outcome := outcomeInterrupted // a turn left pending for the next process
	if e.mx != nil {
		e.mx.TurnRunning(1)
		defer func() {
			e.mx.TurnRunning(-1)
			e.turnDone(j.msg.Platform, outcome, j.recv)
		}()
	}
	tctx, cancel := context.WithTimeout(e.runCtx, e.opts.TurnTimeout)
	defer cancel()
	ctx, stop := context.WithCancelCause(tctx)
	defer stop(nil)
	e.setRunning(j.key, stop)
	defer e.setRunning(j.key, nil)
	m, t := j.msg, j.turn
	log := e.log.With("conversation", j.key, "event", m.EventID)
	// final gives delivery and persistence their own DeliveryTimeout, from
	// the moment they start, and outlives a shutdown cancel so a reply is
	// still finalized.
	final := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.WithoutCancel(ctx), e.opts.DeliveryTimeout)
	}
	userRec := storage.Record{Role: "user", Text: userContent(m.Text, m.Forwards, nil), Author: m.Author.ID, AuthorName: m.Author.Name, MessageID: m.ID, Time: m.Time}
	asst := storage.Record{Role: "assistant"}
	var gen uint64
	// endAs stores the turn with the given outcome (user and assistant
	// records, usage when not nil) and takes it off the pending list.
	endAs := func(status, reason string, usage *storage.UsageEntry) {
		if outcome != outcomeRefused {
			outcome = outcomeOf(status)
		}
		userRec.Status, asst.Status = status, status
		if reason != "" {
			asst.Error = reason
		}
		if asst.Time.IsZero() {
			asst.Time = e.opts.Now()
		}
		pctx, cancel := final()
		defer cancel()
		_ = t.end(pctx, log, gen, usage, userRec, asst)
	}

	if e.runCtx.Err() != nil { // shutdown overtook this queued turn
		e.interrupt(j, log)
		return
	}

	// The adapter shows progress (a platform round trip) while the engine
	// loads history and calls the model: neither waits for the other.
	st := startReply(ctx, j.out, t)
	st.since = j.recv
	defer st.wait()
	fail := func(msg string) {
		if reply, ok := st.get(); ok {
			fctx, cancel := final()
			defer cancel()
			if err := reply.Fail(fctx, msg); err != nil {
				log.Warn("deliver failure notice", "err", err)
			}
		}
	}
	failTurn := func(msg, reason string) {
		fail(msg)
		endAs(storage.StatusFailed, reason, nil)
	}

	gen, hist, err := e.opts.Store.History(ctx, j.key, e.opts.HistoryMessages)
	if err != nil {
		log.Error("load history failed", "err", err)
		e.recordError(ErrKindStore)
		failTurn("⚠️ I couldn't read this conversation's history. Please try again.", "history: "+err.Error())
		return
	}
	set, err := e.resolve(ctx, m.Scope(), hist)
	if err != nil {
		log.Error("resolve settings failed", "err", err)
		e.recordError(ErrKindStore)
		failTurn("⚠️ I couldn't read this channel's settings. Please try again.", "settings: "+err.Error())
		return
	}
	asst.Model = set.Model
	release, refusal, err := e.reserveBudget(ctx, m, set.Model)
	if err != nil {
		log.Error("check budget failed", "err", err)
		e.recordError(ErrKindStore)
		failTurn("⚠️ I couldn't check the spending budget. Please try again.", "budget: "+err.Error())
		return
	}
	if refusal != "" {
		outcome = outcomeRefused
		failTurn(refusal, "refused: "+refusal)
		return
	}
	var replyCost float64
	defer func() { release(replyCost) }()

	// Attachments: download, classify and check against the model, then keep
	// their bytes (in the background, before the turn is stored).
	att := e.readAttachments(ctx, m, set.Model)
	stored := e.storeBlobs(ctx, j.key, att.files)
	req := llm.Request{
		Model:           set.Model,
		System:          set.SystemPrompt,
		Temperature:     set.Temperature,
		MaxOutputTokens: set.MaxOutputTokens,
		MaxAnswerChars:  e.opts.MaxAnswerChars,
	}
	req.Messages = e.buildRequestMessages(ctx, log, j.key, set.SystemPrompt, hist, m, att.files)
	notes := strings.Join(att.notes, "\n")
	if j.note != "" {
		notes = strings.TrimSpace(j.note + "\n" + notes)
	}
	last := req.Messages[len(req.Messages)-1]
	if strings.TrimSpace(last.Content) == "" && len(last.Images) == 0 && len(last.Files) == 0 {
		// Nothing the model could read (every file was skipped): explain,
		// never send an empty user turn.
		userRec.Attachments = stored.wait()
		if notes == "" {
			notes = "📎 There was nothing I could read in that message."
		}
		if reply, ok := st.get(); ok {
			fctx, cancel := final()
			defer cancel()
			if err := reply.Finish(fctx, notes); err != nil {
				log.Warn("deliver notes", "err", err)
			}
		}
		endAs(storage.StatusFailed, "nothing readable", nil)
		return
	}

	tools, search := e.toolsFor(m.Scope(), m.Author.Roles, set)
	req.WebSearch = search
	tr, err := e.converse(ctx, log, req, tools, st)
	resp, streamed := tr.resp, tr.streamed
	asst.Steps = tr.steps
	if len(tr.notes) > 0 {
		notes = strings.TrimSpace(strings.Join(tr.notes, "\n") + "\n" + notes)
	}
	asst.Time = e.opts.Now()
	if err == nil && resp.Text == "" && len(resp.Images) == 0 {
		err = errEmptyAnswer
	}
	if _, ok := st.get(); !ok {
		log.Warn("start reply failed; the answer cannot be delivered", "err", st.err)
		if err == nil {
			err = fmt.Errorf("bot: start reply: %w", st.err)
		}
	}
	userRec.Attachments = stored.wait()
	if err != nil {
		if e.runCtx.Err() != nil {
			if reply, ok := st.get(); ok {
				if _, resumable := reply.(Resumable); resumable {
					// Shutdown: the notice goes into the reply's message
					// (posting it makes one when nothing was shown yet), and
					// the turn stays pending: the next process finishes it in
					// that very message.
					fail(restartingMessage)
					if t.hasRef() {
						log.Info("turn interrupted by shutdown; it will resume after the restart")
						return
					}
					asst.Text = streamed
					endAs(storage.StatusCancelled, err.Error(), nil)
					return
				}
			}
		}
		status, userMsg := storage.StatusFailed, userMessage(err)
		switch {
		case e.runCtx.Err() != nil:
			status, userMsg = storage.StatusCancelled, interruptedMessage
		case errors.Is(context.Cause(ctx), errReset):
			status, userMsg = storage.StatusCancelled, "🔄 Stopped: the conversation was reset."
		}
		asst.Text = streamed
		var usage *storage.UsageEntry
		if resp != nil && resp.Usage.Total() > 0 { // the gateway counted a cut answer
			cost := e.cost(set.Model, resp.Usage)
			replyCost = cost
			usage = e.usageEntry(m, set.Model, resp.Usage, cost)
			if e.mx != nil {
				e.mx.Usage(set.Model, resp.Usage.InputTokens, resp.Usage.OutputTokens, cost)
			}
		}
		log.Warn("turn failed", "model", set.Model, "err", err)
		if status == storage.StatusFailed {
			e.recordError(errorKind(err))
		}
		if notes != "" {
			userMsg += "\n" + notes
		}
		fail(userMsg)
		endAs(status, err.Error(), usage)
		return
	}
	cost := e.cost(set.Model, resp.Usage)
	replyCost = cost
	if e.mx != nil {
		e.mx.Usage(set.Model, resp.Usage.InputTokens, resp.Usage.OutputTokens, cost)
	}
	if src := sourcesLine(resp.Citations); src != "" {
		resp.Text = strings.TrimRight(resp.Text, "\n") + "\n\n" + src
	}
	asst.Text = resp.Text
	asst.InputTokens, asst.OutputTokens, asst.Cost = resp.Usage.InputTokens, resp.Usage.OutputTokens, cost
	text := resp.Text
	if len(tr.used) > 0 {
		notes = strings.TrimSpace(notes + "\n🔧 Used " + strings.Join(tr.used, ", "))
	}
	reply, _ := st.get()
	genImgs := e.generatedImages(ctx, log, j.key, resp.Images, reply)
	asst.Attachments = genImgs.refs
	if genImgs.note != "" {
		notes = strings.TrimSpace(notes + "\n" + genImgs.note)
	}
	if text == "" { // images only
		text = "🖼️"
	}
	switch {
	case resp.Cut():
		notes = strings.TrimSpace(fmt.Sprintf("✂️ I stopped this answer at %d characters, the limit for one reply.", e.opts.MaxAnswerChars) + "\n" + notes)
		asst.Error = "cut at max_answer_chars"
	case resp.Truncated():
		notes = strings.TrimSpace("✂️ Cut at the model's output limit — ask me to continue, or raise max_output_tokens." + "\n" + notes)
		asst.Error = "cut at the model's output limit"
	}
	if notes != "" {
		text += "\n\n" + notes
	}
	if e.conf().Policy.UsageFooter {
		text += "\n\n" + footer(set.Model, resp.Usage, cost, e.priced(set.Model))
	}
	// The turn is stored as delivered only once the platform accepted the
	// final text; a crash before that leaves it pending, to be finished in
	// place by the next process.
	fctx, fcancel := final()
	defer fcancel()
	// A turn the store could not save will not be remembered: say so.
	_ = t.waitBegun() // the accepted message's write has settled (its outcome is in e.health)
	text += e.storeNote()
	status, reason := storage.StatusOK, ""
	e.firstVisible(st) // an answer that did not stream shows now
	if err := reply.Finish(fctx, text); err != nil {
		log.Warn("deliver reply", "err", err)
		e.recordError(ErrKindDelivery)
		status, reason = storage.StatusFailed, "delivery: "+err.Error()
	}
	// Images go under the answer, once its text is final (a reply is not
	// safe to upload to while it still streams). One that cannot be posted
	// is said in a short message of its own.
	if len(genImgs.files) > 0 && status == storage.StatusOK {
		if err := reply.(FileUploader).Upload(fctx, genImgs.files); err != nil {
			log.Warn("upload generated images", "err", err)
			e.refuse(fctx, j.out, uploadNote(err))
		}
	}
	endAs(status, reason, e.usageEntry(m, set.Model, resp.Usage, cost))
	log.Debug("turn done", "model", set.Model, "in", resp.Usage.InputTokens, "out", resp.Usage.OutputTokens, "took", e.opts.Now().Sub(j.queued))
}

// uploadNote explains a generated image that could not be posted.
func uploadNote(err error) string {
	if errors.Is(err, ErrFileTooLarge) {
		return "🖼️ The image the model made is larger than this platform accepts, so I couldn't post it."
	}
	var fixer interface{ Fix() string }
	if errors.As(err, &fixer) {
		return "🖼️ I couldn't post the image the model made — " + fixer.Fix() + "."
	}
	return "🖼️ I couldn't post the image the model made."
}

// interrupt answers a queued turn that shutdown overtook. Where the reply
// can be found again, the turn stays pending and the next process answers
// it in that message; elsewhere it is stored as interrupted.
func (e *Engine) interrupt(j job, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(e.runCtx), e.opts.DeliveryTimeout)
	defer cancel()
	r, err := j.out.Start(ctx)
	if err != nil {
		log.Warn("start reply failed", "err", err)
		return
	}
	_, resumable := r.(Resumable)
	if resumable {
		j.turn.track(r)
	}
	msg := interruptedMessage
	if resumable {
		msg = restartingMessage
	}
	if err := r.Fail(ctx, msg); err != nil {
		log.Warn("send notice failed", "err", err)
	}
	if resumable && j.turn.hasRef() {
		return
	}
	m := j.msg
	now := e.opts.Now()
	gen := e.historyGen(ctx, j.key)
	_ = j.turn.end(ctx, log, gen, nil,
		storage.Record{Role: "user", Text: userContent(m.Text, m.Forwards, nil), Author: m.Author.ID, AuthorName: m.Author.Name, MessageID: m.ID, Time: m.Time, Status: storage.StatusCancelled},
		storage.Record{Role: "assistant", Time: now, Status: storage.StatusCancelled, Error: "interrupted by shutdown"})
}

// pendingStart is an Output.Start running concurrently with the turn.
type pendingStart struct {
	done  chan struct{}
	reply Reply
	err   error
	// since is when the engine took the event; shown is set once answer
	// text was handed to the reply (both for Metrics.FirstVisible; only
	// the turn's goroutine uses them).
	since time.Time
	shown bool
}

func startReply(ctx context.Context, out Output, t *turnState) *pendingStart {
	p := &pendingStart{done: make(chan struct{})}
	go func() {
		defer close(p.done)
		if t != nil {
			// Nothing of the reply shows before the accepted message is
			// durable: a crash never leaves a placeholder or status for a
			// message the next process does not know. (A failed write does
			// not stop the answer.)
			_ = t.waitBegun()
		}
		p.reply, p.err = out.Start(ctx)
		if p.err == nil && p.reply == nil {
			p.err = errors.New("adapter returned no reply")
		}
		if p.err == nil && t != nil {
			t.track(p.reply)
		}
	}()
	return p
}

// get waits for Start and returns the reply, or false if Start failed.
func (p *pendingStart) get() (Reply, bool) {
	<-p.done
	return p.reply, p.err == nil
}

func (p *pendingStart) wait() { <-p.done }

var errEmptyAnswer = errors.New("bot: the model returned an empty answer")

// callModel runs the model call under the concurrency bound, streaming text
// to the reply once it has started. It returns the text that streamed, for
// failed turns.
func (e *Engine) callModel(ctx context.Context, req llm.Request, st *pendingStart, onToolCall func(*llm.ToolCall)) (*llm.Response, string, error) {
	select {
	case e.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, "", ctx.Err()
	}
	defer func() { <-e.sem }()
	var streamed []byte
	var began time.Time
	if e.mx != nil {
		began = time.Now()
	}
	resp, err := e.opts.Model.Stream(ctx, req, func(d llm.Delta) error {
		if d.ToolCall != nil && onToolCall != nil {
			onToolCall(d.ToolCall)
		}
		if d.Text == "" {
			return nil
		}
		if e.mx != nil && len(streamed) == 0 {
			e.mx.FirstToken(time.Since(began))
		}
		reply, ok := st.get()
		if !ok {
			return fmt.Errorf("bot: start reply: %w", st.err)
		}
		streamed = append(streamed, d.Text...)
		e.firstVisible(st)
		if err := reply.Append(ctx, d.Text); err != nil {
			e.log.Debug("append to reply", "err", err)
		}
		return nil
	})
	return resp, string(streamed), err
}

// userMessage turns an error into one short sentence for the user.
func userMessage(err error) string {
	switch {
	case errors.Is(err, errEmptyAnswer):
		return "🤔 The model returned an empty answer. Try again, or pick another model with /model."
	case errors.Is(err, context.DeadlineExceeded):
		return "⏱️ The model took too long to answer. Please try again."
	case errors.Is(err, llm.ErrIncomplete):
		return "⚠️ The answer was cut off before the model finished, so it is incomplete. Please ask again."
	case errors.Is(err, llm.ErrAttachment):
		return "📎 This model can't read the attached image or file. `/model list vision` shows models that can."
	}
	return "⚠️ " + llm.UserMessage(err)
}
