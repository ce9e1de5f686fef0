package slack

import (
	"os"
	"regexp"
	"slices"
	"strings"
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
		"channels:history", "groups:history", "users:read", "commands", "assistant:write", "files:read", "files:write"} {
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
	// README's scope table explains every scope the manifest asks for, and
	// no other.
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := readmeScopes(t, string(readme))
	for _, s := range m.OAuth.Scopes.Bot {
		if !slices.Contains(documented, s) {
			t.Errorf("scope %s is not in README's scope table", s)
		}
	}
	for _, s := range documented {
		if !slices.Contains(m.OAuth.Scopes.Bot, s) {
			t.Errorf("README's scope table lists %s, which the manifest does not request", s)
		}
	}
	if !m.Settings.SocketMode || !m.Settings.Interactivity.Enabled || m.Features.BotUser.DisplayName == "" ||
		!m.Features.AppHome.MessagesTabEnabled || m.Features.AppHome.MessagesTabReadOnlyEnabled {
		t.Errorf("settings: %+v features: %+v", m.Settings, m.Features)
	}
}

// readmeScopes returns the scopes in the first column of the table under
// README's "### Scopes and events" heading.
func readmeScopes(t *testing.T, readme string) []string {
	t.Helper()
	_, section, ok := strings.Cut(readme, "### Scopes and events")
	if !ok {
		t.Fatal("README has no \"### Scopes and events\" section")
	}
	if i := strings.Index(section, "\n#"); i >= 0 {
		section = section[:i]
	}
	var scopes []string
	for _, line := range strings.Split(section, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 3 || !strings.HasPrefix(strings.TrimSpace(line), "|") {
			continue
		}
		for _, m := range reBackticked.FindAllStringSubmatch(cells[1], -1) {
			scopes = append(scopes, m[1])
		}
	}
	if len(scopes) == 0 {
		t.Fatal("README's scope table is empty")
	}
	return scopes
}

var reBackticked = regexp.MustCompile("`([^`]+)`")
