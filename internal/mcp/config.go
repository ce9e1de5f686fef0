// Package mcp connects cometbot to MCP (Model Context Protocol) servers
// through the official Go SDK and offers their tools as bot.Tools.
//
// A Manager keeps one connection per configured server: a child process
// speaking MCP over stdio (Server.Command) or a streamable-HTTP endpoint
// (Server.URL). Run connects to every server concurrently, reconnects with
// jittered exponential backoff when one is down or drops, refreshes a
// server's tools when it sends notifications/tools/list_changed, and closes
// everything when its context ends. Tools lists the tools of the servers
// connected now; Status reports each server for `cometbot doctor` and logs.
package mcp

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"runtime"
	"strings"

	"github.com/cometbot/cometbot/internal/redact"
)

// Server configures one MCP server (one entry of the YAML list
// tools.mcp_servers). Exactly one of Command and URL is set.
//
// A stdio server (Command) is started as a child process with Args. Its
// environment is NOT the bot's: it gets only the variables named in
// InheritedEnv (PATH, HOME, ... as set for the bot), plus Env, which wins
// over an inherited variable of the same name. The bot's secrets
// (COMETAPI_KEY, SLACK_BOT_TOKEN, ...) are never passed on unless Env names
// them. The child's stderr is logged at debug level.
//
// An HTTP server (URL) is reached with the streamable-HTTP transport;
// Headers (e.g. Authorization) are sent with every request to the URL's host
// and never with a redirect to another host.
//
// Values are used as given: expand "${VAR}" references (config.ExpandEnv)
// before New. The fields match config.MCPServer, so a conversion
// mcp.Server(m) works.
type Server struct {
	// Name identifies the server in tool names, allow-lists ("server" or
	// "server.tool"), logs and Status: [A-Za-z0-9_-]{1,64}, unique.
	Name string `yaml:"name"`

	// Command is the program of a stdio server (looked up in the bot's PATH).
	Command string `yaml:"command"`
	// Args are its arguments.
	Args []string `yaml:"args"`
	// Env are variables added to the child's minimal environment.
	Env map[string]string `yaml:"env"`

	// URL is the endpoint of a streamable-HTTP server (http or https).
	URL string `yaml:"url"`
	// Headers are sent with every request, e.g. {"Authorization": "Bearer ..."}.
	Headers map[string]string `yaml:"headers"`
}

// maxNameLen bounds a server's name (a tool's spec name is at most 64).
const maxNameLen = 64

// InheritedEnv lists the variables a stdio server inherits from the bot's
// environment (when set there); everything else comes from Server.Env.
var InheritedEnv = inheritedEnv()

func inheritedEnv() []string {
	if runtime.GOOS == "windows" {
		return []string{
			"APPDATA", "COMSPEC", "HOMEDRIVE", "HOMEPATH", "LOCALAPPDATA", "PATH", "PATHEXT",
			"PROCESSOR_ARCHITECTURE", "PROGRAMFILES", "SYSTEMDRIVE", "SYSTEMROOT", "TEMP", "TMP",
			"USERNAME", "USERPROFILE",
		}
	}
	return []string{"HOME", "LANG", "LC_ALL", "LC_CTYPE", "LOGNAME", "PATH", "SHELL", "TERM", "TMPDIR", "TZ", "USER"}
}

// childEnv returns the environment of a stdio server: the InheritedEnv
// variables set in getenv, then s.Env.
func (s *Server) childEnv(getenv func(string) string) []string {
	env := make([]string, 0, len(InheritedEnv)+len(s.Env))
	for _, k := range InheritedEnv {
		if _, over := s.Env[k]; over {
			continue
		}
		if v := getenv(k); v != "" {
			env = append(env, k+"="+v)
		}
	}
	for k, v := range s.Env {
		env = append(env, k+"="+v)
	}
	return env
}

// transport names the kind of server, for logs.
func (s *Server) transport() string {
	if s.URL != "" {
		return "http"
	}
	return "stdio"
}

// target describes where the server is without secrets: the command's
// program name, or the URL's scheme and host.
func (s *Server) target() string {
	if s.URL != "" {
		u, err := url.Parse(s.URL)
		if err != nil || u.Host == "" {
			return "(bad url)"
		}
		return u.Scheme + "://" + u.Host
	}
	return s.Command
}

// validName reports whether name is [A-Za-z0-9_-]{1,64}.
func validName(name string) bool {
	if name == "" || len(name) > maxNameLen {
		return false
	}
	for i := 0; i < len(name); i++ {
		if !nameByte(name[i]) {
			return false
		}
	}
	return true
}

func nameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// validate checks one server on its own.
func (s *Server) validate() []error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	switch {
	case s.Name == "":
		bad("name is required")
	case !validName(s.Name):
		bad("name %q must be 1 to %d letters, digits, '_' or '-'", s.Name, maxNameLen)
	}
	switch {
	case s.Command == "" && s.URL == "":
		bad("set command (a stdio server) or url (a streamable-HTTP server)")
	case s.Command != "" && s.URL != "":
		bad("set command or url, not both")
	case s.Command != "":
		if strings.TrimSpace(s.Command) != s.Command || strings.Contains(s.Command, " ") && !strings.ContainsAny(s.Command, `/\`) {
			bad("command %q has spaces: put the program in command and its arguments in args", s.Command)
		}
		if len(s.Headers) > 0 {
			bad("headers apply to url servers only (a stdio server takes env)")
		}
		for k := range s.Env {
			if k == "" || strings.ContainsAny(k, "=\x00") {
				bad("env: bad variable name %q", k)
			}
		}
		for k, v := range s.Env {
			if strings.ContainsRune(v, 0) {
				bad("env: %s contains a NUL byte", k)
			}
		}
	case s.URL != "":
		u, err := url.Parse(s.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("url must be an absolute http(s) URL like https://host/mcp, got %q", redact.URL(s.URL))
		}
		if len(s.Args) > 0 || len(s.Env) > 0 {
			bad("args and env apply to command servers only (a url server takes headers)")
		}
		for k, v := range s.Headers {
			if !validHeaderName(k) {
				bad("headers: bad header name %q", k)
			} else if transportHeaders[http.CanonicalHeaderKey(k)] {
				bad("headers: %s is set by the MCP transport", k)
			}
			if strings.ContainsAny(v, "\r\n\x00") {
				bad("headers: %s: value contains a line break or NUL", k)
			}
		}
	}
	return errs
}

// transportHeaders are the headers the streamable-HTTP transport sets.
var transportHeaders = map[string]bool{
	"Accept": true, "Content-Type": true, "Content-Length": true, "Host": true,
	"Last-Event-Id": true, "Mcp-Session-Id": true, "Mcp-Protocol-Version": true,
	"Connection": true, "Transfer-Encoding": true,
}

// validHeaderName reports whether k is an HTTP token.
func validHeaderName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("\"(),/:;<=>?@[\\]{}", c) >= 0 {
			return false
		}
	}
	return true
}

// Validate checks a server list and reports every problem at once, each
// prefixed with its place in the YAML ("tools.mcp_servers[1] (github): ...").
// It returns nil when the list is valid.
func Validate(servers []Server) error {
	var errs []error
	seen := make(map[string]int, len(servers))
	for i := range servers {
		s := &servers[i]
		where := fmt.Sprintf("tools.mcp_servers[%d]", i)
		if validName(s.Name) {
			where += " (" + s.Name + ")"
		}
		for _, err := range s.validate() {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
		}
		if s.Name == "" {
			continue
		}
		if j, dup := seen[s.Name]; dup {
			errs = append(errs, fmt.Errorf("%s: name %q is already used by tools.mcp_servers[%d]", where, s.Name, j))
		} else {
			seen[s.Name] = i
		}
	}
	return errors.Join(errs...)
}
