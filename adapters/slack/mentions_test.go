package slack

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cometbot/cometbot/adapters/slack/slacktest"
	"github.com/cometbot/cometbot/llm/llmtest"
)

// floodText mentions n users U100000, U100001, ...
func floodText(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "<@U%d> ", 100000+i)
	}
	return b.String()
}

// userLookups counts users.info calls for users other than the given ones.
func userLookups(s *slacktest.Server, except ...string) int {
	n := 0
	for _, c := range s.Calls("users.info") {
		if !isOneOf(except, c.Params.Get("user")) {
			n++
		}
	}
	return n
}

func isOneOf(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestMentionFloodIsBounded: a message with 500 user mentions costs
// users.info calls only when it is addressed to the bot, and then at most
// maxMentionLookups; a real mention right behind it is answered.
func TestMentionFloodIsBounded(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		event    func(s *slacktest.Server) any
		answered bool
		lookups  int // users.info calls for mentioned users
	}{
		{"someone else's thread", func(s *slacktest.Server) any {
			parent := s.ChannelMessage("U2", "C1", "team roll call", "")
			s.EventCallback(parent)
			ev := s.ChannelMessage("U2", "C1", "roll call: "+floodText(500), parent.TS)
			ev.ParentUserID = "U2"
			return ev
		}, false, 0},
		{"channel chatter", func(s *slacktest.Server) any {
			return s.ChannelMessage("U2", "C1", floodText(500), "")
		}, false, 0},
		{"mention", func(s *slacktest.Server) any {
			return s.Mention("U2", "C1", "<@UBOT> who are these? "+floodText(500), "")
		}, true, maxMentionLookups},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOptions{gateway: llmtest.Options{Reply: "ok"}})
			for i := range 30 {
				e.slack.AddUser(slacktest.User{ID: fmt.Sprintf("U%d", 100000+i), Name: fmt.Sprintf("user%d", i)})
			}
			flood := tt.event(e.slack)
			e.slack.SendEvent(flood)
			real := e.slack.Mention("U1", "C1", "<@UBOT> are you there?", "")
			start := time.Now()
			e.slack.SendEvent(real)
			e.waitThread("C1", real.TS, []string{"ok"})
			if el := time.Since(start); el > 10*time.Second {
				t.Errorf("the real mention waited %v behind the flood", el)
			}
			e.barrier("C1")
			if n := userLookups(e.slack, "U1", "U2"); n != tt.lookups {
				t.Errorf("users.info calls for mentioned users = %d, want %d", n, tt.lookups)
			}
			want := 1
			if tt.answered {
				want = 2
				var p string // the two mentions are answered concurrently
				for _, pr := range e.h.Prompts() {
					if u := pr.LastUser(); strings.HasPrefix(u, "who are these?") {
						p = u
					}
				}
				if !strings.Contains(p, "@user0 ") || !strings.Contains(p, "@user19 ") || !strings.Contains(p, "@U100020 ") || strings.Contains(p, "@user20") {
					t.Errorf("first 20 users named, the rest kept as ids; model saw %.300q", p)
				}
			}
			if n := e.prompts(); n != want {
				t.Errorf("model calls = %d, want %d", n, want)
			}
		})
	}
}
