package slack

import (
	"os"
	"slices"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestManifest checks that deploy/slack-app-manifest.yaml asks for what the
// adapter uses: scopes, events, slash commands, interactivity, Socket Mode.
func TestManifest(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../../deploy/slack-app-manifest.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Features struct {
			AppHome struct {
				MessagesTabEnabled         bool `yaml:"messages_tab_enabled"`
				MessagesTabReadOnlyEnabled bool `yaml:"messages_tab_read_only_enabled"`
			} `yaml:"app_home"`
			BotUser struct {
				DisplayName string `yaml:"display_name"`
			} `yaml:"bot_user"`
			SlashCommands []struct {
				Command     string `yaml:"command"`
				Description string `yaml:"description"`
			} `yaml:"slash_commands"`
		} `yaml:"features"`
		OAuth struct {
			Scopes struct {
				Bot []string `yaml:"bot"`
			} `yaml:"scopes"`
		} `yaml:"oauth_config"`
		Settings struct {
			Events struct {
				BotEvents []string `yaml:"bot_events"`
			} `yaml:"event_subscriptions"`
			Interactivity struct {
				Enabled bool `yaml:"is_enabled"`
			} `yaml:"interactivity"`
			SocketMode bool `yaml:"socket_mode_enabled"`
		} `yaml:"settings"`
	}
	if err := yaml.Unmarshal(raw, &m); err != nil {
		t.Fatalf("manifest is not valid YAML: %v", err)
	}
	for _, s := range []string{"app_mentions:read", "chat:write", "im:history", "im:read", "im:write",
		"channels:history", "groups:history", "users:read", "commands", "assistant:write"} {
		if !slices.Contains(m.OAuth.Scopes.Bot, s) {
			t.Errorf("scope %s missing", s)
		}
	}
	for _, ev := range []string{"app_mention", "message.channels", "message.groups", "message.im"} {
		if !slices.Contains(m.Settings.Events.BotEvents, ev) {
			t.Errorf("event %s missing", ev)
		}
	}
	var cfg Config
	cfg.defaults()
	for cmd := range cfg.CommandNames {
		found := false
		for _, c := range m.Features.SlashCommands {
			if c.Command == cmd && c.Description != "" {
				found = true
			}
		}
		if !found {
			t.Errorf("slash command %s missing", cmd)
		}
	}
	if !m.Settings.SocketMode || !m.Settings.Interactivity.Enabled || m.Features.BotUser.DisplayName == "" ||
		!m.Features.AppHome.MessagesTabEnabled || m.Features.AppHome.MessagesTabReadOnlyEnabled {
		t.Errorf("settings: %+v features: %+v", m.Settings, m.Features)
	}
}
