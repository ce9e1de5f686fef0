// Package discord connects cometbot to Discord through discordgo: it keeps a
// gateway session, turns mentions, DMs and thread messages into bot.Message
// values for the engine, streams the engine's replies by editing messages at a
// pace Discord accepts, and serves the slash commands (/model with
// autocomplete, /reset, /system, /usage, /forget, /help). Files go both
// ways (files.go): attachments and forwarded messages reach the engine with
// a Fetch through the shared safe fetcher, and replies post generated files.
//
// Every REST call and the gateway lookup go under Config.APIURL, so the
// adapter can run behind a REST proxy or against the loopback fake in
// package discordtest.
package discord

import (
	"errors"
	"fmt"
	"github.com/cometbot/cometbot/bot"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/cometbot/cometbot/internal/fetch"
)

// DefaultAPIURL is Discord's REST base, including the API version.
const DefaultAPIURL = "https://discord.com/api/v9"

// discordgoAPI is the prefix discordgo puts in front of every REST URL; the
// transport rewrites it to Config.APIURL.
const discordgoAPI = "https://discord.com/api/v9"

// messageLimit is Discord's cap on one message's content.
const messageLimit = 2000

// DefaultUploadLimit is the default Config.UploadLimit: Discord's 10 MiB
// per message for servers without boosts, which holds everywhere.
const DefaultUploadLimit = 10 << 20

// Canonical command names the engine understands.
var canonicalCommands = bot.CommandNames

// Config configures the Discord adapter. The zero value of every optional
// field selects the documented default, except OpenThreads: a zero Config has
// it off, so start from DefaultConfig (which turns it on) when building one by hand.
type Config struct {
	// Token is the bot token from the Developer Portal (with or without the
	// "Bot " prefix). Required.
	Token string
	// APIURL is the REST base including the version, default
	// https://discord.com/api/v9. Every REST call and the gateway lookup go
	// under it (a REST proxy in production, a loopback fake in tests).
	APIURL string
	// GuildIDs, when set, registers the slash commands per guild (available
	// at once, good for testing); empty registers them globally.
	GuildIDs []string
	// OpenThreads makes a mention in a guild text channel open a public
	// thread on the message and answer there. When off, or where the bot may
	// not create threads, the bot replies in place with a reply reference.
	OpenThreads bool
	// MentionRequiredInThreads makes the bot answer inside threads only when
	// mentioned or replied to (by default it follows a thread it is part of).
	MentionRequiredInThreads bool
	// Logger receives the adapter's logs; nil uses slog.Default().
	Logger *slog.Logger

	// ThreadAutoArchive is the auto-archive duration of opened threads in
	// minutes: 60, 1440, 4320 or 10080. Default 1440 (one day).
	ThreadAutoArchive int
	// CommandNames renames slash commands on Discord, keyed by canonical
	// name ("model", "reset", "system", "usage", "forget", "help"), e.g. to
	// avoid clashing with another bot. The engine still sees canonical names.
	CommandNames map[string]string
	// EditBudget and EditWindow are the per-channel budget for message
	// posts, edits and deletes, shared by all replies streaming in that
	// channel. Default 5 per 5 s (Discord's limit); the adapter keeps a 10%
	// margin below it.
	EditBudget int
	EditWindow time.Duration
	// CommandDeferAfter is how long a slash command may take before the
	// adapter sends a deferred response (Discord allows 3 s). Default 2 s.
	CommandDeferAfter time.Duration
	// ShutdownGrace is how long Run waits, after its context ends, for
	// replies in flight to be delivered before cancelling them. Default 5 s.
	ShutdownGrace time.Duration
	// GlobalRate caps REST requests per second across the whole bot
	// (Discord: 50). Default 50; negative disables the cap (load tests
	// against a fake).
	GlobalRate int
	// HTTPClient is the base client for REST calls (timeouts, proxy); its
	// Transport is wrapped to route requests under APIURL. Default: a client
	// with a 20 s timeout.
	HTTPClient *http.Client
	// Fetcher downloads the files users attach: the process's one shared
	// safe fetcher (internal/fetch), built by cmd so that its limits and
	// concurrency hold across platforms. Attachments are fetched without
	// any authorization header (Discord's CDN links are signed). When nil
	// the adapter builds one allowing fetch.DefaultHosts plus the host:port
	// of APIURL (a REST proxy or a loopback fake serving files too).
	Fetcher *fetch.Fetcher
	// Metrics receives one report per REST call (its route and status
	// code) and per pacing wait; nil reports nothing.
	Metrics Metrics
	// UploadLimit is the most bytes of files one message may carry when
	// the bot posts files (generated images). Discord allows 10 MiB in
	// servers without boosts, more in boosted ones. Files are grouped into
	// as few messages as fit; a file larger than the limit by itself is
	// skipped and reported in Upload's error. Default DefaultUploadLimit.
	UploadLimit int64
}

// DefaultConfig returns a Config with every default filled in and
// OpenThreads on; set Token (and anything else) on the result.
func DefaultConfig() Config {
	c := Config{OpenThreads: true}
	c.applyDefaults()
	return c
}

func (c *Config) applyDefaults() {
	if c.APIURL == "" {
		c.APIURL = DefaultAPIURL
	}
	c.APIURL = strings.TrimRight(c.APIURL, "/")
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.ThreadAutoArchive == 0 {
		c.ThreadAutoArchive = 1440
	}
	if c.EditBudget <= 0 {
		c.EditBudget = 5
	}
	if c.EditWindow <= 0 {
		c.EditWindow = 5 * time.Second
	}
	if c.CommandDeferAfter <= 0 {
		c.CommandDeferAfter = 2 * time.Second
	}
	if c.ShutdownGrace <= 0 {
		c.ShutdownGrace = 5 * time.Second
	}
	if c.GlobalRate == 0 {
		c.GlobalRate = 50
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 20 * time.Second}
	}
	if c.UploadLimit <= 0 {
		c.UploadLimit = DefaultUploadLimit
	}
}

// validate checks the configuration; messages name the setting to fix and
// never include the token.
func (c *Config) validate() error {
	tok := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(c.Token), "Bot "))
	if tok == "" {
		return errors.New("discord: no bot token: set DISCORD_BOT_TOKEN to the token from the Developer Portal (your application → Bot → Reset Token)")
	}
	if strings.ContainsAny(tok, " \t\r\n") {
		return errors.New("discord: the bot token contains spaces or line breaks: copy it again from the Developer Portal (your application → Bot)")
	}
	u, err := url.Parse(c.APIURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("discord: DISCORD_API_URL %q is not an http(s) URL (default %s)", c.APIURL, DefaultAPIURL)
	}
	switch c.ThreadAutoArchive {
	case 60, 1440, 4320, 10080:
	default:
		return fmt.Errorf("discord: thread auto-archive must be 60, 1440, 4320 or 10080 minutes, not %d", c.ThreadAutoArchive)
	}
	seen := map[string]string{}
	for _, canon := range canonicalCommands {
		name := c.commandName(canon)
		if !validCommandName(name) {
			return fmt.Errorf("discord: command name %q for /%s is invalid: use 1-32 lower-case letters, digits, - or _", name, canon)
		}
		if other, dup := seen[name]; dup {
			return fmt.Errorf("discord: commands /%s and /%s both use the name %q", other, canon, name)
		}
		seen[name] = canon
	}
	for k := range c.CommandNames {
		if !isCanonical(k) {
			return fmt.Errorf("discord: unknown command %q in command names (known: %s)", k, strings.Join(canonicalCommands, ", "))
		}
	}
	return nil
}

// token returns the token in the form discordgo sends: "Bot <token>".
func (c *Config) token() string {
	return "Bot " + strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(c.Token), "Bot "))
}

// commandName returns the platform name of a canonical command.
func (c *Config) commandName(canon string) string {
	if n := strings.TrimSpace(c.CommandNames[canon]); n != "" {
		return strings.TrimPrefix(n, "/")
	}
	return canon
}

func isCanonical(name string) bool {
	for _, c := range canonicalCommands {
		if c == name {
			return true
		}
	}
	return false
}

func validCommandName(n string) bool {
	if n == "" || len(n) > 32 {
		return false
	}
	for _, r := range n {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}
