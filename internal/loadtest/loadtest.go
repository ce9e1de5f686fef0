// Package loadtest drives the real cometbot binary end to end, on loopback
// only: it builds (or takes) the binary, starts the fake gateway
// (llm/llmtest) and the fake Slack (adapters/slack/slacktest) behind two
// timing taps, runs the bot against them, has N concurrent conversations
// talk to it for a bounded time through Socket Mode envelopes, and reports
// throughput, the latency the bot adds, platform calls and 429s, memory and
// CPU of the bot process, and how many replies arrived complete.
//
// Every user message carries a tag "[lt c<conv> t<turn>]"; the fake model
// echoes the message ("echo: …"), so both taps can tell which turn a model
// call or a Slack call belongs to, and the final reply can be checked word
// for word.
//
// The "terminal" platform runs `cometbot chat` instead (one conversation,
// stdin/stdout), which needs no Slack adapter.
package loadtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cometbot/cometbot/adapters/slack/slacktest"
	"github.com/cometbot/cometbot/llm/llmtest"
)

// Config describes one load run. Zero values get the defaults noted.
type Config struct {
	// Binary is a built cometbot; "" builds ./cmd/cometbot of ModuleDir
	// (default: the module around the working directory) into a temp dir.
	Binary    string
	ModuleDir string
	// BuildFlags are extra `go build` flags, e.g. "-race" (a race-enabled
	// bot reports data races, which Check counts as failures).
	BuildFlags []string
	// Platform is "slack" (default: Socket Mode against the fake Slack) or
	// "terminal" (`cometbot chat` over stdin/stdout; one conversation).
	Platform string
	// Conversations is the number of concurrent conversations (default 10).
	Conversations int
	// Duration bounds the time new messages are sent (default 10s).
	Duration time.Duration
	// Turns caps the turns of each conversation (0 = as many as fit).
	Turns int
	// Think is the mean pause between a reply and the conversation's next
	// message (each pause is random in 0.5–1.5 × Think).
	Think time.Duration
	// Ramp spreads the conversations' first messages over this long
	// (default 1s), so they do not arrive as one synchronized wave.
	Ramp time.Duration
	// TTFT is the fake model's time to first token; TokensPerSecond paces
	// its stream (0 = as fast as possible); ChunkWords is words per chunk.
	TTFT            time.Duration
	TokensPerSecond float64
	ChunkWords      int
	// PromptWords is the length of each user message in words (default 12);
	// the model's answer is "echo: " plus the message.
	PromptWords int
	// SlackLimits makes the fake Slack enforce Slack's published rate limits
	// (Tier 3 chat.update, Tier 4 streaming, ~1 chat.postMessage per second
	// per channel). Off, the platform never pushes back.
	SlackLimits bool
	// TurnTimeout is how long one reply may take (default 60s); Drain is how
	// long to wait for in-flight replies after Duration (default TurnTimeout).
	TurnTimeout time.Duration
	Drain       time.Duration
	// Prefill stores this many conversations (and the catalog) in the
	// database before the bot starts; PrefillBytes grows it to at least that
	// size. Prefilled databases are cached in the user cache directory.
	Prefill      int
	PrefillBytes int64
	// ColdCache evicts the database file from the page cache before the bot
	// starts (posix_fadvise DONTNEED on that file only), for a cold start.
	ColdCache bool
	// Idle is how long the bot sits idle after it is ready, before the load,
	// to measure idle memory (default 1s).
	Idle time.Duration
	// YAML, if set, is written to a file passed as COMETBOT_CONFIG.
	YAML string
	// Env holds extra KEY=value pairs for the bot.
	Env []string
	// Log receives progress messages (nil: none).
	Log *slog.Logger
	// PerfData, if set, records the bot's CPU profile during the load with
	// `perf record -g` into this file (Linux perf must be installed).
	PerfData string
}

func (c *Config) defaults() {
	if c.Platform == "" {
		c.Platform = "slack"
	}
	if c.Conversations <= 0 {
		c.Conversations = 10
	}
	if c.Platform == "terminal" {
		c.Conversations = 1
	}
	if c.Duration <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.PromptWords <= 0 {
		c.PromptWords = 12
	}
	if c.ChunkWords <= 0 {
		c.ChunkWords = 1
	}
	if c.TurnTimeout <= 0 {
		c.TurnTimeout = 60 * time.Second
	}
	if c.Drain <= 0 {
		c.Drain = c.TurnTimeout
	}
	if c.Idle <= 0 {
		c.Idle = time.Second
	}
}

// turn is one message and its reply.
type turn struct {
	id     turnID
	expect string // normalized expected reply text
	evTS   string // Slack ts of the user message

	sent         time.Time // event written to the bot's socket (or stdin)
	firstVisible time.Time // first platform call carrying reply text
	final        time.Time // platform call that completed the reply
	calls        int       // platform calls made for this reply
	limited      int       // 429s answered to the bot for this reply
	complete     bool
	failed       string // a failure notice shown instead of the answer
	timedOut     bool
}

// conversation is one driven conversation.
type conversation struct {
	idx     int
	channel string
	user    string
	root    string // Slack thread root ts

	mu    sync.Mutex
	cur   *turn
	turns []*turn
	done  chan struct{} // cap 1: the current turn completed or failed
}

// Run performs one load run and returns its report. It stops by itself:
// sending ends after Duration, replies get Drain to arrive, then the bot is
// stopped with SIGINT.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg.defaults()
	logf := func(format string, args ...any) {
		if cfg.Log != nil {
			cfg.Log.Info(fmt.Sprintf(format, args...))
		}
	}
	dir, err := os.MkdirTemp("", "cometbot-loadtest-")
	if err != nil {
		return nil, fmt.Errorf("loadtest: temp dir: %w", err)
	}
	defer os.RemoveAll(dir)

	bin := cfg.Binary
	if bin == "" {
		logf("building ./cmd/cometbot")
		if bin, err = BuildBinary(ctx, cfg.ModuleDir, dir, cfg.BuildFlags...); err != nil {
			return nil, err
		}
	}

	gw := llmtest.NewServer(llmtest.Options{Echo: true, TTFT: cfg.TTFT, TokensPerSecond: cfg.TokensPerSecond,
		ChunkSize: cfg.ChunkWords, DisableRecording: true})
	defer gw.Close()
	gtap, err := newGatewayTap(gw.HostURL())
	if err != nil {
		return nil, err
	}
	defer gtap.close()

	dbPath := filepath.Join(dir, "data", "cometbot.db")
	rep := &Report{Config: cfg}
	if cfg.Prefill > 0 {
		logf("preparing a database with %d conversations", cfg.Prefill)
		size, err := prefill(ctx, dbPath, cfg.Prefill, cfg.PrefillBytes, gw.CatalogURL(), logf)
		if err != nil {
			return nil, err
		}
		rep.DBBytes = size
		if cfg.ColdCache {
			if err := evictFromPageCache(dbPath); err != nil {
				return nil, err
			}
		}
	}
	env := []string{
		"COMETAPI_KEY=sk-loadtest",
		"COMETAPI_BASE_URL=" + gtap.URL() + "/v1",
		"COMETAPI_CATALOG_URL=" + gw.CatalogURL(),
		"COMETBOT_DB=" + dbPath,
	}
	if cfg.YAML != "" {
		p := filepath.Join(dir, "cometbot.yaml")
		if err := os.WriteFile(p, []byte(cfg.YAML), 0o600); err != nil {
			return nil, fmt.Errorf("loadtest: write config: %w", err)
		}
		env = append(env, "COMETBOT_CONFIG="+p)
	}
	env = append(env, cfg.Env...)

	switch cfg.Platform {
	case "slack":
		err = runSlack(ctx, cfg, bin, env, gtap, rep, logf)
	case "terminal":
		err = runTerminal(ctx, cfg, bin, env, gtap, rep, logf)
	default:
		err = fmt.Errorf("loadtest: unknown platform %q (slack or terminal)", cfg.Platform)
	}
	if err != nil {
		return rep, err
	}
	return rep, nil
}

// measureIdle waits cfg.Idle and records idle memory.
func measureIdle(ctx context.Context, cfg Config, p *botProcess, rep *Report) {
	cpu0, _ := p.cpuTime()
	t0 := time.Now()
	select {
	case <-time.After(cfg.Idle):
	case <-ctx.Done():
	}
	if cpu1, err := p.cpuTime(); err == nil {
		rep.IdleCPU = float64(cpu1-cpu0) / float64(time.Since(t0))
	}
	if st, err := p.status(); err == nil {
		rep.IdleRSS = st.rssKiB * 1024
	}
	if gcs := p.gcSince(p.started); len(gcs) > 0 {
		rep.IdleHeapLive = int64(gcs[len(gcs)-1].liveMB) << 20
	}
}

// finishProcess records the bot's final memory and CPU and stops it.
// stop ends the process (nil: SIGINT).
func finishProcess(p *botProcess, rep *Report, loadStart time.Time, cpu0 time.Duration, stop func() error) {
	rep.HarnessCPU = selfCPU() - rep.HarnessCPU
	if st, err := p.status(); err == nil {
		rep.PeakRSS = st.hwmKiB * 1024
		rep.EndRSS = st.rssKiB * 1024
	}
	if cpu, err := p.cpuTime(); err == nil {
		rep.BotCPU = cpu - cpu0
	}
	for _, s := range p.gcSince(loadStart) {
		rep.PeakHeapLive = max(rep.PeakHeapLive, int64(s.liveMB)<<20)
		rep.PeakHeapTotal = max(rep.PeakHeapTotal, int64(s.startMB)<<20)
		rep.PeakStacks = max(rep.PeakStacks, int64(s.stacksMB)<<20)
		rep.GCs++
	}
	if stop == nil {
		stop = func() error { return p.stop(20 * time.Second) }
	}
	if err := stop(); err != nil {
		rep.Errors = append(rep.Errors, fmt.Sprintf("bot exit: %v", err))
	}
	rep.LogErrors, rep.LogWarnings, rep.Races, rep.Panics = p.logCounts()
	rep.LogSamples = p.logSamples()
	if rep.LogErrors+rep.Races+rep.Panics > 0 {
		rep.LogTail = p.tail()
	}
}

func runSlack(ctx context.Context, cfg Config, bin string, env []string, gtap *gatewayTap, rep *Report, logf func(string, ...any)) error {
	fake, err := slacktest.New(slacktest.Options{PingInterval: 5 * time.Second})
	if err != nil {
		return fmt.Errorf("loadtest: fake slack: %w", err)
	}
	defer fake.Close()
	if cfg.SlackLimits {
		for _, l := range slackLimits {
			fake.SetRateLimit(l.method, l.n, l.window)
		}
	}
	convs := make([]*conversation, cfg.Conversations)
	byChannel := make(map[string]*conversation, cfg.Conversations)
	for i := range convs {
		c := &conversation{idx: i, channel: fmt.Sprintf("CLT%05d", i), user: fmt.Sprintf("ULT%03d", i%50), done: make(chan struct{}, 1)}
		convs[i] = c
		byChannel[c.channel] = c
	}
	for u := range min(50, cfg.Conversations) {
		id := fmt.Sprintf("ULT%03d", u)
		fake.AddUser(slacktest.User{ID: id, Name: "user" + id[3:], RealName: "Load User " + id[3:], DisplayName: "user" + id[3:]})
	}
	var stray sync.Map
	botUser := fake.Options().BotUserID
	observe := func(call slackCall) {
		c := byChannel[call.channel]
		if c == nil {
			if call.channel != "" {
				stray.Store(call.method, true)
			}
			return
		}
		c.observe(fake, botUser, call)
	}
	stap, err := newSlackTap(fake, cfg.SlackLimits, observe)
	if err != nil {
		return err
	}
	defer stap.close()

	httpAddr, err := freeAddr()
	if err != nil {
		return err
	}
	env = append(env, "SLACK_BOT_TOKEN="+fake.Options().BotToken, "SLACK_APP_TOKEN="+fake.Options().AppToken,
		"SLACK_API_URL="+stap.APIURL(), "COMETBOT_HTTP_ADDR="+httpAddr)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	p, err := startBot(runCtx, bin, nil, env, false)
	if err != nil {
		return err
	}
	defer func() {
		select {
		case <-p.exited:
		default:
			_ = p.stop(5 * time.Second)
		}
	}()
	ready, err := p.waitReady(ctx, httpAddr, 30*time.Second)
	if err != nil {
		return err
	}
	rep.ColdStart = ready.Sub(p.started)
	cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
	err = fake.WaitConnected(cctx, 1)
	ccancel()
	if err != nil {
		return fmt.Errorf("loadtest: the bot did not open a Socket Mode connection to the fake Slack within 10s (is the Slack adapter wired into cmd/cometbot?): %w\n%s", err, p.tail())
	}
	measureIdle(ctx, cfg, p, rep)

	logf("driving %d conversations for %v", cfg.Conversations, cfg.Duration)
	stopPerf := startPerf(cfg.PerfData, p, logf)
	rep.HarnessCPU = selfCPU()
	cpu0, _ := p.cpuTime()
	start := time.Now()
	deadline := start.Add(cfg.Duration)
	// Conversations start spread over the ramp (so they do not arrive as one
	// synchronized wave) and think for a random 0.5–1.5 × Think.
	ramp := cfg.Ramp
	if ramp <= 0 {
		ramp = time.Second
	}
	var wg sync.WaitGroup
	for i, c := range convs {
		delay := ramp * time.Duration(i) / time.Duration(len(convs))
		wg.Go(func() {
			select {
			case <-time.After(delay):
			case <-ctx.Done():
				return
			}
			c.drive(ctx, cfg, fake, botUser, deadline)
		})
	}
	wg.Wait()
	rep.Elapsed = time.Since(start)
	stopPerf()
	// Let late calls (status clears) land before counting.
	time.Sleep(200 * time.Millisecond)
	finishProcess(p, rep, start, cpu0, nil)

	var acks []time.Duration
	for _, e := range fake.Envelopes() {
		if !e.Acked {
			rep.Unacked++
			continue
		}
		acks = append(acks, e.AckedAt.Sub(e.SentAt))
	}
	rep.EventToAck = newDist(acks)
	rep.SlackCalls, rep.Slack429s = stap.counts()
	rep.SlackConns = int(stap.conns.Load())
	stray.Range(func(k, _ any) bool {
		rep.Errors = append(rep.Errors, fmt.Sprintf("%v call on a channel no conversation uses", k))
		return true
	})
	rep.collect(convs, gtap)
	return nil
}

// observe attributes one Slack call to the conversation's current turn and
// checks, after any successful call, whether the reply is now complete.
func (c *conversation) observe(fake *slacktest.Server, botUser string, call slackCall) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.cur
	if t == nil {
		return
	}
	t.calls++
	if call.status == 429 {
		t.limited++
	}
	if !call.ok || t.complete || t.failed != "" {
		return
	}
	if call.hasText && t.firstVisible.IsZero() {
		t.firstVisible = call.at
	}
	var parts []string
	streaming := false
	for _, m := range fake.BotReplies(c.channel, c.root) {
		if !tsAfter(m.TS, t.evTS) {
			continue
		}
		streaming = streaming || m.Streaming
		parts = append(parts, m.Body())
	}
	body := normalize(strings.Join(parts, " "))
	switch {
	case strings.Contains(body, "⚠️") || strings.Contains(body, "⏱️") || strings.Contains(body, "🤔"):
		t.failed = body
	case !streaming && body == t.expect:
		t.complete = true
		t.final = call.at
		if t.firstVisible.IsZero() {
			t.firstVisible = call.at
		}
	default:
		return
	}
	select {
	case c.done <- struct{}{}:
	default:
	}
}

// tsAfter compares Slack timestamps "secs.micros".
func tsAfter(a, b string) bool {
	as, af, _ := strings.Cut(a, ".")
	bs, bf, _ := strings.Cut(b, ".")
	if len(as) != len(bs) {
		return len(as) > len(bs)
	}
	if as != bs {
		return as > bs
	}
	return af > bf
}

// prompt returns the user text of a turn: its tag and some words.
func prompt(id turnID, words int) string {
	var b strings.Builder
	b.WriteString(id.tag())
	vocab := []string{"please", "explain", "how", "bbolt", "stores", "pages", "and", "why", "fsync", "matters", "for", "durability"}
	for i := range words {
		b.WriteByte(' ')
		b.WriteString(vocab[(i+id.conv+id.turn)%len(vocab)])
	}
	return b.String()
}

// drive runs the conversation's turns until the deadline.
func (c *conversation) drive(ctx context.Context, cfg Config, fake *slacktest.Server, botUser string, deadline time.Time) {
	for n := 0; cfg.Turns <= 0 || n < cfg.Turns; n++ {
		if !time.Now().Before(deadline) || ctx.Err() != nil {
			return
		}
		id := turnID{c.idx, n}
		text := prompt(id, cfg.PromptWords)
		ev := fake.Mention(c.user, c.channel, "<@"+botUser+"> "+text, c.root)
		t := &turn{id: id, expect: normalize("echo: " + text), evTS: ev.TS}
		c.mu.Lock()
		if c.root == "" {
			c.root = ev.TS
		}
		c.cur = t
		c.turns = append(c.turns, t)
		select { // a stale signal from the previous turn
		case <-c.done:
		default:
		}
		c.mu.Unlock()
		// SendEvent returns once the frame is written to the bot's socket:
		// that instant is "event sent" (the fake's own SentAt is stamped
		// before it waits for its socket writer, so it includes the fake's
		// queueing).
		fake.SendEvent(ev)
		sent := time.Now()
		c.mu.Lock()
		t.sent = sent
		c.mu.Unlock()
		timer := time.NewTimer(cfg.TurnTimeout)
		select {
		case <-c.done:
		case <-timer.C:
		case <-ctx.Done():
		}
		timer.Stop()
		c.mu.Lock()
		ok := t.complete
		if !ok && t.failed == "" {
			t.timedOut = true
		}
		c.mu.Unlock()
		if !ok {
			return // the conversation is stuck or failed: stop it
		}
		if cfg.Think > 0 {
			think := cfg.Think/2 + time.Duration(rand.Int64N(int64(cfg.Think)))
			select {
			case <-time.After(think):
			case <-ctx.Done():
				return
			}
		}
	}
}

// errIncomplete is returned by Report.Check when replies went missing.
var errIncomplete = errors.New("loadtest: incomplete replies")

// Report is the outcome of one run.
type Report struct {
	Config Config

	Turns      int // messages sent
	Complete   int // replies that arrived complete, word for word
	Failed     int // replies that showed a failure notice
	TimedOut   int // replies that did not complete within TurnTimeout
	Unacked    int // Socket Mode envelopes the bot never acknowledged
	Elapsed    time.Duration
	TurnsPerS  float64
	ColdStart  time.Duration // process start → /readyz 200
	DBBytes    int64
	ModelCalls int // model calls that reached the gateway

	// Latencies the bot adds, per completed turn.
	EventToGateway  Dist // event sent → model request received by the gateway
	EventToAck      Dist // fake's envelope SentAt → ack read (includes the fake's own lock waits)
	LastTokenToDone Dist // last model token sent → final platform call received
	FirstTokenToVis Dist // first model token sent → first platform call with reply text
	ReplyTotal      Dist // event sent → final platform call

	CallsPerReply   Dist           // platform calls per reply
	OverCallBudget  int            // replies with more than 2 + stream seconds calls
	SlackCalls      map[string]int // Web API calls per method
	Slack429s       map[string]int // 429s answered to the bot, per method
	Total429s       int
	SlackConns      int     // TCP connections the bot opened to the Slack Web API
	GatewayConns    int     // TCP connections the bot opened to the gateway
	IdleRSS         int64   // bytes, after Idle
	IdleCPU         float64 // CPU cores the idle bot uses (10 ms resolution)
	IdleHeapLive    int64   // live heap at the last GC before the load (MB resolution)
	PeakRSS         int64   // VmHWM at the end
	EndRSS          int64
	PeakHeapLive    int64 // highest live heap after a GC during the load (MB resolution)
	PeakHeapTotal   int64 // highest heap at GC start during the load
	PeakStacks      int64
	GCs             int
	BotCPU          time.Duration // user+system CPU of the bot during the load
	CPUPerTurn      time.Duration
	LogErrors       int
	LogWarnings     int
	Races           int // data races reported by a -race binary
	Panics          int
	HarnessCPU      time.Duration // CPU of this process (fakes, taps, driver) during the load
	LogTail         string
	LogSamples      []string // distinct warning and error messages with counts
	Errors          []string
	FailureExamples []string
}

func (r *Report) collect(convs []*conversation, gtap *gatewayTap) {
	r.GatewayConns = int(gtap.conns.Load())
	var e2g, last, first, total, calls []time.Duration
	var firstSent, lastFinal time.Time
	for _, c := range convs {
		c.mu.Lock()
		for _, t := range c.turns {
			r.Turns++
			r.Total429s += t.limited
			if firstSent.IsZero() || t.sent.Before(firstSent) {
				firstSent = t.sent
			}
			mc, seen := gtap.call(t.id)
			if seen {
				r.ModelCalls += mc.calls
			}
			switch {
			case t.complete:
				r.Complete++
			case t.failed != "":
				r.Failed++
				if len(r.FailureExamples) < 5 {
					r.FailureExamples = append(r.FailureExamples, fmt.Sprintf("%s: %s", t.id.tag(), t.failed))
				}
				continue
			default:
				r.TimedOut++
				if len(r.FailureExamples) < 5 {
					r.FailureExamples = append(r.FailureExamples, fmt.Sprintf("%s: no complete reply within %v (model call seen: %v)", t.id.tag(), r.Config.TurnTimeout, seen))
				}
				continue
			}
			if t.final.After(lastFinal) {
				lastFinal = t.final
			}
			calls = append(calls, time.Duration(t.calls))
			total = append(total, t.final.Sub(t.sent))
			if !seen {
				continue
			}
			e2g = append(e2g, mc.received.Sub(t.sent))
			if !mc.lastToken.IsZero() {
				last = append(last, t.final.Sub(mc.lastToken))
			}
			if !mc.firstToken.IsZero() && !t.firstVisible.IsZero() {
				first = append(first, t.firstVisible.Sub(mc.firstToken))
			}
			stream := mc.lastToken.Sub(mc.firstToken).Seconds()
			if float64(t.calls) > 2+stream {
				r.OverCallBudget++
			}
		}
		c.mu.Unlock()
	}
	r.EventToGateway = newDist(e2g)
	r.LastTokenToDone = newDist(last)
	r.FirstTokenToVis = newDist(first)
	r.ReplyTotal = newDist(total)
	r.CallsPerReply = newDist(calls)
	if span := lastFinal.Sub(firstSent); r.Complete > 0 && span > 0 {
		r.TurnsPerS = float64(r.Complete) / span.Seconds()
	}
	if r.Complete > 0 {
		r.CPUPerTurn = r.BotCPU / time.Duration(r.Complete)
	}
}

// Check returns an error if any reply was incomplete or failed, an envelope
// went unacknowledged, or the run saw errors. It never judges timing.
func (r *Report) Check() error {
	var probs []string
	if r.Turns == 0 {
		probs = append(probs, "no message was sent")
	}
	if r.Complete != r.Turns {
		probs = append(probs, fmt.Sprintf("%d of %d replies incomplete (%d failed, %d timed out)", r.Turns-r.Complete, r.Turns, r.Failed, r.TimedOut))
	}
	if r.Unacked > 0 {
		probs = append(probs, fmt.Sprintf("%d envelopes never acknowledged", r.Unacked))
	}
	if r.LogErrors > 0 {
		probs = append(probs, fmt.Sprintf("%d error lines in the bot's log", r.LogErrors))
	}
	if r.Races > 0 {
		probs = append(probs, fmt.Sprintf("%d data races reported by the bot", r.Races))
	}
	if r.Panics > 0 {
		probs = append(probs, "the bot panicked")
	}
	probs = append(probs, r.Errors...)
	if len(probs) == 0 {
		return nil
	}
	msg := strings.Join(probs, "; ")
	if len(r.FailureExamples) > 0 {
		msg += "\nexamples:\n  " + strings.Join(r.FailureExamples, "\n  ")
	}
	if r.LogTail != "" {
		msg += "\nbot log tail:\n" + r.LogTail
	}
	return fmt.Errorf("%w: %s", errIncomplete, msg)
}

// Dist summarizes a set of durations (or counts stored as durations).
type Dist struct {
	N                       int
	Min, P50, P90, P99, Max time.Duration
	Mean                    time.Duration
}

func newDist(v []time.Duration) Dist {
	if len(v) == 0 {
		return Dist{}
	}
	sort.Slice(v, func(i, j int) bool { return v[i] < v[j] })
	var sum time.Duration
	for _, x := range v {
		sum += x
	}
	q := func(p float64) time.Duration {
		i := int(p*float64(len(v))+0.5) - 1
		return v[min(max(i, 0), len(v)-1)]
	}
	return Dist{N: len(v), Min: v[0], P50: q(0.50), P90: q(0.90), P99: q(0.99), Max: v[len(v)-1], Mean: sum / time.Duration(len(v))}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d)/1e6) }

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func (d Dist) latency() string {
	if d.N == 0 {
		return "n/a"
	}
	return fmt.Sprintf("p50 %s  p90 %s  p99 %s  max %s  (n=%d)", ms(d.P50), ms(d.P90), ms(d.P99), ms(d.Max), d.N)
}

func (d Dist) count() string {
	if d.N == 0 {
		return "n/a"
	}
	return fmt.Sprintf("mean %.2f  p50 %d  p99 %d  max %d", float64(d.Mean), int64(d.P50), int64(d.P99), int64(d.Max))
}

// Print writes the report in a human-readable form.
func (r *Report) Print(w io.Writer) {
	c := r.Config
	var b bytes.Buffer
	fmt.Fprintf(&b, "cometbot load test — platform %s, %d conversations, %v, model TTFT %v, %.0f tokens/s, slack limits %v\n",
		c.Platform, c.Conversations, c.Duration, c.TTFT, c.TokensPerSecond, c.SlackLimits)
	fmt.Fprintf(&b, "replies complete       %d / %d  (failed %d, timed out %d, unacked envelopes %d, model calls %d)\n",
		r.Complete, r.Turns, r.Failed, r.TimedOut, r.Unacked, r.ModelCalls)
	fmt.Fprintf(&b, "throughput             %.1f turns/s\n", r.TurnsPerS)
	fmt.Fprintf(&b, "event → gateway        %s\n", r.EventToGateway.latency())
	if c.Platform == "slack" {
		fmt.Fprintf(&b, "event → ack            %s\n", r.EventToAck.latency())
	}
	fmt.Fprintf(&b, "first token → visible  %s\n", r.FirstTokenToVis.latency())
	fmt.Fprintf(&b, "last token → final     %s\n", r.LastTokenToDone.latency())
	fmt.Fprintf(&b, "event → final          %s\n", r.ReplyTotal.latency())
	if c.Platform == "slack" {
		fmt.Fprintf(&b, "platform calls/reply   %s  (over 2+stream seconds: %d)\n", r.CallsPerReply.count(), r.OverCallBudget)
		fmt.Fprintf(&b, "platform 429s          %d  %v\n", r.Total429s, nonZero(r.Slack429s))
		fmt.Fprintf(&b, "platform calls         %v\n", nonZero(r.SlackCalls))
		fmt.Fprintf(&b, "connections opened     %d to the Slack Web API, %d to the gateway\n", r.SlackConns, r.GatewayConns)
	}
	fmt.Fprintf(&b, "bot CPU                %v total, %s per turn; idle %.1f%% of a core\n", r.BotCPU, ms(r.CPUPerTurn), 100*r.IdleCPU)
	fmt.Fprintf(&b, "bot memory             idle RSS %s, peak RSS (VmHWM) %s, end RSS %s\n", mib(r.IdleRSS), mib(r.PeakRSS), mib(r.EndRSS))
	fmt.Fprintf(&b, "bot heap (gctrace)     idle live %s, peak live %s, peak total %s, stacks %s, %d GCs\n",
		mib(r.IdleHeapLive), mib(r.PeakHeapLive), mib(r.PeakHeapTotal), mib(r.PeakStacks), r.GCs)
	if c.Conversations > 0 && r.PeakHeapLive > 0 {
		fmt.Fprintf(&b, "heap per conversation  %.1f KiB (peak live − idle live) / conversations\n", float64(r.PeakHeapLive-r.IdleHeapLive)/1024/float64(c.Conversations))
	}
	fmt.Fprintf(&b, "cold start             %s to /readyz", ms(r.ColdStart))
	if r.DBBytes > 0 {
		fmt.Fprintf(&b, " with a %s database (%d conversations)", mib(r.DBBytes), c.Prefill)
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "bot log                %d errors, %d warnings, %d data races, %d panics\n", r.LogErrors, r.LogWarnings, r.Races, r.Panics)
	fmt.Fprintf(&b, "harness CPU            %v (fakes, taps and driver, same machine)\n", r.HarnessCPU)
	for _, l := range r.LogSamples {
		fmt.Fprintf(&b, "  bot log: %s\n", l)
	}
	for _, e := range r.Errors {
		fmt.Fprintf(&b, "error: %s\n", e)
	}
	for _, e := range r.FailureExamples {
		fmt.Fprintf(&b, "incomplete: %s\n", e)
	}
	_, _ = w.Write(b.Bytes())
}

func nonZero(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k, v := range m {
		if v > 0 {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return strings.Join(parts, " ")
}
