// Package slack is cometbot's Slack adapter. It connects over Socket Mode
// (app-level token) or the HTTP Events API (signing secret), turns mentions,
// thread replies and direct messages into bot.Message values for the engine,
// streams the engine's replies back into threads within Slack's rate limits,
// and routes slash commands and the model picker to the engine.
package slack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slack-go/slack"

	"github.com/cometbot/cometbot/bot"
	"github.com/cometbot/cometbot/internal/fetch"
	"github.com/cometbot/cometbot/internal/lograte"
)

// Platform is the value of bot.Message.Platform for Slack.
const Platform = "slack"

// DefaultAPIURL is Slack's Web API base URL.
const DefaultAPIURL = "https://slack.com/api/"

// Engine is what the adapter needs from the conversation engine
// (*bot.Engine implements it).
type Engine interface {
	// HandleMessage takes one incoming message; the reply streams to out.
	HandleMessage(ctx context.Context, m bot.Message, out bot.Output) error
	// Addressed reports whether a message is addressed to the bot (asked
	// before looking up the mentions of a thread message without a mention).
	Addressed(ctx context.Context, m bot.Message) (bool, error)
	// HandleCommand runs a slash command and returns its answer quickly.
	HandleCommand(ctx context.Context, c bot.Command) bot.Answer
	// ModelChoices returns model picker entries matching query.
	ModelChoices(ctx context.Context, query string, limit int) []bot.Choice
}

// Config configures the Slack adapter. Zero values get sensible defaults.
type Config struct {
	// BotToken is the bot's OAuth token (xoxb-…). Required.
	BotToken string
	// AppToken is the app-level token (xapp-…) with connections:write;
	// when set, Run uses Socket Mode.
	AppToken string
	// SigningSecret verifies HTTP Events API, slash command and
	// interactivity requests (HTTPHandler).
	SigningSecret string
	// APIURL points the Web API client elsewhere (tests); it must end with
	// "/" (added if missing). Default https://slack.com/api/.
	APIURL string
	// MentionRequiredInThreads makes the bot answer thread replies only when
	// mentioned, even in threads it takes part in.
	MentionRequiredInThreads bool
	// CommandNames maps platform slash commands (e.g. "/ai-model") to the
	// engine's canonical names ("model"). Default: /model /reset /system
	// /usage /forget /help map to themselves.
	CommandNames map[string]string
	// NativeStreaming tries chat.startStream / appendStream / stopStream for
	// replies in threads and falls back to chat.postMessage + chat.update
	// automatically when the workspace refuses them.
	NativeStreaming bool
	// DisableThreadStatus turns off assistant.threads.setStatus ("is
	// thinking…"); a placeholder message is posted instead.
	DisableThreadStatus bool
	// Logger receives the adapter's logs; nil uses slog.Default().
	Logger *slog.Logger

	// UpdatesPerMinute is the workspace budget for chat.update (default 50).
	UpdatesPerMinute int
	// StreamCallsPerMinute is the workspace budget for chat.startStream,
	// appendStream and stopStream together (default 100).
	StreamCallsPerMinute int
	// PacingWindow is the window the per-minute budgets apply to (default
	// one minute; tests scale it down).
	PacingWindow time.Duration
	// PostInterval is the minimum spacing of chat.postMessage calls per
	// channel after a burst of PostBurst (defaults 1 s and 3).
	PostInterval time.Duration
	PostBurst    int

	// FinalUpdateMaxWait: when a final answer would wait longer than this
	// for the chat.update budget (many answers finishing at once), it is
	// posted as a new message and the interim one deleted (default 5 s).
	FinalUpdateMaxWait time.Duration

	// ThinkingText is the progress status (default "is thinking…").
	ThinkingText string
	// MessagePartRunes is the Markdown size of one reply message before
	// conversion (default 3500); MaxTextRunes caps a converted message
	// (default 3900, under Slack's ~4000 msg_too_long limit).
	MessagePartRunes int
	MaxTextRunes     int
	// StreamPartRunes is the size of one natively streamed message
	// (default 10000, under the 12000-character markdown limit).
	StreamPartRunes int

	// HTTPClient is used for Web API calls (default: a client with a 30 s timeout).
	HTTPClient *http.Client
	// Metrics receives one report per Web API call (its method and HTTP
	// status code) and per pacing wait; nil reports nothing.
	Metrics Metrics
	// SocketPingTimeout is how long Socket Mode may go without a ping from
	// Slack before reconnecting (default 30 s).
	SocketPingTimeout time.Duration

	// Fetcher downloads attached files: the process's one shared fetcher,
	// built by cmd (host allow-list, byte limit, timeout, concurrency).
	// When nil, the adapter builds one that allows fetch.DefaultHosts and
	// the host:port of APIURL.
	Fetcher *fetch.Fetcher
}

func (c *Config) defaults() {
	if c.APIURL == "" {
		c.APIURL = DefaultAPIURL
	}
	if !strings.HasSuffix(c.APIURL, "/") {
		c.APIURL += "/"
	}
	if len(c.CommandNames) == 0 {
		c.CommandNames = map[string]string{
			"/model": "model", "/reset": "reset", "/system": "system",
			"/usage": "usage", "/forget": "forget", "/tools": "tools", "/help": "help",
		}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.UpdatesPerMinute <= 0 {
		c.UpdatesPerMinute = 50
	}
	if c.StreamCallsPerMinute <= 0 {
		c.StreamCallsPerMinute = 100
	}
	if c.PacingWindow <= 0 {
		c.PacingWindow = time.Minute
	}
	if c.PostInterval <= 0 {
		c.PostInterval = time.Second
	}
	if c.PostBurst <= 0 {
		c.PostBurst = 3
	}
	if c.FinalUpdateMaxWait <= 0 {
		c.FinalUpdateMaxWait = 5 * time.Second
	}
	if c.ThinkingText == "" {
		c.ThinkingText = "is thinking…"
	}
	if c.MessagePartRunes <= 0 {
		c.MessagePartRunes = 3500
	}
	if c.MaxTextRunes <= 0 {
		c.MaxTextRunes = 3900
	}
	if c.StreamPartRunes <= 0 {
		c.StreamPartRunes = 10000
	}
	if c.HTTPClient == nil {
		// Many replies stream at once: keep enough idle connections to
		// slack.com that each Web API call does not pay a new TLS handshake
		// (the default transport keeps 2 per host).
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 64
		c.HTTPClient = &http.Client{Timeout: 30 * time.Second, Transport: tr}
	}
	if c.SocketPingTimeout <= 0 {
		c.SocketPingTimeout = 30 * time.Second
	}
	if c.Fetcher == nil {
		c.Fetcher = newFetcher(c.APIURL)
	}
}

// Adapter connects one Slack app to the engine.
type Adapter struct {
	cfg      Config
	log      *slog.Logger
	api      *slack.Client
	fetcher  *fetch.Fetcher
	engine   Engine
	commands map[string]string // lower-case "/cmd" -> canonical name

	identMu sync.Mutex
	ident   identity

	ready atomic.Bool
	users *userCache

	wsMu       sync.Mutex
	workspaces map[string]*pacing

	runMu  sync.Mutex
	runCtx context.Context // set while Run is running

	bg      sync.WaitGroup // event workers and follow-ups
	serial  *serialQueue
	handled *recentSet // text commands already run (event keys)

	rejects lograte.Limiter // one log line per kind of refused HTTP request per 10 s

	// afterIncoming, when set (tests), is called when a message event has
	// been dealt with: ignored, or handed to the engine.
	afterIncoming func(channel, ts string)
}

// identity is who the bot is, from auth.test.
type identity struct {
	ok     bool
	userID string
	botID  string
	teamID string
}

// New builds an adapter. It does no I/O; Run connects.
func New(cfg Config, engine Engine) (*Adapter, error) {
	if engine == nil {
		return nil, errors.New("slack: new: engine is nil")
	}
	if strings.TrimSpace(cfg.BotToken) == "" {
		return nil, errors.New("slack: new: bot token (SLACK_BOT_TOKEN) is empty")
	}
	cfg.defaults()
	a := &Adapter{
		cfg:        cfg,
		log:        cfg.Logger.With("adapter", Platform),
		fetcher:    cfg.Fetcher,
		engine:     engine,
		commands:   map[string]string{},
		workspaces: map[string]*pacing{},
		users:      newUserCache(time.Hour, 5000),
		handled:    newRecentSet(4096),
	}
	for k, v := range cfg.CommandNames {
		k = strings.ToLower(strings.TrimSpace(k))
		if !strings.HasPrefix(k, "/") {
			k = "/" + k
		}
		a.commands[k] = strings.ToLower(strings.TrimSpace(v))
	}
	a.serial = newSerialQueue(&a.bg)
	hc := cfg.HTTPClient
	if cfg.Metrics != nil {
		c := *hc
		c.Transport = &metricsTransport{next: hc.Transport, api: cfg.APIURL, mx: cfg.Metrics}
		hc = &c
	}
	opts := []slack.Option{
		slack.OptionAPIURL(cfg.APIURL),
		slack.OptionHTTPClient(hc),
		slack.OptionLog(slogOutput{a.log}),
	}
	if cfg.AppToken != "" {
		opts = append(opts, slack.OptionAppLevelToken(cfg.AppToken))
	}
	a.api = slack.New(cfg.BotToken, opts...)
	return a, nil
}

// Ready reports whether the adapter is connected: Socket Mode got its hello,
// or (HTTP mode) auth.test passed.
func (a *Adapter) Ready() bool { return a.ready.Load() }

// Run connects and serves until ctx ends. With an app token it runs Socket
// Mode (reconnecting as needed); otherwise it checks the bot token and keeps
// the background work of HTTP mode running (mount HTTPHandler separately).
// It returns nil when ctx ends and an error when the credentials are refused.
func (a *Adapter) Run(ctx context.Context) error {
	a.runMu.Lock()
	if a.runCtx != nil {
		a.runMu.Unlock()
		return errors.New("slack: run: already running")
	}
	a.runCtx = ctx
	a.runMu.Unlock()
	defer func() {
		a.ready.Store(false)
		a.runMu.Lock()
		a.runCtx = nil
		a.runMu.Unlock()
		a.bg.Wait()
	}()

	if err := a.startupIdentity(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	if a.cfg.AppToken == "" {
		id, _ := a.identity(ctx)
		a.ready.Store(true)
		a.log.Info("slack: ready (HTTP Events API mode)", "team", id.teamID, "bot_user", id.userID)
		<-ctx.Done()
		return nil
	}
	return a.runSocketMode(ctx)
}

// runContext returns Run's context, or nil when Run is not running.
func (a *Adapter) runContext() context.Context {
	a.runMu.Lock()
	defer a.runMu.Unlock()
	return a.runCtx
}

// startupIdentity calls auth.test until it succeeds, the token is refused,
// or ctx ends.
func (a *Adapter) startupIdentity(ctx context.Context) error {
	delay := 500 * time.Millisecond
	for {
		_, err := a.identity(ctx)
		if err == nil {
			return nil
		}
		if fatalAuthError(err) {
			return fmt.Errorf("slack: auth.test: %w (check SLACK_BOT_TOKEN: it must be the Bot User OAuth Token of an installed app)", err)
		}
		a.log.Warn("slack: auth.test failed, retrying", "err", err, "in", delay)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(delay*2, 30*time.Second)
	}
}

// identity returns the bot's identity, calling auth.test once.
func (a *Adapter) identity(ctx context.Context) (identity, error) {
	a.identMu.Lock()
	defer a.identMu.Unlock()
	if a.ident.ok {
		return a.ident, nil
	}
	resp, err := a.api.AuthTestContext(ctx)
	if err != nil {
		return identity{}, err
	}
	a.ident = identity{ok: true, userID: resp.UserID, botID: resp.BotID, teamID: resp.TeamID}
	return a.ident, nil
}

func fatalAuthError(err error) bool {
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		return isAuthCode(se.Err)
	}
	return isAuthCode(err.Error())
}

func isAuthCode(code string) bool {
	switch code {
	case "invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired",
		"not_allowed_token_type", "missing_scope", "no_permission":
		return true
	}
	return false
}

// pacingFor returns the workspace's pacing layer.
func (a *Adapter) pacingFor(team string) *pacing {
	a.wsMu.Lock()
	defer a.wsMu.Unlock()
	p, ok := a.workspaces[team]
	if !ok {
		p = newPacing(&a.cfg)
		a.workspaces[team] = p
	}
	return p
}

// goBackground runs fn in a goroutine that Run waits for on shutdown.
func (a *Adapter) goBackground(ctx context.Context, fn func(context.Context)) {
	if fn == nil {
		return
	}
	a.bg.Add(1)
	go func() {
		defer a.bg.Done()
		fn(ctx)
	}()
}

// Check verifies the configuration for `cometbot doctor`: token shapes,
// auth.test with the bot token and, for Socket Mode, that the app-level
// token can open a connection. Errors say how to fix them and never contain
// secrets.
func (a *Adapter) Check(ctx context.Context) error {
	var errs []error
	bt := strings.TrimSpace(a.cfg.BotToken)
	switch {
	case strings.HasPrefix(bt, "xoxb-"):
	case strings.HasPrefix(bt, "xapp-"):
		errs = append(errs, errors.New("slack: SLACK_BOT_TOKEN holds an app-level token (xapp-…); use the Bot User OAuth Token (xoxb-…) from OAuth & Permissions, and put the xapp- token in SLACK_APP_TOKEN"))
	case strings.HasPrefix(bt, "xoxp-"):
		errs = append(errs, errors.New("slack: SLACK_BOT_TOKEN holds a user token (xoxp-…); use the Bot User OAuth Token (xoxb-…) from OAuth & Permissions"))
	default:
		errs = append(errs, errors.New("slack: SLACK_BOT_TOKEN does not look like a bot token (expected xoxb-…); copy the Bot User OAuth Token from OAuth & Permissions"))
	}
	if at := strings.TrimSpace(a.cfg.AppToken); at != "" && !strings.HasPrefix(at, "xapp-") {
		errs = append(errs, errors.New("slack: SLACK_APP_TOKEN does not look like an app-level token (expected xapp-…); create one under Basic Information → App-Level Tokens with the connections:write scope"))
	}
	if a.cfg.AppToken == "" && a.cfg.SigningSecret == "" {
		errs = append(errs, errors.New("slack: neither SLACK_APP_TOKEN (Socket Mode) nor SLACK_SIGNING_SECRET (HTTP Events API) is set; set one of them"))
	}
	resp, err := a.api.AuthTestContext(ctx)
	if err != nil {
		errs = append(errs, fmt.Errorf("slack: auth.test with the bot token failed: %w; %s", err, authHint(err)))
	} else if resp.BotID == "" {
		errs = append(errs, errors.New("slack: auth.test: the token does not belong to a bot user; use the Bot User OAuth Token (xoxb-…)"))
	}
	if at := strings.TrimSpace(a.cfg.AppToken); strings.HasPrefix(at, "xapp-") {
		if _, _, err := a.api.StartSocketModeContext(ctx); err != nil {
			errs = append(errs, fmt.Errorf("slack: apps.connections.open with the app-level token failed: %w; enable Socket Mode in the app settings and give the app-level token the connections:write scope", err))
		}
	}
	return errors.Join(errs...)
}

func authHint(err error) string {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "invalid_auth"), strings.Contains(msg, "not_authed"):
		return "the token is wrong or the app was uninstalled: reinstall the app and copy the Bot User OAuth Token again"
	case strings.Contains(msg, "token_revoked"), strings.Contains(msg, "account_inactive"):
		return "the token was revoked: reinstall the app to the workspace"
	case strings.Contains(msg, "not_allowed_token_type"):
		return "wrong kind of token: SLACK_BOT_TOKEN must be the xoxb- bot token"
	default:
		return "check the network path to Slack (SLACK_API_URL) and try again"
	}
}

// slogOutput lets slack-go's debug logger write to slog at debug level.
type slogOutput struct{ l *slog.Logger }

// Output implements slack-go's logger interface.
func (s slogOutput) Output(_ int, msg string) error {
	s.l.Debug(strings.TrimSpace(msg), "source", "slack-go")
	return nil
}
