package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/cometbot/cometbot/adapters/slack/slacktest"
	"github.com/cometbot/cometbot/bot"
	"github.com/cometbot/cometbot/llm/llmtest"
)

// lostAnswerTimeout is the Web API client timeout in tests whose fake holds
// answers back (slacktest.FaultTimeout).
const lostAnswerTimeout = 1500 * time.Millisecond

// postIDs returns the post ids of the bot's messages in a thread, failing
// the test when a message carries none or two carry the same.
func postIDs(t *testing.T, msgs []slacktest.Message) []string {
	t.Helper()
	seen := map[string]bool{}
	var ids []string
	for _, m := range msgs {
		var md struct {
			EventType    string         `json:"event_type"`
			EventPayload map[string]any `json:"event_payload"`
		}
		if m.Streamed {
			continue // chat.startStream takes no metadata
		}
		if err := json.Unmarshal(m.Metadata, &md); err != nil || md.EventType != replyEventType {
			t.Errorf("message %s has no reply metadata: %s", m.TS, m.Metadata)
			continue
		}
		id, _ := md.EventPayload[postIDKey].(string)
		if id == "" || seen[id] {
			t.Errorf("message %s: post id %q missing or repeated", m.TS, id)
		}
		seen[id] = true
		ids = append(ids, id)
	}
	return ids
}

// TestLostPostAnswersCreateNoSecondCopy: every chat.postMessage of a reply
// is stored by Slack and then loses its answer (a timeout, a reset
// connection, an undecodable 200). The adapter reads the conversation back,
// finds each message by its post id and continues with it: one visible
// message per part.
func TestLostPostAnswersCreateNoSecondCopy(t *testing.T) {
	t.Parallel()
	answer := strings.TrimSpace(strings.Repeat("An answer long enough to need several messages. ", 8))
	for _, tc := range []struct {
		fault  slacktest.Fault
		thread bool // a thread inside the DM (conversations.replies) or its top level (conversations.history)
	}{
		{slacktest.FaultTimeout, false},
		{slacktest.FaultReset, false},
		{slacktest.FaultBadResponse, false},
		{slacktest.FaultTimeout, true},
		{slacktest.FaultReset, true},
		{slacktest.FaultBadResponse, true},
	} {
		name := string(tc.fault) + "/top level"
		if tc.thread {
			name = string(tc.fault) + "/thread"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOptions{gateway: llmtest.Options{Reply: answer}, cfg: func(c *Config) {
				c.MessagePartRunes = 150
				c.HTTPClient = &http.Client{Timeout: lostAnswerTimeout}
			}})
			thread := ""
			if tc.thread {
				parent := e.slack.DM("U1", "D1", "an earlier message", "")
				e.slack.EventCallback(parent) // stored, not delivered
				thread = parent.TS
			}
			want := e.expectClassic(answer)
			if len(want) < 3 {
				t.Fatalf("answer renders as %d parts, want several", len(want))
			}
			for range len(want) + 1 {
				e.slack.FailAfterStore("chat.postMessage", tc.fault)
			}
			e.slack.SendEvent(e.slack.DM("U1", "D1", "tell me", thread))
			e.waitThread("D1", thread, want)
			e.barrier("D1")
			msgs := e.slack.BotReplies("D1", thread)
			if !equalStrings(e.bodies("D1", thread), want) {
				t.Fatalf("thread = %q", clip(e.bodies("D1", thread)))
			}
			postIDs(t, msgs)
			faulted := 0
			for _, c := range e.slack.Calls("chat.postMessage") {
				if c.Fault != "" {
					faulted++
				}
			}
			if faulted == 0 {
				t.Fatal("no post lost its answer")
			}
			if n := len(e.slack.Calls("chat.postMessage")); n != len(want) {
				t.Errorf("%d chat.postMessage calls for %d parts: a post was sent again", n, len(want))
			}
			lookup := "conversations.history"
			if tc.thread {
				lookup = "conversations.replies"
			}
			for _, c := range e.slack.Calls(lookup) {
				if c.Params.Get("include_all_metadata") != "1" || c.Params.Get("oldest") == "" || c.Params.Get("limit") != "15" {
					t.Errorf("%s without metadata, lower bound or a small page: %v", lookup, c.Params)
				}
			}
			if len(e.slack.Calls(lookup)) < faulted {
				t.Errorf("%d %s calls for %d lost answers", len(e.slack.Calls(lookup)), lookup, faulted)
			}
		})
	}
}

// TestLostPostIsSentAgainWhenMissing: a post that failed before Slack
// stored it (the connection reset while the request was still read) is
// found missing and sent again.
func TestLostPostIsSentAgainWhenMissing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{gateway: llmtest.Options{Echo: true}})
	e.slack.FailNext("chat.postMessage", "internal_error") // refused: definitely not stored
	e.slack.SendEvent(e.slack.DM("U1", "D1", "hello", ""))
	e.waitThread("D1", "", []string{"echo: hello"})
	e.barrier("D1")
	if n := len(e.bodies("D1", "")); n != 1 {
		t.Fatalf("%d messages", n)
	}
	if n := len(e.slack.Calls("conversations.history")); n != 0 {
		t.Errorf("a refused post (an answer from Slack) was looked up %d times", n)
	}
}

// TestLostPostInChannelThreadIsNotRepeated: Slack does not let bot tokens
// read channel threads, so a post whose answer is lost there cannot be
// checked. It is not sent again: the reply creates no further message.
func TestLostPostInChannelThreadIsNotRepeated(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{gateway: llmtest.Options{Reply: "The one and only answer."}})
	e.slack.FailAfterStore("chat.postMessage", slacktest.FaultReset)
	ev := e.slack.Mention("U1", "C1", "<@UBOT> answer once", "")
	e.slack.SendEvent(ev)
	e.waitFor("the refused lookup", 15*time.Second, func() bool {
		c := e.slack.Calls("conversations.replies")
		return len(c) > 0 && c[len(c)-1].Error == "not_allowed_token_type"
	})
	e.barrier("C1")
	if n := len(e.slack.BotReplies("C1", ev.TS)); n != 1 {
		t.Fatalf("%d bot messages in the thread, want the one Slack stored", n)
	}
	if n := len(e.slack.Calls("chat.postMessage")); n != 1 {
		t.Errorf("%d chat.postMessage calls, want 1", n)
	}
}

// TestLostStreamStartIsAdopted: chat.startStream takes no metadata; after
// its answer is lost the bot's newest message without reply metadata is the
// stream, and the reply continues appending to it.
func TestLostStreamStartIsAdopted(t *testing.T) {
	t.Parallel()
	answer := strings.TrimSpace(strings.Repeat("streamed words arrive ", 10))
	e := newEnv(t, envOptions{gateway: llmtest.Options{Reply: answer, TokensPerSecond: 80}, cfg: func(c *Config) {
		c.NativeStreaming = true
		c.HTTPClient = &http.Client{Timeout: lostAnswerTimeout}
	}})
	parent := e.slack.DM("U1", "D1", "an earlier message", "")
	e.slack.EventCallback(parent)
	e.slack.FailAfterStore("chat.startStream", slacktest.FaultTimeout)
	e.slack.SendEvent(e.slack.DM("U1", "D1", "stream it", parent.TS))
	e.waitFor("streamed reply", 15*time.Second, func() bool {
		r := e.slack.BotReplies("D1", parent.TS)
		return len(r) == 1 && !r[0].Streaming && r[0].Markdown == answer
	})
	e.barrier("D1")
	if n := len(e.slack.BotReplies("D1", parent.TS)); n != 1 {
		t.Fatalf("%d messages", n)
	}
	if n := len(e.slack.Calls("chat.startStream")); n != 1 {
		t.Errorf("%d chat.startStream calls, want 1", n)
	}
}

func TestOutcomeUnknown(t *testing.T) {
	t.Parallel()
	dial := &url.Error{Op: "Post", URL: "https://slack.com/api/chat.postMessage", Err: &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}}
	read := &url.Error{Op: "Post", URL: "https://slack.com/api/chat.postMessage", Err: &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"Slack error answer", slack.SlackErrorResponse{Err: "channel_not_found"}, false},
		{"rate limited", &slack.RateLimitedError{RetryAfter: time.Second}, false},
		{"4xx", slack.StatusCodeError{Code: 404, Status: "404 Not Found"}, false},
		{"5xx", slack.StatusCodeError{Code: 503, Status: "503 Service Unavailable"}, true},
		{"never connected", dial, false},
		{"connection reset", read, true},
		{"EOF", &url.Error{Op: "Post", URL: "u", Err: io.EOF}, true},
		{"timeout", &url.Error{Op: "Post", URL: "u", Err: context.DeadlineExceeded}, true},
		{"undecodable answer", fmt.Errorf("slack: %w", &json.SyntaxError{}), true},
	}
	for _, tt := range tests {
		if got := outcomeUnknown(tt.err); got != tt.want {
			t.Errorf("%s: outcomeUnknown = %v, want %v", tt.name, got, tt.want)
		}
		if u := markUnsure(tt.err); isUnsure(u) != tt.want || transient(u) && tt.want {
			t.Errorf("%s: marked %v, transient %v", tt.name, isUnsure(u), transient(u))
		}
	}
}

func TestTSBefore(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b string
		want bool
	}{
		{"1700000000.000001", "1700000000.000002", true},
		{"1700000000.000002", "1700000000.000001", false},
		{"1700000000.000002", "1700000000.000002", false},
		{"999999999.999999", "1700000000.000000", true},
		{"1700000000.1", "1700000000.000002", false},
		{"", "1700000000.000001", true},
		{"1700000000.000001", "", false},
	}
	for _, tt := range tests {
		if got := tsBefore(tt.a, tt.b); got != tt.want {
			t.Errorf("tsBefore(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

// TestLostUploadCompletionIsNotRepeated: files.completeUploadExternal
// shares the file as a message; when its answer is lost the conversation is
// read back for a message sharing the file instead of completing it again.
func TestLostUploadCompletionIsNotRepeated(t *testing.T) {
	t.Parallel()
	for _, fault := range []slacktest.Fault{slacktest.FaultReset, slacktest.FaultBadResponse} {
		for _, inThread := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/thread=%v", fault, inThread), func(t *testing.T) {
				t.Parallel()
				a, fake := newOutputEnv(t, nil)
				ctx := context.Background()
				thread := ""
				if inThread {
					parent := fake.DM("U1", "D1", "draw a cat", "")
					fake.EventCallback(parent) // stored
					thread = parent.TS
				}
				out := &output{a: a, team: "T1", channel: "D1", thread: thread, user: "U1", dm: true}
				r, err := out.Start(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if err := r.Finish(ctx, "Here is your cat."); err != nil {
					t.Fatal(err)
				}
				fake.FailAfterStore("files.completeUploadExternal", fault)
				if err := r.(bot.FileUploader).Upload(ctx, []bot.File{{Name: "cat.png", MIMEType: "image/png", Data: pngBytes}}); err != nil {
					t.Fatalf("Upload = %v", err)
				}
				if got := fake.Uploads("D1", thread); len(got) != 1 {
					t.Fatalf("%d shares of the file", len(got))
				}
				if n := len(fake.Calls("files.completeUploadExternal")); n != 1 {
					t.Errorf("files.completeUploadExternal called %d times", n)
				}
			})
		}
	}
}
