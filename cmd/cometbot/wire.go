package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cometbot/cometbot/bot"
	"github.com/cometbot/cometbot/internal/config"
	"github.com/cometbot/cometbot/internal/fetch"
	"github.com/cometbot/cometbot/internal/mcp"
	"github.com/cometbot/cometbot/internal/metrics"
	"github.com/cometbot/cometbot/llm"
	"github.com/cometbot/cometbot/storage"
)

// defaultSystemPrompt applies when neither config nor a command set one.
const defaultSystemPrompt = "You are cometbot, a helpful assistant in a team chat. Answer clearly and concisely, and use Markdown for code."

// core is what every serving command shares: store, catalog, gateway client
// and engine.
type core struct {
	cfg     *config.Config
	log     *slog.Logger
	store   *storage.Store
	catalog *llm.Catalog
	client  *llm.Client
	engine  *bot.Engine
	// metrics holds the Prometheus collectors served on GET /metrics.
	metrics *metrics.Metrics

	// fetcher is the one safe attachment downloader every adapter shares.
	fetcher *fetch.Fetcher
	// mcp serves the MCP servers' tools (nil without servers); stopMCP
	// ends its Run, which closes mcpDone.
	mcp     *mcp.Manager
	stopMCP context.CancelFunc
	mcpDone chan struct{}

	closeOnce sync.Once
}

// newFetcher builds the shared attachment fetcher: the platforms' file hosts
// plus the configured API hosts (so proxies and test fakes work).
func newFetcher(cfg *config.Config) *fetch.Fetcher {
	a := cfg.File.Attachments
	hosts := append([]string(nil), fetch.DefaultHosts...)
	for _, u := range []string{cfg.Slack.APIURL, cfg.Discord.APIURL} {
		if h := fetch.HostOf(u); h != "" {
			hosts = append(hosts, h)
		}
	}
	return fetch.New(fetch.Config{MaxBytes: a.MaxBytes, Timeout: a.Timeout, Concurrency: a.Concurrency, AllowHosts: hosts})
}

// openCore opens the store, loads the catalog from its cache and builds the
// gateway client and the engine. Close it with shutdown.
func openCore(ctx context.Context, cfg *config.Config, log *slog.Logger) (*core, error) {
	var cat *llm.Catalog
	mx := metrics.New(metrics.Options{KnownModel: func(id string) bool {
		_, ok := cat.Lookup(id)
		return ok
	}})
	st, err := storage.Open(cfg.DBPath, storage.Options{Timeout: 2 * time.Second, MaxConversationBlobBytes: cfg.File.Attachments.ConversationBytes, ObserveCommit: mx.DBCommit})
	if err != nil {
		return nil, err
	}
	f := cfg.File
	cat = llm.NewCatalog(llm.CatalogConfig{URL: cfg.CatalogURL, Refresh: f.Gateway.CatalogRefresh, Cache: st, Logger: log})
	if err := cat.Load(ctx); err != nil {
		log.Info("no cached model catalog yet; it will be fetched in the background", "err", err)
	}
	routes := make([]llm.Route, 0, len(f.Gateway.Routes))
	for _, r := range f.Gateway.Routes {
		routes = append(routes, llm.Route{Pattern: r.Model, Format: llm.Format(r.Format)})
	}
	client, err := llm.NewClient(llm.Config{
		BaseURL: cfg.BaseURL, APIKey: cfg.APIKey.Value(), MaxConcurrency: f.Gateway.MaxConcurrency,
		StallTimeout: f.Gateway.StallTimeout, RetryDeadline: f.Gateway.RetryDeadline,
		Logger: log, Catalog: cat, Routes: routes, UserAgent: "cometbot/" + version, Metrics: mx,
	})
	if err != nil {
		_ = st.Close()
		return nil, fmt.Errorf("gateway client: %w", err)
	}
	opts := engineOptions(cfg, st, client, cat, log)
	opts.Metrics = mx
	tools := mcpManager(cfg, log)
	if tools != nil {
		opts.Tools.Source = tools
	}
	eng, err := bot.New(opts)
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	c := &core{cfg: cfg, log: log, store: st, catalog: cat, client: client, engine: eng, metrics: mx, fetcher: newFetcher(cfg), mcp: tools}
	if tools != nil {
		// The MCP servers connect (and reconnect) in the background: a
		// server that is down never holds up the bot.
		mctx, stop := context.WithCancel(context.WithoutCancel(ctx))
		c.stopMCP = stop
		c.mcpDone = make(chan struct{})
		go func() {
			defer close(c.mcpDone)
			_ = tools.Run(mctx)
		}()
	}
	return c, nil
}

// engineOptions maps the configuration onto the engine's options.
func engineOptions(cfg *config.Config, st *storage.Store, client *llm.Client, cat *llm.Catalog, log *slog.Logger) bot.Options {
	f := cfg.File
	r := reconfig(cfg)
	return bot.Options{
		Store: st, Model: client, Catalog: cat, Logger: log, Blobs: st,
		Attachments: bot.AttachmentOptions{
			MaxFiles: f.Attachments.MaxFiles, MaxBytes: f.Attachments.MaxBytes, ContextBytes: f.Attachments.ContextBytes,
		},
		Defaults:                 r.Defaults,
		Workspaces:               r.Workspaces,
		Channels:                 r.Channels,
		MaxConcurrent:            f.MaxConcurrentReplies,
		HistoryMessages:          f.History.MaxMessages,
		ContextTokens:            f.History.ContextTokens,
		MentionRequiredInThreads: f.MentionRequiredInThreads,
		MaxAnswerChars:           f.MaxAnswerChars,
		Tools:                    r.Tools,
		ResumeWindow:             f.ResumeWindow,
		InterruptWait:            planShutdown(cfg.ShutdownTimeout()).interrupt,
		Policy:                   r.Policy,
	}
}

// reconfig is the reloadable part of the engine's options: defaults,
// policy and tool policy (Reconfigure swaps it on a reload).
func reconfig(cfg *config.Config) bot.Reconfig {
	f := cfg.File
	scoped := func(m map[string]config.Scoped) map[string]bot.Defaults {
		out := make(map[string]bot.Defaults, len(m))
		for id, s := range m {
			out[id] = bot.Defaults{Model: s.Model, SystemPrompt: s.SystemPrompt, Temperature: s.Temperature, MaxOutputTokens: s.MaxOutputTokens}
		}
		return out
	}
	system := f.SystemPrompt
	if system == "" {
		system = defaultSystemPrompt
	}
	a := f.Access
	return bot.Reconfig{
		Defaults:   bot.Defaults{Model: cfg.Model(), SystemPrompt: system, Temperature: f.Temperature, MaxOutputTokens: f.MaxOutputTokens},
		Workspaces: scoped(f.Workspaces),
		Channels:   scoped(f.Channels),
		Tools:      toolOptions(f.Tools),
		Policy: bot.Policy{
			Admins: a.Admins, AdminRoles: a.AdminRoles, AdminsOnlyModelSwitch: a.AdminsOnlyModelSwitch,
			AllowUsers: a.AllowUsers, DenyUsers: a.DenyUsers, AllowChannels: a.AllowChannels, DenyChannels: a.DenyChannels,
			AllowWorkspaces: a.AllowWorkspaces, DenyWorkspaces: a.DenyWorkspaces, AllowRoles: a.AllowRoles, DenyRoles: a.DenyRoles,
			DisableDMs: a.DMs != nil && !*a.DMs,
			Aliases:    f.Aliases,
			Budgets: bot.Budgets{
				User:         bot.Limit(f.Budgets.User),
				Channel:      bot.Limit(f.Budgets.Channel),
				Workspace:    bot.Limit(f.Budgets.Workspace),
				AdminsExempt: f.Budgets.AdminsExempt,
			},
			RatePerMinute: f.RateLimit.PerMinute,
			RateBurst:     f.RateLimit.Burst,
			UsageFooter:   f.UsageFooter,
		},
	}
}

// shutdown drains the engine (in-flight replies finish within plan.drain,
// the rest are finalized as interrupted within plan.interrupt) and closes
// the store. It is safe to call more than once.
func (c *core) shutdown(plan shutdownPlan) {
	c.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), plan.drain)
		defer cancel()
		if err := c.engine.Shutdown(ctx); err != nil {
			c.log.Warn("engine shutdown", "err", err)
		}
		if c.stopMCP != nil {
			c.stopMCP()
			select {
			case <-c.mcpDone:
			case <-ctx.Done():
				c.log.Warn("MCP servers still closing at shutdown")
			}
		}
		if err := c.store.Close(); err != nil {
			c.log.Warn("close store", "err", err)
		}
	})
}

var errNoPlatform = errors.New(`no chat platform is configured.
Set one of:
  SLACK_BOT_TOKEN and SLACK_APP_TOKEN     (Slack, Socket Mode)
  SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET (Slack, HTTP Events API)
  DISCORD_BOT_TOKEN                        (Discord)
or run "cometbot chat" to talk to the bot in the terminal without any platform`)

// mcpManager builds the MCP client for the configured servers (nil when
// there are none); ${VAR} in env and header values reads the environment.
func mcpManager(cfg *config.Config, log *slog.Logger) *mcp.Manager {
	servers := cfg.File.Tools.MCPServers
	if len(servers) == 0 {
		return nil
	}
	out := make([]mcp.Server, len(servers))
	for i, s := range servers {
		srv := mcp.Server(s)
		srv.Env = expandAll(s.Env)
		srv.Headers = expandAll(s.Headers)
		out[i] = srv
	}
	timeout := cfg.File.Tools.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	return mcp.New(out, mcp.Options{Logger: log.With("component", "mcp"), CallTimeout: timeout, Version: version})
}

func expandAll(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = config.ExpandEnv(v)
	}
	return out
}

// toolOptions maps the YAML tools section onto the engine's tool policy
// (the MCP tool source is added by openCore).
func toolOptions(t config.Tools) bot.ToolOptions {
	scopes := func(m map[string]config.ToolScope) map[string]bot.ToolScope {
		out := make(map[string]bot.ToolScope, len(m))
		for id, s := range m {
			var allow []string
			if s.Allow != nil {
				allow = append([]string{}, *s.Allow...)
			}
			out[id] = bot.ToolScope{Allow: allow, WebSearch: s.WebSearch}
		}
		return out
	}
	o := bot.ToolOptions{
		MaxRounds: t.MaxRounds, Timeout: t.Timeout, MaxResultChars: t.MaxResultChars, WebSearch: t.WebSearch,
		Workspaces: scopes(t.Workspaces), Channels: scopes(t.Channels), Roles: scopes(t.Roles),
	}
	if t.Allow != nil {
		o.Allow = append([]string{}, *t.Allow...)
	}
	return o
}
