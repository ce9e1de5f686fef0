package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cometbot/cometbot/storage"
)

func runCmd(t *testing.T, env map[string]string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(""), &out, &errb, func(k string) string { return env[k] })
	return out.String(), errb.String(), code
}

func TestDataCommands(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db := filepath.Join(dir, "bot.db")
	st, err := storage.Open(db, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	u := storage.UsageEntry{Time: now, Workspace: "slack/T1", Channel: "C1", User: "U1", Model: "m", Counter: storage.Counter{Replies: 1}}
	if err := st.CommitTurn(ctx, "slack/T1/C1/t", 0, &u,
		storage.Record{Role: "user", Author: "U1", Text: "hello", Time: now},
		storage.Record{Role: "assistant", Text: "hi", Time: now}); err != nil {
		t.Fatal(err)
	}

	// The bot runs: the backup is streamed by its endpoint.
	const token = "s3cret"
	mux := http.NewServeMux()
	mux.Handle("POST "+backupPath, backupHandler(st, token, slog.New(slog.NewTextHandler(io.Discard, nil))))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	env := map[string]string{"COMETBOT_DB": db, "COMETBOT_HTTP_ADDR": strings.TrimPrefix(srv.URL, "http://"), adminTokenEnv: "wrong"}
	hot := filepath.Join(dir, "hot.db")
	if _, errs, code := runCmd(t, env, "backup", hot); code == 0 || !strings.Contains(errs, "403") {
		t.Fatalf("backup with a wrong token: exit %d, %s", code, errs)
	}
	env[adminTokenEnv] = token
	out, errs, code := runCmd(t, env, "backup", hot)
	if code != 0 || !strings.Contains(out, "streamed by the running bot") {
		t.Fatalf("hot backup: exit %d\n%s%s", code, out, errs)
	}
	if _, errs, code := runCmd(t, env, "export", "--user", "U1"); code == 0 || !strings.Contains(errs, "backup") {
		t.Fatalf("export while the bot runs: exit %d, %s", code, errs)
	}
	if _, errs, code := runCmd(t, env, "restore", hot); code == 0 || !strings.Contains(errs, "locked") {
		t.Fatalf("restore while the bot runs: exit %d, %s", code, errs)
	}
	if err := st.ResetConversation(ctx, "slack/T1/C1/t"); err != nil {
		t.Fatal(err)
	}
	_ = st.Close()

	// The bot is stopped: the hot backup restores the conversation.
	out, errs, code = runCmd(t, env, "restore", hot)
	if code != 0 || !strings.Contains(out, ".bak") {
		t.Fatalf("restore: exit %d\n%s%s", code, out, errs)
	}
	out, errs, code = runCmd(t, env, "export", "--user", "U1", "--workspace", "slack/T1")
	if code != 0 {
		t.Fatalf("export: exit %d\n%s", code, errs)
	}
	var ex storage.Export
	if err := json.Unmarshal([]byte(out), &ex); err != nil {
		t.Fatalf("export is not JSON: %v\n%s", err, out)
	}
	if len(ex.Messages) != 2 || ex.Messages[0].Text != "hello" || ex.Messages[1].Text != "hi" || len(ex.Usage) != 2 {
		t.Fatalf("export = %s", out)
	}
	cold := filepath.Join(dir, "cold.db")
	if out, errs, code := runCmd(t, env, "backup", cold); code != 0 || !strings.Contains(out, "no bot running") {
		t.Fatalf("cold backup: exit %d\n%s%s", code, out, errs)
	}
	if out, errs, code := runCmd(t, env, "compact"); code != 0 || !strings.Contains(out, "->") {
		t.Fatalf("compact: exit %d\n%s%s", code, out, errs)
	}
	if _, errs, code := runCmd(t, env, "export"); code != 2 {
		t.Fatalf("export without --user: exit %d, %s", code, errs)
	}
}

func TestAdminAllowed(t *testing.T) {
	req := func(remote, host, auth string) *http.Request {
		r := httptest.NewRequest("POST", "http://"+host+backupPath, nil)
		r.RemoteAddr, r.Host = remote, host
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		return r
	}
	for _, c := range []struct {
		remote, host, auth, token string
		ok                        bool
	}{
		{"127.0.0.1:5000", "127.0.0.1:8080", "", "", true},
		{"[::1]:5000", "localhost:8080", "", "", true},
		{"10.0.0.5:5000", "10.0.0.1:8080", "", "", false},
		{"127.0.0.1:5000", "evil.example:8080", "", "", false}, // DNS rebinding
		{"10.0.0.5:5000", "10.0.0.1:8080", "Bearer t", "t", true},
		{"127.0.0.1:5000", "127.0.0.1:8080", "", "t", false},
		{"127.0.0.1:5000", "127.0.0.1:8080", "Bearer x", "t", false},
	} {
		if got := adminAllowed(req(c.remote, c.host, c.auth), c.token); got != c.ok {
			t.Errorf("%+v: allowed = %v", c, got)
		}
	}
	if got := loopbackURL("0.0.0.0:8080", backupPath); got != "http://127.0.0.1:8080/admin/backup" {
		t.Errorf("loopbackURL = %s", got)
	}
	if got := loopbackURL(":8080", backupPath); got != "http://127.0.0.1:8080/admin/backup" {
		t.Errorf("loopbackURL = %s", got)
	}
}
