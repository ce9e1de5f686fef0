package discord

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/gorilla/websocket"

	"github.com/cometbot/cometbot/bot"
	"github.com/cometbot/cometbot/internal/fetch"
)

// Engine is what the adapter needs from the conversation engine
// (*bot.Engine satisfies it).
type Engine interface {
	// HandleMessage takes one incoming message and returns at once; a nil
	// error means a reply will be streamed to out.
	HandleMessage(ctx context.Context, m bot.Message, out bot.Output) error
	// HandleCommand runs one slash command and returns its answer quickly.
	HandleCommand(ctx context.Context, c bot.Command) bot.Answer
	// ModelChoices returns up to limit models matching query for autocomplete.
	ModelChoices(ctx context.Context, query string, limit int) []bot.Choice
}

// Gateway intents: guilds (channels, threads, roles), guild messages, direct
// messages, and the privileged message content intent. Without the last one
// Discord blanks the text of messages that neither mention the bot nor are
// DMs; the adapter then drops it and still serves mentions and DMs.
const (
	baseIntents = discordgo.IntentsGuilds | discordgo.IntentsGuildMessages | discordgo.IntentsDirectMessages
	allIntents  = baseIntents | discordgo.IntentMessageContent
)

// Gateway close codes that retrying cannot fix.
const (
	closeAuthenticationFailed = 4004
	closeInvalidShard         = 4010
	closeShardingRequired     = 4011
	closeInvalidAPIVersion    = 4012
	closeInvalidIntents       = 4013
	closeDisallowedIntents    = 4014
)

const (
	numShards       = 4   // message workers; a channel always maps to the same one
	shardQueue      = 256 // events buffered per worker
	openTimeout     = 45 * time.Second
	maxBackoff      = 60 * time.Second
	lookupTimeout   = 5 * time.Second
	convMapSize     = 20000 // bot message id -> conversation, for replies in place
	chanCacheSize   = 50000
	roleCacheSize   = 20000
	seenInteraction = 4096
	noThreadsFor    = 10 * time.Minute
)

const tokenRejected = "discord: the bot token was rejected (HTTP 401): set DISCORD_BOT_TOKEN to the token from the Developer Portal (your application → Bot → Reset Token)"

// Adapter is a running connection between Discord and the engine.
type Adapter struct {
	cfg     Config
	engine  Engine
	log     *slog.Logger
	session *discordgo.Session
	pacer   *pacer
	dialer  *connDialer

	ready   atomic.Bool
	running atomic.Bool

	mu         sync.Mutex // guards the fields below
	botID      string
	botName    string
	appID      string
	guilds     map[string]bool
	botRoles   map[string]bool
	intents    discordgo.Intent
	registered bool
	invited    bool
	closed     bool            // Run is shutting down: no new tracked goroutines
	runCtx     context.Context // Run's context; nil before Run
	stopCtx    context.Context // ends ShutdownGrace after Run's context

	chans     *boundedMap[chanInfo]
	roles     *boundedMap[roleInfo]
	convs     *boundedMap[string]
	authors   *boundedMap[string] // message id -> author's name ("" = unknown), for forwards
	seen      *boundedMap[struct{}]
	noThreads *boundedMap[time.Time]

	queues  []chan *discordgo.Message
	readyCh chan struct{}
	discCh  chan struct{}
	wg      sync.WaitGroup // reply workers and interaction handlers

	// afterMessage, when set (tests), is called when a worker has dealt
	// with a message: dropped it, or handed it to the engine.
	afterMessage func(id string)
}

// New creates an adapter; it does not connect (Run does). engine may be nil
// for an adapter used only for Check (cometbot doctor); Run then fails.
func New(cfg Config, engine Engine) (*Adapter, error) {
	cfg.applyDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Fetcher == nil {
		cfg.Fetcher = fetch.New(fetch.Config{AllowHosts: fetchHosts(cfg.APIURL)})
	}
	routeLibraryLogs()
	s, err := discordgo.New(cfg.token())
	if err != nil {
		return nil, fmt.Errorf("discord: new session: %w", err)
	}
	a := &Adapter{
		cfg:       cfg,
		engine:    engine,
		log:       cfg.Logger.With("adapter", "discord"),
		session:   s,
		pacer:     newPacer(cfg.EditBudget, cfg.EditWindow),
		guilds:    make(map[string]bool),
		botRoles:  make(map[string]bool),
		intents:   allIntents,
		chans:     newBoundedMap[chanInfo](chanCacheSize),
		roles:     newBoundedMap[roleInfo](roleCacheSize),
		convs:     newBoundedMap[string](convMapSize),
		authors:   newBoundedMap[string](authorCacheSize),
		seen:      newBoundedMap[struct{}](seenInteraction),
		noThreads: newBoundedMap[time.Time](1024),
		readyCh:   make(chan struct{}, 1),
		discCh:    make(chan struct{}, 1),
	}
	// REST: route every call under APIURL and watch rate-limit headers.
	hc := *cfg.HTTPClient
	tr := newTransport(cfg.APIURL, cfg.HTTPClient.Transport, a.pacer, cfg.GlobalRate)
	tr.fallback = a.currentRunCtx
	tr.mx = cfg.Metrics
	hc.Transport = tr
	s.Client = &hc
	// Gateway: we own reconnection (so it stops with Run's context), we
	// keep our own small caches instead of discordgo's state (whose objects
	// are mutated by the reader goroutine), and handlers run on the reader
	// goroutine, handing messages to our workers.
	s.ShouldReconnectOnError = false
	s.ShouldReconnectVoiceOnSessionError = false
	s.StateEnabled = false
	s.SyncEvents = true
	s.Identify.Intents = allIntents
	s.LogLevel = discordgo.LogError
	a.dialer = &connDialer{runCtx: a.currentRunCtx}
	s.Dialer = &websocket.Dialer{
		Proxy:            http.ProxyFromEnvironment,
		HandshakeTimeout: 30 * time.Second,
		NetDialContext:   a.dialer.dial,
	}
	for i := 0; i < numShards; i++ {
		a.queues = append(a.queues, make(chan *discordgo.Message, shardQueue))
	}
	a.addHandlers()
	return a, nil
}

// currentRunCtx returns Run's context (nil before Run): the lifetime of
// requests discordgo makes without one (the gateway lookup in Open).
func (a *Adapter) currentRunCtx() context.Context {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.runCtx
}

// Ready reports whether the gateway session is connected and READY (or
// RESUMED) was received.
func (a *Adapter) Ready() bool { return a.ready.Load() }

// InviteURL returns the OAuth2 URL that adds the bot to a server with the
// permissions it needs; empty until READY told us the application id.
func (a *Adapter) InviteURL() string {
	a.mu.Lock()
	app := a.appID
	a.mu.Unlock()
	if app == "" {
		return ""
	}
	return InviteURL(app)
}

// Check verifies the token with GET /users/@me, for `cometbot doctor`. The
// error says what to fix and never contains the token.
func (a *Adapter) Check(ctx context.Context) error {
	u, err := a.session.User("@me", discordgo.WithContext(ctx), discordgo.WithRetryOnRatelimit(false))
	if err != nil {
		var re *discordgo.RESTError
		if errors.As(err, &re) && re.Response != nil {
			switch re.Response.StatusCode {
			case http.StatusUnauthorized:
				return errors.New(tokenRejected)
			case http.StatusNotFound:
				return fmt.Errorf("discord: %s/users/@me answered 404: check DISCORD_API_URL (default %s)", a.cfg.APIURL, DefaultAPIURL)
			}
			return fmt.Errorf("discord: GET /users/@me answered HTTP %d: %s", re.Response.StatusCode, restMessage(re))
		}
		var rl *discordgo.RateLimitError
		if errors.As(err, &rl) {
			return fmt.Errorf("discord: rate limited checking the token; retry in %s", rl.RetryAfter)
		}
		return fmt.Errorf("discord: cannot reach %s (check network access or DISCORD_API_URL): %w", a.cfg.APIURL, err)
	}
	if !u.Bot {
		return errors.New("discord: the token belongs to a user account, not a bot: use the token from your application's Bot page")
	}
	return nil
}

func restMessage(re *discordgo.RESTError) string {
	if re.Message != nil && re.Message.Message != "" {
		return fmt.Sprintf("%s (code %d)", re.Message.Message, re.Message.Code)
	}
	return "no details"
}

// Run opens the gateway session, registers the slash commands (bulk
// overwrite, per guild when configured) and serves events until ctx ends;
// then it closes the session and waits up to ShutdownGrace for replies in
// flight. It reconnects (RESUME) by itself when the connection drops and
// returns an error only for problems retrying cannot fix (bad token,
// disallowed intents) or when called twice.
func (a *Adapter) Run(ctx context.Context) error {
	if a.engine == nil {
		return errors.New("discord: Run needs an engine (New was given nil)")
	}
	if !a.running.CompareAndSwap(false, true) {
		return errors.New("discord: Run called twice")
	}
	stopCtx, stopAll := context.WithCancel(context.WithoutCancel(ctx))
	defer stopAll()
	// The workers' context ends with Run's, or when serve gives up.
	ctx, stopServing := context.WithCancel(ctx)
	defer stopServing()
	a.mu.Lock()
	a.runCtx, a.stopCtx = ctx, stopCtx
	a.mu.Unlock()

	var workers sync.WaitGroup
	for _, q := range a.queues {
		workers.Add(1)
		go func() {
			defer workers.Done()
			a.worker(ctx, q)
		}()
	}

	err := a.serve(ctx)
	stopServing()

	a.ready.Store(false)
	if cerr := a.session.Close(); cerr != nil {
		a.log.Debug("close gateway session", "err", cerr)
	}
	workers.Wait()
	// From now on no goroutine is added to a.wg (so waiting on it is
	// sound): replies the engine starts during its own shutdown (e.g.
	// "interrupted" notices) are delivered synchronously by Finish/Fail.
	a.mu.Lock()
	a.closed = true
	a.mu.Unlock()
	done := make(chan struct{})
	go func() {
		a.wg.Wait()
		close(done)
	}()
	t := time.NewTimer(a.cfg.ShutdownGrace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		a.log.Warn("replies still in flight at shutdown; cancelling them")
		stopAll()
		<-done
	}
	return err
}

// serve connects and keeps the session connected until ctx ends.
func (a *Adapter) serve(ctx context.Context) error {
	if err := a.open(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-a.readyCh:
			a.onFirstReady(ctx)
		case <-a.discCh:
			if ctx.Err() != nil {
				return nil
			}
			a.log.Info("gateway connection lost; reconnecting")
			if err := a.open(ctx); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
		}
	}
}

// open connects with retries and backoff until it succeeds, ctx ends, or the
// gateway refuses us for good. After the first connection discordgo keeps
// the session id and sequence, so later opens RESUME and Discord replays
// what we missed (the engine drops duplicates by event id).
func (a *Adapter) open(ctx context.Context) error {
	backoff := time.Second
	for {
		err := a.openOnce(ctx)
		if err == nil || errors.Is(err, discordgo.ErrWSAlreadyOpen) {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if restStatus(err) == http.StatusUnauthorized {
			return errors.New(tokenRejected)
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			switch ce.Code {
			case closeAuthenticationFailed:
				return errors.New("discord: the gateway rejected the bot token (close 4004): set DISCORD_BOT_TOKEN to the token from the Developer Portal (your application → Bot → Reset Token)")
			case closeDisallowedIntents:
				a.mu.Lock()
				had := a.intents&discordgo.IntentMessageContent != 0
				a.intents = baseIntents
				a.mu.Unlock()
				if had {
					a.log.Warn("the Message Content intent is not enabled for this bot; continuing without it: mentions and DMs work, but follow-ups in threads need a mention. Enable it under Developer Portal → your application → Bot → Privileged Gateway Intents")
					a.session.Identify.Intents = baseIntents
					continue
				}
				return errors.New("discord: the gateway refused the requested intents (close 4014)")
			case closeInvalidShard, closeShardingRequired, closeInvalidAPIVersion, closeInvalidIntents:
				return fmt.Errorf("discord: the gateway closed the connection with code %d (%s)", ce.Code, ce.Text)
			}
		}
		a.log.Warn("gateway connect failed; retrying", "err", err, "in", backoff)
		if err := sleepCtx(ctx, backoff); err != nil {
			return err
		}
		backoff *= 2
		if backoff > maxBackoff {
			backoff = maxBackoff
		}
	}
}

// openOnce runs discordgo's Open, which cannot be cancelled, and closes the
// socket under it when ctx ends or the handshake stalls.
func (a *Adapter) openOnce(ctx context.Context) error {
	done := make(chan error, 1)
	go func() { done <- a.session.Open() }()
	t := time.NewTimer(openTimeout)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		a.dialer.closeLast()
		<-done
		return ctx.Err()
	case <-t.C:
		a.dialer.closeLast()
		<-done
		return errors.New("discord: gateway handshake timed out")
	}
}

// onFirstReady registers commands once and prints the invite URL when the
// bot is in no server yet.
func (a *Adapter) onFirstReady(ctx context.Context) {
	a.mu.Lock()
	appID, guilds, registered, invited := a.appID, len(a.guilds), a.registered, a.invited
	a.invited = true
	a.mu.Unlock()
	a.log.Info("connected to Discord", "guilds", guilds)
	if guilds == 0 && !invited {
		a.log.Info("the bot is in no server yet: open this URL to add it", "invite_url", InviteURL(appID))
	}
	if registered {
		return
	}
	if err := a.registerCommands(ctx, appID); err != nil {
		a.log.Error("register slash commands failed; messages still work, commands may be missing or stale", "err", err)
		return
	}
	a.mu.Lock()
	a.registered = true
	a.mu.Unlock()
}

// worker hands messages of its channels to the engine, in arrival order.
func (a *Adapter) worker(ctx context.Context, q chan *discordgo.Message) {
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-q:
			a.handleMessage(ctx, m)
		}
	}
}

func (a *Adapter) enqueue(m *discordgo.Message) {
	a.mu.Lock()
	ctx := a.runCtx
	a.mu.Unlock()
	if ctx == nil {
		return
	}
	h := fnv.New32a()
	h.Write([]byte(m.ChannelID))
	q := a.queues[h.Sum32()%uint32(len(a.queues))]
	select {
	case q <- m:
	case <-ctx.Done():
	}
}

// goTracked runs f on a goroutine that Run waits for at shutdown. Once Run
// is shutting down it runs nothing and returns false.
func (a *Adapter) goTracked(f func()) bool {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return false
	}
	a.wg.Add(1)
	a.mu.Unlock()
	go func() {
		defer a.wg.Done()
		f()
	}()
	return true
}

// connDialer dials gateway sockets and remembers the last one, so that a
// stalled handshake can be broken by closing it. discordgo dials without a
// context; the dial is cancelled when Run's context ends.
type connDialer struct {
	runCtx func() context.Context

	mu   sync.Mutex
	last net.Conn
}

func (d *connDialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if rc := d.runCtx(); rc != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		stop := context.AfterFunc(rc, cancel)
		defer stop()
	}
	nd := net.Dialer{Timeout: 15 * time.Second}
	c, err := nd.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.last = c
	d.mu.Unlock()
	return c, nil
}

func (d *connDialer) closeLast() {
	d.mu.Lock()
	c := d.last
	d.mu.Unlock()
	if c != nil {
		_ = c.Close()
	}
}

var routeLogsOnce sync.Once

// routeLibraryLogs sends discordgo's own log lines (it logs through a
// package-level hook) to slog.Default(), at most warning level: the
// problems it reports (lost heartbeat ACKs, read errors) end in a
// reconnect that the adapter handles and logs itself.
func routeLibraryLogs() {
	routeLogsOnce.Do(func() {
		discordgo.Logger = func(level, _ int, format string, args ...any) {
			msg := "discordgo: " + fmt.Sprintf(format, args...)
			switch level {
			case discordgo.LogError, discordgo.LogWarning:
				slog.Default().Warn(msg, "adapter", "discord")
			case discordgo.LogInformational:
				slog.Default().Info(msg, "adapter", "discord")
			default:
				slog.Default().Debug(msg, "adapter", "discord")
			}
		}
	})
}
