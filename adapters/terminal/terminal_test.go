package terminal

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cometbot/cometbot/bot/bottest"
	"github.com/cometbot/cometbot/llm/llmtest"
)

func TestChatThroughEngine(t *testing.T) {
	h := bottest.New(t, bottest.Options{Gateway: llmtest.Options{Echo: true}})
	in := strings.NewReader("first question\n\n/model\nsecond question\n/reset\nthird\n")
	var out bytes.Buffer
	if err := Run(context.Background(), h.Engine, Config{In: in, Out: &out}); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, want := range []string{"first question", "Model here: `gpt-4o-mini`", "second question", "Started a new conversation"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	ps := h.Prompts()
	if len(ps) != 3 {
		t.Fatalf("%d model calls, want 3", len(ps))
	}
	if n := len(ps[1].Messages); n != 3 {
		t.Errorf("second turn carried %d messages, want 3", n)
	}
	if n := len(ps[2].Messages); n != 1 {
		t.Errorf("turn after /reset carried %d messages, want 1", n)
	}
}

func TestCommandsInChat(t *testing.T) {
	h := bottest.New(t, bottest.Options{Gateway: llmtest.Options{Echo: true}})
	in := strings.NewReader("/model gpt-4o\n/model gpt-4x\n/system You are terse.\nhello\n/usage\n/model list claude\n/forget\n")
	var out bytes.Buffer
	if err := Run(context.Background(), h.Engine, Config{In: in, Out: &out}); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, want := range []string{"now uses `gpt-4o`", "Did you mean", "System prompt for this channel set", "You — today: 1 reply", "claude-sonnet-4-5", "/forget confirm"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	p, _ := h.LastPrompt()
	if p.Model != "gpt-4o" || p.System != "You are terse." {
		t.Fatalf("the reply used model %q and system %q", p.Model, p.System)
	}
}

func TestRunStopsOnCancelWhileReading(t *testing.T) {
	h := bottest.New(t, bottest.Options{})
	pr, pw := io.Pipe() // input that never ends, like a terminal waiting for a line
	defer pw.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, h.Engine, Config{In: pr, Out: io.Discard}) }()
	time.Sleep(50 * time.Millisecond)
	cancel() // Ctrl-C
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop on cancel while waiting for input")
	}
}

func TestAttachInChat(t *testing.T) {
	h := bottest.New(t, bottest.Options{Gateway: llmtest.Options{Echo: true}})
	dir := t.TempDir()
	png := append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), bytes.Repeat([]byte{9}, 100)...)
	path := filepath.Join(dir, "shot.png")
	if err := os.WriteFile(path, png, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.log")
	if err := os.WriteFile(big, bytes.Repeat([]byte("x"), 2000), 0o600); err != nil {
		t.Fatal(err)
	}
	in := strings.NewReader("/attach " + path + "\n/attach " + big + "\n/attach /nonexistent/file\nwhat is this?\n")
	var out bytes.Buffer
	if err := Run(context.Background(), h.Engine, Config{In: in, Out: &out, MaxFileBytes: 1000, SaveDir: dir}); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, want := range []string{"shot.png (116 bytes) goes with your next message", "over the 1000-byte limit", "can't attach /nonexistent/file", "echo: what is this?"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	p, _ := h.LastPrompt()
	last := p.Parts[len(p.Parts)-1]
	if len(last) != 1 || !bytes.Equal(last[0].Data, png) {
		t.Fatalf("the attached image did not reach the gateway: %+v", last)
	}
}
