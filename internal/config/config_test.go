package config

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestDefaults(t *testing.T) {
	c, err := Load(envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	checks := map[string][2]string{
		"base":    {c.BaseURL, "https://api.cometapi.com/v1"},
		"catalog": {c.CatalogURL, "https://api.cometapi.com/api/models"},
		"model":   {c.Model(), DefaultModel},
		"db":      {c.DBPath, "./data/cometbot.db"},
		"http":    {c.HTTPAddr, "127.0.0.1:8080"},
		"slack":   {c.Slack.APIURL, "https://slack.com/api/"},
		"discord": {c.Discord.APIURL, "https://discord.com/api/v9"},
		"format":  {c.LogFormat, "text"},
	}
	for name, v := range checks {
		if v[0] != v[1] {
			t.Errorf("%s = %q, want %q", name, v[0], v[1])
		}
	}
	if c.Slack.Enabled() || c.Discord.Enabled() {
		t.Error("no platform should be enabled")
	}
	if err := c.RequireKey(); err == nil || !strings.Contains(err.Error(), "COMETAPI_KEY") {
		t.Errorf("RequireKey = %v", err)
	}
}

func TestValidationMessages(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"bad base url", map[string]string{"COMETAPI_BASE_URL": "api.cometapi.com"}, []string{"COMETAPI_BASE_URL", "absolute http(s) URL"}},
		{"bad log format", map[string]string{"COMETBOT_LOG_FORMAT": "xml"}, []string{"COMETBOT_LOG_FORMAT", "text or json"}},
		{"bad log level", map[string]string{"COMETBOT_LOG_LEVEL": "loud"}, []string{"COMETBOT_LOG_LEVEL"}},
		{"missing file", map[string]string{"COMETBOT_CONFIG": filepath.Join(dir, "nope.yaml")}, []string{"COMETBOT_CONFIG", "cannot read"}},
		{"typo field", map[string]string{"COMETBOT_CONFIG": write("typo.yaml", "defualt_model: x\n")}, []string{"typo.yaml", "defualt_model"}},
		{"bad temperature", map[string]string{"COMETBOT_CONFIG": write("t.yaml", "temperature: 3\n")}, []string{"temperature must be between 0 and 2"}},
		{"bad route", map[string]string{"COMETBOT_CONFIG": write("r.yaml", "gateway:\n  routes:\n    - model: x\n      format: soap\n")}, []string{"gateway.routes[0]", "soap"}},
		{"negative budget", map[string]string{"COMETBOT_CONFIG": write("b.yaml", "budgets:\n  user: {daily: -1}\n")}, []string{"budgets.user", "negative"}},
		{"daily over monthly", map[string]string{"COMETBOT_CONFIG": write("b2.yaml", "budgets:\n  channel: {daily: 5, monthly: 1}\n")}, []string{"budgets.channel", "larger than the monthly"}},
		{"negative retention", map[string]string{"COMETBOT_CONFIG": write("ret.yaml", "history:\n  retention_days: -1\n")}, []string{"history.retention_days"}},
		{"channel retention", map[string]string{"COMETBOT_CONFIG": write("ret2.yaml", "channels:\n  C1:\n    retention_days: -5\n")}, []string{"channels.C1.retention_days"}},
		{"workspace retention", map[string]string{"COMETBOT_CONFIG": write("ret3.yaml", "workspaces:\n  T1:\n    retention_days: 5\n")}, []string{"workspaces.T1.retention_days"}},
		{"bad command", map[string]string{"COMETBOT_CONFIG": write("c.yaml", "slack:\n  commands:\n    ai: model\n")}, []string{"slack.commands", "must start with /"}},
		{"two errors at once", map[string]string{"COMETBOT_LOG_FORMAT": "xml", "DISCORD_API_URL": "nope"}, []string{"COMETBOT_LOG_FORMAT", "DISCORD_API_URL"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(envMap(tt.env))
			if err == nil {
				t.Fatal("want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestExampleConfigLoads(t *testing.T) {
	c, err := Load(envMap(map[string]string{"COMETBOT_CONFIG": "../../deploy/config.example.yaml", "COMETBOT_DEFAULT_MODEL": "env-model"}))
	if err != nil {
		t.Fatal(err)
	}
	f := c.File
	if c.Model() != "gpt-4o-mini" || f.Aliases["smart"] != "claude-sonnet-4-5" || f.Budgets.User.Daily != 1 || len(f.Gateway.Routes) != 2 || f.Access.DMs == nil || !*f.Access.DMs {
		t.Fatalf("example config not parsed as expected: %+v", f)
	}
	if f.Channels["C0123456789"].Temperature == nil || *f.Channels["C0123456789"].Temperature != 0.2 {
		t.Error("channel temperature not parsed")
	}
}

func TestSecretsNeverPrint(t *testing.T) {
	const key = "sk-very-secret-key-123"
	c, err := Load(envMap(map[string]string{"COMETAPI_KEY": key, "SLACK_BOT_TOKEN": "xoxb-secret", "DISCORD_BOT_TOKEN": "disc-secret"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.APIKey.Value() != key {
		t.Fatal("Value must return the secret")
	}
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	log.Info("config", "key", c.APIKey, "slack", c.Slack, "cfg", c)
	text := buf.String() + fmt.Sprintf("%v %+v %#v %s", c, c, c.APIKey, c.APIKey)
	for _, s := range []string{key, "xoxb-secret", "disc-secret"} {
		if strings.Contains(text, s) {
			t.Fatalf("secret %q leaked: %s", s, text)
		}
	}
	if !strings.Contains(text, "[redacted]") {
		t.Error("want [redacted] markers")
	}
}

// TestURLCredentialsNeverPrint: a key embedded in COMETAPI_BASE_URL (user
// info or query) is redacted wherever the configuration is printed, in
// validation errors, and listed in Secrets for the log scrubber.
func TestURLCredentialsNeverPrint(t *testing.T) {
	tests := []struct {
		name, base, secret string
	}{
		{"user info", "https://sk-userinfo-key@gw.example.com/v1", "sk-userinfo-key"},
		{"password", "https://me:sk-password-key@gw.example.com/v1", "sk-password-key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(envMap(map[string]string{"COMETAPI_BASE_URL": tt.base}))
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "cfg", c, "cfgp", *c)
			text := buf.String() + fmt.Sprintf("%v %+v %s %#v", c, *c, c, *c)
			if strings.Contains(text, tt.secret) || !strings.Contains(text, "gw.example.com") {
				t.Fatalf("printed configuration: %s", text)
			}
			if !slices.Contains(c.Secrets(), tt.secret) {
				t.Errorf("Secrets() = %q lacks the embedded key", c.Secrets())
			}
		})
	}
	// The gateway client refuses a base URL with a query; so does Load,
	// without printing the key.
	for _, bad := range []struct{ base, secret, want string }{
		{"ftp://me:sk-ftp-key@gw.example.com/v1", "sk-ftp-key", "absolute http(s) URL"},
		{"https://gw.example.com/v1?key=sk-query-key", "sk-query-key", "put the key in COMETAPI_KEY"},
		{"https://gw.example.com/v1?sk-bare-key", "sk-bare-key", "must not carry a query"},
	} {
		_, err := Load(envMap(map[string]string{"COMETAPI_BASE_URL": bad.base}))
		if err == nil || strings.Contains(err.Error(), bad.secret) || !strings.Contains(err.Error(), "COMETAPI_BASE_URL") || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("COMETAPI_BASE_URL=%s: validation error = %v", bad.base, err)
		}
	}
}

func TestShutdownTimeout(t *testing.T) {
	c, err := Load(envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.ShutdownTimeout(); got != 25*time.Second {
		t.Errorf("default shutdown timeout %s, want 25s (under Kubernetes' 30 s grace period)", got)
	}
	if err := c.ParseFile([]byte("shutdown_timeout: 10s\n"), "s.yaml"); err != nil || c.ShutdownTimeout() != 10*time.Second {
		t.Errorf("shutdown_timeout: 10s gives %s, %v", c.ShutdownTimeout(), err)
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "neg.yaml")
	if err := os.WriteFile(p, []byte("shutdown_timeout: -1s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(envMap(map[string]string{"COMETBOT_CONFIG": p})); err == nil || !strings.Contains(err.Error(), "shutdown_timeout") {
		t.Errorf("negative shutdown_timeout: %v", err)
	}
}

// TestReadmeAccessControlExampleLoads keeps README's "Access control" YAML
// example valid: it is parsed with the same strict decoder as a real file.
func TestReadmeAccessControlExampleLoads(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(data)
	for _, section := range []string{"## Access control", "### The YAML file"} {
		i := strings.Index(readme, section)
		if i < 0 {
			t.Fatalf("README has no %q section", section)
		}
		rest := readme[i:]
		start := strings.Index(rest, "```yaml\n")
		end := strings.Index(rest[start+8:], "```")
		if start < 0 || end < 0 {
			t.Fatalf("no yaml block in %q", section)
		}
		var c Config
		if err := c.ParseFile([]byte(rest[start+8:start+8+end]), "README "+section); err != nil {
			t.Fatalf("README %s example: %v", section, err)
		}
		if errs := c.validateFile(); len(errs) > 0 {
			t.Fatalf("README %s example invalid: %v", section, errs)
		}
		if section == "## Access control" && (len(c.File.Access.Admins) == 0 || c.File.Budgets.User.Daily == 0 || c.File.RateLimit.PerMinute == 0) {
			t.Fatalf("access example not parsed: %+v", c.File.Access)
		}
	}
}
