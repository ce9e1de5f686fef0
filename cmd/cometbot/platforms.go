package main

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/cometbot/cometbot/internal/config"
)

// buildPlatforms creates an adapter for every platform whose tokens are set,
// and the HTTP handlers they serve on COMETBOT_HTTP_ADDR.
func buildPlatforms(cfg *config.Config, c *core, log *slog.Logger) ([]namedPlatform, map[string]http.Handler, error) {
	var ps []namedPlatform
	handlers := map[string]http.Handler{}
	return ps, handlers, nil
}

// platformChecks returns doctor checks for every configured platform.
func platformChecks(cfg *config.Config) []check {
	var checks []check
	if !cfg.Slack.Enabled() && !cfg.Discord.Enabled() {
		checks = append(checks, check{"platforms", func(context.Context) (string, error) {
			return "none configured (set SLACK_BOT_TOKEN + SLACK_APP_TOKEN and/or DISCORD_BOT_TOKEN; \"cometbot chat\" works without)", nil
		}})
	}
	return checks
}
