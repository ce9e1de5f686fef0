package mcp

import (
	"slices"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	ok := []Server{
		{Name: "calc", Command: "calc-server", Args: []string{"--x"}, Env: map[string]string{"TOKEN": "t"}},
		{Name: "web-1_x", URL: "https://mcp.example.com/mcp", Headers: map[string]string{"Authorization": "Bearer x"}},
	}
	if err := Validate(ok); err != nil {
		t.Fatalf("valid list: %v", err)
	}
	if err := Validate(nil); err != nil {
		t.Fatalf("empty list: %v", err)
	}
	bad := []Server{
		{Command: "x"},                                                                          // 0: no name
		{Name: "a.b", Command: "x"},                                                             // 1: bad name
		{Name: "both", Command: "x", URL: "http://h"},                                           // 2
		{Name: "neither"},                                                                       // 3
		{Name: "calc", Command: "x"},                                                            // 4
		{Name: "calc", URL: "https://h/mcp"},                                                    // 5: duplicate
		{Name: "rel", URL: "/mcp"},                                                              // 6
		{Name: "ftp", URL: "ftp://h/x?token=secret"},                                            // 7: the token is not echoed
		{Name: "hdr", Command: "x", Headers: map[string]string{"A": "b"}},                       // 8
		{Name: "env", URL: "https://h", Env: map[string]string{"A": "b"}},                       // 9
		{Name: "badh", URL: "https://h", Headers: map[string]string{"Bad Name": "v"}},           // 10
		{Name: "crlf", URL: "https://h", Headers: map[string]string{"X": "a\r\nInjected: 1"}},   // 11
		{Name: "badenv", Command: "x", Env: map[string]string{"A=B": "c"}},                      // 12
		{Name: strings.Repeat("n", 65), Command: "x"},                                           // 13
		{Name: "spaces", Command: "npx -y server"},                                              // 14
		{Name: "reserved", URL: "https://h", Headers: map[string]string{"mcp-session-id": "x"}}, // 15
	}
	err := Validate(bad)
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	t.Log(msg)
	for _, want := range []string{
		"tools.mcp_servers[0]: name is required",
		"tools.mcp_servers[1]: name \"a.b\" must be 1 to 64 letters, digits, '_' or '-'",
		"tools.mcp_servers[2] (both): set command or url, not both",
		"tools.mcp_servers[3] (neither): set command (a stdio server) or url (a streamable-HTTP server)",
		"tools.mcp_servers[5] (calc): name \"calc\" is already used by tools.mcp_servers[4]",
		"tools.mcp_servers[6] (rel): url must be an absolute http(s) URL",
		"tools.mcp_servers[7] (ftp): url must be an absolute http(s) URL like https://host/mcp, got \"ftp://h/…\"",
		"tools.mcp_servers[8] (hdr): headers apply to url servers only",
		"tools.mcp_servers[9] (env): args and env apply to command servers only",
		"tools.mcp_servers[10] (badh): headers: bad header name \"Bad Name\"",
		"tools.mcp_servers[11] (crlf): headers: X: value contains a line break",
		"tools.mcp_servers[12] (badenv): env: bad variable name \"A=B\"",
		"tools.mcp_servers[13]: name \"nnnn",
		"tools.mcp_servers[14] (spaces): command \"npx -y server\" has spaces",
		"tools.mcp_servers[15] (reserved): headers: mcp-session-id is set by the MCP transport",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("missing %q", want)
		}
	}
	if strings.Contains(msg, "secret") {
		t.Error("a URL's query was echoed")
	}
	if n := strings.Count(msg, "\n") + 1; n != 15 {
		t.Errorf("%d errors, want 15", n)
	}
}

func TestChildEnv(t *testing.T) {
	parent := map[string]string{"PATH": "/bin", "HOME": "/root", "COMETAPI_KEY": "sk-x", "SLACK_BOT_TOKEN": "xoxb", "LANG": ""}
	s := Server{Env: map[string]string{"TOKEN": "t", "HOME": "/srv"}}
	env := s.childEnv(func(k string) string { return parent[k] })
	slices.Sort(env)
	want := []string{"HOME=/srv", "PATH=/bin", "TOKEN=t"}
	if !slices.Equal(env, want) {
		t.Errorf("env %q, want %q", env, want)
	}
}
