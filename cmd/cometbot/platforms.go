package main

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/cometbot/cometbot/adapters/discord"
	"github.com/cometbot/cometbot/adapters/slack"
	"github.com/cometbot/cometbot/bot"
	"github.com/cometbot/cometbot/internal/config"
)

// slackConfig maps the configuration onto the Slack adapter's.
func slackConfig(cfg *config.Config, log *slog.Logger) slack.Config {
	f := cfg.File
	// Native streaming is opt-in: its methods share a ~100/min workspace
	// budget that caps a workspace near 50 replies a minute, while classic
	// post + update finals can fall back to per-channel posts.
	native := f.Slack.NativeStreaming != nil && *f.Slack.NativeStreaming
	return slack.Config{
		BotToken: cfg.Slack.BotToken.Value(), AppToken: cfg.Slack.AppToken.Value(), SigningSecret: cfg.Slack.SigningSecret.Value(),
		APIURL: cfg.Slack.APIURL, MentionRequiredInThreads: f.MentionRequiredInThreads, CommandNames: f.Slack.Commands,
		NativeStreaming: native, UpdatesPerMinute: f.Slack.UpdatesPerMinute, Logger: log.With("platform", "slack"),
	}
}

// discordConfig maps the configuration onto the Discord adapter's.
func discordConfig(cfg *config.Config, log *slog.Logger) discord.Config {
	f := cfg.File
	return discord.Config{
		Token: cfg.Discord.Token.Value(), APIURL: cfg.Discord.APIURL, GuildIDs: f.Discord.GuildIDs,
		OpenThreads: f.Discord.OpenThreads == nil || *f.Discord.OpenThreads, MentionRequiredInThreads: f.MentionRequiredInThreads,
		Logger: log.With("platform", "discord"),
	}
}

// buildPlatforms creates an adapter for every platform whose tokens are set,
// and the HTTP handlers they serve on COMETBOT_HTTP_ADDR.
func buildPlatforms(cfg *config.Config, c *core, log *slog.Logger) ([]namedPlatform, map[string]http.Handler, error) {
	var ps []namedPlatform
	handlers := map[string]http.Handler{}
	if cfg.Slack.Enabled() {
		sc := slackConfig(cfg, log)
		sc.Fetcher = c.fetcher
		sc.Metrics = c.metrics
		a, err := slack.New(sc, c.engine)
		if err != nil {
			return nil, nil, err
		}
		ps = append(ps, namedPlatform{"slack", a})
		if cfg.Slack.SigningSecret.Set() {
			handlers["/slack/"] = a.HTTPHandler()
		}
	}
	if cfg.Discord.Enabled() {
		dc := discordConfig(cfg, log)
		dc.Fetcher = c.fetcher
		dc.Metrics = c.metrics
		a, err := discord.New(dc, c.engine)
		if err != nil {
			return nil, nil, err
		}
		ps = append(ps, namedPlatform{"discord", a})
	}
	return ps, handlers, nil
}

// platformChecks returns doctor checks for every configured platform.
func platformChecks(cfg *config.Config) []check {
	log := slog.New(slog.DiscardHandler)
	var checks []check
	if cfg.Slack.Enabled() {
		checks = append(checks, check{"slack", func(ctx context.Context) (string, error) {
			a, err := slack.New(slackConfig(cfg, log), idleEngine{})
			if err != nil {
				return "", err
			}
			if err := a.Check(ctx); err != nil {
				return "", err
			}
			mode := "Socket Mode"
			if !cfg.Slack.AppToken.Set() {
				mode = "HTTP Events API on " + cfg.HTTPAddr + "/slack/events"
			}
			return "bot token accepted (" + mode + ")", nil
		}})
	}
	if cfg.Discord.Enabled() {
		checks = append(checks, check{"discord", func(ctx context.Context) (string, error) {
			a, err := discord.New(discordConfig(cfg, log), idleEngine{})
			if err != nil {
				return "", err
			}
			if err := a.Check(ctx); err != nil {
				return "", err
			}
			return "bot token accepted", nil
		}})
	}
	if !cfg.Slack.Enabled() && !cfg.Discord.Enabled() {
		checks = append(checks, check{"platforms", func(context.Context) (string, error) {
			return "none configured (set SLACK_BOT_TOKEN + SLACK_APP_TOKEN and/or DISCORD_BOT_TOKEN; \"cometbot chat\" works without)", nil
		}})
	}
	return checks
}

// idleEngine lets doctor build adapters only to check their credentials.
type idleEngine struct{}

func (idleEngine) HandleMessage(context.Context, bot.Message, bot.Output) error {
	return bot.ErrIgnored
}
func (idleEngine) Addressed(context.Context, bot.Message) (bool, error)   { return false, nil }
func (idleEngine) HandleCommand(context.Context, bot.Command) bot.Answer  { return bot.Answer{} }
func (idleEngine) ModelChoices(context.Context, string, int) []bot.Choice { return nil }
