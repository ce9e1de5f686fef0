package redact

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"testing"
)

func TestError(t *testing.T) {
	secret := "https://discord.com/api/v9/interactions/123/SECRET-TOKEN/callback"
	ue := &url.Error{Op: "Post", URL: secret, Err: context.DeadlineExceeded}
	tests := []struct {
		name string
		err  error
	}{
		{"bare", ue},
		{"wrapped", fmt.Errorf("discord: answer: %w", ue)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Error(tt.err)
			if strings.Contains(got.Error(), "SECRET-TOKEN") {
				t.Fatalf("token leaked: %v", got)
			}
			if !strings.Contains(got.Error(), "https://discord.com/…") || !errors.Is(got, context.DeadlineExceeded) {
				t.Fatalf("got %v", got)
			}
		})
	}
	plain := errors.New("plain")
	if Error(plain) != plain || Error(nil) != nil {
		t.Fatal("errors without URLs must pass through unchanged")
	}
}

func TestHandler(t *testing.T) {
	var buf strings.Builder
	log := slog.New(Handler(slog.NewTextHandler(&buf, nil)))
	ue := &url.Error{Op: "Post", URL: "https://hooks.slack.com/commands/T1/123/SECRET", Err: errors.New("connection refused")}
	log.With("err0", ue).Warn("posting failed", "err", fmt.Errorf("slack: %w", ue), "n", 1)
	if strings.Contains(buf.String(), "SECRET") || !strings.Contains(buf.String(), "connection refused") {
		t.Fatalf("log line: %s", buf.String())
	}
}

func TestCredentials(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://api.cometapi.com/v1", "https://api.cometapi.com/v1"},
		{"https://sk-abc123@gw.example.com/v1", "https://[redacted]@gw.example.com/v1"},
		{"https://user:sk-abc123@gw.example.com/v1", "https://[redacted]@gw.example.com/v1"},
		{"https://gw.example.com/v1?key=sk-abc123&region=eu", "https://gw.example.com/v1?key=[redacted]&region=[redacted]"},
		{"https://gw.example.com/v1?sk-abc123", "https://gw.example.com/v1?[redacted]"},
		{"https://gw.example.com/v1#sk-abc123", "https://gw.example.com/v1"},
		{"not a url", "not a url"},
		{"sk-abc123@gw.example.com", "[redacted URL]"},
	}
	for _, tt := range tests {
		if got := Credentials(tt.in); got != tt.want {
			t.Errorf("Credentials(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestURLSecrets(t *testing.T) {
	got := URLSecrets("https://alice:pa%2Fss@gw.example.com/v1?key=sk-1&sk-bare")
	for _, w := range []string{"alice", "pa/ss", "sk-1", "sk-bare"} {
		if !slices.Contains(got, w) {
			t.Errorf("URLSecrets lacks %q: %q", w, got)
		}
	}
	if got := URLSecrets("https://api.cometapi.com/v1"); len(got) != 0 {
		t.Errorf("a URL without credentials has secrets %q", got)
	}
}

// TestHandlerScrubsSecrets: configured secrets are replaced in the message,
// string attributes, groups, errors and attributes added with With.
func TestHandlerScrubsSecrets(t *testing.T) {
	const key = "sk-base-url-key"
	var buf strings.Builder
	log := slog.New(Handler(slog.NewTextHandler(&buf, nil), key, "abc" /* too short: kept */))
	log.With("base", "https://gw.example.com/v1?key="+key).WithGroup("g").Warn("calling with "+key,
		"url", "https://"+key+"@gw.example.com", "err", fmt.Errorf("dial https://gw.example.com/?key=%s: refused", key),
		slog.Group("inner", "k", key), "word", "abc")
	out := buf.String()
	if strings.Contains(out, key) || strings.Count(out, "[redacted]") != 5 || !strings.Contains(out, "abc") {
		t.Fatalf("log line: %s", out)
	}
}
