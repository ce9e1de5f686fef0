package bot

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"

	"github.com/cometbot/cometbot/storage"
)

// A turn's life: accepted (durable as pending, with the incoming message) →
// streaming (the reply's platform reference is kept with the pending turn)
// → delivered (stored only after the platform accepted the final text) |
// failed | interrupted. A process that dies leaves its turns pending; the
// next one resumes them (ResumePending).

// Resumable is implemented by replies that can be found again after a
// restart.
type Resumable interface {
	// OnRef registers fn, called with the platform reference of the reply's
	// first message once it exists (at once if it already does). The
	// reference is opaque to the engine; the adapter's Resumer reads it.
	OnRef(fn func(ref string))
}

// Resumer is implemented by adapters that can continue replies a previous
// process left unfinished.
type Resumer interface {
	// ResumeOutput returns an Output for m whose reply continues in the
	// message ref: its Start edits that message instead of posting a new
	// one. With ref "" it posts as usual.
	ResumeOutput(m Message, ref string) Output
}

// resumeInterrupted is what a reply left unfinished by a dead process says
// when it is too old to answer again.
const resumeInterrupted = "⚠️ Interrupted — the bot restarted before this answer was finished. Please ask again."

// restartingMessage is what a reply cut by a shutdown says when it will be
// finished in place after the restart.
const restartingMessage = "⚠️ Interrupted — the bot is restarting. This answer will continue here when it is back."

// pendingMessage is the stored form of an incoming message: everything but
// the attachments' download functions and bytes.
type pendingMessage struct {
	Message
	// Files names the attachments the message carried; they are not
	// downloaded again after a restart.
	Files []string `json:"files,omitempty"`
}

func encodeMessage(m Message) (json.RawMessage, error) {
	pm := pendingMessage{Message: m}
	for _, a := range collectAttachments(m) {
		pm.Files = append(pm.Files, a.Name)
	}
	pm.Attachments = nil
	pm.Forwards = make([]Forward, len(m.Forwards))
	for i, f := range m.Forwards {
		pm.Forwards[i] = Forward{Author: f.Author, Text: f.Text}
	}
	return json.Marshal(pm)
}

func decodeMessage(b []byte) (Message, []string, error) {
	var pm pendingMessage
	if err := json.Unmarshal(b, &pm); err != nil {
		return Message{}, nil, err
	}
	return pm.Message, pm.Files, nil
}

func newTurnID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// turnState is the durable side of one running turn.
type turnState struct {
	e        *Engine
	pending  storage.PendingTurn
	begun    chan struct{} // closed when BeginTurn returned
	beginErr error

	mu  sync.Mutex
	ref string
}

// newTurn prepares the durable side of an accepted job; start writes it.
func (e *Engine) newTurn(j job) *turnState {
	t := &turnState{e: e, begun: make(chan struct{})}
	msg, err := encodeMessage(j.msg)
	now := e.opts.Now()
	t.pending = storage.PendingTurn{ID: newTurnID(), Conv: j.key, Platform: j.msg.Platform, Started: now, Message: msg}
	if j.msg.EventID != "" {
		// The event id becomes durable with the turn: a redelivery after a
		// crash is a duplicate of this pending turn.
		t.pending.EventID, t.pending.SeenUntil = j.msg.EventID, now.Add(e.opts.SeenTTL)
	}
	if err != nil {
		t.beginErr = fmt.Errorf("encode message: %w", err)
	}
	return t
}

// start makes the turn durable in the background (no fsync in front of the
// model request); the reply's progress indicator and delivery wait for it.
// e.mu must not be held.
func (t *turnState) start() {
	if t.beginErr != nil {
		close(t.begun)
		return
	}
	write := func(ctx context.Context) {
		defer close(t.begun)
		t.beginErr = t.e.opts.Store.BeginTurn(context.WithoutCancel(ctx), t.pending)
		t.e.recordWrite(t.beginErr)
		if t.beginErr != nil {
			t.e.log.Error("persist accepted message", "conversation", t.pending.Conv, "err", t.beginErr)
		}
	}
	if !t.e.background(write) {
		write(t.e.runCtx)
	}
}

// resumed returns the durable state of a turn a previous process began.
func (e *Engine) resumed(p storage.PendingTurn) *turnState {
	t := &turnState{e: e, pending: p, begun: make(chan struct{}), ref: p.Ref}
	close(t.begun)
	return t
}

func (t *turnState) waitBegun() error {
	<-t.begun
	return t.beginErr
}

// track keeps the reply's platform reference with the pending turn, as soon
// as the adapter reports it.
func (t *turnState) track(r Reply) {
	rs, ok := r.(Resumable)
	if !ok {
		return
	}
	rs.OnRef(func(ref string) {
		t.mu.Lock()
		same := ref == t.ref || ref == ""
		t.ref = ref
		t.mu.Unlock()
		if same {
			return
		}
		write := func(ctx context.Context) {
			_ = t.waitBegun()
			if err := t.e.opts.Store.SetPendingRef(context.WithoutCancel(ctx), t.pending.ID, ref); err != nil {
				t.e.log.Error("persist reply reference", "err", err)
			}
		}
		if !t.e.background(write) {
			write(t.e.runCtx)
		}
	})
}

// hasRef reports whether the reply has a message a restart can continue.
func (t *turnState) hasRef() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.ref != ""
}

// end stores the turn's records and usage and takes it off the pending list.
func (t *turnState) end(ctx context.Context, log *slog.Logger, gen uint64, usage *storage.UsageEntry, recs ...storage.Record) error {
	if err := t.waitBegun(); err != nil {
		log.Warn("turn was not durable while it ran", "err", err)
	}
	err := t.e.opts.Store.EndTurn(ctx, t.pending, gen, usage, recs...)
	t.e.recordWrite(err)
	if err != nil {
		log.Error("persist turn", "err", err)
		t.e.recordError(ErrKindStore)
	}
	return err
}

// ResumePending finishes the turns a previous process left pending on
// platform: turns younger than Options.ResumeWindow are answered again into
// their existing message (r edits it; never a second post), older ones are
// edited to say they were interrupted. With r nil (a platform whose replies
// cannot be found again, like the terminal) they are closed as interrupted
// without a message. Call it once per platform after the adapter connected.
func (e *Engine) ResumePending(ctx context.Context, platform string, r Resumer) (resumed, interrupted int, err error) {
	ps, err := e.opts.Store.PendingTurns(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("bot: %w", err)
	}
	now := e.opts.Now()
	for _, p := range ps {
		if p.Platform != platform || !e.claim(p.ID) {
			continue
		}
		m, files, derr := decodeMessage(p.Message)
		log := e.log.With("conversation", p.Conv, "turn", p.ID)
		if derr != nil {
			log.Error("undecodable pending turn; dropping it", "err", derr)
			_ = e.opts.Store.EndTurn(ctx, p, 0, nil)
			continue
		}
		t := e.resumed(p)
		if r != nil && now.Sub(p.Started) < e.opts.ResumeWindow {
			j := job{msg: m, out: r.ResumeOutput(m, p.Ref), key: p.Conv, queued: now, turn: t}
			if len(files) > 0 {
				j.note = fmt.Sprintf("📎 I restarted while answering, so I couldn't read %s again — please send %s once more if it matters.", nameList(files), pluralIt(len(files)))
			}
			if err := e.enqueue(j); err != nil {
				return resumed, interrupted, err
			}
			resumed++
			continue
		}
		interrupted++
		rec := storage.Record{Role: "user", Text: userContent(m.Text, m.Forwards, nil), Author: m.Author.ID, AuthorName: m.Author.Name, MessageID: m.ID, Time: m.Time, Status: storage.StatusCancelled}
		asst := storage.Record{Role: "assistant", Time: now, Status: storage.StatusCancelled, Error: "interrupted by a restart"}
		var out Output
		if r != nil {
			out = r.ResumeOutput(m, p.Ref)
		}
		closeTurn := func(ctx context.Context) {
			if out != nil {
				e.refuse(ctx, out, resumeInterrupted)
			}
			gen := e.historyGen(ctx, p.Conv)
			_ = t.end(context.WithoutCancel(ctx), log, gen, nil, rec, asst)
		}
		if !e.background(closeTurn) {
			return resumed, interrupted, ErrShuttingDown
		}
	}
	return resumed, interrupted, nil
}

// historyGen returns the conversation's current generation (0 when it
// cannot be read: the records then land in the first generation).
func (e *Engine) historyGen(ctx context.Context, key string) uint64 {
	gen, _, _ := e.opts.Store.History(ctx, key, 0)
	return gen
}

// claim marks a pending turn as being resumed by this process (once).
func (e *Engine) claim(id string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.resuming == nil {
		e.resuming = make(map[string]struct{})
	}
	if _, ok := e.resuming[id]; ok {
		return false
	}
	e.resuming[id] = struct{}{}
	return true
}

func pluralIt(n int) string {
	if n == 1 {
		return "it"
	}
	return "them"
}
