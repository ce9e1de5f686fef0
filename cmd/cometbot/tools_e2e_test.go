package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cometbot/cometbot/internal/mcp/mcptest"
	"github.com/cometbot/cometbot/llm"
	"github.com/cometbot/cometbot/llm/llmtest"
)

// calcConfig builds the calcserver binary and writes a config file with it
// as the stdio MCP server "calc", logging its calls to the returned log.
func calcConfig(t *testing.T) (path string, log *mcptest.Log, bin string) {
	t.Helper()
	bin = mcptest.BuildCalcServer(t)
	log = mcptest.NewLog(t)
	yaml := fmt.Sprintf("tools:\n  mcp_servers:\n    - name: calc\n      command: %q\n      args: [\"-log\", %q]\n", bin, log.Path)
	path = filepath.Join(t.TempDir(), "cometbot.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, log, bin
}

// TestChatCallsAnMCPTool: the real binary, configured with the calcserver
// binary in tools.mcp_servers, answers a chat turn whose model calls
// calc_add: the server logs the call, the gateway gets the result 5, and the
// output has the answer and the tool used.
func TestChatCallsAnMCPTool(t *testing.T) {
	cfg, log, _ := calcConfig(t)
	gw := llmtest.New(t, llmtest.Options{APIKey: "sk-test-key"})
	gw.Enqueue(
		llmtest.Script{ToolCalls: []llm.ToolCall{{Name: "calc_add", Arguments: json.RawMessage(`{"a":2,"b":3}`)}}},
		llmtest.Script{Text: "2 + 3 = 5."})
	env := []string{
		"COMETAPI_KEY=sk-test-key", "COMETAPI_BASE_URL=" + gw.URL(), "COMETBOT_CONFIG=" + cfg,
		"COMETBOT_DB=" + filepath.Join(t.TempDir(), "bot.db"), "USER=alice", "HOME=" + t.TempDir(),
		"PATH=" + os.Getenv("PATH"),
	}
	out, errOut := chat(t, env, "what is 2+3?\n")
	if !strings.Contains(out, "2 + 3 = 5.") || !strings.Contains(out, "Used calc.add") {
		t.Fatalf("output lacks the answer or the tool used:\nstdout:\n%s\nstderr:\n%s", out, errOut)
	}
	adds := log.Calls("add")
	if len(adds) != 1 || adds[0].Arg("a") != 2.0 || adds[0].Arg("b") != 3.0 {
		t.Fatalf("the MCP server logged %+v, want one add with a=2, b=3", log.Entries())
	}
	ps := modelPrompts(t, gw)
	if len(ps) != 2 {
		t.Fatalf("%d model calls, want 2", len(ps))
	}
	if _, ok := ps[0].Tool("calc_add"); !ok {
		t.Fatalf("calc_add not offered: %v", mcptest.OfferedTools(ps[0]))
	}
	xs := mcptest.Exchanges(ps[1])
	if len(xs) != 1 || !xs[0].Answered || xs[0].Result.Content != "5" || xs[0].ResultPart.Shape != mcptest.ResultShapes[ps[1].Format] {
		t.Fatalf("second request's tool exchange: %+v", xs)
	}
}

// TestDoctorReportsMCPServer: `cometbot doctor` connects to the configured
// calc server and reports it with its 3 tools.
func TestDoctorReportsMCPServer(t *testing.T) {
	cfg, _, bin := calcConfig(t)
	gw := llmtest.New(t, llmtest.Options{APIKey: "right"})
	env := map[string]string{"COMETAPI_KEY": "right", "COMETAPI_BASE_URL": gw.URL(), "COMETBOT_CONFIG": cfg,
		"COMETBOT_DB": filepath.Join(t.TempDir(), "d", "bot.db")}
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"doctor"}, nil, &out, &errOut, func(k string) string { return env[k] })
	if code != 0 {
		t.Errorf("exit %d, want 0\n%s%s", code, out.String(), errOut.String())
	}
	if want := "✓ mcp calc — connected (stdio " + bin + "), 3 tools"; !strings.Contains(out.String(), want) {
		t.Fatalf("output lacks %q:\n%s", want, out.String())
	}
}
