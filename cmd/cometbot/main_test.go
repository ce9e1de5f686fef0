package main

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cometbot/cometbot/llm"
	"github.com/cometbot/cometbot/llm/llmtest"
)

// binary is the cometbot binary built once for the subprocess tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cometbot-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "cometbot")
	build := exec.Command("go", "build", "-trimpath", "-o", binary, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		os.Stderr.Write(out)
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// chat runs `cometbot chat` as a subprocess with input and returns stdout.
func chat(t *testing.T, env []string, input string) (string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "chat")
	cmd.Env = env
	cmd.Stdin = strings.NewReader(input)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("cometbot chat: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	return stdout.String(), stderr.String()
}

func TestChatSubprocessPersistsAcrossRestart(t *testing.T) {
	gw := llmtest.New(t, llmtest.Options{Echo: true, APIKey: "sk-test-key"})
	env := []string{
		"COMETAPI_KEY=sk-test-key", "COMETAPI_BASE_URL=" + gw.URL(),
		"COMETBOT_DB=" + filepath.Join(t.TempDir(), "data", "bot.db"), "USER=alice", "HOME=" + t.TempDir(),
	}
	out, _ := chat(t, env, "my name is Alice\nwhat is my name?\n")
	if !strings.Contains(out, "my name is Alice") {
		t.Errorf("first answer missing from output:\n%s", out)
	}
	prompts := modelPrompts(t, gw)
	if len(prompts) != 2 {
		t.Fatalf("%d model calls, want 2", len(prompts))
	}
	if got := prompts[1].Messages; len(got) != 3 || got[0].Content != "my name is Alice" {
		t.Fatalf("second turn did not carry the first: %+v", got)
	}
	// Restart: a new process, same database.
	chat(t, env, "and again?\n")
	prompts = modelPrompts(t, gw)
	if got := prompts[2].Messages; len(got) != 5 || got[0].Content != "my name is Alice" || got[4].Content != "and again?" {
		t.Fatalf("after restart the third turn carries %d messages: %+v", len(got), got)
	}
}

func modelPrompts(t *testing.T, gw *llmtest.Server) []llmtest.Prompt {
	t.Helper()
	var out []llmtest.Prompt
	for _, r := range gw.Requests() {
		if r.Format == "" {
			continue
		}
		out = append(out, r.MustDecode())
	}
	return out
}

func TestChatErrorsNeverLeakTheKey(t *testing.T) {
	const key = "sk-super-secret-value"
	gw := llmtest.New(t, llmtest.Options{APIKey: "another-key"})
	env := []string{"COMETAPI_KEY=" + key, "COMETAPI_BASE_URL=" + gw.URL(), "COMETBOT_LOG_LEVEL=debug",
		"COMETBOT_DB=" + filepath.Join(t.TempDir(), "bot.db")}
	out, errOut := chat(t, env, "hello\n")
	if !strings.Contains(out, "gateway key is missing or wrong") {
		t.Errorf("user should be told the key is wrong; got:\n%s", out)
	}
	if strings.Contains(out+errOut, key) {
		t.Fatalf("the key leaked:\nstdout:%s\nstderr:%s", out, errOut)
	}
}

func TestRunWithoutPlatformExplains(t *testing.T) {
	var stderr bytes.Buffer
	env := map[string]string{"COMETAPI_KEY": "k"}
	code := run(context.Background(), []string{"run"}, nil, &bytes.Buffer{}, &stderr, func(k string) string { return env[k] })
	if code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	for _, want := range []string{"SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET", "DISCORD_BOT_TOKEN", "cometbot chat"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("message lacks %s:\n%s", want, stderr.String())
		}
	}
}

func TestVersionAndUnknownCommand(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"--version"}, nil, &out, &errOut, os.Getenv); code != 0 || !strings.HasPrefix(out.String(), "cometbot ") {
		t.Fatalf("--version: %d %q", code, out.String())
	}
	if code := run(context.Background(), []string{"frobnicate"}, nil, &out, &errOut, os.Getenv); code != 2 {
		t.Fatalf("unknown command exit %d", code)
	}
}

func TestModelsCommand(t *testing.T) {
	gw := llmtest.New(t)
	env := map[string]string{"COMETAPI_BASE_URL": gw.URL()}
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"models", "claude"}, nil, &out, &errOut, func(k string) string { return env[k] })
	if code != 0 || !strings.Contains(out.String(), "claude-sonnet-4-5") || strings.Contains(out.String(), "gpt-4o-mini") {
		t.Fatalf("models claude: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "Anthropic") || !strings.Contains(out.String(), "INPUT $/M") {
		t.Errorf("table lacks provider or price header:\n%s", out.String())
	}
}

// TestDoctor runs `cometbot doctor` against the fake gateway: each failure
// says what is wrong and the fix; open defaults are warnings.
func TestDoctor(t *testing.T) {
	html := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte("<html>hello</html>"))
	}))
	t.Cleanup(html.Close)
	writeFile := func(t *testing.T, name string, data []byte) string {
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const budgets = "budgets:\n  user: {daily: 1}\naccess:\n  admins: [U1]\n"
	unpriced := llmtest.DefaultModels()
	unpriced[0].Pricing = llm.Pricing{} // gpt-4o-mini, the default model
	tests := []struct {
		name     string
		gw       llmtest.Options
		script   *llmtest.Script // the gateway's answer to the test request
		env      func(t *testing.T, gw *llmtest.Server) map[string]string
		wantCode int
		want     []string
		notWant  []string
	}{
		{name: "all good", wantCode: 0,
			want: []string{"✓ gateway key", "✓ model catalog", "✓ default model — gpt-4o-mini answered a test request", "✓ prices — no budgets",
				"! open defaults — no admins are configured", "everyone may change server-wide models", "no budgets are configured",
				"✓ database", "passed the consistency check", "All checks passed (1 warning above)"}},
		{name: "wrong key", env: func(t *testing.T, gw *llmtest.Server) map[string]string {
			return map[string]string{"COMETAPI_KEY": "wrong"}
		},
			wantCode: 1, want: []string{"✗ gateway key", "rejected the key", "COMETAPI_KEY"}},
		{name: "html base url", env: func(t *testing.T, gw *llmtest.Server) map[string]string {
			return map[string]string{"COMETAPI_BASE_URL": html.URL + "/v1", "COMETAPI_CATALOG_URL": gw.CatalogURL()}
		}, wantCode: 1, want: []string{"base URL looks wrong", "https://api.cometapi.com/v1"}},
		{name: "unknown default model", env: func(t *testing.T, gw *llmtest.Server) map[string]string {
			return map[string]string{"COMETBOT_DEFAULT_MODEL": "gpt-4o-mimi"}
		}, wantCode: 1, want: []string{"✗ default model", "did you mean", "gpt-4o-mini"}},
		{name: "unknown model with nothing near", env: func(t *testing.T, gw *llmtest.Server) map[string]string {
			return map[string]string{"COMETBOT_DEFAULT_MODEL": "zzzzzzzzzzzzzzzzzzzz"}
		}, wantCode: 1, want: []string{"✗ default model", "not in the catalog", "fix:"}, notWant: []string{"did you mean", "()"}},
		{name: "listed but not served", script: &llmtest.Script{Status: 503, ErrorMessage: "No available channel for model gpt-4o-mini under group default"},
			wantCode: 1, want: []string{"✗ default model", "test request to \"gpt-4o-mini\" failed", "isn't available on the gateway", "fix: pick a model the gateway serves"}},
		{name: "budgets with an unpriced default model", gw: llmtest.Options{APIKey: "right", Models: unpriced},
			env: func(t *testing.T, gw *llmtest.Server) map[string]string {
				return map[string]string{"COMETBOT_CONFIG": writeFile(t, "c.yaml", []byte(budgets))}
			}, wantCode: 1, want: []string{"✗ prices", "default model \"gpt-4o-mini\" has no known price", "budgeted turns with it are refused", "✓ open defaults"}},
		{name: "budgets without a catalog", env: func(t *testing.T, gw *llmtest.Server) map[string]string {
			return map[string]string{"COMETBOT_CONFIG": writeFile(t, "c.yaml", []byte(budgets)), "COMETAPI_CATALOG_URL": html.URL + "/api/models"}
		}, wantCode: 1, want: []string{"✗ model catalog", "✗ prices", "no model catalog is loaded", "budgeted turns are refused"}},
		{name: "corrupted database", env: func(t *testing.T, gw *llmtest.Server) map[string]string {
			return map[string]string{"COMETBOT_DB": writeFile(t, "bot.db", bytes.Repeat([]byte("garbage!"), 2048))}
		}, wantCode: 1, want: []string{"✗ database", "is corrupted", "restore", "copy your latest backup", ".corrupt"}},
		{name: "empty database file", env: func(t *testing.T, gw *llmtest.Server) map[string]string {
			return map[string]string{"COMETBOT_DB": writeFile(t, "bot.db", nil)}
		}, wantCode: 1, want: []string{"✗ database", "is empty (0 bytes)", "copy your latest backup"}},
		{name: "key in the base URL's user info", env: func(t *testing.T, gw *llmtest.Server) map[string]string {
			return map[string]string{"COMETAPI_BASE_URL": strings.Replace(gw.URL(), "http://", "http://sk-in-the-url@", 1)}
		}, wantCode: 0, want: []string{"key accepted by http://[redacted]@127.0.0.1"}, notWant: []string{"sk-in-the-url"}},
		{name: "key in the base URL's query", env: func(t *testing.T, gw *llmtest.Server) map[string]string {
			return map[string]string{"COMETAPI_BASE_URL": gw.URL() + "?key=sk-in-the-query"}
		}, wantCode: 1, want: []string{"✗ configuration", "key=[redacted]", "put the key in COMETAPI_KEY"}, notWant: []string{"sk-in-the-query"}},
		{name: "bad config", env: func(t *testing.T, gw *llmtest.Server) map[string]string {
			return map[string]string{"COMETBOT_LOG_FORMAT": "xml"}
		}, wantCode: 1, want: []string{"✗ configuration", "COMETBOT_LOG_FORMAT"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := tt.gw
			if opts.APIKey == "" {
				opts.APIKey = "right"
			}
			gw := llmtest.New(t, opts)
			if tt.script != nil {
				gw.Enqueue(*tt.script)
			}
			env := map[string]string{"COMETAPI_KEY": "right", "COMETAPI_BASE_URL": gw.URL(), "COMETBOT_DB": filepath.Join(t.TempDir(), "d", "bot.db")}
			if tt.env != nil {
				maps.Copy(env, tt.env(t, gw))
			}
			var out, errOut bytes.Buffer
			code := run(context.Background(), []string{"doctor"}, nil, &out, &errOut, func(k string) string { return env[k] })
			if tt.wantCode >= 0 && code != tt.wantCode {
				t.Errorf("exit %d, want %d", code, tt.wantCode)
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(out.String()+errOut.String(), w) {
					t.Errorf("output shows %q:\n%s", w, out.String())
				}
			}
			if strings.Contains(out.String()+errOut.String(), "right") {
				t.Errorf("output shows the key")
			}
		})
	}
}

// TestHealthEndpoints: /readyz answers 503 with the reason until ready
// (platforms connected, store saving turns), then 200.
func TestHealthEndpoints(t *testing.T) {
	var notReady atomic.Value
	notReady.Store("not connected: slack")
	ready := func(context.Context) error {
		if why := notReady.Load().(string); why != "" {
			return errors.New(why)
		}
		return nil
	}
	srv := httptest.NewServer(healthServer("", ready, nil, defaultHTTPLimits).Handler)
	defer srv.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	tests := []struct {
		why        string
		code       int
		wantInBody string
	}{
		{"not connected: slack", 503, "not ready: not connected: slack"},
		{"store failing for 12s: write /data/cometbot.db: no space left on device", 503, "no space left on device"},
		{"", 200, "ready"},
	}
	for _, tt := range tests {
		notReady.Store(tt.why)
		if code, _ := get("/healthz"); code != 200 {
			t.Errorf("healthz %d", code)
		}
		if code, body := get("/readyz"); code != tt.code || !strings.Contains(body, tt.wantInBody) {
			t.Errorf("not ready because %q: readyz %d %q", tt.why, code, body)
		}
	}
}

// TestStaticBinaryInEmptyRoot runs the CGO_ENABLED=0 binary in an empty root
// directory (no libc, no /etc), as the Docker image's last stage does.
func TestStaticBinaryInEmptyRoot(t *testing.T) {
	f, err := elf.Open(binary)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("binary has a dynamic interpreter: it is not static")
		}
	}
	f.Close()
	if os.Geteuid() != 0 {
		t.Skip("chroot needs root; the ELF check above still ran")
	}
	root := t.TempDir()
	data, err := os.ReadFile(binary)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "cometbot"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/cometbot", "--version")
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "cometbot ") {
		t.Fatalf("in an empty root: %v: %s", err, out)
	}
	// The bot itself also starts there: with no platform it explains and exits 2.
	cmd = exec.Command("/cometbot")
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root}
	cmd.Env = []string{"COMETAPI_KEY=k", "COMETBOT_DB=/data/cometbot.db"}
	out, _ = cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 2 || !strings.Contains(string(out), "DISCORD_BOT_TOKEN") {
		t.Fatalf("run in empty root: exit %d: %s", cmd.ProcessState.ExitCode(), out)
	}
}

func TestHealthcheckCommand(t *testing.T) {
	srv := httptest.NewServer(healthServer("", func(context.Context) error { return nil }, nil, defaultHTTPLimits).Handler)
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	env := map[string]string{"COMETBOT_HTTP_ADDR": addr}
	getenv := func(k string) string { return env[k] }
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"healthcheck"}, nil, &out, &errOut, getenv); code != 0 {
		t.Fatalf("healthcheck against a live server: exit %d: %s", code, errOut.String())
	}
	srv.Close()
	if code := run(context.Background(), []string{"healthcheck"}, nil, &out, &errOut, getenv); code == 0 {
		t.Fatal("healthcheck against a closed port should fail")
	}
}

// TestChatListsModelsWhileCatalogIsDown: the last good catalog is kept in the
// database, so a restarted bot lists models while the catalog answers 500.
func TestChatListsModelsWhileCatalogIsDown(t *testing.T) {
	gw := llmtest.New(t, llmtest.Options{Echo: true})
	env := []string{"COMETAPI_KEY=k", "COMETAPI_BASE_URL=" + gw.URL(), "COMETBOT_DB=" + filepath.Join(t.TempDir(), "bot.db")}
	if out, _ := chat(t, env, "/model list claude\n"); !strings.Contains(out, "claude-sonnet-4-5") {
		t.Fatalf("first run (no cache yet) should fetch the catalog before reading input:\n%s", out)
	}
	gw.SetCatalogStatus(http.StatusInternalServerError)
	out, _ := chat(t, env, "/model list claude\n/model claude-sonnet-4-5\nhi\n")
	if !strings.Contains(out, "claude-sonnet-4-5") || !strings.Contains(out, "now uses `claude-sonnet-4-5`") {
		t.Fatalf("with the catalog down the cached copy was not used:\n%s", out)
	}
}

// TestHugeAndEndlessAnswersStayBounded: a 400 MB answer and an endless
// stream are stopped at max_answer_chars, through the real binary, and the
// process's peak RSS stays under 100 MiB.
func TestHugeAndEndlessAnswersStayBounded(t *testing.T) {
	chunk := strings.Repeat("lorem ipsum dolor sit amet ", 37) + "\n" // 1,000 bytes
	tests := []struct {
		name   string
		repeat int
	}{
		{"400 MB answer", 400_000},
		{"endless stream", -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gw := llmtest.New(t, llmtest.Options{APIKey: "sk-test-key", DisableRecording: true})
			gw.Enqueue(llmtest.Script{Text: chunk, ChunkSize: 1000, Repeat: tt.repeat})
			env := []string{
				"COMETAPI_KEY=sk-test-key", "COMETAPI_BASE_URL=" + gw.URL(),
				"COMETBOT_DB=" + filepath.Join(t.TempDir(), "bot.db"), "USER=alice", "HOME=" + t.TempDir(),
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, binary, "chat")
			cmd.Env = env
			stdin, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stdout lockedBuffer
			var stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			if _, err := io.WriteString(stdin, "write forever\n"); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the answer to stop", 30*time.Second, func() bool {
				return strings.Contains(stdout.String(), "I stopped this answer at 40000 characters")
			})
			// The process's own high-water mark (since exec; rusage would
			// count the test process's memory at fork).
			status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
			stdin.Close()
			if werr := cmd.Wait(); werr != nil {
				t.Fatalf("cometbot chat: %v\n%s", werr, stderr.String())
			}
			out := stdout.String()
			if len(out) > 60_000 {
				t.Errorf("printed %d bytes for a 40,000-character limit", len(out))
			}
			if err != nil {
				t.Skip("no /proc on this platform")
			}
			var hwm int64
			for line := range strings.SplitSeq(string(status), "\n") {
				if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
					hwm, _ = strconv.ParseInt(f[1], 10, 64)
				}
			}
			peak := hwm * 1024
			t.Logf("peak RSS %.1f MiB", float64(peak)/(1<<20))
			if peak == 0 || peak > 100<<20 {
				t.Fatalf("peak RSS %.1f MiB, want < 100 MiB", float64(peak)/(1<<20))
			}
		})
	}
}
