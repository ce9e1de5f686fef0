package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cometbot/cometbot/adapters/discord/discordtest"
	"github.com/cometbot/cometbot/adapters/slack/slacktest"
	"github.com/cometbot/cometbot/llm/llmtest"
	"github.com/cometbot/cometbot/storage"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRunServesSlackAndDiscordAtOnce starts the real binary with both
// platforms' tokens against loopback fakes: both connect (/readyz 200), a
// Slack mention and a Discord mention are both answered, and SIGTERM stops
// the process cleanly.
func TestRunServesSlackAndDiscordAtOnce(t *testing.T) {
	gw := llmtest.New(t, llmtest.Options{Echo: true, APIKey: "sk-run"})
	sl := slacktest.Start(t, slacktest.Options{})
	dc := discordtest.NewTest(t, discordtest.Options{})
	addr := freeAddr(t)
	cfgPath := filepath.Join(t.TempDir(), "cometbot.yaml")
	if err := os.WriteFile(cfgPath, []byte("aliases: {fast: gpt-4o-mini}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const adminToken = "adm-run-test-token-0123"

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "run")
	cmd.Env = []string{
		"COMETBOT_CONFIG=" + cfgPath, "COMETBOT_ADMIN_TOKEN=" + adminToken,
		"COMETAPI_KEY=sk-run", "COMETAPI_BASE_URL=" + gw.URL(),
		"COMETBOT_DB=" + filepath.Join(t.TempDir(), "bot.db"), "COMETBOT_HTTP_ADDR=" + addr,
		"SLACK_BOT_TOKEN=" + sl.Options().BotToken, "SLACK_APP_TOKEN=" + sl.Options().AppToken, "SLACK_API_URL=" + sl.APIURL(),
		"DISCORD_BOT_TOKEN=" + dc.Token(), "DISCORD_API_URL=" + dc.APIURL(),
	}
	var logs lockedBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})

	readyz := func() int {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	waitFor(t, "/readyz to answer 200 (both platforms connected)", 20*time.Second, func() bool { return readyz() == 200 })

	ev := sl.Mention("U1", "C1", "<@UBOT> hello from slack", "")
	sl.SendEvent(ev)
	um := dc.UserMessage(discordtest.Post{ChannelID: discordtest.GeneralChannel, Content: fmt.Sprintf("<@%s> hello from discord", dc.BotID())})
	waitFor(t, "the Slack reply in the thread", 20*time.Second, func() bool {
		for _, m := range sl.BotReplies("C1", ev.TS) {
			if strings.Contains(m.Body(), "echo: hello from slack") {
				return true
			}
		}
		return false
	})
	waitFor(t, "the Discord reply", 20*time.Second, func() bool {
		for _, m := range dc.BotMessages(um.ID) {
			if m.Content == "echo: hello from discord" {
				return true
			}
		}
		return false
	})

	// Prometheus metrics through the real binary: one turn per platform,
	// the gateway's requests, tokens, and no user or channel id in a label.
	scrape := func() string {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			t.Fatalf("/metrics: %v", err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	waitFor(t, "both turns counted in /metrics", 10*time.Second, func() bool {
		m := scrape()
		return strings.Contains(m, `cometbot_turns_total{outcome="ok",platform="slack"} 1`) &&
			strings.Contains(m, `cometbot_turns_total{outcome="ok",platform="discord"} 1`)
	})
	metrics := scrape()
	for _, want := range []string{`cometbot_gateway_requests_total{code="200",format="chat"} 2`, `cometbot_tokens_total{kind="input",model="gpt-4o-mini"}`,
		`cometbot_first_visible_seconds_count`, `cometbot_platform_requests_total{code="200",method="chat.postMessage",platform="slack"}`, "go_goroutines", "process_cpu_seconds_total"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	for _, id := range []string{"U1", "C1", sl.Options().BotToken, discordtest.GeneralChannel, discordtest.AliceID} {
		if id != "" && strings.Contains(metrics, `"`+id+`"`) {
			t.Errorf("an id (%s) appears in a metric label", id)
		}
	}

	// The dashboard: 401 without the token, the page with it.
	admin := func(token string) (int, string) {
		req, _ := http.NewRequest("GET", "http://"+addr+"/admin", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := admin("wrong"); code != 401 {
		t.Errorf("/admin with a wrong token: %d", code)
	}
	if code, page := admin(adminToken); code != 200 || !strings.Contains(page, "<svg id=\"spend\"") || !strings.Contains(page, "No budgets are configured") {
		t.Errorf("/admin: %d\n%s", code, page)
	}
	// SIGHUP with a broken file: refused with its line, still ready; a valid
	// file's budgets then show on the dashboard.
	if err := os.WriteFile(cfgPath, []byte("aliases: {fast: gpt-4o-mini}\nbudgets:\n  user: {daily: 5, monthly: 1}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the refused reload in the log", 10*time.Second, func() bool {
		return strings.Contains(logs.String(), "cometbot.yaml:3: budgets.user: daily limit")
	})
	if readyz() != 200 {
		t.Error("/readyz not 200 after a refused reload")
	}
	if err := os.WriteFile(cfgPath, []byte("budgets:\n  user: {daily: 2, monthly: 30}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the reloaded budgets on the dashboard", 10*time.Second, func() bool {
		_, page := admin(adminToken)
		return strings.Contains(page, "Per user: daily $2.00, monthly $30.00")
	})

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
		if waitErr != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", waitErr, logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("no exit after SIGTERM\n%s", logs.String())
	}
	for _, w := range []string{"no admins are configured", "everyone may change server-wide models", "no budgets are configured"} {
		if !strings.Contains(logs.String(), w) {
			t.Errorf("the startup log does not say %q:\n%s", w, logs.String())
		}
	}
	if strings.Contains(logs.String(), "sk-run") || strings.Contains(logs.String(), sl.Options().BotToken) || strings.Contains(logs.String(), dc.Token()) || strings.Contains(logs.String(), adminToken) {
		t.Fatalf("a secret reached the logs:\n%s", logs.String())
	}
}

// TestRunAndDoctorRefuseABadDatabase: the real binary, given an empty, a
// random or a truncated database file, exits with one clear error naming
// the file — no panic, no stack trace — and leaves the file as it was.
func TestRunAndDoctorRefuseABadDatabase(t *testing.T) {
	gw := llmtest.New(t, llmtest.Options{APIKey: "k"})
	good := filepath.Join(t.TempDir(), "good.db")
	st, err := storage.Open(good, storage.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2000 {
		p := strings.Repeat("a long system prompt ", 10)
		if err := st.UpdateSettings(context.Background(), fmt.Sprint("scope-", i), func(s *storage.Settings) { s.SystemPrompt = &p }); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	real, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"empty":     nil,
		"random":    bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef, 0x42}, 20000),
		"truncated": real[:len(real)/3],
	}
	for name, data := range files {
		for _, sub := range []string{"run", "doctor"} {
			t.Run(name+"/"+sub, func(t *testing.T) {
				db := filepath.Join(t.TempDir(), "bot.db")
				if err := os.WriteFile(db, data, 0o600); err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				cmd := exec.CommandContext(ctx, binary, sub)
				cmd.Env = []string{"COMETAPI_KEY=k", "COMETAPI_BASE_URL=" + gw.URL(), "COMETBOT_DB=" + db,
					"COMETBOT_HTTP_ADDR=" + freeAddr(t), "DISCORD_BOT_TOKEN=unused", "DISCORD_API_URL=http://127.0.0.1:1/api/v9"}
				out, err := cmd.CombinedOutput()
				if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 1 {
					t.Fatalf("%s: %v, want exit status 1:\n%s", sub, err, out)
				}
				for _, bad := range []string{"panic", "goroutine ", "runtime error", "SIGBUS", "SIGSEGV"} {
					if strings.Contains(string(out), bad) {
						t.Fatalf("%s printed %q:\n%s", sub, bad, out)
					}
				}
				for _, w := range []string{"the database file " + db + " is ", "restore a backup"} {
					if !strings.Contains(string(out), w) {
						t.Errorf("%s output lacks %q:\n%s", sub, w, out)
					}
				}
				if after, _ := os.ReadFile(db); !bytes.Equal(after, data) {
					t.Errorf("%s changed the database file", sub)
				}
			})
		}
	}
}

// TestRunShutdownFitsTheTimeout: with shutdown_timeout 3s and a reply the
// model never finishes, SIGTERM ends the process within the timeout: the
// reply is finalized as interrupted, then HTTP and Slack close.
func TestRunShutdownFitsTheTimeout(t *testing.T) {
	gw := llmtest.New(t, llmtest.Options{APIKey: "k"})
	gw.Enqueue(llmtest.Script{Stall: true})
	sl := slacktest.Start(t, slacktest.Options{})
	addr := freeAddr(t)
	conf := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(conf, []byte("shutdown_timeout: 3s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "run")
	cmd.Env = []string{
		"COMETAPI_KEY=k", "COMETAPI_BASE_URL=" + gw.URL(), "COMETBOT_CONFIG=" + conf,
		"COMETBOT_DB=" + filepath.Join(t.TempDir(), "bot.db"), "COMETBOT_HTTP_ADDR=" + addr,
		"SLACK_BOT_TOKEN=" + sl.Options().BotToken, "SLACK_APP_TOKEN=" + sl.Options().AppToken, "SLACK_API_URL=" + sl.APIURL(),
	}
	var logs lockedBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	waitFor(t, "/readyz 200", 20*time.Second, func() bool {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	ev := sl.Mention("U1", "C1", "<@UBOT> never answered", "")
	sl.SendEvent(ev)
	waitFor(t, "the model call to hang", 20*time.Second, func() bool { return gw.InFlight() > 0 })

	begin := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("no exit 30 s after SIGTERM\n%s", logs.String())
	}
	if took := time.Since(begin); took > 3*time.Second+1500*time.Millisecond {
		t.Fatalf("shutdown took %s with shutdown_timeout 3s\n%s", took, logs.String())
	}
	interrupted := false
	for _, m := range sl.BotReplies("C1", ev.TS) {
		interrupted = interrupted || strings.Contains(m.Body(), "Interrupted")
	}
	if !interrupted {
		t.Errorf("the hanging reply was not finalized as interrupted: %+v\n%s", sl.BotReplies("C1", ev.TS), logs.String())
	}
}
