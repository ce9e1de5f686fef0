package bot

import (
	"context"
	"fmt"
	"testing"
)

func TestAddressed(t *testing.T) {
	for _, required := range []bool{false, true} {
		t.Run(fmt.Sprint("mention_required=", required), func(t *testing.T) {
			h := newHarness(t, func(o *Options) { o.MentionRequiredInThreads = required })
			ctx := context.Background()
			// The bot answers in thread 100.1.
			h.say(t, Message{Platform: "test", Workspace: "W1", Channel: "C1", Thread: "100.1", ID: "100.1", Author: User{ID: "U1"}, Text: "hi", Mentioned: true})
			base := Message{Platform: "test", Workspace: "W1", Channel: "C1", ID: "200.1", Author: User{ID: "U2"}, Text: "x"}
			tests := []struct {
				name string
				mod  func(m *Message)
				want bool
			}{
				{"channel chatter", func(m *Message) {}, false},
				{"mention", func(m *Message) { m.Mentioned = true }, true},
				{"direct message", func(m *Message) { m.DM, m.Channel = true, "D1" }, true},
				{"reply to the bot", func(m *Message) { m.ContinuesBot = true }, true},
				{"someone else's thread", func(m *Message) { m.Thread = "300.1" }, false},
				{"the bot's thread", func(m *Message) { m.Thread = "100.1" }, !required},
			}
			for _, tt := range tests {
				m := base
				tt.mod(&m)
				got, err := h.e.Addressed(ctx, m)
				if err != nil || got != tt.want {
					t.Errorf("%s: Addressed = %v, %v; want %v", tt.name, got, err, tt.want)
				}
			}
		})
	}
}
