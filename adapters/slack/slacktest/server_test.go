package slacktest

import (
	"context"
	"errors"
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
