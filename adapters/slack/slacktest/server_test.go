package slacktest

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"
)

func TestFakeWebAPI(t *testing.T) {
	s := Start(t, Options{})
	api := slack.New(s.Options().BotToken, slack.OptionAPIURL(s.APIURL()))
	ctx := context.Background()

	resp, err := api.AuthTestContext(ctx)
	if err != nil || resp.UserID != "UBOT" || resp.TeamID != "T1" || resp.BotID != "BBOT" {
		t.Fatalf("auth.test = %+v, %v", resp, err)
	}

	// Unmodelled methods fail loudly and are recorded.
	if _, err := api.GetConversationInfoContext(ctx, &slack.GetConversationInfoInput{ChannelID: "C1"}); err == nil || err.Error() != "fake_method_not_implemented" {
		t.Fatalf("conversations.info = %v", err)
	}
	if c := s.Calls("conversations.info"); len(c) != 1 || c[0].Error != "fake_method_not_implemented" || c[0].Params.Get("token") != "" {
		t.Fatalf("recorded %+v", c)
	}

	// Wrong tokens are refused.
	bad := slack.New("xoxb-wrong", slack.OptionAPIURL(s.APIURL()))
	if _, err := bad.AuthTestContext(ctx); err == nil || err.Error() != "invalid_auth" {
		t.Fatalf("bad token: %v", err)
	}

	// Messages, updates and size limits.
	_, ts, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("hello", false), slack.MsgOptionTS("1.1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := api.UpdateMessageContext(ctx, "C1", ts, slack.MsgOptionText("hello again", false)); err != nil {
		t.Fatal(err)
	}
	if m, ok := s.Message("C1", ts); !ok || m.Text != "hello again" || m.Edits != 1 || m.ThreadTS != "1.1" {
		t.Fatalf("message = %+v", m)
	}
	long := make([]rune, 4001)
	for i := range long {
		long[i] = 'x'
	}
	if _, _, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText(string(long), false)); err == nil || err.Error() != "msg_too_long" {
		t.Fatalf("long message: %v", err)
	}

	// Enforced rate limits answer 429 with Retry-After and are counted per window.
	s.SetRateLimit("chat.update", 2, time.Minute)
	var rl *slack.RateLimitedError
	for i := range 3 {
		_, _, _, err := api.UpdateMessageContext(ctx, "C1", ts, slack.MsgOptionText("v", false))
		if i < 1 && err != nil {
			t.Fatal(err)
		}
		if i == 2 && !errors.As(err, &rl) {
			t.Fatalf("third update: %v", err)
		}
	}
	if rl.RetryAfter < 59*time.Second || s.MaxInWindow("chat.update", time.Minute) != 2 {
		t.Fatalf("retry after %v, max in window %d", rl.RetryAfter, s.MaxInWindow("chat.update", time.Minute))
	}

	// Scripted failures.
	s.FailNext("chat.postMessage", "channel_not_found")
	if _, _, err := api.PostMessageContext(ctx, "C1", slack.MsgOptionText("x", false)); err == nil || err.Error() != "channel_not_found" {
		t.Fatalf("scripted failure: %v", err)
	}
}

func TestFakeResponseURL(t *testing.T) {
	s := Start(t, Options{})
	api := slack.New(s.Options().BotToken, slack.OptionAPIURL(s.APIURL()))
	u := s.NewResponseURL()
	if _, _, err := api.PostMessageContext(context.Background(), "", slack.MsgOptionResponseURL(u, slack.ResponseTypeEphemeral), slack.MsgOptionText("hi", false)); err != nil {
		t.Fatal(err)
	}
	r := s.Responses()
	if len(r) != 1 || r[0].URL != u || r[0].Text != "hi" || r[0].ResponseType != "ephemeral" {
		t.Fatalf("responses = %+v", r)
	}
}

func TestFakeMetadataAndHistory(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{})
	api := slack.New(s.Options().BotToken, slack.OptionAPIURL(s.APIURL()))
	ctx := context.Background()
	meta := slack.SlackMetadata{EventType: "cometbot_reply", EventPayload: map[string]any{"post_id": "p1"}}

	// A DM thread: the user's message, then two bot replies.
	parent := s.DM("U1", "D1", "question", "")
	s.EventCallback(parent)
	_, ts1, err := api.PostMessageContext(ctx, "D1", slack.MsgOptionText("one", false), slack.MsgOptionTS(parent.TS), slack.MsgOptionMetadata(meta))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := api.PostMessageContext(ctx, "D1", slack.MsgOptionText("two", false), slack.MsgOptionTS(parent.TS)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := api.PostMessageContext(ctx, "D1", slack.MsgOptionText("top", false)); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name     string
		params   slack.GetConversationRepliesParameters
		want     []string
		wantMeta string // post_id seen on the first message, if any
		hasMore  bool
	}{
		{"whole thread without metadata", slack.GetConversationRepliesParameters{ChannelID: "D1", Timestamp: parent.TS}, []string{"question", "one", "two"}, "", false},
		{"metadata on request", slack.GetConversationRepliesParameters{ChannelID: "D1", Timestamp: parent.TS, Oldest: parent.TS, IncludeAllMetadata: true}, []string{"one", "two"}, "p1", false},
		{"paged", slack.GetConversationRepliesParameters{ChannelID: "D1", Timestamp: parent.TS, Limit: 2}, []string{"question", "one"}, "", true},
		{"after the first reply", slack.GetConversationRepliesParameters{ChannelID: "D1", Timestamp: parent.TS, Oldest: ts1, IncludeAllMetadata: true}, []string{"two"}, "", false},
	}
	for _, tt := range tests {
		msgs, more, _, err := api.GetConversationRepliesContext(ctx, &tt.params)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		var got []string
		for _, m := range msgs {
			got = append(got, m.Text)
		}
		if strings.Join(got, ",") != strings.Join(tt.want, ",") || more != tt.hasMore {
			t.Errorf("%s: got %q (more %v), want %q (more %v)", tt.name, got, more, tt.want, tt.hasMore)
		}
		var id any
		if len(msgs) > 0 {
			id = msgs[0].Metadata.EventPayload["post_id"]
		}
		if tt.wantMeta != "" && id != tt.wantMeta || tt.wantMeta == "" && id != nil {
			t.Errorf("%s: metadata post_id = %v, want %q", tt.name, id, tt.wantMeta)
		}
	}

	// conversations.history: top-level messages, newest first.
	h, err := api.GetConversationHistoryContext(ctx, &slack.GetConversationHistoryParameters{ChannelID: "D1", Limit: 15})
	if err != nil || len(h.Messages) != 2 || h.Messages[0].Text != "top" || h.Messages[1].Text != "question" {
		t.Fatalf("history = %+v, %v", h, err)
	}
	// Bot tokens may not read channel threads, as in Slack.
	if _, _, _, err := api.GetConversationRepliesContext(ctx, &slack.GetConversationRepliesParameters{ChannelID: "C1", Timestamp: parent.TS}); err == nil || err.Error() != "not_allowed_token_type" {
		t.Errorf("channel thread with a bot token: %v", err)
	}
	// Malformed metadata is refused.
	if _, _, err := api.PostMessageContext(ctx, "D1", slack.MsgOptionText("x", false), slack.MsgOptionMetadata(slack.SlackMetadata{EventPayload: map[string]any{"a": 1}})); err == nil || err.Error() != "invalid_metadata_schema" {
		t.Errorf("metadata without event_type: %v", err)
	}
}

func TestFakeFailAfterStore(t *testing.T) {
	t.Parallel()
	for _, f := range []Fault{FaultTimeout, FaultReset, FaultBadResponse} {
		t.Run(string(f), func(t *testing.T) {
			t.Parallel()
			s := Start(t, Options{})
			api := slack.New(s.Options().BotToken, slack.OptionAPIURL(s.APIURL()),
				slack.OptionHTTPClient(&http.Client{Timeout: 500 * time.Millisecond}))
			s.FailAfterStore("chat.postMessage", f)
			if _, _, err := api.PostMessageContext(context.Background(), "C1", slack.MsgOptionText("lost answer", false)); err == nil {
				t.Fatal("post succeeded")
			}
			ms := s.Messages("C1")
			if len(ms) != 1 || ms[0].Text != "lost answer" {
				t.Fatalf("stored %+v, want the message although its answer was lost", ms)
			}
			if c := s.Calls("chat.postMessage"); len(c) != 1 || c[0].Fault != f {
				t.Errorf("calls = %+v", c)
			}
			// The next call is answered normally.
			if _, _, err := api.PostMessageContext(context.Background(), "C1", slack.MsgOptionText("next", false)); err != nil {
				t.Fatal(err)
			}
		})
	}
}
