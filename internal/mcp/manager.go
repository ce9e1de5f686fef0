package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os/exec"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cometbot/cometbot/bot"
	"github.com/cometbot/cometbot/internal/redact"
	"github.com/cometbot/cometbot/llm"
)

// Defaults for Options' zero values.
const (
	DefaultCallTimeout    = 60 * time.Second
	DefaultConnectTimeout = 30 * time.Second
	DefaultPingInterval   = 30 * time.Second
	DefaultMinBackoff     = time.Second
	DefaultMaxBackoff     = 60 * time.Second
	DefaultStopTimeout    = 2 * time.Second
	DefaultMaxImageBytes  = llm.MaxImageBytes

	// maxToolsPerServer bounds the tools kept from one server.
	maxToolsPerServer = 1000
)

// ErrNotConnected is returned (wrapped) by a tool's Call while its server
// is not connected.
var ErrNotConnected = errors.New("not connected")

// errDisconnected ends the calls in flight when their server disconnects
// or the Manager stops; it wraps ErrNotConnected.
type errDisconnected struct{ reason string }

func (e errDisconnected) Error() string { return "disconnected: " + e.reason }
func (e errDisconnected) Unwrap() error { return ErrNotConnected }

// ErrCallTimeout is returned (wrapped) by a tool's Call when the server did
// not answer within Options.CallTimeout.
var ErrCallTimeout = errors.New("tool call timed out")

// Options tune a Manager. Zero values take the defaults.
type Options struct {
	// Logger receives connection events (nil: slog.Default()).
	Logger *slog.Logger
	// CallTimeout bounds one tool call (default 60s); the caller's context
	// may end it sooner.
	CallTimeout time.Duration
	// ConnectTimeout bounds connecting to a server and listing its tools,
	// and each later refresh or ping (default 30s).
	ConnectTimeout time.Duration
	// PingInterval is how often an idle connection is checked (default 30s;
	// negative: never): with a ping, or a tools/list on protocol versions
	// without ping (2026-07-28 on). A failed check reconnects.
	PingInterval time.Duration
	// MinBackoff and MaxBackoff bound the jittered exponential delay between
	// connection attempts to a server that is down (default 1s to 60s).
	MinBackoff, MaxBackoff time.Duration
	// StopTimeout is how long a stdio server may take to exit after its
	// stdin is closed, before SIGTERM and then SIGKILL (default 2s).
	StopTimeout time.Duration
	// MaxImageBytes bounds each image a tool returns (decoded; default
	// 20 MiB); a larger one is described in the text instead. Note that the
	// SDK also caps a whole stdio message or SSE event at 16 MiB, base64
	// included.
	MaxImageBytes int
	// HTTPTransport carries the requests to HTTP servers (nil: a transport
	// of the Manager's own, whose idle connections are closed when Run
	// returns).
	HTTPTransport http.RoundTripper
	// Version is the client version sent to servers (default "dev").
	Version string
	// ProtocolVersion pins the MCP protocol version offered (default: the
	// SDK's latest, which falls back to older versions as servers require).
	ProtocolVersion string
}

func (o *Options) setDefaults() {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.CallTimeout, DefaultCallTimeout)
	def(&o.ConnectTimeout, DefaultConnectTimeout)
	def(&o.MinBackoff, DefaultMinBackoff)
	def(&o.MaxBackoff, DefaultMaxBackoff)
	def(&o.StopTimeout, DefaultStopTimeout)
	if o.PingInterval == 0 {
		o.PingInterval = DefaultPingInterval
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = o.MinBackoff
	}
	if o.MaxImageBytes <= 0 {
		o.MaxImageBytes = DefaultMaxImageBytes
	}
	if o.Version == "" {
		o.Version = "dev"
	}
}

// ServerStatus is the state of one server, for `cometbot doctor` and logs.
type ServerStatus struct {
	Name string
	// Transport is "stdio" or "http"; Target the program or the URL's
	// scheme and host (no secrets).
	Transport, Target string
	// Connected reports whether the server is connected now.
	Connected bool
	// Tools counts the tools it offers (0 while disconnected).
	Tools int
	// Err is the last connection error while disconnected ("" before the
	// first attempt and while connected).
	Err string
	// Since is when the server last connected or disconnected (when the
	// Manager was made, before the first attempt).
	Since time.Time
}

// Manager keeps the connections to a list of MCP servers and offers their
// tools. It implements bot.ToolSource. Its methods are safe for concurrent
// use.
type Manager struct {
	opts    Options
	log     *slog.Logger
	servers []*server
	ownRT   *http.Transport // nil when Options.HTTPTransport was given
	started atomic.Bool

	mu    sync.Mutex
	tools []bot.Tool // the offered tools; rebuilt when stale
	stale bool
}

var _ bot.ToolSource = (*Manager)(nil)

// server is one configured server and its connection state.
type server struct {
	m       *Manager
	cfg     Server
	log     *slog.Logger
	client  *sdk.Client
	refresh chan struct{} // a tools/list_changed arrived (capacity 1)
	// inflight counts tool calls in progress (no pings meanwhile).
	inflight atomic.Int32

	// Guarded by m.mu.
	session *sdk.ClientSession // nil while disconnected
	// live ends (with the reason as its cause) when the session is about to
	// be closed, cutting the calls in flight: closing waits for them.
	live      context.Context
	defs      []toolDef
	err       string
	since     time.Time
	connected bool
}

// toolDef is a tool as listed by its server, ready to offer.
type toolDef struct {
	name, desc string
	params     json.RawMessage
}

// New returns a Manager for servers (which Validate should have accepted).
// Nothing connects before Run.
func New(servers []Server, opts Options) *Manager {
	opts.setDefaults()
	m := &Manager{opts: opts, log: opts.Logger, stale: true}
	if opts.HTTPTransport == nil {
		m.ownRT = http.DefaultTransport.(*http.Transport).Clone()
		m.opts.HTTPTransport = m.ownRT
	}
	now := time.Now()
	for _, cfg := range servers {
		s := &server{
			m:       m,
			cfg:     cfg,
			log:     m.log.With("mcp_server", cfg.Name),
			refresh: make(chan struct{}, 1),
			since:   now,
		}
		s.client = sdk.NewClient(&sdk.Implementation{Name: "cometbot", Version: opts.Version}, &sdk.ClientOptions{
			Logger: s.log,
			// No roots, sampling or elicitation: cometbot only calls tools.
			Capabilities: &sdk.ClientCapabilities{},
			ToolListChangedHandler: func(context.Context, *sdk.ToolListChangedRequest) {
				select {
				case s.refresh <- struct{}{}:
				default:
				}
			},
		})
		m.servers = append(m.servers, s)
	}
	return m
}

// Run connects to every server concurrently and keeps the connections up
// until ctx ends: a server that is down or drops is retried with jittered
// exponential backoff (Options.MinBackoff to MaxBackoff) without affecting
// the others. When ctx ends, Run closes every session, stops the stdio
// servers and returns ctx's error once all its goroutines have ended. Run
// may be called once.
func (m *Manager) Run(ctx context.Context) error {
	if !m.started.CompareAndSwap(false, true) {
		return errors.New("mcp: Manager.Run called twice")
	}
	var wg sync.WaitGroup
	for _, s := range m.servers {
		wg.Go(func() { s.run(ctx) })
	}
	wg.Wait()
	<-ctx.Done() // when there is no server
	if m.ownRT != nil {
		m.ownRT.CloseIdleConnections()
	}
	return ctx.Err()
}

// Tools returns the tools of the servers connected now, in the order of the
// configuration and then of each server's list. Spec.Name is
// "<server>_<tool>" within [A-Za-z0-9_-]{1,64} (characters outside the set
// become '_'; a name too long, or one shared by two tools, ends with '_' and
// 8 hex digits of a hash of the server and tool names).
func (m *Manager) Tools() []bot.Tool {
	m.mu.Lock()
	if m.stale {
		m.tools = m.buildLocked()
		m.stale = false
	}
	tools := slices.Clone(m.tools)
	m.mu.Unlock()
	return tools
}

// buildLocked makes the offered tool list from the servers' lists.
func (m *Manager) buildLocked() []bot.Tool {
	var pairs [][2]string
	var from []*server
	var defs []*toolDef
	for _, s := range m.servers {
		if !s.connected {
			continue
		}
		for i := range s.defs {
			pairs = append(pairs, [2]string{s.cfg.Name, s.defs[i].name})
			from = append(from, s)
			defs = append(defs, &s.defs[i])
		}
	}
	names, ok := assignNames(pairs)
	tools := make([]bot.Tool, 0, len(pairs))
	for i, d := range defs {
		if !ok[i] {
			continue // a duplicate name in one server's list
		}
		s, name := from[i], d.name
		tools = append(tools, bot.Tool{
			Server: s.cfg.Name,
			Name:   name,
			Spec:   llm.Tool{Name: names[i], Description: d.desc, Parameters: d.params},
			Call: func(ctx context.Context, args json.RawMessage) (bot.ToolOutput, error) {
				return s.call(ctx, name, args)
			},
		})
	}
	return tools
}

// Status reports every server, in the order of the configuration.
func (m *Manager) Status() []ServerStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := make([]ServerStatus, len(m.servers))
	for i, s := range m.servers {
		st[i] = ServerStatus{
			Name:      s.cfg.Name,
			Transport: s.cfg.transport(),
			Target:    s.cfg.target(),
			Connected: s.connected,
			Err:       s.err,
			Since:     s.since,
		}
		if s.connected {
			st[i].Tools = len(s.defs)
		}
	}
	return st
}

// run keeps s connected until ctx ends.
func (s *server) run(ctx context.Context) {
	opts := &s.m.opts
	attempt := 0
	lastLogged := ""
	for {
		start := time.Now()
		sess, proc, endCalls, err := s.connect(ctx)
		if err == nil {
			lastLogged = ""
			s.serve(ctx, sess, proc, endCalls)
			if time.Since(start) >= opts.MaxBackoff {
				attempt = 0 // it stayed up: not a crash loop
			}
		}
		if ctx.Err() != nil {
			s.setDown(errors.New("stopped"))
			return
		}
		delay := backoff(attempt, opts.MinBackoff, opts.MaxBackoff)
		attempt++
		if err != nil {
			msg := s.setDown(err)
			// Log a new error as a warning, its repetitions at debug level.
			level := slog.LevelWarn
			if msg == lastLogged {
				level = slog.LevelDebug
			}
			lastLogged = msg
			s.log.Log(ctx, level, "mcp: server unavailable", "transport", s.cfg.transport(),
				"target", s.cfg.target(), "err", msg, "retry_in", delay.Round(time.Millisecond))
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			s.setDown(errors.New("stopped"))
			return
		case <-t.C:
		}
	}
}

// backoff is the delay before attempt n (from 0): min·2ⁿ capped at max,
// with equal jitter (a random point in its upper half).
func backoff(n int, lo, hi time.Duration) time.Duration {
	d := hi
	if n < 32 {
		if x := lo << n; x > 0 && x < hi {
			d = x
		}
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// process is a stdio server's child process.
type process struct {
	cmd    *exec.Cmd
	stderr *stderrLog
}

// stop kills what is left of the process group (the SDK stopped the child).
func (p *process) stop() {
	if p != nil {
		killProcGroup(p.cmd)
	}
}

// tail is what the child last wrote to stderr, for an error (see
// stderrLog.tail); "" for HTTP.
func (p *process) tail() string {
	if p == nil {
		return ""
	}
	return p.stderr.tail()
}

// connect opens a session and lists its tools; on success s is connected.
// proc is the stdio server's process (nil for HTTP); endCalls ends s.live.
func (s *server) connect(ctx context.Context) (_ *sdk.ClientSession, proc *process, endCalls context.CancelCauseFunc, _ error) {
	opts := &s.m.opts
	cctx, cancel := context.WithTimeout(ctx, opts.ConnectTimeout)
	defer cancel()
	var t sdk.Transport
	if s.cfg.URL != "" {
		t = httpTransport(&s.cfg, opts.HTTPTransport)
	} else {
		proc = &process{}
		t, proc.cmd, proc.stderr = stdioTransport(&s.cfg, opts.StopTimeout, s.log)
	}
	// A list_changed of an earlier session is answered by this list.
	select {
	case <-s.refresh:
	default:
	}
	sess, err := s.client.Connect(cctx, t, &sdk.ClientSessionOptions{ProtocolVersion: opts.ProtocolVersion})
	if err != nil {
		// The SDK closed what it started: the child's stderr is complete.
		proc.stop()
		return nil, nil, nil, fmt.Errorf("connect: %w%s", err, proc.tail())
	}
	defs, err := s.list(cctx, sess)
	if err != nil {
		_ = sess.Close()
		proc.stop()
		return nil, nil, nil, fmt.Errorf("list tools: %w%s", err, proc.tail())
	}
	live, endCalls := context.WithCancelCause(context.Background())
	s.m.mu.Lock()
	s.session, s.live, s.defs, s.connected, s.err, s.since = sess, live, defs, true, "", time.Now()
	s.m.stale = true
	s.m.mu.Unlock()
	attrs := []any{"transport", s.cfg.transport(), "target", s.cfg.target(), "tools", len(defs)}
	if ir := sess.InitializeResult(); ir != nil {
		attrs = append(attrs, "protocol", ir.ProtocolVersion)
		if ir.ServerInfo != nil {
			attrs = append(attrs, "server_info", ir.ServerInfo.Name+" "+ir.ServerInfo.Version)
		}
	}
	s.log.Info("mcp: server connected", attrs...)
	return sess, proc, endCalls, nil
}

// list fetches the server's tools (every page, at most maxToolsPerServer);
// a server without the tools capability has none.
func (s *server) list(ctx context.Context, sess *sdk.ClientSession) ([]toolDef, error) {
	if ir := sess.InitializeResult(); ir != nil && (ir.Capabilities == nil || ir.Capabilities.Tools == nil) {
		return nil, nil
	}
	var defs []toolDef
	for t, err := range sess.Tools(ctx, nil) {
		if err != nil {
			return nil, err
		}
		if t.Name == "" {
			continue
		}
		if len(defs) == maxToolsPerServer {
			s.log.Warn("mcp: server lists too many tools; keeping the first ones", "kept", maxToolsPerServer)
			break
		}
		d := toolDef{name: t.Name, desc: t.Description}
		if d.desc == "" {
			d.desc = t.Title
		}
		if d.desc == "" && t.Annotations != nil {
			d.desc = t.Annotations.Title
		}
		if t.InputSchema != nil {
			b, err := json.Marshal(t.InputSchema)
			if err != nil {
				return nil, fmt.Errorf("tool %q: input schema: %w", t.Name, err)
			}
			if !bytes.Equal(b, []byte("null")) {
				d.params = b
			}
		}
		defs = append(defs, d)
	}
	return defs, nil
}

// serve watches a connected session until it ends or ctx does: it refreshes
// the tools on list_changed and pings the server when idle. It leaves s
// disconnected, the session closed and the stdio server stopped.
func (s *server) serve(ctx context.Context, sess *sdk.ClientSession, proc *process, endCalls context.CancelCauseFunc) {
	opts := &s.m.opts
	var waitErr error
	done := make(chan struct{})
	go func() {
		waitErr = sess.Wait()
		close(done)
	}()
	var tick <-chan time.Time
	if opts.PingInterval > 0 {
		t := time.NewTicker(opts.PingInterval)
		defer t.Stop()
		tick = t.C
	}
	var reason error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-done:
			reason = errors.New("the server closed the connection")
			if waitErr != nil {
				reason = fmt.Errorf("connection lost: %w", waitErr)
			}
			break loop
		case <-s.refresh:
			if err := s.relist(ctx, sess); err != nil {
				reason = fmt.Errorf("refreshing tools: %w", err)
				break loop
			}
		case <-tick:
			if s.inflight.Load() > 0 {
				continue // a call in progress will tell
			}
			if err := s.probe(ctx, sess); err != nil {
				reason = fmt.Errorf("health check: %w", err)
				break loop
			}
		}
	}
	if ctx.Err() != nil {
		reason = errors.New("stopped")
	}
	msg := s.setDown(reason)
	// Cut the calls in flight (the SDK tells the server) before closing:
	// Close waits for them.
	endCalls(fmt.Errorf("mcp server %q %w", s.cfg.Name, errDisconnected{msg}))
	_ = sess.Close()
	<-done
	proc.stop()
	if ctx.Err() == nil {
		if tail := proc.tail(); tail != "" {
			msg = s.noteErr(msg + tail)
		}
		s.log.Warn("mcp: server disconnected", "err", msg)
	}
}

// noteErr replaces the error kept for Status while s is still disconnected,
// and returns msg.
func (s *server) noteErr(msg string) string {
	s.m.mu.Lock()
	if !s.connected {
		s.err = msg
	}
	s.m.mu.Unlock()
	return msg
}

// relist fetches the tools again and offers them if they changed.
func (s *server) relist(ctx context.Context, sess *sdk.ClientSession) error {
	lctx, cancel := context.WithTimeout(ctx, s.m.opts.ConnectTimeout)
	defs, err := s.list(lctx, sess)
	cancel()
	if err != nil {
		return err
	}
	s.m.mu.Lock()
	changed := !slices.EqualFunc(s.defs, defs, func(a, b toolDef) bool {
		return a.name == b.name && a.desc == b.desc && bytes.Equal(a.params, b.params)
	})
	if changed {
		s.defs = defs
		s.m.stale = true
	}
	s.m.mu.Unlock()
	if changed {
		s.log.Info("mcp: tools changed", "tools", len(defs))
	}
	return nil
}

// statelessProtocol is the first protocol version without sessions (SEP-2575)
// and without ping.
const statelessProtocol = "2026-07-28"

// probe checks that the server still answers: with a ping on the 2025
// protocols; with a tools/list from statelessProtocol on, which has no ping
// (SDK v1.8.0's Ping also omits the _meta those versions require). The list
// also catches a tools/list_changed that was lost.
func (s *server) probe(ctx context.Context, sess *sdk.ClientSession) error {
	if ir := sess.InitializeResult(); ir != nil && ir.ProtocolVersion >= statelessProtocol {
		return s.relist(ctx, sess)
	}
	pctx, cancel := context.WithTimeout(ctx, s.m.opts.ConnectTimeout)
	defer cancel()
	if err := sess.Ping(pctx, nil); err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	return nil
}

// setDown marks s disconnected because of err and returns the error text
// kept for Status (URLs reduced to scheme and host).
func (s *server) setDown(err error) string {
	msg := redact.Error(err).Error()
	s.m.mu.Lock()
	if s.connected {
		s.m.stale = true
		s.since = time.Now()
	} else if s.err == "" {
		s.since = time.Now()
	}
	s.session, s.live, s.defs, s.connected, s.err = nil, nil, nil, false, msg
	s.m.mu.Unlock()
	return msg
}

// call runs tools/call on the current session.
func (s *server) call(ctx context.Context, tool string, args json.RawMessage) (bot.ToolOutput, error) {
	opts := &s.m.opts
	s.m.mu.Lock()
	sess, live, lastErr := s.session, s.live, s.err
	s.m.mu.Unlock()
	if sess == nil {
		if lastErr == "" {
			return bot.ToolOutput{}, fmt.Errorf("mcp server %q is %w yet", s.cfg.Name, ErrNotConnected)
		}
		return bot.ToolOutput{}, fmt.Errorf("mcp server %q is %w: %s", s.cfg.Name, ErrNotConnected, lastErr)
	}
	params := &sdk.CallToolParams{Name: tool}
	if a := bytes.TrimSpace(args); len(a) > 0 && !bytes.Equal(a, []byte("null")) {
		if a[0] != '{' || !json.Valid(a) {
			return bot.ToolOutput{}, fmt.Errorf("mcp %s.%s: arguments must be a JSON object", s.cfg.Name, tool)
		}
		params.Arguments = json.RawMessage(a)
	}
	s.inflight.Add(1)
	defer s.inflight.Add(-1)
	cctx, cancel := context.WithTimeoutCause(ctx, opts.CallTimeout, ErrCallTimeout)
	defer cancel()
	stop := context.AfterFunc(live, cancel)
	defer stop()
	res, err := sess.CallTool(cctx, params)
	if err != nil {
		switch {
		case ctx.Err() != nil:
			return bot.ToolOutput{}, fmt.Errorf("mcp %s.%s: %w", s.cfg.Name, tool, ctx.Err())
		case live.Err() != nil:
			return bot.ToolOutput{}, fmt.Errorf("mcp %s.%s: %w", s.cfg.Name, tool, context.Cause(live))
		case errors.Is(context.Cause(cctx), ErrCallTimeout):
			return bot.ToolOutput{}, fmt.Errorf("mcp %s.%s: %w (no answer within %s)", s.cfg.Name, tool, ErrCallTimeout, opts.CallTimeout)
		}
		return bot.ToolOutput{}, fmt.Errorf("mcp %s.%s: %w", s.cfg.Name, tool, redact.Error(err))
	}
	return toOutput(res, opts.MaxImageBytes), nil
}
