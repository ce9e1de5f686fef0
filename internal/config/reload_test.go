package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReload(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.yaml")
	write := func(body string) {
		t.Helper()
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("aliases:\n  fast: gpt-4o-mini\nbudgets:\n  user:\n    daily: 1\n")
	c, err := Load(envMap(map[string]string{"COMETBOT_CONFIG": p, "COMETAPI_KEY": "sk-secret-1"}))
	if err != nil {
		t.Fatal(err)
	}

	write("aliases:\n  fast: claude-haiku\nbudgets:\n  user:\n    daily: 2\n")
	n, err := c.Reload()
	if err != nil {
		t.Fatal(err)
	}
	if n.File.Aliases["fast"] != "claude-haiku" || n.File.Budgets.User.Daily != 2 || n.APIKey.Value() != "sk-secret-1" {
		t.Errorf("reloaded = %+v", n.File)
	}
	if c.File.Aliases["fast"] != "gpt-4o-mini" {
		t.Error("Reload changed the old config")
	}

	cases := []struct{ body, want string }{
		{"aliases:\n  fast: x\nbudgets:\n  user:\n    daily: [\n", "line"},                                              // syntax
		{"aliases:\n  fast: x\nbudgets:\n  user:\n    daily: 5\n    monthly: 1\n", p + ":4: budgets.user: daily limit"}, // validation
		{"aliases:\n  fast: x\nbugdets: {}\n", "line 3: field bugdets not found"},                                       // unknown field
		{"gateway:\n  routes:\n    - model: a\n      format: chat\n    - model: b\n      format: nope\n", p + ":5: gateway.routes[1]"},
	}
	for _, tc := range cases {
		write(tc.body)
		if _, err := c.Reload(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Reload(%q) = %v, want it to mention %q", tc.body, err, tc.want)
		}
	}
}
