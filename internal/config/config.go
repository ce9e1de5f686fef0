// Package config loads cometbot's configuration: environment variables for
// secrets and common knobs, plus an optional YAML file (COMETBOT_CONFIG) for
// richer settings. Load validates everything and reports every problem at
// once, each naming the variable or YAML field and what it expects.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/cometbot/cometbot/internal/mcp"
	"github.com/cometbot/cometbot/internal/redact"
	"github.com/cometbot/cometbot/llm"
)

// Built-in defaults.
const (
	DefaultBaseURL      = llm.DefaultBaseURL
	DefaultModel        = "gpt-4o-mini"
	DefaultDBPath       = "./data/cometbot.db"
	DefaultHTTPAddr     = "127.0.0.1:8080"
	DefaultSlackAPIURL  = "https://slack.com/api/"
	DefaultDiscordAPI   = "https://discord.com/api/v9"
	defaultShutdownWait = 25 * time.Second // under Kubernetes' default 30 s grace period
)

// Secret is a string that never prints: String, GoString, slog and JSON all
// show "[redacted]". Value returns the real text.
type Secret string

// Value returns the secret's text.
func (s Secret) Value() string { return string(s) }

// Set reports whether the secret is non-empty.
func (s Secret) Set() bool { return s != "" }

// String redacts the secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// GoString redacts the secret for %#v.
func (s Secret) GoString() string { return strconv.Quote(s.String()) }

// LogValue redacts the secret in slog output.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText redacts the secret in encoders.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Config is the whole configuration.
type Config struct {
	// Gateway.
	APIKey     Secret // COMETAPI_KEY
	BaseURL    string // COMETAPI_BASE_URL
	CatalogURL string // COMETAPI_CATALOG_URL

	DefaultModel string // COMETBOT_DEFAULT_MODEL (YAML default_model wins)
	DBPath       string // COMETBOT_DB
	ConfigPath   string // COMETBOT_CONFIG
	HTTPAddr     string // COMETBOT_HTTP_ADDR
	DebugAddr    string // COMETBOT_DEBUG_ADDR: net/http/pprof; empty (the default) serves none
	LogFormat    string // COMETBOT_LOG_FORMAT: text|json
	LogLevel     slog.Level
	// AdminToken turns the /admin dashboard on (COMETBOT_ADMIN_TOKEN).
	AdminToken Secret

	Slack   Slack
	Discord Discord

	// File is the YAML file's content (zero when there is none).
	File File
}

// Slack holds the Slack adapter's settings.
type Slack struct {
	BotToken      Secret // SLACK_BOT_TOKEN
	AppToken      Secret // SLACK_APP_TOKEN
	SigningSecret Secret // SLACK_SIGNING_SECRET
	APIURL        string // SLACK_API_URL
}

// Enabled reports whether Slack is configured.
func (s Slack) Enabled() bool { return s.BotToken.Set() }

// Discord holds the Discord adapter's settings.
type Discord struct {
	Token  Secret // DISCORD_BOT_TOKEN
	APIURL string // DISCORD_API_URL
}

// Enabled reports whether Discord is configured.
func (d Discord) Enabled() bool { return d.Token.Set() }

// Scoped are per-workspace or per-channel defaults in the YAML file.
type Scoped struct {
	Model           string   `yaml:"model"`
	SystemPrompt    string   `yaml:"system_prompt"`
	Temperature     *float64 `yaml:"temperature"`
	MaxOutputTokens int      `yaml:"max_output_tokens"`
	// RetentionDays overrides history.retention_days for a channel
	// (channels.<id> only; 0 keeps the channel's history forever).
	RetentionDays *int `yaml:"retention_days"`
}

// Limit is a daily and monthly budget in USD.
type Limit struct {
	Daily   float64 `yaml:"daily"`
	Monthly float64 `yaml:"monthly"`
}

// Route sends models matching a pattern (exact id or glob) through a format.
type Route struct {
	Model  string `yaml:"model"`
	Format string `yaml:"format"`
}

// File is the YAML configuration file.
type File struct {
	DefaultModel    string   `yaml:"default_model"`
	SystemPrompt    string   `yaml:"system_prompt"`
	Temperature     *float64 `yaml:"temperature"`
	MaxOutputTokens int      `yaml:"max_output_tokens"`

	History struct {
		MaxMessages   int `yaml:"max_messages"`
		ContextTokens int `yaml:"context_tokens"`
		// RetentionDays is how long stored messages are kept; 0 (the
		// default) keeps them forever.
		RetentionDays int `yaml:"retention_days"`
	} `yaml:"history"`

	MaxConcurrentReplies     int           `yaml:"max_concurrent_replies"`
	MentionRequiredInThreads bool          `yaml:"mention_required_in_threads"`
	UsageFooter              bool          `yaml:"usage_footer"`
	ShutdownTimeout          time.Duration `yaml:"shutdown_timeout"`

	Gateway struct {
		MaxConcurrency int           `yaml:"max_concurrency"`
		StallTimeout   time.Duration `yaml:"stall_timeout"`
		RetryDeadline  time.Duration `yaml:"retry_deadline"`
		CatalogRefresh time.Duration `yaml:"catalog_refresh"`
		Routes         []Route       `yaml:"routes"`
	} `yaml:"gateway"`

	Aliases    map[string]string `yaml:"aliases"`
	Workspaces map[string]Scoped `yaml:"workspaces"`
	Channels   map[string]Scoped `yaml:"channels"`

	Access struct {
		Admins                []string `yaml:"admins"`
		AdminRoles            []string `yaml:"admin_roles"`
		AdminsOnlyModelSwitch bool     `yaml:"admins_only_model_switch"`
		AllowUsers            []string `yaml:"allow_users"`
		DenyUsers             []string `yaml:"deny_users"`
		AllowChannels         []string `yaml:"allow_channels"`
		DenyChannels          []string `yaml:"deny_channels"`
		AllowWorkspaces       []string `yaml:"allow_workspaces"`
		DenyWorkspaces        []string `yaml:"deny_workspaces"`
		AllowRoles            []string `yaml:"allow_roles"`
		DenyRoles             []string `yaml:"deny_roles"`
		DMs                   *bool    `yaml:"dms"`
	} `yaml:"access"`

	Budgets struct {
		User         Limit `yaml:"user"`
		Channel      Limit `yaml:"channel"`
		Workspace    Limit `yaml:"workspace"`
		AdminsExempt bool  `yaml:"admins_exempt"`
	} `yaml:"budgets"`

	RateLimit struct {
		PerMinute float64 `yaml:"per_minute"`
		Burst     int     `yaml:"burst"`
	} `yaml:"rate_limit"`

	Slack struct {
		Commands         map[string]string `yaml:"commands"`
		NativeStreaming  *bool             `yaml:"native_streaming"`
		UpdatesPerMinute int               `yaml:"updates_per_minute"`
	} `yaml:"slack"`

	Discord struct {
		GuildIDs    []string `yaml:"guild_ids"`
		OpenThreads *bool    `yaml:"open_threads"`
	} `yaml:"discord"`

	// MaxAnswerChars stops an answer past this many characters (default 40,000).
	MaxAnswerChars int `yaml:"max_answer_chars"`
	// ResumeWindow: unfinished replies younger than this are answered again
	// after a restart, older ones marked interrupted (default 10m).
	ResumeWindow time.Duration `yaml:"resume_window"`

	// Attachments bounds what is read from files users attach.
	Attachments Attachments `yaml:"attachments"`

	// Tools configures the tool loop, MCP servers and web search.
	Tools Tools `yaml:"tools"`
}

// Tools is the YAML tools section.
type Tools struct {
	// MaxRounds bounds tool-calling rounds per turn (default 8).
	MaxRounds int `yaml:"max_rounds"`
	// Timeout bounds one tool call (default 30s).
	Timeout time.Duration `yaml:"timeout"`
	// MaxResultChars cuts a tool result (default 16,000).
	MaxResultChars int `yaml:"max_result_chars"`
	// WebSearch turns the providers' built-in web search on by default.
	WebSearch bool `yaml:"web_search"`
	// Allow is the default allow-list ("server", "server.tool", "*");
	// absent = every configured server.
	Allow *[]string `yaml:"allow"`
	// MCPServers are the MCP servers whose tools the model may call.
	MCPServers []MCPServer `yaml:"mcp_servers"`
	// Workspaces, Channels and Roles override the defaults per id.
	Workspaces map[string]ToolScope `yaml:"workspaces"`
	Channels   map[string]ToolScope `yaml:"channels"`
	Roles      map[string]ToolScope `yaml:"roles"`
}

// ToolScope is the tool policy of one workspace, channel or role.
type ToolScope struct {
	Allow     *[]string `yaml:"allow"`
	WebSearch *bool     `yaml:"web_search"`
}

// MCPServer is one MCP server: a command (stdio) or a URL (streamable
// HTTP). Values of env and headers may name environment variables
// ("${SEARCH_TOKEN}") so secrets stay out of the file.
type MCPServer struct {
	Name    string            `yaml:"name"`
	Command string            `yaml:"command"`
	Args    []string          `yaml:"args"`
	Env     map[string]string `yaml:"env"`
	URL     string            `yaml:"url"`
	Headers map[string]string `yaml:"headers"`
}

// Attachments is the YAML attachments section. Zero values take the defaults.
type Attachments struct {
	// MaxBytes is the per-file limit counted on the wire (default 20 MiB).
	MaxBytes int64 `yaml:"max_bytes"`
	// MaxFiles is how many files of one message are read (default 10).
	MaxFiles int `yaml:"max_files"`
	// Timeout bounds one download (default 60s).
	Timeout time.Duration `yaml:"timeout"`
	// Concurrency bounds downloads in flight (default 4).
	Concurrency int `yaml:"concurrency"`
	// ContextBytes bounds the image and PDF bytes sent in one request (default 20 MiB).
	ContextBytes int64 `yaml:"context_bytes"`
	// ConversationBytes caps the attachment bytes kept per conversation;
	// the oldest are dropped first (default 64 MiB).
	ConversationBytes int64 `yaml:"conversation_bytes"`
}

// ShutdownTimeout is the whole time a shutdown may take (YAML
// shutdown_timeout, default 25s): in-flight replies finishing, cancelled
// ones being finalized, and the HTTP server and adapters closing all fit in
// it.
func (c *Config) ShutdownTimeout() time.Duration {
	if c.File.ShutdownTimeout > 0 {
		return c.File.ShutdownTimeout
	}
	return defaultShutdownWait
}

// Model returns the effective default model: YAML default_model, else
// COMETBOT_DEFAULT_MODEL, else the built-in default.
func (c *Config) Model() string {
	if c.File.DefaultModel != "" {
		return c.File.DefaultModel
	}
	return c.DefaultModel
}

// Load reads the environment (getenv; nil means os.Getenv) and the YAML
// file it names, and validates the result.
func Load(getenv func(string) string) (*Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	env := func(k, def string) string {
		if v := strings.TrimSpace(getenv(k)); v != "" {
			return v
		}
		return def
	}
	c := &Config{
		APIKey:       Secret(strings.TrimSpace(getenv("COMETAPI_KEY"))),
		BaseURL:      strings.TrimRight(env("COMETAPI_BASE_URL", DefaultBaseURL), "/"),
		DefaultModel: env("COMETBOT_DEFAULT_MODEL", DefaultModel),
		DBPath:       env("COMETBOT_DB", DefaultDBPath),
		ConfigPath:   env("COMETBOT_CONFIG", ""),
		HTTPAddr:     env("COMETBOT_HTTP_ADDR", DefaultHTTPAddr),
		DebugAddr:    strings.TrimSpace(getenv("COMETBOT_DEBUG_ADDR")),
		LogFormat:    strings.ToLower(env("COMETBOT_LOG_FORMAT", "text")),
		AdminToken:   Secret(strings.TrimSpace(getenv("COMETBOT_ADMIN_TOKEN"))),
		Slack: Slack{
			BotToken:      Secret(strings.TrimSpace(getenv("SLACK_BOT_TOKEN"))),
			AppToken:      Secret(strings.TrimSpace(getenv("SLACK_APP_TOKEN"))),
			SigningSecret: Secret(strings.TrimSpace(getenv("SLACK_SIGNING_SECRET"))),
			APIURL:        env("SLACK_API_URL", DefaultSlackAPIURL),
		},
		Discord: Discord{
			Token:  Secret(strings.TrimSpace(getenv("DISCORD_BOT_TOKEN"))),
			APIURL: strings.TrimRight(env("DISCORD_API_URL", DefaultDiscordAPI), "/"),
		},
	}
	c.CatalogURL = env("COMETAPI_CATALOG_URL", llm.CatalogURLFor(c.BaseURL))
	if !strings.HasSuffix(c.Slack.APIURL, "/") {
		c.Slack.APIURL += "/"
	}
	var errs []error
	if err := c.LogLevel.UnmarshalText([]byte(env("COMETBOT_LOG_LEVEL", "info"))); err != nil {
		errs = append(errs, fmt.Errorf("COMETBOT_LOG_LEVEL: must be debug, info, warn or error, got %q", getenv("COMETBOT_LOG_LEVEL")))
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("COMETBOT_LOG_FORMAT: must be text or json, got %q", c.LogFormat))
	}
	for _, u := range []struct{ name, val string }{
		{"COMETAPI_BASE_URL", c.BaseURL}, {"COMETAPI_CATALOG_URL", c.CatalogURL},
		{"SLACK_API_URL", c.Slack.APIURL}, {"DISCORD_API_URL", c.Discord.APIURL},
	} {
		if err := checkURL(u.val); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", u.name, err))
		}
	}
	if u, err := url.Parse(c.BaseURL); err == nil && (u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(c.BaseURL, "?")) {
		errs = append(errs, fmt.Errorf("COMETAPI_BASE_URL: must not carry a query or fragment, got %q; put the key in COMETAPI_KEY", redact.Credentials(c.BaseURL)))
	}
	if c.ConfigPath != "" {
		if err := c.loadFile(c.ConfigPath); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, c.validateFile()...)
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("invalid configuration:\n%w", err)
	}
	return c, nil
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("must be an absolute http(s) URL like https://host/path, got %q", redact.Credentials(s))
	}
	return nil
}

func (c *Config) loadFile(p string) error {
	data, err := os.ReadFile(p)
	if err != nil {
		return fmt.Errorf("COMETBOT_CONFIG: cannot read %s: %w", p, err)
	}
	return c.ParseFile(data, p)
}

// ParseFile decodes YAML configuration strictly: an unknown field is an error
// (it is almost always a typo).
func (c *Config) ParseFile(data []byte, name string) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f File
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: %w", name, err)
	}
	c.File = f
	return nil
}

var validFormats = map[string]bool{"chat": true, "responses": true, "anthropic": true, "gemini": true}

func (c *Config) validateFile() []error {
	f := &c.File
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	checkTemp := func(where string, t *float64) {
		if t != nil && (*t < 0 || *t > 2) {
			bad("%s: temperature must be between 0 and 2, got %g", where, *t)
		}
	}
	checkTemp("temperature", f.Temperature)
	if f.MaxOutputTokens < 0 {
		bad("max_output_tokens: must be positive, got %d", f.MaxOutputTokens)
	}
	if f.History.MaxMessages < 0 || f.History.ContextTokens < 0 {
		bad("history: max_messages and context_tokens must be positive")
	}
	if f.History.RetentionDays < 0 {
		bad("history.retention_days: must be 0 (keep forever) or a number of days, got %d", f.History.RetentionDays)
	}
	for id, ws := range f.Workspaces {
		if ws.RetentionDays != nil {
			bad("workspaces.%s.retention_days: retention is set per channel (channels.<id>.retention_days) or for all (history.retention_days)", id)
		}
	}
	for id, ch := range f.Channels {
		if ch.RetentionDays != nil && *ch.RetentionDays < 0 {
			bad("channels.%s.retention_days: must be 0 (keep forever) or a number of days, got %d", id, *ch.RetentionDays)
		}
	}
	if f.MaxConcurrentReplies < 0 || f.Gateway.MaxConcurrency < 0 {
		bad("max_concurrent_replies and gateway.max_concurrency must be positive")
	}
	for i, r := range f.Gateway.Routes {
		if r.Model == "" {
			bad("gateway.routes[%d]: model is required (an exact id or a glob like claude-*)", i)
		} else if _, err := path.Match(r.Model, ""); err != nil {
			bad("gateway.routes[%d]: bad glob %q: %v", i, r.Model, err)
		}
		if !validFormats[r.Format] {
			bad("gateway.routes[%d]: format must be chat, responses, anthropic or gemini, got %q", i, r.Format)
		}
	}
	for k, v := range f.Aliases {
		if k == "" || v == "" || strings.ContainsAny(k, " \t") {
			bad("aliases: %q -> %q: aliases are single words mapping to a model id", k, v)
		}
	}
	for kind, m := range map[string]map[string]Scoped{"workspaces": f.Workspaces, "channels": f.Channels} {
		for id, s := range m {
			checkTemp(kind+"."+id, s.Temperature)
			if s.MaxOutputTokens < 0 {
				bad("%s.%s: max_output_tokens must be positive", kind, id)
			}
		}
	}
	for name, l := range map[string]Limit{"user": f.Budgets.User, "channel": f.Budgets.Channel, "workspace": f.Budgets.Workspace} {
		if l.Daily < 0 || l.Monthly < 0 {
			bad("budgets.%s: limits are USD amounts and must not be negative", name)
		}
		if l.Daily > 0 && l.Monthly > 0 && l.Daily > l.Monthly {
			bad("budgets.%s: daily limit (%g) is larger than the monthly limit (%g)", name, l.Daily, l.Monthly)
		}
	}
	if f.ShutdownTimeout < 0 {
		bad("shutdown_timeout: must not be negative, got %s", f.ShutdownTimeout)
	}
	if f.RateLimit.PerMinute < 0 || f.RateLimit.Burst < 0 {
		bad("rate_limit: per_minute and burst must not be negative")
	}
	if t := f.Tools; t.MaxRounds < 0 || t.Timeout < 0 || t.MaxResultChars < 0 {
		bad("tools: max_rounds, timeout and max_result_chars must not be negative")
	}
	if len(f.Tools.MCPServers) > 0 {
		servers := make([]mcp.Server, len(f.Tools.MCPServers))
		for i, m := range f.Tools.MCPServers {
			servers[i] = mcp.Server(m)
		}
		if err := mcp.Validate(servers); err != nil {
			errs = append(errs, err)
		}
	}
	if f.MaxAnswerChars < 0 || f.ResumeWindow < 0 {
		bad("max_answer_chars and resume_window must not be negative")
	}
	if a := f.Attachments; a.MaxBytes < 0 || a.MaxFiles < 0 || a.Timeout < 0 || a.Concurrency < 0 || a.ContextBytes < 0 || a.ConversationBytes < 0 {
		bad("attachments: max_bytes, max_files, timeout, concurrency, context_bytes and conversation_bytes must not be negative")
	}
	for cmd, canon := range f.Slack.Commands {
		if !strings.HasPrefix(cmd, "/") {
			bad("slack.commands: %q must start with /", cmd)
		}
		switch canon {
		case "model", "reset", "system", "usage", "forget", "help":
		default:
			bad("slack.commands: %q maps to %q; expected one of model, reset, system, usage, forget, help", cmd, canon)
		}
	}
	return errs
}

// Secrets returns every secret value of the configuration, for the log
// scrubber: the key and tokens, and any credentials embedded in the
// configured URLs (user info or query of COMETAPI_BASE_URL and the others).
func (c *Config) Secrets() []string {
	out := []string{c.APIKey.Value(), c.Slack.BotToken.Value(), c.Slack.AppToken.Value(),
		c.Slack.SigningSecret.Value(), c.Discord.Token.Value(), c.AdminToken.Value()}
	for _, u := range []string{c.BaseURL, c.CatalogURL, c.Slack.APIURL, c.Discord.APIURL} {
		out = append(out, redact.URLSecrets(u)...)
	}
	for _, m := range c.File.Tools.MCPServers {
		for _, v := range m.Headers {
			if v = ExpandEnv(v); len(v) >= 6 {
				out = append(out, v)
				if _, tok, ok := strings.Cut(v, " "); ok && len(tok) >= 6 { // "Bearer <token>"
					out = append(out, tok)
				}
			}
		}
		for k, v := range m.Env {
			up := strings.ToUpper(k)
			if v = ExpandEnv(v); len(v) >= 6 && (strings.Contains(up, "KEY") || strings.Contains(up, "TOKEN") || strings.Contains(up, "SECRET") || strings.Contains(up, "PASSWORD")) {
				out = append(out, v)
			}
		}
		out = append(out, redact.URLSecrets(m.URL)...)
	}
	return out
}

// ExpandEnv replaces ${VAR} and $VAR in a value of the YAML file with the
// environment's (so secrets for MCP servers stay in the environment).
func ExpandEnv(v string) string { return os.ExpandEnv(v) }

// String describes the configuration without secrets: tokens print as
// [redacted] and so do credentials inside URLs.
func (c Config) String() string {
	return fmt.Sprintf("config{base_url=%s catalog_url=%s key=%s default_model=%s db=%s http=%s slack=%v discord=%v file=%s}",
		redact.Credentials(c.BaseURL), redact.Credentials(c.CatalogURL), c.APIKey, c.Model(), c.DBPath, c.HTTPAddr,
		c.Slack.Enabled(), c.Discord.Enabled(), c.ConfigPath)
}

// GoString is String, for %#v.
func (c Config) GoString() string { return c.String() }

// LogValue is String, for slog.
func (c Config) LogValue() slog.Value { return slog.StringValue(c.String()) }

// RequireKey reports a clear error when the gateway key is missing.
func (c *Config) RequireKey() error {
	if !c.APIKey.Set() {
		return errors.New("COMETAPI_KEY is not set: create a key at https://api.cometapi.com/console/token and export COMETAPI_KEY=sk-...")
	}
	return nil
}

// Reload re-reads the YAML file (COMETBOT_CONFIG) and validates it. It
// returns a copy of c with the new file: the environment, secrets included,
// is not read again. On an error (each problem prefixed with the file and,
// where it can be found, the line) c is unchanged and still in force.
func (c *Config) Reload() (*Config, error) {
	if c.ConfigPath == "" {
		return nil, errors.New("no configuration file to reload (COMETBOT_CONFIG is not set)")
	}
	data, err := os.ReadFile(c.ConfigPath)
	if err != nil {
		return nil, fmt.Errorf("COMETBOT_CONFIG: cannot read %s: %w", c.ConfigPath, err)
	}
	n := *c
	if err := n.ParseFile(data, c.ConfigPath); err != nil {
		return nil, err // yaml's messages carry "line N"
	}
	errs := n.validateFile()
	if len(errs) == 0 {
		return &n, nil
	}
	var root yaml.Node
	_ = yaml.Unmarshal(data, &root)
	for i, e := range errs {
		if line := lineOf(&root, e.Error()); line > 0 {
			errs[i] = fmt.Errorf("%s:%d: %w", c.ConfigPath, line, e)
		} else {
			errs[i] = fmt.Errorf("%s: %w", c.ConfigPath, e)
		}
	}
	return nil, fmt.Errorf("invalid configuration:\n%w", errors.Join(errs...))
}

// lineOf finds the line of the field a validation message names before its
// first colon ("budgets.user: ...", "gateway.routes[1]: ..."), going as deep
// as the path matches; 0 when not found.
func lineOf(root *yaml.Node, msg string) int {
	field, _, ok := strings.Cut(msg, ":")
	if !ok || strings.ContainsAny(field, " \"") {
		return 0
	}
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := 0
	for _, part := range strings.Split(field, ".") {
		idx := -1
		if name, rest, ok := strings.Cut(part, "["); ok {
			part = name
			if i, err := strconv.Atoi(strings.TrimSuffix(rest, "]")); err == nil {
				idx = i
			}
		}
		if n.Kind != yaml.MappingNode {
			return line
		}
		found := false
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == part {
				line, n, found = n.Content[i].Line, n.Content[i+1], true
				break
			}
		}
		if !found {
			return line
		}
		if idx >= 0 && n.Kind == yaml.SequenceNode && idx < len(n.Content) {
			n = n.Content[idx]
			line = n.Line
		}
	}
	return line
}
