package redact

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
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
